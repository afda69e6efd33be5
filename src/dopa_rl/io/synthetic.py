"""Synthetic sessions: a simulated animal with known parameters, written as NWB files.

This module only assembles sessions; every model of what is observed lives in :mod:`dopa_rl.models`
(behaviour in the learners and :mod:`dopa_rl.models.observations`, dopamine in
:mod:`dopa_rl.models.dopamine`).  A model plays the task and gives the behavior table and the RPE time course
of every trial (``Simulation.rpe``, bins of ``bin_s`` seconds from trial start).  From these we make:

- **events**: anticipatory licks placed inside the cue-outcome window of each trial (so counting them
  gives back the ``licks`` column exactly), consumption licks after rewards, valve openings at rewarded
  outcomes, cue onsets, and a TTL at every trial start;
- **photometry** (:func:`photometry_from_rpe`, from :func:`dopa_rl.models.dopamine.simulate_photometry`): RPE impulses convolved with a GCaMP/dLight-like kernel
  (difference of exponentials), times a photobleaching decay, plus a motion artifact shared with an
  isosbestic (405 nm) channel, plus Gaussian noise;
- **units** (:func:`spikes_from_rpe`, that is :func:`dopa_rl.models.dopamine.simulate_spikes`): Poisson spikes with rate ``baseline + gain x RPE`` (clipped at 0),
  the RPE of each bin spread over a short phasic window;
- **true parameters** stored in ``processing/simulation/true_parameters`` and per-unit ``gain_hz`` /
  ``baseline_hz`` columns; :func:`dopa_rl.io.nwb.read_true_parameters` reads them back.
"""
from __future__ import annotations

import datetime as _dt
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from dopa_rl.errors import InputError
from dopa_rl.io.nwb_types import Photometry, SessionData, SessionMetadata
from dopa_rl.models.dopamine import DopamineObservation, rpe_impulses, simulate_photometry, simulate_spikes
from dopa_rl.models.population import LATENT_PREFIXES  # trial-table columns that are latent state, not behavior

__all__ = ["DopamineObservation", "photometry_from_rpe", "spikes_from_rpe", "rpe_impulses",
           "simulate_session", "simulate_sessions", "simulate_magnitude_session", "MODEL_FOR"]

#: (task, model) on the command line -> registered model name
MODEL_FOR = {("pavlovian", "rw"): "rw-pavlovian", ("bandit", "rw"): "rw-softmax", ("pavlovian", "td"): "td"}
#: tasks a simulated NWB session can hold: default length and options
SESSION_TASKS = {"pavlovian": (150, {"p_reward": 0.75}), "bandit": (300, {})}


def photometry_from_rpe(start_times: np.ndarray, rpe: np.ndarray, bin_s: float, duration_s: float,
                        obs: DopamineObservation, rng: np.random.Generator) -> tuple[Photometry, np.ndarray]:
    """A two-channel (470 nm signal, 405 nm isosbestic) recording driven by the RPE time course, as a
    :class:`Photometry` ready for NWB (the forward model is :func:`dopa_rl.models.dopamine.simulate_photometry`).

    Returns the recording and the true dF/F (before bleaching, motion and noise) for tests.
    """
    sig = simulate_photometry(start_times, rpe, bin_s, duration_s, obs, rng)
    phot = Photometry(timestamps=sig.timestamps, signal=sig.signal, control=sig.control, rate=sig.rate,
                      name="photometry", unit="V", indicator="dLight1.1", location="nucleus accumbens core",
                      description="simulated dLight photometry: 470 nm signal and 405 nm isosbestic control")
    return phot, sig.dff


#: Poisson units from RPEs (the forward model lives in dopa_rl.models.dopamine)
spikes_from_rpe = simulate_spikes


