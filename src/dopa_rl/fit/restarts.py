"""Restarts that agree: start points seeded by subject id, batched minimisation, ``restarts="auto"``.

Every subject's start points come from ``(seed, subject id)`` alone, so adding, removing or reordering
subjects never changes another subject's fit.  Restart ``r`` of a subject is the same point whether the run
uses 10 fixed restarts or adds them in rounds (``auto``): restart 0 is the model defaults, restart ``r >= 1``
the ``r``-th uniform draw of the subject's own generator.

``auto`` runs rounds of independent restarts for each subject until its best optimum has been reached by at
least ``AUTO_AGREE`` of them (within ``AGREE_TOL`` in log-likelihood) and at least ``auto_minimum(model)``
(10 per parameter) have run, up to a cap.  Short sessions and asymmetric or sticky models have optima on a
ridge toward a bound (a learning rate toward 0 with the inverse temperature at its bound) whose basin holds
a few percent of the start box, so a rule that stops at the first two agreeing restarts settles on the
larger basin beside it.  ``auto`` then searches the edges from each subject's best: one start with each
bounded parameter, and each pair of them, moved into the edge zone (``|z| = EDGE_Z``, where the transform
still has a slope) or onto the bound (where it is flat), repeated from any improvement.  The best lane of
each subject is then polished with a tight gradient tolerance so the reported optimum does not depend on
which restart found it.  ``n_at_best`` counts the independent restarts only (never edge or warm starts).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dopa_rl.fit.optimize import minimize_batched
from dopa_rl.fit.priors import Prior
from dopa_rl.fit.space import AT_BOUND_Z, finite_starts, subject_seed, z_bounds
from dopa_rl.models.base import Model, Packed

__all__ = ["AGREE_TOL", "AUTO_FIRST", "AUTO_ROUND", "AUTO_CAP", "POLISH_GTOL", "subject_starts", "start_points",
           "minimize_lanes", "RestartFit", "fit_restarts", "fit_restarts_on"]

AGREE_TOL = 1e-3      # restarts within this much log-likelihood (or log posterior) of the best agree
AUTO_FIRST = 10       # fewest restarts in the first round of ``auto``
AUTO_ROUND = 10       # restarts added per round for the subjects that still disagree
AUTO_AGREE = 3        # independent restarts that must reach the best before ``auto`` stops a subject
AUTO_PER_PARAM = 10   # ``auto`` runs at least this many independent restarts per parameter
AUTO_CAP = 200        # most restarts per subject in ``auto``
AUTO_ITER = 150       # most iterations of a lane in auto (restarts, edge starts); the polish finishes the best
EDGE_Z = 3.0          # |z| of the edge zone searched by ``auto`` (logit: within 4.7% of the range of a bound)
POLISH_GTOL = 1e-10


def auto_minimum(model: Model, cap: int = AUTO_CAP) -> int:
    """The fewest independent restarts ``auto`` runs per subject (its first round): 10 per parameter, at
    least AUTO_FIRST."""
    return int(min(max(AUTO_FIRST, AUTO_PER_PARAM * len(model.spec)), cap))


def subject_starts(model: Model, subject, seed: int, first: int, count: int) -> np.ndarray:
    """Natural-space restarts ``first .. first + count - 1`` [count, k] of one subject."""
    spec = model.spec
    total = first + count
    out = np.empty((total, len(spec)))
    out[0] = [p.default for p in spec]
    if total > 1:
        out[1:] = spec.random_starts(total - 1, np.random.default_rng(subject_seed(seed, subject)))
    return out[first:total]


def start_points(model: Model, subjects, restarts: int, seed: int) -> np.ndarray:
    """[S, R, k] natural-space starts for ``subjects`` (ids; an int n means ids "0" .. "n-1")."""
    if isinstance(subjects, (int, np.integer)):
        subjects = [str(i) for i in range(int(subjects))]
    return np.stack([subject_starts(model, s, seed, 0, restarts) for s in subjects]) if len(subjects) else \
        np.empty((0, restarts, len(model.spec)))


def minimize_lanes(model: Model, data: Packed, z0: np.ndarray, lane_subject: np.ndarray, prior: Prior | None = None,
                   *, gtol: float = 1e-6, max_iter: int = 500, on_converged=None):
    """Minimise ``-loglik - log prior`` for every lane (start ``z0[i]`` on subject ``lane_subject[i]``).

    Returns ``(z [L, k], objective [L] (unscaled), converged [L], evaluations)``.  A non-finite value is
    +inf (the line search rejects it); a non-finite gradient makes the point unusable (never read as 0).
    """
    lane_subject = np.asarray(lane_subject, dtype=np.int64)
    k = len(model.spec)
    if lane_subject.size == 0:
        return np.empty((0, k)), np.empty(0), np.zeros(0, bool), 0
    scale = 1.0 / np.maximum(data.n_obs[lane_subject], 1)

    def fun_grad(z, lanes):
        subj = lane_subject[lanes]
        ll, g = model.loglik_grad_z(z, data, subj)
        f, grad = -ll, -g
        if prior is not None:
            f = f - prior.logpdf(z, subj)
            grad = grad - prior.grad(z, subj)
        f = np.where(np.isfinite(f), f, np.inf)
        return f * scale[lanes], grad * scale[lanes, None]

    lo, hi = z_bounds(model)
    res = minimize_batched(fun_grad, np.clip(z0, lo, hi), lo, hi, gtol=gtol, max_iter=max_iter,
                           on_converged=on_converged)
    return res.x, res.fun / scale, res.converged, int(res.evaluations)


@dataclass
class RestartFit:
    """The best of several optimiser restarts per subject, and how many restarts agreed on it."""

    z: np.ndarray            # [S, k] best optimum (unconstrained)
    objective: np.ndarray    # [S] its objective (-loglik, plus the prior's quadratic term for MAP)
    converged: np.ndarray    # [S]
    n_at_best: np.ndarray    # [S] independent restarts within AGREE_TOL of the best
    n_restarts: np.ndarray   # [S] independent restarts run
    evaluations: int
    redrawn: int = 0         # starts whose likelihood was not finite and were redrawn
    edge_best: np.ndarray | None = None   # [S] the edge search (auto) improved on every restart

    def __post_init__(self):
        if self.edge_best is None:
            self.edge_best = np.zeros(len(self.n_restarts), bool)


def _hits(values: list[float], best: float) -> int:
    return int(np.sum(np.asarray(values) <= best + AGREE_TOL))


def fit_restarts(model: Model, data: Packed, restarts, seed: int, prior: Prior | None = None, *,
                 cap: int = AUTO_CAP, warm: np.ndarray | None = None, bar=None, polish: bool = True) -> RestartFit:
    """Best optimum per subject over ``restarts`` (an int, or ``"auto"``) restarts seeded by subject id.

    ``warm`` [S, k] (unconstrained) adds one extra start per subject (the EM's previous estimate); it is not
    an independent restart and is not counted in ``n_at_best``.  ``polish=False`` leaves out the final polish
    (the hierarchical EM's intermediate E steps: only its last subject step reports estimates).
    """
    S, k = data.n_subjects, len(model.spec)
    auto = restarts == "auto"
    first = auto_minimum(model, cap) if auto else int(restarts)   # auto's first round is its minimum
    best_obj = np.full(S, np.inf)
    best_z = np.zeros((S, k))
    best_conv = np.zeros(S, bool)
    objs: list[list[float]] = [[] for _ in range(S)]   # the optima of the independent restarts
    done = np.zeros(S, dtype=np.int64)
    evals = redrawn = 0
    todo = np.arange(S)
    count = first
    extra_warm = warm is not None
    while todo.size:
        starts = [subject_starts(model, data.subjects[s], seed, int(done[s]), count) for s in todo]
        z0 = model.spec.to_unconstrained(np.concatenate(starts))
        lanes = np.repeat(todo, count)
        index = (done[todo][:, None] + np.arange(count)[None, :]).ravel()
        centre = prior.rows(lanes)[0] if prior is not None else model.spec.prior_mean()
        z0, moved = finite_starts(model, data, np.clip(z0, *z_bounds(model)), lanes, seed, centre,
                                  restart_index=index)
        redrawn += moved
        independent = len(lanes)
        if extra_warm:
            z0 = np.concatenate([z0, np.asarray(warm)[todo]])
            lanes = np.concatenate([lanes, todo])
            extra_warm = False
        z, obj, conv, ev = minimize_lanes(model, data, z0, lanes, prior, max_iter=AUTO_ITER if auto else 500,
                                          on_converged=bar.update if bar is not None else None)
        evals += ev
        obj = np.where(np.isfinite(obj), obj, np.inf)
        for i, s in enumerate(lanes):
            if i < independent:
                objs[s].append(obj[i])
            if obj[i] < best_obj[s]:
                best_obj[s], best_z[s], best_conv[s] = obj[i], z[i], conv[i]
        done[todo] += count
        if not auto:
            break
        agree = np.array([_hits(objs[s], best_obj[s]) for s in todo])
        todo = todo[(agree < AUTO_AGREE) & (done[todo] < cap)]
        count = int(min(AUTO_ROUND, cap - done[todo].min())) if todo.size else AUTO_ROUND
    edge_best = np.zeros(S, bool)
    if auto:  # ridge and boundary optima are reached by random starts only rarely (the transform is flat there)
        found = best_obj.copy()
        evals += _search_edges(model, data, prior, best_z, best_obj, best_conv)
        edge_best = best_obj < found - AGREE_TOL
    if polish:
        evals += _polish(model, data, prior, best_z, best_obj, best_conv)
    n_at_best = np.array([_hits(objs[s], best_obj[s]) for s in range(S)], dtype=int)
    return RestartFit(best_z, best_obj, best_conv, n_at_best, done.copy(), evals, redrawn, edge_best)


def _accept(z, obj, conv, best_z, best_obj, best_conv, subj, strict: bool = True) -> np.ndarray:
    """Keep each candidate (lane i for subject subj[i]) that beats the subject's best; returns which did."""
    took = np.zeros(len(subj), bool)
    for i, s in enumerate(subj):
        if np.isfinite(obj[i]) and (obj[i] < best_obj[s] if strict else obj[i] <= best_obj[s] + 1e-9):
            # a polish of a converged optimum that ends no worse is still converged
            best_obj[s], best_z[s], best_conv[s] = obj[i], z[i], conv[i] or (not strict and best_conv[s])
            took[i] = True
    return took


def edge_starts(model: Model, z: np.ndarray) -> np.ndarray:
    """[E, S, k] starts from the optima ``z`` [S, k]: each bounded parameter, and each pair of them, moved to
    each of its edges, both into the edge zone (``|z| = EDGE_Z``) and onto the bound; the rest as in ``z``."""
    lo, hi = z_bounds(model)
    edges = []
    for j, p in enumerate(model.spec):
        if p.transform == "identity":
            continue
        sides = [(-EDGE_Z, lo[j])] if p.transform == "log" else [(-EDGE_Z, lo[j]), (EDGE_Z, hi[j])]
        edges.append([(j, side) for side in sides])
    out = []
    for depth in (0, 1):
        for a in range(len(edges)):
            for ja, side_a in edges[a]:
                z0 = z.copy()
                z0[:, ja] = side_a[depth]
                out.append(z0)
                for b in range(a + 1, len(edges)):
                    for jb, side_b in edges[b]:
                        z1 = z0.copy()
                        z1[:, jb] = side_b[depth]
                        out.append(z1)
    return np.stack(out) if out else np.empty((0,) + z.shape)


def _search_edges(model, data, prior, best_z, best_obj, best_conv, rounds: int = 3) -> int:
    """From each subject's best, minimise from every :func:`edge_starts` point; repeat from any improved
    optimum (better by more than AGREE_TOL; at most ``rounds`` times)."""
    subj = np.arange(best_z.shape[0])
    evals = 0
    for _ in range(rounds):
        starts = edge_starts(model, best_z[subj])
        if not starts.size:
            return evals
        lanes = np.tile(subj, len(starts))
        z, obj, conv, ev = minimize_lanes(model, data, starts.reshape(-1, best_z.shape[1]), lanes, prior,
                                          max_iter=AUTO_ITER)
        evals += ev
        before = best_obj[subj].copy()
        _accept(z, obj, conv, best_z, best_obj, best_conv, lanes, strict=True)
        subj = subj[best_obj[subj] < before - AGREE_TOL]
        if subj.size == 0:
            break
    return evals


def _polish(model, data, prior, best_z, best_obj, best_conv) -> int:
    """Tighten every subject's optimum: snap parameters within ~1e-6 of a bound onto it, then minimise the
    rest to a tight gradient tolerance, so the reported value does not depend on the restart that found it."""

    lo, hi = z_bounds(model)
    S = best_z.shape[0]
    cand = [best_z.copy()]
    snapped = best_z.copy()
    free = np.array([p.transform != "identity" for p in model.spec])
    near_lo = (snapped <= -AT_BOUND_Z) & free
    near_hi = (snapped >= AT_BOUND_Z) & free
    snapped = np.where(near_lo, lo, np.where(near_hi, hi, snapped))
    cand.append(snapped)
    z, obj, conv, ev = minimize_lanes(model, data, np.concatenate(cand), np.tile(np.arange(S), 2), prior,
                                      gtol=POLISH_GTOL)
    _accept(z, obj, conv, best_z, best_obj, best_conv, np.tile(np.arange(S), 2), strict=False)
    return ev


def _chunk_job(job):
    model, data, restarts, seed, prior, warm, cap, polish = job
    return fit_restarts(model, data, restarts, seed, prior, cap=cap, warm=warm, polish=polish)


def fit_restarts_on(scheduler, model: Model, data: Packed, restarts, seed: int, prior: Prior | None = None, *,
                    cap: int = AUTO_CAP, warm: np.ndarray | None = None, bar=None, polish: bool = True) -> RestartFit:
    """:func:`fit_restarts` with the subjects split over ``scheduler``'s workers (None or serial: in process).

    A subject's result does not depend on the chunk it is in, so this equals the serial run."""
    if scheduler is None or scheduler.n_workers <= 1 and scheduler.name == "local":
        return fit_restarts(model, data, restarts, seed, prior, cap=cap, warm=warm, bar=bar, polish=polish)
    from dopa_rl.fit.schedulers import chunks, subset_packed

    parts = chunks(data.n_subjects, scheduler.n_workers)
    jobs = [(model, subset_packed(data, idx), restarts, seed, _subset_prior(prior, idx),
             None if warm is None else np.asarray(warm)[idx], cap, polish) for idx in parts]
    out = scheduler.map(_chunk_job, jobs)
    if bar is not None:
        bar.update(int(sum(r.n_restarts.sum() for r in out)))
    cat = lambda name: np.concatenate([getattr(r, name) for r in out])
    return RestartFit(cat("z"), cat("objective"), cat("converged"), cat("n_at_best"), cat("n_restarts"),
                      int(sum(r.evaluations for r in out)), int(sum(r.redrawn for r in out)), cat("edge_best"))


def _subset_prior(prior: Prior | None, idx) -> Prior | None:
    if prior is None or prior.n_subjects() is None:
        return prior
    pick = lambda a: a[idx] if a.ndim == 2 else a
    return Prior(prior.names, pick(prior.mean), pick(prior.sd), prior.family)
