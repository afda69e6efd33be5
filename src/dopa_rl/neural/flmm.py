"""Functional linear mixed models of trial x time photometry: the fastFMM ``fui`` method.

Loewinger et al. (2023/2025, "A statistical framework for analysis of trial-level temporal dynamics in fiber
photometry experiments") applied the fast univariate inference (FUI) of Cui et al. (2022, J Comput Graph
Stat) to photometry.  For a signal ``Y_ij(s)`` (trial ``j`` of animal ``i`` at trial time ``s``)::

    Y_ij(s) = X_ij' beta(s) + Z_ij' gamma_i(s) + eps_ij(s)

is fitted in three steps, as the R function ``fastFMM::fui`` does (Gaussian family):

1. a linear mixed model (REML) at every time point, giving ``beta~(s)``, the random-effect covariance
   ``H(s)``, the residual variance ``R(s)`` and an AIC/BIC per point: by default all time points at once by
   :func:`dopa_rl.neural.flmm_reml.reml_columns` (lme4's profiled REML criterion, batched over time points),
   or (``engine="statsmodels"``) one statsmodels ``MixedLM`` per time point (:func:`fit_pointwise`);
2. every coefficient function smoothed over ``s`` by a penalised spline with GCV (fui: mgcv ``gam``, a
   thin-plate basis with ``round(L/2)+1`` functions; here a cubic P-spline basis of the same size);
3. inference:

   * **analytic**: ``H`` and ``R`` smoothed over ``s`` (smoothing spline); the cross-time covariance of the
     random effects ``G(s1, s2)`` by the method of moments (``MoM = 1``: products of the fixed-effect
     residuals regressed on the products of the random-effect design columns; random intercept only:
     ``cov(Y(s1), Y(s2)) - beta(s1)' var(X) beta(s2)``), its diagonal replaced by ``H``, smoothed by the
     bivariate P-spline ``fbps`` (35 knots, one GCV smoothing parameter on fbps's grid), the negative
     diagonal of a variance surface put back to ``H``, and the ``q x q`` matrices trimmed as fui's
     ``eigenval_trim`` does (random slopes only; a random intercept's ``G`` is used as it is); then
     ``Var beta~(s) = (sum_i X_i' V_i(s)^-1 X_i)^-1`` with ``V_i(s) = Z_i H(s) Z_i' + R(s) I`` and
     ``Cov(beta~(s1), beta~(s2)) = Var(s1) [sum_i X_i' V_i(s1)^-1 Z_i G(s1,s2) Z_i' V_i(s2)^-1 X_i] Var(s2)``,
     carried through the smoother: ``Var beta^ = M Var beta~ M'`` (eigenvalues trimmed at 0);
   * **bootstrap** (fui ``boot_type = "cluster"``): animals resampled with replacement, steps 1-2 refitted,
     ``Var beta^ = 1.2 x`` the bootstrap covariance (the factor fui applies), and the joint quantile from
     principal components of the bootstrap curves up to 99% of their variance (fui: ``fpca.face`` with
     ``pve = 0.99``, which also smooths the components; here plain PCA of the already smoothed curves);

   pointwise 95% bands ``beta^(s) +- 1.96 sd(s)``; joint bands ``beta^(s) +- q sd(s)``, ``q`` the 95%
   quantile of ``max_s |W(s)|`` over 10,000 draws of a Gaussian process with the correlation of ``beta^``.

The model AIC/BIC is the mean of the pointwise values (the tutorial's ``colMeans(mod$aic)``), computed as
lme4 does for a REML fit: ``-2 llf + 2 k`` and ``-2 llf + log(n) k`` with ``k`` fixed + covariance + 1.
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dopa_rl.errors import InputError
from dopa_rl.neural.flmm_reml import Pointwise, reml_columns
from dopa_rl.neural.flmm_result import FLMMResult
from dopa_rl.neural.psplines import PSplineBasis

__all__ = ["FLMMFormula", "parse_formula", "design", "fit_pointwise", "fit_flmm", "FLMMResult", "ENGINES",
           "BOOT_VAR_INFLATION", "JOINT_DRAWS", "COV_KNOTS"]

#: fui multiplies the bootstrap covariance by 1.2 ("account for within-subject correlation")
BOOT_VAR_INFLATION = 1.2
#: draws of the Gaussian process for the joint-band quantile (fui: N = 10000)
JOINT_DRAWS = 10_000
#: knots of the covariance smoother (fui: nknots_min_cov = 35)
COV_KNOTS = 35

_RE = re.compile(r"\(\s*([^|()]+?)\s*\|\s*([A-Za-z_][\w]*)\s*\)")


@dataclass(frozen=True)
class FLMMFormula:
    """``outcome ~ fixed + (random | group)`` (lme4 syntax, one grouping factor)."""

    text: str
    outcome: str
    fixed: str
    random: str
    group: str


def parse_formula(text: str) -> FLMMFormula:
    """Parse ``"photometry ~ cs + (cs | id)"``; ``(1 | id)`` is a random intercept, ``(cs | id)`` a correlated
    random intercept and slope, ``(0 + cs | id)`` a slope only."""
    lhs, sep, rhs = str(text).partition("~")
    outcome = lhs.strip()
    if not sep or not re.fullmatch(r"[A-Za-z_][\w]*", outcome):
        raise InputError(f"--formula {text!r}: write OUTCOME ~ COVARIATES + (RANDOM | GROUP), "
                         "e.g. 'photometry ~ cs + (cs | id)'")
    terms = _RE.findall(rhs)
    if len(terms) != 1:
        raise InputError(f"--formula {text!r}: give exactly one random-effects term (RANDOM | GROUP), "
                         f"found {len(terms)}")
    fixed = _RE.sub("", rhs).strip()
    fixed = re.sub(r"(^\s*\+|\+\s*$)", "", re.sub(r"\+\s*\+", "+", fixed)).strip() or "1"
    if "|" in fixed or "(" in fixed and ")" not in fixed:
        raise InputError(f"--formula {text!r}: cannot read the fixed part {fixed!r}")
    return FLMMFormula(text=str(text), outcome=outcome, fixed=fixed, random=terms[0][0].strip(), group=terms[0][1])


def design(formula: FLMMFormula, data: pd.DataFrame) -> tuple[np.ndarray, list[str], np.ndarray, list[str], np.ndarray]:
    """Fixed design ``X``, its column names, random design ``Z``, its names and the group labels."""
    import patsy

    if formula.group not in data.columns:
        raise InputError(f"--formula: no column '{formula.group}' (the grouping factor) in the data "
                         f"(columns: {_shown(data.columns)})")
    for part in (formula.fixed, formula.random):
        for name in re.findall(r"(?<![\w.])([A-Za-z_]\w*)(?![\w.(])", part):
            if name not in data.columns:
                raise InputError(f"--formula {formula.text!r}: no column '{name}' in the data "
                                 f"(columns: {_shown(data.columns)})")
    try:
        X = patsy.dmatrix(formula.fixed, data, NA_action="raise", return_type="dataframe")
        Z = patsy.dmatrix(formula.random, data, NA_action="raise", return_type="dataframe")
    except patsy.PatsyError as exc:
        raise InputError(f"--formula {formula.text!r}: {str(exc).splitlines()[0]}") from None
    groups = data[formula.group].to_numpy()
    if pd.isna(groups).any():
        raise InputError(f"--formula: column '{formula.group}' has missing values")
    return X.to_numpy(float), list(X.columns), Z.to_numpy(float), list(Z.columns), groups


def _shown(columns, k: int = 12) -> str:
    cols = [str(c) for c in columns if not re.search(r"[._]?\d+$", str(c)) or str(c)[:1].isdigit()]
    return ", ".join(cols[:k]) + (" ..." if len(cols) > k else "")


# ----------------------------------------------------------------------------------------- step 1: pointwise
def fit_pointwise(Y: np.ndarray, X: np.ndarray, Z: np.ndarray, groups: np.ndarray) -> Pointwise:
    """A REML ``MixedLM`` of each column of ``Y`` (n x L) on ``X`` with random effects ``Z`` by ``groups``."""
    from statsmodels.regression.mixed_linear_model import MixedLM

    n, L = Y.shape
    p, q = X.shape[1], Z.shape[1]
    beta, se = np.empty((L, p)), np.empty((L, p))
    cov_re, scale, llf = np.empty((L, q, q)), np.empty(L), np.empty(L)
    bad = 0
    for l in range(L):
        res, ok = _fit_one(MixedLM(Y[:, l], X, groups, exog_re=Z))
        bad += not ok
        beta[l], se[l], cov_re[l], scale[l], llf[l] = res
    k = p + q * (q + 1) // 2 + 1
    return Pointwise(beta, se, cov_re, scale, llf, -2 * llf + 2 * k, -2 * llf + np.log(n) * k, int(bad))


def _fit_one(model):
    """One REML fit: statsmodels' default optimisers first; where they warn of non-convergence or stop at a
    zero variance with an infinite log-likelihood (a statsmodels quirk at the boundary), Powell's method,
    which handles the boundary, and the better of the two.  Returns (fe, se, cov_re, scale, llf) and whether
    a fit converged without warning."""
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    best, ok = None, False
    for method in (None, "powell"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                res = model.fit(reml=True) if method is None else model.fit(reml=True, method=method)
            except (np.linalg.LinAlgError, ValueError):
                continue
            conv = bool(res.converged) and not any(issubclass(w.category, ConvergenceWarning) for w in caught)
            out = (np.asarray(res.fe_params), np.asarray(res.bse_fe), np.atleast_2d(np.asarray(res.cov_re)),
                   float(res.scale), float(res.llf))
        if np.isfinite(out[4]) and (best is None or out[4] > best[4]):
            best, ok = out, conv
        if ok:
            break
    if best is None:
        raise InputError("a mixed model could not be fitted at some time point (check the formula and the data)")
    return best, ok


# ----------------------------------------------------------------------------------------- fit
def _eigen_trim(V: np.ndarray) -> np.ndarray:
    """fui's ``eigenval_trim``, batched over leading axes: a matrix whose eigenvalues are all positive is kept;
    otherwise only its positive eigen-components are, and when none is positive its leading component (so a
    1 x 1 matrix is never changed)."""
    w, U = np.linalg.eigh(V)
    pos = w > 0
    keep = np.where(pos.any(axis=-1, keepdims=True), np.where(pos, w, 0.0),
                    np.where(np.arange(w.shape[-1]) == w.shape[-1] - 1, w, 0.0))
    out = (U * keep[..., None, :]) @ np.swapaxes(U, -1, -2)
    return np.where(pos.all(axis=-1)[..., None, None], V, out)


def _joint_quantile(var: np.ndarray, level: float, rng: np.random.Generator) -> float:
    """fui's qn: the ``level`` quantile of ``max_s |W(s)|``, ``W`` Gaussian with the correlation of ``var``."""
    sd = np.sqrt(np.clip(np.diag(var), 1e-300, None))
    C = var / np.outer(sd, sd)
    w, U = np.linalg.eigh(C)
    root = U * np.sqrt(np.clip(w, 0, None))
    draws = rng.standard_normal((JOINT_DRAWS, len(w))) @ root.T
    return float(np.quantile(np.abs(draws).max(axis=1), level))