def _events_from_trials(trials: pd.DataFrame, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Lick, valve, cue and TTL event times consistent with the behavior table."""
    licks: list[np.ndarray] = []
    cue_t = trials["cue_time"].to_numpy(float)
    out_t = trials["outcome_time"].to_numpy(float)
    reward = trials["reward"].to_numpy(float)
    if "licks" in trials.columns:
        for lo, hi, k in zip(cue_t, out_t, trials["licks"].to_numpy()):
            if k > 0:
                licks.append(np.sort(rng.uniform(lo, hi, int(k))))
    for t_out, r in zip(out_t, reward):
        if r > 0:  # consumption licks right after the reward, outside the anticipatory window
            licks.append(t_out + 0.05 + np.cumsum(rng.uniform(0.1, 0.2, rng.integers(3, 8))))
    events = {"cue": cue_t, "valve": out_t[reward > 0], "ttl": trials["start_time"].to_numpy(float)}
    if licks:
        events["lick"] = np.sort(np.concatenate(licks))
    return events


def _draw_params(model: Any, rng: np.random.Generator) -> dict[str, float]:
    """Parameters of one simulated animal: uniform between each parameter's restart bounds."""
    from dopa_rl.models.population import draw_params

    return draw_params(model, rng)


def session_paths(folder: str | os.PathLike[str], n_subjects: int, n_sessions: int) -> list[Path]:
    """The files :func:`simulate_sessions` writes into ``folder``: ``sub-simSS_ses-KK.nwb``."""
    return [Path(folder) / f"sub-sim{s + 1:02d}_ses-{k + 1:02d}.nwb" for s in range(n_subjects) for k in range(n_sessions)]


def session_model(task: str, model: str):
    """The registered model that plays ``task`` (``rw``/``td`` shorthands, or any registered name of the
    task's kind: choice models play the bandit, Pavlovian models the Pavlovian task)."""
    from dopa_rl.models import get_model

    m = get_model(MODEL_FOR.get((task, model), model))
    want = "choice" if task == "bandit" else "pavlovian"
    if m.kind != want:
        plays = "choice (bandit)" if m.kind == "choice" else "Pavlovian"
        other = "bandit" if m.kind == "choice" else "pavlovian"
        raise InputError(f"`model` {model} simulates {plays} tasks only: use `task` {other}, or `model` rw")
    return m


def _make_task(task: str, n_trials: int | None) -> Any:
    from dopa_rl.models import tasks

    if task not in SESSION_TASKS:
        raise InputError(f"`task` {task!r}: choose pavlovian or bandit")
    n, kw = SESSION_TASKS[task]
    return tasks.make_task(task, n_trials or n, **kw)


def simulate_session(task: str = "pavlovian", model: str = "rw", *, params: Mapping[str, float] | None = None,
                     seed: int | np.random.Generator = 0, subject: str = "sim01", session: str = "ses01",
                     n_trials: int | None = None, observation: DopamineObservation | None = None,
                     session_start_time: _dt.datetime | None = None, duration_s: float | None = None) -> SessionData:
    """Simulate one session in memory (behavior, events, photometry, units, true parameters).

    ``model`` is ``rw`` or ``td`` or any registered model of the task's kind; parameters missing from ``params`` are
    drawn from the model's restart ranges.  Recordings last until 5 s after the last trial, or ``duration_s`` if
    longer.  Write the result with :func:`dopa_rl.io.nwb.write_session`.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    task_obj = _make_task(task, n_trials)
    m = session_model(task, model)
    model_name = m.name
    true = {**_draw_params(m, rng), **(params or {})}  # parameters not given are drawn
    sim = m.simulate(true, task_obj, rng, subject=subject, session=session)
    obs = observation or DopamineObservation()
    latent = [c for c in sim.trials.columns if str(c).startswith(LATENT_PREFIXES)]
    trials = sim.trials.drop(columns=latent)
    truth_tc = sim.trials[latent].copy()
    timing = getattr(task_obj, "timing", None)
    if timing is not None:  # the RPE at cue onset and at the outcome, unless the model already gave them
        for col, b in (("rpe_cue", timing.cue_bin), ("rpe_outcome", timing.outcome_bin)):
            if col not in truth_tc.columns:
                truth_tc[col] = sim.rpe[:, b]
    starts = trials["start_time"].to_numpy(float)
    duration = max(float(trials["stop_time"].max()) + 5.0, float(duration_s or 0.0))
    phot, _ = photometry_from_rpe(starts, sim.rpe, sim.bin_s, duration, obs, rng)
    units, props = spikes_from_rpe(starts, sim.rpe, sim.bin_s, duration, obs, rng)
    start = session_start_time or _dt.datetime(2026, 1, 5, 9, 0, tzinfo=_dt.timezone.utc)
    md = SessionMetadata(
        subject_id=subject, session_id=session, session_start_time=start,
        identifier=str(uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | int(rng.integers(0, 2**63)))),
        session_description=f"simulated {task} session: model {model_name}, {len(trials)} trials",
        experiment_description=("Synthetic session generated by dopa_rl: behavior from a reinforcement-learning "
                                "model with known parameters, dopamine photometry and units from its RPEs."),
        institution="dopa_rl simulation", subject_description="simulated mouse",
        keywords=("dopamine", "reward prediction error", "simulation", model_name))
    truth = {"model": model_name, "task": task, **{k: float(v) for k, v in sim.params.items()},
             "dff_per_rpe": obs.dff_per_rpe, "photometry_rate": obs.photometry_rate}
    return SessionData(metadata=md, trials=trials, events=_events_from_trials(trials, rng),
                       photometry=[phot], units=units, unit_properties=props,
                       spike_resolution=obs.spike_resolution, true_parameters=truth,
                       true_trajectories=truth_tc.reset_index(drop=True))


def simulate_sessions(task: str = "pavlovian", model: str = "rw", n_subjects: int = 1, n_sessions: int = 1,
                      out: str | os.PathLike[str] = "sim", seed: int = 0,
                      params: Mapping[str, float] | None = None, *, n_trials: int | None = None,
                      observation: DopamineObservation | None = None, progress: bool | None = None) -> list[Path]:
    """Simulate ``n_subjects`` x ``n_sessions`` sessions and write one NWB file each; return the paths.

    ``out`` is a ``.nwb`` file name (only for a single session) or a folder, which receives
    ``sub-<subject>_ses-<session>.nwb`` files.  Each subject keeps its parameters across its sessions
    (``params`` where given, the rest drawn from the model's restart ranges); sessions start afresh.
    Files are written atomically and replace existing ones of the same name.  A tqdm progress bar is
    shown when more than one file is written (``progress=None``: only on a terminal).
    """
    from dopa_rl.io.nwb_write import write_session

    if n_subjects < 1 or n_sessions < 1:
        raise InputError(f"`n_subjects` {n_subjects} `n_sessions` {n_sessions}: both must be at least 1")
    _make_task(task, 1)  # validates --task early
    m = session_model(task, model)  # and --model: any registered model of the task's kind
    out = Path(out)
    total = n_subjects * n_sessions
    if out.suffix.lower() == ".nwb":
        if total > 1:
            raise InputError(f"`out` {out}: {total} sessions need a folder, not a single .nwb file name")
        targets = [out]
    else:
        targets = session_paths(out, n_subjects, n_sessions)
    root = np.random.SeedSequence(seed)
    subject_seeds = root.spawn(n_subjects)
    jobs = []
    for s in range(n_subjects):
        srng = np.random.default_rng(subject_seeds[s])
        subject_params = {**_draw_params(m, srng), **(params or {})}
        for k, sess_seed in enumerate(subject_seeds[s].spawn(n_sessions)):
            jobs.append((f"sim{s + 1:02d}", f"ses-{k + 1:02d}", k, subject_params, sess_seed))
    from tqdm.auto import tqdm

    # tqdm's disable=None hides the bar when stderr is not a terminal
    bar = tqdm(total=total, desc="simulating sessions", unit="file",
               disable=None if progress is None else not progress) if total > 1 else None
    paths: list[Path] = []
    try:
        for target, (subj, sess, k, p, sseed) in zip(targets, jobs):
            start = _dt.datetime(2026, 1, 5, 9, 0, tzinfo=_dt.timezone.utc) + _dt.timedelta(days=k)
            data = simulate_session(task, model, params=p, seed=np.random.default_rng(sseed), subject=subj,
                                    session=sess, n_trials=n_trials, observation=observation,
                                    session_start_time=start)
            paths.append(write_session(target, data, overwrite=True))
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return paths


#: reward magnitudes (ul) of the variable-magnitude task of Dabney et al. (2020)
DABNEY_MAGNITUDES = (0.1, 0.3, 1.2, 2.5, 5.0, 10.0, 20.0)


def simulate_magnitude_session(n_units: int = 30, n_trials: int = 700, *, magnitudes=DABNEY_MAGNITUDES,
                               classical: bool = False, seed: int | np.random.Generator = 0,
                               subject: str = "sim01", session: str = "ses01", baseline_hz: float = 8.0,
                               gain_hz: float = 6.0, window_s: float = 0.5, n_missing: int = 0) -> SessionData:
    """A variable-magnitude session recorded with expectile units (:mod:`dopa_rl.models.distributional`).

    Each trial delivers one of ``magnitudes`` (equally likely) at ``outcome_time``, on a cued (``cued`` 1) or
    uncued (0) trial.  Unit ``i`` fires Poisson spikes at ``baseline_hz`` and, for ``window_s`` after each
    outcome, at ``baseline_hz + gain_hz * alpha(delta_i) * delta_i`` (clipped at 0), its expectile learner's
    scaled RPE; per-unit ``tau``, ``alpha_pos``, ``alpha_neg`` are unit properties, and the reward
    distribution (``magnitudes``, ``probabilities``) and the taus are stored as true parameters.
    ``classical``: every unit has ``alpha_pos == alpha_neg`` (tau 0.5; the null population).
    ``n_missing``: that many trials get no reward value (NaN) and as many an unknown type (NaN), to test
    exclusion.
    """
    from dopa_rl.models.distributional import simulate_unit_responses

    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    mags = np.asarray(magnitudes, float)
    tau = np.full(n_units, 0.5) if classical else rng.uniform(0.15, 0.85, n_units)
    total = rng.uniform(0.1, 0.3, n_units)
    ap, an = tau * total, (1 - tau) * total
    reward = rng.choice(mags, n_trials)
    sim = simulate_unit_responses(ap, an, reward, rng, gain=gain_hz, v0=float(mags.mean()))
    starts = np.cumsum(rng.uniform(2.0, 3.0, n_trials))
    cued = (rng.random(n_trials) < 0.5).astype(float)
    cue_time = np.where(cued > 0, starts + 0.2, np.nan)
    outcome = starts + 1.2
    duration = float(starts[-1] + 4.0)
    units: dict[int, np.ndarray] = {}
    for u in range(n_units):
        bg = np.sort(rng.uniform(0.0, duration, rng.poisson(baseline_hz * duration)))
        win = np.searchsorted(outcome, bg, side="right") - 1          # trial whose window may hold the spike
        inside = (win >= 0) & (bg < outcome[np.maximum(win, 0)] + window_s)
        rate = np.maximum(baseline_hz + sim["responses"][:, u], 0.0)
        keep = ~inside | (rng.random(bg.size) < np.minimum(rate[np.maximum(win, 0)] / baseline_hz, 1.0))
        extra_n = rng.poisson(np.maximum(rate - baseline_hz, 0.0) * window_s)
        extra = np.repeat(outcome, extra_n) + rng.uniform(0.0, window_s, int(extra_n.sum()))
        units[u] = np.sort(np.concatenate([bg[keep], extra]))
    reward_col = reward.copy()
    if n_missing:
        idx = rng.choice(n_trials, 2 * n_missing, replace=False)
        reward_col[idx[:n_missing]] = np.nan
        cued[idx[n_missing:]] = np.nan
    trials = pd.DataFrame({"start_time": starts, "stop_time": starts + 2.0, "cued": cued, "cue_time": cue_time,
                           "outcome_time": outcome, "reward": reward_col})
    props = pd.DataFrame({"tau": tau, "alpha_pos": ap, "alpha_neg": an}, index=list(range(n_units)))
    start = _dt.datetime(2026, 1, 5, 9, 0, tzinfo=_dt.timezone.utc)
    md = SessionMetadata(
        subject_id=subject, session_id=session, session_start_time=start,
        identifier=str(uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | int(rng.integers(0, 2**63)))),
        session_description=f"simulated variable-magnitude session: {n_units} "
                            f"{'classical' if classical else 'expectile'} units, {n_trials} trials",
        experiment_description="Synthetic variable-magnitude reward task (Dabney et al. 2020) generated by dopa_rl.",
        institution="dopa_rl simulation", subject_description="simulated mouse",
        keywords=("dopamine", "distributional reinforcement learning", "simulation"))
    truth = {"model": "distributional-classical" if classical else "distributional", "task": "variable-magnitude",
             "magnitudes": mags.tolist(), "probabilities": (np.ones(mags.size) / mags.size).tolist(),
             "tau": tau.tolist(), "gain_hz": gain_hz, "baseline_hz": baseline_hz}
    return SessionData(metadata=md, trials=trials, events={"valve": outcome}, units=units, unit_properties=props,
                       spike_resolution=1.0 / 30000.0, true_parameters=truth)
