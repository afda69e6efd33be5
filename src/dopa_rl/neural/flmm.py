"""Functional linear mixed models of trial x time photometry: the fastFMM ``fui`` method.

Loewinger et al. (2023/2025, "A statistical framework for analysis of trial-level temporal dynamics in fiber
photometry experiments") applied the fast univariate inference (FUI) of Cui et al. (2022, J Comput Graph
Stat) to photometry.  For a signal ``Y_ij(s)`` (trial ``j`` of animal ``i`` at trial time ``s``)::

    Y_ij(s) = X_ij' beta(s) + Z_ij' gamma_i(s) + eps_ij(s)

is fitted in three steps, as the R function ``fastFMM::fui`` does (Gaussian family):

1. a linear mixed model (REML, statsmodels ``MixedLM``) at every time point, giving ``beta~(s)``, the
   random-effect covariance ``H(s)``, the residual variance ``R(s)`` and an AIC/BIC per point;
2. every coefficient function smoothed over ``s`` by a penalised spline with GCV (fui: mgcv ``gam``, a
   thin-plate basis with ``round(L/2)+1`` functions; here a cubic P-spline basis of the same size);
3. inference:

   * **analytic**: ``H`` and ``R`` smoothed over ``s`` (smoothing spline); the cross-time covariance of the
     random effects ``G(s1, s2)`` by the method of moments (``MoM = 1``: products of the fixed-effect
     residuals regressed on the products of the random-effect design columns; random intercept only:
     ``cov(Y(s1), Y(s2)) - beta(s1)' var(X) beta(s2)``), its diagonal replaced by ``H``, smoothed by the
     bivariate P-spline ``fbps`` and trimmed to positive semi-definite; then
     ``Var beta~(s) = (sum_i X_i' V_i(s)^-1 X_i)^-1`` with ``V_i(s) = Z_i H(s) Z_i' + R(s) I`` and
     ``Cov(beta~(s1), beta~(s2)) = Var(s1) [sum_i X_i' V_i(s1)^-1 Z_i G(s1,s2) Z_i' V_i(s2)^-1 X_i] Var(s2)``,
     carried through the smoother: ``Var beta^ = M Var beta~ M'`` (eigenvalues trimmed at 0);
   * **bootstrap** (fui ``boot_type = "cluster"``): animals resampled with replacement, steps 1-2 refitted,
     ``Var beta^ = 1.2 x`` the bootstrap covariance (the factor fui applies), and the joint quantile from
     functional PCA of the bootstrap curves (components up to 99% of the variance);

   pointwise 95% bands ``beta^(s) +- 1.96 sd(s)``; joint bands ``beta^(s) +- q sd(s)``, ``q`` the 95%
   quantile of ``max_s |W(s)|`` over 10,000 draws of a Gaussian process with the correlation of ``beta^``.

The model AIC/BIC is the mean of the pointwise values (the tutorial's ``colMeans(mod$aic)``), computed as
lme4 does for a REML fit: ``-2 llf + 2 k`` and ``-2 llf + log(n) k`` with ``k`` fixed + covariance + 1.
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from dopa_rl.errors import InputError
from dopa_rl.neural.psplines import PSplineBasis

__all__ = ["FLMMFormula", "parse_formula", "Pointwise", "fit_pointwise", "FLMMResult", "fit_flmm",
           "design", "BOOT_VAR_INFLATION", "JOINT_DRAWS"]

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
        raise InputError(f"--formula: no column '{formula.group}' (the grouping factor) in the data")
    try:
        X = patsy.dmatrix(formula.fixed, data, NA_action="raise", return_type="dataframe")
        Z = patsy.dmatrix(formula.random, data, NA_action="raise", return_type="dataframe")
    except patsy.PatsyError as exc:
        raise InputError(f"--formula {formula.text!r}: {str(exc).splitlines()[0]}") from None
    groups = data[formula.group].to_numpy()
    if pd.isna(groups).any():
        raise InputError(f"--formula: column '{formula.group}' has missing values")
    return X.to_numpy(float), list(X.columns), Z.to_numpy(float), list(Z.columns), groups


# ----------------------------------------------------------------------------------------- step 1: pointwise
@dataclass
class Pointwise:
    """Per time point (rows): fixed effects, their standard errors, random-effect covariance, residual
    variance, REML log-likelihood, AIC and BIC."""

    beta: np.ndarray      # (L, p)
    se: np.ndarray        # (L, p)
    cov_re: np.ndarray    # (L, q, q)
    scale: np.ndarray     # (L,)
    llf: np.ndarray       # (L,)
    aic: np.ndarray
    bic: np.ndarray
    not_converged: int = 0


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


# ----------------------------------------------------------------------------------------- result
@dataclass
class FLMMResult:
    """Smoothed coefficient functions with pointwise and joint bands; ``time`` in seconds from the event."""

    formula: str
    names: list[str]
    time: np.ndarray
    beta_tilde: np.ndarray   # (p, L) unsmoothed
    beta: np.ndarray         # (p, L) smoothed
    var: np.ndarray          # (p, L, L) covariance of the smoothed coefficient functions
    qn: np.ndarray           # (p,) joint-band multipliers
    n_trials: int
    n_groups: int
    pointwise: Pointwise
    inference: str = "analytic"
    level: float = 0.95
    dropped_rows: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def aic(self) -> float:
        return float(np.mean(self.pointwise.aic))

    @property
    def bic(self) -> float:
        return float(np.mean(self.pointwise.bic))

    def sd(self) -> np.ndarray:
        return np.sqrt(np.clip(np.einsum("pll->pl", self.var), 0, None))

    def bands(self, name: str) -> dict[str, np.ndarray]:
        j = self.names.index(name)
        z = stats.norm.ppf(0.5 + self.level / 2)
        sd = self.sd()[j]
        b = self.beta[j]
        return {"time_s": self.time, "estimate": b, "pointwise_low": b - z * sd, "pointwise_high": b + z * sd,
                "joint_low": b - self.qn[j] * sd, "joint_high": b + self.qn[j] * sd}

    def intervals(self, name: str, band: str = "joint") -> list[tuple[float, float, int]]:
        """Time intervals ``(start_s, stop_s, sign)`` where the ``band`` (joint/pointwise) excludes 0."""
        b = self.bands(name)
        sign = np.where(b[f"{band}_low"] > 0, 1, np.where(b[f"{band}_high"] < 0, -1, 0))
        out, start = [], None
        for k in range(len(sign) + 1):
            if k < len(sign) and sign[k] != 0 and (start is None or sign[k] == sign[start]):
                start = k if start is None else start
                continue
            if start is not None:
                out.append((float(self.time[start]), float(self.time[k - 1]), int(sign[start])))
                start = k if k < len(sign) and sign[k] != 0 else None
        return out

    def to_json_dict(self) -> dict:
        return {"formula": self.formula, "n_trials": int(self.n_trials), "n_groups": int(self.n_groups),
                "aic": self.aic, "bic": self.bic,
                "coefficients": {n: {k: [float(v) for v in a] for k, a in self.bands(n).items()} for n in self.names}}


# ----------------------------------------------------------------------------------------- fit
def _trim_psd(V: np.ndarray) -> np.ndarray:
    """Negative eigenvalues set to 0 (batched over leading axes)."""
    w, U = np.linalg.eigh(V)
    return (U * np.clip(w, 0, None)[..., None, :]) @ np.swapaxes(U, -1, -2)


def _joint_quantile(var: np.ndarray, level: float, rng: np.random.Generator) -> float:
    """fui's qn: the ``level`` quantile of ``max_s |W(s)|``, ``W`` Gaussian with the correlation of ``var``."""
    sd = np.sqrt(np.clip(np.diag(var), 1e-300, None))
    C = var / np.outer(sd, sd)
    w, U = np.linalg.eigh(C)
    root = U * np.sqrt(np.clip(w, 0, None))
    draws = rng.standard_normal((JOINT_DRAWS, len(w))) @ root.T
    return float(np.quantile(np.abs(draws).max(axis=1), level))


