"""ANCCR: adjusted net contingency for causal relations (Jeong et al. 2022, Science 378:eabq6740).

A retrospective learning model, TD's rival as an account of dopamine.  Re-implemented from the paper's
equations and the authors' reference implementation (github.com/namboodirilab/ANCCR,
``functions/calculateANCCR.m``); see docs/anccr.md for the equations and what each parameter means.

For events ``i`` (predecessors) and ``j`` (successors) in continuous time, with ``gamma = exp(-1/T)``:

* eligibility ``E_i(t) = sum over past i of gamma^(t - t_i)``;
* baseline rate ``M_i <- M_i + k * alpha * (E_i - M_i)`` at every sampling tick (``sampling_interval``);
* successor representation ``M_{i<-j} <- M_{i<-j} + alpha * (E_i(t_j) - M_{i<-j})`` at each ``j`` that is
  a meaningful causal target (MCT);
* predecessor / successor contingencies ``PRC = M_{i<-j} - M_i``, ``SRC = PRC * M_j / M_i``, net
  contingency ``NC = w * SRC + (1 - w) * PRC``;
* ``ANCCR_{ij} = NC_{ij} * R_{ij} - sum_k ANCCR_{kj} * Delta_k * [NC_{k->i} > threshold]`` (the
  adjustment removes credit already explained by an earlier meaningful cause ``k``, ``Delta_k`` being
  ``gamma^(time since k)``);
* the dopamine-like signal at event ``j`` is ``DA_j = sum_m ANCCR_{jm} * [m is an MCT]``; ``j`` becomes an
  MCT once ``DA_j + beta_j > threshold``; ``R`` learns the value of each successor with ``alpha_r``.

Event stream in, one DA value per event out.  Pure numpy; the loop over events is the model's own
recursion (a few microseconds of small-array work per event).
"""
from __future__ import annotations

import numpy as np

from dopa_rl.errors import InputError

__all__ = ["ANCCR_DEFAULTS", "ANCCRResponses", "anccr_simulate", "anccr_trial_responses", "cue_reward_events",
           "random_rewards", "concat_events", "fit_anccr_responses"]

#: Published defaults (Jeong et al. 2022; reference scripts simulation/fig2/*.m): sampling interval
#: 0.2 s, alpha 0.02, alpha_r 0.2, w 0.6, k 0.01, threshold 0.6, minimum rate 1e-3, jitter 0.1 s,
#: T = 1.2 x the mean inter-reward interval, beta 1 for rewards and 0 for other events.
ANCCR_DEFAULTS = {"alpha": 0.02, "alpha_r": 0.2, "w": 0.6, "k": 0.01, "threshold": 0.6,
                  "minimum_rate": 1e-3, "sampling_interval": 0.2, "max_jitter": 0.1, "t_ratio": 1.2}


