"""Compiled drivers around a user's learning rule (``choice_model`` / ``pavlovian_model``).

The rule ``update(values, event, reward, theta)`` changes ``values`` in place after a trial; everything
else is here, compiled once per model with the rule inlined as a compile-time constant: lanes in parallel
(``prange``) over subjects x restarts x finite-difference points, session resets, missed trials, the
softmax with stickiness and lapse and the Poisson lick observation (the built-in models' own, from
:mod:`dopa_rl.models.observations`), simulation and trajectories.  Likelihood, trajectory and simulation call the same rule, so
they cannot disagree.  These kernels are closures and so are not cached on disk: each process compiles a
family model once, on its first use.

Theta rows: the learning parameters (``n_learn`` of them), then ``beta`` [, ``kappa``][, ``epsilon``] for a
choice model, or ``lick_intercept``, ``lick_slope`` for a Pavlovian one.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from dopa_rl.models.kernels import PARALLEL_MIN_LANES, _choice_draw, _choice_probs, _poisson_logpmf

__all__ = ["choice_kernels", "pavlovian_kernels"]


def choice_kernels(update, n_learn: int, sticky: bool, lapse: bool) -> dict:
    """``loglik(theta, lanes, choices, rewards, resets, n_trials, n_options, q0)``, ``trajectory`` and
    ``simulate`` kernels of a choice model whose learning rule is the compiled function ``update``."""
    NL = n_learn
    STICKY = sticky
    LAPSE = lapse
    I_KAPPA = NL + 1
    I_EPS = NL + 1 + (1 if sticky else 0)

    @njit
    def _lane(th, s, choices, rewards, resets, n_trials, K, q0):
        learn = th[:NL]
        beta = th[NL]
        kappa = th[I_KAPPA] if STICKY else 0.0
        eps = th[I_EPS] if LAPSE else 0.0
        Q = np.full(K, q0)
        p = np.empty(K)
        prev = -1
        ll = 0.0
        for t in range(n_trials[s]):
            if resets[s, t]:
                for k in range(K):
                    Q[k] = q0
                prev = -1
            c = choices[s, t]
            if c < 0:
                continue
            lse = _choice_probs(Q, prev, beta, kappa, 0.0, p)
            logp = beta * Q[c] + (kappa if c == prev else 0.0) - lse   # log softmax from the logits
            if eps > 0.0:
                ll += math.log((1.0 - eps) * math.exp(logp) + eps / K)
            else:
                ll += logp
            update(Q, c, rewards[s, t], learn)
            prev = c
        return ll

    @njit(parallel=True)
    def _parallel(theta, lanes, choices, rewards, resets, n_trials, K, q0):
        out = np.empty(theta.shape[0])
        for i in prange(theta.shape[0]):
            out[i] = _lane(theta[i], lanes[i], choices, rewards, resets, n_trials, K, q0)
        return out

    @njit
    def _serial(theta, lanes, choices, rewards, resets, n_trials, K, q0):
        out = np.empty(theta.shape[0])
        for i in range(theta.shape[0]):
            out[i] = _lane(theta[i], lanes[i], choices, rewards, resets, n_trials, K, q0)
        return out

    def loglik(theta, lanes, choices, rewards, resets, n_trials, n_options, q0):
        kernel = _parallel if theta.shape[0] >= PARALLEL_MIN_LANES else _serial
        return kernel(theta, lanes, choices, rewards, resets, n_trials, n_options, q0)

    @njit
    def step(Q, c, r, learn):
        """One trial (the online learner's step too): returns ``r - Q[c]`` before ``update`` changes Q."""
        delta = r - Q[c]
        update(Q, c, r, learn)
        return delta

    @njit
    def trajectory(th, choices, rewards, resets, K, q0):
        """Q before each trial [T, K], P(choice) [T, K], RPE r - Q[chosen] before the update [T]."""
        T = choices.shape[0]
        learn = th[:NL]
        beta = th[NL]
        kappa = th[I_KAPPA] if STICKY else 0.0
        eps = th[I_EPS] if LAPSE else 0.0
        Q = np.full(K, q0)
        p = np.empty(K)
        q_out = np.full((T, K), np.nan)
        p_out = np.full((T, K), np.nan)
        rpe = np.full(T, np.nan)
        prev = -1
        for t in range(T):
            if resets[t]:
                for k in range(K):
                    Q[k] = q0
                prev = -1
            q_out[t] = Q
            _choice_probs(Q, prev, beta, kappa, eps, p)
            p_out[t] = p
            c = choices[t]
            if c < 0:
                continue
            rpe[t] = step(Q, c, rewards[t], learn)
            prev = c
        return q_out, p_out, rpe

    @njit
    def simulate(th, reward_probs, reward_sizes, resets, u_choice, u_reward, q0):
        """choices [T], rewards [T], Q [T, K], P [T, K], RPE [T] from the caller's uniforms (seeded)."""
        T, K = reward_probs.shape
        learn = th[:NL]
        beta = th[NL]
        kappa = th[I_KAPPA] if STICKY else 0.0
        eps = th[I_EPS] if LAPSE else 0.0
        Q = np.full(K, q0)
        choices = np.empty(T, np.int64)
        rewards = np.empty(T)
        q_out = np.empty((T, K))
        p_out = np.empty((T, K))
        rpe = np.empty(T)
        prev = -1
        for t in range(T):
            if resets[t]:
                for k in range(K):
                    Q[k] = q0
                prev = -1
            q_out[t] = Q
            _choice_probs(Q, prev, beta, kappa, eps, p_out[t])
            c = _choice_draw(p_out[t], u_choice[t])
            r = reward_sizes[t] if u_reward[t] < reward_probs[t, c] else 0.0
            choices[t] = c
            rewards[t] = r
            rpe[t] = r - Q[c]
            update(Q, c, r, learn)
            prev = c
        return choices, rewards, q_out, p_out, rpe

    return {"loglik": loglik, "trajectory": trajectory, "simulate": simulate, "serial": _serial, "step": step}


def pavlovian_kernels(update, n_learn: int) -> dict:
    """``loglik(theta, lanes, X, rewards, licks, resets, n_trials)`` and ``trajectory`` kernels of a Pavlovian
    model with learning rule ``update(V, x, reward, theta)`` (``x`` the presence of each cue element)."""
    NL = n_learn

    @njit
    def _lane(th, s, X, rewards, licks, resets, n_trials):
        learn = th[:NL]
        b0 = th[NL]
        b1 = th[NL + 1]
        E = X.shape[2]
        V = np.zeros(E)
        ll = 0.0
        for t in range(n_trials[s]):
            if resets[s, t]:
                for e in range(E):
                    V[e] = 0.0
            pred = 0.0
            for e in range(E):
                pred += V[e] * X[s, t, e]
            k = licks[s, t]
            if k == k:  # not NaN
                ll += _poisson_logpmf(k, b0 + b1 * pred)
            update(V, X[s, t], rewards[s, t], learn)
        return ll

    @njit(parallel=True)
    def _parallel(theta, lanes, X, rewards, licks, resets, n_trials):
        out = np.empty(theta.shape[0])
        for i in prange(theta.shape[0]):
            out[i] = _lane(theta[i], lanes[i], X, rewards, licks, resets, n_trials)
        return out

    @njit
    def _serial(theta, lanes, X, rewards, licks, resets, n_trials):
        out = np.empty(theta.shape[0])
        for i in range(theta.shape[0]):
            out[i] = _lane(theta[i], lanes[i], X, rewards, licks, resets, n_trials)
        return out

    def loglik(theta, lanes, X, rewards, licks, resets, n_trials):
        kernel = _parallel if theta.shape[0] >= PARALLEL_MIN_LANES else _serial
        return kernel(theta, lanes, X, rewards, licks, resets, n_trials)

    @njit
    def step(V, x, r, learn):
        """One trial (the online learner's step too): the summed prediction of the cues present and
        ``r - prediction``, then ``update`` changes V."""
        pv = 0.0
        for e in range(V.shape[0]):
            pv += V[e] * x[e]
        update(V, x, r, learn)
        return pv, r - pv

    @njit
    def trajectory(th, X, rewards, resets):
        """Values before each trial [T, E], summed prediction [T], RPE r - prediction [T]."""
        T, E = X.shape
        learn = th[:NL]
        V = np.zeros(E)
        v_out = np.empty((T, E))
        pred = np.empty(T)
        rpe = np.empty(T)
        for t in range(T):
            if resets[t]:
                for e in range(E):
                    V[e] = 0.0
            v_out[t] = V
            pred[t], rpe[t] = step(V, X[t], rewards[t], learn)
        return v_out, pred, rpe

    return {"loglik": loglik, "trajectory": trajectory, "serial": _serial, "step": step}
