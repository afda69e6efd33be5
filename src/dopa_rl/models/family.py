"""Family factories: a whole model from a learning rule.

>>> from dopa_rl.models import Param, choice_model
>>> def forgetting(q, choice, reward, theta):
...     alpha, phi = theta[0], theta[1]
...     for k in range(q.shape[0]):
...         if k == choice:
...             q[k] += alpha * (reward - q[k])
...         else:
...             q[k] -= phi * q[k]
>>> m = choice_model("rw-forget", params=[Param("alpha", lower=0, upper=1), Param("phi", lower=0, upper=1)],
...                  update=forgetting)
>>> m.param_names
['alpha', 'phi', 'beta']

``update(values, event, reward, theta)`` changes ``values`` (a float array) in place after a trial; ``theta``
holds the listed learning parameters in their order (index it: ``theta[0]``).  For a choice model
``event`` is the chosen option (0-based int) and ``values`` has one entry per option; for a Pavlovian model
``event`` is the presence (0/1 floats) of each cue element on the trial and ``values`` one value per element.
A plain Python function is compiled with numba (``nopython`` mode: numbers and arrays only); one already
compiled (``@numba.njit``) is used as it is.

The library supplies the rest, as for the built-in models: choice ``P(k) = (1 - epsilon) *
softmax(beta * Q + kappa * [k == previous choice]) + epsilon / K`` (``kappa`` with ``sticky=True``,
``epsilon`` with ``lapse=True``); Pavlovian licks ~ Poisson(exp(lick_intercept + lick_slope * V_pred)) with
``V_pred`` the summed value of the cues present.  Values start at ``q0`` (choice; 0 by default) or 0
(Pavlovian) at every session start; a missed choice (empty) adds nothing and updates nothing; a trial
without a lick count still updates.  The prediction error reported (trajectories, simulations) is
``reward - Q[chosen]`` (choice) or ``reward - V_pred`` (Pavlovian) before the update.  Gradients are central
differences computed as extra lanes of the same compiled call.
"""
from __future__ import annotations

import inspect
from typing import Callable, Sequence

import numpy as np

from dopa_rl.errors import InputError
from dopa_rl.models.base import Model, check_options
from dopa_rl.models.params import Param, ParamSpec
from dopa_rl.models.rw import P_BETA, P_EPSILON, P_KAPPA, P_LICK0, P_LICK1, RWChoice, RWPavlovian

__all__ = ["CHOICE_OBSERVATION", "PAVLOVIAN_OBSERVATION", "ChoiceFamilyModel", "PavlovianFamilyModel",
           "choice_model", "pavlovian_model"]

CHOICE_OBSERVATION = ("beta", "kappa", "epsilon")
PAVLOVIAN_OBSERVATION = ("lick_intercept", "lick_slope")


def _check_rule(name: str, params: Sequence[Param], update: Callable, reserved: Sequence[str]) -> list[Param]:
    """Validate the factory arguments; one InputError listing every problem."""
    problems = []
    params = list(params)
    for p in params:
        if not isinstance(p, Param):
            problems.append(f"params must be Param objects (got {p!r}); write Param('alpha', lower=0, upper=1)")
    names = [p.name for p in params if isinstance(p, Param)]
    clash = sorted(set(names) & set(reserved))
    if clash:
        problems.append(f"parameter name(s) {', '.join(clash)} are added by the library; rename yours")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        problems.append(f"parameter name(s) {', '.join(dup)} repeat")
    if not params:
        problems.append("give at least one learning parameter")
    if not callable(update):
        problems.append(f"update must be a function update(values, event, reward, theta), got {type(update).__name__}")
    else:
        py = getattr(update, "py_func", update)
        try:
            n_args = len(inspect.signature(py).parameters)
        except (TypeError, ValueError):
            n_args = 4
        if n_args != 4:
            problems.append(f"update takes {n_args} argument(s); it must take (values, event, reward, theta)")
    if not isinstance(name, str) or not name:
        problems.append("give the model a name")
    if problems:
        raise InputError(f"model {name}: " + "; ".join(problems))
    return params


def _compiled(update: Callable):
    """``update`` compiled by numba (itself if the user already compiled it)."""
    from numba.extending import is_jitted

    if is_jitted(update):
        return update
    from numba import njit

    return njit(update)