def _coef_basis(L: int) -> PSplineBasis:
    """fui's basis size for the coefficient functions: ``round(L/2) + 1`` functions."""
    return PSplineBasis.build(np.arange(L, dtype=float), n_basis=round(L / 2) + 1)


def _smooth_coefs(beta_tilde: np.ndarray, basis: PSplineBasis) -> tuple[np.ndarray, list[float]]:
    out, lams = np.empty_like(beta_tilde), []
    for j, row in enumerate(beta_tilde):  # one GCV smooth per coefficient (p of them)
        out[j], lam = basis.smooth_1d(row)
        lams.append(lam)
    return out, lams


ENGINES = ("reml", "statsmodels")


def fit_flmm(data: pd.DataFrame, Y: np.ndarray, formula: str | FLMMFormula, time: np.ndarray, *,
             inference: str = "analytic", n_boot: int = 200, level: float = 0.95, seed: int = 0,
             engine: str = "reml", signal_unit: str = "signal units", events: dict | None = None,
             settings: dict | None = None) -> FLMMResult:
    """Fit a functional linear mixed model by fastFMM's fast univariate inference.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per trial: the covariates and the grouping factor of ``formula``.
    Y : numpy.ndarray
        The signal, trials x time points (rows are the rows of ``data``); trials with a missing value are
        left out (as fui does) and counted in ``settings["dropped_trials"]``.
    formula : str or FLMMFormula
        ``outcome ~ fixed + (random | group)`` in lme4 syntax, e.g. ``"photometry ~ cs + (cs | id)"``.
    time : numpy.ndarray
        The time of each column, seconds from the event.
    inference : {"analytic", "bootstrap"}
        fui's analytic variance (method-of-moments random-effect covariance) or its cluster bootstrap.
    n_boot : int
        Bootstrap resamples of the groups (``inference="bootstrap"``), at least 10.
    level : float
        Coverage of the pointwise and joint bands (0.95).
    seed : int
        Seed of the bootstrap resampling and of the Gaussian draws for the joint multiplier.
    engine : {"reml", "statsmodels"}
        The pointwise fits: our batched REML over all time points (:mod:`dopa_rl.neural.flmm_reml`), or one
        statsmodels ``MixedLM`` per time point (slower, and its optimiser stops short of the optimum at some
        points; kept as the reference).
    signal_unit, events, settings
        Stored on the result for its figures and provenance (``events``: marks in seconds from the event).

    Returns
    -------
    FLMMResult
        Smoothed coefficient functions with pointwise and joint bands, AIC and BIC.
    """
    f = parse_formula(formula) if isinstance(formula, str) else formula
    Y = np.asarray(Y, float)
    time = np.asarray(time, float)
    if Y.ndim != 2 or Y.shape[0] != len(data) or Y.shape[1] != len(time):
        raise InputError(f"the signal matrix is {Y.shape}, expected {len(data)} trials x {len(time)} time points")
    if Y.shape[1] < 8:
        raise InputError(f"the signal has {Y.shape[1]} time points; a functional model needs at least 8")
    if inference not in ("analytic", "bootstrap"):
        raise InputError(f"`inference` {inference!r}: choose analytic or bootstrap")
    if engine not in ENGINES:
        raise InputError(f"`engine` {engine!r}: choose one of {', '.join(ENGINES)}")
    if not 0 < level < 1:
        raise InputError(f"`level` {level}: give a coverage between 0 and 1, e.g. 0.95")
    keep = np.isfinite(Y).all(axis=1)  # fui (analytic) removes trials with missing signal values
    data, Y = data.loc[keep].reset_index(drop=True), Y[keep]
    X, names, Z, _, groups = design(f, data)
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise InputError(f"--formula: the grouping factor '{f.group}' has {n_groups} level; a mixed model needs 2 or more")
    if len(data) <= X.shape[1] + Z.shape[1]:
        raise InputError(f"{len(data)} complete trials are too few for {X.shape[1]} fixed and {Z.shape[1]} random effects")
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise InputError(f"--formula {f.text!r}: the fixed effects are collinear ({', '.join(names)})")
    rng = np.random.default_rng(seed)
    basis = _coef_basis(Y.shape[1])
    pw = _pointwise(Y, X, Z, groups, engine)
    beta, lams = _smooth_coefs(pw.beta.T, basis)
    if inference == "analytic":
        var = _analytic_var(Y, X, Z, groups, pw, beta, lams, basis)
    else:
        var = _bootstrap_var(Y, X, Z, groups, basis, n_boot, rng, engine)
    qn = np.array([_joint_quantile(v, level, rng) for v in var])
    sd = np.sqrt(np.clip(np.einsum("pll->pl", var), 0, None))
    info = {"engine": engine, "lambda": dict(zip(names, map(float, lams))), "not_converged": pw.not_converged,
            "dropped_trials": int((~keep).sum()), "n_basis": int(basis.A.shape[1]), "seed": int(seed),
            **({"n_boot": int(n_boot)} if inference == "bootstrap" else {}), **(settings or {})}
    return FLMMResult(formula=f.text, names=names, time=time, estimate=beta, unsmoothed=pw.beta.T, sd=sd, qn=qn,
                      aic_pointwise=pw.aic, bic_pointwise=pw.bic, n_trials=len(data), n_groups=n_groups,
                      inference=inference, level=level, settings=info, signal_unit=signal_unit,
                      events=dict(events or {}), cov=var)


