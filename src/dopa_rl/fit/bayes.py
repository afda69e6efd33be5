"""Posterior sampling with NUTS (numpyro on the CPU) over the models' JAX log-likelihoods.

Hierarchical model (default), per parameter j on the unconstrained scale of :mod:`dopa_rl.models.params`::

    mu_j    ~ Normal(prior_mean_j, prior_sd_j)          (the spec's default prior, as for MAP)
    sigma_j ~ HalfNormal(GROUP_SD_SCALE)
    u_sj    ~ Normal(0, 1)                               (non-centred subject effects)
    z_sj    = mu_j + sigma_j * u_sj,   x_s = to_natural(z_s)
    y_s     ~ the model's likelihood (:func:`dopa_rl.models.jax_rules.loglik_function`, all subjects at once)

Non-hierarchical (``hierarchical=False``): ``z_sj ~ Normal(prior_mean_j, prior_sd_j)`` independently per
subject, the prior MAP fitting uses.  The JAX stack is the optional extra ``dopa_rl[bayes]``; without it
:func:`require_jax` raises one InputError naming the install command.

Chains run vectorised by default (``chain_method="vectorized"``: every chain's log-density in one call,
measured faster on the 2-core machine than one XLA device per chain, bench/README.md); ``"parallel"``
runs one chain per CPU device (the first use in a process asks XLA for one host device per chain, as
``numpyro.set_host_device_count`` does, unless jax was already imported: then as many as it has).
JAX and numpyro are imported on first use only: ``import dopa_rl`` and the other commands never load them.
"""
from __future__ import annotations

import os
import sys
import warnings

import numpy as np

from dopa_rl.errors import InputError
from dopa_rl.models.base import Model, Packed

__all__ = ["GROUP_SD_SCALE", "HDI_PROB", "RHAT_MAX", "ESS_MIN", "CHAIN_METHODS", "INSTALL_HINT",
           "BayesUnavailableError", "require_jax", "numpyro_model", "sample", "unconstrained_draws", "fit_bayes"]

GROUP_SD_SCALE = 1.0       # HalfNormal scale of the group sd, unconstrained units
HDI_PROB = 0.94            # ArviZ's default credible mass
RHAT_MAX = 1.01            # thresholds of the diagnostics warning (Vehtari et al. 2021)
ESS_MIN = 400              # bulk and tail ESS below this: warned (Vehtari et al. 2021: 100 per chain, 4 chains)
CHAIN_METHODS = ("vectorized", "parallel", "sequential")
INSTALL_HINT = "pip install 'dopa_rl[bayes]'"


class BayesUnavailableError(InputError, ImportError):
    """The optional JAX stack (``dopa_rl[bayes]``: jax, numpyro, arviz) is not installed.

    An :class:`ImportError` for library users and an :class:`~dopa_rl.errors.InputError` for the command
    line (one line, exit code 2)."""


def require_jax(n_devices: int = 1) -> None:
    """Import jax, numpyro and arviz, or raise :class:`BayesUnavailableError` (one line naming the install).

    Parameters
    ----------
    n_devices : int
        CPU devices to ask XLA for when jax is not imported yet (parallel chains).
    """
    if "jax" not in sys.modules:
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_force_host_platform_device_count" not in flags:
            n = max(int(n_devices), os.cpu_count() or 1)
            os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n}".strip()
    try:
        import arviz  # noqa: F401
        import jax  # noqa: F401
        import numpyro  # noqa: F401
    except ImportError as exc:
        raise BayesUnavailableError(f"method 'bayes' needs JAX, numpyro and ArviZ ({exc.name or exc} is not "
                                    f"installed): {INSTALL_HINT}") from None
    jax.config.update("jax_enable_x64", True)
    _compilation_cache(jax)


def _compilation_cache(jax) -> None:
    """Keep XLA's compiled samplers on disk (``$DOPA_RL_JAX_CACHE``, default ``~/.cache/dopa_rl/jax``; ``off``
    disables it), so a second fit of the same model and data shape skips the compile; a cache the user set
    for jax is left alone."""
    where = os.environ.get("DOPA_RL_JAX_CACHE", "")
    if where.lower() == "off" or jax.config.jax_compilation_cache_dir:
        return
    path = where or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "dopa_rl", "jax")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)


