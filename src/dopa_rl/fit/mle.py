"""Maximum-likelihood and MAP fitting with random restarts in unconstrained space.

Each (subject, restart) is minimised by scipy's L-BFGS-B on ``-loglik(z)`` (MAP adds the normal prior in
unconstrained space), with the gradient from the model (analytic forward mode for RW choice models,
central differences evaluated as extra lanes of one vectorized call otherwise).  Standard errors come
from the Hessian of the objective at the optimum, mapped to natural space by the delta method.

Subjects are fitted in parallel on local processes when the job is large enough to pay for starting them.
"""
from __future__ import annotations

import os
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from dopa_rl.errors import InputError
from dopa_rl.fit.results import FitResult
from dopa_rl.models.base import Model, Packed

METHODS = ("mle", "map")
Z_BOUND = 25.0          # |z| cap for bounded/positive parameters: beyond it the transform is flat
Z_BOUND_FREE = 1e4      # identity parameters


def _z_bounds(model: Model) -> list[tuple[float, float]]:
    return [(-Z_BOUND, Z_BOUND) if p.transform != "identity" else (-Z_BOUND_FREE, Z_BOUND_FREE) for p in model.spec]


def objective(model: Model, data: Packed, s: int, method: str) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """``f(z) -> (value, gradient)`` to minimise for subject ``s``: the negative log-likelihood (MLE) or
    negative log posterior up to a constant (MAP, normal prior in unconstrained space), divided by the
    subject's number of observations.

    The division keeps gradients of order one whatever the data size: L-BFGS-B's first step is as long
    as the gradient, and an unscaled first step can jump onto a flat region of a logistic transform
    (alpha -> 0 and beta -> 0 together) and stop there.
    """
    lane = np.array([s], dtype=np.int64)
    mu, sd = model.spec.prior_mean(), model.spec.prior_sd()
    scale = 1.0 / max(int(data.n_obs[s]), 1)

    def f(z):
        ll, g = model.loglik_grad_z(z[None, :], data, lane)
        val, grad = -float(ll[0]), -g[0]
        if method == "map":
            d = (z - mu) / sd
            val += 0.5 * float(d @ d)
            grad = grad + d / sd
        if not np.isfinite(val):
            return 1e300, np.zeros_like(z)
        return val * scale, grad * scale

    return f


def fit_subject(model: Model, data: Packed, s: int, *, method: str = "mle", restarts: int = 10,
                seed: int = 0, starts: np.ndarray | None = None) -> dict:
    """Fit one subject from ``restarts`` start points (the defaults first, then random ones).

    The random starts depend only on ``seed`` and the subject's position, so results do not depend on
    how subjects are spread over workers.
    """
    from scipy.optimize import minimize

    spec = model.spec
    if starts is None:
        rng = np.random.default_rng([seed, s])
        starts = np.vstack([[p.default for p in spec], spec.random_starts(max(restarts - 1, 0), rng)])[:max(restarts, 1)]
    f = objective(model, data, s, method)
    bounds = _z_bounds(model)
    best, values = None, []
    for x0 in starts:
        z0 = spec.to_unconstrained(np.asarray(x0, float))
        res = minimize(f, z0, jac=True, method="L-BFGS-B", bounds=bounds,
                       options={"maxiter": 1000, "ftol": 1e-13, "gtol": 1e-8})
        values.append(res.fun * max(int(data.n_obs[s]), 1))
        if best is None or res.fun < best.fun:
            best = res
    z = best.x
    ll = float(model.loglik(spec.to_natural(z[None, :]), data, np.array([s], np.int64))[0])
    log_prior = 0.0
    if method == "map":
        d = (z - spec.prior_mean()) / spec.prior_sd()
        log_prior = float(-0.5 * d @ d - np.sum(np.log(spec.prior_sd() * np.sqrt(2 * np.pi))))
    se = standard_errors(model, data, s, z, method)
    n_at_best = int(np.sum(np.asarray(values) <= min(values) + 1e-3))
    return {"z": z, "x": spec.to_natural(z), "se": se, "loglik": ll, "log_prior": log_prior,
            "converged": bool(best.success), "n_at_best": n_at_best}


