"""Event-kernel regression: the model-free encoding model of photometry traces (Parker et al. 2016).

The trace is modelled as a sum of event-locked kernels plus an intercept,

    y_t = c + sum_e sum_b beta_{e,b} * sum_{events i of e} a_i * B_b(t - t_i) + noise,

where each kernel is expanded in a smooth basis ``B_b`` (cubic B-splines, or raised cosines) over a lag
window (``window`` s around the event; negative lags capture anticipation), and ``a_i`` is 1 or a
per-event modulator such as the model RPE ("RPE-modulated regressor").  Coefficients are ridge
estimates in closed form, ``(X'X + lambda I)^-1 X'y`` on centred data (intercept unpenalised), with
``lambda`` chosen by cross-validation over contiguous blocks of the session (so autocorrelated noise
does not leak between training and test folds).  The cross-validated R^2 is pooled over folds, and each
event's unique contribution is the drop in cross-validated R^2 when its columns are removed.

Fold Gram matrices are computed once; every lambda and every reduced model is then a small solve.

Two events whose kernels cannot be told apart (one always follows the other at the same lag inside the
window) are reported in ``collinear`` (:func:`kernel_collinearity`): for each pair, the variance inflation
of one event's basis coefficients caused by the other, ``max_j [(X_ab' X_ab)^-1]_jj / [(X_a' X_a)^-1]_jj``
on centred columns (inflation by the basis's own overlap is divided out), with the lag between them.
"""
from __future__ import annotations

import numpy as np
from scipy import interpolate, signal

from dopa_rl.errors import InputError
from dopa_rl.models.indicator import impulse_train
from dopa_rl.neural.kernel_result import KernelResult

__all__ = ["bspline_basis", "raised_cosine_basis", "event_design", "event_kernel_regression", "fit_diff_exp",
           "kernel_collinearity", "event_lags", "VIF_THRESHOLD", "KernelResult"]

#: variance inflation (caused by another event) above which two kernels are reported as inseparable
VIF_THRESHOLD = 10.0


def bspline_basis(n_lags: int, n_basis: int, degree: int = 3) -> np.ndarray:
    """Clamped B-spline basis with uniform interior knots: (n_lags, n_basis), rows sum to 1."""
    if n_basis < degree + 1 or n_lags < 2:
        raise InputError(f"B-spline basis: need n_basis >= {degree + 1} and at least 2 lags")
    n_inner = n_basis - degree + 1
    inner = np.linspace(0.0, 1.0, n_inner)
    knots = np.concatenate([np.zeros(degree), inner, np.ones(degree)])
    x = np.linspace(0.0, 1.0, n_lags)
    B = interpolate.BSpline.design_matrix(x, knots, degree).toarray()
    return B


def raised_cosine_basis(n_lags: int, n_basis: int) -> np.ndarray:
    """Raised-cosine bumps with uniform centres tiling the window (n_lags, n_basis)."""
    if n_basis < 2 or n_lags < 2:
        raise InputError("raised-cosine basis: need at least 2 functions and 2 lags")
    x = np.linspace(0.0, 1.0, n_lags)[:, None]
    centres = np.linspace(0.0, 1.0, n_basis)[None, :]
    width = 1.0 / (n_basis - 1)
    arg = np.clip((x - centres) * np.pi / (2 * width), -np.pi, np.pi)
    return 0.5 * (1 + np.cos(arg))


def _event_spec(name, spec):
    if isinstance(spec, tuple) and len(spec) == 2:
        times, amps = np.asarray(spec[0], float).ravel(), np.asarray(spec[1], float).ravel()
    else:
        times = np.asarray(spec, float).ravel()
        amps = np.ones_like(times)
    if times.size != amps.size:
        raise InputError(f"event {name!r}: {times.size} times but {amps.size} amplitudes")
    ok = np.isfinite(times) & np.isfinite(amps)
    return times[ok], amps[ok]


