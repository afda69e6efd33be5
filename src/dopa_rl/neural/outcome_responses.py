"""Per-trial outcome responses of each unit with the trial's reward magnitude, read from one file: the front
end of ``dopa-rl distributional`` (the analysis itself is :mod:`dopa_rl.neural.distributional`).

Two sources: an NWB file with units (spikes read through spikeinterface; the response is the firing rate in
``window`` after ``outcome_time`` minus the rate in ``baseline`` around the trial's first event: its
``cue_time`` (odour onset) on a cued trial, its ``outcome_time`` on an uncued one, as Dabney et al. 2020 do;
``baseline_event="outcome"`` takes the baseline around the outcome on every trial), or a CSV/TSV table with
one row per trial and one column per unit (``PREFIX<unit>``) holding already measured responses.

Excluded and counted: trials whose reward is missing (``missing_reward``) or 0 (``zero_reward``: no reward
was delivered, so there is no magnitude response), whose outcome time is missing (``missing_outcome_time``,
NWB only) and, when a trial-type column is used, whose type is unknown (``unknown_type``).
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dopa_rl.errors import InputError

__all__ = ["load_outcome_responses"]


def _type_column(df: pd.DataFrame, name: str | None, where: str) -> np.ndarray | None:
    """The trial type as objects (truthy = cued; None = unknown); None when no type column is used."""
    if name is None:
        if "cued" not in df.columns:
            return None
        name = "cued"
    if name not in df.columns:
        raise InputError(f"{where}: no trial-type column '{name}' (`cued_column`); columns are: "
                         f"{', '.join(map(str, df.columns))}")
    out = []
    for v in df[name].to_numpy(dtype=object):
        if v is None or (isinstance(v, float) and not np.isfinite(v)):
            out.append(None)
        elif isinstance(v, str):
            s = v.strip().lower()
            out.append(True if s in ("1", "true", "yes", "cued") else False if s in ("0", "false", "no", "uncued")
                       else None)
        else:
            out.append(bool(v))
    return np.array(out, dtype=object)


def _clean(df: pd.DataFrame, magnitude: str, cued: str | None, where: str, need_time: bool):
    if magnitude not in df.columns:
        raise InputError(f"{where}: no reward-magnitude column '{magnitude}' (`magnitude_column`); columns are: "
                         f"{', '.join(map(str, df.columns))}")
    mag = pd.to_numeric(df[magnitude], errors="coerce").to_numpy(float)
    types = _type_column(df, cued, where)
    counts = {"missing_reward": int((~np.isfinite(mag)).sum()), "zero_reward": int((mag == 0).sum())}
    keep = np.isfinite(mag) & (mag != 0)
    if need_time:
        if "outcome_time" not in df.columns:
            raise InputError(f"{where}: no outcome_time column (map yours with `columns` outcome_time=NAME)")
        o = pd.to_numeric(df["outcome_time"], errors="coerce").to_numpy(float)
        counts["missing_outcome_time"] = int((keep & ~np.isfinite(o)).sum())
        keep &= np.isfinite(o)
    if types is not None:
        unknown = np.array([t is None for t in types])
        counts["unknown_type"] = int((keep & unknown).sum())
        keep &= ~unknown
    return keep, mag, types, {k: v for k, v in counts.items() if v}


def load_outcome_responses(path, signal: str = "units", *, magnitude_column: str = "reward",
                           cued_column: str | None = None, columns: Mapping[str, str] | None = None,
                           trials_table: str | None = None, window=(0.2, 0.6), baseline=(-1.0, 0.0),
                           baseline_event: str = "first", units=None, unit_prefix: str = "unit_") -> dict[str, Any]:
    """One session's outcome responses; returns ``{"label", "responses" (trials x units), "magnitudes",
    "trial_type" (None when the file has no type column), "unit_names", "excluded" (counts by reason),
    "n_read", "truth"}`` where ``truth`` holds the true reward distribution and unit taus of a simulated
    session written by dopa_rl (else None)."""
    from dopa_rl.neural.alignment import check_window

    window, baseline = check_window(window, "`window`"), check_window(baseline, "`baseline`")
    if baseline_event not in ("first", "outcome"):
        raise InputError(f"`baseline_event` {baseline_event!r}: choose first or outcome")
    path = Path(path)
    truth = None
    if signal == "units":
        if path.suffix.lower() != ".nwb":
            raise InputError(f"{path}: `signal` units reads NWB files; use `signal` table for CSV/TSV")
        from dopa_rl.io import nwb
        from dopa_rl.neural.spikes import named_units, window_rates

        with nwb.NWBSession(path) as s:
            df = s.behavior(columns=dict(columns or {}) or None, trials_table=trials_table, validate=False)
            keep, mag, types, counts = _clean(df, magnitude_column, cued_column, str(path), True)
            trains = s.units()
        ids = list(trains)
        if units is not None:
            ids = named_units(trains, units, str(path))
        if not ids:
            raise InputError(f"{path}: the file has no units")
        t = pd.to_numeric(df["outcome_time"], errors="coerce").to_numpy(float)[keep]
        first = t
        if baseline_event == "first" and "cue_time" in df.columns:
            cue = pd.to_numeric(df["cue_time"], errors="coerce").to_numpy(float)[keep]
            first = np.where(np.isfinite(cue) & (cue <= t), cue, t)     # the trial's first event
        resp = (window_rates(trains, t, window, ids).to_numpy(float)
                - window_rates(trains, first, baseline, ids).to_numpy(float))
        names = [str(u) for u in ids]
        truth = _truth(path)
    elif signal == "table":
        from dopa_rl.io.behavior import read_table

        df = read_table(path)
        if columns:
            df = df.rename(columns={v: k for k, v in columns.items()})
        keep, mag, types, counts = _clean(df, magnitude_column, cued_column, str(path), False)
        cols = [c for c in df.columns if str(c).startswith(unit_prefix)]
        if not cols:
            raise InputError(f"{path}: no unit columns '{unit_prefix}<id>' (set the prefix with `unit_prefix`)")
        resp = df[cols].apply(pd.to_numeric, errors="coerce").to_numpy(float)[keep]
        names = [str(c)[len(unit_prefix):] for c in cols]
        if units is not None:
            sel = [names.index(str(u)) for u in units if str(u) in names]
            if len(sel) != len(units):
                raise InputError(f"{path}: `units` names units not in the table; units are {', '.join(names)}")
            resp, names = resp[:, sel], [names[i] for i in sel]
    else:
        raise InputError(f"`signal` {signal!r}: choose units or table")
    if keep.sum() < 4:
        raise InputError(f"{path}: only {int(keep.sum())} usable trials of {keep.size} (excluded: "
                         f"{', '.join(f'{k} {v}' for k, v in counts.items()) or 'none'})")
    return {"label": path.stem, "file": str(path), "responses": resp, "magnitudes": mag[keep],
            "trial_type": None if types is None else types[keep], "unit_names": names, "excluded": counts,
            "n_read": int(keep.size), "truth": truth}


def _truth(path: Path):
    from dopa_rl.io.nwb_read import read_true_parameters

    try:
        tp = read_true_parameters(path)
    except InputError:
        return None
    if "magnitudes" not in tp:
        return None
    return {"magnitudes": tp["magnitudes"], "probabilities": tp.get("probabilities"), "tau": tp.get("tau")}
