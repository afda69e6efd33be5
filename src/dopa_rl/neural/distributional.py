"""Distributional-RL analysis of dopamine units in a variable-magnitude task (Dabney et al. 2020).

Input: per session a (trials x units) matrix of baseline-subtracted outcome responses, each trial's
reward magnitude and (optionally) whether it was cued.  :func:`pooled_analysis` runs Dabney et al.'s
procedure by default (:mod:`dopa_rl.neural.dabney`: cued and uncued trials pooled with their shift, the
empirical utility axis, the counting zero-crossing estimator, no-intercept slopes above and below the
reversal point, split halves drawn per unit and magnitude and on alternate trials), and flags the units
whose estimates are doubtful instead of dropping them.

The other estimator (``estimator="fit"``; :func:`reversal_points`) fits per unit a piecewise-linear
function through zero with a knot ``c`` by least squares, ``response ~ s_pos * (x - c)+ + s_neg * (x - c)-``;
the knot minimising the squared error on a fine grid over the axis is the reversal point, and
``tau = s_pos / (s_pos + s_neg)`` (slopes clipped at 0).  Both work on per-magnitude sufficient
statistics (counts and sums), so thousands of random half splits are cheap.
"""
from __future__ import annotations

import numpy as np
from scipy import optimize, stats

from dopa_rl.errors import InputError
from dopa_rl.neural import dabney
from dopa_rl.neural.distributional_result import DistributionalResult

__all__ = ["select_trials", "response_by_magnitude", "reversal_points", "split_half", "pooled_analysis",
           "decode_distribution", "distributional_analysis", "DistributionalResult"]


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
    grid = np.linspace(np.min(levels), np.max(levels), n_grid)
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
               n_grid: int = 201) -> dict:
    """Split-half reversal-point vs asymmetry correlation with the curve-fit estimator on the magnitude
    axis (the ``estimator="fit", axis="magnitude"`` option of :func:`pooled_analysis`).

    The halves are drawn as Dabney et al. (2020) draw them (:func:`dopa_rl.neural.dabney.half_stats`:
    for each unit and magnitude, a random half of its trials); reversal points come from half A and
    asymmetries from half B (each fully fitted within its half).  Returns ``r`` (median over splits),
    ``interval`` (2.5 and 97.5 percentiles of r over splits), ``p`` (two-sided t-test p-value of the
    median r with ``n_units - 2`` degrees of freedom) and ``n_units`` (units with finite values, median).
    """
    y, m = _check(responses, magnitudes)
    if m.size < 4:
        raise InputError("split-half needs at least 4 trials")
    levels = np.unique(m)
    A, B = dabney.half_stats(y, m, levels, rng, n_splits=n_splits)
    rpA, _, _, _ = _fit_from_stats(levels, A["n"], A["s"], n_grid)
    _, tauB, _, _ = _fit_from_stats(levels, B["n"], B["s"], n_grid)
    return _summarise_r(rpA, tauB)


def _summarise_r(rpA, tauB):
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


ESTIMATORS = ("count", "fit")
AXES = ("utility", "magnitude")


def distributional_analysis(responses, magnitudes, *, trial_type=None, use: str = "all", baseline=0.0,
                            rng: np.random.Generator | None = None, n_splits: int = 1000, decode: bool = True,
                            unit_names=None, estimator: str = "count", axis: str = "utility") -> DistributionalResult:
    """:func:`pooled_analysis` of one session given as arrays; ``baseline`` (scalar or per unit) is
    subtracted from ``responses`` (trials x units) first."""
    y = np.asarray(responses, float)
    y = y[:, None] if y.ndim == 1 else y
    return pooled_analysis([{"responses": y - np.asarray(baseline, float), "magnitudes": magnitudes,
                             "trial_type": trial_type, "unit_names": unit_names, "label": "0"}],
                           use=use, rng=rng, n_splits=n_splits, decode=decode, estimator=estimator, axis=axis)


