"""Online learners: one trial at a time, from the same per-trial kernels as the offline fits.

A model's :meth:`~dopa_rl.models.base.Model.online` gives a learner for given parameters.  Each holds its
state explicitly and offers

* ``predict(event) -> float``: the value the learner expects when the trial's event (cue, or choice) comes;
* ``outcome_rpe(event, reward) -> float``: the prediction error the outcome would give (no update);
* ``step(event, reward, cue_s=..., outcome_s=...) -> TrialUpdate``: the trial's values and RPEs, then learn;
* ``state() -> dict``: the values after the trials seen so far (by cue element or option).

The per-trial function is the one the offline kernels loop over (RW: ``_pavlov_trial``, a user rule's
compiled ``update``; TD: ``_td_trial`` over the model's own features), so a learner stepped through a
session equals the offline trajectory of that session (tests/test_model_interface.py, to 1e-12).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from dopa_rl.errors import InputError
from dopa_rl.models.tasks import split_compound

__all__ = ["TrialUpdate", "PavlovianLearner", "ChoiceLearner", "TDLearner"]


@dataclass(frozen=True)
class TrialUpdate:
    """One trial of an online learner.

    ``value``: the value expected at the cue (before learning); ``rpe_cue`` / ``rpe_outcome``: the prediction
    errors at the cue and at the outcome; ``values``: element (or option) values after learning;
    ``rpe_bins``: the TD error of every time bin of the trial (TD learners; empty otherwise).
    """

    value: float
    rpe_cue: float
    rpe_outcome: float
    values: dict[str, float] = field(default_factory=dict)
    rpe_bins: tuple[float, ...] = ()


class _Elements:
    """Cue elements in their order of first appearance, and the presence vector of a compound label."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def present(self, cue, grow) -> np.ndarray:
        parts = split_compound(cue)
        for e in parts:
            if e not in self.names:
                self.names.append(e)
                grow()
        x = np.zeros(len(self.names))
        x[[self.names.index(e) for e in parts]] = 1.0
        return x


class PavlovianLearner:
    """Values of cue elements (compounds ``"A+X"`` present several) updated by ``trial(V, x, r, theta)``.

    ``trial`` changes ``V`` in place and returns ``(prediction, prediction error)``: the model's own per-trial
    kernel.  The cue response is the prediction (entering the cue from a zero pre-cue state), the outcome
    response ``r - prediction``."""

    def __init__(self, trial: Callable, theta: np.ndarray) -> None:
        self._trial = trial
        self.theta = np.ascontiguousarray(theta, dtype=float)
        self.elements = _Elements()
        self.v = np.zeros(0)
        trial(np.zeros(1), np.ones(1), 0.0, self.theta)   # compile now, not inside a live trial

    def _grow(self) -> None:
        self.v = np.append(self.v, 0.0)

    def _x(self, cue) -> np.ndarray:
        return self.elements.present(cue, self._grow)

    def predict(self, cue, **_) -> float:
        x = self._x(cue)        # first: a new element grows self.v
        return float(self._trial(self.v.copy(), x, 0.0, self.theta)[0])

    def outcome_rpe(self, cue, reward: float, **_) -> float:
        x = self._x(cue)
        return float(self._trial(self.v.copy(), x, float(reward), self.theta)[1])

    def step(self, cue, reward: float, **_) -> TrialUpdate:
        x = self._x(cue)
        pred, delta = self._trial(self.v, x, float(reward), self.theta)
        return TrialUpdate(float(pred), float(pred), float(delta), self.state())

    def state(self) -> dict[str, float]:
        return {e: float(x) for e, x in zip(self.elements.names, self.v)}


class ChoiceLearner:
    """Option values of a choice model updated by ``trial(Q, choice, r, theta) -> prediction error``."""

    def __init__(self, trial: Callable, theta: np.ndarray, n_options: int, q0: float = 0.0) -> None:
        self._trial = trial
        self.theta = np.ascontiguousarray(theta, dtype=float)
        self.q = np.full(int(n_options), float(q0))
        trial(self.q.copy(), 0, 0.0, self.theta)           # compile now, not inside a live trial

    def _check(self, choice) -> int:
        c = int(choice)
        if not 0 <= c < self.q.size:
            raise InputError(f"choice {choice!r} is not an option 0..{self.q.size - 1}")
        return c

    def predict(self, choice, **_) -> float:
        return float(self.q[self._check(choice)])

    def outcome_rpe(self, choice, reward: float, **_) -> float:
        return float(self._trial(self.q.copy(), self._check(choice), float(reward), self.theta))

    def step(self, choice, reward: float, **_) -> TrialUpdate:
        c = self._check(choice)
        value = float(self.q[c])
        delta = float(self._trial(self.q, c, float(reward), self.theta))
        return TrialUpdate(value, value, delta, self.state())

    def state(self) -> dict[str, float]:
        return {str(k): float(v) for k, v in enumerate(self.q)}


