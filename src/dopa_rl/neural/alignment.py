"""Peri-event windows: trial x time matrices aligned to events, and per-trial response measures.

Events whose window does not fit in the recording, and missing (NaN) event times, are excluded and
counted (``PeriEvent.excluded``), never filled with made-up numbers.  Only the windows are copied out of
the trace (fancy indexing of ``n_events x n_samples`` values), never the whole trace.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dopa_rl.errors import InputError

__all__ = ["PeriEvent", "peri_event_matrix", "window_measures", "window_indices", "check_window"]


@dataclass
class PeriEvent:
    """Event-aligned samples: ``matrix[i]`` is the trace around ``events[kept][i]`` on the ``time`` axis.

    ``kept`` [n_events] says which events have a full window; ``excluded`` counts the others by reason
    (``missing``: NaN event time, ``outside``: window beyond the recording).
    """

    matrix: np.ndarray
    time: np.ndarray
    events: np.ndarray
    kept: np.ndarray
    excluded: dict[str, int] = field(default_factory=dict)

    @property
    def n_events(self) -> int:
        return int(self.kept.sum())

    def full(self) -> np.ndarray:
        """The matrix with one row per given event; excluded events are rows of NaN (for per-trial tables)."""
        out = np.full((len(self.events), len(self.time)), np.nan)
        out[self.kept] = self.matrix
        return out

    def mean(self) -> np.ndarray:
        if self.n_events == 0:
            raise InputError("no event has a full window inside the recording; nothing to average")
        return self.matrix.mean(axis=0)

    def sem(self) -> np.ndarray:
        n = self.n_events
        return self.matrix.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.zeros(len(self.time))


def check_window(window, option: str = "`window`") -> tuple[float, float]:
    """``(start, stop)`` as floats with stop > start, else an InputError naming the option."""
    lo, hi = float(window[0]), float(window[1])
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
        raise InputError(f"{option} {lo:g} {hi:g}: the end must come after the start")
    return lo, hi


def window_indices(window: tuple[float, float], rate: float) -> np.ndarray:
    """Sample offsets of ``window`` (seconds, inclusive both ends) at ``rate``."""
    lo, hi = float(window[0]), float(window[1])
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
        raise InputError(f"`window` {lo:g} {hi:g}: the end must come after the start")
    if not rate or not np.isfinite(rate) or rate <= 0:
        raise InputError(f"sampling rate {rate!r} must be a positive number")
    return np.arange(int(np.round(lo * rate)), int(np.round(hi * rate)) + 1)


def peri_event_matrix(values: np.ndarray, events, window: tuple[float, float] = (-1.0, 3.0), *,
                      rate: float, t0: float = 0.0, warn: bool = True) -> PeriEvent:
    """Trial x time matrix of ``values`` around ``events``.

    Parameters
    ----------
    values : numpy.ndarray
        A trace sampled regularly at ``rate`` from time ``t0``.
    events : array_like
        Event times (s).
    window : (float, float), default (-1.0, 3.0)
        Start and end of the window around each event (s).
    rate : float
        Sampling rate of ``values`` (Hz).
    t0 : float, default 0.0
        Time of the first sample (s).
    warn : bool, default True
        Warn when events fall outside the recording.

    Returns
    -------
    PeriEvent
        The matrix (one row per event, NaN for excluded ones), its time axis and the exclusion counts.

    Raises
    ------
    InputError
        The trace is shorter than the window.
    """
    values = np.asarray(values)
    events = np.atleast_1d(np.asarray(events, dtype=float))
    offsets = window_indices(window, rate)
    n = values.shape[0]
    if n < offsets.size:
        raise InputError(f"signal has {n} samples ({n / rate:.3g} s) but the event window "
                         f"{window[0]:g} to {window[1]:g} s needs {offsets.size}; use a shorter `window`")
    finite = np.isfinite(events)
    centre = np.zeros(len(events), dtype=np.int64)
    centre[finite] = np.round((events[finite] - t0) * rate).astype(np.int64)
    inside = finite & (centre + offsets[0] >= 0) & (centre + offsets[-1] < n)
    excluded = {}
    if (~finite).any():
        excluded["missing"] = int((~finite).sum())
    if (finite & ~inside).any():
        excluded["outside"] = int((finite & ~inside).sum())
        if warn:
            warnings.warn(f"{excluded['outside']} of {len(events)} event(s) have their {window[0]:g} to {window[1]:g} s "
                          f"window outside the recording ({t0:.6g} to {t0 + (n - 1) / rate:.6g} s); excluded",
                          stacklevel=2)
    idx = centre[inside, None] + offsets[None, :]
    matrix = values[idx].astype(float, copy=False)
    return PeriEvent(matrix, offsets / rate, events, inside, excluded)


def window_measures(matrix: np.ndarray, time: np.ndarray, window: tuple[float, float] = (0.0, 1.0),
                    baseline: tuple[float, float] | None = (-1.0, 0.0)) -> pd.DataFrame:
    """Per-trial response measures in ``window``, baseline-subtracted.

    Parameters
    ----------
    matrix : numpy.ndarray
        Trials x time (a :func:`peri_event_matrix`).
    time : numpy.ndarray
        Its time axis (s).
    window : (float, float), default (0.0, 1.0)
        Response window (s on ``time``).
    baseline : (float, float) or None, default (-1.0, 0.0)
        Baseline window; None subtracts nothing.

    Returns
    -------
    pandas.DataFrame
        One row per trial: ``mean`` (mean in window minus mean in baseline), ``peak`` (largest
        baseline-subtracted value), ``peak_time`` (s), ``auc`` (integral of the baseline-subtracted trace,
        units x s).  Rows of NaN (excluded trials) give NaN measures.
    """
    matrix = np.atleast_2d(np.asarray(matrix, dtype=float))
    time = np.asarray(time, dtype=float)
    w = (time >= window[0]) & (time <= window[1])
    if not w.any():
        raise InputError(f"response window {window[0]:g} to {window[1]:g} s holds no sample of the trace "
                         f"({time[0]:g} to {time[-1]:g} s)")
    if baseline is not None:
        b = (time >= baseline[0]) & (time < baseline[1])
        if not b.any():
            raise InputError(f"baseline window {baseline[0]:g} to {baseline[1]:g} s holds no sample of the trace "
                             f"({time[0]:g} to {time[-1]:g} s)")
        base = matrix[:, b].mean(axis=1)
    else:
        base = np.zeros(matrix.shape[0])
    seg = matrix[:, w] - base[:, None]
    tw = time[w]
    dt = float(np.median(np.diff(time))) if len(time) > 1 else 0.0
    ok = np.isfinite(seg).all(axis=1)
    peak = np.full(len(seg), np.nan)
    peak_t = np.full(len(seg), np.nan)
    if ok.any():
        j = np.argmax(seg[ok], axis=1)
        peak[ok] = seg[ok][np.arange(ok.sum()), j]
        peak_t[ok] = tw[j]
    return pd.DataFrame({"mean": seg.mean(axis=1), "peak": peak, "peak_time": peak_t,
                         "auc": seg.sum(axis=1) * dt})