def _compile_check(model, warm_up: Callable[[], object]) -> None:
    """Compile the model's kernels now (first use) and report a rule numba cannot compile in one line."""
    from numba.core.errors import NumbaError

    try:
        warm_up()
    except NumbaError as exc:
        first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
        raise InputError(f"model {model.name}: numba cannot compile the update function "
                         f"{getattr(model.update, '__name__', '')}: {first} (use numbers and numpy arrays only)") from exc


class _CompiledOnUse:
    """Pickles without its compiled kernels (they are rebuilt on first use in the receiving process)."""

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_kernels"] = {}
        return state


class ChoiceFamilyModel(_CompiledOnUse, RWChoice):
    """A choice model from a learning rule (see :func:`choice_model`); packing, simulation output and
    trajectory tables are the RW choice model's own."""

    analytic_gradient = False
    option_names = ("q0", "n_options")

    def __init__(self, name: str, params: Sequence[Param], update: Callable, *, sticky: bool = False,
                 lapse: bool = False, description: str = "", q0: float = 0.0, n_options: int | None = None,
                 _kernels: dict | None = None):
        learn = _check_rule(name, params, update, CHOICE_OBSERVATION)
        self.name = name
        self.update = update
        self.rule_params = tuple(learn)
        self.sticky, self.lapse = bool(sticky), bool(lapse)
        self.spec = ParamSpec(learn + [P_BETA] + ([P_KAPPA] if sticky else []) + ([P_EPSILON] if lapse else []))
        self.description = description or f"user learning rule {getattr(update, '__name__', 'update')}, softmax choice"
        self.q0 = float(q0)
        if not np.isfinite(self.q0):
            raise InputError(f"model {name}: q0={q0} is not a finite number")
        self.n_options = n_options
        self._kernels = _kernels if _kernels is not None else {}  # shared with copies made by with_options

    def with_options(self, **options) -> "ChoiceFamilyModel":
        check_options(self.name, options, set(self.option_names))
        kw = {"q0": self.q0, "n_options": self.n_options, **options}
        return ChoiceFamilyModel(self.name, self.rule_params, self.update, sticky=self.sticky, lapse=self.lapse,
                                 description=self.description, _kernels=self._kernels, **kw)

    def kernels(self) -> dict:
        """The compiled kernels (built and compiled on first use, once per process)."""
        if not self._kernels:
            from dopa_rl.models.family_kernels import choice_kernels

            k = choice_kernels(_compiled(self.update), len(self.rule_params), self.sticky, self.lapse)
            th = np.array([self.spec.defaults()[n] for n in self.spec.names], dtype=float)[None]
            _compile_check(self, lambda: k["serial"](th, np.zeros(1, np.int64), np.zeros((1, 2), np.int64),
                                                     np.ones((1, 2)), np.ones((1, 2), np.bool_),
                                                     np.array([2], np.int64), 2, self.q0))
            self._kernels.update(k)
        return self._kernels

    def loglik(self, x, data, lanes):
        x = np.ascontiguousarray(np.atleast_2d(x), dtype=float)
        return self.kernels()["loglik"](x, np.asarray(lanes, np.int64), data.extra["choices"], data.rewards,
                                        data.resets, data.n_trials, data.extra["n_options"], self.q0)

    def _loglik_grad_natural(self, x, data, lanes):
        raise NotImplementedError(f"{self.name} has no analytic gradient (finite differences are used)")

    def _simulate_kernel(self, x, reward_probs, reward_sizes, resets, u_choice, u_reward):
        return self.kernels()["simulate"](np.asarray(x, float), np.ascontiguousarray(reward_probs, float),
                                          np.asarray(reward_sizes, float), resets, u_choice, u_reward, self.q0)

    def _trajectory_kernel(self, x, choices, rewards, resets, n_options):
        return self.kernels()["trajectory"](np.asarray(x, float), choices, rewards, resets, n_options, self.q0)

    def _trial_kernel(self):
        return self.kernels()["step"]

    def _online_theta(self, x):
        return np.asarray(x[: len(self.rule_params)], float)


