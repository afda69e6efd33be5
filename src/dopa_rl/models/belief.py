"""Belief-state TD: linear TD learning over the posterior of a hidden trial state (docs/belief-td.md).

Starkweather et al. (2017, Nat Neurosci 20:581; Babayan et al. 2018): the animal does not see whether it is
in the interval between cue and reward (ISI) or in the inter-trial interval (ITI), nor how far into the ISI
it is.  It keeps a belief ``b`` over the hidden states of a discretised semi-Markov model of the trial (ISI
sub-states, one per time bin since the cue, and the ITI; the reward-time distribution, the omission
probability, the ITI hazard and optional Weber-scaled timing noise: :mod:`dopa_rl.models.belief_filter`),
updated by the forward filter at every bin, and learns linear values over it:

    V = w . b,   delta = r + gamma * w . b' - w . b,   w += alpha * delta * b.

In a 100%-rewarded task with variable reward times the reward RPE falls with delay (the hazard rises); in a
90%-rewarded task it rises for late rewards (the belief drifts to the ITI: "no reward this trial").

Structure (options): ``reward_times`` — ``"empirical"`` (each cue's distribution of cue-to-reward delays in
the packed table's rewarded trials) or ``[[delay_s, probability], ...]`` for every cue; ``p_omit`` —
``"empirical"`` (each cue's fraction of unrewarded trials) or a number; ``weber`` — timing noise (sd /
delay, default 0); ``iti_s`` — the mean ITI between trial windows (default the timing's ``iti_mean_s``);
``timing`` — the trial grid (:class:`~dopa_rl.models.tasks.TrialTiming`).  Each cue label has its own
ISI chain; the ITI state is shared.  Anticipatory licks ~ Poisson(exp(lick_intercept + lick_slope * mean
value from cue to outcome)), as for TD.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from dopa_rl.errors import InputError
from dopa_rl.models._lazy import lazy_module
from dopa_rl.models.base import (Model, Packed, Simulation, check_options, lick_counts, pack_common, take,
                                 trials_frame)
from dopa_rl.models.belief_filter import filter_beliefs, joint_matrix, trial_observations, weber_blur
from dopa_rl.models.params import ParamSpec
from dopa_rl.models.rw import P_LICK0, P_LICK1
from dopa_rl.models.tasks import PavlovianTask, TrialTiming
from dopa_rl.models.td import P_GAMMA, P_TD_ALPHA

__all__ = ["BeliefStructure", "BeliefTDModel", "BeliefLearner", "DelayTask", "variable_delay_task",
           "STARKWEATHER_DELAYS_S", "starkweather_task", "belief_models"]

pd = lazy_module("pandas")
kernels = lazy_module("dopa_rl.models.belief_kernels")      # numba loads only when a likelihood runs
observations = lazy_module("dopa_rl.models.observations")

EMPIRICAL = "empirical"


# ------------------------------------------------------------------------------------------ the hidden task
@dataclass(frozen=True)
class BeliefStructure:
    """What the animal believes about the task: per cue label the reward-time distribution ``pmfs[c]`` (index =
    delay in bins after the cue, Weber blur applied) and omission probability ``p_omit[c]``; the trial grid
    (``n_bins``, ``cue_bin``); the ITI (``iti_bins`` between trial windows, per-bin hazard ``iti_hazard``).

    Features: index 0 is the ITI state, cue ``c``'s ISI sub-states ``k = 0 .. K - 1`` are ``1 + c * K + k``
    with ``K = n_bins - cue_bin``.  ``default`` (explicit options): the (pmf, p_omit) of cues not listed."""

    cues: tuple[str, ...]
    pmfs: tuple[tuple[float, ...], ...]
    p_omit: tuple[float, ...]
    n_bins: int
    cue_bin: int
    iti_bins: int
    iti_hazard: float
    default: tuple[tuple[float, ...], float] | None = None

    @property
    def K(self) -> int:
        """ISI sub-states per cue."""
        return self.n_bins - self.cue_bin

    @property
    def n_features(self) -> int:
        return 1 + len(self.cues) * self.K

    def with_cue(self, cue: str) -> "BeliefStructure":
        """This structure with ``cue`` added under the default distribution (explicit options), else an
        InputError: an empirical structure knows only the cues of the table it was built from."""
        if cue in self.cues:
            return self
        if self.default is None:
            raise InputError(f"cue {cue!r} is not in the task structure (cues {', '.join(self.cues)}); the "
                             f"structure was estimated from a table without it")
        pmf, p = self.default
        return dataclasses.replace(self, cues=self.cues + (cue,), pmfs=self.pmfs + (tuple(pmf),),
                                   p_omit=self.p_omit + (float(p),))

    def beliefs(self, cue_index: np.ndarray, outcome_bins: np.ndarray, rewarded: np.ndarray,
                labels: Sequence[str] | None = None) -> np.ndarray:
        """Belief features [N, n_bins, F] of N trials (cue index, outcome bin, rewarded or not): the belief after
        each bin's observation, the trial entered from the ITI; one filter pass per cue over its trials."""
        ci = np.asarray(cue_index, np.int64)
        ob = np.asarray(outcome_bins, np.int64)
        rew = np.asarray(rewarded, bool)
        K, F = self.K, self.n_features
        out = np.zeros((ci.size, self.n_bins, F))
        b0 = np.zeros(K + 1)
        b0[K] = 1.0
        for c in np.unique(ci):
            rows = np.flatnonzero(ci == c)
            M = joint_matrix(np.asarray(self.pmfs[c]), self.p_omit[c], self.iti_hazard, K)
            obs = trial_observations(self.n_bins, self.cue_bin, ob[rows], rew[rows])
            b = filter_beliefs(M, obs, b0, labels=None if labels is None else [labels[r] for r in rows])
            out[rows, :, 0] = b[:, :, K]
            out[rows, :, 1 + c * K: 1 + (c + 1) * K] = b[:, :, :K]
        return out


