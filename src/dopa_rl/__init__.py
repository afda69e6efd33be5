"""dopa_rl: reward-prediction-error science in one toolkit.

Models (Rescorla-Wagner, TD) simulated and fitted to behavior and dopamine, NWB in and out, and a
closed-loop Arduino rig.  Heavy libraries (pynwb, spikeinterface, statsmodels) are imported lazily.
"""
from __future__ import annotations

__version__ = "0.1.0"

from dopa_rl.errors import DopaRLError, InputError, DeviceError  # noqa: E402
from dopa_rl.results import use_io as _use_io  # noqa: E402

# the result family (dopa_rl.results) writes files and NWB through io without importing it (DESIGN section 2)
_use_io(write_text="dopa_rl.io.atomic:atomic_write_text", add_to_nwb="dopa_rl.io.nwb_results:add_result")

__all__ = ["__version__", "DopaRLError", "InputError", "DeviceError"]