def standard_errors(model: Model, data: Packed, s: int, z: np.ndarray, method: str) -> np.ndarray:
    """Natural-space standard errors from the Hessian in unconstrained space (delta method).

    NaN for parameters whose curvature is not positive (at a bound, or not identified)."""
    k = z.size
    H = -model.hessian_z(z, data, s)
    if method == "map":
        H = H + np.diag(1.0 / model.spec.prior_sd() ** 2)
    se = np.full(k, np.nan)
    try:
        evals = np.linalg.eigvalsh(H)
        if np.all(np.isfinite(H)) and evals.min() > 1e-10 * max(1.0, evals.max()):
            cov = np.linalg.inv(H)
            se = np.sqrt(np.clip(np.diag(cov), 0, None)) * np.abs(model.spec.jacobian_diag(z))
    except np.linalg.LinAlgError:
        pass
    return se


# --------------------------------------------------------------------------------------------- parallel
_WORKER: dict = {}


def _worker_init(model: Model, data: Packed, kwargs: dict) -> None:
    try:
        import numba

        numba.set_num_threads(1)
    except Exception:  # pragma: no cover - numba always present, threads are an optimisation
        pass
    _WORKER.update(model=model, data=data, kwargs=kwargs)


def _worker_fit(subjects: Sequence[int]) -> list[tuple[int, dict]]:
    m, d, kw = _WORKER["model"], _WORKER["data"], _WORKER["kwargs"]
    return [(s, fit_subject(m, d, s, **kw)) for s in subjects]


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def fit(model: Model, data: pd.DataFrame | Packed, *, method: str = "mle", restarts: int = 10, seed: int = 0,
        n_jobs: int | None = None, progress: bool | None = None) -> FitResult:
    """Fit ``model`` to every subject of ``data`` (a behavior table or a packed one).

    ``n_jobs`` processes (default: all cores; 1 runs in this process).  ``progress``: a tqdm bar
    (None = only on a terminal).
    """
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    if restarts < 1:
        raise InputError(f"--restarts must be >= 1 (got {restarts})")
    source = data if isinstance(data, pd.DataFrame) else None
    packed = model.pack(data) if isinstance(data, pd.DataFrame) else data
    too_short = [s for s, n in zip(packed.subjects, packed.n_obs) if n < 2]
    if too_short:
        raise InputError(f"subject(s) {', '.join(map(str, too_short))} have fewer than 2 usable trials; "
                         f"a fit needs at least 2 (drop them or merge sessions)")
    S = packed.n_subjects
    kwargs = {"method": method, "restarts": restarts, "seed": seed}
    n_jobs = default_jobs() if n_jobs is None else max(1, int(n_jobs))
    work_units = S * restarts * int(packed.n_trials.mean() if S else 0)
    n_jobs = min(n_jobs, S) if work_units > 200_000 else 1

    from tqdm.auto import tqdm

    disable = (not sys.stderr.isatty()) if progress is None else not progress
    bar = tqdm(total=S, desc=f"fitting {model.name}", unit="subject", disable=disable, file=sys.stderr)
    results: dict[int, dict] = {}
    try:
        if n_jobs == 1:
            for s in range(S):
                results[s] = fit_subject(model, packed, s, **kwargs)
                bar.update(1)
        else:
            chunk = max(1, S // (n_jobs * 8))
            chunks = [list(range(i, min(S, i + chunk))) for i in range(0, S, chunk)]
            with ProcessPoolExecutor(n_jobs, mp_context=get_context("spawn"), initializer=_worker_init,
                                     initargs=(model, packed, kwargs)) as pool:
                for part in pool.map(_worker_fit, chunks):
                    for s, r in part:
                        results[s] = r
                    bar.update(len(part))
    finally:
        bar.close()
    rows = [results[s] for s in range(S)]
    return FitResult(
        model=model, method=method, data=packed,
        x=np.array([r["x"] for r in rows]).reshape(S, len(model.spec)),
        se_=np.array([r["se"] for r in rows]).reshape(S, len(model.spec)),
        loglik_=np.array([r["loglik"] for r in rows]),
        log_prior=np.array([r["log_prior"] for r in rows]),
        converged=np.array([r["converged"] for r in rows], dtype=bool),
        n_at_best=np.array([r["n_at_best"] for r in rows], dtype=int),
        restarts=restarts, source=source.reset_index(drop=True) if source is not None else None,
    )
