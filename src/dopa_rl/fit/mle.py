"""Maximum-likelihood and MAP fitting with random restarts in unconstrained space.

All (subject, restart) problems are minimised together by :func:`dopa_rl.fit.optimize.minimize_batched`:
each iteration evaluates every active lane in one compiled, multi-threaded likelihood call.  The
objective is ``-loglik(z)`` (MAP adds a normal prior in unconstrained space), divided by the subject's
number of observations so that gradients are of order one whatever the data size.  Gradients come from
the model (analytic forward mode for RW choice models, central differences evaluated as extra lanes
otherwise).  Standard errors come from the Hessian at the optimum, mapped to natural space by the delta
method.
"""
from __future__ import annotations

import contextlib
import sys

import numpy as np
import pandas as pd

from dopa_rl.errors import InputError
from dopa_rl.fit.optimize import minimize_batched
from dopa_rl.fit.priors import Prior
from dopa_rl.fit.results import FitResult, data_fingerprint, model_options, versions
from dopa_rl.models.base import Model, Packed

METHODS = ("mle", "map")
Z_BOUND = 25.0          # |z| cap for bounded/positive parameters: beyond it the transform is flat
Z_BOUND_FREE = 1e4      # identity parameters
AT_BOUND_Z = 13.8       # z below which a lower-bounded parameter is within ~1e-6 of its bound (exp(-13.8))
AT_BOUND_REL = 1e-4     # a two-sided parameter within this fraction of its range of a bound is "at the bound"
AT_BOUND_LOGIT_Z = float(np.log((1 - AT_BOUND_REL) / AT_BOUND_REL))   # |z| of that point (9.21)


def z_bounds(model: Model) -> tuple[np.ndarray, np.ndarray]:
    hi = np.array([Z_BOUND if p.transform != "identity" else Z_BOUND_FREE for p in model.spec])
    return -hi, hi


def start_points(model: Model, n_subjects: int, restarts: int, seed: int) -> np.ndarray:
    """[S, R, k] natural-space starts: the model defaults, then uniform draws in the init ranges.

    Subject s's starts depend only on ``seed`` and s, so adding subjects never changes another's fit.
    """
    spec = model.spec
    out = np.empty((n_subjects, restarts, len(spec)))
    for s in range(n_subjects):
        rng = np.random.default_rng([seed, s])
        out[s, 0] = [p.default for p in spec]
        if restarts > 1:
            out[s, 1:] = spec.random_starts(restarts - 1, rng)
    return out


def log_prior(model: Model, z: np.ndarray, prior: Prior | None = None) -> np.ndarray:
    """Normal log density of unconstrained parameters [..., k] under ``prior`` (default: the model's)."""
    return (prior or Prior.default(model)).logpdf(z)


def at_bound(model: Model, z: np.ndarray) -> np.ndarray:
    """[..., k] True where a parameter sits at a bound: within ``AT_BOUND_REL`` (1e-4) of the range of a
    two-sided bound, or within 1e-6 of a lower bound alone, where the transform is flat and the curvature
    says nothing (a standard error there would be small, finite and wrong)."""
    z = np.asarray(z, dtype=float)
    out = np.zeros(z.shape, dtype=bool)
    for j, p in enumerate(model.spec):
        if p.transform == "logit":
            out[..., j] = np.abs(z[..., j]) >= AT_BOUND_LOGIT_Z
        elif p.transform == "log":
            out[..., j] = z[..., j] <= -AT_BOUND_Z
    return out


def standard_errors(model: Model, data: Packed, z: np.ndarray, method: str, prior: Prior | None = None) -> np.ndarray:
    """Natural-space standard errors [S, k] from the Hessian in unconstrained space (delta method).

    A parameter at a bound gets NaN and the others' come from the Hessian with it held fixed (its row is
    only finite-difference noise there); NaN throughout where the rest is not positive definite (not
    identified)."""
    S, k = z.shape
    H = -model.hessian_z(z, data, np.arange(S))
    if method == "map":
        prec = (prior or Prior.default(model)).precision(np.arange(S))
        H = H + np.broadcast_to(prec, (S, k))[:, :, None] * np.eye(k)[None]
    se = np.full((S, k), np.nan)
    jac = np.abs(model.spec.jacobian_diag(z))
    free_all = ~at_bound(model, z)
    for s in range(S):
        free = free_all[s]
        Hs = H[s][np.ix_(free, free)]
        if not free.any() or not np.all(np.isfinite(Hs)):
            continue
        evals = np.linalg.eigvalsh(Hs)
        if evals.min() > 1e-9 * max(1.0, evals.max()):
            se[s, free] = np.sqrt(np.clip(np.diag(np.linalg.inv(Hs)), 0, None)) * jac[s, free]
    return se


