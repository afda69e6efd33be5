"""Closed-loop policies: pure functions (schedule's plan + model + history -> the trial to run).

Built in (``[policy] kind``):

* ``fixed``: run the schedule as drawn (open loop).
* ``rpe-target``: on rewarded trials choose the reward size so the model's outcome RPE hits ``target_rpe``
  (reward in model units, 1 = the config's largest ``reward_ul``), within ``min_ul`` and the valve safety
  limit.  The outcome RPE grows one for one with the reward (RW ``r - V``; TD ``r + gamma V' - V``; a user's
  rule ``r - V``), so the reward is ``target_rpe - rpe(reward 0)``.
* ``stim-on-rpe``: a TTL pulse (``ttl_ms``) at the outcome of each trial whose outcome RPE crosses
  ``threshold`` (``direction`` above: RPE >= threshold; below: RPE <= threshold; both: |RPE| >= |threshold|).
  The RPE is the online model's for the planned outcome, computed when the trial is decided: after the previous
  trial's update, so it is exactly the RPE the model logs for the trial.
* ``on-signal``: reads the analog input; :func:`dff_step` keeps a running baseline F0 (mean over
  ``baseline_s``) and reports upward crossings of ``dff_threshold`` by dF/F = (F - F0) / F0, at most one per
  ``refractory_s``; the runner answers each with a TTL pulse or a reward (``action``).
* ``user``: ``function = "module:function"`` or ``"file.py:function"``, called once per trial as
  ``fn(plan, model_state, history, params)``: returns a :class:`TrialPlan`, a dict of changes, or None.
"""
from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dopa_rl.errors import InputError
from dopa_rl.session.config import Rig, SessionConfig, TrialType
from dopa_rl.session.schedule import TrialPlan
from dopa_rl.models.user_code import load_user_function

__all__ = ["reward_units", "rpe_crossed", "Policy", "DffState", "dff_step", "signature_ok"]


def make_learner(config: SessionConfig):
    """The online learner of the config's ``[model]`` (:meth:`dopa_rl.models.base.Model.online`): the named
    model's own per-trial kernel with the config's parameters, its trial grid long enough for the config's
    longest outcome delay (``cue_s + trace_s`` after the trial's start)."""
    from dopa_rl.models import get_model

    m = config.model
    model = get_model(m.name, **m.options)
    return model.online(m.params, max_outcome_s=max_outcome_s(config.trial_types))


def max_outcome_s(types: tuple[TrialType, ...]) -> float:
    return max(t.cue_s + t.trace_s for t in types)


def reward_units(reward_ul: float, config: SessionConfig) -> float:
    """Reward in model units: 1 = the largest ``reward_ul`` of the config's trial types."""
    return float(reward_ul) / config.max_reward_ul


def rpe_crossed(rpe: float, threshold: float, direction: str) -> bool:
    """Whether ``rpe`` crosses ``threshold`` in ``direction`` (above, below, or either by magnitude)."""
    if direction == "above":
        return rpe >= threshold
    if direction == "below":
        return rpe <= threshold
    return abs(rpe) >= abs(threshold)


@dataclass
class Policy:
    """A policy bound to a config: ``decide(plan, model, history) -> TrialPlan`` (pure given its inputs)."""

    config: SessionConfig
    rig: Rig
    user_fn: Callable[..., Any] | None = None

    @classmethod
    def from_config(cls, config: SessionConfig, rig: Rig) -> Policy:
        fn = None
        if config.policy.kind == "user":
            base = Path(config.path).resolve().parent if config.path and Path(config.path).exists() else None
            fn = load_user_function(config.policy.function, base)
        return cls(config, rig, fn)

    def _rpe(self, plan: TrialPlan, model: Any) -> float:
        return model.outcome_rpe(plan.cue_key, reward_units(plan.reward_ul, self.config),
                                 cue_s=0.0, outcome_s=plan.outcome_s)

    def decide(self, plan: TrialPlan, model: Any, history: list[dict]) -> TrialPlan:
        p = self.config.policy
        if p.kind == "rpe-target" and plan.rewarded:
            base = model.outcome_rpe(plan.cue_key, 0.0, cue_s=0.0, outcome_s=plan.outcome_s)
            want = (p.target_rpe - base) * self.config.max_reward_ul
            hi = self.config.safety.max_valve_ms / self.rig.ms_per_ul
            return plan.with_(reward_ul=float(min(max(want, p.min_ul), hi)))
        if p.kind == "stim-on-rpe":
            return plan.with_(stim=rpe_crossed(self._rpe(plan, model), p.threshold, p.direction), ttl_ms=p.ttl_ms)
        if p.kind == "user":
            out = self.user_fn(plan, model.state(), list(history), dict(p.params))
            if out is None:
                return plan
            if isinstance(out, TrialPlan):
                return out
            if isinstance(out, dict):
                return plan.with_(**out)
            raise InputError(f"policy.function {p.function}: returned {type(out).__name__}; "
                             "return a TrialPlan, a dict of changes or None")
        return plan


# ------------------------------------------------------------------------------------- on-signal dF/F
@dataclass(frozen=True)
class DffState:
    """The running state of the dF/F-triggered policy: baseline, samples seen, and the last trigger."""

    f0: float | None = None        # running baseline
    n: int = 0                     # samples seen
    above: bool = False
    last_trigger_s: float = -math.inf


def dff_step(state: DffState, samples: list[int] | tuple[int, ...], t0_s: float, rate_hz: float,
             baseline_s: float, threshold: float, refractory_s: float) -> tuple[DffState, list[tuple[float, float]]]:
    """Fold a batch of samples (first at ``t0_s``) into the baseline; returns the new state and the upward
    threshold crossings as ``(time_s, dff)``.  F0 is a running mean over the first ``baseline_s`` then an
    exponential average with that time constant; no crossing is reported before one baseline has passed."""
    f0, n, above, last = state.f0, state.n, state.above, state.last_trigger_s
    k = 1.0 / max(baseline_s * rate_hz, 1.0)
    warm = int(baseline_s * rate_hz)
    out = []
    for i, x in enumerate(samples):
        t = t0_s + i / rate_hz
        x = float(x)
        n += 1
        f0 = x if f0 is None else (f0 + (x - f0) / n if n <= warm else f0 + k * (x - f0))
        dff = (x - f0) / f0 if f0 else 0.0
        now_above = dff >= threshold
        if now_above and not above and n > warm and t - last >= refractory_s:
            out.append((t, dff))
            last = t
        above = now_above
    return DffState(f0, n, above, last), out


def signature_ok(fn: Callable[..., Any]) -> bool:
    """Whether a user policy function takes the four arguments the session passes it."""
    try:
        inspect.signature(fn).bind(None, None, None, None)
        return True
    except TypeError:
        return False
