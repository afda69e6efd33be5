"""Dopamine responses per trial from files: NWB photometry or units, or a lab's table (``--signal table``).

:func:`load_responses` gives, for one or many files, the cleaned trial table (one row per trial), the
long response table (trial x event x unit) and the counts of everything excluded on the way; it is the
shared front end of ``dopa-rl regress``, the neural fits and ``examples/analyze_dopamine.py``.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dopa_rl.errors import InputError
from dopa_rl.neural.pipeline import PhotometryPipeline
from dopa_rl.neural.tables import (DEFAULT_WINDOWS, matrix_from_table, prepare_trials, responses_from_matrix,
                                   responses_from_trace, responses_from_units, to_long)

__all__ = ["DopamineData", "load_responses", "SIGNALS"]

SIGNALS = ("photometry", "units", "table")
DOPAMINE_COLUMNS = ("dopamine_cue", "dopamine_outcome")


@dataclass
class DopamineData:
    """``trials``: the cleaned behavior table with ``dopamine_cue``/``dopamine_outcome`` (photometry and
    tables; for units, the mean over units); ``long``: one row per trial, event and unit; ``excluded``:
    counts by reason; ``steps``: the preprocessing pipeline(s) run; ``processed``: per-file outputs."""

    trials: pd.DataFrame
    long: pd.DataFrame
    signal: str
    excluded: dict[str, int] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)
    processed: list[Any] = field(default_factory=list)
    matrices: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)


def _add(total: dict[str, int], counts: Mapping[str, int]) -> None:
    for k, v in counts.items():
        if v:
            total[k] = total.get(k, 0) + int(v)


def _split_columns(columns: Mapping[str, str] | None) -> tuple[dict[str, str], dict[str, str]]:
    cols = dict(columns or {})
    dop = {k: cols.pop(k) for k in list(cols) if k in DOPAMINE_COLUMNS}
    return cols, dop


def load_responses(paths, signal: str = "photometry", *, columns: Mapping[str, str] | None = None,
                   trials_table: str | None = None, pipeline: PhotometryPipeline | None = None,
                   series: str | None = None, window=DEFAULT_WINDOWS["window"], baseline=DEFAULT_WINDOWS["baseline"],
                   measure: str = "mean", matrix: str | None = None, rate: float | None = None,
                   event_at: float | None = None, units=None, choice_base: int = 0,
                   n_options: int | None = None) -> DopamineData:
    """Read trials and dopamine responses from each file in ``paths`` (see the module docstring).

    ``columns``, ``trials_table``, ``choice_base`` and ``n_options`` are the behaviour-table options of
    :func:`dopa_rl.io.behavior.load_behavior`; the trials pass the same validator."""
    from dopa_rl.io.behavior import expand_paths, normalize_behavior, read_table, ID_COLUMNS

    from dopa_rl.neural.alignment import check_window

    window, baseline = check_window(window, "`window`"), check_window(baseline, "`baseline`")
    if signal not in SIGNALS:
        raise InputError(f"`signal` {signal!r}: choose one of {', '.join(SIGNALS)}")
    if matrix is not None and (rate is None or event_at is None):
        raise InputError("`matrix` PREFIX needs `rate` HZ and `event_at` SECONDS")
    files = expand_paths(paths)
    std_cols, dop_cols = _split_columns(columns)
    excluded: dict[str, int] = {}
    trials_all, long_all, steps, processed, matrices = [], [], [], [], []
    for path in files:
        nwb_file = path.suffix.lower() == ".nwb"
        if signal == "table":
            if nwb_file:
                raise InputError(f"{path}: `signal` table reads CSV/TSV tables; use `signal` photometry|units for NWB")
            raw = read_table(path, [std_cols.get(c, c) for c in ID_COLUMNS])
            raw = raw.rename(columns={v: k for k, v in dop_cols.items()})
            missing = [f"'{v}' (for {k})" for k, v in dop_cols.items() if k not in raw.columns]
            if missing:
                raise InputError(f"{path}: no column {', '.join(missing)}")
            rev = {v: k for k, v in std_cols.items()}
            raw, counts = prepare_trials(raw.rename(columns=rev))
            trials = normalize_behavior(raw, source=str(path), choice_base=choice_base, n_options=n_options,
                                            renamed=std_cols)
            if len(files) > 1 and "session" not in raw.columns:
                trials["session"] = path.stem
            if matrix is not None:
                mat, time = matrix_from_table(trials, matrix, rate, event_at)
                trials["dopamine_cue"] = responses_from_matrix(mat, time, window, baseline, measure)
                matrices.append((mat, time))
                steps.append({"step": "matrix", "prefix": matrix, "rate_hz": rate, "event_at_s": event_at,
                              "window": list(window), "baseline": list(baseline), "measure": measure})
                trials = trials.drop(columns=[c for c in trials.columns if str(c).startswith(matrix)])
            elif not any(c in trials.columns for c in DOPAMINE_COLUMNS):
                raise InputError(f"{path}: no dopamine_cue or dopamine_outcome column (map yours with `columns` "
                                 "dopamine_cue=NAME) and no `matrix` PREFIX")
            _add(excluded, counts)
            long = to_long(trials)
        else:
            if not nwb_file:
                raise InputError(f"{path}: `signal` {signal} reads NWB files; use `signal` table for CSV/TSV")
            from dopa_rl.io import nwb

            with nwb.NWBSession(path) as s:
                raw = s.behavior(columns=std_cols or None, trials_table=trials_table, validate=False)
                raw, counts = prepare_trials(raw)
                _add(excluded, counts)
                trials = normalize_behavior(raw, source=str(path), choice_base=choice_base, n_options=n_options,
                                            renamed=std_cols)
                for col in ("cue_time", "outcome_time", "start_time", "stop_time"):
                    if col in raw.columns:
                        trials[col] = raw[col].to_numpy(float)
                if signal == "photometry":
                    phot = s.photometry(series)
                    proc = (pipeline or PhotometryPipeline()).run(phot)
                    processed.append(proc)
                    steps.append({"file": str(path), "series": proc.name, "steps": proc.steps})
                    trials, counts = responses_from_trace(proc.z, proc.rate, proc.t0, trials, window=window,
                                                          baseline=baseline, measure=measure)
                    _add(excluded, counts)
                    long = to_long(trials)
                else:
                    trains = s.units()
                    if units == "auto":
                        from dopa_rl.neural.spikes import select_dopamine_units

                        rewarded = trials.loc[trials["reward"].to_numpy() > 0, "outcome_time"].to_numpy(float)
                        ids = select_dopamine_units(trains, rewarded, window=window, baseline=baseline)
                        if not ids:
                            raise InputError(f"{path}: no unit's reward response exceeds its baseline "
                                             "(`units` auto); name units with `units` ID,...")
                    elif units is not None:
                        from dopa_rl.neural.spikes import named_units

                        ids = named_units(trains, units, str(path))
                    else:
                        ids = list(trains)
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always")
                        long = responses_from_units(trains, trials, window=window, baseline=baseline, units=ids)
                    silent = sorted({str(w.message).split()[1] for w in caught if "no spikes" in str(w.message)})
                    if silent:
                        warnings.warn(f"{path}: unit(s) {', '.join(silent)} have no spikes (rates 0)", stacklevel=2)
                        _add(excluded, {"silent_units": len(silent)})
                    mean = long.groupby(["event", "trial"], sort=False)["response"].mean()
                    for ev in ("cue", "outcome"):
                        if ev in mean.index.get_level_values(0):
                            trials[f"dopamine_{ev}"] = trials["trial"].map(mean[ev]).to_numpy(float)
                    processed.append({"file": str(path), "units": [str(u) for u in ids]})
        trials_all.append(trials)
        long_all.append(long)
    trials = pd.concat(trials_all, ignore_index=True)
    if len(files) > 1:
        from dopa_rl.io.behavior import check_unique_trials

        check_unique_trials(trials, ", ".join(map(str, files[:3])) + (" ..." if len(files) > 3 else ""))
    long = pd.concat(long_all, ignore_index=True)
    for k in ("subject", "session"):
        if k in long.columns:
            long[k] = long[k].astype(str)
    return DopamineData(trials, long, signal, excluded, steps, processed, matrices)


def event_times(session: Any, name: str | None, trials_table: str | None = None) -> tuple[str, np.ndarray]:
    """Event times from an open :class:`dopa_rl.io.nwb.NWBSession`: an events table by name, or a time column
    of the trials table (``cue_time``...).  ``name=None``: the trials' ``cue_time``, else the only events table."""
    from dopa_rl.io.nwb_read import interval_tables, table_to_frame

    events = session.events()
    tables = interval_tables(session.nwbfile)
    tname = trials_table or "trials"
    trials = table_to_frame(tables[tname]) if tname in tables else None
    if trials_table and trials is None:
        raise InputError(f"{session.path}: no interval table named '{trials_table}'")
    if name is None:
        if trials is not None and "cue_time" in trials.columns:
            return "cue_time", trials["cue_time"].to_numpy(float)
        if len(events) == 1:
            return next(iter(events.items()))
        raise InputError(f"{session.path}: say which event to align to with `event` NAME (events tables: "
                         f"{', '.join(events) or 'none'}; trials columns: "
                         f"{', '.join(c for c in (trials.columns if trials is not None else []) if 'time' in c) or 'none'})")
    if name in events:
        return name, np.asarray(events[name], float)
    if trials is not None and name in trials.columns:
        col = pd.to_numeric(trials[name], errors="coerce")
        if col.isna().all():
            raise InputError(f"{session.path}: trials column '{name}' holds no times")
        return name, col.to_numpy(float)
    cols = [c for c in (trials.columns if trials is not None else []) if "time" in str(c)]
    raise InputError(f"{session.path}: no events table or trials column named '{name}' (events tables: "
                     f"{', '.join(events) or 'none'}; trials time columns: {', '.join(cols) or 'none'})")
