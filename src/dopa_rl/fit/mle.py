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

import sys

import numpy as np
import pandas as pd

from dopa_rl.errors import InputError
from dopa_rl.fit.priors import Prior
from dopa_rl.fit.hierarchical import fit_hierarchical
from dopa_rl.fit.restarts import AUTO_CAP, auto_minimum, fit_restarts_on
from dopa_rl.fit.results import FitResult, make_result
from dopa_rl.fit.space import (_progress, _threads, carried_over, require_usable_trials, snap_to_bounds,
                               standard_errors, z_bounds)
from dopa_rl.models.base import Model, Packed

__all__ = ["METHODS", "REWARD_SCALE", "check_reward_scale", "fit"]

METHODS = ("mle", "map", "hier", "bayes")
BAYES_OPTIONS = ("chains", "warmup", "draws", "target_accept", "hierarchical", "chain_method")


REWARD_SCALE = (0.05, 20.0)   # largest |reward| outside this range: the defaults' "order 1" assumption fails


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
    """Fit ``model`` to every subject of ``data``.

    Parameters
    ----------
    model : Model
        The model to fit (built-in, a ``choice_model``/``pavlovian_model``, a plugin or ``FILE.py:NAME``).
    data : pandas.DataFrame or Packed
        A behavior table (one row per trial) or one the model has already packed.
    method : {"mle", "map", "hier", "bayes"}, optional
        Maximum likelihood, maximum a posteriori, hierarchical EM
        (:func:`dopa_rl.fit.hierarchical.fit_hierarchical`), or posteriors by NUTS
        (:func:`dopa_rl.fit.bayes.fit_bayes`; needs ``dopa_rl[bayes]``; ``seed`` seeds the sampler).
        Default "mle", or "map" when a ``prior`` is given.
    restarts : int or "auto", default 10
        Start points per subject (the defaults first; a start with a non-finite likelihood is redrawn), or
        ``"auto"``: 10 per parameter, more until three reach the best optimum, then a search from the edges
        (:mod:`dopa_rl.fit.restarts`).
    seed : int, default 0
        Seeds the start points, together with each subject's id.
    n_jobs : int, optional
        Threads for the likelihood (default: all cores).
    progress : bool, optional
        A tqdm bar (None: only on a terminal).
    prior : Prior, optional
        A :class:`~dopa_rl.fit.priors.Prior` in unconstrained space for MAP (default ``Prior.default(model)``,
        the spec's priors); the population prior of hierarchical fitting is passed the same way.
    carry_over : bool, default False
        Values carry over from one session to the next (default: every session starts afresh).
    scheduler : object, optional
        A :mod:`dopa_rl.fit.schedulers` object spreading subjects over workers.
    **hier_options
        Options of the hierarchical fit (``max_iter``, ``tol``, ``n_samples``, ``evidence``, ``evidence_se``) or
        of the Bayesian one (``chains``, ``warmup``, ``draws``, ``target_accept``, ``hierarchical``).

    Returns
    -------
    FitResult
        Parameters, standard errors, likelihoods and diagnostics per subject.  It keeps no data:
        ``result.prediction_errors(data)`` takes it again.

    Warns
    -----
    DataWarning
        Rewards far from order 1.
    """
    if method is None:
        method = "map" if prior is not None else "mle"
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    if restarts != "auto" and (isinstance(restarts, bool) or not isinstance(restarts, (int, np.integer)) or restarts < 1):
        raise InputError(f"`restarts` must be an integer >= 1 or 'auto' (got {restarts!r})")
    if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs < 1):
        raise InputError(f"`n_jobs` must be an integer >= 1 (got {n_jobs}); leave it out to use every core")
    if method == "hier" and prior is not None:
        raise InputError("method='hier' estimates the population prior itself; do not pass a prior")
    if method == "bayes":
        unknown = sorted(set(hier_options) - set(BAYES_OPTIONS))
        if unknown:
            raise InputError(f"option(s) {', '.join(unknown)} do not apply to method='bayes' "
                             f"(it takes {', '.join(BAYES_OPTIONS)})")
        if prior is not None:
            raise InputError("method='bayes' uses the model's priors (hierarchical: for the group means); "
                             "do not pass a prior")
    elif hier_options and method != "hier":
        raise InputError(f"option(s) {', '.join(hier_options)} apply to method='hier' only")
    if prior is not None and method != "map":
        raise InputError("a prior is used by MAP fitting: pass method='map' (or leave method out)")
    packed = model.pack(data.reset_index(drop=True)) if isinstance(data, pd.DataFrame) else data
    if carry_over:
        packed = carried_over(packed)
    check_reward_scale(packed)
    if method == "bayes":
        from dopa_rl.fit.bayes import fit_bayes

        result = fit_bayes(model, packed, seed=seed, progress=progress, **hier_options)
        result.provenance["carry_over"] = bool(carry_over)
        return result
    if method == "hier":
        result = fit_hierarchical(model, packed, restarts=restarts, seed=seed, n_jobs=n_jobs, progress=progress,
                                  scheduler=scheduler, **hier_options)
        result.provenance["carry_over"] = bool(carry_over)
        return result
    require_usable_trials(packed)
    S, k = packed.n_subjects, len(model.spec)
    if method == "map":
        prior = prior or Prior.default(model)
        prior.check_model(model)
        if prior.n_subjects() not in (None, S):
            raise InputError(f"prior: per-subject prior for {prior.n_subjects()} subjects; the data have {S}")

    disable = (not sys.stderr.isatty()) if progress is None else not progress
    total = S * (restarts if restarts != "auto" else auto_minimum(model))
    with _threads(n_jobs), _progress(disable, total=total, desc=f"fitting {model.name}", unit="fit",
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


