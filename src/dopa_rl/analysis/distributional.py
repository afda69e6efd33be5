"""Distributional-RL analysis of dopamine units in a variable-magnitude task (Dabney et al. 2020).

Input: a (trials x units) matrix of baseline-subtracted outcome responses and each trial's reward
magnitude.  Per unit, a piecewise-linear function through zero with a knot ``c`` is fitted by least
squares, ``response ~ s_pos * (m - c)+ + s_neg * (m - c)-``; the knot minimising the squared error on a
fine grid over the magnitude range is the *reversal point*, ``s_pos`` / ``s_neg`` are the slopes above
and below it, and the asymmetry is ``tau = s_pos / (s_pos + s_neg)`` (slopes clipped at 0).

The fit works on per-magnitude sufficient statistics (trial counts and response sums), so thousands of
random half splits are evaluated in one vectorised pass.  The split-half test estimates reversal points
from one half of the trials and asymmetries from the other, so noise in one cannot feed the other.
"""
from __future__ import annotations

import numpy as np
from scipy import optimize, stats

from dopa_rl.errors import InputError

__all__ = ["select_trials", "response_by_magnitude", "reversal_points", "split_half",
           "decode_distribution", "distributional_analysis"]


def select_trials(magnitudes, trial_type=None, use: str = "all") -> tuple[np.ndarray, int]:
    """Boolean mask of usable trials and the number excluded.

    A trial is excluded when its magnitude is missing/non-finite, or (when ``trial_type`` is given) its
    type is unknown (None/NaN/empty).  ``use`` keeps ``"all"`` known types, or only ``"cued"`` /
    ``"uncued"`` trials (type truthy = cued).
    """
    m = np.asarray(magnitudes, dtype=object).ravel()
    ok = np.array([_finite(v) for v in m], bool)
    if trial_type is not None:
        tt = np.asarray(trial_type, dtype=object).ravel()
        if tt.size != m.size:
            raise InputError(f"trial types: {tt.size} values for {m.size} trials")
        known = np.array([not _missing(v) for v in tt], bool)
        ok &= known
        if use in ("cued", "uncued"):
            cued = np.array([bool(v) if k else False for v, k in zip(tt, known)], bool)
            ok &= cued if use == "cued" else ~cued
        elif use != "all":
            raise InputError(f"use must be all, cued or uncued, not {use!r}")
    return ok, int(m.size - ok.sum())


def _finite(v) -> bool:
    try:
        return bool(np.isfinite(float(v)))
    except (TypeError, ValueError):
        return False


def _missing(v) -> bool:
    if v is None:
        return True
    if isinstance(v, str):
        return v.strip() == "" or v.strip().lower() in ("nan", "none", "unknown")
    try:
        return bool(np.isnan(v))
    except TypeError:
        return False


