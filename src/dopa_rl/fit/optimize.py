"""A batched quasi-Newton minimiser: many small independent problems stepped together.

Fitting means thousands of independent 2-6 parameter problems (subjects x restarts).  scipy's
minimisers solve one problem per call, and their per-iteration Python overhead (~100 us) then costs more
than the likelihood itself.  Here every problem is a *lane*: each iteration evaluates all active lanes in
one compiled call, and each lane keeps its own BFGS inverse-Hessian, Armijo backtracking line search and
convergence test.  Lanes that converge drop out; the rest carry on.  Box bounds are handled by
projection (the unconstrained parameterisation makes them matter only in degenerate fits).

The result for one lane is the same as a careful single-problem BFGS run would give; the tests check it
against scipy's L-BFGS-B.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["BatchResult", "minimize_batched"]

FunGrad = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass
class BatchResult:
    """Optima of a batch of L-BFGS starts: points ``x``, objective ``fun``, gradient ``grad``, ``converged`` flags."""

    x: np.ndarray          # [L, k]
    fun: np.ndarray        # [L]
    grad: np.ndarray       # [L, k]
    converged: np.ndarray  # [L] bool: gradient or function tolerance reached
    iterations: np.ndarray  # [L]
    evaluations: int       # lane-evaluations in total


def minimize_batched(fun_grad: FunGrad, x0: np.ndarray, lower: np.ndarray, upper: np.ndarray, *,
                     gtol: float = 1e-6, ftol: float = 1e-13, max_iter: int = 500, max_step: float = 4.0,
                     on_converged: Callable[[int], None] | None = None) -> BatchResult:
    """Minimise ``L`` independent functions; ``fun_grad(x[n, k], lanes[n]) -> (f[n], g[n, k])``.

    A lane whose value or gradient is not finite at its start stops there, not converged; trial points with
    a non-finite value or gradient are rejected by the line search.  ``gtol``: largest absolute
    projected-gradient component at convergence; ``ftol``: relative decrease
    below which a lane stops after two such iterations in a row (it counts as converged only if its
    projected gradient is then within ``100 * gtol``, as for a lane whose line search fails); ``max_step``: the
    largest move of any coordinate in one iteration.  ``on_converged(n)`` is called as lanes finish.
    """
    x = np.clip(np.array(x0, dtype=float), lower, upper)
    L, k = x.shape
    eye = np.eye(k)
    all_lanes = np.arange(L)
    f, g = fun_grad(x, all_lanes)
    f, g = np.array(f, dtype=float), np.array(g, dtype=float)
    evals = L
    # a lane whose start has no finite value or gradient cannot move: it stops at once, never converged
    usable = np.isfinite(f) & np.isfinite(g).all(axis=1)
    H = np.repeat(eye[None], L, axis=0)
    # first step: a gradient step no longer than 1 in any coordinate
    H /= np.maximum(1.0, np.abs(np.where(usable[:, None], g, 1.0)).max(axis=1))[:, None, None]
    active = usable.copy()
    converged = np.zeros(L, dtype=bool)
    small = np.zeros(L, dtype=int)
    iters = np.zeros(L, dtype=int)

    def projected(xx, gg):
        pg = gg.copy()
        pg[(xx <= lower) & (gg > 0)] = 0.0
        pg[(xx >= upper) & (gg < 0)] = 0.0
        return pg

    done = usable & (np.abs(projected(x, g)).max(axis=1) <= gtol)
    converged |= done
    active &= ~done
    if on_converged and (L - active.sum()):
        on_converged(int(L - active.sum()))

    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        iters[idx] += 1
        p = -np.einsum("lij,lj->li", H[idx], g[idx])
        descent = np.einsum("li,li->l", p, g[idx])
        bad = ~(descent < 0) | ~np.isfinite(descent)
        if bad.any():  # lost positive definiteness: restart from a scaled gradient step
            H[idx[bad]] = eye / np.maximum(1.0, np.abs(g[idx[bad]]).max(axis=1))[:, None, None]
            p[bad] = -g[idx[bad]] / np.maximum(1.0, np.abs(g[idx[bad]]).max(axis=1))[:, None]
        longest = np.abs(p).max(axis=1)
        step = np.minimum(1.0, max_step / np.maximum(longest, 1e-300))
        x_new, f_new, g_new = x[idx].copy(), f[idx].copy(), g[idx].copy()
        moved = np.zeros(idx.size, dtype=bool)
        pending = np.arange(idx.size)
        for _ in range(40):
            if pending.size == 0:
                break
            lanes = idx[pending]
            xt = np.clip(x[lanes] + step[pending, None] * p[pending], lower, upper)
            ft, gt = fun_grad(xt, lanes)
            evals += lanes.size
            armijo = ft <= f[lanes] + 1e-4 * np.einsum("li,li->l", g[lanes], xt - x[lanes])
            ok = armijo & np.isfinite(ft) & np.isfinite(gt).all(axis=1)
            acc = pending[ok]
            x_new[acc], f_new[acc], g_new[acc] = xt[ok], ft[ok], gt[ok]
            moved[acc] = True
            pending = pending[~ok]
            step[pending] *= 0.5
        # lanes whose line search failed cannot improve along any quasi-Newton direction: stop them
        stuck = idx[~moved]
        s = x_new - x[idx]
        y = g_new - g[idx]
        rel = (f[idx] - f_new) <= ftol * np.maximum(1.0, np.abs(f_new))
        x[idx], f[idx], g[idx] = x_new, f_new, g_new
        sy = np.einsum("li,li->l", s, y)
        upd = moved & (sy > 1e-12 * np.sqrt(np.einsum("li,li->l", s, s) * np.einsum("li,li->l", y, y)))
        if upd.any():
            u = np.flatnonzero(upd)
            rho = 1.0 / sy[u]
            Hu = H[idx[u]]
            V = eye[None] - rho[:, None, None] * np.einsum("li,lj->lij", s[u], y[u])
            H[idx[u]] = np.einsum("lij,ljk,lmk->lim", V, Hu, V) + rho[:, None, None] * np.einsum("li,lj->lij", s[u], s[u])
        small[idx] = np.where(rel & moved, small[idx] + 1, 0)
        pgmax = np.abs(projected(x[idx], g[idx])).max(axis=1)
        gconv = pgmax <= gtol
        fconv = small[idx] >= 2
        finish = gconv | fconv | ~moved
        # a stall of f with a large gradient (the line search shrank the step to nothing) is not an optimum
        converged[idx] = gconv | (fconv & (pgmax <= 100 * gtol))
        converged[stuck] = np.abs(projected(x[stuck], g[stuck])).max(axis=1) <= 100 * gtol
        active[idx[finish]] = False
        if on_converged and finish.any():
            on_converged(int(finish.sum()))
    if on_converged and active.any():
        on_converged(int(active.sum()))
    return BatchResult(x, f, g, converged, iters, evals)