def snap_to_bounds(model: Model, data: Packed, z: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                   prior: Prior | None = None) -> np.ndarray:
    """Move parameters that stopped near a bound (where the logistic transform is flat, so the gradient in
    ``z`` is below tolerance while the likelihood still rises toward the bound) onto the bound, one subject
    at a time, wherever that does not lower the objective (log-likelihood, plus the log prior for MAP)."""
    near = at_bound(model, z)
    rows = np.flatnonzero(near.any(axis=1))
    if rows.size == 0:
        return z
    z = z.copy()
    cand = z[rows].copy()
    cand[near[rows]] = np.where(cand[near[rows]] > 0, np.broadcast_to(hi, cand.shape)[near[rows]],
                                np.broadcast_to(lo, cand.shape)[near[rows]])
    both = np.concatenate([z[rows], cand])
    lanes = np.concatenate([rows, rows]).astype(np.int64)
    obj = model.loglik(model.spec.to_natural(both), data, lanes)
    if prior is not None:
        obj = obj + prior.logpdf(both, lanes)
    old, new = obj[: rows.size], obj[rows.size:]
    better = np.isfinite(new) & (new >= old)
    z[rows[better]] = cand[better]
    return z


def finite_starts(model: Model, data: Packed, z: np.ndarray, lane_subject: np.ndarray, seed: int,
                  centre: np.ndarray, rounds: int = 12) -> tuple[np.ndarray, int]:
    """Start points [L, k] (unconstrained) whose log-likelihood is finite: a start where it is not is
    redrawn in the parameter's start range (seeded by subject and restart), then, if still not finite,
    pulled halfway toward ``centre`` (the prior mean, [k] or [L, k]) each round.  Returns the starts and how
    many lanes were moved; lanes still not finite stay (they are reported as not converged)."""
    z = np.array(z, dtype=float)
    ll = model.loglik(model.spec.to_natural(z), data, lane_subject)
    bad = np.flatnonzero(~np.isfinite(ll))
    moved = bad.size
    restarts = np.bincount(lane_subject, minlength=1)
    first = np.concatenate([[0], np.cumsum(restarts)[:-1]])
    centre = np.broadcast_to(np.asarray(centre, dtype=float), z.shape)
    for r in range(rounds):
        if bad.size == 0:
            break
        if r < rounds // 2:
            for lane in bad:
                s = int(lane_subject[lane])
                rng = np.random.default_rng([seed, s, int(lane - first[s]), r, 7])
                z[lane] = model.spec.to_unconstrained(model.spec.random_starts(1, rng)[0])
        else:
            z[bad] = centre[bad] + 0.5 ** (r - rounds // 2 + 1) * (z[bad] - centre[bad])
        ll_bad = model.loglik(model.spec.to_natural(z[bad]), data, lane_subject[bad])
        bad = bad[~np.isfinite(ll_bad)]
    return z, int(moved)


@contextlib.contextmanager
def _threads(n_jobs: int | None):
    import numba

    if n_jobs is None:
        yield
        return
    old = numba.get_num_threads()
    numba.set_num_threads(max(1, min(int(n_jobs), numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(old)


REWARD_SCALE = (0.05, 20.0)   # largest |reward| outside this range: the defaults' "order 1" assumption fails


def carried_over(data: Packed) -> Packed:
    """The same data with values carried over from one session to the next: only each subject's first trial
    starts afresh (by default every session does)."""
    import dataclasses

    resets = np.zeros_like(data.resets)
    resets[data.n_trials > 0, 0] = True
    return dataclasses.replace(data, resets=resets)


def check_reward_scale(data: Packed) -> None:
    """A :class:`~dopa_rl.errors.DataWarning` when rewards are far from order 1 (docs/models.md, Reward scale)."""
    import warnings

    from dopa_rl.errors import DataWarning

    valid = np.arange(data.rewards.shape[1])[None, :] < data.n_trials[:, None]
    top = float(np.abs(data.rewards[valid]).max(initial=0.0))
    lo, hi = REWARD_SCALE
    if top > hi or 0 < top < lo:
        warnings.warn(DataWarning(
            f"rewards are up to {top:g}: the default priors, start ranges and bounds assume rewards of order 1 "
            f"(1 per rewarded trial); divide them by the usual reward size (docs/models.md, 'Reward scale')"),
            stacklevel=3)


def fit(model: Model, data: pd.DataFrame | Packed, *, method: str | None = None, restarts: int = 10, seed: int = 0,
        n_jobs: int | None = None, progress: bool | None = None, prior: Prior | None = None,
        carry_over: bool = False) -> FitResult:
    """Fit ``model`` to every subject of ``data`` (a behavior table or a packed one).

    ``method``: "mle" or "map" (default "mle", or "map" when a ``prior`` is given); ``prior``: a
    :class:`~dopa_rl.fit.priors.Prior` in unconstrained space for MAP (default ``Prior.default(model)``,
    the spec's priors; a population prior of hierarchical fitting is passed the same way).  ``restarts``
    start points per subject (the defaults first; a start with a non-finite likelihood is redrawn);
    ``n_jobs`` threads for the likelihood (default: all cores); ``progress``: a tqdm bar (None = only on a
    terminal); ``carry_over``: values carry over from one session to the next (default: every
    session starts afresh).  Rewards far from order 1 give a DataWarning.  The result keeps no data:
    ``result.prediction_errors(data)`` takes it again.
    """
    if method is None:
        method = "map" if prior is not None else "mle"
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    if prior is not None and method != "map":
        raise InputError("a prior is used by MAP fitting: pass method='map' (or leave method out)")
    if isinstance(restarts, bool) or not isinstance(restarts, (int, np.integer)) or restarts < 1:
        raise InputError(f"--restarts must be an integer >= 1 (got {restarts})")
    if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs < 1):
        raise InputError(f"--jobs must be an integer >= 1 (got {n_jobs}); leave it out to use every core")
    packed = model.pack(data.reset_index(drop=True)) if isinstance(data, pd.DataFrame) else data
    if carry_over:
        packed = carried_over(packed)
    check_reward_scale(packed)
    too_short = [s for s, n in zip(packed.subjects, packed.n_obs) if n < 2]
    if too_short:
        raise InputError(f"subject(s) {', '.join(map(str, too_short))} have fewer than 2 usable trials; "
                         f"a fit needs at least 2 (drop them or merge sessions)")
    S, k = packed.n_subjects, len(model.spec)
    if method == "map":
        prior = prior or Prior.default(model)
        prior.check_model(model)
        if prior.n_subjects() not in (None, S):
            raise InputError(f"prior: per-subject prior for {prior.n_subjects()} subjects; the data have {S}")
    lane_subject = np.repeat(np.arange(S, dtype=np.int64), restarts)
    scale = 1.0 / np.maximum(packed.n_obs[lane_subject], 1)
    centre = prior.rows(lane_subject)[0] if prior is not None else model.spec.prior_mean()

    def fun_grad(z, lanes):
        ll, g = model.loglik_grad_z(z, packed, lane_subject[lanes])
        f, grad = -ll, -g
        if method == "map":
            subj = lane_subject[lanes]
            f = f - prior.logpdf(z, subj)
            grad = grad - prior.grad(z, subj)
        # a non-finite value is +inf (the line search rejects it); gradients are left as they are: an
        # infinite or NaN component makes the point unusable, it is never read as a flat 0
        f = np.where(np.isfinite(f), f, np.inf)
        return f * scale[lanes], grad * scale[lanes, None]

    from tqdm.auto import tqdm

    disable = (not sys.stderr.isatty()) if progress is None else not progress
    lo, hi = z_bounds(model)
    with _threads(n_jobs), tqdm(total=S * restarts, desc=f"fitting {model.name}", unit="fit", disable=disable,
                                file=sys.stderr) as bar:
        z0 = model.spec.to_unconstrained(start_points(model, S, restarts, seed).reshape(-1, k))
        z0, redrawn = finite_starts(model, packed, np.clip(z0, lo, hi), lane_subject, seed, centre)
        res = minimize_batched(fun_grad, z0, lo, hi, on_converged=bar.update)
        obj = (res.fun / scale).reshape(S, restarts)
        best = np.argmin(np.where(np.isfinite(obj), obj, np.inf), axis=1)
        z = res.x.reshape(S, restarts, k)[np.arange(S), best]
        z = snap_to_bounds(model, packed, z, lo, hi, prior if method == "map" else None)
        x = model.spec.to_natural(z)
        ll = model.loglik(x, packed, np.arange(S, dtype=np.int64))
        se = standard_errors(model, packed, z, method, prior)
    n_at_best = np.sum(obj <= obj[np.arange(S), best][:, None] + 1e-3, axis=1)
    provenance = {
        "model": model.name, "model_options": model_options(model), "method": method,
        "data_fingerprint": data_fingerprint(packed), "seed": int(seed), "restarts": int(restarts),
        "carry_over": bool(carry_over), "versions": versions(),
    }
    if "n_options" in packed.extra:
        provenance["n_options"] = int(packed.extra["n_options"])
    return FitResult(
        model=model, method=method, subjects=[str(s) for s in packed.subjects], param_names=list(model.param_names),
        x=x, se_=se, loglik_=ll,
        log_prior=prior.logpdf(z, np.arange(S)) if method == "map" else np.zeros(S),
        converged=res.converged.reshape(S, restarts)[np.arange(S), best] & np.isfinite(ll),
        n_at_best=n_at_best.astype(int), restarts=restarts,
        n_trials_=np.asarray(packed.n_trials, dtype=np.int64).copy(), n_obs_=np.asarray(packed.n_obs, dtype=np.int64).copy(),
        at_bound=at_bound(model, z), prior=prior if method == "map" else None, provenance=provenance,
        meta={"lane_evaluations": int(res.evaluations), "max_iterations": int(res.iterations.max()),
              "starts_redrawn": redrawn},
    )
