"""Clock alignment from random-interval sync pulses (pure: numpy arrays in, a mapping out).

The rig sends TTL sync pulses at random intervals; another system (photometry, electrophysiology, a camera)
records them on its own clock.  Because the intervals are random, a short run of consecutive intervals is a
fingerprint that occurs once in the whole sequence, so pulses are matched by their intervals, not by their
order, and dropped or extra pulses on either side cost only the runs they fall in (the method of pyControl's
``Rsync`` aligner, written anew here):

1. intervals of both sequences (seconds on both clocks; drift changes an interval by ppm, far below the
   tolerance);
2. every run of ``chunk`` consecutive intervals of the other system is compared with every run of the rig's
   (root mean square difference); a run is matched when its best fit is within ``tolerance_s`` and the next
   best is not (an unambiguous fingerprint);
3. a straight line ``t_other = offset_s + (1 + drift_ppm * 1e-6) * t_rig`` is fitted to the matched pulses by
   least squares, repeated with pairs further than ``max(5 x MAD, 2 x jitter floor)`` from the line removed;
4. every pulse of either side is then paired with its nearest partner under the line (within ``tolerance_s``),
   which recovers pulses next to a dropped one, and the line is fitted once more to those pairs.

``residual_ms`` is the root mean square of the final pairs' distances from the line, on the rig's clock.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from dopa_rl.errors import InputError

__all__ = ["ClockMapping", "align_pulses", "random_intervals"]


@dataclass(frozen=True)
class ClockMapping:
    """``t_other = offset_s + (1 + drift_ppm * 1e-6) * t_rig``; :meth:`to_rig` maps the other clock's times
    onto the rig's, :meth:`to_other` the other way."""

    offset_s: float
    drift_ppm: float
    residual_ms: float
    n_matched: int
    n_rig: int
    n_other: int
    rig_matched: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    other_matched: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))

    @property
    def scale(self) -> float:
        return 1.0 + self.drift_ppm * 1e-6

    def to_rig(self, t_other) -> np.ndarray:
        return (np.asarray(t_other, dtype=float) - self.offset_s) / self.scale

    def to_other(self, t_rig) -> np.ndarray:
        return self.offset_s + self.scale * np.asarray(t_rig, dtype=float)

    def summary(self) -> dict:
        return {"offset_s": self.offset_s, "drift_ppm": self.drift_ppm, "residual_ms": self.residual_ms,
                "n_matched": self.n_matched, "n_rig": self.n_rig, "n_other": self.n_other}


def random_intervals(n: int, rng: np.random.Generator, *, min_s: float = 1.0, max_s: float = 5.0) -> np.ndarray:
    """``n`` sync-pulse intervals drawn uniformly in [``min_s``, ``max_s``] (what the rig sends).

    Parameters
    ----------
    n : int
        Number of intervals.
    rng : numpy.random.Generator
        The randomness.
    min_s, max_s : float, default 1.0 and 5.0
        Bounds of the intervals (s).

    Returns
    -------
    numpy.ndarray
        The intervals (s).
    """
    return rng.uniform(min_s, max_s, size=n)


def _clean(name: str, t) -> np.ndarray:
    a = np.asarray(t, dtype=float).ravel()
    if not np.all(np.isfinite(a)):
        raise InputError(f"{name}: pulse times must be finite numbers")
    a = np.sort(a)
    return a


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares ``y = a + b x`` (centred, so seconds-scale offsets lose no precision)."""
    xm, ym = x.mean(), y.mean()
    dx = x - xm
    b = float(np.dot(dx, y - ym) / np.dot(dx, dx))
    return float(ym - b * xm), b


def _robust_line(x: np.ndarray, y: np.ndarray, floor_s: float) -> tuple[float, float, np.ndarray]:
    keep = np.ones(len(x), bool)
    a, b = _line(x, y)
    for _ in range(10):
        r = y - (a + b * x)
        mad = np.median(np.abs(r[keep] - np.median(r[keep]))) * 1.4826
        new = np.abs(r) <= max(5.0 * mad, floor_s)
        if new.sum() < 2 or np.array_equal(new, keep):
            break
        keep = new
        a, b = _line(x[keep], y[keep])
    return a, b, keep


def _chunk_pairs(rig: np.ndarray, other: np.ndarray, chunk: int, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Pulse index pairs (rig, other) of the unambiguously matched interval runs."""
    di_r, di_o = np.diff(rig), np.diff(other)
    win_r = sliding_window_view(di_r, chunk)          # (n_r - chunk, chunk)
    ri, oi = [], []
    for s in range(0, len(di_o) - chunk + 1):
        run = di_o[s:s + chunk]
        rms = np.sqrt(np.mean((win_r - run) ** 2, axis=1))
        best = int(np.argmin(rms))
        if rms[best] > tol:
            continue
        rest = np.delete(rms, best)
        if rest.size and rest.min() <= 3 * tol:
            continue   # not a unique fingerprint
        ri.extend(range(best, best + chunk + 1))
        oi.extend(range(s, s + chunk + 1))
    if not ri:
        return np.zeros(0, int), np.zeros(0, int)
    pairs = np.unique(np.column_stack([ri, oi]), axis=0)
    # a pulse claimed by two different partners (overlapping runs disagreeing) is dropped
    ur, cr = np.unique(pairs[:, 0], return_counts=True)
    uo, co = np.unique(pairs[:, 1], return_counts=True)
    ok = np.isin(pairs[:, 0], ur[cr == 1]) & np.isin(pairs[:, 1], uo[co == 1])
    return pairs[ok, 0], pairs[ok, 1]


