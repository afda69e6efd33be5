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
from dopa_rl.fit.priors import Prior
from dopa_rl.fit.results import FitResult, data_fingerprint, model_options, versions
from dopa_rl.models.base import Model, Packed

METHODS = ("mle", "map", "hier")
Z_BOUND = 25.0          # |z| cap for bounded/positive parameters: beyond it the transform is flat
Z_BOUND_FREE = 1e4      # identity parameters
AT_BOUND_Z = 13.8       # z below which a lower-bounded parameter is within ~1e-6 of its bound (exp(-13.8))
AT_BOUND_REL = 1e-4     # a two-sided parameter within this fraction of its range of a bound is "at the bound"
AT_BOUND_LOGIT_Z = float(np.log((1 - AT_BOUND_REL) / AT_BOUND_REL))   # |z| of that point (9.21)


def z_bounds(model: Model) -> tuple[np.ndarray, np.ndarray]:
    hi = np.array([Z_BOUND if p.transform != "identity" else Z_BOUND_FREE for p in model.spec])
    return -hi, hi


def start_points(model: Model, subjects, restarts: int, seed: int) -> np.ndarray:
    """[S, R, k] natural-space starts: the model defaults, then uniform draws in the init ranges.

    Seeded by ``seed`` and each subject's id (an int n means ids "0" .. "n-1"), so adding, removing or
    reordering subjects never changes another's fit (see :mod:`dopa_rl.fit.restarts`).
    """
    from dopa_rl.fit.restarts import start_points as sp

    return sp(model, subjects, restarts, seed)


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
                  centre: np.ndarray, rounds: int = 30, restart_index: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Start points [L, k] (unconstrained) whose log-likelihood is finite: a start where it is not is
    redrawn in the parameter's start range (seeded by subject and restart), then, if still not finite,
    pulled halfway toward ``centre`` (the prior mean, [k] or [L, k]) each round.  Returns the starts and how
    many lanes were moved; lanes still not finite stay (they are reported as not converged).  Redraws are
    seeded by the run's seed, the subject's id and ``restart_index`` (default: the lane's position among
    its subject's lanes), so they never depend on the subject's position in the data."""
    from dopa_rl.fit.restarts import subject_seed

    z = np.array(z, dtype=float)
    ll = model.loglik(model.spec.to_natural(z), data, lane_subject)
    bad = np.flatnonzero(~np.isfinite(ll))
    moved = bad.size
    if restart_index is None:
        restarts = np.bincount(lane_subject, minlength=1)
        first = np.concatenate([[0], np.cumsum(restarts)[:-1]])
        restart_index = np.arange(len(lane_subject)) - first[lane_subject]
    centre = np.broadcast_to(np.asarray(centre, dtype=float), z.shape)
    for r in range(rounds):
        if bad.size == 0:
            break
        if r < rounds - 6:  # redraws first (a region with finite likelihood may be small), then pull in
            for lane in bad:
                s = int(lane_subject[lane])
                rng = np.random.default_rng([*subject_seed(seed, data.subjects[s]).entropy, int(restart_index[lane]), r, 7])
                z[lane] = model.spec.to_unconstrained(model.spec.random_starts(1, rng)[0])
        else:
            z[bad] = centre[bad] + 0.5 ** (r - (rounds - 6) + 1) * (z[bad] - centre[bad])
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


def fit(model: Model, data: pd.DataFrame | Packed, *, method: str | None = None, restarts: int | str = 10, seed: int = 0,
        n_jobs: int | None = None, progress: bool | None = None, prior: Prior | None = None,
        carry_over: bool = False, scheduler=None, **hier_options) -> FitResult:
    """Fit ``model`` to every subject of ``data`` (a behavior table or a packed one).

    ``method``: "mle", "map" (default "mle", or "map" when a ``prior`` is given) or "hier" (hierarchical EM,
    :func:`dopa_rl.fit.hierarchical.fit_hierarchical`, options ``max_iter``, ``tol``, ``n_samples``);
    ``prior``: a :class:`~dopa_rl.fit.priors.Prior` in unconstrained space for MAP (default
    ``Prior.default(model)``, the spec's priors; the population prior of hierarchical fitting is passed the
    same way).  ``restarts`` start points per subject (the defaults first; a start with a non-finite
    likelihood is redrawn), seeded by ``seed`` and the subject's id, or ``"auto"`` (add restarts until the
    best optimum is reached twice, see :mod:`dopa_rl.fit.restarts`); ``n_jobs`` threads for the likelihood
    (default: all cores); ``progress``: a tqdm bar (None = only on a terminal); ``scheduler``: a
    :mod:`dopa_rl.fit.schedulers` object spreading subjects over workers; ``carry_over``: values carry over
    from one session to the next (default: every session starts afresh).  Rewards far from order 1 give a
    DataWarning.  The result keeps no data: ``result.prediction_errors(data)`` takes it again.
    """
    if method is None:
        method = "map" if prior is not None else "mle"
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    if restarts != "auto" and (isinstance(restarts, bool) or not isinstance(restarts, (int, np.integer)) or restarts < 1):
        raise InputError(f"--restarts must be an integer >= 1 or 'auto' (got {restarts!r})")
    if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs < 1):
        raise InputError(f"--jobs must be an integer >= 1 (got {n_jobs}); leave it out to use every core")
    if method == "hier" and prior is not None:
        raise InputError("method='hier' estimates the population prior itself; do not pass a prior")
    if hier_options and method != "hier":
        raise InputError(f"option(s) {', '.join(hier_options)} apply to method='hier' only")
    if prior is not None and method != "map":
        raise InputError("a prior is used by MAP fitting: pass method='map' (or leave method out)")
    packed = model.pack(data.reset_index(drop=True)) if isinstance(data, pd.DataFrame) else data
    if carry_over:
        packed = carried_over(packed)
    check_reward_scale(packed)
    if method == "hier":
        from dopa_rl.fit.hierarchical import fit_hierarchical

        result = fit_hierarchical(model, packed, restarts=restarts, seed=seed, n_jobs=n_jobs, progress=progress,
                                  scheduler=scheduler, **hier_options)
        result.provenance["carry_over"] = bool(carry_over)
        return result
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

    from tqdm.auto import tqdm

    from dopa_rl.fit.restarts import AUTO_CAP, AUTO_FIRST, fit_restarts_on

    disable = (not sys.stderr.isatty()) if progress is None else not progress
    total = S * (restarts if restarts != "auto" else AUTO_FIRST)
    with _threads(n_jobs), tqdm(total=total, desc=f"fitting {model.name}", unit="fit", disable=disable,
                                file=sys.stderr) as bar:
        rf = fit_restarts_on(scheduler, model, packed, restarts, seed, prior if method == "map" else None,
                             cap=AUTO_CAP, bar=bar)
        z = snap_to_bounds(model, packed, rf.z, *z_bounds(model), prior if method == "map" else None)
        x = model.spec.to_natural(z)
        ll = model.loglik(x, packed, np.arange(S, dtype=np.int64))
        se = standard_errors(model, packed, z, method, prior)
    result = make_result(model, method, packed, z, x, se, ll, rf, restarts, seed, prior if method == "map" else None)
    result.provenance["carry_over"] = bool(carry_over)
    return result


def make_result(model: Model, method: str, packed: Packed, z, x, se, ll, rf, restarts, seed: int,
                prior: Prior | None, cls=FitResult, **extra) -> FitResult:
    """The result object of a fit (``rf``: the :class:`~dopa_rl.fit.restarts.RestartFit` of the subject step)."""
    S = packed.n_subjects
    provenance = {
        "model": model.name, "model_options": model_options(model), "method": method,
        "data_fingerprint": data_fingerprint(packed), "seed": int(seed),
        "restarts": restarts if restarts == "auto" else int(restarts), "versions": versions(),
    }
    if "n_options" in packed.extra:
        provenance["n_options"] = int(packed.extra["n_options"])
    meta = {"lane_evaluations": int(rf.evaluations), "starts_redrawn": int(rf.redrawn)}
    if restarts == "auto":
        meta.update(restarts="auto", restarts_per_subject={str(s): int(n) for s, n in zip(packed.subjects, rf.n_restarts)})
    return cls(
        model=model, method=method, subjects=[str(s) for s in packed.subjects], param_names=list(model.param_names),
        x=x, se_=se, loglik_=ll,
        log_prior=prior.logpdf(z, np.arange(S)) if prior is not None else np.zeros(S),
        converged=rf.converged & np.isfinite(ll),
        n_at_best=np.asarray(rf.n_at_best, dtype=int), restarts=int(rf.n_restarts.max(initial=0)),
        n_trials_=np.asarray(packed.n_trials, dtype=np.int64).copy(), n_obs_=np.asarray(packed.n_obs, dtype=np.int64).copy(),
        at_bound=at_bound(model, z), prior=prior, provenance=provenance, meta=meta, **extra,
    )
