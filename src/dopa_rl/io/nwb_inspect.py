"""What an NWB file holds that dopa_rl can use, and what is missing for each analysis.

:func:`inspect_nwb` never reads sampled data: sizes come from dataset shapes, durations from the first and
last timestamps (and the rate from the first 2000); event times and spike times are read to count them.  It works on files written by other tools (MatNWB, NeuroConv, pynapple), including
units without ``resolution``, negative timestamps and trials kept only in custom interval tables.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dopa_rl.io.nwb_photometry import _FPRS, _SIGNAL_WORDS, find_time_series, name_has_word, photometry_channels
from dopa_rl.io.nwb_read import _collect_events, interval_tables, open_nwb

__all__ = ["inspect_nwb", "inspect_nwbfile", "format_inspection"]


def _shape(data: Any) -> tuple[int, ...]:
    shape = getattr(data, "shape", None)
    return tuple(int(s) for s in shape) if shape is not None else tuple(np.shape(data))


def _series_info(path: str, ts: Any) -> dict[str, Any]:
    shape = _shape(ts.data)
    n = shape[0] if shape else 0
    info: dict[str, Any] = {"path": path, "type": getattr(ts, "neurodata_type", type(ts).__name__),
                            "samples": n, "channels": int(shape[1]) if len(shape) > 1 else 1,
                            "unit": str(getattr(ts, "unit", "")), "conversion": float(getattr(ts, "conversion", 1.0))}
    if ts.timestamps is not None:
        t = ts.timestamps
        n_t = _shape(t)[0] if _shape(t) else 0  # other tools sometimes write fewer/more timestamps than samples
        if n_t != n:
            info["timestamps"] = n_t
        first = float(t[0]) if n_t else float("nan")
        last = float(t[n_t - 1]) if n_t else float("nan")
        head = np.asarray(t[: min(n_t, 2000)], dtype=float)
        info["rate"] = float(1.0 / np.median(np.diff(head))) if len(head) > 1 and np.all(np.diff(head) > 0) else None
        info["timing"] = "timestamps"
    else:
        rate = float(ts.rate)
        first = float(ts.starting_time or 0.0)
        last = first + (n - 1) / rate if n else first
        info["rate"] = rate
        info["timing"] = "rate"
    info["start"] = first
    info["duration"] = last - first
    if info["type"] in _FPRS or getattr(ts, "fiber_photometry_table_region", None) is not None:
        info["channel_info"] = [
            {"column": c.column, "excitation_nm": c.excitation_nm, "emission_nm": c.emission_nm,
             "indicator": c.indicator, "role": "control" if c.is_control else "signal"}
            for c in photometry_channels(ts)]
    info["photometry"] = info["type"] in _FPRS or name_has_word(path, _SIGNAL_WORDS)
    return info


def _units_info(nwbfile: Any) -> dict[str, Any] | None:
    units = nwbfile.units
    if units is None:
        return None
    n = len(units.id)
    info: dict[str, Any] = {"count": n, "columns": [c for c in units.colnames]}
    if "spike_times" in units.colnames:
        data = units["spike_times"].target.data if hasattr(units["spike_times"], "target") else units["spike_times"].data
        times = np.asarray(data[:], dtype=float)
        info["spikes"] = int(times.size)
        info["first_spike"] = float(times.min()) if times.size else None
        info["last_spike"] = float(times.max()) if times.size else None
    else:
        info["spikes"] = 0
    res = getattr(units, "resolution", None)
    info["resolution"] = float(res) if res is not None and res > 0 else None
    return info


def _behavior_status(tables: dict[str, Any], trials_table: str | None, columns: Mapping[str, str] | None,
                     has_lick_events: bool) -> dict[str, Any]:
    name = trials_table or "trials"
    if name not in tables:
        others = sorted(tables)
        hint = (f"choose one of the interval tables ({', '.join(others)}) with `trials_table` NAME"
                if others else "the file has no interval tables")
        return {"ready": False, "table": None, "missing": [f"no '{name}' table; {hint}"]}
    cols = set(tables[name].colnames)
    mapped = {std: lab for std, lab in (columns or {}).items()}
    have = {std for std, lab in mapped.items() if lab in cols} | {c for c in cols if c not in mapped.values()}
    missing = []
    if "reward" not in have:
        missing.append("reward column (map with `columns` reward=NAME)")
    if "cue" not in have and "choice" not in have:
        missing.append("cue or choice column (map with `columns` cue=NAME)")
    if len(tables[name]) == 0:
        missing.append(f"trials (table '{name}' has no rows)")
    optional = [c for c in ("cue_time", "outcome_time") if c not in have]
    if "licks" not in have and not has_lick_events:
        optional.append("licks (column or lick events)")
    return {"ready": not missing, "table": name, "rows": len(tables[name]), "missing": missing,
            "optional_missing": optional}


def inspect_nwb(path: str | os.PathLike[str], *, trials_table: str | None = None,
                columns: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Summarise ``path``: metadata, interval tables, events, time series, units, and per-analysis readiness.

    Returns a JSON-serialisable dict (see ``dopa-rl inspect --json``).
    """
    path = Path(path)
    with open_nwb(path) as nwbfile:
        return inspect_nwbfile(nwbfile, path, trials_table=trials_table, columns=columns)