def _pointwise(Y, X, Z, groups, engine: str) -> Pointwise:
    return reml_columns(Y, X, Z, groups) if engine == "reml" else fit_pointwise(Y, X, Z, groups)


def _smooth_over_time(rows: np.ndarray) -> np.ndarray:
    """Each row smoothed over its index by a cubic smoothing spline with GCV (R ``smooth.spline``)."""
    from scipy.interpolate import make_smoothing_spline

    x = np.arange(rows.shape[-1], dtype=float)
    return np.array([make_smoothing_spline(x, r)(x) if np.ptp(r) > 0 else r for r in rows])


def _analytic_var(Y, X, Z, groups, pw: Pointwise, beta, lams, basis) -> np.ndarray:
    """fui's analytic covariance of the smoothed coefficient functions, (p, L, L)."""
    n, L = Y.shape
    p, q = X.shape[1], Z.shape[1]
    iu = np.triu_indices(q)
    variance = iu[0] == iu[1]
    # H(s), R(s): variance components smoothed over time, variances clipped at 0
    H_rows = _smooth_over_time(pw.cov_re[:, iu[0], iu[1]].T)  # (m, L)
    H_rows[variance] = np.clip(H_rows[variance], 0, None)
    R = np.clip(_smooth_over_time(pw.scale[None])[0], 1e-12, None)
    # G(s1, s2): method of moments, diagonal replaced by H, bivariate smoothing
    if q == 1 and np.allclose(Z, 1.0):  # fui's G_estimate_randint: cov(Y(s1), Y(s2)) - beta(s1)' var(X) beta(s2)
        Xc = X - X.mean(axis=0)
        G_tilde = (np.cov(Y.T) - beta.T @ (Xc.T @ Xc / (n - 1)) @ beta)[None]
    else:  # G_estimate, MoM = 1: products of fixed-effect residuals regressed on products of Z's columns
        resid = Y - X @ beta  # (n, L)
        D = np.column_stack([Z[:, a] * Z[:, b] * (1.0 if a == b else 2.0) for a, b in zip(*iu)])
        Wm = np.linalg.pinv(D.T @ D) @ D.T  # (m, n)
        G_tilde = np.einsum("kn,ni,nj->kij", Wm, resid, resid, optimize=True)
    cov_basis = PSplineBasis.build(np.arange(L, dtype=float), n_basis=min(COV_KNOTS + 3, L))
    G_hat = np.empty_like(G_tilde)
    for k in range(len(G_tilde)):  # one surface per variance/covariance term (m of them)
        Gt = G_tilde[k].copy()
        np.fill_diagonal(Gt, H_rows[k])
        G_hat[k] = cov_basis.smooth_2d(Gt)
        if variance[k]:  # a variance surface's negative diagonal goes back to H (fui: diag(GHat) < 0)
            d = np.diag(G_hat[k]).copy()
            neg = d < 0
            d[neg] = np.diag(Gt)[neg]
            np.fill_diagonal(G_hat[k], d)
    # q x q matrices: H per time point, G per pair of time points, trimmed as fui does
    Hm = np.zeros((L, q, q))
    Hm[:, iu[0], iu[1]] = H_rows.T
    Hm[:, iu[1], iu[0]] = H_rows.T
    Hm = _eigen_trim(Hm)
    Gm = np.zeros((L, L, q, q))
    Gm[:, :, iu[0], iu[1]] = np.moveaxis(G_hat, 0, -1)
    Gm[:, :, iu[1], iu[0]] = np.moveaxis(G_hat, 0, -1)
    if q > 1:  # fui trims the q x q matrices of a random slope model; a random intercept's G is used as it is
        Gm = _eigen_trim(Gm)
    # Var beta~(s) = (sum_i X_i' V_i(s)^-1 X_i)^-1 and W_i(s) = X_i' V_i(s)^-1 Z_i, for every group
    XtVX = np.zeros((L, p, p))
    Ws = []
    for g in np.unique(groups):  # one batched block per group (a handful of animals)
        rows = groups == g
        Xi, Zi = X[rows], Z[rows]
        V = np.einsum("ia,tab,jb->tij", Zi, Hm, Zi, optimize=True) + R[:, None, None] * np.eye(rows.sum())
        Vinv = np.linalg.inv(V)
        XtVX += np.einsum("ia,tij,jb->tab", Xi, Vinv, Xi, optimize=True)
        Ws.append(np.einsum("ia,tij,jb->tab", Xi, Vinv, Zi, optimize=True))
    A = np.linalg.inv(XtVX)  # (L, p, p)
    middle = sum(np.einsum("sau,stuv,tbv->stab", Wi, Gm, Wi, optimize=True) for Wi in Ws)  # (L, L, p, p)
    cov = np.einsum("sab,stbc,tdc->stad", A, middle, A, optimize=True)
    idx = np.arange(L)
    cov[idx, idx] = A
    var = np.empty((p, L, L))
    for j in range(p):
        M = basis.smoother(lams[j])
        var[j] = _eigen_trim(M @ cov[:, :, j, j] @ M.T)
    return var