def _session_arrays(s, k, use):
    label = s.get("label", str(k))
    y = np.asarray(s["responses"], float)
    y = y[:, None] if y.ndim == 1 else y
    keep, n_excl = select_trials(s["magnitudes"], s.get("trial_type"), use)
    if y.shape[0] != keep.size:
        raise InputError(f"{label}: responses have {y.shape[0]} rows but there are {keep.size} trials")
    if keep.sum() < 4:
        raise InputError(f"{label}: only {int(keep.sum())} usable trials (need a reward magnitude and a known "
                         "trial type)")
    m = np.asarray(s["magnitudes"], dtype=object).ravel()[keep].astype(float)
    if np.unique(m).size < 3:
        raise InputError(f"{label}: {np.unique(m).size} distinct reward magnitudes; reversal points need at least 3")
    tt = s.get("trial_type")
    cued = None if tt is None else np.array([bool(v) for v in np.asarray(tt, dtype=object).ravel()[keep]], bool)
    names = list(s.get("unit_names") or range(y.shape[1]))
    return label, y[keep], m, cued, names, n_excl


def _estimate(stats, x, estimator, rng, n_grid=201):
    """Reversal points, end codes, slopes and taus from per-(split, unit, level) counts and sums."""
    if estimator == "count":
        rp, end = dabney.zero_crossings(stats["pos"], stats["neg"], x, rng)
        sp, sn, tau = dabney.asymmetric_slopes(stats["n"], stats["s"], x, rp)
    else:
        rp, tau, sp, sn = _fit_from_stats(x, stats["n"], stats["s"], n_grid)
        end = np.where(rp <= np.min(x), -1, np.where(rp >= np.max(x), 1, 0))
    return rp, end, sp, sn, tau


def _split_r(A, B, x, estimator, rng):
    rpA = _estimate(A, x, estimator, rng)[0]
    tauB = _estimate(B, x, estimator, rng)[4]
    return rpA, tauB