def _check_options(chains, warmup, draws, target_accept, chain_method="vectorized") -> None:
    problems = []
    if chain_method not in CHAIN_METHODS:
        problems.append(f"chain_method must be one of {', '.join(CHAIN_METHODS)} (got {chain_method!r})")
    for name, v, low in (("chains", chains, 1), ("warmup", warmup, 1), ("draws", draws, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
            problems.append(f"{name} must be an integer >= {low} (got {v!r})")
    if isinstance(target_accept, bool) or not (isinstance(target_accept, (float, int, np.floating))
                                               and 0.0 < float(target_accept) < 1.0):
        problems.append(f"target_accept must be between 0 and 1 (got {target_accept!r})")
    if problems:
        raise InputError("; ".join(problems))


def numpyro_model(model: Model, data: Packed, hierarchical: bool, check: bool = True):
    """The numpyro model function (no arguments) of ``model`` on ``data`` (the module docstring's model);
    ``check``: compare the JAX likelihood with the compiled one first (:func:`~dopa_rl.models.jax_rules.trial_function`)."""
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    from dopa_rl.models.jax_rules import loglik_function, natural_transform

    loglik = loglik_function(model, data, check=check)
    to_natural = natural_transform(model)
    pm = jnp.asarray(model.spec.prior_mean(), dtype=jnp.float64)
    psd = jnp.asarray(model.spec.prior_sd(), dtype=jnp.float64)
    S, k = data.n_subjects, len(model.spec)

    def fn():
        if hierarchical:
            mu = numpyro.sample("mu", dist.Normal(pm, psd).to_event(1))
            sigma = numpyro.sample("sigma", dist.HalfNormal(GROUP_SD_SCALE * jnp.ones(k)).to_event(1))
            u = numpyro.sample("u", dist.Normal(jnp.zeros((S, k)), 1.0).to_event(2))
            z = mu + sigma * u
        else:
            z = numpyro.sample("z", dist.Normal(jnp.broadcast_to(pm, (S, k)), psd).to_event(2))
        ll = loglik(to_natural(z))
        numpyro.deterministic("log_lik", ll)
        numpyro.factor("y", ll.sum())

    return fn


def sample(model: Model, data: Packed, *, chains: int = 4, warmup: int = 1000, draws: int = 1000, seed: int = 0,
           target_accept: float = 0.8, hierarchical: bool = True, progress: bool = False,
           chain_method: str = "vectorized") -> dict:
    """Run NUTS; returns the draws as numpy arrays ``[chain, draw, ...]`` (``mu``, ``sigma``, ``u`` or ``z``,
    ``log_lik``, ``diverging``) and ``chain_method`` (the one used: ``parallel`` needs a CPU device per
    chain and falls back to ``vectorized`` without them)."""
    _check_options(chains, warmup, draws, target_accept, chain_method)
    require_jax(chains)
    import jax
    from numpyro.infer import MCMC, NUTS

    if chain_method == "parallel" and jax.local_device_count() < chains:
        chain_method = "vectorized"
    kernel = NUTS(numpyro_model(model, data, hierarchical), target_accept_prob=float(target_accept))
    mcmc = MCMC(kernel, num_warmup=int(warmup), num_samples=int(draws), num_chains=int(chains),
                chain_method=chain_method if chains > 1 else "sequential", progress_bar=bool(progress))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*There are not enough devices.*")
        mcmc.run(jax.random.PRNGKey(int(seed)), extra_fields=("diverging",))
    out = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
    out["diverging"] = np.asarray(mcmc.get_extra_fields(group_by_chain=True)["diverging"])
    out["chain_method"] = chain_method
    return out


def unconstrained_draws(draws: dict) -> np.ndarray:
    """Each subject's unconstrained parameters ``z`` [chain, draw, S, k] from the sampled variables."""
    if "z" in draws:
        return draws["z"]
    return draws["mu"][:, :, None, :] + draws["sigma"][:, :, None, :] * draws["u"]


def fit_bayes(model: Model, data: Packed, *, chains: int = 4, warmup: int = 1000, draws: int = 1000, seed: int = 0,
              target_accept: float = 0.8, hierarchical: bool = True, progress: bool | None = None,
              chain_method: str = "vectorized"):
    """Sample the posterior of ``model`` on ``data`` and summarise it.

    Parameters
    ----------
    model : Model
        An RW choice or Pavlovian model, built-in or from ``choice_model``/``pavlovian_model``.
    data : Packed
        ``model.pack(table)``.
    chains, warmup, draws : int
        NUTS chains, warm-up iterations and kept draws per chain.
    seed : int
        Seed of the sampler (``jax.random.PRNGKey``).
    target_accept : float
        NUTS target acceptance probability (raise it, e.g. 0.95, when there are divergences).
    hierarchical : bool
        Group means and scales with non-centred subject effects (default), or independent subjects with
        the model's prior.
    progress : bool or None
        numpyro's progress bar (None: only on a terminal).
    chain_method : str
        ``vectorized`` (default), ``parallel`` or ``sequential``.

    Returns
    -------
    BayesResult
        :class:`~dopa_rl.fit.bayes_result.BayesResult`; a :class:`~dopa_rl.fit.bayes_result.SamplingWarning`
        is issued when R-hat > 1.01, a bulk or tail ESS < 400 or any transition diverged.
    """
    from dopa_rl.fit.bayes_result import build_result

    _check_options(chains, warmup, draws, target_accept, chain_method)
    require_jax(chains)
    too_short = [s for s, n in zip(data.subjects, data.n_obs) if n < 1]
    if too_short:
        raise InputError(f"subject(s) {', '.join(map(str, too_short))} have no usable trials")
    show = sys.stderr.isatty() if progress is None else bool(progress)
    d = sample(model, data, chains=chains, warmup=warmup, draws=draws, seed=seed, target_accept=target_accept,
               hierarchical=hierarchical, progress=show, chain_method=chain_method)
    options = {"chains": int(chains), "warmup": int(warmup), "draws": int(draws), "seed": int(seed),
               "target_accept": float(target_accept), "hierarchical": bool(hierarchical),
               "chain_method": d.pop("chain_method"), "group_sd_scale": GROUP_SD_SCALE}
    return build_result(model, data, d, options)
