"""Linear mixed models fitted by REML at every column of a trial x time matrix at once (step 1 of ``fui``).

The model at time point ``l`` is ``y_l = X beta_l + Z b_l + e_l`` with one grouping factor: ``b_{l,g} ~ N(0,
sigma_l^2 Lambda_l Lambda_l')`` for each group ``g`` and ``e_l ~ N(0, sigma_l^2 I)``.  The design ``X``, ``Z``
and the groups are the same at every time point; only ``y`` changes.  We fit the lme4 parametrisation: the
residual variance and the fixed effects are profiled out, and the REML criterion (lme4's ``REMLcrit``)::

    -2 l_R(theta) = log|V| + log|X' V^-1 X| + (n - p) (1 + log(2 pi r / (n - p)))

(``V = I + Z Lambda Lambda' Z'`` block-diagonal by group, ``r`` the generalised residual sum of squares) is
minimised over ``theta``, the lower-triangular entries of ``Lambda`` (diagonal >= 0).  By the Woodbury identity
each group contributes only ``q x q`` matrices, built from sufficient statistics computed once (``Z_g'Z_g``,
``Z_g'X_g``, ``Z_g'y``...), so one evaluation of the criterion for all ``L`` columns, each with its own ``theta``,
is a handful of batched ``(L, groups, q, q)`` array operations: no loop over time points or trials.

Each column's criterion is minimised by a projected Newton method run on all columns at once, its gradient
and Hessian by central differences (each difference one batched evaluation for all columns), from lme4's
starting point (``Lambda = I``) and from two scaled starts, then from the solutions of its neighbouring time
points until none improves (the best per column is kept).  :func:`dopa_rl.neural.flmm.fit_pointwise` runs statsmodels ``MixedLM`` per
column instead, the independent reference the tests compare against.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Pointwise", "reml_columns", "reml_criterion"]


@dataclass
class Pointwise:
    """Per time point (rows): fixed effects ``beta`` (L, p), their standard errors ``se`` (L, p), random-effect
    covariance ``cov_re`` (L, q, q), residual variance ``scale`` (L,), REML log-likelihood ``llf``, ``aic`` and
    ``bic`` (lme4's ``AIC``/``BIC`` of a REML fit: ``k`` = fixed + covariance parameters + 1), and the number of
    time points whose optimisation did not meet its tolerance (``not_converged``)."""

    beta: np.ndarray
    se: np.ndarray
    cov_re: np.ndarray
    scale: np.ndarray
    llf: np.ndarray
    aic: np.ndarray
    bic: np.ndarray
    not_converged: int = 0


@dataclass(frozen=True)
class _Stats:
    """Sufficient statistics of one design: per group ``ZtZ`` (G, q, q), ``ZtX`` (G, q, p), ``Zty`` (G, q, L);
    pooled ``XtX`` (p, p), ``Xty`` (p, L), ``yty`` (L,)."""

    ZtZ: np.ndarray
    ZtX: np.ndarray
    Zty: np.ndarray
    XtX: np.ndarray
    Xty: np.ndarray
    yty: np.ndarray
    n: int

    def take(self, cols: np.ndarray) -> "_Stats":
        """The statistics of the columns ``cols`` only."""
        return _Stats(self.ZtZ, self.ZtX, self.Zty[:, :, cols], self.XtX, self.Xty[:, cols], self.yty[cols], self.n)


def _stats(Y: np.ndarray, X: np.ndarray, Z: np.ndarray, groups: np.ndarray) -> _Stats:
    codes = np.unique(groups, return_inverse=True)[1].ravel()
    G = int(codes.max()) + 1
    onehot = np.zeros((G, len(codes)))
    onehot[codes, np.arange(len(codes))] = 1.0
    # per-group sums of outer products, by the group indicator (no loop over trials)
    ZtZ = np.einsum("gn,na,nb->gab", onehot, Z, Z, optimize=True)
    ZtX = np.einsum("gn,na,nb->gab", onehot, Z, X, optimize=True)
    Zty = np.einsum("gn,na,nl->gal", onehot, Z, Y, optimize=True)
    return _Stats(ZtZ, ZtX, Zty, X.T @ X, X.T @ Y, np.einsum("nl,nl->l", Y, Y), len(codes))


def _lambda(theta: np.ndarray, q: int) -> np.ndarray:
    """(L, m) lower-triangular entries (row-major) -> (L, q, q) ``Lambda``."""
    Lam = np.zeros((theta.shape[0], q, q))
    rows, cols = np.tril_indices(q)
    Lam[:, rows, cols] = theta
    return Lam


def _solve(st: _Stats, theta: np.ndarray, q: int, p: int):
    """For each column: ``beta``, ``X'V^-1X``, ``r`` and ``log|V|`` at its ``theta`` (L, m)."""
    Lam = _lambda(theta, q)                                         # (L, q, q)
    M = np.eye(q) + np.einsum("lba,gbc,lcd->lgad", Lam, st.ZtZ, Lam, optimize=True)
    A = np.einsum("lba,gbp->lgap", Lam, st.ZtX, optimize=True)       # Lambda' Z_g' X_g
    a = np.einsum("lba,gbl->lga", Lam, st.Zty, optimize=True)        # Lambda' Z_g' y_l
    C = np.linalg.cholesky(M)
    logdetV = 2.0 * np.log(np.diagonal(C, axis1=-2, axis2=-1)).sum(axis=(1, 2))
    W = np.linalg.solve(M, A)                                        # M^-1 A
    w = np.linalg.solve(M, a[..., None])[..., 0]
    XVX = st.XtX - np.einsum("lgap,lgaq->lpq", A, W, optimize=True)
    XVy = st.Xty.T - np.einsum("lgap,lga->lp", A, w, optimize=True)
    yVy = st.yty - np.einsum("lga,lga->l", a, w, optimize=True)
    beta = np.linalg.solve(XVX, XVy[..., None])[..., 0]
    r = yVy - np.einsum("lp,lp->l", XVy, beta)
    return beta, XVX, r, logdetV, Lam


def reml_criterion(st: _Stats, theta: np.ndarray, q: int, p: int) -> np.ndarray:
    """lme4's REML criterion (``-2`` times the REML log-likelihood) of every column at its ``theta``."""
    _, XVX, r, logdetV, _ = _solve(st, theta, q, p)
    dof = st.n - p
    sign, logdetX = np.linalg.slogdet(XVX)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = logdetV + logdetX + dof * (1.0 + np.log(2.0 * np.pi * np.maximum(r, 1e-300) / dof))
    return np.where((sign > 0) & np.isfinite(out), out, np.inf)


def _derivatives(st: _Stats, th: np.ndarray, q: int, p: int, h: float = 1e-4):
    """Criterion, gradient (L, m) and Hessian (L, m, m) of every column by central differences, each
    difference one batched evaluation for all columns."""
    L, m = th.shape
    f0 = reml_criterion(st, th, q, p)
    E = np.eye(m) * h
    fp = np.stack([reml_criterion(st, th + E[k], q, p) for k in range(m)], axis=1)
    fm = np.stack([reml_criterion(st, th - E[k], q, p) for k in range(m)], axis=1)
    g = (fp - fm) / (2 * h)
    H = np.empty((L, m, m))
    H[:, np.arange(m), np.arange(m)] = (fp - 2 * f0[:, None] + fm) / h ** 2
    for j in range(m):
        for k in range(j + 1, m):
            d = (reml_criterion(st, th + E[j] + E[k], q, p) - reml_criterion(st, th + E[j] - E[k], q, p)
                 - reml_criterion(st, th - E[j] + E[k], q, p) + reml_criterion(st, th - E[j] - E[k], q, p)) / (4 * h * h)
            H[:, j, k] = H[:, k, j] = d
    return f0, g, H


def _optimise(st: _Stats, theta0: np.ndarray, q: int, p: int, lower: np.ndarray,
              max_iter: int = 100) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Projected Newton with backtracking, every column at once: the Hessian's eigenvalues are replaced by
    their absolute values (floored), so every step descends; coordinates held at their bound (a variance at
    0 with the gradient pushing outwards) are left out of the step.  Returns theta, the criterion and whether
    each column converged."""
    th = theta0.copy()
    L, m = th.shape
    done = np.zeros(L, dtype=bool)
    f = reml_criterion(st, th, q, p)
    for _ in range(max_iter):
        act = ~done
        if not act.any():
            break
        st_a = st.take(act)
        f_a, g, H = _derivatives(st_a, th[act], q, p)
        held = (th[act] <= lower + 1e-12) & (g > 0)
        g = np.where(held, 0.0, g)
        H = np.where(held[:, :, None] | held[:, None, :], 0.0, H)
        H[:, np.arange(m), np.arange(m)] = np.where(held, 1.0, H[:, np.arange(m), np.arange(m)])
        w, U = np.linalg.eigh(H)
        w = np.maximum(np.abs(w), 1e-6)
        step = -np.einsum("lab,lb,lcb,lc->la", U, 1.0 / w, U, g)
        f_new, th_new = f_a.copy(), th[act].copy()
        pending = np.ones(len(f_a), dtype=bool)
        alpha = 1.0
        for _ls in range(30):
            trial = np.maximum(th[act][pending] + alpha * step[pending], lower)
            ft = reml_criterion(st_a.take(pending), trial, q, p)
            ok = ft <= f_a[pending]
            idx = np.flatnonzero(pending)[ok]
            f_new[idx], th_new[idx] = ft[ok], trial[ok]
            pending[np.flatnonzero(pending)[ok]] = False
            if not pending.any():
                break
            alpha *= 0.5
        ai = np.flatnonzero(act)
        moved = np.abs(th_new - th[act]).max(axis=1)
        conv = (moved < 1e-9) | (f_a - f_new < 1e-11) | (np.abs(g).max(axis=1) < 1e-8)
        th[ai], f[ai] = th_new, f_new
        done[ai[conv]] = True
    return th, f, done


def reml_columns(Y: np.ndarray, X: np.ndarray, Z: np.ndarray, groups: np.ndarray) -> Pointwise:
    """REML fits of every column of ``Y`` (n x L) on ``X`` (n x p) with random effects ``Z`` (n x q) by ``groups``.

    Parameters
    ----------
    Y : numpy.ndarray
        The outcome, one column per time point, no missing values.
    X, Z : numpy.ndarray
        Fixed and random design matrices (rows are the rows of ``Y``).
    groups : numpy.ndarray
        The grouping factor (one label per row).

    Returns
    -------
    Pointwise
        The per-time-point fits.
    """
    Y, X, Z = (np.asarray(a, float) for a in (Y, X, Z))
    n, L = Y.shape
    p, q = X.shape[1], Z.shape[1]
    m = q * (q + 1) // 2
    st = _stats(Y, X, Z, groups)
    rows, cols = np.tril_indices(q)
    lower = np.where(rows == cols, 0.0, -np.inf)
    best_th, best_f = None, None
    for scale in (1.0, 0.1, 3.0):  # lme4 starts at Lambda = I; other scales guard against a poor local optimum
        th0 = np.tile(np.where(rows == cols, scale, 0.0), (L, 1))
        th, f, conv = _optimise(st, th0, q, p, lower)
        if best_th is None:
            best_th, best_f, best_conv = th, f, conv
        else:
            better = f < best_f - 1e-9
            best_th[better], best_f[better], best_conv[better] = th[better], f[better], conv[better]
    # neighbouring time points have nearby optima: restart every column from its neighbours' solutions until no
    # column improves (a column caught in a poor local optimum is pulled out by a neighbour that is not)
    for _sweep in range(5):
        improved = False
        for shift in (1, -1):
            if L < 2:
                break
            th0 = np.roll(best_th, shift, axis=0)
            th, f, conv = _optimise(st, th0, q, p, lower)
            better = f < best_f - 1e-7
            best_th[better], best_f[better], best_conv[better] = th[better], f[better], conv[better]
            improved |= bool(better.any())
        if not improved:
            break
    beta, XVX, r, _, Lam = _solve(st, best_th, q, p)
    scale = r / (n - p)
    se = np.sqrt(scale[:, None] * np.diagonal(np.linalg.inv(XVX), axis1=-2, axis2=-1))
    cov_re = scale[:, None, None] * (Lam @ np.swapaxes(Lam, -1, -2))
    llf = -0.5 * best_f
    k = p + m + 1
    # a column whose gradient is not near zero (away from a bound) did not converge
    g = np.empty((L, m))
    for j in range(m):
        e = np.zeros(m)
        e[j] = 1e-5
        g[:, j] = (reml_criterion(st, best_th + e, q, p) - reml_criterion(st, best_th - e, q, p)) / 2e-5
    at_bound = np.isclose(best_th, lower[None, :]) & (g > 0)
    bad = int((~best_conv | ~np.isfinite(best_f) | ((np.abs(g) > 1e-2) & ~at_bound).any(axis=1)).sum())
    return Pointwise(beta, se, cov_re, scale, llf, -2 * llf + 2 * k, -2 * llf + np.log(n) * k, bad)
