"""Rescorla-Wagner learners: choice (bandit, softmax) and Pavlovian (cue compounds, licks).

Equations (docs/models.md):

* choice: ``Q[c] += alpha * (r - Q[c])`` (``alpha_pos``/``alpha_neg`` by the sign of the error),
  ``P(c) = (1 - epsilon) * softmax(beta * Q + kappa * [c == previous choice]) + epsilon / K``; Q starts at
  ``q0`` (0 unless given) for every option and at every session start.
* Pavlovian: ``V[e] += alpha * (r - sum(V[cues present])) `` for each element e of the compound; the
  anticipatory lick count is Poisson with rate ``exp(lick_intercept + lick_slope * sum(V[cues present]))``
  (:class:`dopa_rl.models.observations.PoissonLicks`: the same rate when simulating and fitting).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from dopa_rl.errors import InputError
from dopa_rl.models._lazy import lazy_module
from dopa_rl.models.base import (Model, Packed, Simulation, check_options, lick_counts, pack_common,
                                 require_columns, take, trials_frame)
from dopa_rl.models.params import Param, ParamSpec
from dopa_rl.models.tasks import BanditTask, PavlovianTask, split_compound

__all__ = ["ALPHA", "P_ALPHA", "P_ALPHA_POS", "P_ALPHA_NEG", "P_BETA", "P_KAPPA", "P_EPSILON", "P_LICK0", "P_LICK1",
           "rescorla_wagner_step", "RWChoice", "choice_models", "cue_matrix", "RWPavlovian", "pavlovian_models"]

pd = lazy_module("pandas")              # imported on first use: listing models stays fast
kernels = lazy_module("dopa_rl.models.kernels")  # numba loads only when a likelihood runs
observations = lazy_module("dopa_rl.models.observations")

ALPHA = dict(lower=0.0, upper=1.0, default=0.3, init_low=0.05, init_high=0.95, prior_mean=0.0, prior_sd=1.5)
P_ALPHA = Param("alpha", description="learning rate", **ALPHA)
P_ALPHA_POS = Param("alpha_pos", description="learning rate for positive prediction errors", **ALPHA)
P_ALPHA_NEG = Param("alpha_neg", description="learning rate for negative prediction errors", **ALPHA)
P_BETA = Param("beta", 0.0, 50.0, 3.0, 0.5, 10.0, prior_mean=-2.2, prior_sd=1.5,
               description="softmax inverse temperature")
P_KAPPA = Param("kappa", -10.0, 10.0, 0.0, -1.0, 1.0, prior_mean=0.0, prior_sd=0.5,
                description="choice stickiness (bonus for repeating the last choice)")
P_EPSILON = Param("epsilon", 0.0, 1.0, 0.05, 0.01, 0.2, prior_mean=-2.9, prior_sd=1.5,
                  description="lapse: probability of a random choice")
P_LICK0 = Param("lick_intercept", -np.inf, np.inf, 0.0, -1.0, 1.5, prior_mean=0.0, prior_sd=2.0,
                description="log lick rate at zero value")
P_LICK1 = Param("lick_slope", -np.inf, np.inf, 2.0, 0.0, 4.0, prior_mean=1.0, prior_sd=3.0,
                description="change in log lick rate per unit value")


def rescorla_wagner_step(values: np.ndarray, present: np.ndarray, reward: float, alpha: float) -> np.ndarray:
    """One RW update for the cue elements ``present``: returns the new values (input untouched)."""
    values = np.asarray(values, dtype=float).copy()
    present = np.asarray(present, dtype=bool)
    delta = reward - values[present].sum()
    values[present] += alpha * delta
    return values


# ------------------------------------------------------------------------------------------- choice RW
class RWChoice(Model):
    """RW with softmax choice; the variant is fixed by which parameters are free."""

    kind = "choice"
    required_columns = ("subject", "choice", "reward")
    analytic_gradient = True

    def __init__(self, name: str, params: list[Param], description: str, *, q0: float = 0.0,
                 n_options: int | None = None):
        self.name = name
        self.spec = ParamSpec(params)
        self.description = description
        self.q0 = float(q0)
        self.n_options = n_options
        names = self.spec.names
        # column j of the kernel's theta comes from parameter src[j] (an index) or stays fixed
        self._src = [names.index("alpha_pos") if "alpha_pos" in names else names.index("alpha"),
                     names.index("alpha_neg") if "alpha_neg" in names else names.index("alpha"),
                     names.index("beta"),
                     names.index("kappa") if "kappa" in names else None,
                     names.index("epsilon") if "epsilon" in names else None,
                     None]

    option_names = ("q0", "n_options")
    observation_params = ("beta", "kappa", "epsilon")

    def options(self) -> dict:
        return {"q0": self.q0, "n_options": self.n_options}

    def with_options(self, **options) -> "RWChoice":
        check_options(self.name, options, set(self.option_names))
        kw = {"q0": self.q0, "n_options": self.n_options, **options}
        return RWChoice(self.name, list(self.spec), self.description, **kw)

    def _theta(self, x: np.ndarray) -> np.ndarray:
        x = np.atleast_2d(x)
        theta = np.zeros((x.shape[0], 6))
        theta[:, 5] = self.q0
        for j, src in enumerate(self._src):
            if src is not None:
                theta[:, j] = x[:, src]
        return theta

    def pack(self, df: pd.DataFrame) -> Packed:
        require_columns(df, self)
        packed, groups = pack_common(df)
        T = packed.rewards.shape[1]
        ch = pd.to_numeric(df["choice"], errors="coerce").to_numpy(dtype=float)
        bad = np.isfinite(ch) & ((ch != np.round(ch)) | (ch < 0))
        if bad.any() or (np.isnan(ch) & df["choice"].notna().to_numpy()).any():
            raise InputError("column 'choice' must hold 0-based option numbers (empty for a missed trial); "
                             "validate tables with dopa_rl.io.behavior.normalize_behavior")
        ch = np.where(np.isnan(ch), -1, ch).astype(np.int64)
        choices = take(ch, groups, T, -1, np.int64)
        n_opt = self.n_options or int(max(ch.max(initial=0) + 1, 2))
        if self.n_options is None and n_opt >= 3 and not (ch == 0).any():
            raise InputError(f"column 'choice': options 1..{n_opt - 1} are chosen but option 0 never is, so the "
                             f"options look numbered from 1 (use `choice_base` 1), or give `n_options` {n_opt} "
                             f"if option 0 exists but was never chosen")
        if ch.max(initial=-1) >= n_opt:
            raise InputError(f"choice {ch.max()} is out of range for {n_opt} options")
        packed.extra.update(choices=choices, n_options=n_opt)
        packed.n_obs = (choices >= 0).sum(axis=1).astype(np.int64)
        return packed

    def _args(self, data: Packed):
        return (data.extra["choices"], data.rewards, data.resets, data.n_trials, data.extra["n_options"])

    def _variant(self) -> dict | None:
        """The specialised kernel of this parameter layout (None: the general kernel serves it)."""
        names = self.spec.names
        asym = "alpha_pos" in names
        layout = (["alpha_pos", "alpha_neg"] if asym else ["alpha"]) + ["beta"] + \
            (["kappa"] if "kappa" in names else []) + (["epsilon"] if "epsilon" in names else [])
        if names != layout:
            return None
        return {"asym": asym, "sticky": "kappa" in names, "lapse": "epsilon" in names}

    def _specialised(self, x, data, lanes, grad: bool):
        variant = self._variant()
        if variant is None:
            return None
        x = np.atleast_2d(np.asarray(x, dtype=float))
        from dopa_rl.models.lanes import rw_choice_loglik_variant

        return rw_choice_loglik_variant(x, lanes, *self._args(data), self.q0, grad=grad, **variant)

    def _loglik_grad_natural(self, x, data, lanes):
        out = self._specialised(x, data, lanes, grad=True)
        if out is not None:
            return out
        ll, g6 = kernels.rw_choice_loglik(self._theta(x), np.asarray(lanes, np.int64), *self._args(data))
        grad = np.zeros((g6.shape[0], len(self.spec)))
        for j, src in enumerate(self._src):
            if src is not None:
                grad[:, src] += g6[:, j]
        return ll, grad

    def loglik(self, x, data, lanes):
        """Log-likelihood [L] of each lane, by the value-only kernel (no gradient carried)."""
        out = self._specialised(x, data, lanes, grad=False)
        return out if out is not None else self._loglik_grad_natural(x, data, lanes)[0]

    # the per-trial recursions behind simulate and trajectories (a family model swaps in its own rule)
    def _simulate_kernel(self, x, reward_probs, reward_sizes, resets, u_choice, u_reward):
        return kernels.rw_choice_simulate(self._theta(x)[0], reward_probs, reward_sizes, resets, u_choice, u_reward)

    def _trajectory_kernel(self, x, choices, rewards, resets, n_options):
        return kernels.rw_choice_trajectory(self._theta(x)[0], choices, rewards, resets, n_options)

    def simulate(self, params: Mapping[str, float], task: BanditTask, rng: np.random.Generator, *,
                 subject: str = "1", session: str = "1") -> Simulation:
        if not isinstance(task, BanditTask):
            raise InputError(f"{self.name} simulates choice tasks (bandit); got {type(task).__name__}")
        x = self.check_params(params)
        T = task.n_trials
        resets = np.zeros(T, np.bool_)
        resets[0] = True
        u_c, u_r = rng.random(T), rng.random(T)
        choices, rewards, q, p, rpe = self._simulate_kernel(x, task.reward_probs, task.reward_size, resets, u_c, u_r)
        tm = task.timing
        trials = trials_frame(task, rng, subject, session, {"choice": choices, "reward": rewards, "block": task.block})
        for k in range(task.n_options):
            trials[f"p_choice_{k}"] = p[:, k]
        rpe_tc = np.zeros((T, tm.n_bins))
        val_tc = np.zeros((T, tm.n_bins))
        chosen_q = q[np.arange(T), choices]
        rpe_tc[:, tm.cue_bin] = chosen_q
        rpe_tc[:, tm.outcome_bin] = rpe
        val_tc[:, tm.cue_bin: tm.outcome_bin] = chosen_q[:, None]
        return Simulation(trials, rpe_tc, val_tc, tm.bin_s, self.spec.as_dict(x), self.name, task)

    def _trial_kernel(self):
        """The per-trial update ``trial(Q, choice, reward, theta) -> prediction error`` (changes Q)."""
        update = kernels._rw_update
        return lambda Q, c, r, th: update(Q, c, r, th[0], th[1])

    def online(self, params: Mapping[str, float], *, n_options: int | None = None, **_):
        from dopa_rl.models.online import ChoiceLearner

        theta = self._online_theta(self.check_params(params))
        return ChoiceLearner(self._trial_kernel(), theta, n_options or self.n_options or 2, self.q0)

    def _online_theta(self, x):
        return self._theta(x)[0]

    def trial_rpes(self, x, data: Packed, s: int):
        """The chosen option's value at the cue and ``r - Q[chosen]`` at the outcome (NaN for missed trials)."""
        n = int(data.n_trials[s])
        ch = data.extra["choices"][s, :n]
        q, _, rpe = self._trajectory_kernel(np.asarray(x, float), ch, data.rewards[s, :n], data.resets[s, :n],
                                            data.extra["n_options"])
        ok = ch >= 0
        return np.where(ok, q[np.arange(n), np.maximum(ch, 0)], np.nan), np.where(ok, rpe, np.nan)

    def trajectories(self, x: np.ndarray, data: Packed, s: int) -> pd.DataFrame:
        n = int(data.n_trials[s])
        choices = data.extra["choices"][s, :n]
        q, p, rpe = self._trajectory_kernel(x, choices, data.rewards[s, :n], data.resets[s, :n],
                                            data.extra["n_options"])
        out = pd.DataFrame({"rpe": rpe})
        valid = choices >= 0
        out["value_chosen"] = np.where(valid, q[np.arange(n), np.maximum(choices, 0)], np.nan)
        out["p_chosen"] = np.where(valid, p[np.arange(n), np.maximum(choices, 0)], np.nan)
        for k in range(q.shape[1]):
            out[f"q_{k}"] = q[:, k]
            out[f"p_choice_{k}"] = p[:, k]
        return out