def _nearest_pairs(rig: np.ndarray, other_on_rig: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Mutual nearest neighbours within ``tol`` (both sorted)."""
    j = np.clip(np.searchsorted(other_on_rig, rig), 1, len(other_on_rig) - 1)
    j = np.where(np.abs(other_on_rig[j - 1] - rig) <= np.abs(other_on_rig[j] - rig), j - 1, j)
    close = np.abs(other_on_rig[j] - rig) <= tol
    i = np.flatnonzero(close)
    j = j[close]
    # mutual: the rig pulse nearest to other pulse j must be i
    k = np.clip(np.searchsorted(rig, other_on_rig[j]), 1, len(rig) - 1)
    k = np.where(np.abs(rig[k - 1] - other_on_rig[j]) <= np.abs(rig[k] - other_on_rig[j]), k - 1, k)
    mutual = k == i
    return i[mutual], j[mutual]


def align_pulses(rig_times, other_times, *, chunk: int = 5, tolerance_s: float = 0.005,
                 min_matched: int = 10) -> ClockMapping:
    """Align another system's sync pulse times to the rig's.

    Robust to pulses missing from either side and to extra ones.

    Parameters
    ----------
    rig_times : array_like
        The rig's pulse times (s on the rig's clock).
    other_times : array_like
        The other system's times of the same pulses (s on its clock).
    chunk : int, default 5
        Length of the run of intervals that anchors the match.
    tolerance_s : float, default 0.005
        Largest interval mismatch of matched pulses (s).
    min_matched : int, default 10
        Fewest pulses that must pair up.

    Returns
    -------
    ClockMapping
        ``offset_s``, ``drift_ppm``, ``residual_ms``, ``n_matched``, and ``to_rig``/``to_other`` mapping times
        between the clocks.

    Raises
    ------
    InputError
        The sequences share no unambiguous run of ``chunk`` intervals, or fewer than ``min_matched`` pulses
        pair up.
    """
    rig, other = _clean("rig pulses", rig_times), _clean("other pulses", other_times)
    if chunk < 2:
        raise InputError(f"chunk {chunk}: must be >= 2")
    if not tolerance_s > 0:
        raise InputError(f"tolerance_s {tolerance_s}: must be > 0")
    need = max(chunk + 2, min_matched)
    for name, a in (("rig pulses", rig), ("other pulses", other)):
        if len(a) < need:
            raise InputError(f"{name}: {len(a)} pulses; at least {need} are needed to align clocks")
    ri, oi = _chunk_pairs(rig, other, chunk, tolerance_s)
    if len(ri) < need:
        raise InputError(f"the pulse sequences do not match: {len(ri)} pulses in unambiguous runs of {chunk} "
                         f"intervals within {tolerance_s * 1e3:g} ms (are they from the same rig and session?)")
    floor = tolerance_s / 5
    a, b, keep = _robust_line(rig[ri], other[oi], floor)       # other = a + b * rig
    ri, oi = _nearest_pairs(rig, (other - a) / b, tolerance_s)
    if len(ri) < need:
        raise InputError(f"only {len(ri)} pulses pair up under the fitted line; at least {need} are needed")
    a, b, keep = _robust_line(rig[ri], other[oi], floor)
    ri, oi = ri[keep], oi[keep]
    resid = rig[ri] - (other[oi] - a) / b
    return ClockMapping(offset_s=a, drift_ppm=(b - 1.0) * 1e6, residual_ms=float(np.sqrt(np.mean(resid ** 2)) * 1e3),
                        n_matched=int(len(ri)), n_rig=int(len(rig)), n_other=int(len(other)),
                        rig_matched=rig[ri], other_matched=other[oi])
