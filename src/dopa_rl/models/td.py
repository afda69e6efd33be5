"""Temporal-difference learning over within-trial time bins.

``delta_t = r_t + gamma * V_t - V_{t-1}`` on entering bin t, TD(lambda) eligibility traces, linear value
``V_t = w . x_t`` over a stimulus representation (docs/models.md):

* ``csc``: complete serial compound, one feature per cue element and time since its onset;
* ``presence``: one feature per element, on from cue onset until the outcome arrives;
* ``microstimulus``: Ludvig et al. (2008) — a decaying memory trace per element read out by Gaussian
  basis functions (``n_micro`` of them, width ``sigma``), so temporal precision falls with delay.

The trial starts in a featureless state (value 0), so a learned cue produces a positive error in the cue
bin; the reward error shrinks with training; omitting an expected reward gives a dip at the expected time.
Anticipatory licks ~ Poisson(exp(lick_intercept + lick_slope * mean value from cue to outcome)).
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

from dopa_rl.errors import InputError
from dopa_rl.models._lazy import lazy_module
from dopa_rl.models.base import (Model, Packed, Simulation, check_options, lick_counts, pack_common,
                                 require_columns, take, trials_frame)
from dopa_rl.models.params import Param, ParamSpec
from dopa_rl.models.rw import P_LICK0, P_LICK1
from dopa_rl.models.tasks import PavlovianTask, TrialTiming, split_compound

__all__ = ["P_TD_ALPHA", "P_GAMMA", "P_LAMBDA", "REPRESENTATIONS", "element_features", "TDModel", "td_models"]

pd = lazy_module("pandas")              # imported on first use: listing models stays fast
kernels = lazy_module("dopa_rl.models.kernels")  # numba loads only when a likelihood runs
observations = lazy_module("dopa_rl.models.observations")

P_TD_ALPHA = Param("alpha", 0.0, 1.0, 0.1, 0.02, 0.5, prior_mean=-2.0, prior_sd=1.5, description="learning rate")
P_GAMMA = Param("gamma", 0.0, 1.0, 0.95, 0.7, 0.99, prior_mean=2.0, prior_sd=1.5, description="temporal discount per bin")
P_LAMBDA = Param("lambda_", 0.0, 1.0, 0.9, 0.1, 0.95, prior_mean=1.0, prior_sd=1.5, description="eligibility trace decay")

REPRESENTATIONS = ("csc", "presence", "microstimulus")


def element_features(representation: str, n_bins: int, cue_bin: int, outcome_bin: int, *, bin_s: float,
                     n_micro: int = 8, sigma: float = 0.08, trace_tau_s: float = 2.0) -> np.ndarray:
    """Features [n_bins, F_e] of one cue element shown at ``cue_bin`` with outcome at ``outcome_bin``."""
    t = np.arange(n_bins)
    since = t - cue_bin
    if representation == "csc":
        F = n_bins - cue_bin
        phi = np.zeros((n_bins, F))
        on = since >= 0
        phi[t[on], since[on]] = 1.0
        return phi
    if representation == "presence":
        return ((since >= 0) & (t < outcome_bin)).astype(float)[:, None]
    if representation == "microstimulus":
        y = np.where(since >= 0, np.exp(-np.maximum(since, 0) * bin_s / trace_tau_s), 0.0)
        mu = np.arange(1, n_micro + 1) / n_micro
        phi = y[:, None] * np.exp(-((y[:, None] - mu[None, :]) ** 2) / (2 * sigma**2))
        phi[since < 0] = 0.0
        return phi
    raise InputError(f"unknown TD representation {representation!r}; use one of {', '.join(REPRESENTATIONS)}")


class TDModel(Model):
    """TD(lambda) with a chosen stimulus representation."""

    kind = "pavlovian"
    required_columns = ("subject", "cue", "reward", "licks")

    def __init__(self, name: str, representation: str = "csc", timing: TrialTiming | None = None, **rep_options):
        if representation not in REPRESENTATIONS:
            raise InputError(f"unknown TD representation {representation!r}; use one of {', '.join(REPRESENTATIONS)}")
        self.name = name
        self.representation = representation
        self.timing = timing or TrialTiming()
        self.rep_options = rep_options
        self.spec = ParamSpec([P_TD_ALPHA, P_GAMMA, P_LAMBDA, P_LICK0, P_LICK1])
        self.description = f"TD(lambda) over time bins, {representation} stimulus representation"

    option_names = ("timing", "representation", "n_micro", "sigma", "trace_tau_s")
    observation_params = ("lick_intercept", "lick_slope")
    observation_columns = ("licks",)

    @property
    def trace_params(self) -> list[str]:
        """``alpha`` only: ``gamma`` and ``lambda_`` stay at their defaults in a trace-level fit
        (docs/indicator.md), which searches a grid per parameter."""
        return ["alpha"]

    def options(self) -> dict:
        """``representation``, ``timing`` (a dict of :class:`TrialTiming` fields) and the representation's own
        options (``n_micro``, ``sigma``, ``trace_tau_s`` where given)."""
        return {"representation": self.representation, "timing": dataclasses.asdict(self.timing),
                **self.rep_options}

    def with_options(self, **options) -> "TDModel":
        check_options(self.name, options, set(self.option_names))
        rep = options.pop("representation", self.representation)
        timing = options.pop("timing", self.timing)
        if isinstance(timing, Mapping):
            timing = TrialTiming(**timing)
        return TDModel(self.name, rep, timing, **{**self.rep_options, **options})

    # -- features -----------------------------------------------------------------------------------
    def features(self, compounds: list[str], outcome_bins: np.ndarray, n_bins: int, cue_bin: int):
        """Feature tensor [n_types, n_bins, F] and the type index of every trial.

        A trial type is a (compound, outcome bin) pair; features of a compound are its elements' blocks.
        """
        # trial types numbered in order of first appearance, in one vectorised pass over the trials
        cc, cues = pd.factorize(pd.Series(list(compounds), dtype=object), sort=False)
        bins = np.asarray(outcome_bins, dtype=np.int64)
        span = int(bins.max(initial=0)) + 1
        codes, uniq = pd.factorize(cc.astype(np.int64) * span + bins, sort=False)
        keys = [(str(cues[u // span]), int(u % span)) for u in uniq]
        index = {k: i for i, k in enumerate(keys)}
        types = np.asarray(codes, dtype=np.int64)
        elements = sorted({e for c, _ in keys for e in split_compound(c)})
        F_e = element_features(self.representation, n_bins, cue_bin, cue_bin + 1, bin_s=self.timing.bin_s,
                               **self.rep_options).shape[1]
        phis = np.zeros((len(keys), n_bins, F_e * len(elements)))
        for (compound, ob), i in index.items():
            for e in split_compound(compound):
                j = elements.index(e)
                phis[i, :, j * F_e:(j + 1) * F_e] = element_features(
                    self.representation, n_bins, cue_bin, ob, bin_s=self.timing.bin_s, **self.rep_options)
        return phis, types, elements

    def _outcome_bins(self, df: pd.DataFrame) -> np.ndarray:
        tm = self.timing
        if "cue_time" in df.columns and "outcome_time" in df.columns:
            delay = (df["outcome_time"].to_numpy(float) - df["cue_time"].to_numpy(float))
            delay = np.where(np.isfinite(delay), delay, tm.outcome_s - tm.cue_onset_s)
            bins = tm.cue_bin + np.maximum(np.round(delay / tm.bin_s), 1).astype(np.int64)
            return bins
        return np.full(len(df), tm.outcome_bin, dtype=np.int64)

    # -- model interface ----------------------------------------------------------------------------
    def pack(self, df: pd.DataFrame) -> Packed:
        require_columns(df, self)
        packed, groups = pack_common(df)
        T = packed.rewards.shape[1]
        tm = self.timing
        ob_all = self._outcome_bins(df)
        n_bins = int(max(tm.n_bins, ob_all.max(initial=0) + 2))
        if n_bins > 400:
            raise InputError(f"{self.name}: outcome up to {ob_all.max() * tm.bin_s:.1f} s after trial start gives "
                             f"{n_bins} time bins; use a coarser bin (TrialTiming(bin_s=...))")
        phis, types_all, elements = self.features(df["cue"].astype(str).tolist(), ob_all, n_bins, tm.cue_bin)
        packed.extra.update(
            phis=phis, elements=elements, n_bins=n_bins,
            types=take(types_all, groups, T, 0, np.int64),
            outcome_bins=take(ob_all, groups, T, tm.outcome_bin, np.int64),
            cue_bins=np.full((packed.n_subjects, T), tm.cue_bin, dtype=np.int64),
            licks=take(lick_counts(df, self), groups, T, np.nan, float),
        )
        packed.n_obs = np.isfinite(packed.extra["licks"]).sum(axis=1).astype(np.int64)
        return packed

    def loglik(self, x, data, lanes):
        e = data.extra
        return kernels.td_lick_loglik(np.atleast_2d(x), np.asarray(lanes, np.int64), e["phis"], e["types"],
                                      e["outcome_bins"], e["cue_bins"], data.rewards, e["licks"], data.resets,
                                      data.n_trials)

    def run(self, params: Mapping[str, float], compounds: list[str], rewards: np.ndarray,
            outcome_bins: np.ndarray | None = None, resets: np.ndarray | None = None):
        """RPE and value time courses [T, n_bins] for a sequence of trials (no likelihood)."""
        x = self.check_params(params)
        tm = self.timing
        T = len(compounds)
        ob = np.full(T, tm.outcome_bin, dtype=np.int64) if outcome_bins is None else np.asarray(outcome_bins, np.int64)
        n_bins = int(max(tm.n_bins, ob.max(initial=0) + 2))
        phis, types, _ = self.features(list(compounds), ob, n_bins, tm.cue_bin)
        if resets is None:
            resets = np.zeros(T, np.bool_)
            resets[0] = True
        return kernels.td_trajectory(x, phis, types, ob, np.asarray(rewards, float), np.asarray(resets, np.bool_))

    def simulate(self, params: Mapping[str, float], task: PavlovianTask, rng: np.random.Generator, *,
                 subject: str = "1", session: str = "1") -> Simulation:
        if not isinstance(task, PavlovianTask):
            raise InputError(f"{self.name} simulates Pavlovian tasks; got {type(task).__name__}")
        if task.timing != self.timing:
            model = TDModel(self.name, self.representation, task.timing, **self.rep_options)
            return model.simulate(params, task, rng, subject=subject, session=session)
        x = self.check_params(params)
        tm = self.timing
        rewards = task.draw_rewards(rng)
        rpe, val = self.run(params, list(task.cues), rewards)
        vbar = val[:, tm.cue_bin: tm.outcome_bin].mean(axis=1)
        licks = observations.PoissonLicks.simulate(vbar, x[3], x[4], rng)
        trials = trials_frame(task, rng, subject, session,
                              {"cue": list(task.cues), "reward": rewards, "licks": licks, "phase": list(task.phase),
                               "rpe_cue": rpe[:, tm.cue_bin], "rpe_outcome": rpe[:, tm.outcome_bin]})
        return Simulation(trials, rpe, val, tm.bin_s, self.spec.as_dict(x), self.name, task)

    def rpes(self, x, data: Packed, lanes):
        """TD errors in the cue bin and in each trial's outcome bin [L, T], all lanes in one compiled call."""
        out = self._rpe_lanes(x, data, lanes, False)
        return out[..., 0], out[..., 1]

    def _rpe_lanes(self, x, data: Packed, lanes, every_bin: bool):
        e = data.extra
        th = np.ascontiguousarray(np.atleast_2d(np.asarray(x, float))[:, :3])
        return kernels.td_rpe_lanes(th, np.asarray(lanes, np.int64), e["phis"], e["types"], e["outcome_bins"],
                                    e["cue_bins"], data.rewards, data.resets, data.n_trials, every_bin)

    def rpe_events(self, x, data: Packed, lanes):
        """Every bin's TD error (the time course), timed from the cue: bin b is ``b * bin_s - cue_onset_s``
        seconds after it."""
        amp = self._rpe_lanes(x, data, lanes, True)
        n_bins = amp.shape[2]
        offset = np.broadcast_to(np.arange(n_bins) * self.timing.bin_s - self.timing.cue_onset_s, amp.shape[1:])
        return ("cue",) * n_bins, offset, amp

    def online(self, params: Mapping[str, float], *, n_bins: int | None = None, max_outcome_s: float | None = None,
               **_):
        """A TD learner over this model's trial grid: at least the timing's bins, ``n_bins`` (a packed table's
        ``extra["n_bins"]`` reproduces its fit exactly) and room for outcomes up to ``max_outcome_s`` after
        the cue (the bins a table with that longest delay packs to)."""
        from dopa_rl.models.online import TDLearner

        x = self.check_params(params)
        tm = self.timing
        nb = int(max(tm.n_bins, n_bins or 0))
        if max_outcome_s is not None:
            nb = max(nb, tm.cue_bin + max(int(np.round(max_outcome_s / tm.bin_s)), 1) + 2)

        def features(ob):
            return element_features(self.representation, nb, tm.cue_bin, ob, bin_s=tm.bin_s, **self.rep_options)

        return TDLearner(kernels._td_trial, x[:3], features, nb, tm.cue_bin, tm.bin_s)

    def trajectories(self, x: np.ndarray, data: Packed, s: int) -> pd.DataFrame:
        n = int(data.n_trials[s])
        e = data.extra
        rpe, val = kernels.td_trajectory(np.asarray(x, float), e["phis"], e["types"][s, :n], e["outcome_bins"][s, :n],
                                         data.rewards[s, :n], data.resets[s, :n])
        cb = self.timing.cue_bin
        ob = e["outcome_bins"][s, :n]
        return pd.DataFrame({
            "rpe_cue": rpe[:, cb],
            "rpe_outcome": rpe[np.arange(n), ob],
            "value": np.array([val[i, cb:ob[i]].mean() for i in range(n)]),
        })


def td_models() -> dict[str, TDModel]:
    """The built-in TD models by name, one per stimulus representation."""
    return {
        "td": TDModel("td", "csc"),
        "td-presence": TDModel("td-presence", "presence"),
        "td-microstimulus": TDModel("td-microstimulus", "microstimulus"),
    }
