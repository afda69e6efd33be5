"""Dabney et al. (2020)'s unit-level procedure for a variable-magnitude task, step by step as their
Methods and analysis code give it (pure functions over arrays; the orchestration is
:func:`dopa_rl.neural.distributional.pooled_analysis`).

1. Cued and uncued trials are pooled: the uncued responses are shifted so that their grand mean (over
   units and magnitudes of the per-unit, per-magnitude trial means) equals the cued one
   (:func:`trial_type_shift`).
2. The **empirical utility axis**: the population's mean response at each magnitude
   (:func:`utility_axis`); reversal points are found on it, so they are in response units.
3. The **counting zero-crossing estimator** (:func:`zero_crossings`): with the magnitudes in order, the
   boundary between two neighbouring magnitudes that maximises (trials above it with a positive
   response) + (trials below it with a negative response) is found (ties broken by a 0.001-SD jitter);
   the reversal point is interpolated between the two magnitudes' axis values, weighted by how close the
   count is to its neighbours' counts on either side.  A boundary below the smallest (above the largest)
   magnitude puts the reversal point at the smallest axis value + 0.01 (the largest - 0.1), as their code
   does, and is flagged: every unit gets a reversal point.
4. **Asymmetry** from no-intercept least-squares slopes of response on (axis - reversal point), fitted
   separately to the magnitudes at or above and at or below the reversal point:
   ``tau = s+ / (s+ + s-)`` (not clipped; a non-positive slope is flagged).
5. **Split halves** as their ``splitIndices`` draws them: for each unit and magnitude, a random
   ``floor(n / 2)`` of its trials give the reversal points, the rest give the asymmetries (each half
   finds its own reversal point for its slopes); or alternate trials in time order (1st, 3rd, ... for
   reversal points; 2nd, 4th, ... for asymmetries).

Everything works on per-(split, unit, magnitude) counts and sums, so 1000 random splits are cheap.
"""
from __future__ import annotations

import numpy as np

__all__ = ["trial_type_shift", "unit_level_means", "utility_axis", "level_stats", "half_stats",
           "zero_crossings", "asymmetric_slopes", "unit_flags", "LOW_END_OFFSET", "HIGH_END_OFFSET",
           "EXTREME_SLOPE_FACTOR"]

#: range-end placements of Dabney et al.'s EstimateZeroCrossings (in the axis's units)
LOW_END_OFFSET, HIGH_END_OFFSET = 0.01, 0.1
#: a slope more than this many times the population's median |slope| is flagged as implausible
EXTREME_SLOPE_FACTOR = 10.0


def _level_index(m, levels):
    idx = np.searchsorted(levels, m)
    if np.any(idx >= levels.size) or np.any(levels[np.minimum(idx, levels.size - 1)] != m):
        raise ValueError("magnitudes outside the given levels")
    return idx


def unit_level_means(y, m, levels, mask=None) -> np.ndarray:
    """(units x levels) mean response over the finite trials (``mask``: boolean trials to use)."""
    y = np.asarray(y, float)
    idx = _level_index(np.asarray(m, float), levels)
    use = np.isfinite(y) & (True if mask is None else np.asarray(mask, bool)[:, None])
    oh = np.eye(levels.size)[idx]                              # T x K
    n = use.T.astype(float) @ oh
    s = np.where(use, y, 0.0).T @ oh
    with np.errstate(invalid="ignore", divide="ignore"):
        return s / n


def trial_type_shift(sessions, levels) -> float:
    """Cued minus uncued grand mean of the per-unit, per-magnitude mean responses over all units of all
    sessions (``sessions``: (responses, magnitudes, cued bool array)); added to the uncued responses it
    pools the two trial types as Dabney et al. do.  NaN when either type is absent."""
    cued, unc = [], []
    for y, m, c in sessions:
        cued.append(unit_level_means(y, m, levels, c))
        unc.append(unit_level_means(y, m, levels, ~c))
    cued, unc = np.vstack(cued), np.vstack(unc)
    if not np.isfinite(cued).any() or not np.isfinite(unc).any():
        return float("nan")
    return float(np.nanmean(cued) - np.nanmean(unc))


def utility_axis(means) -> np.ndarray:
    """The empirical utility function: the population's mean response at each magnitude (``means``:
    units x levels, NaN where a unit has no trial of a level)."""
    a = np.asarray(means, float)
    n = np.isfinite(a).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(np.isfinite(a), a, 0.0).sum(axis=0) / n


def level_stats(y, m, levels) -> dict:
    """Per-(unit, level) counts of one set of trials, shaped (1, units, levels): ``n`` finite trials,
    ``s`` response sum, ``pos`` / ``neg`` trials with a response above / below zero."""
    y = np.asarray(y, float)
    idx = _level_index(np.asarray(m, float), levels)
    oh = np.eye(levels.size)[idx]
    fin = np.isfinite(y)
    yz = np.where(fin, y, 0.0)
    return {"n": (fin.T.astype(float) @ oh)[None], "s": (yz.T @ oh)[None],
            "pos": ((yz > 0).T.astype(float) @ oh)[None], "neg": ((yz < 0).T.astype(float) @ oh)[None]}