def event_design(events: dict, fs: float, n_samples: int, *, window=(-0.5, 3.0), n_basis: int = 12,
                 basis: str = "bspline", t0: float = 0.0) -> dict:
    """Design matrix of basis-expanded event regressors.

    ``events``: ``{name: times}`` or ``{name: (times, amplitudes)}`` (times in s on the trace clock).
    Returns ``{"X": (n_samples, n_events * n_basis), "groups": {name: column slice}, "basis": (n_lags,
    n_basis), "lags": lag of each basis row (s)}``.
    """
    if not events:
        raise InputError("event kernels: give at least one event")
    lo, hi = float(window[0]), float(window[1])
    if not hi > lo:
        raise InputError(f"event kernels: window must be (start, stop) with stop > start, got {window}")
    s0 = int(np.round(lo * fs))
    n_lags = int(np.round(hi * fs)) - s0 + 1
    B = bspline_basis(n_lags, n_basis) if basis == "bspline" else raised_cosine_basis(n_lags, n_basis)
    cols, groups = [], {}
    for name, spec in events.items():
        times, amps = _event_spec(name, spec)
        # an event at sample p feeds lags s0.. of the kernel: impulses placed at p + s0
        u = impulse_train(times, amps, fs, n_samples, t0 - s0 / fs)
        conv = signal.fftconvolve(u[None, :], B.T, axes=-1)[:, :n_samples]
        groups[name] = slice(len(cols) * n_basis, (len(cols) + 1) * n_basis)
        cols.append(conv)
    X = np.concatenate(cols, axis=0).T
    return {"X": X, "groups": groups, "basis": B, "lags": (s0 + np.arange(n_lags)) / fs}


def _inflation(G, na):
    """max over the first ``na`` columns of diag(G^-1) / diag(Ga^-1): variance inflation caused by the rest."""
    try:
        full = np.diag(np.linalg.inv(G))[:na]
        alone = np.diag(np.linalg.inv(G[:na, :na]))
    except np.linalg.LinAlgError:
        return float("inf")
    with np.errstate(invalid="ignore", divide="ignore"):
        r = full / alone
    r = r[np.isfinite(r)]
    if r.size == 0 or np.any(full < 0):
        return float("inf")
    return float(r.max())


def kernel_collinearity(X, groups: dict, *, threshold: float = VIF_THRESHOLD) -> list[dict]:
    """Pairs of events whose kernels inflate each other's coefficient variance above ``threshold``.

    ``X``, ``groups``: an :func:`event_design`.  Returns ``[{"events": [a, b], "vif": v}]`` (largest first),
    ``v`` the larger of the inflation of ``a``'s coefficients by ``b`` and of ``b``'s by ``a``; ``inf``
    when the two are exactly collinear (or an event's columns are empty).
    """
    Xc = np.asarray(X, float) - np.asarray(X, float).mean(axis=0)
    names = list(groups)
    idx = {n: np.arange(Xc.shape[1])[groups[n]] for n in names}
    out = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            ia, ib = idx[a], idx[b]
            cols = np.r_[ia, ib]
            G = Xc[:, cols].T @ Xc[:, cols]
            perm = np.r_[np.arange(ia.size, cols.size), np.arange(ia.size)]     # b's columns first
            v = max(_inflation(G, ia.size), _inflation(G[np.ix_(perm, perm)], ib.size))
            if not v <= threshold:
                out.append({"events": [a, b], "vif": v})
    return sorted(out, key=lambda d: -d["vif"])


def event_lags(first, second, max_lag: float) -> dict | None:
    """Lag from each ``first`` event to the next ``second`` event within ``max_lag`` s (either order is
    tried; the one with more pairs wins): ``{"leader", "median_s", "sd_s", "n"}``, or None without pairs."""
    best = None
    for lead, (a, b) in (("first", (first, second)), ("second", (second, first))):
        a = np.sort(np.asarray(a, float)[np.isfinite(a)])
        b = np.sort(np.asarray(b, float)[np.isfinite(b)])
        if a.size == 0 or b.size == 0:
            continue
        j = np.searchsorted(b, a, side="left")
        ok = j < b.size
        lag = b[np.minimum(j, b.size - 1)] - a
        ok &= lag <= max_lag
        if ok.sum() and (best is None or ok.sum() > best["n"]):
            best = {"leader": lead, "median_s": float(np.median(lag[ok])), "sd_s": float(np.std(lag[ok])),
                    "n": int(ok.sum())}
    return best