class TDLearner:
    """TD(lambda) over the time bins of a trial, one trial at a time (``_td_trial``, the offline kernel).

    ``features(element, outcome_bin) -> [n_bins, F_e]`` is the model's stimulus representation of one
    element; the weights hold one block per element in order of first appearance.  ``n_bins``, ``cue_bin``
    and ``bin_s`` are the model's trial grid; the outcome bin of a trial is ``cue_bin + round((outcome_s -
    cue_s) / bin_s)`` (at least one bin after the cue), as when the model packs a table.
    """

    def __init__(self, trial: Callable, theta: np.ndarray, features: Callable, n_bins: int, cue_bin: int,
                 bin_s: float) -> None:
        self._trial = trial
        self.theta = np.asarray(theta, dtype=float)
        self._features = features
        self.n_bins, self.cue_bin, self.bin_s = int(n_bins), int(cue_bin), float(bin_s)
        self.f_e = features(self.cue_bin + 1).shape[1]
        self.elements = _Elements()
        self.w = np.zeros(0)
        self.e = np.zeros(0)
        f = np.zeros(self.f_e)                              # compile now, not inside a live trial
        trial(f, f.copy(), np.zeros((self.n_bins, self.f_e)), self.cue_bin + 1, 0.0, *self.theta[:3],
              np.empty(self.n_bins), np.empty(self.n_bins))

    def _grow(self) -> None:
        self.w = np.append(self.w, np.zeros(self.f_e))
        self.e = np.zeros(self.w.size)

    def outcome_bin(self, cue_s: float, outcome_s: float) -> int:
        ob = self.cue_bin + max(int(np.round((outcome_s - cue_s) / self.bin_s)), 1)
        if ob > self.n_bins - 2:
            raise InputError(f"TD learner: an outcome {outcome_s - cue_s:g} s after the cue is past the model's "
                             f"{self.n_bins} bins of {self.bin_s:g} s (give the model a longer trial_s)")
        return ob

    def _phi(self, cue, ob: int) -> np.ndarray:
        x = self.elements.present(cue, self._grow)
        block = self._features(ob)
        phi = np.zeros((self.n_bins, self.w.size))
        for j in np.flatnonzero(x):
            phi[:, j * self.f_e:(j + 1) * self.f_e] = block
        return phi

    def _run(self, w, cue, reward, cue_s, outcome_s):
        ob = self.outcome_bin(cue_s, outcome_s)
        phi = self._phi(cue, ob)
        if w is None:
            w = self.w
        rpe, val = np.empty(self.n_bins), np.empty(self.n_bins)
        a, g, lam = self.theta[:3]
        self._trial(w, self.e, phi, ob, float(reward), a, g, lam, rpe, val)
        return ob, rpe, val

    def predict(self, cue, cue_s: float = 0.0, outcome_s: float = 1.0) -> float:
        self._phi(cue, self.outcome_bin(cue_s, outcome_s))     # registers new elements (grows w)
        _, _, val = self._run(self.w.copy(), cue, 0.0, cue_s, outcome_s)
        return float(val[self.cue_bin])

    def outcome_rpe(self, cue, reward: float, cue_s: float = 0.0, outcome_s: float = 1.0) -> float:
        self._phi(cue, self.outcome_bin(cue_s, outcome_s))
        ob, rpe, _ = self._run(self.w.copy(), cue, reward, cue_s, outcome_s)
        return float(rpe[ob])

    def step(self, cue, reward: float, cue_s: float = 0.0, outcome_s: float = 1.0) -> TrialUpdate:
        self._phi(cue, self.outcome_bin(cue_s, outcome_s))
        ob, rpe, val = self._run(None, cue, reward, cue_s, outcome_s)
        return TrialUpdate(float(val[self.cue_bin]), float(rpe[self.cue_bin]), float(rpe[ob]), self.state(),
                           tuple(float(v) for v in rpe))

    def state(self) -> dict[str, float]:
        """Each element's weight on its first feature (CSC: the value of the cue bin)."""
        return {e: float(self.w[j * self.f_e]) for j, e in enumerate(self.elements.names)}
