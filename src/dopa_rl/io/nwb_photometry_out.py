"""Write the photometry analysis (``dopa-rl photometry --nwb-out``) into a copy of the input NWB file.

The input is opened read-only; the copy is exported to a temporary file beside the destination and renamed
onto it (``dopa_rl.io.atomic``), so the destination is either absent or complete.  What is added:

* ``processing/photometry_analysis``: ``z_dff`` (the z-scored dF/F, a regularly sampled ``TimeSeries``),
  ``trial_windows`` (one row per trial and named window: ``trial``, ``window``, ``start_s``, ``stop_s``,
  ``peak``, ``peak_time``, ``auc``, ``mean``) when windows were measured, and ``provenance`` (``key``/``value``
  rows: the pipeline's steps, the event, the windows, the transient settings, flattened to dotted keys
  such as ``steps.2.slope`` with JSON scalar or list values, so that no cell holds a dictionary, which
  nwbinspector counts as a best-practice violation);
* ``events/photometry_transients``: a core ``EventsTable`` (``timestamp`` plus ``amplitude_z``,
  ``amplitude_sd``, ``width_s``, ``baseline``, ``robust_sd``) when transients were detected.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dopa_rl.errors import InputError
from dopa_rl.io.atomic import atomic_path

__all__ = ["write_photometry_analysis", "ANALYSIS_MODULE", "TRANSIENTS_TABLE"]

ANALYSIS_MODULE = "photometry_analysis"
TRANSIENTS_TABLE = "photometry_transients"

_DOCS = {
    "trial": "trial (row of the trials table) or event index the window is aligned to",
    "window": "name of the window (--window NAME=START:STOP)",
    "start_s": "window start, s from the event", "stop_s": "window end, s from the event",
    "peak": "largest baseline-subtracted value in the window (z)", "peak_time": "time of the peak, s from the event",
    "auc": "area under the baseline-subtracted trace over the window (z x s)", "mean": "auc / window length (z)",
    "amplitude_z": "peak minus the sliding median (z)", "amplitude_sd": "peak above the sliding median in robust SDs",
    "width_s": "time above half the threshold, s",
    "baseline": "sliding median at the peak (z)", "robust_sd": "sliding robust SD (1.4826 MAD) at the peak (z)",
}


def _flatten(obj: Any, prefix: str = "") -> dict[str, str]:
    """Nested dicts and lists of dicts as ``{"a.b.0.c": JSON value}``; lists of scalars stay one JSON list."""
    if isinstance(obj, dict):
        out: dict[str, str] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(obj, (list, tuple)) and any(isinstance(v, (dict, list, tuple)) for v in obj):
        out = {}
        for i, v in enumerate(obj):
            out.update(_flatten(v, f"{prefix}.{i}"))
        return out
    return {prefix: json.dumps(obj, allow_nan=False)}


def _columns(frame: pd.DataFrame) -> list[Any]:
    from hdmf.common import VectorData

    out = []
    for c in frame.columns:
        v = frame[c]
        data = v.astype(str).tolist() if v.dtype == object else v.to_numpy()
        out.append(VectorData(name=str(c), description=_DOCS.get(str(c), str(c)), data=data))
    return out


def write_photometry_analysis(src: str | os.PathLike[str], dest: str | os.PathLike[str], *, z: np.ndarray,
                              rate: float, t0: float, provenance: dict[str, Any],
                              windows: pd.DataFrame | None = None, transients: pd.DataFrame | None = None) -> Path:
    """Copy ``src`` to ``dest`` with the analysis added (see the module docstring); returns ``dest``.

    Refuses (InputError) a file that already holds ``processing/photometry_analysis`` or the transients table.
    """
    import h5py
    from hdmf.common import DynamicTable, VectorData
    from pynwb import NWBHDF5IO, TimeSeries
    from pynwb.event import EventsTable, TimestampVectorData

    src, dest = Path(src), Path(dest)
    if not src.is_file() or not h5py.is_hdf5(src):
        raise InputError(f"{src}: not an NWB (HDF5) file")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import ndx_fiber_photometry  # noqa: F401  (registers the photometry classes)

        with NWBHDF5IO(str(src), mode="r", load_namespaces=True) as rio:
            nwb = rio.read()
            if ANALYSIS_MODULE in nwb.processing or TRANSIENTS_TABLE in (nwb.events or {}):
                raise InputError(f"{src}: already holds a photometry analysis ({ANALYSIS_MODULE}); write the copy "
                                 "from the original recording")
            mod = nwb.create_processing_module(ANALYSIS_MODULE, "dopa-rl photometry: processed trace, per-trial "
                                               "window measures and provenance")
            mod.add(TimeSeries(name="z_dff", data=np.asarray(z, dtype=np.float32), unit="z",
                               rate=float(rate), starting_time=float(t0),
                               description="z-scored dF/F after the pipeline's steps (see provenance)"))
            if windows is not None and len(windows):
                mod.add(DynamicTable(name="trial_windows", description="per-trial peak and AUC in named windows "
                                     "(baseline-subtracted z; AUC in z x s)", columns=_columns(windows)))
            flat = _flatten(provenance)
            mod.add(DynamicTable(name="provenance", description="how the analysis was made (dotted keys; values are "
                                 "JSON scalars or lists)",
                                 columns=[VectorData(name="key", description="what (dotted path)", data=list(flat)),
                                          VectorData(name="value", description="JSON value",
                                                     data=list(flat.values()))]))
            if transients is not None:
                ts = TimestampVectorData(name="timestamp",
                                         description="peak time of the transient, s from session start",
                                         data=transients["timestamp"].to_numpy(np.float64))
                rest = _columns(transients.drop(columns=["timestamp"]))
                nwb.add_events_table(EventsTable(name=TRANSIENTS_TABLE, columns=[ts, *rest],
                                                 description="photometry transients (dopa-rl photometry --transients)"))
            try:
                with atomic_path(dest) as tmp:
                    with NWBHDF5IO(str(tmp), mode="w") as wio:
                        wio.export(src_io=rio, nwbfile=nwb)
            except OSError as exc:
                raise InputError(f"{dest}: cannot write there ({exc.strerror or exc})") from exc
    return dest
