"""A simulated animal for the simulated device: licks in bouts, anticipatory licking learned by RW.

The animal sees the device's outputs (cue LED, tone by frequency, valve openings) through
:meth:`SimulatedAnimal.observe` and produces lick-sensor edges through :meth:`SimulatedAnimal.edges_until`.

Model (same form as the Pavlovian RW model in :mod:`dopa_rl.models.rw`):

- Each stimulus (``"cue"``, ``"tone:<freq>"``) has a value ``V``. A stimulus onset opens an *episode* of
  ``window_us``; every stimulus with an onset inside the episode is *present*.
- During an episode, before any reward, lick bouts start at rate ``exp(lick_intercept + lick_slope *
  sum(V[present])) / bout_mean_licks`` per second (so the lick rate is ``exp(a + b V)`` licks/s); outside
  episodes they start at ``baseline_hz / bout_mean_licks``.
- A valve opening during an episode is a reward of 1: a consummatory bout starts ``reaction_us`` later, and
  the episode ends with ``rescorla_wagner_step(V, present, 1, alpha)``. An episode that times out without a
  reward ends with the same update with reward 0.
- A bout is a geometric number of licks (mean ``bout_mean_licks``) at ``ili_us`` +/- 20 % intervals, each
  lick a contact of ``contact_us`` +/- 25 %.

All randomness comes from the numpy Generator passed in, so a seeded run is reproducible.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["AnimalParams", "SimulatedAnimal"]


def _rw_step(values: np.ndarray, present: np.ndarray, reward: float, alpha: float) -> np.ndarray:
    from dopa_rl.models.rw import rescorla_wagner_step  # imported lazily: models pull in pandas

    return rescorla_wagner_step(values, present, reward, alpha)


@dataclass
class AnimalParams:
    """Parameters of the simulated animal (times in microseconds)."""

    alpha: float = 0.2
    lick_intercept: float = -1.0        # log licks/s at zero value inside an episode
    lick_slope: float = 2.5             # change of log lick rate per unit value
    baseline_hz: float = 0.3            # licks/s outside episodes
    bout_mean_licks: float = 4.0
    consummatory_licks: float = 12.0    # mean licks of a post-reward bout
    ili_us: int = 140_000               # inter-lick interval inside a bout
    contact_us: int = 40_000            # tongue contact per lick
    reaction_us: int = 150_000          # reward to first consummatory lick
    window_us: int = 3_000_000          # an episode lasts this long after the last stimulus onset


@dataclass
class SimulatedAnimal:
    """Lick generator driven by RW values of the stimuli it experiences. ``rng``: numpy Generator."""

    rng: np.random.Generator
    params: AnimalParams = field(default_factory=AnimalParams)

    def __post_init__(self) -> None:
        self.stimuli: list[str] = []
        self.values = np.zeros(0)
        self.present: set[int] = set()
        self.episode_end_us: int | None = None
        self.rewarded = False
        self._edges: list[tuple[int, int]] = []   # planned (t_us, level), sorted
        self._t_planned = 0                       # bouts are planned up to here
        self._busy_until = 0                      # end of the bout being planned/played
        self.history: list[tuple[int, str, float]] = []  # (t_us, "update", delta) for inspection

    # ------------------------------------------------------------------ what the animal sees
    def _index(self, name: str) -> int:
        if name not in self.stimuli:
            self.stimuli.append(name)
            self.values = np.append(self.values, 0.0)
        return self.stimuli.index(name)

    def value(self, name: str) -> float:
        """Current RW value of a stimulus (0 if never seen)."""
        return float(self.values[self.stimuli.index(name)]) if name in self.stimuli else 0.0

    def observe(self, kind: str, t_us: int, arg: int = 0) -> None:
        """An output changed at device time ``t_us``: kind in {"cue_on", "tone_on", "valve_open"} (others ignored)."""
        self._close_episode_if_due(t_us)
        if kind in ("cue_on", "tone_on"):
            idx = self._index("cue" if kind == "cue_on" else f"tone:{arg}")
            if self.episode_end_us is None:
                self.present, self.rewarded = set(), False
            self.present.add(idx)
            self.episode_end_us = t_us + self.params.window_us
            self._replan(t_us)
        elif kind == "valve_open":
            if self.episode_end_us is not None and not self.rewarded:
                self._update(t_us, 1.0)
                self.rewarded = True
            self._consummatory_bout(t_us + self.params.reaction_us)

    def _update(self, t_us: int, reward: float) -> None:
        mask = np.zeros(len(self.values), dtype=bool)
        mask[list(self.present)] = True
        before = float(self.values[mask].sum())
        self.values = _rw_step(self.values, mask, reward, self.params.alpha)
        self.history.append((t_us, "reward" if reward else "omission", reward - before))

    def _close_episode_if_due(self, t_us: int) -> None:
        if self.episode_end_us is not None and t_us >= self.episode_end_us:
            if not self.rewarded:
                self._update(self.episode_end_us, 0.0)
            self.episode_end_us = None
            self.present = set()

    # ------------------------------------------------------------------ what the animal does
    def lick_rate_hz(self, t_us: int) -> float:
        """Instantaneous lick rate (licks/s) outside consummatory bouts."""
        if self.episode_end_us is not None and t_us < self.episode_end_us and not self.rewarded:
            v = float(self.values[list(self.present)].sum()) if self.present else 0.0
            return math.exp(self.params.lick_intercept + self.params.lick_slope * v)
        return self.params.baseline_hz

    def _truncate(self, t_us: int) -> None:
        """Forget planned licks starting at or after t_us (a lick in contact keeps its release)."""
        kept: list[tuple[int, int]] = []
        for e in self._edges:
            if e[0] >= t_us:
                if kept and kept[-1][1] == 1:
                    kept.append(e if e[1] == 0 else (t_us, 0))
                break
            kept.append(e)
        self._edges = kept
        self._busy_until = min(self._busy_until, t_us)
        self._t_planned = t_us

    def _replan(self, t_us: int) -> None:
        """The lick rate changed at t_us: re-draw the spontaneous licks planned after it."""
        self._truncate(t_us)

    def _bout(self, start_us: int, mean_licks: float) -> int:
        p = self.params
        n = int(self.rng.geometric(1.0 / max(mean_licks, 1.0)))
        # a contact still planned (kept through a re-plan) ends first: the next lick starts at least 10 ms
        # after its release, as within a bout (two contacts closer than the debounce would be one lick)
        t = max(start_us, self._edges[-1][0] + 10_000) if self._edges else start_us
        for _ in range(n):
            contact = int(p.contact_us * self.rng.uniform(0.75, 1.25))
            self._edges.append((t, 1))
            self._edges.append((t + contact, 0))
            t += max(int(p.ili_us * self.rng.uniform(0.8, 1.2)), contact + 10_000)
        self._edges.sort()
        return t

    def _consummatory_bout(self, start_us: int) -> None:
        self._truncate(start_us)
        self._busy_until = self._bout(start_us, self.params.consummatory_licks)
        self._t_planned = max(self._t_planned, self._busy_until)

    def edges_until(self, t_us: int) -> list[tuple[int, int]]:
        """Lick edges (t_us, level) planned before ``t_us``, removed from the plan; plans ahead as needed."""
        self._close_episode_if_due(t_us)
        while self._t_planned < t_us:
            t = max(self._t_planned, self._busy_until)
            rate = self.lick_rate_hz(t) / self.params.bout_mean_licks
            gap = int(self.rng.exponential(1e6 / rate)) if rate > 0 else 10**12
            start = t + gap
            # the rate is constant until t_us or the episode end, whichever is first; no bout starts
            # before that boundary means none up to it (memoryless), so planning resumes there
            boundary = t_us
            if self.episode_end_us is not None and t < self.episode_end_us < boundary:
                boundary = self.episode_end_us
            if start >= boundary:
                self._t_planned = boundary
                continue
            self._busy_until = self._bout(start, self.params.bout_mean_licks)
            self._t_planned = self._busy_until
        out = [e for e in self._edges if e[0] < t_us]
        self._edges = self._edges[len(out):]
        return out