def _iti(timing: TrialTiming, iti_s: float | None) -> tuple[int, float]:
    bins = int(round((timing.iti_mean_s if iti_s is None else iti_s) / timing.bin_s))
    return bins, 1.0 / (bins + timing.cue_bin + 1)


def _explicit_pmf(reward_times, bin_s: float) -> np.ndarray:
    """``[[delay_s, probability], ...]`` as a pmf over delays in bins (probabilities normalised)."""
    try:
        rows = np.asarray(reward_times, dtype=float).reshape(-1, 2)
    except (TypeError, ValueError):
        raise InputError("`reward_times`: give 'empirical' or a list of [delay_s, probability] pairs") from None
    if rows.size == 0 or not np.all(np.isfinite(rows)) or np.any(rows[:, 0] <= 0) or np.any(rows[:, 1] < 0) \
            or rows[:, 1].sum() <= 0:
        raise InputError("`reward_times`: delays must be > 0 s and probabilities >= 0 with a positive sum")
    d = np.maximum(np.round(rows[:, 0] / bin_s), 1).astype(np.int64)
    pmf = np.bincount(d, weights=rows[:, 1], minlength=int(d.max()) + 1)
    return pmf / pmf.sum()


# ------------------------------------------------------------------------------------------ tasks
@dataclass(frozen=True)
class DelayTask(PavlovianTask):
    """A Pavlovian task whose reward comes ``delays_s[t]`` seconds after the cue on trial t (on omission
    trials: when it would have come).  Models that assume the timing's fixed outcome time ignore it."""

    delays_s: np.ndarray = None

    def __post_init__(self):
        super().__post_init__()
        d = np.asarray(self.delays_s, dtype=float)
        if d.shape != (self.n_trials,) or not np.all(np.isfinite(d)) or np.any(d <= 0):
            raise InputError(f"task {self.name}: delays_s needs one delay > 0 s per trial ({self.n_trials})")
        span = self.timing.trial_s - self.timing.cue_onset_s - self.timing.bin_s
        if d.max() > span:
            raise InputError(f"task {self.name}: a reward {d.max():g} s after the cue is past the trial "
                             f"({span:g} s of it after the cue); give a longer timing trial_s")
        object.__setattr__(self, "delays_s", d)


#: the reward times of Starkweather et al. (2017) after the cue, s (weights: Gaussian, mean 2 s, sd 0.5 s)
STARKWEATHER_DELAYS_S = (1.2, 1.4, 1.6, 1.8, 2.0, 2.2, 2.4, 2.6, 2.8)