def inspect_nwbfile(nwbfile: Any, path: Path, *, trials_table: str | None = None,
                    columns: Mapping[str, str] | None = None) -> dict[str, Any]:
    """:func:`inspect_nwb` on an already open ``NWBFile`` (``path`` is reported as the file)."""
    subj = nwbfile.subject
    summary: dict[str, Any] = {
        "file": str(path),
        "identifier": nwbfile.identifier,
        "session_id": nwbfile.session_id,
        "session_start_time": nwbfile.session_start_time.isoformat() if nwbfile.session_start_time else None,
        "session_description": nwbfile.session_description,
        "subject": None if subj is None else {k: getattr(subj, k, None) for k in
                                              ("subject_id", "species", "sex", "age")},
    }
    tables = interval_tables(nwbfile)
    summary["interval_tables"] = [
        {"name": name, "rows": len(t), "columns": [c for c in t.colnames]} for name, t in tables.items()]
    events = _collect_events(nwbfile)
    summary["events"] = [
        {"name": k, "count": int(len(v)), "first": float(v[0]) if len(v) else None,
         "last": float(v[-1]) if len(v) else None} for k, v in events.items()]
    series = [_series_info(p, ts) for p, ts in find_time_series(nwbfile).items()]
    summary["time_series"] = series
    summary["units"] = _units_info(nwbfile)
    notes = []
    for s in series:
        if s["samples"] and s["start"] < 0:
            notes.append(f"{s['path']} starts at a negative time ({s['start']:.6g} s)")
        if "timestamps" in s:
            notes.append(f"{s['path']} has {s['samples']} samples but {s['timestamps']} timestamps")
    for e in summary["events"]:
        if e["first"] is not None and e["first"] < 0:
            notes.append(f"events '{e['name']}' start at a negative time ({e['first']:.6g} s)")
    if summary["units"] is not None and summary["units"]["resolution"] is None:
        notes.append("units have no resolution; spike times are read as stored (nominal 30 kHz frame clock)")
    if "trials" not in tables and tables:
        notes.append("no 'trials' table; trials may be in: " + ", ".join(sorted(tables)))
    summary["notes"] = notes
    behavior = _behavior_status(tables, trials_table, columns, any("lick" in k.lower() for k in events))
    photometry = [s for s in series if s["photometry"]]
    units = summary["units"]
    has_units = bool(units and units["count"] and units.get("spikes"))
    analyses = {
        "behavior": behavior,
        "photometry": {"ready": bool(photometry), "series": [s["path"] for s in photometry],
                       "missing": [] if photometry else ["no photometry series (FiberPhotometryResponseSeries or a "
                                                         "TimeSeries named like photometry/dff; name one with "
                                                         "`series` NAME)"]},
        "units": {"ready": has_units, "count": units["count"] if units else 0,
                  "missing": [] if has_units else ["no units with spikes (nwbfile.units)"]},
    }
    # only what a command can do today (fit behavior; read photometry and units); analyses that do not
    # exist yet (regression of dopamine on RPEs) are not reported as "ready"
    summary["analyses"] = analyses
    return summary


def _fmt_time(x: float | None) -> str:
    return "-" if x is None else f"{x:.6g} s"


def format_inspection(s: dict[str, Any]) -> str:
    """The human-readable report printed by ``dopa-rl inspect``."""
    out = [f"{s['file']}"]
    subj = s.get("subject") or {}
    out.append(f"  subject {subj.get('subject_id') or '-'} ({subj.get('species') or 'species ?'}), session "
               f"{s.get('session_id') or '-'}, started {s.get('session_start_time') or '-'}")
    out.append("interval tables:" if s["interval_tables"] else "interval tables: none")
    for t in s["interval_tables"]:
        cols = ", ".join(t["columns"][:12]) + (" ..." if len(t["columns"]) > 12 else "")
        out.append(f"  {t['name']}: {t['rows']} rows; columns {cols}")
    out.append("events:" if s["events"] else "events: none")
    for e in s["events"]:
        out.append(f"  {e['name']}: {e['count']} events, {_fmt_time(e['first'])} to {_fmt_time(e['last'])}")
    out.append("time series:" if s["time_series"] else "time series: none")
    for t in s["time_series"]:
        rate = f"{t['rate']:.6g} Hz" if t.get("rate") else "irregular"
        mark = " [photometry]" if t["photometry"] else ""
        out.append(f"  {t['path']} ({t['type']}){mark}: {t['samples']} samples x {t['channels']} channel(s), "
                   f"{rate}, start {t['start']:.6g} s, {t['duration']:.6g} s long, unit {t['unit'] or '-'}")
        for c in t.get("channel_info", []):
            out.append(f"    column {c['column']}: {c['role']}, {c['indicator'] or '?'}, excitation "
                       f"{c['excitation_nm'] if c['excitation_nm'] is not None else '?'} nm")
    u = s["units"]
    if u is None:
        out.append("units: none")
    else:
        res = f"resolution {u['resolution']:g} s" if u["resolution"] else "no resolution"
        out.append(f"units: {u['count']} units, {u.get('spikes', 0)} spikes, {res}; columns {', '.join(u['columns'])}")
    for note in s["notes"]:
        out.append(f"note: {note}")
    out.append("analyses:")
    for name, a in s["analyses"].items():
        status = "ready" if a["ready"] else "missing " + "; ".join(a["missing"])
        extra = ""
        if name == "behavior" and a.get("optional_missing"):
            extra = f" (optional, absent: {', '.join(a['optional_missing'])})"
        out.append(f"  {name}: {status}{extra}")
    return "\n".join(out)