def _coef_basis(L: int) -> PSplineBasis:
    return PSplineBasis.build(np.arange(L, dtype=float), n_basis=round(L / 2) + 1)


def _smooth_coefs(beta_tilde: np.ndarray, basis: PSplineBasis) -> tuple[np.ndarray, list[float]]:
    out, lams = np.empty_like(beta_tilde), []
    for j, row in enumerate(beta_tilde):
        out[j], lam = basis.smooth_1d(row)
        lams.append(lam)
    return out, lams


def fit_flmm(data: pd.DataFrame, Y: np.ndarray, formula: str | FLMMFormula, time: np.ndarray, *,
             inference: str = "analytic", n_boot: int = 200, level: float = 0.95, seed: int = 0) -> FLMMResult:
    """Fit ``formula`` (``outcome ~ fixed + (random | group)``) to the trial x time matrix ``Y`` (rows are the
    rows of ``data``, which holds the covariates); ``time`` is the time axis in seconds from the event."""
    f = parse_formula(formula) if isinstance(formula, str) else formula
    Y = np.asarray(Y, float)
    if Y.ndim != 2 or Y.shape[0] != len(data) or Y.shape[1] != len(time):
        raise InputError(f"the signal matrix is {Y.shape}, expected {len(data)} trials x {len(time)} time points")
    if inference not in ("analytic", "bootstrap"):
        raise InputError(f"--inference {inference!r}: choose analytic or bootstrap")
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
    L = Y.shape[1]
    basis = _coef_basis(L)
    pw = fit_pointwise(Y, X, Z, groups)
    beta, lams = _smooth_coefs(pw.beta.T, basis)
    if inference == "analytic":
        var = _analytic_var(Y, X, Z, groups, pw, beta, lams, basis)
    else:
        var = _bootstrap_var(Y, X, Z, groups, basis, n_boot, rng)
    qn = np.array([_joint_quantile(v, level, rng) for v in var])
    return FLMMResult(f.text, names, np.asarray(time, float), pw.beta.T, beta, var, qn, len(data), n_groups, pw,
                      inference=inference, level=level, dropped_rows=int((~keep).sum()),
                      extra={"lambda": lams, "not_converged": pw.not_converged})