def variable_delay_task(n_trials: int, p_reward: float, delays_s: Sequence[float], delay_probs: Sequence[float],
                        rng: np.random.Generator | int, *, cue: str = "A", size: float = 1.0,
                        timing: TrialTiming | None = None, name: str = "variable-delay") -> DelayTask:
    """One cue, reward with probability ``p_reward`` at a delay drawn from ``delays_s`` with ``delay_probs``
    (the schedule drawn once from ``rng``, a generator or a seed)."""
    rng = np.random.default_rng(rng)
    p = np.asarray(delay_probs, float)
    if len(delays_s) != p.size or p.size == 0 or np.any(p < 0) or p.sum() <= 0:
        raise InputError("variable_delay_task: one probability >= 0 per delay, with a positive sum")
    delays = rng.choice(np.asarray(delays_s, float), size=int(n_trials), p=p / p.sum())
    return DelayTask((cue,) * int(n_trials), np.full(int(n_trials), float(p_reward)), np.full(int(n_trials), float(size)),
                     ("training",) * int(n_trials), timing or TrialTiming(), name, delays)


def starkweather_task(n_trials: int = 1000, p_reward: float = 1.0, rng: np.random.Generator | int = 0, *,
                      timing: TrialTiming | None = None) -> DelayTask:
    """Starkweather et al. (2017): an odour, then reward 1.2-2.8 s later (Gaussian weights, mean 2 s, sd 0.5 s)
    on every trial (task 1, ``p_reward=1``) or on 90% of them (task 2, ``p_reward=0.9``); 0.2 s bins."""
    from scipy.stats import norm

    d = np.array(STARKWEATHER_DELAYS_S)
    tm = timing or TrialTiming(bin_s=0.2, cue_onset_s=0.4, outcome_s=2.4, trial_s=4.4, iti_mean_s=12.0, iti_min_s=4.0)
    return variable_delay_task(n_trials, p_reward, d, norm.pdf(d, 2.0, 0.5), rng, timing=tm,
                               name=f"starkweather-{int(round(100 * p_reward))}")


