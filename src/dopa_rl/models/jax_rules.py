"""JAX log-likelihoods of the models, for posterior sampling (``fit(..., method="bayes")``).

Each is the model's own recursion (docs/models.md) written with ``jax.lax.scan`` over trials and vectorised
over subjects: a function ``x [S, k] (natural space) -> log-likelihood [S]`` that JAX differentiates for NUTS.
The observation models are the compiled kernels' (softmax with stickiness and lapse; Poisson licks with the
safe log rate of :func:`dopa_rl.models.observations.safe_log_rate`); the learning rule is a pure function
``rule(values, event, reward, theta) -> new values`` for one subject:

* built-in RW models use :func:`rw_choice_rule` / :func:`rw_pavlovian_rule` (the ``_rw_update`` /
  ``_pavlov_trial`` kernels' maths);
* a model from :func:`~dopa_rl.models.family.choice_model` / :func:`~dopa_rl.models.family.pavlovian_model`
  needs the one extra function a user writes: the same rule without in-place updates, registered with
  :func:`jax_rule`::

      from dopa_rl.models.jax_rules import jax_rule

      @jax_rule(forgetting)                     # the numba-style update given to choice_model
      def forgetting_jax(q, choice, reward, theta):
          import jax.numpy as jnp
          alpha, phi = theta[0], theta[1]
          chosen = jnp.arange(q.shape[0]) == choice
          return jnp.where(chosen, q + alpha * (reward - q), q - phi * q)

  (``choice`` is a traced integer: select with ``jnp.where`` rather than ``if``.)

:func:`loglik_function` checks the JAX log-likelihood against the model's compiled one at the model's
default parameters before it is used, so a JAX twin that disagrees with its rule is an InputError.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from dopa_rl.errors import InputError
from dopa_rl.models.base import Model, Packed
from dopa_rl.models.observations import LOG_RATE_MAX

_RULES: dict[Callable, Callable] = {}   # a family model's update rule -> its JAX twin

#: relative agreement required between the JAX and the compiled log-likelihood (float64 both)
AGREEMENT_RTOL = 1e-6
#: trials per iteration of the compiled scan loop (fewer loop iterations: faster on the CPU)
SCAN_UNROLL = 1


def jax_rule(update: Callable) -> Callable[[Callable], Callable]:
    """Decorator registering ``fn(values, event, reward, theta) -> new values`` as the JAX twin of ``update``
    (the learning rule given to ``choice_model``/``pavlovian_model``; numba-compiled or not)."""
    if not callable(update):
        raise InputError(f"jax_rule takes the update function of a model, got {type(update).__name__}")

    def register(fn: Callable) -> Callable:
        if not callable(fn):
            raise InputError(f"jax_rule({getattr(update, '__name__', update)!r}) decorates a function")
        _RULES[update] = fn
        py = getattr(update, "py_func", None)
        if py is not None:
            _RULES[py] = fn
        return fn

    return register


def rule_for(update: Callable) -> Callable | None:
    """The registered JAX twin of ``update`` (None when there is none)."""
    return _RULES.get(update) or _RULES.get(getattr(update, "py_func", None))


def rw_choice_rule(q, choice, reward, theta):
    """``Q[c] += a * (r - Q[c])``, ``a`` = ``theta[0]`` (alpha_pos) when the error is >= 0 else ``theta[1]``."""
    import jax.numpy as jnp

    chosen = jnp.arange(q.shape[0]) == choice      # a mask, not q[choice]: vmaps without gather/scatter
    delta = reward - jnp.sum(jnp.where(chosen, q, 0.0))
    a = jnp.where(delta >= 0.0, theta[0], theta[1])
    return jnp.where(chosen, q + a * delta, q)


def rw_pavlovian_rule(v, present, reward, theta):
    """``V[e] += a * (r - sum(V[present])) * present[e]``, ``a`` by the sign of the error as above."""
    import jax.numpy as jnp

    delta = reward - jnp.sum(v * present)
    a = jnp.where(delta >= 0.0, theta[0], theta[1])
    return v + a * delta * present


def _safe_log_rate(eta):
    import jax.numpy as jnp

    over = jnp.maximum(eta - LOG_RATE_MAX, 0.0)
    return jnp.where(eta <= LOG_RATE_MAX, eta, LOG_RATE_MAX + jnp.log1p(over))


def _choice_layout(model: Model):
    """(rule, learning columns, beta column, kappa column or None, epsilon column or None) of a choice model."""
    names = model.spec.names
    learning = getattr(model, "rule_params", None)
    if learning is not None:  # a family model: its own rule, learning parameters first
        rule = rule_for(model.update)
        if rule is None:
            raise InputError(
                f"model {model.name}: no JAX version of its update rule "
                f"{getattr(model.update, '__name__', 'update')}; write one and register it with "
                f"@dopa_rl.models.jax_rules.jax_rule({getattr(model.update, '__name__', 'update')}) "
                f"(docs/bayes.md)")
        learn = list(range(len(learning)))
    else:
        rule = rw_choice_rule
        learn = [names.index("alpha_pos") if "alpha_pos" in names else names.index("alpha"),
                 names.index("alpha_neg") if "alpha_neg" in names else names.index("alpha")]
    col = lambda n: names.index(n) if n in names else None
    return rule, learn, names.index("beta"), col("kappa"), col("epsilon")


def _choice_loglik(model: Model, data: Packed) -> Callable:
    import jax
    import jax.numpy as jnp

    rule, learn, i_beta, i_kappa, i_eps = _choice_layout(model)
    K = int(data.extra["n_options"])
    q0 = float(getattr(model, "q0", 0.0))
    choices = jnp.asarray(data.extra["choices"].T)        # [T, S], -1: missed or padding
    rewards = jnp.asarray(data.rewards.T, dtype=jnp.float64)
    resets = jnp.asarray(data.resets.T)
    learn = np.asarray(learn)
    step_rule = jax.vmap(rule)
    options = jnp.arange(K)

    def loglik(x):
        S = x.shape[0]
        theta = x[:, learn]
        beta = x[:, i_beta][:, None]
        kappa = x[:, i_kappa][:, None] if i_kappa is not None else 0.0
        eps = x[:, i_eps] if i_eps is not None else None

        def step(carry, trial):
            q, prev = carry
            c, r, reset = trial
            q = jnp.where(reset[:, None], q0, q)
            prev = jnp.where(reset, -1, prev)
            valid = c >= 0
            cc = jnp.maximum(c, 0)
            logits = beta * q + kappa * (options[None, :] == prev[:, None])
            logp = jnp.sum(jnp.where(options[None, :] == cc[:, None], jax.nn.log_softmax(logits, axis=1), 0.0), axis=1)
            if eps is not None:
                logp = jnp.logaddexp(jnp.log1p(-eps) + logp, jnp.log(eps / K))
            q_new = step_rule(q, cc, r, theta)
            q = jnp.where(valid[:, None], q_new, q)
            prev = jnp.where(valid, cc, prev)
            return (q, prev), jnp.where(valid, logp, 0.0)

        init = (jnp.full((S, K), q0, dtype=x.dtype), jnp.full((S,), -1, dtype=choices.dtype))
        _, lp = jax.lax.scan(step, init, (choices, rewards, resets), unroll=SCAN_UNROLL)
        return lp.sum(axis=0)

    return loglik


def _pavlovian_layout(model: Model):
    names = model.spec.names
    learning = getattr(model, "rule_params", None)
    if learning is not None:
        rule = rule_for(model.update)
        if rule is None:
            raise InputError(
                f"model {model.name}: no JAX version of its update rule "
                f"{getattr(model.update, '__name__', 'update')}; write one and register it with "
                f"@dopa_rl.models.jax_rules.jax_rule({getattr(model.update, '__name__', 'update')}) "
                f"(docs/bayes.md)")
        learn = list(range(len(learning)))
    else:
        rule = rw_pavlovian_rule
        learn = [names.index("alpha_pos") if "alpha_pos" in names else names.index("alpha"),
                 names.index("alpha_neg") if "alpha_neg" in names else names.index("alpha")]
    return rule, learn, names.index("lick_intercept"), names.index("lick_slope")


def _pavlovian_loglik(model: Model, data: Packed) -> Callable:
    import jax
    import jax.numpy as jnp
    from jax.scipy.special import gammaln

    rule, learn, i_b0, i_b1 = _pavlovian_layout(model)
    X = jnp.asarray(np.transpose(data.extra["X"], (1, 0, 2)), dtype=jnp.float64)     # [T, S, E]
    licks = np.asarray(data.extra["licks"].T, dtype=float)                          # [T, S], NaN: not counted
    counted = jnp.asarray(np.isfinite(licks))
    k = jnp.asarray(np.where(np.isfinite(licks), licks, 0.0))
    log_fact = gammaln(k + 1.0)
    rewards = jnp.asarray(data.rewards.T, dtype=jnp.float64)
    resets = jnp.asarray(data.resets.T)
    live = jnp.asarray((np.arange(data.rewards.shape[1])[:, None] < data.n_trials[None, :]))
    learn = np.asarray(learn)
    step_rule = jax.vmap(rule)
    E = X.shape[2]

    def loglik(x):
        S = x.shape[0]
        theta = x[:, learn]
        b0, b1 = x[:, i_b0], x[:, i_b1]

        def step(v, trial):
            xt, r, reset, kt, lf, seen, alive = trial
            v = jnp.where(reset[:, None], 0.0, v)
            pred = jnp.sum(v * xt, axis=1)
            lr = _safe_log_rate(b0 + b1 * pred)
            lp = kt * lr - jnp.exp(lr) - lf
            v = jnp.where(alive[:, None], step_rule(v, xt, r, theta), v)
            return v, jnp.where(seen, lp, 0.0)

        _, lp = jax.lax.scan(step, jnp.zeros((S, E), dtype=x.dtype),
                             (X, rewards, resets, k, log_fact, counted, live), unroll=SCAN_UNROLL)
        return lp.sum(axis=0)

    return loglik


def natural_transform(model: Model) -> Callable:
    """``z [..., k] -> x [..., k]``: the spec's transforms (``dopa_rl.models.params``) in JAX."""
    import jax
    import jax.numpy as jnp

    params = list(model.spec)

    def to_natural(z):
        cols = []
        for j, p in enumerate(params):
            zj = z[..., j]
            if p.transform == "logit":
                cols.append(p.lower + (p.upper - p.lower) * jax.nn.sigmoid(zj))
            elif p.transform == "log":
                cols.append(p.lower + jnp.exp(zj))
            else:
                cols.append(zj)
        return jnp.stack(cols, axis=-1)

    return to_natural