def choice_models(q0: float = 0.0, n_options: int | None = None) -> dict[str, RWChoice]:
    """The registered RW choice variants, each also with a lapse ``epsilon`` (suffix ``-lapse``)."""
    base = {
        "rw-softmax": ([P_ALPHA, P_BETA], "Rescorla-Wagner values, softmax choice"),
        "rw-softmax-asym": ([P_ALPHA_POS, P_ALPHA_NEG, P_BETA], "separate learning rates for positive and negative errors"),
        "rw-softmax-sticky": ([P_ALPHA, P_BETA, P_KAPPA], "softmax choice with a bonus for repeating the last choice"),
    }
    out = {}
    for name, (params, desc) in base.items():
        out[name] = RWChoice(name, params, desc, q0=q0, n_options=n_options)
        out[f"{name}-lapse"] = RWChoice(f"{name}-lapse", params + [P_EPSILON], desc + ", with lapse epsilon",
                                        q0=q0, n_options=n_options)
    return out


# ---------------------------------------------------------------------------------------- Pavlovian RW
def cue_matrix(cues: pd.Series | list, elements: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """Presence matrix [trials, elements] of compound cue labels like ``"A+X"``."""
    codes, labels = pd.factorize(pd.Series(list(cues) if not isinstance(cues, pd.Series) else cues, dtype=object),
                                 sort=False)
    parsed = [split_compound(c) for c in labels]   # each distinct label parsed once
    if elements is None:
        elements = sorted({e for p in parsed for e in p})
    index = {e: i for i, e in enumerate(elements)}
    rows = np.zeros((len(labels), len(elements)))
    for t, p in enumerate(parsed):
        for e in p:
            rows[t, index[e]] = 1.0
    return rows[codes], elements


class RWPavlovian(Model):
    """RW over cue elements with summed prediction; anticipatory licks ~ Poisson on value."""

    kind = "pavlovian"
    required_columns = ("subject", "cue", "reward", "licks")
    observation_params = ("lick_intercept", "lick_slope")
    observation_columns = ("licks",)

    def __init__(self, name: str, params: list[Param], description: str):
        self.name = name
        self.spec = ParamSpec(params)
        self.description = description
        names = self.spec.names
        self._src = [names.index("alpha_pos") if "alpha_pos" in names else names.index("alpha"),
                     names.index("alpha_neg") if "alpha_neg" in names else names.index("alpha"),
                     names.index("lick_intercept"), names.index("lick_slope")]

    def _theta(self, x):
        x = np.atleast_2d(x)
        return x[:, self._src]

    def pack(self, df: pd.DataFrame) -> Packed:
        require_columns(df, self)
        packed, groups = pack_common(df)
        T = packed.rewards.shape[1]
        Xall, elements = cue_matrix(df["cue"].astype(str))
        X = take(Xall, groups, T, 0.0, float)
        licks = take(lick_counts(df, self), groups, T, np.nan, float)
        packed.extra.update(X=X, licks=licks, elements=elements)
        packed.n_obs = np.isfinite(licks).sum(axis=1).astype(np.int64)
        return packed

    analytic_gradient = True

    def loglik(self, x, data, lanes):
        return kernels.rw_pavlovian_loglik(self._theta(x), np.asarray(lanes, np.int64), data.extra["X"],
                                           data.rewards, data.extra["licks"], data.resets, data.n_trials)

    def _loglik_grad_natural(self, x, data, lanes):
        """Value and analytic gradient (forward mode through the values) in one pass."""
        ll, g4 = kernels.rw_pavlovian_loglik_grad(self._theta(x), np.asarray(lanes, np.int64), data.extra["X"],
                                                  data.rewards, data.extra["licks"], data.resets, data.n_trials)
        grad = np.zeros((g4.shape[0], len(self.spec)))
        for j, src in enumerate(self._src):
            grad[:, src] += g4[:, j]
        return ll, grad

    def _trajectory_kernel(self, x, X, rewards, resets):
        """Values before each trial [T, E], summed prediction [T], outcome RPE [T] (a family model swaps this)."""
        return kernels.rw_pavlovian_trajectory(self._theta(x)[0], X, rewards, resets)

    def _trial_kernel(self):
        """The per-trial update ``trial(V, present, reward, theta) -> (prediction, error)`` (changes V)."""
        trial = kernels._pavlov_trial
        return lambda V, x, r, th: trial(V, x, r, th[0], th[1])

    def _online_theta(self, x):
        return self._theta(x)[0]

    def online(self, params: Mapping[str, float], **_):
        from dopa_rl.models.online import PavlovianLearner

        return PavlovianLearner(self._trial_kernel(), self._online_theta(self.check_params(params)))

    def rpes(self, x, data: Packed, lanes):
        """The cue's summed value (the cue response) and ``r - value`` [L, T], all lanes in one compiled call."""
        th = np.ascontiguousarray(self._theta(np.atleast_2d(np.asarray(x, float)))[:, :2])
        e = data.extra
        return kernels.rw_pavlovian_rpes(th, np.asarray(lanes, np.int64), e["X"], data.rewards, data.resets,
                                         data.n_trials)

    def trial_rpes(self, x, data: Packed, s: int):
        n = int(data.n_trials[s])
        _, pred, rpe = self._trajectory_kernel(np.asarray(x, float), data.extra["X"][s, :n], data.rewards[s, :n],
                                               data.resets[s, :n])
        return pred, rpe

    def simulate(self, params: Mapping[str, float], task: PavlovianTask, rng: np.random.Generator, *,
                 subject: str = "1", session: str = "1") -> Simulation:
        if not isinstance(task, PavlovianTask):
            raise InputError(f"{self.name} simulates Pavlovian tasks; got {type(task).__name__}")
        x = self.check_params(params)
        T = task.n_trials
        rewards = task.draw_rewards(rng)
        X, elements = cue_matrix(list(task.cues), task.elements)
        resets = np.zeros(T, np.bool_)
        resets[0] = True
        v, pred, rpe = self._trajectory_kernel(x, X, rewards, resets)
        b0, b1 = x[self.spec.names.index("lick_intercept")], x[self.spec.names.index("lick_slope")]
        licks = observations.PoissonLicks.simulate(pred, b0, b1, rng)
        tm = task.timing
        trials = trials_frame(task, rng, subject, session,
                              {"cue": list(task.cues), "reward": rewards, "licks": licks, "phase": list(task.phase)})
        for j, e in enumerate(elements):
            trials[f"V_{e}"] = v[:, j]
        rpe_tc = np.zeros((T, tm.n_bins))
        val_tc = np.zeros((T, tm.n_bins))
        rpe_tc[:, tm.cue_bin] = pred
        rpe_tc[:, tm.outcome_bin] = rpe
        val_tc[:, tm.cue_bin: tm.outcome_bin] = pred[:, None]
        return Simulation(trials, rpe_tc, val_tc, tm.bin_s, self.spec.as_dict(x), self.name, task)

    def trajectories(self, x: np.ndarray, data: Packed, s: int) -> pd.DataFrame:
        n = int(data.n_trials[s])
        v, pred, rpe = self._trajectory_kernel(x, data.extra["X"][s, :n], data.rewards[s, :n], data.resets[s, :n])
        out = pd.DataFrame({"rpe": rpe, "value": pred})
        for j, e in enumerate(data.extra["elements"]):
            out[f"V_{e}"] = v[:, j]
        return out


def pavlovian_models() -> dict[str, RWPavlovian]:
    """The built-in Pavlovian Rescorla-Wagner models by name."""
    return {
        "rw-pavlovian": RWPavlovian("rw-pavlovian", [P_ALPHA, P_LICK0, P_LICK1],
                                    "Rescorla-Wagner over cue compounds; anticipatory licks ~ Poisson(exp(b0 + b1 V))"),
        "rw-pavlovian-asym": RWPavlovian("rw-pavlovian-asym", [P_ALPHA_POS, P_ALPHA_NEG, P_LICK0, P_LICK1],
                                         "Pavlovian RW with separate learning rates for positive and negative errors"),
    }