# ------------------------------------------------------------------------------------------ the model
class BeliefTDModel(Model):
    """Linear TD over the beliefs of a hidden-state model of the trial (see the module docstring)."""

    kind = "pavlovian"
    required_columns = ("subject", "cue", "reward", "licks")
    option_names = ("timing", "reward_times", "p_omit", "weber", "iti_s")
    observation_params = ("lick_intercept", "lick_slope")
    observation_columns = ("licks",)

    def __init__(self, name: str = "belief-td", timing: TrialTiming | None = None, *, reward_times=EMPIRICAL,
                 p_omit=EMPIRICAL, weber: float = 0.0, iti_s: float | None = None):
        self.name = name
        self.timing = timing or TrialTiming()
        if isinstance(reward_times, str):
            if reward_times != EMPIRICAL:
                raise InputError(f"`reward_times` {reward_times!r}: give 'empirical' or [[delay_s, probability], ...]")
            self.reward_times = EMPIRICAL
        else:
            _explicit_pmf(reward_times, self.timing.bin_s)        # checked now: a bad option fails at once
            self.reward_times = [[float(a), float(b)] for a, b in np.asarray(reward_times, float).reshape(-1, 2)]
        if isinstance(p_omit, str):
            if p_omit != EMPIRICAL:
                raise InputError(f"`p_omit` {p_omit!r}: give 'empirical' or a probability in [0, 1)")
            self.p_omit = EMPIRICAL
        else:
            p = float(p_omit)
            if not 0.0 <= p < 1.0:
                raise InputError(f"`p_omit` {p_omit}: give 'empirical' or a probability in [0, 1)")
            self.p_omit = p
        weber = float(weber)
        if not (np.isfinite(weber) and 0.0 <= weber <= 1.0):
            raise InputError(f"`weber` {weber}: the Weber fraction of timing noise is in [0, 1]")
        self.weber = weber
        if iti_s is not None and not (np.isfinite(float(iti_s)) and float(iti_s) >= 0):
            raise InputError(f"`iti_s` {iti_s}: the mean ITI is a number of seconds >= 0")
        self.iti_s = None if iti_s is None else float(iti_s)
        self.spec = ParamSpec([P_TD_ALPHA, P_GAMMA, P_LICK0, P_LICK1])
        self.description = "belief-state TD (Starkweather 2017): linear TD over the posterior of a hidden ISI/ITI state"

    @property
    def trace_params(self) -> list[str]:
        """``alpha`` only (``gamma`` at its default) in a trace-level fit, as for TD."""
        return ["alpha"]

    def options(self) -> dict:
        """``timing`` (a dict of :class:`TrialTiming` fields), ``reward_times``, ``p_omit``, ``weber``, ``iti_s``."""
        return {"timing": dataclasses.asdict(self.timing), "reward_times": self.reward_times, "p_omit": self.p_omit,
                "weber": self.weber, "iti_s": self.iti_s}

    def with_options(self, **options) -> "BeliefTDModel":
        check_options(self.name, options, set(self.option_names))
        opts = {**self.options(), **options}
        timing = opts.pop("timing")
        if isinstance(timing, Mapping):
            try:
                timing = TrialTiming(**timing)
            except TypeError as exc:
                raise InputError(f"model {self.name}: option timing: {exc}") from None
        if not isinstance(timing, TrialTiming):
            raise InputError(f"model {self.name}: option timing must be a TrialTiming or a dict of its fields")
        return BeliefTDModel(self.name, timing, **opts)

    # -- structure ------------------------------------------------------------------------------------
    def _explicit(self) -> tuple[np.ndarray, float] | None:
        """(believed pmf, p_omit) shared by every cue when both are explicit options, else None."""
        if self.reward_times == EMPIRICAL or self.p_omit == EMPIRICAL:
            return None
        return weber_blur(_explicit_pmf(self.reward_times, self.timing.bin_s), self.weber), float(self.p_omit)

    def structure(self, cues: Sequence[str], outcome_bins: np.ndarray, rewarded: np.ndarray, *,
                  cue_order: Sequence[str] | None = None, n_bins: int | None = None) -> BeliefStructure:
        """The task structure one animal learned from its trials (cue labels, outcome bins, rewarded): explicit
        options, or each cue's empirical reward-time distribution and omission fraction in these trials.

        ``cue_order``: the cues' feature order (default: order of first appearance); the grid is long enough
        that every trial window ends in the ITI (two bins past the latest believed reward time), at least
        ``n_bins``."""
        tm = self.timing
        cb = tm.cue_bin
        cues = [str(c) for c in cues]
        order = list(dict.fromkeys(cues)) if cue_order is None else [str(c) for c in cue_order]
        ob = np.asarray(outcome_bins, np.int64)
        rew = np.asarray(rewarded, bool)
        lab = np.asarray(cues, dtype=object)
        pmfs, p_omit = [], []
        for c in order:
            mine = lab == c if lab.size else np.zeros(0, bool)
            if self.reward_times == EMPIRICAL:
                d = ob[mine & rew] - cb
                pmf = np.bincount(d, minlength=2).astype(float) if d.size else np.zeros(2)
                pmf = pmf / max(pmf.sum(), 1.0)
            else:
                pmf = _explicit_pmf(self.reward_times, tm.bin_s)
            pmfs.append(weber_blur(pmf, self.weber))
            if self.p_omit == EMPIRICAL:
                p_omit.append(float(np.mean(~rew[mine])) if mine.any() else 1.0)
            else:
                p_omit.append(float(self.p_omit))
        explicit = self._explicit()
        D = max([p.size - 1 for p in pmfs] + ([explicit[0].size - 1] if explicit else []) + [1])
        nb = int(max(tm.n_bins, cb + D + 2, ob.max(initial=0) + 2, n_bins or 0))
        iti_bins, hazard = _iti(tm, self.iti_s)
        return BeliefStructure(tuple(order), tuple(tuple(p.tolist()) for p in pmfs), tuple(p_omit), nb, cb,
                               iti_bins, hazard, None if explicit is None else (tuple(explicit[0].tolist()), explicit[1]))

    def _outcome_bins(self, df: pd.DataFrame) -> np.ndarray:
        tm = self.timing
        if "cue_time" in df.columns and "outcome_time" in df.columns:
            delay = df["outcome_time"].to_numpy(float) - df["cue_time"].to_numpy(float)
            delay = np.where(np.isfinite(delay), delay, tm.outcome_s - tm.cue_onset_s)
            return tm.cue_bin + np.maximum(np.round(delay / tm.bin_s), 1).astype(np.int64)
        return np.full(len(df), tm.outcome_bin, dtype=np.int64)

    # -- model interface --------------------------------------------------------------------------------
    def pack(self, df: pd.DataFrame) -> Packed:
        df = df.reset_index(drop=True)
        missing = [c for c in self.required_columns if c not in df.columns]
        if missing:
            raise InputError(f"model {self.name} needs column(s) {', '.join(missing)}")
        packed, groups = pack_common(df)
        T = packed.rewards.shape[1]
        cues = df["cue"].astype(str).to_numpy(dtype=object)
        ob_all = self._outcome_bins(df)
        rewarded = pd.to_numeric(df["reward"], errors="coerce").to_numpy(float) > 0
        # each animal's own task structure (what it experienced), on one grid and one feature layout
        order = list(dict.fromkeys(cues.tolist()))
        first = [self.structure(cues[g], ob_all[g], rewarded[g], cue_order=order) for g in groups]
        nb = max(st.n_bins for st in first)
        if nb > 400:
            raise InputError(f"model {self.name}: an outcome {(nb - 2 - self.timing.cue_bin) * self.timing.bin_s:.1f} s "
                             f"after the cue gives {nb} time bins; use a coarser bin (TrialTiming(bin_s=...))")
        structures = [self.structure(cues[g], ob_all[g], rewarded[g], cue_order=order, n_bins=nb) for g in groups]
        index = {c: i for i, c in enumerate(order)}
        ci = np.array([index[c] for c in cues], np.int64)
        sidx = np.empty(len(df), np.int64)
        sidx[groups.rows] = groups.sidx
        span = int(nb)
        C = len(order)
        key = ((sidx * C + ci) * span + ob_all) * 2 + rewarded
        codes, uniq = pd.factorize(key, sort=False)
        u = np.asarray(uniq, np.int64)
        trew, rest = (u % 2).astype(bool), u // 2
        tob, rest = rest % span, rest // span
        tci, tsub = rest % C, rest // C
        phis = np.zeros((u.size, nb, 1 + C * (nb - self.timing.cue_bin)))
        for s_ in np.unique(tsub):
            rows = np.flatnonzero(tsub == s_)
            labels = [f"model {self.name}: subject {packed.subjects[s_]}, trials of cue {order[a]!r} "
                      f"{'rewarded' if r else 'unrewarded'} with outcome {(b - self.timing.cue_bin) * self.timing.bin_s:g} "
                      f"s after the cue" for a, b, r in zip(tci[rows], tob[rows], trew[rows])]
            phis[rows] = structures[s_].beliefs(tci[rows], tob[rows], trew[rows], labels=labels)
        st = structures[0]
        packed.extra.update(
            phis=phis, structure=dict(zip(packed.subjects, structures)), n_bins=st.n_bins, iti_bins=st.iti_bins,
            types=take(np.asarray(codes, np.int64), groups, T, 0, np.int64),
            outcome_bins=take(ob_all, groups, T, st.cue_bin + 1, np.int64),
            cue_bins=np.full((packed.n_subjects, T), st.cue_bin, dtype=np.int64),
            licks=take(lick_counts(df, self), groups, T, np.nan, float),
        )
        packed.n_obs = np.isfinite(packed.extra["licks"]).sum(axis=1).astype(np.int64)
        return packed

    def loglik(self, x, data, lanes):
        e = data.extra
        return kernels.belief_lick_loglik(np.atleast_2d(np.asarray(x, float)), lanes, e["phis"], e["types"],
                                          e["outcome_bins"], e["cue_bins"], data.rewards, e["licks"], data.resets,
                                          data.n_trials, e["iti_bins"], 0)

    def _rpe_lanes(self, x, data: Packed, lanes, every_bin: bool):
        e = data.extra
        th = np.ascontiguousarray(np.atleast_2d(np.asarray(x, float))[:, :2])
        return kernels.belief_rpe_lanes(th, np.asarray(lanes, np.int64), e["phis"], e["types"], e["outcome_bins"],
                                        e["cue_bins"], data.rewards, data.resets, data.n_trials, every_bin,
                                        int(e["iti_bins"]), 0)

    def rpes(self, x, data: Packed, lanes):
        """TD errors in the cue bin and in each trial's outcome bin [L, T], all lanes in one compiled call."""
        out = self._rpe_lanes(x, data, lanes, False)
        return out[..., 0], out[..., 1]

    def rpe_events(self, x, data: Packed, lanes):
        """Every bin's TD error (the time course), timed from the cue: bin b is ``b * bin_s - cue_onset_s``
        seconds after it."""
        amp = self._rpe_lanes(x, data, lanes, True)
        n_bins = amp.shape[2]
        offset = np.broadcast_to(np.arange(n_bins) * self.timing.bin_s - self.timing.cue_onset_s, amp.shape[1:])
        return ("cue",) * n_bins, offset, amp

    def trajectories(self, x: np.ndarray, data: Packed, s: int) -> pd.DataFrame:
        n = int(data.n_trials[s])
        e = data.extra
        x = np.asarray(x, float)
        ob = e["outcome_bins"][s, :n]
        rpe, val = kernels.belief_trajectory(x[:2].copy(), e["phis"], e["types"][s, :n], ob, data.rewards[s, :n],
                                             data.resets[s, :n], int(e["iti_bins"]), 0)
        cb = e["cue_bins"][s, :n]
        csum = np.concatenate([np.zeros((n, 1)), np.cumsum(val, axis=1)], axis=1)
        rows = np.arange(n)
        return pd.DataFrame({"rpe_cue": rpe[rows, cb], "rpe_outcome": rpe[rows, ob],
                             "value": (csum[rows, ob] - csum[rows, cb]) / (ob - cb)})

    def run(self, params: Mapping[str, float], cues: Sequence[str], rewards: np.ndarray, outcome_bins: np.ndarray,
            resets: np.ndarray | None = None, structure: BeliefStructure | None = None):
        """RPE and value time courses [T, n_bins] for a sequence of trials (no likelihood) and the structure
        used (from the trials themselves unless given)."""
        x = self.check_params(params)
        rewards = np.asarray(rewards, float)
        ob = np.asarray(outcome_bins, np.int64)
        st = structure or self.structure([str(c) for c in cues], ob, rewards > 0)
        ci = np.array([st.cues.index(str(c)) for c in cues], np.int64)
        phis = st.beliefs(ci, ob, rewards > 0)
        if resets is None:
            resets = np.zeros(len(ci), np.bool_)
            resets[0] = True
        rpe, val = kernels.belief_trajectory(x[:2].copy(), phis, np.arange(len(ci)), ob, rewards,
                                             np.asarray(resets, np.bool_), st.iti_bins, 0)
        return rpe, val, st

    def simulate(self, params: Mapping[str, float], task: PavlovianTask, rng: np.random.Generator, *,
                 subject: str = "1", session: str = "1") -> Simulation:
        """Simulate ``task`` (a :class:`DelayTask` gives each trial its reward time; other Pavlovian tasks the
        timing's fixed outcome).  Empirical options: the animal knows the simulated schedule's own reward-time
        distribution and omission fraction, exactly what a fit of the simulated table assumes."""
        if not isinstance(task, PavlovianTask):
            raise InputError(f"{self.name} simulates Pavlovian tasks; got {type(task).__name__}")
        if task.timing != self.timing:
            return self.with_options(timing=task.timing).simulate(params, task, rng, subject=subject, session=session)
        x = self.check_params(params)
        tm = self.timing
        rewards = task.draw_rewards(rng)
        delays = task.delays_s if isinstance(task, DelayTask) else np.full(task.n_trials, tm.outcome_s - tm.cue_onset_s)
        ob = tm.cue_bin + np.maximum(np.round(delays / tm.bin_s), 1).astype(np.int64)
        rpe, val, _ = self.run(params, list(task.cues), rewards, ob)
        rows = np.arange(task.n_trials)
        csum = np.concatenate([np.zeros((task.n_trials, 1)), np.cumsum(val, axis=1)], axis=1)
        vbar = (csum[rows, ob] - csum[rows, tm.cue_bin]) / (ob - tm.cue_bin)
        licks = observations.PoissonLicks.simulate(vbar, x[2], x[3], rng)
        trials = trials_frame(task, rng, subject, session,
                              {"cue": list(task.cues), "reward": rewards, "licks": licks, "phase": list(task.phase),
                               "rpe_cue": rpe[:, tm.cue_bin], "rpe_outcome": rpe[rows, ob]})
        trials["outcome_time"] = trials["cue_time"] + (ob - tm.cue_bin) * tm.bin_s
        return Simulation(trials, rpe, val, tm.bin_s, self.spec.as_dict(x), self.name, task)

    def online(self, params: Mapping[str, float], *, structure=None, subject: str | None = None,
               n_bins: int | None = None, **_) -> "BeliefLearner":
        """A learner taking one trial at a time over ``structure``: a :class:`BeliefStructure`, or a packed
        table's ``extra["structure"]`` (one per subject) with the ``subject`` to learn as, which reproduces the
        fit of that subject exactly.  Without it the options must be explicit (``reward_times`` and ``p_omit``):
        an empirical structure comes from a table."""
        x = self.check_params(params)
        if isinstance(structure, Mapping):
            if subject is None and len(structure) == 1:
                subject = next(iter(structure))
            if str(subject) not in structure:
                raise InputError(f"model {self.name}: the online learner needs subject= one of "
                                 f"{', '.join(map(str, structure))} to take that animal's task structure")
            structure = structure[str(subject)]
        if structure is None:
            if self._explicit() is None:
                raise InputError(f"model {self.name}: the online learner needs the task structure: pass "
                                 f"structure=packed.extra['structure'], or give the model explicit reward_times "
                                 f"and p_omit options")
            structure = self.structure([], np.zeros(0, np.int64), np.zeros(0, bool), n_bins=n_bins)
        return BeliefLearner(x[:2], structure, self.timing.bin_s)


