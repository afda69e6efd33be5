"""Compiled linear TD over belief states: the hot path of the belief-state TD model (docs/belief-td.md).

The beliefs of every trial type are computed once per packed table (:mod:`dopa_rl.models.belief_filter`,
they do not depend on the learning parameters); these kernels run the TD recursion of Starkweather et al.
(2017) over them, ``delta = r + gamma * w . b' - w . b`` and ``w += alpha * delta * b``, lane by lane in
parallel (``numba.prange``) and trial by trial within a lane.  The per-trial maths is written once, in
:func:`_belief_trial`, shared by the likelihood, the prediction errors, the trajectories and the online
learner.

Belief TD parameters (``theta`` columns): alpha, gamma, lick_intercept, lick_slope.  Feature ``iti`` is the
ITI state's weight; ``iti_bins`` ITI bins between two trial windows are run in closed form (belief on the ITI
alone, each bin ``w_iti *= 1 - alpha * (1 - gamma)``, errors not reported).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from dopa_rl.models.observations import poisson_logpmf as _poisson_logpmf

__all__ = ["BELIEF_COLS", "PARALLEL_MIN_LANES", "belief_trial", "belief_trajectory", "belief_lick_loglik",
           "belief_rpe_lanes"]

BELIEF_COLS = ("alpha", "gamma", "lick_intercept", "lick_slope")

#: below this many lanes the serial driver wins (thread start-up costs more than the work)
PARALLEL_MIN_LANES = 32


@njit(cache=True, inline="always")
def _belief_trial(w, phi, outcome_bin, r, alpha, gamma, iti_bins, iti, rpe_out, v_out):
    """One trial of linear TD(0) over beliefs ``phi`` [n_bins, F] (row t: the belief after bin t's observation).

    The trial is entered from the ITI (belief on feature ``iti`` alone) after ``iti_bins`` ITI bins.
    ``rpe_out[t]``: the error on entering bin t; ``v_out[t]``: the value of bin t's belief before its update."""
    n_bins, F = phi.shape
    if iti_bins > 0:
        w[iti] *= (1.0 - alpha * (1.0 - gamma)) ** iti_bins
    v_prev = w[iti]
    for t in range(n_bins):
        v = 0.0
        for f in range(F):
            v += w[f] * phi[t, f]
        v_out[t] = v
        delta = (r if t == outcome_bin else 0.0) + gamma * v - v_prev
        rpe_out[t] = delta
        if t == 0:
            w[iti] += alpha * delta
        else:
            for f in range(F):
                w[f] += alpha * delta * phi[t - 1, f]
        v_prev = 0.0
        for f in range(F):
            v_prev += w[f] * phi[t, f]


@njit(cache=True)
def belief_trial(w, phi, outcome_bin, r, alpha, gamma, iti_bins, iti, rpe_out, v_out):
    """:func:`_belief_trial` callable from Python (the online learner): updates ``w`` in place."""
    _belief_trial(w, phi, outcome_bin, r, alpha, gamma, iti_bins, iti, rpe_out, v_out)


@njit(cache=True)
def belief_trajectory(theta, phis, types, outcome_bins, rewards, resets, iti_bins, iti):
    """One subject: TD errors [T, n_bins] and values [T, n_bins] (``theta``: alpha, gamma)."""
    T = types.shape[0]
    n_bins, F = phis.shape[1], phis.shape[2]
    w = np.zeros(F)
    rpe = np.empty((T, n_bins))
    val = np.empty((T, n_bins))
    for t in range(T):
        if resets[t]:
            w[:] = 0.0
        _belief_trial(w, phis[types[t]], outcome_bins[t], rewards[t], theta[0], theta[1],
                      0 if resets[t] else iti_bins, iti, rpe[t], val[t])
    return rpe, val


@njit(cache=True)
def _lick_lane(th, s, phis, types, outcome_bins, cue_bins, rewards, licks, resets, n_trials, iti_bins, iti):
    """Poisson log-likelihood of subject ``s``'s anticipatory licks, rate exp(b0 + b1 * mean value of the
    bins from the cue to the outcome)."""
    n_bins, F = phis.shape[1], phis.shape[2]
    w = np.zeros(F)
    rpe = np.empty(n_bins)
    val = np.empty(n_bins)
    ll = 0.0
    for t in range(n_trials[s]):
        if resets[s, t]:
            w[:] = 0.0
        ob = outcome_bins[s, t]
        cb = cue_bins[s, t]
        _belief_trial(w, phis[types[s, t]], ob, rewards[s, t], th[0], th[1], 0 if resets[s, t] else iti_bins,
                      iti, rpe, val)
        k = licks[s, t]
        if k == k and ob > cb:
            vbar = 0.0
            for b in range(cb, ob):
                vbar += val[b]
            vbar /= ob - cb
            ll += _poisson_logpmf(k, th[2] + th[3] * vbar)
    return ll


@njit(parallel=True, cache=True)
def _lick_parallel(theta, lanes, phis, types, outcome_bins, cue_bins, rewards, licks, resets, n_trials, iti_bins, iti):
    out = np.empty(theta.shape[0])
    for i in prange(theta.shape[0]):
        out[i] = _lick_lane(theta[i], lanes[i], phis, types, outcome_bins, cue_bins, rewards, licks, resets,
                            n_trials, iti_bins, iti)
    return out


@njit(cache=True)
def _lick_serial(theta, lanes, phis, types, outcome_bins, cue_bins, rewards, licks, resets, n_trials, iti_bins, iti):
    out = np.empty(theta.shape[0])
    for i in range(theta.shape[0]):
        out[i] = _lick_lane(theta[i], lanes[i], phis, types, outcome_bins, cue_bins, rewards, licks, resets,
                            n_trials, iti_bins, iti)
    return out


def belief_lick_loglik(theta, lanes, phis, types, outcome_bins, cue_bins, rewards, licks, resets, n_trials,
                       iti_bins, iti):
    """Lick log-likelihood [L] per lane (``theta`` [L, 4], BELIEF_COLS; NaN lick counts skipped)."""
    kernel = _lick_parallel if theta.shape[0] >= PARALLEL_MIN_LANES else _lick_serial
    return kernel(np.ascontiguousarray(theta, dtype=np.float64), np.asarray(lanes, np.int64), phis, types,
                  outcome_bins, cue_bins, rewards, licks, resets, n_trials, int(iti_bins), int(iti))


@njit(parallel=True, cache=True)
def belief_rpe_lanes(theta, lanes, phis, types, outcome_bins, cue_bins, rewards, resets, n_trials, every_bin,
                     iti_bins, iti):
    """``theta`` [L, >= 2] (alpha, gamma): TD errors [L, T, n_bins] of every bin (``every_bin``), else [L, T, 2]
    of the cue bin and the outcome bin; NaN beyond each subject's trials."""
    L, T = theta.shape[0], types.shape[1]
    n_bins, F = phis.shape[1], phis.shape[2]
    out = np.full((L, T, n_bins if every_bin else 2), np.nan)
    for i in prange(L):
        s = lanes[i]
        w = np.zeros(F)
        rpe = np.empty(n_bins)
        val = np.empty(n_bins)
        for t in range(n_trials[s]):
            if resets[s, t]:
                w[:] = 0.0
            _belief_trial(w, phis[types[s, t]], outcome_bins[s, t], rewards[s, t], theta[i, 0], theta[i, 1],
                          0 if resets[s, t] else iti_bins, iti, rpe, val)
            if every_bin:
                out[i, t] = rpe
            else:
                out[i, t, 0] = rpe[cue_bins[s, t]]
                out[i, t, 1] = rpe[outcome_bins[s, t]]
    return out
