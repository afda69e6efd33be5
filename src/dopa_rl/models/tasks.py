"""Task schedules: what happens on each trial, independent of any learner.

A task says which cue is shown (compound cues as ``"A+X"``), the reward probability and size, and the
within-trial timing (for TD models and for event times).  Simulators in the model modules turn a task
into behavior with a seeded generator.  Every task is a frozen dataclass, so it can be reused safely.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from dopa_rl.errors import InputError


@dataclass(frozen=True)
class TrialTiming:
    """Within-trial timing in seconds from trial start; ``bin_s`` is the TD time step."""

    bin_s: float = 0.25
    cue_onset_s: float = 0.5
    outcome_s: float = 2.0
    trial_s: float = 3.5
    iti_mean_s: float = 3.0
    iti_min_s: float = 1.0

    def __post_init__(self):
        problems = []
        if self.bin_s <= 0:
            problems.append(f"bin_s={self.bin_s} must be > 0")
        if not 0 <= self.cue_onset_s < self.outcome_s < self.trial_s:
            problems.append("need 0 <= cue_onset_s < outcome_s < trial_s")
        if self.iti_min_s < 0 or self.iti_mean_s < self.iti_min_s:
            problems.append("need 0 <= iti_min_s <= iti_mean_s")
        if problems:
            raise InputError("trial timing: " + "; ".join(problems))

    @property
    def cue_bin(self) -> int:
        return int(round(self.cue_onset_s / self.bin_s))

    @property
    def outcome_bin(self) -> int:
        return int(round(self.outcome_s / self.bin_s))

    @property
    def n_bins(self) -> int:
        return int(round(self.trial_s / self.bin_s)) + 1

    def trial_starts(self, n_trials: int, rng: np.random.Generator) -> np.ndarray:
        """Trial start times: trial length plus an ITI drawn from a shifted exponential."""
        iti = self.iti_min_s + rng.exponential(max(self.iti_mean_s - self.iti_min_s, 0.0), n_trials)
        gaps = self.trial_s + iti
        return np.concatenate([[0.0], np.cumsum(gaps[:-1])])


def split_compound(cue: str) -> list[str]:
    """``"A+X"`` -> ``["A", "X"]``; whitespace ignored."""
    parts = [p.strip() for p in str(cue).split("+")]
    return [p for p in parts if p]


@dataclass(frozen=True)
class PavlovianTask:
    """Pavlovian conditioning: a cue (or compound) per trial, then reward with some probability."""

    cues: tuple[str, ...]
    reward_prob: np.ndarray
    reward_size: np.ndarray
    phase: tuple[str, ...]
    timing: TrialTiming = field(default_factory=TrialTiming)
    name: str = "pavlovian"

    kind = "pavlovian"

    def __post_init__(self):
        n = len(self.cues)
        if n == 0:
            raise InputError(f"task {self.name}: no trials")
        for what in ("reward_prob", "reward_size"):
            arr = np.asarray(getattr(self, what), dtype=float)
            if arr.shape != (n,):
                raise InputError(f"task {self.name}: {what} must have one value per trial ({n})")
            object.__setattr__(self, what, arr)
        if np.any((self.reward_prob < 0) | (self.reward_prob > 1)):
            raise InputError(f"task {self.name}: reward probabilities must be in [0, 1]")
        if len(self.phase) != n:
            raise InputError(f"task {self.name}: phase must have one label per trial ({n})")

    @property
    def n_trials(self) -> int:
        return len(self.cues)

    @property
    def elements(self) -> list[str]:
        return sorted({e for c in self.cues for e in split_compound(c)})

    def draw_rewards(self, rng: np.random.Generator) -> np.ndarray:
        """Reward delivered on each trial: the trial's size with its probability, else 0."""
        return np.where(rng.random(self.n_trials) < self.reward_prob, self.reward_size, 0.0)