def _bootstrap_var(Y, X, Z, groups, basis, n_boot: int, rng, engine: str) -> np.ndarray:
    """fui's cluster bootstrap: groups resampled with replacement, steps 1-2 refitted; (p, L, L)."""
    if n_boot < 10:
        raise InputError(f"`n_boot` {n_boot}: give at least 10 bootstrap resamples")
    ids = np.unique(groups)
    boots = []
    for _ in range(n_boot):
        pick = rng.choice(len(ids), size=len(ids), replace=True)
        rows = [np.flatnonzero(groups == ids[k]) for k in pick]
        new_groups = np.concatenate([np.full(len(r), i) for i, r in enumerate(rows)])
        take = np.concatenate(rows)
        Xb = X[take]
        if np.linalg.matrix_rank(Xb) < X.shape[1]:
            continue  # a resample in which a covariate does not vary cannot be fitted
        pw = _pointwise(Y[take], Xb, Z[take], new_groups, engine)
        boots.append(_smooth_coefs(pw.beta.T, basis)[0])
    if len(boots) < 10:
        raise InputError("bootstrap: fewer than 10 resamples could be fitted")
    B = np.array(boots)  # (b, p, L)
    return np.array([BOOT_VAR_INFLATION * _fpca_cov(B[:, j]) for j in range(B.shape[1])])


def _fpca_cov(curves: np.ndarray, pve: float = 0.99) -> np.ndarray:
    """The covariance of bootstrap curves (b x L) restricted to the principal components explaining ``pve`` of
    the variance (fui simulates the joint quantile from fpca.face, pve 0.99)."""
    C = np.cov(curves.T)
    w, U = np.linalg.eigh(C)
    w, U = w[::-1], U[:, ::-1]
    w = np.clip(w, 0, None)
    k = int(np.searchsorted(np.cumsum(w) / max(w.sum(), 1e-300), pve) + 1)
    full = (U * w) @ U.T
    approx = (U[:, :k] * w[:k]) @ U[:, :k].T
    # keep the pointwise variances of the full covariance; the PCA part gives the correlation for qn
    sd_full = np.sqrt(np.clip(np.diag(full), 1e-300, None))
    sd_k = np.sqrt(np.clip(np.diag(approx), 1e-300, None))
    return approx * np.outer(sd_full / sd_k, sd_full / sd_k)