def anccr_simulate(event_ids, times, magnitudes=None, *, rewards=None, beta=None, T=None,
                   omission: dict | None = None, rng: np.random.Generator | None = None,
                   alpha: float = 0.02, alpha_r: float = 0.2, w: float = 0.6, k: float = 0.01,
                   threshold: float = 0.6, minimum_rate: float = 1e-3, sampling_interval: float = 0.2,
                   max_jitter: float = 0.1, t_ratio: float = 1.2) -> dict:
    """Run ANCCR on an event stream.

    ``event_ids`` (any hashable labels) and ``times`` (s), one per event; ``magnitudes`` the reward size
    of each event (0 for cues; default: 1 for events in ``rewards``, else 0).  ``rewards``: the labels that
    are intrinsically meaningful (``beta = 1``); or give ``beta`` as ``{label: value}``.  ``T``: the
    eligibility time constant (s, scalar or one per event); default ``t_ratio`` x the mean interval
    between reward events.  ``omission``: ``{omission_label: reward_label}``; an omission event counts
    only once the reward has a meaningful cause, as in the reference.  Events at the same time get a
    random perceptual delay (normal, ``max_jitter`` s) from ``rng``.

    Returns ``{"da": DA per event in input order, "active": False for omission events ignored because
    the omission state was not yet recognised (their DA is 0), "order": processing order (indices into the input),
    "labels": event labels (index = internal id), "nc", "anccr", "R": final matrices (predecessor x
    successor), "mct": final MCT flags, "T": the T used}``.
    """
    ids = np.asarray(event_ids, dtype=object).ravel()
    t_in = np.asarray(times, float).ravel()
    if ids.size != t_in.size or ids.size == 0:
        raise InputError(f"ANCCR: {ids.size} event labels but {t_in.size} times")
    if not np.all(np.isfinite(t_in)):
        raise InputError("ANCCR: event times must be finite")
    # internal ids in order of first occurrence in time (the order of the credit-assignment sweep)
    labels = list(dict.fromkeys(ids[np.argsort(t_in, kind="stable")].tolist()))
    code = {lab: i for i, lab in enumerate(labels)}
    ev = np.array([code[x] for x in ids], int)
    n = len(labels)
    if beta is None:
        if rewards is None:
            raise InputError("ANCCR: say which events are rewards (rewards=[...]) or give beta={label: value}")
        beta = {lab: 1.0 for lab in rewards}
    unknown = [lab for lab in beta if lab not in code]
    if unknown and not set(beta) & set(code):
        raise InputError(f"ANCCR: beta names events not in the stream: {unknown}")
    b = np.array([float(beta.get(lab, 0.0)) for lab in labels])
    if magnitudes is None:
        mag = np.array([1.0 if b[e] > threshold else 0.0 for e in ev])
    else:
        mag = np.asarray(magnitudes, float).ravel()
        if mag.size != ids.size:
            raise InputError(f"ANCCR: {mag.size} magnitudes for {ids.size} events")
    rng = np.random.default_rng() if rng is None else rng
    # simultaneous events: random perceptual delay for all but the first of each group
    t = t_in.copy()
    _, first, counts = np.unique(t_in, return_index=True, return_counts=True)
    if np.any(counts > 1):
        dup = np.ones(t.size, bool)
        dup[first] = False
        t[dup] += rng.normal(0.0, 1.0, dup.sum()) * max_jitter
    order = np.argsort(t, kind="stable")
    t, ev, mag = t[order], ev[order], mag[order]
    if T is None:
        rew_t = t[b[ev] > threshold]
        if rew_t.size < 2:
            raise InputError("ANCCR: need at least two reward events to set T (or pass T=)")
        T = t_ratio * (rew_t[-1] - rew_t[0]) / (rew_t.size - 1)
    if np.ndim(T) and np.size(T) != t_in.size:
        raise InputError(f"ANCCR: T has {np.size(T)} values for {t_in.size} events (give one, or one per event)")
    Tv = np.asarray(T, float).ravel()[order] if np.ndim(T) else np.full(t.size, float(T))
    if np.any(Tv <= 0):
        raise InputError("ANCCR: T must be positive")
    om_of = {}
    if omission:
        for o, r in omission.items():
            if o in code and r in code:
                om_of[code[o]] = code[r]
    om_active = {o: False for o in om_of}
    rew_to_om = {r: o for o, r in om_of.items()}

    Eij = np.zeros(n)
    E0 = np.zeros(n)          # eligibility for the baseline, at the last event time
    Mi = np.zeros(n)
    Mij = np.zeros((n, n))
    Delta = np.zeros(n)
    A = np.zeros((n, n))
    R = np.zeros((n, n))
    NC = np.zeros((n, n))
    numev = np.zeros(n)
    mct = b > threshold
    da = np.zeros(t.size)
    active = np.ones(t.size, bool)
    ka = k * alpha
    c = 1.0 - ka
    t_last = None
    next_sample = 0.0
    for jt in range(t.size):
        tj, je = t[jt], ev[jt]
        g = np.exp(-1.0 / Tv[jt])
        if t_last is not None:
            # baseline sampling ticks in [t_last, tj): Mi follows E_i(s) = E0 * g^(s - t_last)
            if next_sample < tj:
                N = int(np.ceil((tj - next_sample) / sampling_interval - 1e-12))
                h = g ** sampling_interval
                e1 = E0 * g ** (next_sample - t_last)
                geo = N * c ** (N - 1) if abs(c - h) < 1e-15 else (c ** N - h ** N) / (c - h)
                Mi = c ** N * Mi + ka * e1 * geo
                next_sample += N * sampling_interval
            dt = tj - t_last
            decay = g ** dt
            E0 *= decay
            Delta *= decay
            Eij *= decay
        else:
            while next_sample < tj:
                next_sample += sampling_interval
        t_last = tj
        if je in om_of and not om_active[je]:
            active[jt] = False
            continue                                    # omission state not yet recognised
        E0[je] += 1.0
        numev[je] += 1
        Delta[je] = 1.0
        Eij[je] += 1.0
        A[je, :] = 0.0
        if mct[je]:
            Mij[:, je] += alpha * (Eij - Mij[:, je])
        seen = numev > 0
        PRC = Mij - Mi[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            SRC = np.where(Mi[:, None] > 0, PRC * Mi[None, :] / Mi[:, None], 0.0)
        SRC[Mi / Tv[jt] < minimum_rate, :] = 0.0
        PRC[~seen, :] = 0.0
        PRC[:, ~seen] = 0.0
        SRC[~seen, :] = 0.0
        SRC[:, ~seen] = 0.0
        R[:, ~seen] = 0.0
        R[~seen, :] = 0.0
        NC = w * SRC + (1.0 - w) * PRC
        edge = NC > threshold                           # edge[i, j]: i is a meaningful cause of j
        np.fill_diagonal(edge, False)
        if je in rew_to_om and edge[:, je].any():
            om_active[rew_to_om[je]] = True
        R[je, je] = mag[jt]
        for ke in range(n):
            A[ke, :] = NC[ke, :] * R[ke, :] - (A * (Delta * edge[:, ke])[:, None]).sum(axis=0)
        da[jt] = np.sum(A[je, :] * mct)
        if je in om_of:
            R[je, om_of[je]] = R[om_of[je], om_of[je]]
            mct[je] = True
        mct[je] = mct[je] or (da[jt] + b[je] > threshold)
        if da[jt] >= 0:
            R[:, je] += alpha_r * (mag[jt] - R[:, je])
        elif edge[:, je].any():
            cause = edge[:, je]
            share = Delta[cause] / numev[cause]
            R[cause, je] -= alpha_r * R[cause, je] * share / share.sum()
    out_da = np.empty_like(da)
    out_da[order] = da
    out_active = np.empty_like(active)
    out_active[order] = active
    return {"da": out_da, "active": out_active, "order": order, "labels": labels, "nc": NC, "anccr": A, "R": R,
            "mct": mct,
            "T": Tv if np.ndim(T) else float(T)}


def cue_reward_events(n_trials: int, rng: np.random.Generator, *, p_reward: float = 1.0,
                      mean_iti: float = 30.0, max_iti: float | None = None, delay: float = 1.0,
                      post_delay: float = 0.0, magnitude: float = 1.0, omission: bool = True) -> dict:
    """A cue-reward conditioning event stream as in the reference simulations.

    Each trial: exponential ITI (mean ``mean_iti``, capped at ``max_iti``, default 3x the mean), cue, and
    after ``delay`` s a reward with probability ``p_reward`` (else an omission event if ``omission``).
    Returns ``{"ids", "times", "magnitudes", "trial"}`` with labels "cue", "reward", "omission".
    """
    max_iti = 3 * mean_iti if max_iti is None else max_iti
    iti = np.minimum(rng.exponential(mean_iti, n_trials), max_iti)
    rewarded = rng.random(n_trials) < p_reward
    ids, times, mags, trial = [], [], [], []
    now = 0.0
    for i in range(n_trials):
        now += iti[i]
        ids.append("cue"); times.append(now); mags.append(0.0); trial.append(i)  # noqa: E702
        if rewarded[i] or omission:
            ids.append("reward" if rewarded[i] else "omission")
            times.append(now + delay); mags.append(magnitude if rewarded[i] else 0.0); trial.append(i)  # noqa: E702
        now += delay + post_delay
    return {"ids": np.array(ids, dtype=object), "times": np.array(times), "magnitudes": np.array(mags),
            "trial": np.array(trial)}


def random_rewards(n: int, mean_interval: float, rng: np.random.Generator, *, start: float = 0.0,
                   magnitude: float = 1.0) -> dict:
    """Uncued rewards at exponential intervals (the reference's background-reward sessions)."""
    times = start + np.cumsum(rng.exponential(mean_interval, n))
    return {"ids": np.array(["reward"] * n, dtype=object), "times": times,
            "magnitudes": np.full(n, float(magnitude)), "trial": np.full(n, -1)}


def concat_events(*streams: dict) -> dict:
    """Join event streams one after another (each shifted to start after the previous one ends).

    Trial numbers continue across streams; uncued events keep trial -1.
    """
    out = {key: [] for key in ("ids", "times", "magnitudes", "trial")}
    offset, n_trials = 0.0, 0
    for s in streams:
        trial = np.asarray(s["trial"])
        out["ids"].append(s["ids"])
        out["magnitudes"].append(s["magnitudes"])
        out["times"].append(s["times"] + offset)
        out["trial"].append(np.where(trial >= 0, trial + n_trials, -1))
        offset += float(np.max(s["times"])) if len(s["times"]) else 0.0
        n_trials += int(trial.max()) + 1 if np.any(trial >= 0) else 0
    return {key: np.concatenate(v) for key, v in out.items()}


def anccr_trial_responses(cue, cue_time, outcome_time, reward, *, rng: np.random.Generator | None = None,
                          T=None, omission: bool = True, **params) -> dict:
    """Per-trial ANCCR responses at cue and outcome for a trials table (DESIGN.md section 3 columns).

    Each trial contributes a cue event (labelled by its cue, compounds as given) at ``cue_time`` and at
    ``outcome_time`` a "reward" event of size ``reward`` (or an "omission" event when ``reward`` is 0).
    Uncued trials (``cue_time`` NaN or an empty cue) give only their outcome event (cue value NaN).
    ``T`` defaults to ``t_ratio`` x the mean inter-reward interval.  Returns ``{"cue": (trials,),
    "outcome": (trials,)}`` DA values (NaN where the outcome is an omission not yet recognised), to be
    fitted through the same linear dopamine readout (``b0 + b1 * signal``) as RW/TD.
    """
    cue = np.asarray(cue, dtype=object).ravel()
    ct = np.asarray(cue_time, float).ravel()
    ot = np.asarray(outcome_time, float).ravel()
    r = np.asarray(reward, float).ravel()
    n = cue.size
    if not (ct.size == ot.size == r.size == n):
        raise InputError("ANCCR trials: cue, cue_time, outcome_time and reward need one value per trial")
    bad = [name for name, a in (("outcome_time", ot), ("reward", r)) if not np.all(np.isfinite(a))]
    if bad:
        raise InputError(f"ANCCR trials: non-finite values in {', '.join(bad)}")
    # uncued trials (no cue time, or an empty cue as dopa_rl.neural.tables.prepare_trials marks them) have
    # no cue event: only their outcome enters the stream, and their cue value is NaN
    cued = np.isfinite(ct) & np.array([c is not None and str(c) != "" for c in cue], bool)
    if not cued.any():
        raise InputError("ANCCR trials: no trial has a cue (cue_time all missing)")
    cues = ["cue:" + str(c) for c in cue[cued]]
    out_ids = ["reward" if x > 0 else "omission" for x in r]
    keep_out = np.array([omission or x > 0 for x in r])
    ids = np.array(cues + [o for o, k in zip(out_ids, keep_out) if k], dtype=object)
    times = np.concatenate([ct[cued], ot[keep_out]])
    mags = np.concatenate([np.zeros(int(cued.sum())), r[keep_out]])
    res = anccr_simulate(ids, times, mags, beta={"reward": 1.0}, T=T, rng=rng,
                         omission={"omission": "reward"} if omission else None, **params)
    da = np.where(res["active"], res["da"], np.nan)
    n_cued = int(cued.sum())
    cue_da = np.full(n, np.nan)
    cue_da[cued] = da[:n_cued]
    outcome = np.full(n, np.nan)
    outcome[keep_out] = da[n_cued:]
    return {"cue": cue_da, "outcome": outcome}


def _linear_profile(x, y):
    """Gaussian profile log-likelihood of ``y = b0 + b1 * x + noise`` (b0, b1, sigma in closed form)."""
    n = y.size
    xc, yc = x - x.mean(), y - y.mean()
    sxx = xc @ xc
    b1 = (xc @ yc) / sxx if sxx > 0 else 0.0
    b0 = y.mean() - b1 * x.mean()
    rss = max(float(np.sum((yc - b1 * xc) ** 2)), 1e-300)
    return -0.5 * n * (np.log(2 * np.pi * rss / n) + 1.0), b0, b1, np.sqrt(rss / n)


def _per_event_profile(sim, yc, yo):
    """The neural fits' readout (:func:`dopa_rl.models.dopamine.profile_loglik`): cue and outcome each with
    their own ``b0, b1, sigma``; an event with fewer than 3 responses adds nothing.  A model value missing
    where a response exists (an omission ANCCR does not yet recognise: no event, so no DA) counts as 0, so
    every finite response is an observation, as in the RW/TD fits."""
    from dopa_rl.models.dopamine import profile_loglik

    ll, readout, n_events = 0.0, {}, 0
    for ev, y in (("cue", yc), ("outcome", yo)):
        x = np.where(np.isfinite(y), np.nan_to_num(sim[ev], nan=0.0), np.nan)
        if np.isfinite(y).sum() < 3:
            continue
        prof = profile_loglik(x, y)
        ll += float(prof.loglik)
        n_events += 1
        readout[ev] = {"b0": float(prof.b0), "b1": float(prof.b1), "sigma": float(prof.sigma)}
    return ll, readout, n_events


def fit_anccr_responses(cue, cue_time, outcome_time, reward, cue_response, outcome_response, *,
                        grid: dict | None = None, seed: int = 0, readout: str = "shared", **fixed) -> dict:
    """Fit ANCCR to per-trial dopamine responses through the linear readout ``b0 + b1 * DA``.

    ``cue_response`` / ``outcome_response``: the measured response per trial (NaN where missing; the
    outcome of an omission the model has not yet recognised is skipped too).  ``grid``: candidate values
    per ANCCR parameter (default ``{"t_ratio": [0.6, 1.2, 2.4, 4.8], "alpha": [0.005, 0.01, 0.02, 0.05,
    0.1], "alpha_r": [0.1, 0.2, 0.5]}``); ``fixed`` parameters are passed through.  Every grid point is
    simulated with the same jitter seed and ``b0, b1, sigma`` are profiled out in closed form (Gaussian
    noise), so the search is over the learning parameters only.  Returns ``{"params", "b0", "b1",
    "sigma", "loglik", "n_obs", "n_params" (grid parameters + 3), "aic", "bic", "grid": list of
    (params, loglik)}``.

    ``readout="per_event"``: the readout of the RW/TD neural fits instead (``fit_dopamine``,
    ``dopa-rl compare --signal``): cue and outcome each with their own ``b0, b1, sigma`` (then ``b0``,
    ``b1``, ``sigma`` are ``{"cue": .., "outcome": ..}``, ``n_params`` = grid parameters + 3 per event), and
    an unrecognised omission's outcome is the model value 0 rather than skipped, so ``n_obs`` is the number
    of finite responses, the same as the RW/TD fits of those responses.
    """
    if readout not in ("shared", "per_event"):
        raise InputError(f"ANCCR fit: readout {readout!r}: use shared or per_event")
    grid = {"t_ratio": [0.6, 1.2, 2.4, 4.8], "alpha": [0.005, 0.01, 0.02, 0.05, 0.1],
            "alpha_r": [0.1, 0.2, 0.5]} if grid is None else grid
    yc = np.asarray(cue_response, float).ravel()
    yo = np.asarray(outcome_response, float).ravel()
    if yc.size != np.size(cue) or yo.size != np.size(cue):
        raise InputError("ANCCR fit: one cue and one outcome response per trial are needed")
    bad = sorted(set(grid) - set(ANCCR_DEFAULTS))
    if bad:
        raise InputError(f"ANCCR fit: unknown parameter(s) {', '.join(bad)}; choose from {', '.join(ANCCR_DEFAULTS)}")
    names = list(grid)
    mesh = np.array(np.meshgrid(*[np.asarray(grid[k], float) for k in names], indexing="ij")).reshape(len(names), -1).T
    results, best = [], None
    for row in mesh:
        params = {**fixed, **dict(zip(names, row.tolist()))}
        sim = anccr_trial_responses(cue, cue_time, outcome_time, reward, rng=np.random.default_rng(seed), **params)
        if readout == "per_event":
            ll, ro, n_events = _per_event_profile(sim, yc, yo)
            if n_events == 0:
                raise InputError("ANCCR fit: fewer than 3 responses at both the cue and the outcome")
            results.append((dict(zip(names, row.tolist())), ll))
            if best is None or ll > best["loglik"]:
                best = {"params": dict(zip(names, row.tolist())), "b0": {e: v["b0"] for e, v in ro.items()},
                        "b1": {e: v["b1"] for e, v in ro.items()}, "sigma": {e: v["sigma"] for e, v in ro.items()},
                        "loglik": ll, "n_obs": int(np.isfinite(yc).sum() + np.isfinite(yo).sum()),
                        "n_readout": 3 * n_events}
            continue
        x = np.concatenate([sim["cue"], sim["outcome"]])
        y = np.concatenate([yc, yo])
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.sum() < 3:
            raise InputError("ANCCR fit: fewer than 3 trials with both a response and a model value")
        ll, b0, b1, sd = _linear_profile(x[ok], y[ok])
        results.append((dict(zip(names, row.tolist())), float(ll)))
        if best is None or ll > best["loglik"]:
            best = {"params": dict(zip(names, row.tolist())), "b0": float(b0), "b1": float(b1),
                    "sigma": float(sd), "loglik": float(ll), "n_obs": int(ok.sum()), "n_readout": 3}
    k = len(names) + best.pop("n_readout")
    best.update(n_params=k, aic=2 * k - 2 * best["loglik"], bic=k * np.log(best["n_obs"]) - 2 * best["loglik"],
                grid=results)
    return best


class ANCCRResponses:
    """ANCCR as a dopamine model for comparisons: its small learner interface (not :class:`Model`'s).

    ANCCR learns in continuous time from an event stream, so it does not pack trials nor take gradients: it
    fits each session's responses itself (:meth:`fit_responses`, a grid over its learning parameters with the
    RW/TD fits' per-event readout).  ``grid``: candidate values per parameter (``None``: the default grid of
    :func:`fit_anccr_responses`).
    """

    name = "anccr"
    description = "ANCCR (Jeong et al. 2022): retrospective causal learning; DA at each event"
    required_columns = ("cue_time", "outcome_time", "reward")
    param_names = tuple(ANCCR_DEFAULTS)

    def __init__(self, grid: dict | None = None) -> None:
        if grid is not None:
            bad = sorted(set(grid) - set(ANCCR_DEFAULTS))
            if bad:
                raise InputError(f"ANCCR grid: unknown parameter(s) {', '.join(bad)}; choose from "
                                 f"{', '.join(ANCCR_DEFAULTS)}")
        self.grid = None if grid is None else {k: [float(v) for v in vals] for k, vals in grid.items()}

    def options(self) -> dict:
        return {"grid": self.grid}

    def with_options(self, grid: dict | None = None) -> "ANCCRResponses":
        return ANCCRResponses(grid)

    def check_trials(self, trials, where: str = "") -> None:
        """InputError unless ``trials`` has usable event times and rewards."""
        from dopa_rl.models.base import require_event_columns

        require_event_columns(trials, f"model {self.name}", where)

    def fit_responses(self, trials, *, seed: int = 0) -> dict:
        """Fit one session (a trials table with ``cue``, ``cue_time``, ``outcome_time``, ``reward``,
        ``dopamine_cue``/``dopamine_outcome``): :func:`fit_anccr_responses` with ``readout="per_event"``."""
        import pandas as pd

        if "trial" in trials.columns:
            trials = trials.sort_values("trial", kind="stable")
        n = len(trials)
        cue = trials["cue"].to_numpy(object) if "cue" in trials.columns else np.full(n, "A", dtype=object)

        def col(name):
            return pd.to_numeric(trials[name], errors="coerce").to_numpy(float) if name in trials.columns \
                else np.full(n, np.nan)

        return fit_anccr_responses(cue, col("cue_time"), col("outcome_time"), col("reward"), col("dopamine_cue"),
                                   col("dopamine_outcome"), grid=self.grid, seed=seed, readout="per_event")
