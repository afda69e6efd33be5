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
from dopa_rl.fit.results import FitResult
from dopa_rl.models.base import Model, Packed

METHODS = ("mle", "map", "hier")
Z_BOUND = 25.0          # |z| cap for bounded/positive parameters: beyond it the transform is flat
Z_BOUND_FREE = 1e4      # identity parameters
AT_BOUND_Z = 13.8       # |z| beyond which a bounded parameter is within ~1e-6 of its bound (exp(-13.8))


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


def log_prior(model: Model, z: np.ndarray) -> np.ndarray:
    """Normal log density of unconstrained parameters [..., k] under the model's default priors."""
    mu, sd = model.spec.prior_mean(), model.spec.prior_sd()
    d = (z - mu) / sd
    return -0.5 * np.sum(d * d, axis=-1) - np.sum(np.log(sd * np.sqrt(2 * np.pi)))


def at_bound(model: Model, z: np.ndarray) -> np.ndarray:
    """[..., k] True where a parameter sits at a bound: within ``exp(-AT_BOUND_Z)`` (about 1e-6) of it, relative
    to the range for two-sided bounds, where the transform is flat and its derivative tells nothing."""
    z = np.asarray(z, dtype=float)
    out = np.zeros(z.shape, dtype=bool)
    for j, p in enumerate(model.spec):
        if p.transform == "logit":
            out[..., j] = np.abs(z[..., j]) >= AT_BOUND_Z
        elif p.transform == "log":
            out[..., j] = z[..., j] <= -AT_BOUND_Z
    return out


def standard_errors(model: Model, data: Packed, z: np.ndarray, method: str) -> np.ndarray:
    """Natural-space standard errors [S, k] from the Hessian in unconstrained space (delta method).

    A parameter at a bound gets NaN and the others' come from the Hessian with it held fixed (its row is
    only finite-difference noise there); NaN throughout where the rest is not positive definite (not
    identified)."""
    S, k = z.shape
    H = -model.hessian_z(z, data, np.arange(S))
    if method == "map":
        H = H + np.diag(1.0 / model.spec.prior_sd() ** 2)[None]
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


def fit(model: Model, data: pd.DataFrame | Packed, *, method: str = "mle", restarts: int | str = 10, seed: int = 0,
        n_jobs: int | None = None, progress: bool | None = None, scheduler=None, **hier_options) -> FitResult:
    """Fit ``model`` to every subject of ``data`` (a behavior table or a packed one).

    ``restarts`` start points per subject (the defaults first), or ``"auto"``; ``n_jobs`` threads for the
    likelihood (default: all cores); ``progress``: a tqdm bar (None = only on a terminal); ``scheduler``:
    a :mod:`dopa_rl.fit.schedulers` object to spread subjects over workers.  ``method="hier"`` runs
    :func:`dopa_rl.fit.hierarchical.fit_hierarchical` (options ``max_iter``, ``tol``, ``n_samples``).
    """
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    if restarts != "auto" and (not isinstance(restarts, (int, np.integer)) or restarts < 1):
        raise InputError(f"--restarts must be a whole number >= 1 or 'auto' (got {restarts!r})")
    if method == "hier":
        from dopa_rl.fit.hierarchical import fit_hierarchical

        return fit_hierarchical(model, data, restarts=restarts, seed=seed, n_jobs=n_jobs, progress=progress,
                                scheduler=scheduler, **hier_options)
    if hier_options:
        raise InputError(f"option(s) {', '.join(hier_options)} apply to method='hier' only")
    source = data.reset_index(drop=True) if isinstance(data, pd.DataFrame) else None
    packed = model.pack(source) if source is not None else data
    too_short = [s for s, n in zip(packed.subjects, packed.n_obs) if n < 2]
    if too_short:
        raise InputError(f"subject(s) {', '.join(map(str, too_short))} have fewer than 2 usable trials; "
                         f"a fit needs at least 2 (drop them or merge sessions)")
    S, k = packed.n_subjects, len(model.spec)
    from tqdm.auto import tqdm

    from dopa_rl.fit.restarts import AUTO_CAP, Prior, fit_restarts_on

    prior = Prior(model.spec.prior_mean(), model.spec.prior_sd()) if method == "map" else None
    disable = (not sys.stderr.isatty()) if progress is None else not progress
    total = S * (restarts if restarts != "auto" else 10)
    with _threads(n_jobs), tqdm(total=total, desc=f"fitting {model.name}", unit="fit", disable=disable,
                                file=sys.stderr) as bar:
        rf = fit_restarts_on(scheduler, model, packed, restarts, seed, prior, cap=AUTO_CAP, bar=bar)
        z = rf.z
        x = model.spec.to_natural(z)
        ll = model.loglik(x, packed, np.arange(S, dtype=np.int64))
        se = standard_errors(model, packed, z, method)
    meta = {"lane_evaluations": int(rf.evaluations)}
    if restarts == "auto":
        meta.update(restarts="auto", restarts_per_subject={str(s): int(n) for s, n in zip(packed.subjects, rf.n_restarts)})
    n_at_best = rf.n_at_best
    return FitResult(
        model=model, method=method, data=packed, x=x, se_=se, loglik_=ll,
        log_prior=log_prior(model, z) if method == "map" else np.zeros(S),
        converged=rf.converged & np.isfinite(ll),
        n_at_best=n_at_best.astype(int), restarts=int(rf.n_restarts.max(initial=0)), source=source, meta=meta,
    )