def pooled_analysis(sessions, *, use: str = "all", rng: np.random.Generator | None = None,
                    n_splits: int = 1000, decode: bool = True, estimator: str = "count",
                    axis: str = "utility") -> DistributionalResult:
    """Dabney et al. (2020)'s procedure over the units of one or more sessions (docs/distributional.md).

    ``sessions``: dicts with ``responses`` (trials x units, baseline-subtracted), ``magnitudes``, optional
    ``trial_type`` (truthy = cued), ``unit_names`` and ``label``.  With ``use="all"`` and trial types,
    uncued responses are shifted onto the cued ones (:func:`dopa_rl.neural.dabney.trial_type_shift`).
    ``axis``: ``"utility"`` (the population's mean response at each magnitude; reversal points in
    response units) or ``"magnitude"``; ``estimator``: ``"count"`` (the counting zero-crossing and
    no-intercept slopes) or ``"fit"`` (the piecewise-linear least-squares fit of :func:`reversal_points`).
    Each unit is estimated on its own session's trials; the split-half r is taken across all units with
    finite values (none is dropped): ``split_half`` over ``n_splits`` random halves (median, 2.5-97.5
    percentile interval, p of the median) and ``split_half_alternate`` on alternate trials.  Each unit
    also carries ``mean_response`` at each magnitude (after the shift; ``axis.magnitudes``).  Units whose
    reversal point lands at a range end or whose slopes are implausible carry ``flags`` and are listed
    in ``flagged``; they stay in every test.  The distribution is decoded from the units with
    ``0 < tau < 1`` (``decoded.n_units``).  Returns a
    :class:`~dopa_rl.neural.distributional_result.DistributionalResult`.
    """
    if estimator not in ESTIMATORS:
        raise InputError(f"estimator must be one of {', '.join(ESTIMATORS)}, not {estimator!r}")
    if axis not in AXES:
        raise InputError(f"axis must be one of {', '.join(AXES)}, not {axis!r}")
    rng = np.random.default_rng() if rng is None else rng
    arrays = [_session_arrays(s, k, use) for k, s in enumerate(sessions)]
    if not arrays:
        raise InputError("no sessions to analyse")
    levels = np.unique(np.concatenate([a[2] for a in arrays]))
    typed = [(y, m, c) for _, y, m, c, _, _ in arrays if c is not None]
    shift = dabney.trial_type_shift(typed, levels) if use == "all" and typed else float("nan")
    ys = [y + (0.0 if c is None or not np.isfinite(shift) else np.where(c, 0.0, shift)[:, None])
          for _, y, _, c, _, _ in arrays]
    means = np.vstack([dabney.unit_level_means(y, a[2], levels) for y, a in zip(ys, arrays)])
    x = dabney.utility_axis(means) if axis == "utility" else levels
    if not np.all(np.isfinite(x)):
        raise InputError("the utility axis is undefined at a magnitude no unit has a trial of")

    def cat(parts):
        return {k: np.concatenate([p[k] for p in parts], axis=1) for k in parts[0]}

    full = cat([dabney.level_stats(y, a[2], levels) for y, a in zip(ys, arrays)])
    rp, end, sp, sn, tau = (v[0] for v in _estimate(full, x, estimator, rng))
    flags = dabney.unit_flags(end, sp, sn)
    halves = {scheme: [dabney.half_stats(y, a[2], levels, rng, n_splits=n_splits, scheme=scheme)
                       for y, a in zip(ys, arrays)] for scheme in ("random", "alternate")}
    units, per, col = [], [], 0
    for (label, y, m, c, names, n_excl), hr, ha in zip(arrays, halves["random"], halves["alternate"]):
        U = y.shape[1]
        for i in range(U):
            j = col + i
            units.append({"unit": names[i], "session": label, "reversal_point": _num(rp[j]), "tau": _num(tau[j]),
                          "slope_pos": _num(sp[j]), "slope_neg": _num(sn[j]), "flags": flags[j],
                          "mean_response": [_num(v) for v in means[j]]})
        own = _clean(_summarise_r(*_split_r(hr[0], hr[1], x, estimator, rng))) if U >= 3 else None
        per.append({"label": label, "n_trials": int(m.size), "n_excluded": n_excl, "n_units": int(U),
                    "split_half": own})
        col += U
    rpA, tauB = _split_r(cat([h[0] for h in halves["random"]]), cat([h[1] for h in halves["random"]]), x,
                         estimator, rng)
    alt = _summarise_r(*_split_r(cat([h[0] for h in halves["alternate"]]),
                                 cat([h[1] for h in halves["alternate"]]), x, estimator, rng))
    decoded = None
    if decode:
        ok = np.isfinite(rp) & np.isfinite(tau) & (tau > 0) & (tau < 1)
        if ok.sum() >= 2:
            dec = decode_distribution(rp[ok], tau[ok], rng)
            decoded = {"support": dec["support"], "density": dec["density"], "n_units": int(ok.sum())}
    return DistributionalResult(
        units=units, axis={"name": axis, "magnitudes": levels.tolist(), "values": [float(v) for v in x]},
        estimator=estimator, trial_type_shift=_num(shift), split_half=_clean(_summarise_r(rpA, tauB)),
        split_half_alternate={"r": _num(alt["r"]), "p": _num(alt["p"]), "n_units": alt["n_units"]},
        n_trials=sum(p["n_trials"] for p in per), n_excluded=sum(p["n_excluded"] for p in per), sessions=per,
        decoded=decoded, settings={"use": use, "n_splits": int(n_splits)})


def _num(v):
    v = float(v)
    return v if np.isfinite(v) else None


def _clean(sh):
    return {"r": _num(sh["r"]), "interval": [_num(v) for v in sh["interval"]], "p": _num(sh["p"]),
            "n_units": sh["n_units"]}
