"""Restarts that agree: start points seeded by subject id, batched minimisation, ``restarts="auto"``.

Every subject's start points come from ``(seed, subject id)`` alone, so adding, removing or reordering
subjects never changes another subject's fit.  Restart ``r`` of a subject is the same point whether the run
uses 10 fixed restarts or adds them in rounds (``auto``): restart 0 is the model defaults, restart ``r >= 1``
the ``r``-th uniform draw of the subject's own generator.

``auto`` runs rounds of restarts for the subjects whose best optimum has not yet been reached by at least
two restarts (within ``AGREE_TOL`` in log-likelihood), up to a cap; the best lane of each subject is then
polished with a tight gradient tolerance so the reported optimum does not depend on which restart found it.
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
AUTO_FIRST = 10       # restarts in the first round of ``auto``
AUTO_ROUND = 10       # restarts added per round for the subjects that still disagree
AUTO_CAP = 200        # most restarts per subject in ``auto``
POLISH_GTOL = 1e-10


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
                   *, gtol: float = 1e-6, on_converged=None):
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
    res = minimize_batched(fun_grad, np.clip(z0, lo, hi), lo, hi, gtol=gtol, on_converged=on_converged)
    return res.x, res.fun / scale, res.converged, int(res.evaluations)


@dataclass
class RestartFit:
    z: np.ndarray            # [S, k] best optimum (unconstrained)
    objective: np.ndarray    # [S] its objective (-loglik, plus the prior's quadratic term for MAP)
    converged: np.ndarray    # [S]
    n_at_best: np.ndarray    # [S] restarts within AGREE_TOL of the best
    n_restarts: np.ndarray   # [S] restarts run
    evaluations: int
    redrawn: int = 0         # starts whose likelihood was not finite and were redrawn


def fit_restarts(model: Model, data: Packed, restarts, seed: int, prior: Prior | None = None, *,
                 cap: int = AUTO_CAP, warm: np.ndarray | None = None, bar=None) -> RestartFit:
    """Best optimum per subject over ``restarts`` (an int, or ``"auto"``) restarts seeded by subject id.

    ``warm`` [S, k] (unconstrained) adds one extra start per subject (the EM's previous estimate).
    """
    S, k = data.n_subjects, len(model.spec)
    auto = restarts == "auto"
    first = min(AUTO_FIRST, cap) if auto else int(restarts)
    best_obj = np.full(S, np.inf)
    best_z = np.zeros((S, k))
    best_conv = np.zeros(S, bool)
    objs: list[list[float]] = [[] for _ in range(S)]
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
        if extra_warm:
            z0 = np.concatenate([z0, np.asarray(warm)[todo]])
            lanes = np.concatenate([lanes, todo])
            extra_warm = False
        z, obj, conv, ev = minimize_lanes(model, data, z0, lanes, prior,
                                          on_converged=bar.update if bar is not None else None)
        evals += ev
        obj = np.where(np.isfinite(obj), obj, np.inf)
        for i, s in enumerate(lanes):
            objs[s].append(obj[i])
            if obj[i] < best_obj[s]:
                best_obj[s], best_z[s], best_conv[s] = obj[i], z[i], conv[i]
        done[todo] += count
        if not auto:
            break
        agree = np.array([np.sum(np.asarray(objs[s]) <= best_obj[s] + AGREE_TOL) for s in todo])
        todo = todo[(agree < 2) & (done[todo] < cap)]
        count = AUTO_ROUND
        count = int(min(count, cap - done[todo].min())) if todo.size else count
    if auto:  # boundary optima are reached by random starts only rarely (the transform is flat there)
        evals += _probe_bounds(model, data, prior, best_z, best_obj, best_conv, objs)
    evals += _polish(model, data, prior, best_z, best_obj, best_conv)
    n_at_best = np.array([np.sum(np.asarray(objs[s]) <= best_obj[s] + AGREE_TOL) for s in range(S)], dtype=int)
    return RestartFit(best_z, best_obj, best_conv, n_at_best, done.copy(), evals, redrawn)


def _accept(z, obj, conv, best_z, best_obj, best_conv, subj, strict: bool = True) -> np.ndarray:
    """Keep each candidate (lane i for subject subj[i]) that beats the subject's best; returns which did."""
    took = np.zeros(len(subj), bool)
    for i, s in enumerate(subj):
        if np.isfinite(obj[i]) and (obj[i] < best_obj[s] if strict else obj[i] <= best_obj[s] + 1e-9):
            # a polish of a converged optimum that ends no worse is still converged
            best_obj[s], best_z[s], best_conv[s] = obj[i], z[i], conv[i] or (not strict and best_conv[s])
            took[i] = True
    return took


def _probe_bounds(model, data, prior, best_z, best_obj, best_conv, objs, rounds: int = 3) -> int:
    """From each subject's best, start once with each bounded parameter put at each of its bounds (where the
    flat transform holds it) and the rest free; repeat from any improved optimum."""
    lo, hi = z_bounds(model)
    bounded = [j for j, p in enumerate(model.spec) if p.transform != "identity"]
    subj = np.arange(best_z.shape[0])
    evals = 0
    for _ in range(rounds):
        starts, lanes = [], []
        for j in bounded:
            for edge in (lo[j], hi[j]):
                if model.spec.params[j].transform == "log" and edge > 0:
                    continue  # a parameter bounded below only has one edge
                z0 = best_z[subj].copy()
                z0[:, j] = edge
                starts.append(z0)
                lanes.append(subj)
        if not starts:
            return evals
        lanes_a = np.concatenate(lanes)
        z, obj, conv, ev = minimize_lanes(model, data, np.concatenate(starts), lanes_a, prior)
        evals += ev
        for i, s in enumerate(lanes_a):
            objs[s].append(obj[i] if np.isfinite(obj[i]) else np.inf)
        improved = _accept(z, obj, conv, best_z, best_obj, best_conv, lanes_a, strict=True)
        gain = np.zeros(best_z.shape[0], bool)
        gain[lanes_a[improved]] = True
        subj = np.flatnonzero(gain)
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
    model, data, restarts, seed, prior, warm, cap = job
    return fit_restarts(model, data, restarts, seed, prior, cap=cap, warm=warm)


def fit_restarts_on(scheduler, model: Model, data: Packed, restarts, seed: int, prior: Prior | None = None, *,
                    cap: int = AUTO_CAP, warm: np.ndarray | None = None, bar=None) -> RestartFit:
    """:func:`fit_restarts` with the subjects split over ``scheduler``'s workers (None or serial: in process).

    A subject's result does not depend on the chunk it is in, so this equals the serial run."""
    if scheduler is None or scheduler.n_workers <= 1 and scheduler.name == "local":
        return fit_restarts(model, data, restarts, seed, prior, cap=cap, warm=warm, bar=bar)
    from dopa_rl.fit.schedulers import chunks, subset_packed

    parts = chunks(data.n_subjects, scheduler.n_workers)
    jobs = [(model, subset_packed(data, idx), restarts, seed, _subset_prior(prior, idx),
             None if warm is None else np.asarray(warm)[idx], cap) for idx in parts]
    out = scheduler.map(_chunk_job, jobs)
    if bar is not None:
        bar.update(int(sum(r.n_restarts.sum() for r in out)))
    cat = lambda name: np.concatenate([getattr(r, name) for r in out])
    return RestartFit(cat("z"), cat("objective"), cat("converged"), cat("n_at_best"), cat("n_restarts"),
                      int(sum(r.evaluations for r in out)), int(sum(r.redrawn for r in out)))


def _subset_prior(prior: Prior | None, idx) -> Prior | None:
    if prior is None or prior.n_subjects() is None:
        return prior
    pick = lambda a: a[idx] if a.ndim == 2 else a
    return Prior(prior.names, pick(prior.mean), pick(prior.sd), prior.family)