def _fold_stats(X, y, n_folds):
    n = y.size
    edges = np.linspace(0, n, n_folds + 1).astype(int)
    st = []
    for a, b in zip(edges[:-1], edges[1:]):
        Xf, yf = X[a:b], y[a:b]
        st.append({"n": b - a, "sx": Xf.sum(0), "sy": yf.sum(), "G": Xf.T @ Xf, "c": Xf.T @ yf,
                   "yy": yf @ yf})
    tot = {k: sum(s[k] for s in st) for k in st[0]}
    return st, tot


def _solve(G, c, sx, sy, n, cols, lam):
    m = sx[cols] / n
    my = sy / n
    Gc = G[np.ix_(cols, cols)] - n * np.outer(m, m)
    cc = c[cols] - n * m * my
    beta = np.linalg.solve(Gc + lam * np.eye(cols.size), cc)
    return beta, my - m @ beta


def _cv_r2(st, tot, cols, lam):
    """Pooled cross-validated R^2 of the ridge model on columns ``cols`` (contiguous folds)."""
    sse = 0.0
    for f in st:
        tr = {k: tot[k] - f[k] for k in ("n", "sx", "sy", "G", "c")}
        beta, icpt = _solve(tr["G"], tr["c"], tr["sx"], tr["sy"], tr["n"], cols, lam)
        # SSE on the test fold from its sufficient statistics
        b = beta
        pred_sq = b @ f["G"][np.ix_(cols, cols)] @ b + 2 * icpt * (f["sx"][cols] @ b) + f["n"] * icpt ** 2
        cross = f["c"][cols] @ b + icpt * f["sy"]
        sse += f["yy"] - 2 * cross + pred_sq
    sst = tot["yy"] - tot["sy"] ** 2 / tot["n"]
    return 1.0 - sse / sst


def event_kernel_regression(trace, fs: float, events: dict, *, window=(-0.5, 3.0), n_basis: int = 12,
                            basis: str = "bspline", lambdas=None, n_folds: int = 5, t0: float = 0.0,
                            unique: bool = True) -> KernelResult:
    """Fit event kernels to a photometry trace by ridge regression with cross-validated lambda.

    Returns a :class:`~dopa_rl.neural.kernel_result.KernelResult`: ``lags`` (s), ``kernels`` {name: (n_lags,)},
    ``r2_cv``, ``r2_train``, ``lambda_``, ``unique`` {name: full r2_cv - r2_cv without that event}, ``intercept``,
    ``coef`` {name: basis weights}, ``collinear`` [{"events": [a, b], "vif", "lag": {"leader", "median_s",
    "sd_s", "n"}}] (:func:`kernel_collinearity` at ``VIF_THRESHOLD``: those kernels are not separable).
    ``lambda`` is chosen on a log grid (default 1e-3..1e4 times the mean diagonal of X'X
    divided by n) for each model separately.
    """
    y = np.asarray(trace, float).ravel()
    if not np.all(np.isfinite(y)):
        raise InputError("event kernels: the trace has non-finite samples")
    if n_folds < 2 or y.size < 10 * n_folds:
        raise InputError(f"event kernels: need n_folds >= 2 and at least {10 * n_folds} samples")
    d = event_design(events, fs, y.size, window=window, n_basis=n_basis, basis=basis, t0=t0)
    X = d["X"]
    st, tot = _fold_stats(X, y, n_folds)
    scale = np.mean(np.diag(tot["G"])) if X.shape[1] else 1.0
    grid = scale * np.logspace(-5, 2, 15) if lambdas is None else np.asarray(lambdas, float)

    def best_model(cols):
        r2 = np.array([_cv_r2(st, tot, cols, lam) for lam in grid])
        i = int(np.argmax(r2))
        return float(r2[i]), float(grid[i])

    all_cols = np.arange(X.shape[1])
    r2_cv, lam = best_model(all_cols)
    beta, icpt = _solve(tot["G"], tot["c"], tot["sx"], tot["sy"], tot["n"], all_cols, lam)
    pred = icpt + X @ beta
    r2_train = 1.0 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2)
    kernels = {name: d["basis"] @ beta[sl] for name, sl in d["groups"].items()}
    collinear = kernel_collinearity(X, d["groups"])
    span = float(window[1]) - float(window[0])
    for c in collinear:
        a, b = (_event_spec(n, events[n])[0] for n in c["events"])
        lag = event_lags(a, b, span)
        if lag is not None:
            lag["leader"] = c["events"][0] if lag["leader"] == "first" else c["events"][1]
        c["lag"] = lag
    out = KernelResult(lags=d["lags"], kernels=kernels, r2_cv=r2_cv, r2_train=float(r2_train), lambda_=lam,
                       intercept=float(icpt), coef={name: beta[sl] for name, sl in d["groups"].items()},
                       settings={"rate_hz": float(fs), "window_s": [float(w) for w in window],
                                 "n_basis": int(n_basis), "basis": basis, "n_folds": int(n_folds), "t0": float(t0)},
                       collinear=collinear)
    if unique:
        uniq = {}
        for name, sl in d["groups"].items():
            keep = np.setdiff1d(all_cols, np.arange(X.shape[1])[sl])
            # with no event left the model is the intercept alone: cross-validated R^2 about 0
            uniq[name] = r2_cv - (best_model(keep)[0] if keep.size else 0.0)
        out.unique = uniq
    return out


