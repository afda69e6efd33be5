"""Online learners: per-trial state/step API used by live sessions (and checkable against offline fits).

Each learner holds its state explicitly and exposes

* ``predict(cue) -> float``: the value the learner expects at cue onset of a trial with cue ``cue``;
* ``outcome_rpe(cue, reward) -> float``: the RPE the learner would produce at the outcome (no update);
* ``step(cue, reward, cue_s=..., outcome_s=...) -> TrialUpdate``: the trial's value and RPEs, then learn.

:class:`OnlineRW` is Rescorla-Wagner through :func:`dopa_rl.models.rw.rescorla_wagner_step` (the same
definition the offline ``rw-pavlovian`` fits use: value = sum of the compound's elements, RPE at the cue =
that value (from a zero pre-cue state), RPE at the outcome = ``r - value``).  :class:`OnlineTD` is TD(lambda)
over within-trial bins with a complete serial compound, built on :func:`dopa_rl.models.td.element_features`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dopa_rl.models.rw import rescorla_wagner_step
from dopa_rl.models.tasks import split_compound

__all__ = ["TrialUpdate", "OnlineRW", "OnlineTD", "online_model"]


@dataclass(frozen=True)
class TrialUpdate:
    value: float        # value expected at cue onset (before learning)
    rpe_cue: float      # prediction error at cue onset
    rpe_outcome: float  # prediction error at the outcome
    values: dict[str, float] = field(default_factory=dict)  # element values after learning


class OnlineRW:
    """Pavlovian RW, one trial at a time (``alpha``; elements of compound cues ``"A+X"`` add up)."""

    kind = "rw"

    def __init__(self, alpha: float = 0.2) -> None:
        self.alpha = float(alpha)
        self.elements: list[str] = []
        self.v = np.zeros(0)

    def _mask(self, cue: str) -> np.ndarray:
        for e in split_compound(cue):
            if e not in self.elements:
                self.elements.append(e)
                self.v = np.append(self.v, 0.0)
        m = np.zeros(len(self.elements), bool)
        m[[self.elements.index(e) for e in split_compound(cue)]] = True
        return m

    def predict(self, cue: str, **_) -> float:
        return float(sum(self.v[self.elements.index(e)] for e in split_compound(cue) if e in self.elements))

    def outcome_rpe(self, cue: str, reward: float, **_) -> float:
        return float(reward) - self.predict(cue)

    def step(self, cue: str, reward: float, **_) -> TrialUpdate:
        m = self._mask(cue)
        value = float(self.v[m].sum())
        self.v = rescorla_wagner_step(self.v, m, float(reward), self.alpha)
        return TrialUpdate(value, value, float(reward) - value, self.state())

    def state(self) -> dict[str, float]:
        return {e: float(x) for e, x in zip(self.elements, self.v)}


class OnlineTD:
    """TD(lambda) over bins of ``bin_s`` with a CSC representation per cue element, one trial per step.

    The trial is entered from a featureless state (value 0), so the cue RPE is ``gamma * V(cue bin)``;
    the outcome RPE is the error in the bin where the reward arrives.
    """

    kind = "td"

    def __init__(self, alpha: float = 0.1, gamma: float = 0.95, lambda_: float = 0.9, bin_s: float = 0.25,
                 max_s: float = 30.0) -> None:
        self.alpha, self.gamma, self.lambda_, self.bin_s = float(alpha), float(gamma), float(lambda_), float(bin_s)
        self.n_f = int(np.ceil(max_s / bin_s)) + 2
        self.w: dict[str, np.ndarray] = {}

    def _features(self, cue: str, n_bins: int) -> dict[str, np.ndarray]:
        # CSC with the cue at bin 1 (bin 0 is the featureless pre-cue state): feature j on j bins after onset
        for e in split_compound(cue):
            self.w.setdefault(e, np.zeros(self.n_f))
        return {e: np.arange(n_bins) - 1 for e in split_compound(cue)}

    def _values(self, cue: str, n_bins: int) -> np.ndarray:
        v = np.zeros(n_bins)
        for e, since in self._features(cue, n_bins).items():
            ok = (since >= 0) & (since < self.n_f)
            v[ok] += self.w[e][since[ok]]
        return v

    def _bins(self, cue_s: float, outcome_s: float) -> tuple[int, int]:
        ob = 1 + max(int(round((outcome_s - cue_s) / self.bin_s)), 1)
        return ob, ob + 2

    def predict(self, cue: str, cue_s: float = 0.0, outcome_s: float = 1.0) -> float:
        ob, n = self._bins(cue_s, outcome_s)
        return float(self._values(cue, n)[1])

    def outcome_rpe(self, cue: str, reward: float, cue_s: float = 0.0, outcome_s: float = 1.0) -> float:
        ob, n = self._bins(cue_s, outcome_s)
        v = self._values(cue, n)
        return float(reward + self.gamma * v[ob] - v[ob - 1])

    def step(self, cue: str, reward: float, cue_s: float = 0.0, outcome_s: float = 1.0) -> TrialUpdate:
        ob, n = self._bins(cue_s, outcome_s)
        feats = self._features(cue, n)
        traces = {e: np.zeros(self.n_f) for e in feats}
        value = self.predict(cue, cue_s, outcome_s)
        deltas = np.zeros(n)
        for t in range(1, n):
            v = self._values(cue, n)
            r = float(reward) if t == ob else 0.0
            vt = 0.0 if t > ob else v[t]          # after the outcome the trial is over (terminal)
            deltas[t] = r + self.gamma * vt - v[t - 1]
            for e, since in feats.items():
                traces[e] *= self.gamma * self.lambda_
                j = since[t - 1]
                if 0 <= j < self.n_f:
                    traces[e][j] += 1.0
                self.w[e] += self.alpha * deltas[t] * traces[e]
            if t > ob:
                break
        return TrialUpdate(value, float(deltas[1]), float(deltas[ob]), self.state())

    def state(self) -> dict[str, float]:
        return {e: float(w[0]) for e, w in self.w.items()}


def online_model(kind: str = "rw", **params) -> OnlineRW | OnlineTD:
    """``"rw"`` (``alpha``) or ``"td"`` (``alpha, gamma, lambda_, bin_s``)."""
    if kind == "rw":
        return OnlineRW(params.get("alpha", 0.2))
    if kind == "td":
        return OnlineTD(**{k: params[k] for k in ("alpha", "gamma", "lambda_", "bin_s") if k in params})
    raise ValueError(f"unknown online model {kind!r}; use rw or td")
