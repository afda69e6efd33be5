"""Is a fitted parameter identified by the data?  The profile-likelihood check behind the "weakly
identified" warnings of ``dopa-rl regress --fit neural|trace``.

A parameter's profile log-likelihood is the best log-likelihood with that parameter held at a value
and the others free.  Its 95% profile interval holds the values whose profile is within
``chi2_1(0.95) / 2 = 1.92`` of the maximum (a likelihood-ratio test cannot reject them).  When that
interval reaches both ends of the parameter's range, the profile is **flat**: the data cannot tell any
value in the range from the estimate, and the estimate is not a measurement.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["profile_interval", "dopamine_profiles", "weak_parameters", "LR_HALF_WIDTH"]

#: half the 95% chi-square(1) quantile: a profile drop smaller than this cannot reject a value
LR_HALF_WIDTH = float(stats.chi2.ppf(0.95, 1) / 2)


def profile_interval(grid, profile_loglik, best_loglik: float | None = None, *, estimate: float | None = None,
                     half_width: float = LR_HALF_WIDTH) -> dict:
    """The profile interval of one parameter from its profile on ``grid`` (increasing values).

    ``best_loglik``: the fitted maximum (default: the grid's), reached at ``estimate`` (which the interval
    always holds, so a peak narrower than the grid spacing gives a narrow interval).  Returns
    ``{"interval": [lo, hi]`` (grid values within ``half_width`` of the best), ``"range": [grid[0],
    grid[-1]]``, ``"drop"`` (best minus the lowest profile value on the grid), ``"flat"`` (the interval
    reaches both ends)}``.
    """
    g = np.asarray(grid, float).ravel()
    ll = np.asarray(profile_loglik, float).ravel()
    ok = np.isfinite(ll)
    if g.size != ll.size or ok.sum() < 2:
        return {"interval": [None, None], "range": [float(g[0]), float(g[-1])], "drop": None, "flat": False}
    best = float(np.max(ll[ok])) if best_loglik is None or not np.isfinite(best_loglik) \
        else max(float(best_loglik), float(np.max(ll[ok])))
    inside = ok & (ll >= best - half_width)
    sel = g[inside] if estimate is None else np.append(g[inside], float(estimate))
    if sel.size == 0:
        sel = g[ok][[int(np.argmax(ll[ok]))]]
    return {"interval": [float(sel.min()), float(sel.max())], "range": [float(g[0]), float(g[-1])],
            "drop": float(best - np.min(ll[ok])), "flat": bool(inside[0] and inside[-1])}


def _lattice(spec, n_points):
    axes = []
    for p in spec:
        lo, hi = float(p.lower), float(p.upper)
        if not (np.isfinite(lo) and np.isfinite(hi)):
            return None, None
        pad = 1e-3 * (hi - lo)                                # the open ends of the parameter's range
        axes.append(np.linspace(lo + pad, hi - pad, n_points))
    mesh = np.meshgrid(*axes, indexing="ij")
    return axes, np.stack([m.ravel() for m in mesh], axis=1)


def dopamine_profiles(model, trials, params, *, mode: str = "neural", n_points: int | None = None) -> dict:
    """Profile of every fitted parameter of a dopamine fit (:func:`dopa_rl.fit.neural.fit_dopamine`), per
    subject: each parameter on ``n_points`` values over its range, the others maximised over the same
    lattice (default 41 points for one parameter, 21 for two, 11 for three or more), the fitted
    log-likelihood as the reference.  Returns ``{subject: {param: profile_interval(...)}}``; empty when a
    parameter has an infinite bound (no range to scan).

    A lattice maximum is at most the true profile, so a coarse lattice can only make a profile look less
    flat: the check errs towards not warning.
    """
    from dopa_rl.fit.neural import DopamineModel

    dm = DopamineModel(model, mode)
    k = len(dm.spec.names)
    n = n_points or {1: 41, 2: 21}.get(k, 11)
    axes, lattice = _lattice(list(dm.spec), n)
    if lattice is None:
        return {}
    data = dm.pack(trials)
    out = {}
    for s, subject in enumerate(data.subjects):
        ll = np.concatenate([dm.loglik(chunk, data, np.full(len(chunk), s, np.int64))
                             for chunk in np.array_split(lattice, max(1, len(lattice) // 2000))])
        row = params.loc[subject] if subject in params.index else params.loc[str(subject)]
        x_fit = np.array([[float(row[name]) for name in dm.spec.names]])
        fitted = float(dm.loglik(x_fit, data, np.array([s], np.int64))[0])
        cube = ll.reshape((n,) * k)
        out[str(subject)] = {}
        for i, name in enumerate(dm.spec.names):
            other = tuple(j for j in range(k) if j != i)
            prof = np.max(cube, axis=other) if other else cube
            out[str(subject)][name] = profile_interval(axes[i], prof, fitted, estimate=x_fit[0, i])
    return out


def weak_parameters(profiles: dict) -> list[dict]:
    """``[{"subject", "param", "range", "drop"}]`` for every flat profile in ``{subject: {param: info}}``."""
    return [{"subject": s, "param": p, "range": info["range"], "drop": info["drop"]}
            for s, by in profiles.items() for p, info in by.items() if info["flat"]]