def _smooth_over_time(rows: np.ndarray) -> np.ndarray:
    """Each row smoothed over its index by a cubic smoothing spline with GCV (R ``smooth.spline``)."""
    from scipy.interpolate import make_smoothing_spline

    x = np.arange(rows.shape[-1], dtype=float)
    return np.array([make_smoothing_spline(x, r)(x) if np.ptp(r) > 0 else r for r in rows])


def _analytic_var(Y, X, Z, groups, pw: Pointwise, beta, lams, basis) -> np.ndarray:
    n, L = Y.shape
    p, q = X.shape[1], Z.shape[1]
    iu = np.triu_indices(q)
    # H(s), R(s): variance components smoothed over time, variances clipped at 0
    H_rows = _smooth_over_time(pw.cov_re[:, iu[0], iu[1]].T)  # (m, L)
    diag = iu[0] == iu[1]
    H_rows[diag] = np.clip(H_rows[diag], 0, None)
    R = np.clip(_smooth_over_time(pw.scale[None])[0], 1e-12, None)
    # G(s1, s2): method of moments, diagonal replaced by H, bivariate smoothing
    resid = Y - X @ beta  # (n, L)
    if q == 1 and np.allclose(Z, 1.0):  # fui's G_estimate_randint
        Xc = X - X.mean(axis=0)
        G_tilde = (np.cov(Y.T) - beta.T @ (Xc.T @ Xc / (n - 1)) @ beta)[None]
    else:
        D = np.column_stack([Z[:, a] * Z[:, b] * (1.0 if a == b else 2.0) for a, b in zip(*iu)])
        W = np.linalg.pinv(D.T @ D) @ D.T  # (m, n)
        G_tilde = np.einsum("kn,ni,nj->kij", W, resid, resid, optimize=True)
    cov_basis = PSplineBasis.build(np.arange(L, dtype=float), n_basis=min(COV_KNOTS + 3, L))
    G_hat = np.empty_like(G_tilde)
    for k in range(len(G_tilde)):
        Gt = G_tilde[k].copy()
        np.fill_diagonal(Gt, H_rows[k])
        G_hat[k] = cov_basis.smooth_2d(Gt)
        d = np.diag(G_hat[k]).copy()
        neg = d < 0
        d[neg] = np.diag(Gt)[neg]
        np.fill_diagonal(G_hat[k], d)
    # assemble q x q matrices: H per time, G per pair, trimmed to PSD
    Hm = np.zeros((L, q, q))
    Hm[:, iu[0], iu[1]] = H_rows.T
    Hm[:, iu[1], iu[0]] = H_rows.T
    Hm = _trim_psd(Hm)
    Gm = np.zeros((L, L, q, q))
    Gm[:, :, iu[0], iu[1]] = np.moveaxis(G_hat, 0, -1)
    Gm[:, :, iu[1], iu[0]] = np.moveaxis(G_hat, 0, -1)
    Gm = _trim_psd(Gm)
    # Var beta~(s) and the W_i(s) = X_i' V_i(s)^-1 Z_i of every animal
    XtVX = np.zeros((L, p, p))
    Ws = []
    for g in np.unique(groups):
        rows = groups == g
        Xi, Zi = X[rows], Z[rows]
        V = np.einsum("ia,tab,jb->tij", Zi, Hm, Zi) + R[:, None, None] * np.eye(rows.sum())
        Vinv = np.linalg.inv(V)
        XtVX += np.einsum("ia,tij,jb->tab", Xi, Vinv, Xi)
        Ws.append(np.einsum("ia,tij,jb->tab", Xi, Vinv, Zi))
    A = np.linalg.inv(XtVX)  # (L, p, p)
    middle = sum(np.einsum("sau,stuv,tbv->stab", Wi, Gm, Wi, optimize=True) for Wi in Ws)  # (L, L, p, p)
    cov = np.einsum("sab,stbc,tdc->stad", A, middle, A, optimize=True)
    idx = np.arange(L)
    cov[idx, idx] = A
    var = np.empty((p, L, L))
    for j in range(p):
        M = basis.smoother(lams[j])
        var[j] = _trim_psd(M @ cov[:, :, j, j] @ M.T)
    return var


def _bootstrap_var(Y, X, Z, groups, basis, n_boot: int, rng) -> np.ndarray:
    if n_boot < 10:
        raise InputError(f"--bootstrap {n_boot}: give at least 10 resamples")
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
        pw = fit_pointwise(Y[take], Xb, Z[take], new_groups)
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
