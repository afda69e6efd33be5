"""dopa_rl: reward-prediction-error science in one toolkit.

Models (Rescorla-Wagner, TD) simulated and fitted to behavior and dopamine, NWB in and out, and a
closed-loop Arduino rig.  Heavy libraries (pynwb, spikeinterface, statsmodels) are imported lazily.
"""
from __future__ import annotations

__version__ = "0.1.0"

from dopa_rl.errors import DopaRLError, InputError, DeviceError  # noqa: E402

__all__ = ["__version__", "DopaRLError", "InputError", "DeviceError"]
