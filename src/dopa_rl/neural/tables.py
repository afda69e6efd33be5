"""Per-trial dopamine tables: responses at cue and outcome from photometry, units or a lab's own table.

Shapes:

* **wide** (one row per trial): the behavior table plus ``dopamine_cue`` / ``dopamine_outcome``;
* **long** (one row per trial, event and unit): ``subject, session, trial, unit, event, response`` (and
  ``rpe`` once a model has been run), what :mod:`dopa_rl.neural.regression` takes.

Real tables are messy (:func:`prepare_trials`): trials without a cue (empty cue or no cue time: free,
uncued rewards) get the empty compound, which no cue predicts (value 0); trials with a missing outcome time
or reward are excluded and counted.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

from dopa_rl.errors import InputError
from dopa_rl.neural.alignment import peri_event_matrix, window_measures

__all__ = ["prepare_trials", "matrix_from_table", "responses_from_matrix", "responses_from_trace",
           "responses_from_units", "to_long", "EVENTS", "DEFAULT_WINDOWS"]

EVENTS = ("cue", "outcome")
#: response window and baseline (seconds from the event) per event
DEFAULT_WINDOWS = {"window": (0.0, 0.5), "baseline": (-0.5, 0.0)}


def _empty(v) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or (isinstance(v, str) and not v.strip()) or v is pd.NA


def prepare_trials(df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Mark uncued trials and drop incomplete ones; returns the table and the counts of what was done.

    Counts: ``uncued`` (cue set to ``""``), ``missing_reward`` and ``missing_outcome_time`` (rows dropped).
    """
    df = df.copy()
    counts = {"uncued": 0, "missing_reward": 0, "missing_outcome_time": 0}
    if "cue" in df.columns:
        uncued = np.array(df["cue"].map(_empty).to_numpy(dtype=bool))
        if "cue_time" in df.columns:
            uncued |= ~np.isfinite(pd.to_numeric(df["cue_time"], errors="coerce").to_numpy(dtype=float))
        counts["uncued"] = int(uncued.sum())
        df["cue"] = df["cue"].astype(object)
        df.loc[uncued, "cue"] = ""
    drop = np.zeros(len(df), dtype=bool)
    if "reward" in df.columns:
        r = pd.to_numeric(df["reward"], errors="coerce").to_numpy(dtype=float)
        miss = ~np.isfinite(r)
        counts["missing_reward"] = int(miss.sum())
        drop |= miss
    if "outcome_time" in df.columns:
        o = pd.to_numeric(df["outcome_time"], errors="coerce").to_numpy(dtype=float)
        miss = ~np.isfinite(o) & ~drop
        counts["missing_outcome_time"] = int(miss.sum())
        drop |= miss
    out = df.loc[~drop].reset_index(drop=True)
    if len(out) == 0:
        raise InputError(f"no trial is complete: {counts['missing_reward']} without a reward and "
                         f"{counts['missing_outcome_time']} without an outcome time")
    return out, counts


def matrix_from_table(df: pd.DataFrame, prefix: str, rate: float, event_at: float) -> tuple[np.ndarray, np.ndarray]:
    """The trial x time matrix held in columns ``PREFIX.1 ... PREFIX.N`` (also ``PREFIX_1``, ``PREFIX1``),
    sampled at ``rate`` Hz with the event ``event_at`` seconds after the first column; returns the matrix and
    its time axis (seconds from the event)."""
    if not rate or rate <= 0:
        raise InputError(f"`rate` {rate}: the matrix sampling rate must be positive (Hz)")
    pat = re.compile(rf"^{re.escape(prefix)}[._]?(\d+)$")
    cols = sorted(((int(m.group(1)), c) for c in map(str, df.columns) if (m := pat.match(c))))
    if not cols:
        raise InputError(f"`matrix` {prefix}: no columns named {prefix}.1, {prefix}.2, ... in the table "
                         f"(columns: {', '.join(map(str, df.columns[:8]))}{' ...' if len(df.columns) > 8 else ''})")
    names = [c for _, c in cols]
    try:
        matrix = df[names].apply(pd.to_numeric, errors="raise").to_numpy(dtype=float)
    except (ValueError, TypeError):
        raise InputError(f"`matrix` {prefix}: the {prefix}.* columns hold text, expected numbers") from None
    time = (np.array([k for k, _ in cols], dtype=float) - cols[0][0]) / rate - event_at
    if not (time[0] <= 0 <= time[-1]):
        raise InputError(f"`event_at` {event_at:g}: outside the matrix, which spans 0 to {(len(names) - 1) / rate:g} s")
    return matrix, time