def response_by_magnitude(responses, magnitudes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique magnitudes, mean response (magnitudes x units) and its standard error."""
    y, m = _check(responses, magnitudes)
    levels, idx = np.unique(m, return_inverse=True)
    oh = np.eye(levels.size)[idx]                          # trials x K
    fin = np.isfinite(y)
    n = oh.T @ fin
    s = oh.T @ np.where(fin, y, 0.0)
    s2 = oh.T @ np.where(fin, y * y, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s / n
        var = (s2 - n * mean ** 2) / (n - 1)
        sem = np.sqrt(np.maximum(var, 0) / n)
    return levels, mean, sem


def _check(responses, magnitudes):
    y = np.asarray(responses, float)
    if y.ndim == 1:
        y = y[:, None]
    m = np.asarray(magnitudes, float).ravel()
    if y.ndim != 2 or y.shape[0] != m.size:
        raise InputError(f"responses must be (trials x units) with one row per magnitude; got {y.shape} "
                         f"for {m.size} magnitudes")
    if not np.all(np.isfinite(m)):
        raise InputError("magnitudes must be finite (exclude trials without a reward first: select_trials)")
    return y, m


def _stats(y, m, masks):
    """Counts n[s,u,k] and sums S[s,u,k] of responses per split mask s, unit u, magnitude level k."""
    levels, idx = np.unique(m, return_inverse=True)
    T, U = y.shape
    K = levels.size
    oh = np.eye(K)[idx]                                    # T x K
    fin = np.isfinite(y)
    yz = np.where(fin, y, 0.0)
    n = masks @ (fin[:, :, None] * oh[:, None, :]).reshape(T, U * K)
    s = masks @ (yz[:, :, None] * oh[:, None, :]).reshape(T, U * K)
    return levels, n.reshape(-1, U, K), s.reshape(-1, U, K)


def _fit_from_stats(levels, n, s, n_grid):
    """Piecewise-linear fit per (split, unit): reversal point, slopes, tau."""
    grid = np.linspace(levels[0], levels[-1], n_grid)
    x = levels[None, :] - grid[:, None]                     # G x K
    xp, xn = np.maximum(x, 0.0), np.minimum(x, 0.0)
    num_p = np.einsum("suk,gk->sug", s, xp)
    num_n = np.einsum("suk,gk->sug", s, xn)
    den_p = np.einsum("suk,gk->sug", n, xp * xp)
    den_n = np.einsum("suk,gk->sug", n, xn * xn)
    with np.errstate(invalid="ignore", divide="ignore"):
        gain = np.where(den_p > 0, num_p ** 2 / den_p, 0.0) + np.where(den_n > 0, num_n ** 2 / den_n, 0.0)
        best = np.argmax(gain, axis=2)                       # s x u
        take = lambda a: np.take_along_axis(a, best[..., None], axis=2)[..., 0]  # noqa: E731
        sp = np.where(take(den_p) > 0, take(num_p) / take(den_p), np.nan)
        sn = np.where(take(den_n) > 0, take(num_n) / take(den_n), np.nan)
        cp, cn = np.clip(sp, 0, None), np.clip(sn, 0, None)
        tau = cp / (cp + cn)
    rp = grid[best]
    none = n.sum(axis=2) == 0
    rp = np.where(none, np.nan, rp)
    return rp, tau, sp, sn


def reversal_points(responses, magnitudes, *, n_grid: int = 401) -> dict:
    """Per-unit reversal point, slopes above/below and asymmetry tau from all trials.

    Returns arrays ``reversal_point``, ``tau``, ``slope_pos``, ``slope_neg`` (one value per unit).
    ``tau`` is NaN when both slopes are <= 0; a slope is NaN when no magnitude lies on its side.
    """
    y, m = _check(responses, magnitudes)
    levels, n, s = _stats(y, m, np.ones((1, m.size)))
    if levels.size < 3:
        raise InputError(f"reversal points need at least 3 distinct reward magnitudes, got {levels.size}")
    rp, tau, sp, sn = _fit_from_stats(levels, n, s, n_grid)
    return {"reversal_point": rp[0], "tau": tau[0], "slope_pos": sp[0], "slope_neg": sn[0]}


def _pearson(a, b):
    """Row-wise Pearson r over units, ignoring NaN pairs; returns (r, n)."""
    ok = np.isfinite(a) & np.isfinite(b)
    n = ok.sum(axis=1)
    a0 = np.where(ok, a, 0.0)
    b0 = np.where(ok, b, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ma = a0.sum(1) / n
        mb = b0.sum(1) / n
        da = np.where(ok, a - ma[:, None], 0.0)
        db = np.where(ok, b - mb[:, None], 0.0)
        r = (da * db).sum(1) / np.sqrt((da * da).sum(1) * (db * db).sum(1))
    return r, n


def split_half(responses, magnitudes, rng: np.random.Generator, *, n_splits: int = 1000,
               n_grid: int = 201, stratify: bool = True) -> dict:
    """Split-half reversal-point vs asymmetry correlation (Dabney et al. 2020, Fig. 3).

    For each of ``n_splits`` random halves of the trials (stratified by magnitude so both halves span
    every level), reversal points come from half A and asymmetries from half B (each fully fitted within
    its half), and the Pearson r across units is computed.  Returns ``r`` (median over splits),
    ``interval`` (2.5 and 97.5 percentiles of r over splits), ``p`` (two-sided t-test p-value of the
    median r with ``n_units - 2`` degrees of freedom) and ``n_units`` (units with finite values, median).
    """
    y, m = _check(responses, magnitudes)
    T = m.size
    if T < 4:
        raise InputError("split-half needs at least 4 trials")
    masks = np.zeros((n_splits, T))
    if stratify:
        for lev in np.unique(m):
            ids = np.flatnonzero(m == lev)
            keys = rng.random((n_splits, ids.size))
            order = np.argsort(keys, axis=1)
            # half of this level's trials to A; an odd one out goes to A in half of the splits
            half = ids.size // 2 + (rng.random((n_splits, 1)) < (ids.size % 2) * 0.5)
            sel = np.arange(ids.size)[None, :] < half
            tmp = np.zeros((n_splits, ids.size))
            np.put_along_axis(tmp, order, sel.astype(float), axis=1)
            masks[:, ids] = tmp
    else:
        order = np.argsort(rng.random((n_splits, T)), axis=1)
        np.put_along_axis(masks, order, (np.arange(T)[None, :] < T // 2).astype(float), axis=1)
    levels, nA, sA = _stats(y, m, masks)
    _, nB, sB = _stats(y, m, 1.0 - masks)
    rpA, _, _, _ = _fit_from_stats(levels, nA, sA, n_grid)
    _, tauB, _, _ = _fit_from_stats(levels, nB, sB, n_grid)
    r, n = _pearson(rpA, tauB)
    r_ok = r[np.isfinite(r)]
    if r_ok.size == 0:
        return {"r": float("nan"), "interval": [float("nan"), float("nan")], "p": float("nan"),
                "n_units": int(np.median(n))}
    r_med = float(np.median(r_ok))
    n_units = int(np.median(n))
    p = _r_pvalue(r_med, n_units)
    lo, hi = np.percentile(r_ok, [2.5, 97.5])
    return {"r": r_med, "interval": [float(lo), float(hi)], "p": p, "n_units": n_units}


def _r_pvalue(r, n):
    if n < 3 or not np.isfinite(r):
        return float("nan")
    if abs(r) >= 1:
        return 0.0
    t = r * np.sqrt((n - 2) / (1 - r * r))
    return float(2 * stats.t.sf(abs(t), n - 2))


def _expectile_loss(z, taus, eps):
    """Dabney et al. imputation loss: squared expectile-equation residual per tau, and its gradient."""
    d = z[None, :] - eps[:, None]                            # n_tau x n_samples
    w = np.where(d > 0, taus[:, None], 1.0 - taus[:, None])
    g = (w * d).mean(axis=1)                                 # residual of the expectile equation
    loss = np.sum(g * g)
    grad = (2 * g[:, None] * w).sum(axis=0) / z.size
    return loss, grad


def decode_distribution(reversal_points, taus, rng: np.random.Generator, *, n_samples: int = 100,
                        n_restarts: int = 5, support=None, n_support: int = 200,
                        bandwidth: float | None = None) -> dict:
    """Decode the reward distribution from the population's expectiles (expectile imputation).

    Finds samples ``z`` whose ``tau_i`` expectiles match the reversal points, by minimising
    ``sum_i [mean_j |tau_i - 1(z_j < e_i)| (z_j - e_i)]^2`` (L-BFGS-B, several random restarts, the best
    kept), as in Dabney et al. (2020).  Returns ``support`` (grid), ``density`` (Gaussian kernel density
    of the samples on it, integrating to 1) and ``samples``.
    """
    e = np.asarray(reversal_points, float).ravel()
    t = np.asarray(taus, float).ravel()
    ok = np.isfinite(e) & np.isfinite(t) & (t > 0) & (t < 1)
    e, t = e[ok], t[ok]
    if e.size < 2:
        raise InputError(f"decoding needs at least 2 units with a finite reversal point and 0 < tau < 1, "
                         f"got {e.size}")
    lo, hi = float(e.min()), float(e.max())
    span = max(hi - lo, 1e-9)
    best = None
    for _ in range(n_restarts):
        z0 = rng.uniform(lo - 0.5 * span, hi + 0.5 * span, n_samples)
        res = optimize.minimize(_expectile_loss, z0, args=(t, e), jac=True, method="L-BFGS-B",
                                options={"maxiter": 500})
        if best is None or res.fun < best.fun:
            best = res
    z = np.sort(best.x)
    bw = bandwidth if bandwidth is not None else 1.06 * max(np.std(z), 1e-6 * span) * z.size ** -0.2
    if support is None:
        support = np.linspace(z.min() - 4 * bw, z.max() + 4 * bw, n_support)
    support = np.asarray(support, float)
    dens = np.exp(-0.5 * ((support[:, None] - z[None, :]) / bw) ** 2).sum(1) / (z.size * bw * np.sqrt(2 * np.pi))
    return {"support": support.tolist(), "density": dens.tolist(), "samples": z.tolist(),
            "loss": float(best.fun)}


def distributional_analysis(responses, magnitudes, *, trial_type=None, use: str = "all",
                            baseline=0.0, rng: np.random.Generator | None = None, n_splits: int = 1000,
                            decode: bool = True, unit_names=None) -> dict:
    """The whole unit-level analysis of one session, as the ``dopa-rl distributional --json`` output.

    ``responses``: (trials x units) outcome responses; ``baseline`` (scalar or per unit) is subtracted.
    Trials without a finite magnitude, or with unknown type, are excluded and counted.  Returns
    ``{"units": [{"unit", "reversal_point", "tau", "slope_pos", "slope_neg"}], "split_half": {"r",
    "interval", "p", "n_units"}, "decoded": {"support", "density"}, "n_trials", "n_excluded"}``.
    """
    rng = np.random.default_rng() if rng is None else rng
    y = np.asarray(responses, float)
    if y.ndim == 1:
        y = y[:, None]
    keep, n_excl = select_trials(magnitudes, trial_type, use)
    if y.shape[0] != keep.size:
        raise InputError(f"responses have {y.shape[0]} rows but there are {keep.size} trials")
    if keep.sum() < 4:
        raise InputError(f"only {int(keep.sum())} usable trials (need a reward magnitude and a known type)")
    m = np.asarray(magnitudes, dtype=object).ravel()[keep].astype(float)
    y = y[keep] - np.asarray(baseline, float)
    names = list(unit_names) if unit_names is not None else list(range(y.shape[1]))
    full = reversal_points(y, m)
    units = [{"unit": names[i], **{k: _num(full[k][i]) for k in ("reversal_point", "tau", "slope_pos",
                                                                   "slope_neg")}}
             for i in range(y.shape[1])]
    sh = split_half(y, m, rng, n_splits=n_splits)
    sh = {"r": _num(sh["r"]), "interval": [_num(v) for v in sh["interval"]], "p": _num(sh["p"]),
          "n_units": sh["n_units"]}
    out = {"units": units, "split_half": sh,
           "n_trials": int(keep.sum()), "n_excluded": n_excl}
    if decode:
        dec = decode_distribution(full["reversal_point"], full["tau"], rng)
        out["decoded"] = {"support": dec["support"], "density": dec["density"]}
    return out


def _num(v):
    v = float(v)
    return v if np.isfinite(v) else None