def fit_diff_exp(lags, kernel) -> dict:
    """Fit ``a * k(t - d)`` to an estimated kernel, ``k`` the peak-normalised difference of exponentials
    ``exp(-t / decay) - exp(-t / rise)`` (0 before the delay ``d``; ``a`` is the peak height).

    Turns an event kernel estimated from data into the parametric indicator kernel of
    :mod:`dopa_rl.models.indicator` (``diff_exp_kernel(fs, rise_s, decay_s)``, shifted by ``delay_s``).
    Least squares over lags >= 0 (positive lobe: the kernel's sign is taken from its largest excursion).
    Returns ``{"rise_s", "decay_s", "delay_s", "amplitude", "peak_s", "r2"}``.
    """
    from scipy import optimize

    t = np.asarray(lags, float).ravel()
    k = np.asarray(kernel, float).ravel()
    if t.size != k.size or t.size < 5:
        raise InputError("fit_diff_exp: lags and kernel must have the same length (at least 5)")
    sel = t >= 0
    t, k = t[sel], k[sel]
    sign = 1.0 if k.max() >= -k.min() else -1.0
    kk = sign * k
    span = max(t.max(), 1e-3)

    def model(p, tt):
        a, rise, extra, d = p                      # a: peak height; decay = rise + extra
        decay = rise + extra
        s = np.clip(tt - d, 0.0, None)
        t_star = rise * decay / extra * np.log(decay / rise)
        peak = np.exp(-t_star / decay) - np.exp(-t_star / rise)
        return a * (np.exp(-s / decay) - np.exp(-s / rise)) / peak

    t_pk = t[np.argmax(kk)]
    starts = [(kk.max(), max(t_pk / 3, 0.02), max(t_pk, 0.1), 0.0),
              (kk.max(), 0.05, 1.0, 0.0), (kk.max(), 0.2, 0.3, 0.0)]
    best = None
    for p0 in starts:
        res = optimize.least_squares(lambda p: model(p, t) - kk, p0,
                                     bounds=([0, 1e-3, 1e-3, 0], [np.inf, span, 10 * span, span / 2]))
        if best is None or res.cost < best.cost:
            best = res
    a, rise, extra, d = best.x
    decay = rise + extra
    peak = d + rise * decay / (decay - rise) * np.log(decay / rise)
    r2 = 1 - np.sum((model(best.x, t) - kk) ** 2) / np.sum((kk - kk.mean()) ** 2)
    return {"rise_s": float(rise), "decay_s": float(decay), "delay_s": float(d), "amplitude": float(sign * a),
            "peak_s": float(peak), "r2": float(r2)}