def half_stats(y, m, levels, rng: np.random.Generator, *, n_splits: int = 1000,
               scheme: str = "random") -> tuple[dict, dict]:
    """Counts of the two halves of every split, each shaped (splits, units, levels) as :func:`level_stats`.

    For each unit and magnitude separately, half A (reversal points) holds ``floor(n / 2)`` of its ``n``
    finite trials and half B (asymmetries) the rest: a random choice per split (``scheme="random"``,
    Dabney et al.'s splitIndices) or, with ``scheme="alternate"`` (one split), alternate trials in the
    rows' (time) order: the 2nd, 4th, ... (``floor(n / 2)`` trials) for A, the 1st, 3rd, ... for B.
    """
    y = np.asarray(y, float)
    idx = _level_index(np.asarray(m, float), levels)
    T, U = y.shape
    K = levels.size
    S = n_splits if scheme == "random" else 1
    if scheme not in ("random", "alternate"):
        raise ValueError(f"split scheme must be random or alternate, not {scheme!r}")
    A = {k: np.zeros((S, U, K)) for k in ("n", "s", "pos", "neg")}
    B = {k: np.zeros((S, U, K)) for k in ("n", "s", "pos", "neg")}
    for u in range(U):
        fin = np.isfinite(y[:, u])
        for k in range(K):
            rows = np.flatnonzero(fin & (idx == k))
            n = rows.size
            if n == 0:
                continue
            v = y[rows, u]
            if scheme == "random":
                rank = np.argsort(np.argsort(rng.random((S, n)), axis=1), axis=1)
                inA = rank < n // 2
            else:
                inA = (np.arange(n) % 2 == 1)[None, :]
            for half, sel in ((A, inA), (B, ~inA)):
                half["n"][:, u, k] = sel.sum(1)
                half["s"][:, u, k] = (sel * v).sum(1)
                half["pos"][:, u, k] = (sel * (v > 0)).sum(1)
                half["neg"][:, u, k] = (sel * (v < 0)).sum(1)
    return A, B


def zero_crossings(pos, neg, axis_values, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Counting zero-crossing estimator; ``pos``/``neg``: (..., levels) counts of positive / negative
    responses per magnitude (magnitudes in increasing order), ``axis_values``: the levels' positions on
    the axis (utility or magnitude).  Returns the reversal points and an end code per unit (-1: below
    the smallest magnitude, +1: above the largest, 0: inside the range)."""
    pos, neg = np.asarray(pos, float), np.asarray(neg, float)
    x = np.asarray(axis_values, float)
    K = x.size
    zero = np.zeros(pos.shape[:-1] + (1,))
    above = np.concatenate([np.cumsum(pos[..., ::-1], axis=-1)[..., ::-1], zero], axis=-1)  # sum over k >= j
    below = np.concatenate([zero, np.cumsum(neg, axis=-1)], axis=-1)                       # sum over k < j
    crit = above + below + 0.001 * rng.standard_normal(above.shape)                        # avoid ties
    j = np.argmax(crit, axis=-1)
    jj = np.clip(j, 1, K - 1)
    take = lambda a, i: np.take_along_axis(a, i[..., None], axis=-1)[..., 0]  # noqa: E731
    c_prev, c_here, c_next = take(crit, jj - 1), take(crit, jj), take(crit, jj + 1)
    w0, w1 = 1.0 / np.abs(c_here - c_prev), 1.0 / np.abs(c_next - c_here)
    inside = (w0 * x[jj - 1] + w1 * x[jj]) / (w0 + w1)
    rp = np.where(j == 0, x[0] + LOW_END_OFFSET, np.where(j == K, x[-1] - HIGH_END_OFFSET, inside))
    end = np.where(j == 0, -1, np.where(j == K, 1, 0))
    return rp, end


def asymmetric_slopes(n, s, axis_values, reversal) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """No-intercept least-squares slopes of response on (axis - reversal point) over the magnitudes at or
    above (``s+``) and at or below (``s-``) it, from per-level counts ``n`` and sums ``s`` (..., levels);
    returns ``s+``, ``s-`` (NaN without a magnitude on that side) and ``tau = s+ / (s+ + s-)``."""
    d = np.asarray(axis_values, float) - np.asarray(reversal, float)[..., None]
    num = s * d
    den = n * d * d
    with np.errstate(invalid="ignore", divide="ignore"):
        dp, dn = np.where(d >= 0, den, 0).sum(-1), np.where(d <= 0, den, 0).sum(-1)
        sp = np.where(dp > 0, np.where(d >= 0, num, 0).sum(-1) / dp, np.nan)
        sn = np.where(dn > 0, np.where(d <= 0, num, 0).sum(-1) / dn, np.nan)
        tau = sp / (sp + sn)
    return sp, sn, tau


def unit_flags(end, slope_pos, slope_neg) -> list[list[str]]:
    """Why each unit's estimate is doubtful (an empty list when it is not): ``reversal_at_low_end`` /
    ``reversal_at_high_end`` (the count was best beyond the magnitude range), ``slope_pos_not_positive``
    / ``slope_neg_not_positive`` (tau is then outside (0, 1)), ``slope_missing``, and ``slope_extreme``
    (|slope| above ``EXTREME_SLOPE_FACTOR`` x the population's median |slope|)."""
    sp, sn = np.asarray(slope_pos, float), np.asarray(slope_neg, float)
    both = np.abs(np.concatenate([sp, sn]))
    both = both[np.isfinite(both)]
    limit = EXTREME_SLOPE_FACTOR * float(np.median(both)) if both.size else np.inf
    out = []
    for e, a, b in zip(np.asarray(end), sp, sn):
        f = []
        if e < 0:
            f.append("reversal_at_low_end")
        elif e > 0:
            f.append("reversal_at_high_end")
        if not (np.isfinite(a) and np.isfinite(b)):
            f.append("slope_missing")
        if np.isfinite(a) and a <= 0:
            f.append("slope_pos_not_positive")
        if np.isfinite(b) and b <= 0:
            f.append("slope_neg_not_positive")
        if (np.isfinite(a) and abs(a) > limit) or (np.isfinite(b) and abs(b) > limit):
            f.append("slope_extreme")
        out.append(f)
    return out