@dataclass(frozen=True)
class BanditTask:
    """n-armed bandit: per-trial reward probability of each arm (reversals are changes in these)."""

    reward_probs: np.ndarray
    reward_size: np.ndarray
    block: np.ndarray
    timing: TrialTiming = field(default_factory=TrialTiming)
    name: str = "bandit"

    kind = "choice"

    def __post_init__(self):
        p = np.asarray(self.reward_probs, dtype=float)
        if p.ndim != 2 or p.shape[1] < 2 or p.shape[0] < 1:
            raise InputError(f"task {self.name}: reward_probs must be [trials, arms] with at least 2 arms")
        if np.any((p < 0) | (p > 1)):
            raise InputError(f"task {self.name}: reward probabilities must be in [0, 1]")
        object.__setattr__(self, "reward_probs", p)
        object.__setattr__(self, "reward_size", np.broadcast_to(np.asarray(self.reward_size, float), (p.shape[0],)).copy())
        object.__setattr__(self, "block", np.asarray(self.block, dtype=int))

    @property
    def n_trials(self) -> int:
        return self.reward_probs.shape[0]

    @property
    def n_options(self) -> int:
        return self.reward_probs.shape[1]


# ------------------------------------------------------------------------------------------ constructors
def _phases(spec: Sequence[tuple[str, str, int, float]], timing: TrialTiming | None, name: str,
            size: float = 1.0) -> PavlovianTask:
    """Build a Pavlovian task from (phase, cue, n_trials, reward probability) rows, in order."""
    cues, probs, phases = [], [], []
    for phase, cue, n, p in spec:
        if n < 0:
            raise InputError(f"task {name}: phase {phase} has a negative trial count")
        cues += [cue] * n
        probs += [p] * n
        phases += [phase] * n
    return PavlovianTask(tuple(cues), np.array(probs), np.full(len(cues), float(size)), tuple(phases),
                         timing or TrialTiming(), name)


def acquisition(n_trials: int = 100, p_reward: float = 1.0, *, cue: str = "A", size: float = 1.0,
                timing: TrialTiming | None = None) -> PavlovianTask:
    """One cue followed by reward with probability ``p_reward`` (partial reinforcement when < 1)."""
    return _phases([("acquisition", cue, n_trials, p_reward)], timing, "acquisition", size)


def extinction(n_acquisition: int = 100, n_extinction: int = 100, *, cue: str = "A", size: float = 1.0,
               timing: TrialTiming | None = None) -> PavlovianTask:
    """Acquisition (always rewarded) then extinction (never rewarded)."""
    return _phases([("acquisition", cue, n_acquisition, 1.0), ("extinction", cue, n_extinction, 0.0)],
                   timing, "extinction", size)


def partial_reinforcement(n_trials: int = 200, p_reward: float = 0.5, **kw) -> PavlovianTask:
    return acquisition(n_trials, p_reward, **kw)


def omission(n_training: int = 200, n_probe: int = 50, p_omit: float = 0.2, *, cue: str = "A",
             size: float = 1.0, timing: TrialTiming | None = None) -> PavlovianTask:
    """Training with certain reward, then a probe phase where reward is omitted with ``p_omit``."""
    return _phases([("training", cue, n_training, 1.0), ("probe", cue, n_probe, 1.0 - p_omit)],
                   timing, "omission", size)


def blocking(n_pretrain: int = 100, n_compound: int = 100, n_test: int = 10, *, control: bool = False,
             size: float = 1.0, timing: TrialTiming | None = None) -> PavlovianTask:
    """Kamin blocking: A+ then AX+, test X alone.  ``control=True`` pre-trains an unrelated cue B."""
    first = "B" if control else "A"
    return _phases([("pretraining", first, n_pretrain, 1.0), ("compound", "A+X", n_compound, 1.0),
                    ("test", "X", n_test, 0.0)], timing, "blocking-control" if control else "blocking", size)


def overexpectation(n_single: int = 100, n_compound: int = 100, n_test: int = 10, *, size: float = 1.0,
                    timing: TrialTiming | None = None) -> PavlovianTask:
    """A+ and B+ trained apart (interleaved), then A+B+ reinforced with the same single reward; test A, B."""
    cues = ["A", "B"] * n_single + ["A+B"] * n_compound + ["A", "B"] * n_test
    probs = [1.0] * (2 * n_single + n_compound) + [0.0] * (2 * n_test)
    phases = ["single"] * (2 * n_single) + ["compound"] * n_compound + ["test"] * (2 * n_test)
    return PavlovianTask(tuple(cues), np.array(probs), np.full(len(cues), float(size)), tuple(phases),
                         timing or TrialTiming(), "overexpectation")


