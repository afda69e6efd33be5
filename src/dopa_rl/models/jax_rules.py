"""JAX versions of the models' recursions, for posterior sampling (``fit(..., method="bayes")``).

:func:`trial_function` gives, for a model and its packed data, a function of the natural-space parameters
``x [S, k]`` (one row per subject) returning per-trial arrays ``[S, T]``: ``logp`` (log-probability of the
observation; 0 where there is none), ``value`` and ``rpe`` (the value at the cue and ``r - value`` at the
outcome, NaN where the model reports none) and, for choice models, ``probs`` ``[S, T, K]``.
:func:`loglik_function` sums ``logp`` over trials.  Both are pure JAX, vectorised over subjects, and
differentiable (NUTS takes their gradient).  The observation models are the compiled kernels' (softmax
with stickiness and lapse; Poisson licks with the safe log rate of
:func:`dopa_rl.models.observations.safe_log_rate`).

How each model's learning rule gets into JAX:

* RW choice with one learning rate (``rw-softmax``, ``-sticky``, ``-lapse``): the update
  ``Q <- (1 - alpha m_t) Q + alpha m_t r_t`` (``m_t`` the chosen option) is affine in ``Q``, so the values of
  every trial come from ``jax.lax.associative_scan`` over the composed maps (log-depth, no per-trial loop);
* RW choice with ``alpha_pos``/``alpha_neg`` and RW Pavlovian: ``jax.lax.scan`` over trials with
  :func:`rw_choice_rule` / :func:`rw_pavlovian_rule` (the ``_rw_update`` / ``_pavlov_trial`` kernels' maths);
* a model from :func:`~dopa_rl.models.family.choice_model` / :func:`~dopa_rl.models.family.pavlovian_model`:
  its own ``update(values, event, reward, theta)`` is run under JAX tracing (:func:`derived_rule`): the
  values are a proxy whose entries are traced scalars, ``numpy`` in the function's globals is swapped for
  ``jax.numpy``, and the function runs once per possible event (each option of a choice model; each
  distinct cue compound of the data for a Pavlovian one), the trial's event selecting the result.  A rule
  this cannot trace (a Python ``if`` on a value or on the reward, ``math.exp`` of a value) needs the one
  extra function a user writes, the same rule without in-place updates, registered with :func:`jax_rule`::

      from dopa_rl.models.jax_rules import jax_rule

      @jax_rule(forgetting)                     # the update given to choice_model
      def forgetting_jax(q, choice, reward, theta):
          import jax.numpy as jnp
          alpha, phi = theta[0], theta[1]
          chosen = jnp.arange(q.shape[0]) == choice
          return jnp.where(chosen, q + alpha * (reward - q), q - phi * q)

  (``choice`` is a traced integer, a Pavlovian rule's ``present`` a traced 0/1 vector: select with
  ``jnp.where`` rather than ``if``.)

:func:`trial_function` checks the JAX log-likelihood against the model's compiled one at the defaults and
at two other points of the parameter space before it is used, so a JAX rule that disagrees with the
compiled rule is an InputError, never a wrong posterior.  TD models have no JAX version yet.
"""
from __future__ import annotations

import types
from typing import Callable

import numpy as np

from dopa_rl.errors import InputError
from dopa_rl.models.base import Model, Packed
from dopa_rl.models.observations import LOG_RATE_MAX

__all__ = ["AGREEMENT_RTOL", "jax_rule", "rule_for", "rw_choice_rule", "rw_pavlovian_rule", "derived_rule",
           "natural_transform", "trial_function", "loglik_function", "supports"]

_RULES: dict[Callable, Callable] = {}   # a family model's update rule -> its JAX twin

#: relative agreement required between the JAX and the compiled log-likelihood (float64 both)
AGREEMENT_RTOL = 1e-6


def jax_rule(update: Callable) -> Callable[[Callable], Callable]:
    """Decorator registering ``fn(values, event, reward, theta) -> new values`` as the JAX twin of ``update``
    (the learning rule given to ``choice_model``/``pavlovian_model``; numba-compiled or not).

    Parameters
    ----------
    update : callable
        The in-place update function the model was built with.

    Returns
    -------
    callable
        A decorator that registers its function and returns it unchanged.
    """
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


