"""Read NWB files (read-only, never modified): opening, tables, behavior, events, true parameters.

Every failure a user can cause (missing file, not HDF5, truncated, no trials, a missing or malformed
column) becomes one :class:`~dopa_rl.errors.InputError` line naming the file and the problem.
pynwb is imported only inside the functions of the ``dopa_rl.io.nwb*`` modules.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dopa_rl.errors import InputError
from dopa_rl.io.nwb_legacy import legacy_manager, needs_legacy

__all__ = [
    "open_nwb", "table_to_frame", "interval_tables", "read_behavior", "read_events",
    "read_true_parameters", "read_true_trajectories", "subject_and_session", "behavior_from_nwbfile",
    "events_from_nwbfile", "event_frames_from_nwbfile", "read_event_tables", "count_events_in_windows",
]

_EVENT_TYPES = {"Events", "LabeledEvents", "TTLs", "AnnotatedEventsTable"}  # ndx-events 0.2 types


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def _raised_by_hdf5(exc: BaseException) -> bool:
    """True when ``exc`` passed through h5py/hdmf/pynwb code (a read of the file's data failed)."""
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename.replace(os.sep, "/")
        if re.search(r"(^|/)(h5py|hdmf|pynwb)/", filename):
            return True
        tb = tb.tb_next
    return False


@contextlib.contextmanager
def open_nwb(path: str | os.PathLike[str]) -> Iterator[Any]:
    """Open ``path`` read-only and yield the ``pynwb.NWBFile``; the file is closed on exit.

    Extensions cached in the file (ndx-fiber-photometry, ndx-events, ...) are loaded from the file.
    h5py/pynwb failures while the file is open (unreadable, truncated data) become an InputError.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder; give an .nwb file")
    import h5py

    if not h5py.is_hdf5(path):
        raise InputError(f"{path}: not an HDF5 file, so not an NWB file (NWB 2 files are HDF5)")
    try:
        with h5py.File(path, "r") as h5:
            legacy = needs_legacy(h5)
    except OSError as exc:
        raise InputError(f"{path}: cannot open as NWB ({_first_line(exc)}); the file may be truncated") from exc
    # pynwb's warnings about other tools' files (deprecated types, cached namespaces) are silenced while
    # the file is opened and read; not around the caller's block, which may stay open for long
    # (NWBSession), and whose warning filters must be restored in whatever order sessions close.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import ndx_fiber_photometry  # noqa: F401  (registers the photometry classes)
        from pynwb import NWBHDF5IO

        try:  # ndx-fiber-photometry 0.1 files: its types read as generic ones (nwb_legacy)
            io = NWBHDF5IO(str(path), mode="r", load_namespaces=True,
                           **({"manager": legacy_manager()} if legacy else {}))
        except Exception as exc:  # h5py/hdmf raise many types for damaged files
            raise InputError(f"{path}: cannot open as NWB ({_first_line(exc)}); the file may be truncated") from exc
        try:
            nwbfile = io.read()
        except Exception as exc:
            with contextlib.suppress(Exception):
                io.close()
            raise InputError(f"{path}: cannot read as NWB ({_first_line(exc)})") from exc
    try:
        yield nwbfile
    except InputError:
        raise
    except OSError as exc:
        if not _raised_by_hdf5(exc):  # the caller's own I/O (or our bugs) is not blamed on this file
            raise
        raise InputError(f"{path}: cannot read data ({_first_line(exc)}); the file may be damaged") from exc
    finally:
        with contextlib.suppress(Exception):
            io.close()


def _column_values(col: Any) -> Any:
    """Values of one table column: numpy array for plain columns, list of arrays for ragged ones."""
    data = col.data
    values = data[:] if hasattr(data, "shape") else np.asarray(data)
    arr = np.asarray(values)
    if arr.dtype.kind == "S":
        arr = np.char.decode(arr, "utf-8").astype(object)
    elif arr.dtype.kind == "O" and len(arr) and isinstance(arr[0], bytes):
        arr = np.array([v.decode("utf-8") for v in arr], dtype=object)
    return arr


def table_to_frame(table: Any) -> pd.DataFrame:
    """Read a DynamicTable (TimeIntervals, EventsTable...) into a DataFrame, column by column.

    Plain columns become numpy-backed columns; ragged columns become lists of arrays; columns that
    reference other objects (table regions, time series references) are left out.
    """
    from hdmf.common import DynamicTableRegion, VectorIndex

    out: dict[str, Any] = {}
    n = len(table)
    for name in table.colnames:
        col = table[name]
        if isinstance(col, DynamicTableRegion) or type(col).__name__.startswith("TimeSeriesReference"):
            continue
        if isinstance(col, VectorIndex):
            if isinstance(col.target, DynamicTableRegion):
                continue
            out[name] = [np.asarray(v) for v in col[:]]
            continue
        arr = _column_values(col)
        if arr.dtype.kind == "V" or arr.dtype.names:  # compound (references)
            continue
        out[name] = list(arr) if arr.ndim > 1 else arr
    frame = pd.DataFrame(out, index=pd.RangeIndex(n))
    return frame


def interval_tables(nwbfile: Any) -> dict[str, Any]:
    """Every TimeIntervals table in the file by name: ``intervals/*`` (incl. trials) and processing modules."""
    from pynwb.epoch import TimeIntervals

    found: dict[str, Any] = {}
    for name, tab in (nwbfile.intervals or {}).items():
        found[name] = tab
    for mod in nwbfile.processing.values():
        for name, obj in mod.data_interfaces.items():
            if isinstance(obj, TimeIntervals) and name not in found:
                found[name] = obj
    return found


def subject_and_session(nwbfile: Any, path: Path) -> tuple[str, str]:
    """Subject id (``subject.subject_id``, else the file name) and session id (``session_id``, else identifier)."""
    subject = getattr(nwbfile.subject, "subject_id", None) if nwbfile.subject is not None else None
    session = nwbfile.session_id or nwbfile.identifier
    return (str(subject) if subject else path.stem), (str(session) if session else path.stem)


def count_events_in_windows(times: np.ndarray, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """Number of ``times`` in each half-open window ``[start, stop)``; NaN windows count 0."""
    times = np.sort(np.asarray(times, dtype=float))
    start = np.asarray(start, dtype=float)
    stop = np.asarray(stop, dtype=float)
    ok = np.isfinite(start) & np.isfinite(stop)
    counts = np.zeros(len(start), dtype=np.int64)
    counts[ok] = np.searchsorted(times, stop[ok], side="left") - np.searchsorted(times, start[ok], side="left")
    return np.maximum(counts, 0)


def _event_sources(nwbfile: Any) -> Iterator[tuple[str, Any, str]]:
    """(name, object, kind) of every event container: core/ndx EventsTables, ndx-events types,
    BehavioralEvents series, and plain TimeSeries named like lick/ttl/reward/valve/event."""
    from hdmf.common import DynamicTable
    from pynwb import TimeSeries

    def visit(name: str, obj: Any) -> Iterator[tuple[str, Any, str]]:
        ntype = getattr(obj, "neurodata_type", type(obj).__name__)
        if ntype == "BehavioralEvents":
            for ts_name, ts in obj.time_series.items():
                yield ts_name, ts, "series"
        elif ntype in _EVENT_TYPES and hasattr(obj, "timestamps"):
            yield name, obj, "ndx-events"
        elif isinstance(obj, DynamicTable) and "timestamp" in obj.colnames:
            yield name, obj, "table"
        elif isinstance(obj, TimeSeries) and ntype == "TimeSeries" and obj.timestamps is not None \
                and any(k in name.lower() for k in ("lick", "ttl", "reward", "valve", "event")) \
                and not _looks_sampled(obj.timestamps):
            yield name, obj, "series"

    for name, table in (getattr(nwbfile, "events", None) or {}).items():
        yield from visit(name, table)
    for name, obj in nwbfile.acquisition.items():
        yield from visit(name, obj)
    for mod in nwbfile.processing.values():
        for name, obj in mod.data_interfaces.items():
            yield from visit(name, obj)


#: a series whose samples come faster than this (median gap) is a sampled signal, not a list of events:
#: licks, rewards and TTLs are tens of milliseconds apart at the closest
EVENT_MIN_MEDIAN_GAP_S = 0.02


def _looks_sampled(timestamps: Any) -> bool:
    """True for a continuously sampled trace (e.g. a lick *sensor* voltage with timestamps)."""
    head = np.asarray(timestamps[:1001], dtype=float)
    if head.size < 50:
        return False
    return bool(np.median(np.diff(head)) < EVENT_MIN_MEDIAN_GAP_S)


def _unique(name: str, taken: Mapping[str, Any]) -> str:
    return name if name not in taken else f"{name}_{len(taken)}"


def _collect_events(nwbfile: Any) -> dict[str, np.ndarray]:
    """Event times (sorted seconds) by name from every event container in the file."""
    events: dict[str, np.ndarray] = {}
    for name, obj, kind in _event_sources(nwbfile):
        if kind == "table":
            times = _column_values(obj["timestamp"])
        elif kind == "series":
            times = obj.get_timestamps()
        else:
            times = obj.timestamps[:]
        events[_unique(name, events)] = np.sort(np.asarray(times, dtype=float))
    return events


def _collect_event_frames(nwbfile: Any) -> dict[str, pd.DataFrame]:
    """Every event container as a DataFrame: ``timestamp`` plus its other columns (duration, labels,
    TTL codes as ``data``...), rows sorted by time."""
    frames: dict[str, pd.DataFrame] = {}
    for name, obj, kind in _event_sources(nwbfile):
        if kind == "table":
            df = table_to_frame(obj)
        else:
            times = obj.get_timestamps() if kind == "series" else obj.timestamps[:]
            df = pd.DataFrame({"timestamp": np.asarray(times, dtype=float)})
            data = getattr(obj, "data", None)
            if data is not None and len(_shape_of(data)) == 1 and _shape_of(data)[0] == len(df):
                df["data"] = np.asarray(obj.get_data_in_units() if kind == "series" else data[:])
        frames[_unique(name, frames)] = df.sort_values("timestamp", kind="stable").reset_index(drop=True)
    return frames


def _shape_of(data: Any) -> tuple[int, ...]:
    shape = getattr(data, "shape", None)
    return tuple(shape) if shape is not None else np.shape(data)


def read_event_tables(path: str | os.PathLike[str]) -> dict[str, pd.DataFrame]:
    """Events with everything recorded about them (``timestamp`` plus duration, annotation, TTL codes as
    ``data``...), one DataFrame per event type, sorted by time.  See :func:`read_events` for times only."""
    with open_nwb(path) as nwbfile:
        return _collect_event_frames(nwbfile)


def read_events(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Event times (seconds, sorted) by name: core ``EventsTable``s, ndx-events, ``BehavioralEvents``.

    Plain TimeSeries whose names say lick/ttl/reward/valve/event count as events too (their timestamps).
    """
    with open_nwb(path) as nwbfile:
        return _collect_events(nwbfile)


events_from_nwbfile = _collect_events
event_frames_from_nwbfile = _collect_event_frames


def read_behavior(path: str | os.PathLike[str], *, columns: Mapping[str, str] | None = None,
                  trials_table: str | None = None, validate: bool = True) -> pd.DataFrame:
    """Read the trials of one NWB file as a behavior table (DESIGN section 3), sorted by start time.

    - ``trials_table``: name of the TimeIntervals table holding the trials (default ``trials``); tables
      under ``intervals/`` and in processing modules are searched.
    - ``columns``: map from standard name to the lab's column name (``{"cue": "stimulus",
      "cue_time": "stim_on", "reward": "volume_ul"}``); mapped columns are renamed to the standard names.
    - Adds ``subject`` and ``session`` from the file (``subject.subject_id``, ``session_id``) unless the
      table has them, and ``trial`` (0-based order) when absent.
    - When there is no ``licks`` column, licks are counted per trial from a ragged trials column of lick
      times (name containing "lick"), else from a lick event table (an events table whose name contains
      "lick"), between ``cue_time`` and ``outcome_time`` when both exist, else over the whole trial;
      ``df.attrs["licks_from"]`` says which source was used.  Trials whose window has a NaN end get
      NaN (missing) licks.

    Raises InputError naming the file and table for: no trials table, empty table, mapped column
    missing; then (``validate=True``) the table goes through the one behaviour validator,
    :func:`dopa_rl.io.behavior.normalize_behavior` (no reward / cue-or-choice column, text in a numeric
    column, NaN rewards...); the table is returned with the types it has in the file.  ``validate=False``
    skips the validator, for callers that clean messy tables first and validate after (:func:`dopa_rl.io.behavior.load_behavior`,
    :func:`dopa_rl.neural.tables.prepare_trials`).
    """
    path = Path(path)
    with open_nwb(path) as nwbfile:
        return behavior_from_nwbfile(nwbfile, path, columns=columns, trials_table=trials_table, validate=validate)


def behavior_from_nwbfile(nwbfile: Any, path: Path, *, columns: Mapping[str, str] | None = None,
                          trials_table: str | None = None, validate: bool = True) -> pd.DataFrame:
    """:func:`read_behavior` on an already open ``NWBFile`` (``path`` is used in messages)."""
    tables = interval_tables(nwbfile)
    name = trials_table or "trials"
    if name not in tables:
        others = sorted(tables)
        hint = (f"; interval tables in the file: {', '.join(others)} (choose one with `trials_table` NAME)"
                if others else "; the file has no interval tables at all")
        raise InputError(f"{path}: no trials table named '{name}'{hint}")
    table = tables[name]
    where = f"{path}: table '{name}'"
    if len(table) == 0:
        raise InputError(f"{where} has no rows")
    df = table_to_frame(table)
    subject, session = subject_and_session(nwbfile, path)
    lick_times = None
    if "licks" not in df.columns and not (columns and "licks" in columns):
        events = _collect_events(nwbfile)
        lick_names = sorted(k for k in events if "lick" in k.lower())
        if lick_names:
            lick_times = (lick_names[0], events[lick_names[0]])
    if columns:
        missing = {std: lab for std, lab in columns.items() if lab not in df.columns}
        if missing:
            what = ", ".join(f"'{lab}' (for {std})" for std, lab in missing.items())
            raise InputError(f"{where} has no column {what}; columns are: {', '.join(df.columns)}")
        rename = {lab: std for std, lab in columns.items() if lab != std}
        df = df.drop(columns=[c for c in rename.values() if c in df.columns and c not in rename])
        df = df.rename(columns=rename)
    if "subject" not in df.columns:
        df.insert(0, "subject", subject)
    if "session" not in df.columns:
        df.insert(1, "session", session)
    df = df.sort_values("start_time", kind="stable").reset_index(drop=True)
    if "trial" not in df.columns:
        df.insert(2, "trial", np.arange(len(df), dtype=np.int64))
    ragged_licks = [c for c in df.columns if "lick" in str(c).lower() and df[c].dtype == object
                    and len(df) and isinstance(df[c].iloc[0], np.ndarray)]
    if "licks" not in df.columns and (lick_times is not None or ragged_licks):
        if "cue_time" in df.columns and "outcome_time" in df.columns:
            lo, hi = df["cue_time"].to_numpy(float), df["outcome_time"].to_numpy(float)
        else:
            lo, hi = df["start_time"].to_numpy(float), df["stop_time"].to_numpy(float)
        if ragged_licks:  # per-trial lick times stored in the trials table itself
            col = ragged_licks[0]
            df["licks"] = [int(count_events_in_windows(np.asarray(t, float), [a], [b])[0])
                           for t, a, b in zip(df[col], lo, hi)]
            df.attrs["licks_from"] = f"trials column {col}"
        else:
            df["licks"] = count_events_in_windows(lick_times[1], lo, hi)
            df.attrs["licks_from"] = lick_times[0]
        unknown = ~(np.isfinite(lo) & np.isfinite(hi))
        if unknown.any():  # no window (NaN cue/outcome time): the count is missing, not an observed 0
            df["licks"] = np.where(unknown, np.nan, df["licks"].to_numpy(dtype=float))
    if validate:
        from dopa_rl.io.behavior import normalize_behavior

        normalize_behavior(df, source=where, renamed=columns)  # checks only: the table keeps its stored types
    df.attrs["source"] = str(path)
    return df


def _ground_truth_table(path: str | os.PathLike[str], name: str) -> pd.DataFrame:
    from dopa_rl.io.nwb_write import TRUE_PARAMETERS_MODULE

    with open_nwb(path) as nwbfile:
        mod = nwbfile.processing.get(TRUE_PARAMETERS_MODULE)
        if mod is None or name not in mod.data_interfaces:
            raise InputError(f"{path}: no {name.replace('_', ' ')} (not a simulated session written by dopa_rl)")
        return table_to_frame(mod[name])


def read_true_parameters(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The generating parameters stored in a simulated session (``processing/simulation/true_parameters``):
    ``model``, ``task``, the learning parameters and the observation parameters."""
    from dopa_rl.io.nwb_write import TRUE_PARAMETERS_TABLE

    frame = _ground_truth_table(path, TRUE_PARAMETERS_TABLE)
    return {str(k): json.loads(v) for k, v in zip(frame["parameter"], frame["value"])}


def read_true_trajectories(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Latent per-trial values of a simulated session (``rpe_cue``, ``rpe_outcome``, ``V_A``...), in trial order."""
    from dopa_rl.io.nwb_write import TRUE_TRAJECTORIES_TABLE

    return _ground_truth_table(path, TRUE_TRAJECTORIES_TABLE)