class PavlovianFamilyModel(_CompiledOnUse, RWPavlovian):
    """A Pavlovian model from a learning rule over cue-element values (see :func:`pavlovian_model`)."""

    analytic_gradient = False

    def __init__(self, name: str, params: Sequence[Param], update: Callable, *, description: str = "",
                 _kernels: dict | None = None):
        learn = _check_rule(name, params, update, PAVLOVIAN_OBSERVATION)
        self.name = name
        self.update = update
        self.rule_params = tuple(learn)
        self.spec = ParamSpec(learn + [P_LICK0, P_LICK1])
        self.description = description or (f"user learning rule {getattr(update, '__name__', 'update')}; "
                                            f"anticipatory licks ~ Poisson(exp(b0 + b1 V))")
        self._kernels = _kernels if _kernels is not None else {}

    def kernels(self) -> dict:
        if not self._kernels:
            from dopa_rl.models.family_kernels import pavlovian_kernels

            k = pavlovian_kernels(_compiled(self.update), len(self.rule_params))
            th = np.array([self.spec.defaults()[n] for n in self.spec.names], dtype=float)[None]
            _compile_check(self, lambda: k["serial"](th, np.zeros(1, np.int64), np.ones((1, 2, 1)), np.ones((1, 2)),
                                                     np.ones((1, 2)), np.ones((1, 2), np.bool_),
                                                     np.array([2], np.int64)))
            self._kernels.update(k)
        return self._kernels

    def loglik(self, x, data, lanes):
        x = np.ascontiguousarray(np.atleast_2d(x), dtype=float)
        return self.kernels()["loglik"](x, np.asarray(lanes, np.int64), data.extra["X"], data.rewards,
                                        data.extra["licks"], data.resets, data.n_trials)

    def _trajectory_kernel(self, x, X, rewards, resets):
        return self.kernels()["trajectory"](np.asarray(x, float), np.ascontiguousarray(X, float),
                                            np.asarray(rewards, float), np.asarray(resets, np.bool_))

    def _trial_kernel(self):
        return self.kernels()["step"]

    def _online_theta(self, x):
        return np.asarray(x[: len(self.rule_params)], float)

    rpes = Model.rpes     # the user's rule, lane by lane (the built-in compiled kernel is RW's own)


def choice_model(name: str, params: Sequence[Param], update: Callable, *, sticky: bool = False, lapse: bool = False,
                 description: str = "", q0: float = 0.0, n_options: int | None = None) -> ChoiceFamilyModel:
    """A choice (bandit) model whose option values follow ``update(q, choice, reward, theta)``.

    Nothing compiles until first use.  Register it with :func:`dopa_rl.models.register_model` to name it in
    ``get_model``, or name it on the command line as ``FILE.py:VARIABLE``.

    Parameters
    ----------
    name : str
        The model's name.
    params : sequence of Param
        The learning parameters, in the order ``theta`` holds them; ``beta`` (softmax inverse temperature)
        follows, then ``kappa`` (stickiness) if ``sticky`` and ``epsilon`` (lapse) if ``lapse``.
    update : callable
        ``update(q, choice, reward, theta)``: updates the option values ``q`` in place after one trial
        (compiled with numba).
    sticky : bool, default False
        Add a stickiness parameter ``kappa`` (a bonus for repeating the last choice).
    lapse : bool, default False
        Add a lapse rate ``epsilon`` (a uniformly random choice with that probability).
    description : str, optional
        One line shown by ``dopa-rl models``.
    q0 : float, default 0.0
        Initial option value.
    n_options : int, optional
        Number of options (default: read from the data).

    Returns
    -------
    ChoiceFamilyModel
        The model.
    """
    return ChoiceFamilyModel(name, params, update, sticky=sticky, lapse=lapse, description=description, q0=q0,
                             n_options=n_options)


def pavlovian_model(name: str, params: Sequence[Param], update: Callable, *,
                    description: str = "") -> PavlovianFamilyModel:
    """A Pavlovian model whose cue-element values follow ``update(v, present, reward, theta)``.

    Anticipatory licks are Poisson with log rate ``lick_intercept + lick_slope`` times the summed value of the
    cues present.

    Parameters
    ----------
    name : str
        The model's name.
    params : sequence of Param
        The learning parameters, in the order ``theta`` holds them; ``lick_intercept`` and ``lick_slope``
        follow.
    update : callable
        ``update(v, present, reward, theta)``: updates the element values ``v`` in place after one trial;
        ``present`` holds 1.0 for each element of the trial's cue (compounds ``"A+X"``) and 0.0 otherwise.
    description : str, optional
        One line shown by ``dopa-rl models``.

    Returns
    -------
    PavlovianFamilyModel
        The model.
    """
    return PavlovianFamilyModel(name, params, update, description=description)