# -------------------------------------------------------------------------- a user's rule, traced
class _Values:
    """The ``values`` array a user's in-place rule sees under tracing: integer indexing reads and writes
    traced scalars; arithmetic, ``sum`` and ``shape`` behave as on a 1-d array."""

    def __init__(self, items):
        self.items = list(items)

    @property
    def shape(self):
        return (len(self.items),)

    @property
    def size(self):
        return len(self.items)

    def __len__(self):
        return len(self.items)

    def _index(self, i):
        if isinstance(i, (int, np.integer)):
            return int(i)
        raise TypeError(f"values[{i!r}]: index with a whole number")

    def __getitem__(self, i):
        return self.items[self._index(i)]

    def __setitem__(self, i, v):
        self.items[self._index(i)] = v

    def __iter__(self):
        return iter(list(self.items))

    def array(self):
        import jax.numpy as jnp

        return jnp.stack([jnp.asarray(v) for v in self.items])

    def sum(self, *args, **kw):
        return self.array().sum(*args, **kw)

    def __jax_array__(self):
        return self.array()

    def __array__(self, *args, **kw):  # numpy cannot hold traced values
        raise TypeError("the values are traced by JAX")


for _op in ("add", "sub", "mul", "truediv", "pow"):
    def _make(op):
        def f(self, other):
            return getattr(self.array(), f"__{op}__")(other.array() if isinstance(other, _Values) else other)

        def rf(self, other):
            return getattr(self.array(), f"__r{op}__")(other)
        return f, rf
    _f, _rf = _make(_op)
    setattr(_Values, f"__{_op}__", _f)
    setattr(_Values, f"__r{_op}__", _rf)


def _traceable(fn: Callable) -> Callable:
    """``fn`` with ``numpy`` in its globals swapped for ``jax.numpy`` (the original is untouched)."""
    import jax.numpy as jnp

    py = getattr(fn, "py_func", fn)
    if not isinstance(py, types.FunctionType):
        return py
    glb = {k: (jnp if v is np else v) for k, v in py.__globals__.items()}
    return types.FunctionType(py.__code__, glb, py.__name__, py.__defaults__, py.__closure__)


def derived_rule(update: Callable, events: np.ndarray) -> Callable:
    """The JAX rule ``(values [E], event_index, reward, theta) -> new values`` of an in-place ``update``.

    Parameters
    ----------
    update : callable
        ``update(values, event, reward, theta)``, changing ``values`` in place (a family model's rule).
    events : ndarray
        The possible events: option numbers ``[K]`` (choice) or cue presence rows ``[P, E]`` (Pavlovian).
        The rule is traced once per event and ``event_index`` (traced) selects the result.

    Returns
    -------
    callable
        The pure JAX rule.
    """
    import jax.numpy as jnp

    fn = _traceable(update)
    events = np.asarray(events)

    def rule(values, event_index, reward, theta):
        outs = []
        for e in events:
            proxy = _Values([values[j] for j in range(values.shape[0])])
            ev = int(e) if events.ndim == 1 else np.asarray(e, dtype=float)
            fn(proxy, ev, reward, theta)
            outs.append(proxy.array())
        stacked = jnp.stack(outs)                                       # [n_events, E]
        pick = jnp.arange(len(events)) == event_index
        return jnp.sum(jnp.where(pick[:, None], stacked, 0.0), axis=0)

    return rule


def _family_rule(model: Model, events: np.ndarray):
    """(rule, takes an event index) of a family model: its registered twin, else the derived one."""
    twin = rule_for(model.update)
    if twin is not None:
        return twin, False
    return derived_rule(model.update, events), True


def _no_rule(model: Model, exc: Exception) -> InputError:
    name = getattr(model.update, "__name__", "update")
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return InputError(f"model {model.name}: its update rule {name} cannot be traced by JAX ({type(exc).__name__}: "
                      f"{first}); write the same rule without in-place updates and register it with "
                      f"@dopa_rl.models.jax_rules.jax_rule({name}) (docs/bayes.md)")


def _safe_log_rate(eta):
    import jax.numpy as jnp

    over = jnp.maximum(eta - LOG_RATE_MAX, 0.0)
    return jnp.where(eta <= LOG_RATE_MAX, eta, LOG_RATE_MAX + jnp.log1p(over))


# ---------------------------------------------------------------------------------------- choice
def _previous_choice(choices: np.ndarray, resets: np.ndarray) -> np.ndarray:
    """The last valid choice before each trial since the session start (-1: none) [S, T] (data only)."""
    S, T = choices.shape
    prev = np.full((S, T), -1, dtype=np.int64)
    last = np.full(S, -1, dtype=np.int64)
    for t in range(T):          # over the data once, at set-up: not on the likelihood path
        last = np.where(resets[:, t], -1, last)
        prev[:, t] = last
        last = np.where(choices[:, t] >= 0, choices[:, t], last)
    return prev


def _choice_observation(model: Model):
    names = model.spec.names
    col = lambda n: names.index(n) if n in names else None
    return names.index("beta"), col("kappa"), col("epsilon")