def responses_from_matrix(matrix: np.ndarray, time: np.ndarray, window=DEFAULT_WINDOWS["window"],
                          baseline=DEFAULT_WINDOWS["baseline"], measure: str = "mean") -> np.ndarray:
    """One response per trial (row): ``mean`` / ``peak`` / ``auc`` of :func:`window_measures`."""
    m = window_measures(matrix, time, window, baseline)
    if measure not in m.columns:
        raise InputError(f"`measure` {measure!r}: choose mean, peak, peak_time or auc")
    return m[measure].to_numpy()


def responses_from_trace(values: np.ndarray, rate: float, t0: float, trials: pd.DataFrame, *,
                         window=DEFAULT_WINDOWS["window"], baseline=DEFAULT_WINDOWS["baseline"],
                         measure: str = "mean") -> tuple[pd.DataFrame, dict[str, int]]:
    """``dopamine_cue`` / ``dopamine_outcome`` per trial from a continuous trace (e.g. z-scored dF/F) at
    ``cue_time`` / ``outcome_time``.  Windows beyond the recording give NaN (counted as ``outside_cue`` ...)."""
    span = (min(window[0], baseline[0] if baseline else window[0]), max(window[1], baseline[1] if baseline else 0))
    out = trials.copy()
    counts: dict[str, int] = {}
    for ev in EVENTS:
        col = f"{ev}_time"
        if col not in trials.columns:
            out[f"dopamine_{ev}"] = np.nan
            continue
        pe = peri_event_matrix(values, trials[col].to_numpy(float), span, rate=rate, t0=t0)
        out[f"dopamine_{ev}"] = responses_from_matrix(pe.full(), pe.time, window, baseline, measure)
        if pe.excluded.get("outside"):
            counts[f"outside_{ev}"] = pe.excluded["outside"]
    return out, counts


def responses_from_units(trains: Mapping, trials: pd.DataFrame, *, window=(0.0, 0.5), baseline=(-0.5, 0.0),
                         units=None) -> pd.DataFrame:
    """Long table of baseline-subtracted firing rates (Hz) per unit at cue and outcome."""
    from dopa_rl.neural.spikes import window_rates

    ids = list(trains) if units is None else list(units)
    frames = []
    for ev in EVENTS:
        col = f"{ev}_time"
        if col not in trials.columns:
            continue
        t = trials[col].to_numpy(float)
        resp = window_rates(trains, t, window, ids) - window_rates(trains, t, baseline, ids).to_numpy()
        for u in ids:
            frames.append(pd.DataFrame({**_ids(trials), "unit": str(u), "event": ev, "response": resp[u].to_numpy()}))
    if not frames:
        raise InputError("trials table has neither cue_time nor outcome_time; cannot align spikes to trials")
    return pd.concat(frames, ignore_index=True)


def _ids(trials: pd.DataFrame) -> dict:
    return {c: trials[c].to_numpy() for c in ("subject", "session", "trial") if c in trials.columns}


def to_long(wide: pd.DataFrame) -> pd.DataFrame:
    """Wide ``dopamine_cue``/``dopamine_outcome`` columns -> the long table (``unit`` None)."""
    frames = []
    for ev in EVENTS:
        col = f"dopamine_{ev}"
        if col in wide.columns:
            frames.append(pd.DataFrame({**_ids(wide), "unit": None, "event": ev,
                                        "response": pd.to_numeric(wide[col], errors="coerce").to_numpy(float)}))
    if not frames:
        raise InputError("the table has no dopamine_cue or dopamine_outcome column (map yours with `columns` "
                         "dopamine_cue=NAME,dopamine_outcome=NAME, or give `matrix` PREFIX)")
    return pd.concat(frames, ignore_index=True)