class BeliefLearner:
    """Belief-state TD one trial at a time (the offline kernel's own per-trial function), for the online API
    (:mod:`dopa_rl.models.online`): ``predict``, ``outcome_rpe``, ``step``, ``state``."""

    def __init__(self, theta: np.ndarray, structure: BeliefStructure, bin_s: float) -> None:
        self.theta = np.asarray(theta, float)
        self.structure = structure
        self.bin_s = float(bin_s)
        self.w = np.zeros(structure.n_features)
        self._first = True
        nb = structure.n_bins
        kernels.belief_trial(np.zeros(2), np.zeros((nb, 2)), 1, 0.0, 0.1, 0.9, 0, 0, np.empty(nb), np.empty(nb))

    def outcome_bin(self, cue_s: float, outcome_s: float) -> int:
        st = self.structure
        ob = st.cue_bin + max(int(np.round((outcome_s - cue_s) / self.bin_s)), 1)
        if ob > st.n_bins - 2:
            raise InputError(f"belief learner: an outcome {outcome_s - cue_s:g} s after the cue is past the model's "
                             f"{st.n_bins} bins of {self.bin_s:g} s")
        return ob

    def _run(self, w, cue, reward, cue_s, outcome_s, first):
        st = self.structure.with_cue(str(cue))
        if st.n_features != self.w.size:
            self.structure = st
            self.w = np.concatenate([self.w, np.zeros(st.n_features - self.w.size)])
            w = self.w if w is None else np.concatenate([w, np.zeros(st.n_features - w.size)])
        elif w is None:
            w = self.w
        ob = self.outcome_bin(cue_s, outcome_s)
        phi = np.ascontiguousarray(st.beliefs([st.cues.index(str(cue))], [ob], [reward > 0])[0])
        rpe, val = np.empty(st.n_bins), np.empty(st.n_bins)
        kernels.belief_trial(w, phi, ob, float(reward), self.theta[0], self.theta[1], 0 if first else st.iti_bins,
                             0, rpe, val)
        return ob, rpe, val

    def predict(self, cue, cue_s: float = 0.0, outcome_s: float = 1.0) -> float:
        """The value of the belief after the cue (before learning)."""
        _, _, val = self._run(self.w.copy(), cue, 0.0, cue_s, outcome_s, self._first)
        return float(val[self.structure.cue_bin])

    def outcome_rpe(self, cue, reward: float, cue_s: float = 0.0, outcome_s: float = 1.0) -> float:
        """The error the outcome would give (no learning)."""
        ob, rpe, _ = self._run(self.w.copy(), cue, float(reward), cue_s, outcome_s, self._first)
        return float(rpe[ob])

    def step(self, cue, reward: float, cue_s: float = 0.0, outcome_s: float = 1.0):
        """One trial: its values and errors (every bin in ``rpe_bins``), then learn."""
        from dopa_rl.models.online import TrialUpdate

        ob, rpe, val = self._run(None, cue, float(reward), cue_s, outcome_s, self._first)
        self._first = False
        cb = self.structure.cue_bin
        return TrialUpdate(float(val[cb]), float(rpe[cb]), float(rpe[ob]), self.state(), tuple(float(v) for v in rpe))

    def state(self) -> dict[str, float]:
        """The ITI weight and each cue's weight on its first ISI sub-state."""
        K = self.structure.K
        return {"ITI": float(self.w[0]), **{c: float(self.w[1 + i * K]) for i, c in enumerate(self.structure.cues)}}


def belief_models() -> dict[str, BeliefTDModel]:
    """The built-in belief-state TD model by name."""
    return {"belief-td": BeliefTDModel("belief-td")}