def _choice_trials(model: Model, data: Packed) -> Callable:
    import jax
    import jax.numpy as jnp

    from dopa_rl.models.family import ChoiceFamilyModel

    names = model.spec.names
    K = int(data.extra["n_options"])
    q0 = float(getattr(model, "q0", 0.0))
    ch = np.asarray(data.extra["choices"])
    valid = jnp.asarray(ch >= 0)
    onehot = jnp.asarray((ch[..., None] == np.arange(K)).astype(float))                   # [S, T, K]
    prev_onehot = jnp.asarray((_previous_choice(ch, data.resets)[..., None] == np.arange(K)).astype(float))
    rewards = jnp.asarray(data.rewards, dtype=jnp.float64)
    reset = jnp.asarray(data.resets.astype(float))[..., None]                             # [S, T, 1]
    i_beta, i_kappa, i_eps = _choice_observation(model)
    family = isinstance(model, ChoiceFamilyModel)
    linear = not family and "alpha" in names

    if linear:
        def values(x):
            # F_t: the session reset, then the update; both affine and diagonal in Q
            alpha = x[:, names.index("alpha")][:, None, None]
            A_u = 1.0 - alpha * onehot
            A = A_u * (1.0 - reset)
            b = A_u * reset * q0 + alpha * onehot * rewards[..., None]

            def compose(e1, e2):
                return e2[0] * e1[0], e2[0] * e1[1] + e2[1]

            PA, Pb = jax.lax.associative_scan(compose, (A, b), axis=1)
            after = PA * q0 + Pb
            before = jnp.concatenate([jnp.full_like(after[:, :1], q0), after[:, :-1]], axis=1)
            return before * (1.0 - reset) + reset * q0                                   # Q before each trial
    else:
        if family:
            learn = list(range(len(model.rule_params)))
            rule, by_index = _family_rule(model, np.arange(K))
        else:
            learn = [names.index("alpha_pos"), names.index("alpha_neg")]
            rule, by_index = rw_choice_rule, False
        step_rule = jax.vmap(rule)
        cT = jnp.asarray(np.maximum(ch, 0).T)
        seq = (cT, rewards.T, jnp.asarray(data.resets.T), valid.T)

        def values(x):
            theta = x[:, np.asarray(learn)]

            def step(q, trial):
                c, r, rs, ok = trial
                q = jnp.where(rs[:, None], q0, q)
                q_new = step_rule(q, c, r, theta)
                return jnp.where(ok[:, None], q_new, q), q

            init = jnp.full((x.shape[0], K), q0, dtype=x.dtype)
            _, before = jax.lax.scan(step, init, seq)
            return jnp.transpose(before, (1, 0, 2))

    def trials(x):
        q = values(x)                                                                   # [S, T, K]
        logits = x[:, i_beta][:, None, None] * q
        if i_kappa is not None:
            logits = logits + x[:, i_kappa][:, None, None] * prev_onehot
        logp_all = jax.nn.log_softmax(logits, axis=-1)
        if i_eps is not None:
            eps = x[:, i_eps][:, None, None]
            logp_all = jnp.logaddexp(jnp.log1p(-eps) + logp_all, jnp.log(eps / K))
        logp = jnp.where(valid, jnp.sum(logp_all * onehot, axis=-1), 0.0)
        v = jnp.sum(q * onehot, axis=-1)
        return {"logp": logp, "value": jnp.where(valid, v, jnp.nan),
                "rpe": jnp.where(valid, rewards - v, jnp.nan), "probs": jnp.exp(logp_all)}

    return trials