def bandit(n_trials: int = 400, probs: Sequence[float] = (0.8, 0.2), *, reversals: Sequence[int] | None = None,
           reversal_every: int | None = None, size: float = 1.0,
           timing: TrialTiming | None = None) -> BanditTask:
    """n-armed bandit.  At each reversal the arm probabilities are reversed in order.

    ``reversals`` lists trial indices where a reversal happens; ``reversal_every`` makes them periodic.
    """
    probs = np.asarray(probs, dtype=float)
    if probs.ndim != 1 or probs.size < 2:
        raise InputError("bandit: probs needs one reward probability per arm (at least 2 arms)")
    if n_trials < 1:
        raise InputError("bandit: n_trials must be >= 1")
    points = set(reversals or [])
    if reversal_every:
        if reversal_every < 1:
            raise InputError("bandit: reversal_every must be >= 1")
        points |= set(range(reversal_every, n_trials, reversal_every))
    block = np.zeros(n_trials, dtype=int)
    for r in sorted(points):
        if 0 < r < n_trials:
            block[r:] += 1
    table = np.where((block % 2 == 0)[:, None], probs[None, :], probs[::-1][None, :])
    return BanditTask(table, np.full(n_trials, float(size)), block, timing or TrialTiming(), "bandit")


PAVLOVIAN_TASKS = {
    "acquisition": acquisition,
    "extinction": extinction,
    "partial": partial_reinforcement,
    "omission": omission,
    "blocking": blocking,
    "overexpectation": overexpectation,
}


def pavlovian_task(n_trials: int = 200, p_reward: float = 1.0, **kw) -> PavlovianTask:
    """The default Pavlovian task (acquisition with reward probability ``p_reward``)."""
    return acquisition(n_trials, p_reward, **kw)


def bandit_task(n_trials: int = 400, probs: Sequence[float] = (0.8, 0.2), **kw) -> BanditTask:
    """The default bandit task (two arms, reversal halfway unless told otherwise)."""
    if "reversals" not in kw and "reversal_every" not in kw:
        kw["reversals"] = [n_trials // 2]
    return bandit(n_trials, probs, **kw)


def make_task(name: str, n_trials: int | None = None, **kw):
    """A task by name: ``bandit`` and ``pavlovian`` (the defaults above, ``n_trials`` long), or one of the
    Pavlovian designs in :data:`PAVLOVIAN_TASKS` (fixed phase lengths: ``n_trials`` does not apply)."""
    if n_trials is not None and (isinstance(n_trials, bool) or int(n_trials) != n_trials or n_trials < 1):
        raise InputError(f"`n_trials` {n_trials}: must be a whole number >= 1")
    size = {} if n_trials is None else {"n_trials": int(n_trials)}
    if name == "bandit":
        return bandit_task(**size, **kw)
    if name == "pavlovian":
        return pavlovian_task(**size, **kw)
    if name in PAVLOVIAN_TASKS:
        if n_trials is not None:
            raise InputError(f"`n_trials` does not apply to `task` {name} (its phases have fixed lengths)")
        return PAVLOVIAN_TASKS[name](**kw)
    raise InputError(f"`task` {name!r}: choose one of bandit, pavlovian, {', '.join(PAVLOVIAN_TASKS)}")


def concatenate(task, times: int):
    """``task`` played ``times`` times in a row, as one task (sessions that carry learning over)."""
    if times == 1:
        return task
    if isinstance(task, BanditTask):
        return BanditTask(np.tile(task.reward_probs, (times, 1)), np.tile(task.reward_size, times),
                          np.tile(task.block, times), task.timing, task.name)
    return PavlovianTask(tuple(task.cues) * times, np.tile(task.reward_prob, times), np.tile(task.reward_size, times),
                         tuple(task.phase) * times, task.timing, task.name)
