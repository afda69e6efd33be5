"""Compiled RPE recursions for many lanes at once: the cue and outcome RPE of every trial, per lane.

The per-trial maths is the models' own (``_pavlov_trial``, ``_td_trial`` in :mod:`dopa_rl.models.kernels`),
so these trajectories cannot disagree with simulation or the behaviour likelihoods.  Padding (trials beyond a
subject's ``n_trials``) is NaN.  numba's on-disk cache does not notice edits to those inlined functions:
after changing them, delete ``src/dopa_rl/fit/__pycache__/neural_kernels.*.nb[ci]`` as well as the models'
kernel caches (tests/test_neural_fit.py compares these RPEs with the models' own trajectories).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from dopa_rl.models.kernels import _pavlov_trial, _td_trial, rw_choice_trajectory

__all__ = ["rw_pavlovian_rpes", "td_rpes", "rw_choice_rpes"]


@njit(parallel=True, cache=True)
def rw_pavlovian_rpes(theta, lanes, X, rewards, resets, n_trials):
    """``theta`` [L, 2] (alpha_pos, alpha_neg): cue RPE (summed value of the cue) and outcome RPE [L, T]."""
    L, T, E = theta.shape[0], X.shape[1], X.shape[2]
    cue = np.full((L, T), np.nan)
    out = np.full((L, T), np.nan)
    for i in prange(L):
        s = lanes[i]
        V = np.zeros(E)
        for t in range(n_trials[s]):
            if resets[s, t]:
                V[:] = 0.0
            pred, delta = _pavlov_trial(V, X[s, t], rewards[s, t], theta[i, 0], theta[i, 1])
            cue[i, t] = pred
            out[i, t] = delta
    return cue, out


@njit(parallel=True, cache=True)
def td_rpes(theta, lanes, phis, types, outcome_bins, cue_bins, rewards, resets, n_trials):
    """``theta`` [L, 3] (alpha, gamma, lambda_): TD errors in the cue bin and the outcome bin [L, T]."""
    L, T = theta.shape[0], types.shape[1]
    n_bins, F = phis.shape[1], phis.shape[2]
    cue = np.full((L, T), np.nan)
    out = np.full((L, T), np.nan)
    for i in prange(L):
        s = lanes[i]
        w = np.zeros(F)
        e = np.zeros(F)
        rpe = np.empty(n_bins)
        val = np.empty(n_bins)
        for t in range(n_trials[s]):
            if resets[s, t]:
                w[:] = 0.0
            _td_trial(w, e, phis[types[s, t]], outcome_bins[s, t], rewards[s, t], theta[i, 0], theta[i, 1],
                      theta[i, 2], rpe, val)
            cue[i, t] = rpe[cue_bins[s, t]]
            out[i, t] = rpe[outcome_bins[s, t]]
    return cue, out


def rw_choice_rpes(theta6, lanes, choices, rewards, resets, n_trials, n_options):
    """Choice models: the chosen option's value at the cue and the outcome RPE [L, T] (NaN for missed trials)."""
    L, T = theta6.shape[0], choices.shape[1]
    cue = np.full((L, T), np.nan)
    out = np.full((L, T), np.nan)
    for i in range(L):
        s = int(lanes[i])
        n = int(n_trials[s])
        ch = choices[s, :n]
        q, _, rpe = rw_choice_trajectory(theta6[i], ch, rewards[s, :n], resets[s, :n], n_options)
        ok = ch >= 0
        cue[i, :n] = np.where(ok, q[np.arange(n), np.maximum(ch, 0)], np.nan)
        out[i, :n] = np.where(ok, rpe, np.nan)
    return cue, out
