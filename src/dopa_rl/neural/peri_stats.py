"""Per-trial window measures and bootstrap bands of event-aligned photometry (docs/dopamine.md).

* :func:`parse_span` / :func:`parse_named_window`: ``START:STOP`` and ``NAME=START:STOP`` (seconds);
* :func:`window_table`: per trial and named window, the peak, its time and the area under the curve of the
  baseline-subtracted trace, integrated exactly over ``[start, stop]`` (trapezoid rule on the samples, the
  trace linearly interpolated at the two ends), so a z-scored trace gives the AUC in z x s (GuPPy #366);
* :func:`bootstrap_band`: the mean over trials of the baseline-subtracted trace with a percentile
  bootstrap band per time point (trials resampled with replacement, ``scipy.stats.bootstrap``), and the
  times where the band excludes 0, i.e. where the mean differs from its own pre-event baseline.

Pure functions over arrays; inputs are never modified.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dopa_rl.errors import InputError

__all__ = ["parse_span", "parse_named_window", "window_table", "bootstrap_band", "BootstrapBand",
           "WINDOW_COLUMNS"]

WINDOW_COLUMNS = ("trial", "window", "start_s", "stop_s", "peak", "peak_time", "auc", "mean")


def parse_span(text: str, option: str = "`span`") -> tuple[float, float]:
    """``"START:STOP"`` (seconds) as floats with STOP > START, else an InputError naming ``option``."""
    parts = str(text).split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        lo, hi = float(parts[0]), float(parts[1])
    except ValueError:
        raise InputError(f"{option} {text!r}: expected START:STOP in seconds (e.g. 0:1.5)") from None
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
        raise InputError(f"{option} {text!r}: the end must come after the start")
    return lo, hi


def parse_named_window(text: str, option: str = "`window`") -> tuple[str, tuple[float, float]]:
    """``"NAME=START:STOP"`` as ``(name, (start, stop))``; the name is letters, digits, ``_`` or ``-``."""
    name, sep, span = str(text).partition("=")
    name = name.strip()
    if not sep or not name or not all(ch.isalnum() or ch in "_-" for ch in name):
        raise InputError(f"{option} {text!r}: expected NAME=START:STOP (e.g. cue=0:1), NAME of letters, digits, _ or -")
    return name, parse_span(span, f"{option} {name}")


def _at(matrix: np.ndarray, time: np.ndarray, x: float) -> np.ndarray:
    """Each row linearly interpolated at time ``x`` (inside ``time``)."""
    j = int(np.clip(np.searchsorted(time, x, side="right") - 1, 0, len(time) - 2))
    frac = (x - time[j]) / (time[j + 1] - time[j])
    return matrix[:, j] * (1.0 - frac) + matrix[:, j + 1] * frac


def window_table(matrix: np.ndarray, time: np.ndarray, windows: dict[str, tuple[float, float]], *,
                 baseline: tuple[float, float] | None = (-1.0, 0.0), trial_ids=None) -> pd.DataFrame:
    """Peak, peak time, AUC and mean of each trial's baseline-subtracted trace in each named window.

    Parameters
    ----------
    matrix : ndarray
        Trials x time (one row per kept event), e.g. ``PeriEvent.matrix`` of a z-scored trace.
    time : ndarray
        Time of each column relative to the event (s), increasing, at least 2 samples.
    windows : dict
        ``{name: (start, stop)}`` seconds relative to the event; each must lie inside ``time``.
    baseline : (float, float) or None
        Per-trial baseline: the mean of the samples in ``[start, stop)`` is subtracted first; None: nothing.
    trial_ids : array-like, optional
        Id of each row (default 0, 1, ...).

    Returns
    -------
    DataFrame
        One row per trial and window, columns :data:`WINDOW_COLUMNS`: ``peak`` (largest value, at a sample
        or at a window end), ``peak_time`` (s from the event), ``auc`` (integral over the window, units of
        the trace x s) and ``mean`` (``auc`` / window length).
    """
    matrix = np.atleast_2d(np.asarray(matrix, dtype=float))
    time = np.asarray(time, dtype=float)
    if len(time) < 2 or matrix.shape[1] != len(time):
        raise InputError(f"window table: the matrix has {matrix.shape[1]} columns but the time axis {len(time)} "
                         "(at least 2 needed)")
    if not windows:
        raise InputError("window table: no window given; name one as NAME=START:STOP")
    ids = np.arange(matrix.shape[0]) if trial_ids is None else np.asarray(trial_ids)
    if len(ids) != matrix.shape[0]:
        raise InputError(f"window table: {len(ids)} trial ids for {matrix.shape[0]} trials")
    if baseline is not None:
        b = (time >= baseline[0]) & (time < baseline[1])
        if not b.any():
            raise InputError(f"`baseline` {baseline[0]:g} {baseline[1]:g}: holds no sample of the event window "
                             f"({time[0]:g} to {time[-1]:g} s)")
        seg = matrix - matrix[:, b].mean(axis=1, keepdims=True)
    else:
        seg = matrix
    frames = []
    eps = 1e-9 * max(1.0, float(np.abs(time).max()))
    for name, (lo, hi) in windows.items():
        if lo < time[0] - eps or hi > time[-1] + eps:
            raise InputError(f"`window` {name}={lo:g}:{hi:g} reaches outside the event window "
                             f"({time[0]:g} to {time[-1]:g} s)")
        lo, hi = max(lo, time[0]), min(hi, time[-1])
        inner = (time > lo) & (time < hi)
        xs = np.concatenate([[lo], time[inner], [hi]])
        ys = np.column_stack([_at(seg, time, lo), seg[:, inner], _at(seg, time, hi)])
        auc = np.trapezoid(ys, xs, axis=1)
        j = np.argmax(ys, axis=1)
        frames.append(pd.DataFrame({"trial": ids, "window": name, "start_s": lo, "stop_s": hi,
                                    "peak": ys[np.arange(len(ys)), j], "peak_time": xs[j], "auc": auc,
                                    "mean": auc / (hi - lo)}))
    return pd.concat(frames, ignore_index=True)[list(WINDOW_COLUMNS)]


@dataclass(frozen=True)
class BootstrapBand:
    """Mean over trials and its bootstrap band per time point; ``excludes``: band excludes 0 (the baseline)."""

    time: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    level: float
    n_trials: int
    n_boot: int

    @property
    def excludes(self) -> np.ndarray:
        return (self.low > 0) | (self.high < 0)

    def intervals(self) -> list[tuple[float, float]]:
        """``(first, last)`` time of each run of consecutive points where the band excludes 0."""
        ex = self.excludes.astype(int)
        edges = np.diff(np.concatenate([[0], ex, [0]]))
        starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
        return [(float(self.time[a]), float(self.time[b])) for a, b in zip(starts, stops)]


def bootstrap_band(matrix: np.ndarray, time: np.ndarray, *, baseline: tuple[float, float] = (-1.0, 0.0),
                   n_boot: int = 2000, level: float = 0.95, seed: int | None = 0) -> BootstrapBand:
    """Bootstrap band of the trial mean of ``matrix`` after subtracting each trial's baseline mean.

    Parameters
    ----------
    matrix : ndarray
        Trials x time (at least 2 trials, finite).
    time : ndarray
        Time of each column relative to the event (s).
    baseline : (float, float)
        Each trial's mean over ``[start, stop)`` is subtracted, so the band is on the change from baseline and
        a band that excludes 0 marks a time where the mean differs from the pre-event baseline.
    n_boot : int
        Bootstrap resamples of the trials (percentile method of ``scipy.stats.bootstrap``).
    level : float
        Confidence level of the band (0 < level < 1).
    seed : int or None
        Seed of the resampling.

    Returns
    -------
    BootstrapBand
    """
    from scipy.stats import bootstrap

    matrix = np.atleast_2d(np.asarray(matrix, dtype=float))
    time = np.asarray(time, dtype=float)
    if matrix.shape[0] < 2:
        raise InputError(f"bootstrap band: {matrix.shape[0]} trial(s); at least 2 are needed")
    if not np.isfinite(matrix).all():
        raise InputError("bootstrap band: the matrix has NaN rows (excluded trials); pass the kept trials only")
    if not 0 < level < 1:
        raise InputError(f"`level` {level:g}: must be between 0 and 1")
    if int(n_boot) < 100:
        raise InputError(f"`n_boot` {n_boot}: at least 100 resamples are needed for a 95% band")
    b = (time >= baseline[0]) & (time < baseline[1])
    if not b.any():
        raise InputError(f"`baseline` {baseline[0]:g} {baseline[1]:g}: holds no sample of the event window "
                         f"({time[0]:g} to {time[-1]:g} s)")
    d = matrix - matrix[:, b].mean(axis=1, keepdims=True)
    batch = max(1, int(2e7 // max(1, d.size)))        # about 160 MB of resamples at a time
    res = bootstrap((d,), np.mean, n_resamples=int(n_boot), axis=0, vectorized=True, method="percentile",
                    confidence_level=level, rng=np.random.default_rng(seed), batch=batch)
    return BootstrapBand(time, d.mean(axis=0), np.asarray(res.confidence_interval.low),
                         np.asarray(res.confidence_interval.high), float(level), int(d.shape[0]), int(n_boot))