def loglik_function(model: Model, data: Packed) -> Callable:
    """``x [S, k] -> log-likelihood [S]`` of every subject of ``data`` in JAX (float64), checked against the
    model's compiled likelihood at its default parameters."""
    import jax

    jax.config.update("jax_enable_x64", True)
    if model.kind == "choice" and "choices" in data.extra and "beta" in model.spec.names:
        fn = _choice_loglik(model, data)
    elif model.kind == "pavlovian" and "X" in data.extra and "lick_slope" in model.spec.names \
            and ("alpha" in model.spec.names or "alpha_pos" in model.spec.names
                 or getattr(model, "learning_params", None) is not None):
        fn = _pavlovian_loglik(model, data)
    else:
        raise InputError(f"model {model.name} has no JAX log-likelihood yet; method 'bayes' fits the RW choice "
                         f"and Pavlovian models and models built with choice_model/pavlovian_model")
    S = data.n_subjects
    x0 = np.tile(np.array([p.default for p in model.spec]), (S, 1))
    want = model.loglik(x0, data, np.arange(S, dtype=np.int64))
    got = np.asarray(jax.jit(fn)(x0))
    if not np.allclose(got, want, rtol=AGREEMENT_RTOL, atol=1e-8):
        worst = int(np.argmax(np.abs(got - want)))
        raise InputError(f"model {model.name}: the JAX log-likelihood disagrees with the model's own at the "
                         f"default parameters (subject {data.subjects[worst]}: {got[worst]:.6g} vs "
                         f"{want[worst]:.6g}); check that its JAX rule computes the same update")
    return fn
