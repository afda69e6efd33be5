"""Penalised B-spline (P-spline) smoothers with the smoothing parameter chosen by GCV: pure numpy.

Used by :mod:`dopa_rl.neural.flmm` for step 2 of the fastFMM ``fui`` method (smoothing the pointwise
coefficients) and for the bivariate smoothing of the random-effect covariance surfaces (fastFMM's ``fbps``,
the fast bivariate P-spline smoother of Xiao et al. 2013, which uses the same basis in both directions).

A cubic B-spline basis ``B`` on equally spaced knots with a second-order difference penalty ``D'D`` is put
in its Demmler-Reinsch form: with ``B'B = R'R`` and ``R^-T D'D R^-1 = U diag(s) U'``, the matrix
``A = B R^-1 U`` has orthonormal columns and the smoother is ``H(lam) = A diag(1 / (1 + lam s)) A'``, so the
GCV criterion of every ``lam`` on a grid costs O(L c) (c basis functions).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import BSpline

__all__ = ["PSplineBasis", "LOG_LAMBDA_GRID"]

#: the grid of log smoothing parameters searched by GCV (fbps: -20..20 in 100 steps)
LOG_LAMBDA_GRID = np.linspace(-20.0, 20.0, 100)


@dataclass(frozen=True)
class PSplineBasis:
    """The Demmler-Reinsch form ``A`` (L x c, orthonormal columns) and penalty eigenvalues ``s`` of a cubic
    P-spline basis with ``n_basis`` functions on the points ``x``."""

    A: np.ndarray
    s: np.ndarray

    @classmethod
    def build(cls, x: np.ndarray, n_basis: int, degree: int = 3, order: int = 2) -> "PSplineBasis":
        x = np.asarray(x, float)
        n_basis = int(min(max(n_basis, degree + order + 1), len(x)))
        nseg = n_basis - degree
        lo, hi = float(x.min()), float(x.max())
        step = (hi - lo) / nseg
        inner = np.linspace(lo, hi, nseg + 1)  # the data's ends are knots exactly (no rounding past them)
        knots = np.r_[lo - step * np.arange(degree, 0, -1), inner, hi + step * np.arange(1, degree + 1)]
        B = BSpline.design_matrix(np.clip(x, lo, hi), knots, degree).toarray()
        D = np.diff(np.eye(B.shape[1]), n=order, axis=0)
        BtB = B.T @ B + 1e-10 * np.eye(B.shape[1])
        R = np.linalg.cholesky(BtB).T  # B'B = R'R
        Rinv = np.linalg.inv(R)
        s, U = np.linalg.eigh(Rinv.T @ (D.T @ D) @ Rinv)
        s = np.where(s > 1e-9 * s.max(), s, 0.0)  # the penalty's null space (polynomials of degree < order)
        return cls(A=B @ Rinv @ U, s=s)

    def smoother(self, lam: float) -> np.ndarray:
        """The L x L smoother (hat) matrix at smoothing parameter ``lam``."""
        return (self.A * (1.0 / (1.0 + lam * self.s))) @ self.A.T

    def gcv_1d(self, y: np.ndarray, grid=LOG_LAMBDA_GRID) -> float:
        """The ``lam`` (on ``exp(grid)``) minimising GCV for smoothing the curve ``y``."""
        y = np.asarray(y, float)
        n = len(y)
        yt = self.A.T @ y
        lam = np.exp(np.asarray(grid))[:, None]
        shrink = lam * self.s / (1.0 + lam * self.s)  # (grid, c)
        rss = (y @ y - yt @ yt) + ((yt * shrink) ** 2).sum(axis=1)
        tr = (1.0 / (1.0 + lam * self.s)).sum(axis=1)
        gcv = n * rss / np.maximum(n - tr, 1e-12) ** 2
        return float(np.exp(grid[int(np.argmin(gcv))]))

    def smooth_1d(self, y: np.ndarray) -> tuple[np.ndarray, float]:
        """GCV-smoothed ``y`` and the chosen ``lam``."""
        lam = self.gcv_1d(y)
        return self.smoother(lam) @ np.asarray(y, float), lam

    def smooth_2d(self, Y: np.ndarray, grid=LOG_LAMBDA_GRID) -> np.ndarray:
        """The L x L surface ``Y`` smoothed with this basis in both directions and one ``lam`` chosen by GCV
        (fbps with ``selection="GCV"``, equal smoothing parameters, as fastFMM smooths covariances)."""
        Y = np.asarray(Y, float)
        n1, n2 = Y.shape
        Yt = self.A.T @ Y @ self.A
        y_sum = float((Y ** 2).sum())
        best, best_lam = np.inf, 1.0
        for lg in grid:
            sig = 1.0 / (1.0 + np.exp(lg) * self.s)
            w = np.outer(sig, sig)
            rss = y_sum - 2.0 * float((Yt ** 2 * w).sum()) + float((Yt ** 2 * w ** 2).sum())
            trc = sig.sum() ** 2
            gcv = rss / (1.0 - trc / (n1 * n2)) ** 2
            if gcv < best:
                best, best_lam = gcv, float(np.exp(lg))
        sig = 1.0 / (1.0 + best_lam * self.s)
        return (self.A * sig) @ Yt @ (self.A * sig).T
