"""Write a clock alignment (and a series re-timed with it) into a copy of an NWB file.

The input file is opened read-only; the result is exported to a temporary file beside the destination and
renamed onto it (``dopa_rl.io.atomic``), so the destination is either untouched or complete, and writing
"in place" is a rename onto the input after the new file is whole.

What is added, in the processing module ``sync``:

* ``clock_alignment`` (one row per other clock): its name, the pulse file and column, ``offset_s``,
  ``drift_ppm`` (``t_other = offset_s + (1 + drift_ppm * 1e-6) * t_rig``), ``residual_ms``, ``n_matched``,
  ``n_rig``, ``n_other``, the rig events used;
* ``sync_pulses_<clock>``: the matched pulse pairs (rig time, other time);

and, when given, a re-timed series in ``acquisition`` (a plain ``TimeSeries`` with timestamps on the
session's clock, which ``dopa-rl photometry``/``regress`` read like any photometry series).
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from dopa_rl.errors import InputError
from dopa_rl.io.atomic import atomic_path
from dopa_rl.io.nwb_types import AnalogSeries
from dopa_rl.io.nwb_write import _add_analog

__all__ = ["write_alignment"]


def write_alignment(src: str | os.PathLike[str], dest: str | os.PathLike[str], *, clock: str, summary: dict,
                    rig_times: np.ndarray, other_times: np.ndarray, pulses_file: str, column: str, rig_events: str,
                    series: tuple[str, AnalogSeries] | None = None) -> Path:
    """Copy ``src`` to ``dest`` (may be ``src`` itself) with the alignment added and, when given, the series
    ``(name, AnalogSeries)`` (timestamps already on the session's clock) in acquisition; returns ``dest``."""
    import h5py
    from hdmf.common import DynamicTable, VectorData
    from pynwb import NWBHDF5IO

    src, dest = Path(src), Path(dest)
    if not src.is_file() or not h5py.is_hdf5(src):
        raise InputError(f"{src}: not an NWB (HDF5) file")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import ndx_fiber_photometry  # noqa: F401  (registers the photometry classes)

        with NWBHDF5IO(str(src), mode="r", load_namespaces=True) as rio:
            nwb = rio.read()
            mod = nwb.processing.get("sync") or nwb.create_processing_module(
                "sync", "clock alignment with other recording systems from random-interval sync pulses")
            pairs_name = f"sync_pulses_{clock}"
            if pairs_name in mod.data_interfaces or (series is not None and series[0] in nwb.acquisition):
                raise InputError(f"{src}: already aligned to clock {clock!r} (or has {series and series[0]!r}); "
                                 "use another `clock` name")
            row = {"clock": clock, "pulses_file": pulses_file, "column": column, "rig_events": rig_events,
                   **{k: summary[k] for k in ("offset_s", "drift_ppm", "residual_ms", "n_matched", "n_rig", "n_other")}}
            docs = {"clock": "name of the other clock", "pulses_file": "file the other system's pulse times came from",
                    "column": "column of that file", "rig_events": "rig events table used as the rig's pulses",
                    "offset_s": "t_other = offset_s + (1 + drift_ppm * 1e-6) * t_rig: the other clock at rig time 0, s",
                    "drift_ppm": "rate of the other clock relative to the rig's, minus 1, in parts per million",
                    "residual_ms": "root mean square distance of the matched pulses from the fitted line, ms",
                    "n_matched": "pulses paired between the two systems", "n_rig": "rig pulses",
                    "n_other": "pulses recorded by the other system"}
            if "clock_alignment" in mod.data_interfaces:
                mod.data_interfaces["clock_alignment"].add_row(**row)
            else:
                table = DynamicTable(name="clock_alignment", description="clock alignment from sync pulses, one row per other clock",
                                     columns=[VectorData(name=k, description=docs[k], data=[v]) for k, v in row.items()])
                mod.add(table)
            mod.add(DynamicTable(name=pairs_name, description=f"sync pulses matched between the rig and {clock}",
                                 columns=[VectorData(name="rig_time", description="pulse on the rig's clock (session time), s",
                                                     data=np.asarray(rig_times, float)),
                                          VectorData(name="other_time", description=f"the same pulse on {clock}'s clock, s",
                                                     data=np.asarray(other_times, float))]))
            if series is not None:
                _add_analog(nwb, *series)
            try:
                with atomic_path(dest) as tmp:
                    with NWBHDF5IO(str(tmp), mode="w") as wio:
                        wio.export(src_io=rio, nwbfile=nwb)
            except OSError as exc:
                raise InputError(f"{dest}: cannot write there ({exc.strerror or exc})") from exc
    return dest
