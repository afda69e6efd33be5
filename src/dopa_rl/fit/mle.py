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
from dopa_rl.fit.results import FitResult
from dopa_rl.models.base import Model, Packed

METHODS = ("mle", "map")
Z_BOUND = 25.0          # |z| cap for bounded/positive parameters: beyond it the transform is flat
Z_BOUND_FREE = 1e4      # identity parameters
AT_BOUND_Z = 13.8       # |z| beyond which a bounded parameter is within ~1e-6 of its bound (exp(-13.8))


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


def fit(model: Model, data: pd.DataFrame | Packed, *, method: str = "mle", restarts: int = 10, seed: int = 0,
        n_jobs: int | None = None, progress: bool | None = None) -> FitResult:
    """Fit ``model`` to every subject of ``data`` (a behavior table or a packed one).

    ``restarts`` start points per subject (the defaults first); ``n_jobs`` threads for the likelihood
    (default: all cores); ``progress``: a tqdm bar (None = only on a terminal).
    """
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    if restarts < 1:
        raise InputError(f"--restarts must be >= 1 (got {restarts})")
    source = data.reset_index(drop=True) if isinstance(data, pd.DataFrame) else None
    packed = model.pack(source) if source is not None else data
    too_short = [s for s, n in zip(packed.subjects, packed.n_obs) if n < 2]
    if too_short:
        raise InputError(f"subject(s) {', '.join(map(str, too_short))} have fewer than 2 usable trials; "
                         f"a fit needs at least 2 (drop them or merge sessions)")
    S, k = packed.n_subjects, len(model.spec)
    starts = start_points(model, S, restarts, seed)
    lane_subject = np.repeat(np.arange(S, dtype=np.int64), restarts)
    scale = 1.0 / np.maximum(packed.n_obs[lane_subject], 1)
    mu, sd = model.spec.prior_mean(), model.spec.prior_sd()

    def fun_grad(z, lanes):
        ll, g = model.loglik_grad_z(z, packed, lane_subject[lanes])
        f, grad = -ll, -g
        if method == "map":
            d = (z - mu) / sd
            f = f + 0.5 * np.sum(d * d, axis=1)
            grad = grad + d / sd
        bad = ~np.isfinite(f)
        if bad.any():
            f = np.where(bad, 1e300, f)
            grad[bad] = 0.0
        grad = np.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0)
        return f * scale[lanes], grad * scale[lanes, None]

    from tqdm.auto import tqdm

    disable = (not sys.stderr.isatty()) if progress is None else not progress
    lo, hi = z_bounds(model)
    with _threads(n_jobs), tqdm(total=S * restarts, desc=f"fitting {model.name}", unit="fit", disable=disable,
                                file=sys.stderr) as bar:
        res = minimize_batched(fun_grad, model.spec.to_unconstrained(starts.reshape(-1, k)), lo, hi,
                               on_converged=bar.update)
        obj = (res.fun / scale).reshape(S, restarts)
        best = np.argmin(np.where(np.isfinite(obj), obj, np.inf), axis=1)
        z = res.x.reshape(S, restarts, k)[np.arange(S), best]
        x = model.spec.to_natural(z)
        ll = model.loglik(x, packed, np.arange(S, dtype=np.int64))
        se = standard_errors(model, packed, z, method)
    n_at_best = np.sum(obj <= obj[np.arange(S), best][:, None] + 1e-3, axis=1)
    return FitResult(
        model=model, method=method, data=packed, x=x, se_=se, loglik_=ll,
        log_prior=log_prior(model, z) if method == "map" else np.zeros(S),
        converged=res.converged.reshape(S, restarts)[np.arange(S), best] & np.isfinite(ll),
        n_at_best=n_at_best.astype(int), restarts=restarts, source=source,
        meta={"lane_evaluations": int(res.evaluations), "max_iterations": int(res.iterations.max())},
    )
