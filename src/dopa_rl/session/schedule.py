"""The trial schedule: pure functions of the config, the trial index and the seed (no I/O, no clock).

``plan_trial(config, rig, k)`` gives trial ``k``'s :class:`TrialPlan` (type drawn by frequency, reward drawn
by probability, ITI drawn from its distribution), using a generator seeded by ``(seed, k)`` so a trial's
draw never depends on what came before it.  Blocks (``[[blocks]]``) override probabilities and
frequencies for a number of trials each and repeat (``repeat_blocks``), which gives reversals.
``program(plan, ...)`` turns a plan into the device-timed trial program (actions relative to trial start).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from dopa_rl.protocol.messages import Action
from dopa_rl.session.config import Block, Rig, SessionConfig, TrialType

__all__ = ["TrialPlan", "block_at", "effective_types", "draw_iti", "plan_trial", "session_over", "valve_ms",
           "program"]


@dataclass(frozen=True)
class TrialPlan:
    """What trial ``k`` will be.  Times in seconds from trial start; ``reward_ul`` 0 for an omission."""

    k: int
    trial_type: str
    cue: str
    tone_hz: int
    cue_s: float
    trace_s: float
    post_s: float
    rewarded: bool
    reward_ul: float
    iti_s: float
    block: int = 0
    stim: bool = False             # TTL pulse at the outcome
    ttl_ms: int = 10

    @property
    def cue_key(self) -> str:
        """The stimulus as the model sees it: ``light``, ``tone4000``, ``light+tone4000`` or ``none``."""
        parts = [("light" if c == "light" else f"tone{self.tone_hz}") for c in self.cue.split("+") if c != "none"]
        return "+".join(parts) or "none"

    @property
    def outcome_s(self) -> float:
        return self.cue_s + self.trace_s

    @property
    def duration_s(self) -> float:
        return self.outcome_s + self.post_s

    def with_(self, **changes) -> TrialPlan:
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return {f: getattr(self, f) for f in _FIELDS}


_FIELDS = tuple(TrialPlan.__dataclass_fields__)


def block_at(config: SessionConfig, k: int) -> tuple[int, Block | None]:
    """(block index, block) in force on trial ``k``; (0, None) without blocks; after the last block the
    schedule repeats when ``repeat_blocks``, else the last block stays."""
    if not config.blocks:
        return 0, None
    total = sum(b.trials for b in config.blocks)
    j = k % total if config.repeat_blocks else min(k, total - 1)
    n = k // total if config.repeat_blocks else 0
    for i, b in enumerate(config.blocks):
        if j < b.trials:
            return i + n * len(config.blocks), b
        j -= b.trials
    return len(config.blocks) - 1, config.blocks[-1]


def effective_types(config: SessionConfig, k: int) -> list[TrialType]:
    """The trial types with the block's overrides applied."""
    _, b = block_at(config, k)
    if b is None:
        return list(config.trial_types)
    return [replace(t, reward_probability=b.reward_probability.get(t.name, t.reward_probability),
                    frequency=b.frequency.get(t.name, t.frequency)) for t in config.trial_types]


def draw_iti(config: SessionConfig, rng: np.random.Generator) -> float:
    """One inter-trial interval (s) from the config's distribution."""
    it = config.iti
    if it.distribution == "fixed":
        return float(it.mean_s)
    if it.distribution == "uniform":
        return float(rng.uniform(it.min_s, it.max_s))
    x = it.min_s + rng.exponential(max(it.mean_s - it.min_s, 1e-9))  # truncated shifted exponential
    return float(min(x, it.max_s))


def plan_trial(config: SessionConfig, k: int) -> TrialPlan:
    """The plan of trial ``k``: its type, cue, outcome and timing, drawn from the config's seed and ``k``."""
    rng = np.random.default_rng([config.seed, k])
    types = effective_types(config, k)
    f = np.array([t.frequency for t in types], float)
    if f.sum() <= 0:
        f = np.ones(len(types))
    t = types[int(rng.choice(len(types), p=f / f.sum()))]
    rewarded = bool(rng.random() < t.reward_probability) and t.reward_ul > 0
    block, _ = block_at(config, k)
    return TrialPlan(k=k, trial_type=t.name, cue=t.cue, tone_hz=t.tone_hz, cue_s=t.cue_s, trace_s=t.trace_s,
                     post_s=t.post_s, rewarded=rewarded, reward_ul=t.reward_ul if rewarded else 0.0,
                     iti_s=draw_iti(config, rng), block=block, ttl_ms=config.policy.ttl_ms)


def session_over(config: SessionConfig, k: int, elapsed_s: float) -> bool:
    """True when trial ``k`` should not start (trial count reached or duration used up)."""
    if config.n_trials is not None and k >= config.n_trials:
        return True
    return config.duration_s is not None and elapsed_s >= config.duration_s


def valve_ms(reward_ul: float, rig: Rig) -> int:
    """The valve opening (ms) that delivers ``reward_ul`` on ``rig``."""
    return int(round(reward_ul * rig.ms_per_ul))


def program(plan: TrialPlan, rig: Rig) -> tuple[int, list[tuple[int, int, int]]]:
    """(duration_ms, actions) of the task part of a trial (cue, trace, outcome, post-outcome time)."""
    us = lambda s: int(round(s * 1e6))  # noqa: E731
    acts: list[tuple[int, int, int]] = []
    cue_end = us(plan.cue_s)
    if "light" in plan.cue:
        acts.append((0, Action.CUE_ON, 0))
        if cue_end > 0:
            acts.append((cue_end, Action.CUE_OFF, 0))
    if "tone" in plan.cue:
        acts.append((0, Action.TONE_ON, plan.tone_hz))
        if cue_end > 0:
            acts.append((cue_end, Action.TONE_OFF, 0))
    out = us(plan.outcome_s)
    if plan.rewarded and valve_ms(plan.reward_ul, rig) > 0:
        acts.append((out, Action.VALVE_PULSE, valve_ms(plan.reward_ul, rig)))
    if plan.stim:
        acts.append((out, Action.TTL_PULSE, plan.ttl_ms))
    duration_ms = max(int(round(plan.duration_s * 1000)), out // 1000 + 1)
    acts.sort(key=lambda a: a[0])
    return duration_ms, [(min(o, duration_ms * 1000 - 1), a, g) for o, a, g in acts]