# ------------------------------------------------------------------------------------- Pavlovian
def _pavlovian_trials(model: Model, data: Packed) -> Callable:
    import jax
    import jax.numpy as jnp
    from jax.scipy.special import gammaln

    from dopa_rl.models.family import PavlovianFamilyModel

    names = model.spec.names
    Xn = np.asarray(data.extra["X"], dtype=float)                                       # [S, T, E]
    live_np = np.arange(data.rewards.shape[1])[None, :] < data.n_trials[:, None]
    if isinstance(model, PavlovianFamilyModel):
        learn = list(range(len(model.rule_params)))
        patterns, codes = np.unique(Xn.reshape(-1, Xn.shape[2]), axis=0, return_inverse=True)
        rule, by_index = _family_rule(model, patterns)
        events = jnp.asarray(codes.reshape(Xn.shape[:2]).T) if by_index else jnp.asarray(np.transpose(Xn, (1, 0, 2)))
    else:
        learn = [names.index("alpha_pos") if "alpha_pos" in names else names.index("alpha"),
                 names.index("alpha_neg") if "alpha_neg" in names else names.index("alpha")]
        rule = rw_pavlovian_rule
        events = jnp.asarray(np.transpose(Xn, (1, 0, 2)))
    i_b0, i_b1 = names.index("lick_intercept"), names.index("lick_slope")
    X = jnp.asarray(np.transpose(Xn, (1, 0, 2)))                                        # [T, S, E]
    licks = np.asarray(data.extra["licks"], dtype=float)
    counted = jnp.asarray(np.isfinite(licks))
    k = jnp.asarray(np.where(np.isfinite(licks), licks, 0.0))
    log_fact = gammaln(k + 1.0)
    rewards = jnp.asarray(data.rewards, dtype=jnp.float64)
    live = jnp.asarray(live_np)
    step_rule = jax.vmap(rule)
    E = Xn.shape[2]
    seq = (X, events, rewards.T, jnp.asarray(data.resets.T), live.T)

    def trials(x):
        theta = x[:, np.asarray(learn)]

        def step(v, trial):
            xt, ev, r, rs, alive = trial
            v = jnp.where(rs[:, None], 0.0, v)
            pred = jnp.sum(v * xt, axis=1)
            v = jnp.where(alive[:, None], step_rule(v, ev, r, theta), v)
            return v, pred

        _, pred = jax.lax.scan(step, jnp.zeros((x.shape[0], E), dtype=x.dtype), seq)
        pred = pred.T                                                                   # [S, T]
        lr = _safe_log_rate(x[:, i_b0][:, None] + x[:, i_b1][:, None] * pred)
        logp = jnp.where(counted, k * lr - jnp.exp(lr) - log_fact, 0.0)
        return {"logp": logp, "value": jnp.where(live, pred, jnp.nan), "rpe": jnp.where(live, rewards - pred, jnp.nan)}

    return trials


# ----------------------------------------------------------------------------------------- shared
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


def supports(model: Model) -> bool:
    """True when :func:`trial_function` has a JAX version of ``model`` (RW choice and Pavlovian, family)."""
    from dopa_rl.models.rw import RWChoice, RWPavlovian

    return isinstance(model, (RWChoice, RWPavlovian))


def _check_points(model: Model, S: int) -> list[np.ndarray]:
    spec = model.spec
    lo = np.array([p.init_low for p in spec])
    hi = np.array([p.init_high for p in spec])
    x0 = np.array([p.default for p in spec])
    return [np.tile(x0, (S, 1)), np.tile(lo + 0.3 * (hi - lo), (S, 1)), np.tile(lo + 0.8 * (hi - lo), (S, 1))]


def trial_function(model: Model, data: Packed, check: bool = True) -> Callable:
    """``x [S, k] -> {"logp", "value", "rpe"[, "probs"]}`` per trial (see the module docstring), checked
    against the model's compiled likelihood (``check``) at three parameter points.

    Parameters
    ----------
    model : Model
        An RW choice or Pavlovian model, built-in or from ``choice_model``/``pavlovian_model``.
    data : Packed
        ``model.pack(table)``.
    check : bool
        Compare with ``model.loglik`` before returning (an InputError when they disagree).

    Returns
    -------
    callable
        The JAX function (not jitted).
    """
    import jax

    from dopa_rl.models.rw import RWChoice, RWPavlovian

    jax.config.update("jax_enable_x64", True)
    try:
        if isinstance(model, RWChoice):
            fn = _choice_trials(model, data)
        elif isinstance(model, RWPavlovian):
            fn = _pavlovian_trials(model, data)
        else:
            raise InputError(f"model {model.name} has no JAX log-likelihood yet; method 'bayes' fits the RW "
                             f"choice and Pavlovian models and models built with choice_model/pavlovian_model")
        if not check:
            return fn
        ll = jax.jit(lambda x: fn(x)["logp"].sum(axis=1))
        S = data.n_subjects
        for x0 in _check_points(model, S):
            got = np.asarray(ll(x0))
            want = model.loglik(x0, data, np.arange(S, dtype=np.int64))
            if not np.allclose(got, want, rtol=AGREEMENT_RTOL, atol=1e-8):
                worst = int(np.argmax(np.abs(got - want)))
                raise InputError(f"model {model.name}: the JAX log-likelihood disagrees with the model's own "
                                 f"(subject {data.subjects[worst]}: {got[worst]:.6g} vs {want[worst]:.6g} at "
                                 f"{dict(zip(model.spec.names, np.round(x0[0], 4)))}); check that its JAX rule "
                                 f"computes the same update")
    except InputError:
        raise
    except Exception as exc:  # the tracing of a user's rule failed
        if hasattr(model, "update"):
            raise _no_rule(model, exc) from exc
        raise
    return fn


def loglik_function(model: Model, data: Packed, check: bool = True) -> Callable:
    """``x [S, k] -> log-likelihood [S]`` of every subject of ``data`` in JAX (float64); see
    :func:`trial_function`."""
    fn = trial_function(model, data, check)
    return lambda x: fn(x)["logp"].sum(axis=1)
