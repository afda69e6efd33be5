"""Compiled recursions: the hot path of every likelihood.

RW and TD recursions are sequential in trials but independent across *lanes* (a lane is one parameter
vector applied to one subject's data: subjects x restarts x finite-difference points).  Each kernel
loops over lanes in parallel (``numba.prange``) and over trials inside a lane.  The per-trial maths is
written once, in the small ``_step`` functions, and shared by the likelihood, the trajectory and the
simulation kernels, so the three can never disagree.

Conventions
-----------
* Choice data: ``choices[s, t]`` is the 0-based option or -1 for a missed trial (no likelihood, no
  update); ``resets[s, t]`` is True on the first trial of a session (values return to ``q0``).
* Choice parameters (``theta`` columns): alpha_pos, alpha_neg, beta, kappa, epsilon, q0.
* Pavlovian parameters: alpha_pos, alpha_neg, lick_intercept, lick_slope.
* TD parameters: alpha, gamma, lambda_, lick_intercept, lick_slope.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

# the observation models' per-trial maths, written once (simulation and likelihood share them).
# numba's on-disk cache (cache=True) does not notice edits to these imported, inlined functions: after
# changing them in observations.py, delete src/dopa_rl/models/__pycache__/kernels.*.nb[ci] (the tests in
# tests/test_models_observations.py compare these kernels with the observation models and catch a stale cache)
from dopa_rl.models.observations import choice_draw as _choice_draw
from dopa_rl.models.observations import choice_probs as _choice_probs
from dopa_rl.models.observations import poisson_logpmf as _poisson_logpmf
from dopa_rl.models.observations import safe_log_rate as _safe_log_rate
from dopa_rl.models.observations import LOG_RATE_MAX as _LOG_RATE_MAX

__all__ = ["CHOICE_COLS", "PAVLOV_COLS", "TD_COLS", "PARALLEL_MIN_LANES", "rw_choice_loglik",
           "rw_choice_loglik_variant", "rw_choice_trajectory", "rw_choice_simulate", "rw_pavlovian_loglik", "rw_pavlovian_loglik_grad",
           "rw_pavlovian_trajectory",
           "td_trajectory", "td_lick_loglik"]

CHOICE_COLS = ("alpha_pos", "alpha_neg", "beta", "kappa", "epsilon", "q0")
PAVLOV_COLS = ("alpha_pos", "alpha_neg", "lick_intercept", "lick_slope")
TD_COLS = ("alpha", "gamma", "lambda_", "lick_intercept", "lick_slope")

# below PARALLEL_MIN_LANES lanes the serial driver wins (thread start-up costs more than the work); the
# specialised RW choice kernels are dispatched from dopa_rl.models.lanes (JIT or ahead of time)
from dopa_rl.models.lanes import PARALLEL_MIN_LANES, rw_choice_loglik_variant  # noqa: E402


# ---------------------------------------------------------------------------------------------- RW choice
@njit(cache=True, inline="always")
def _rw_update(Q, c, r, alpha_pos, alpha_neg):
    """Q[c] += alpha * (r - Q[c]) with alpha_pos for positive and alpha_neg for negative errors; returns delta."""
    delta = r - Q[c]
    if delta >= 0.0:
        Q[c] += alpha_pos * delta
    else:
        Q[c] += alpha_neg * delta
    return delta


@njit(cache=True)
def _rw_choice_lane(th, s, choices, rewards, resets, n_trials, n_options, g_row):
    """Log-likelihood of subject ``s``'s choices under ``th`` (CHOICE_COLS); gradient into ``g_row``.

    Forward mode: the derivatives of Q with respect to alpha_pos, alpha_neg and q0 travel with Q through
    the trials (beta, kappa and epsilon do not move Q), so the full gradient costs about one more pass.
    """
    ap, an, beta, kappa, eps, q0 = th[0], th[1], th[2], th[3], th[4], th[5]
    K = n_options
    Q = np.full(K, q0)
    dQa = np.zeros(K)      # dQ/d alpha_pos
    dQn = np.zeros(K)      # dQ/d alpha_neg
    dQ0 = np.ones(K)       # dQ/d q0
    p = np.empty(K)
    g0 = g1 = g2 = g3 = g4 = g5 = 0.0
    prev = -1
    ll = 0.0
    for t in range(n_trials[s]):
        if resets[s, t]:
            for k in range(K):
                Q[k] = q0
                dQa[k] = 0.0
                dQn[k] = 0.0
                dQ0[k] = 1.0
            prev = -1
        c = choices[s, t]
        if c < 0:
            continue
        lse = _choice_probs(Q, prev, beta, kappa, 0.0, p)
        # d log softmax_c = d logit_c - sum_k p_k d logit_k, with logit_k = beta Q_k + kappa [k == prev]
        ma = mn = m0 = mq = 0.0
        for k in range(K):
            ma += p[k] * dQa[k]
            mn += p[k] * dQn[k]
            m0 += p[k] * dQ0[k]
            mq += p[k] * Q[k]
        d0 = beta * (dQa[c] - ma)
        d1 = beta * (dQn[c] - mn)
        d2 = Q[c] - mq
        d3 = (1.0 if c == prev else 0.0) - (p[prev] if prev >= 0 else 0.0)
        d5 = beta * (dQ0[c] - m0)
        pc = p[c]
        if eps > 0.0:
            pl = (1.0 - eps) * pc + eps / K
            ll += math.log(pl)
            w = (1.0 - eps) * pc / pl
            g4 += (1.0 / K - pc) / pl
        else:
            # log softmax from the logits: finite even when beta * (Q difference) makes p[c] underflow to 0
            ll += beta * Q[c] + (kappa if c == prev else 0.0) - lse
            w = 1.0
        g0 += w * d0
        g1 += w * d1
        g2 += w * d2
        g3 += w * d3
        g5 += w * d5
        delta = _rw_update(Q, c, rewards[s, t], ap, an)
        a = ap if delta >= 0.0 else an
        dQa[c] *= 1.0 - a
        dQn[c] *= 1.0 - a
        dQ0[c] *= 1.0 - a
        if delta >= 0.0:
            dQa[c] += delta
        else:
            dQn[c] += delta
        prev = c
    g_row[0] = g0
    g_row[1] = g1
    g_row[2] = g2
    g_row[3] = g3
    g_row[4] = g4
    g_row[5] = g5
    return ll


@njit(parallel=True, cache=True)
def _rw_choice_loglik_parallel(theta, lanes, choices, rewards, resets, n_trials, n_options):
    ll = np.empty(theta.shape[0])
    g = np.empty((theta.shape[0], 6))
    for i in prange(theta.shape[0]):
        ll[i] = _rw_choice_lane(theta[i], lanes[i], choices, rewards, resets, n_trials, n_options, g[i])
    return ll, g


@njit(cache=True)
def _rw_choice_loglik_serial(theta, lanes, choices, rewards, resets, n_trials, n_options):
    ll = np.empty(theta.shape[0])
    g = np.empty((theta.shape[0], 6))
    for i in range(theta.shape[0]):
        ll[i] = _rw_choice_lane(theta[i], lanes[i], choices, rewards, resets, n_trials, n_options, g[i])
    return ll, g


def rw_choice_loglik(theta, lanes, choices, rewards, resets, n_trials, n_options):
    """Log-likelihood [L] of each lane's choices and its gradient [L, 6] (``theta`` is [L, 6], CHOICE_COLS)."""
    kernel = _rw_choice_loglik_parallel if theta.shape[0] >= PARALLEL_MIN_LANES else _rw_choice_loglik_serial
    return kernel(theta, lanes, choices, rewards, resets, n_trials, n_options)


@njit(cache=True)
def rw_choice_trajectory(theta, choices, rewards, resets, n_options):
    """One subject's fitted trajectories: Q before each trial [T, K], P(choice) [T, K], RPE [T]."""
    T = choices.shape[0]
    ap, an, beta, kappa, eps, q0 = theta[0], theta[1], theta[2], theta[3], theta[4], theta[5]
    Q = np.full(n_options, q0)
    p = np.empty(n_options)
    q_out = np.full((T, n_options), np.nan)
    p_out = np.full((T, n_options), np.nan)
    rpe = np.full(T, np.nan)
    prev = -1
    for t in range(T):
        if resets[t]:
            Q[:] = q0
            prev = -1
        q_out[t] = Q
        _choice_probs(Q, prev, beta, kappa, eps, p)
        p_out[t] = p
        c = choices[t]
        if c < 0:
            continue
        rpe[t] = _rw_update(Q, c, rewards[t], ap, an)
        prev = c
    return q_out, p_out, rpe


@njit(cache=True)
def rw_choice_simulate(theta, reward_probs, reward_sizes, resets, u_choice, u_reward):
    """Simulate a bandit: returns choices [T], rewards [T], Q [T, K], P [T, K], RPE [T].

    Randomness comes in as uniforms drawn by the caller's seeded generator, so a seed reproduces exactly.
    """
    T, K = reward_probs.shape
    ap, an, beta, kappa, eps, q0 = theta[0], theta[1], theta[2], theta[3], theta[4], theta[5]
    Q = np.full(K, q0)
    choices = np.empty(T, np.int64)
    rewards = np.empty(T)
    q_out = np.empty((T, K))
    p_out = np.empty((T, K))
    rpe = np.empty(T)
    prev = -1
    for t in range(T):
        if resets[t]:
            Q[:] = q0
            prev = -1
        q_out[t] = Q
        _choice_probs(Q, prev, beta, kappa, eps, p_out[t])
        c = _choice_draw(p_out[t], u_choice[t])
        r = reward_sizes[t] if u_reward[t] < reward_probs[t, c] else 0.0
        choices[t] = c
        rewards[t] = r
        rpe[t] = _rw_update(Q, c, r, ap, an)
        prev = c
    return choices, rewards, q_out, p_out, rpe


# -------------------------------------------------------------------------------------------- RW Pavlovian
@njit(cache=True, inline="always")
def _pavlov_trial(V, x, r, alpha_pos, alpha_neg):
    """Summed prediction of the present cues, then V[cue] += alpha * (r - prediction). Returns (pred, delta)."""
    pred = 0.0
    for e in range(V.shape[0]):
        pred += V[e] * x[e]
    delta = r - pred
    a = alpha_pos if delta >= 0.0 else alpha_neg
    for e in range(V.shape[0]):
        V[e] += a * delta * x[e]
    return pred, delta


@njit(cache=True)
def _rw_pavlovian_lane(th, s, X, rewards, licks, resets, n_trials):
    """Poisson log-likelihood of subject ``s``'s anticipatory licks, rate exp(b0 + b1 * summed cue value)."""
    V = np.zeros(X.shape[2])
    ll = 0.0
    for t in range(n_trials[s]):
        if resets[s, t]:
            V[:] = 0.0
        pred, _ = _pavlov_trial(V, X[s, t], rewards[s, t], th[0], th[1])
        k = licks[s, t]
        if k == k:  # not NaN
            ll += _poisson_logpmf(k, th[2] + th[3] * pred)
    return ll


@njit(parallel=True, cache=True)
def _rw_pavlovian_parallel(theta, lanes, X, rewards, licks, resets, n_trials):
    out = np.empty(theta.shape[0])
    for i in prange(theta.shape[0]):
        out[i] = _rw_pavlovian_lane(theta[i], lanes[i], X, rewards, licks, resets, n_trials)
    return out


@njit(cache=True)
def _rw_pavlovian_serial(theta, lanes, X, rewards, licks, resets, n_trials):
    out = np.empty(theta.shape[0])
    for i in range(theta.shape[0]):
        out[i] = _rw_pavlovian_lane(theta[i], lanes[i], X, rewards, licks, resets, n_trials)
    return out


def rw_pavlovian_loglik(theta, lanes, X, rewards, licks, resets, n_trials):
    """Lick log-likelihood [L] per lane (``theta`` [L, 4], PAVLOV_COLS; NaN lick counts skipped)."""
    kernel = _rw_pavlovian_parallel if theta.shape[0] >= PARALLEL_MIN_LANES else _rw_pavlovian_serial
    return kernel(theta, lanes, X, rewards, licks, resets, n_trials)


@njit(cache=True, error_model="numpy")
def _rw_pavlovian_grad_lane(th, s, X, rewards, licks, resets, n_trials, g_row):
    """:func:`_rw_pavlovian_lane` and its gradient in PAVLOV_COLS order into ``g_row`` (forward mode: the
    derivatives of V with respect to alpha_pos and alpha_neg travel with V through the trials)."""
    ap, an, b0, b1 = th[0], th[1], th[2], th[3]
    E = X.shape[2]
    V = np.zeros(E)
    dVa = np.zeros(E)
    dVn = np.zeros(E)
    ll = g0 = g1 = g2 = g3 = 0.0
    for t in range(n_trials[s]):
        if resets[s, t]:
            for e in range(E):
                V[e] = 0.0
                dVa[e] = 0.0
                dVn[e] = 0.0
        pred = pa = pn = 0.0
        for e in range(E):
            x = X[s, t, e]
            pred += V[e] * x
            pa += dVa[e] * x
            pn += dVn[e] * x
        k = licks[s, t]
        if k == k:  # not NaN
            eta = b0 + b1 * pred
            ll += _poisson_logpmf(k, eta)
            # d/d eta of k * lr - exp(lr), lr = safe_log_rate(eta)
            lr = _safe_log_rate(eta)
            w = (k - math.exp(lr)) * (1.0 if eta <= _LOG_RATE_MAX else 1.0 / (1.0 + eta - _LOG_RATE_MAX))
            g0 += w * b1 * pa
            g1 += w * b1 * pn
            g2 += w
            g3 += w * pred
        delta = rewards[s, t] - pred
        pos = delta >= 0.0
        a = ap if pos else an
        for e in range(E):
            x = X[s, t, e]
            V[e] += a * delta * x
            # d(a delta x)/d alpha = (da/d alpha) delta x - a x d pred/d alpha
            dVa[e] += ((delta if pos else 0.0) - a * pa) * x
            dVn[e] += ((0.0 if pos else delta) - a * pn) * x
    g_row[0] = g0
    g_row[1] = g1
    g_row[2] = g2
    g_row[3] = g3
    return ll


@njit(parallel=True, cache=True)
def _rw_pavlovian_grad_parallel(theta, lanes, X, rewards, licks, resets, n_trials):
    ll = np.empty(theta.shape[0])
    g = np.empty((theta.shape[0], 4))
    for i in prange(theta.shape[0]):
        ll[i] = _rw_pavlovian_grad_lane(theta[i], lanes[i], X, rewards, licks, resets, n_trials, g[i])
    return ll, g


@njit(cache=True)
def _rw_pavlovian_grad_serial(theta, lanes, X, rewards, licks, resets, n_trials):
    ll = np.empty(theta.shape[0])
    g = np.empty((theta.shape[0], 4))
    for i in range(theta.shape[0]):
        ll[i] = _rw_pavlovian_grad_lane(theta[i], lanes[i], X, rewards, licks, resets, n_trials, g[i])
    return ll, g


def rw_pavlovian_loglik_grad(theta, lanes, X, rewards, licks, resets, n_trials):
    """Lick log-likelihood [L] per lane and its gradient [L, 4] (``theta`` [L, 4], PAVLOV_COLS)."""
    kernel = _rw_pavlovian_grad_parallel if theta.shape[0] >= PARALLEL_MIN_LANES else _rw_pavlovian_grad_serial
    return kernel(np.ascontiguousarray(theta, dtype=float), lanes, X, rewards, licks, resets, n_trials)


@njit(cache=True)
def rw_pavlovian_trajectory(theta, X, rewards, resets):
    """Values before each trial [T, E], summed prediction [T] and outcome RPE [T] for one subject."""
    T, E = X.shape
    V = np.zeros(E)
    v_out = np.empty((T, E))
    pred = np.empty(T)
    rpe = np.empty(T)
    for t in range(T):
        if resets[t]:
            V[:] = 0.0
        v_out[t] = V
        pred[t], rpe[t] = _pavlov_trial(V, X[t], rewards[t], theta[0], theta[1])
    return v_out, pred, rpe


# -------------------------------------------------------------------------------------------------- TD
@njit(cache=True, inline="always")
def _td_trial(w, e, phi, outcome_bin, r, alpha, gamma, lam, rpe_out, v_out):
    """One trial of TD(lambda) over time bins with features ``phi`` [n_bins, F].

    The trial starts from a featureless pre-cue state (value 0).  ``rpe_out[t]`` is the error on
    entering bin t (so a cue response sits in the cue bin and a reward response in the outcome bin);
    ``v_out[t]`` is the value of bin t before this trial's updates reach it.  Returns nothing.
    """
    n_bins, F = phi.shape
    e[:] = 0.0
    v_prev = 0.0
    for t in range(n_bins):
        v = 0.0
        for f in range(F):
            v += w[f] * phi[t, f]
        v_out[t] = v
        if t == 0:
            # entering bin 0 from the pre-trial state (value 0): a cue shown at trial start responds here
            rpe_out[0] = (r if outcome_bin == 0 else 0.0) + gamma * v
            v_prev = v
            for f in range(F):
                e[f] = phi[t, f]
            continue
        rt = r if t == outcome_bin else 0.0
        delta = rt + gamma * v - v_prev
        rpe_out[t] = delta
        for f in range(F):
            w[f] += alpha * delta * e[f]
        # value of bin t after the update, then decay the trace and add the current features
        v_prev = 0.0
        for f in range(F):
            v_prev += w[f] * phi[t, f]
            e[f] = gamma * lam * e[f] + phi[t, f]


@njit(cache=True)
def td_trajectory(theta, phis, types, outcome_bins, rewards, resets):
    """Run TD for one subject: RPE [T, n_bins], value [T, n_bins] (before updates within the trial)."""
    T = types.shape[0]
    n_bins, F = phis.shape[1], phis.shape[2]
    w = np.zeros(F)
    e = np.zeros(F)
    rpe = np.empty((T, n_bins))
    val = np.empty((T, n_bins))
    for t in range(T):
        if resets[t]:
            w[:] = 0.0
        _td_trial(w, e, phis[types[t]], outcome_bins[t], rewards[t], theta[0], theta[1], theta[2], rpe[t], val[t])
    return rpe, val


@njit(cache=True)
def _td_lane(th, s, phis, types, outcome_bins, cue_bins, rewards, licks, resets, n_trials):
    """Poisson log-likelihood of subject ``s``'s anticipatory licks, rate exp(b0 + b1 * mean value from
    cue to outcome), under TD(lambda) with ``th`` in TD_COLS order."""
    n_bins, F = phis.shape[1], phis.shape[2]
    w = np.zeros(F)
    e = np.zeros(F)
    rpe = np.empty(n_bins)
    val = np.empty(n_bins)
    ll = 0.0
    for t in range(n_trials[s]):
        if resets[s, t]:
            w[:] = 0.0
        ob = outcome_bins[s, t]
        cb = cue_bins[s, t]
        _td_trial(w, e, phis[types[s, t]], ob, rewards[s, t], th[0], th[1], th[2], rpe, val)
        k = licks[s, t]
        if k == k and ob > cb:
            vbar = 0.0
            for b in range(cb, ob):
                vbar += val[b]
            vbar /= ob - cb
            ll += _poisson_logpmf(k, th[3] + th[4] * vbar)
    return ll


@njit(parallel=True, cache=True)
def _td_parallel(theta, lanes, phis, types, outcome_bins, cue_bins, rewards, licks, resets, n_trials):
    out = np.empty(theta.shape[0])
    for i in prange(theta.shape[0]):
        out[i] = _td_lane(theta[i], lanes[i], phis, types, outcome_bins, cue_bins, rewards, licks, resets, n_trials)
    return out


@njit(cache=True)
def _td_serial(theta, lanes, phis, types, outcome_bins, cue_bins, rewards, licks, resets, n_trials):
    out = np.empty(theta.shape[0])
    for i in range(theta.shape[0]):
        out[i] = _td_lane(theta[i], lanes[i], phis, types, outcome_bins, cue_bins, rewards, licks, resets, n_trials)
    return out


def td_lick_loglik(theta, lanes, phis, types, outcome_bins, cue_bins, rewards, licks, resets, n_trials):
    """Lick log-likelihood [L] per lane under TD (``theta`` [L, 5], TD_COLS)."""
    kernel = _td_parallel if theta.shape[0] >= PARALLEL_MIN_LANES else _td_serial
    return kernel(theta, lanes, phis, types, outcome_bins, cue_bins, rewards, licks, resets, n_trials)


# ------------------------------------------------------------------ prediction errors of many lanes at once
# the per-trial maths above (``_pavlov_trial``, ``_td_trial``), run for lanes of candidate parameters (the
# dopamine fits profile a readout on them); padding (trials beyond a subject's ``n_trials``) is NaN
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
def td_rpe_lanes(theta, lanes, phis, types, outcome_bins, cue_bins, rewards, resets, n_trials, every_bin):
    """``theta`` [L, 3] (alpha, gamma, lambda_): TD errors [L, T, n_bins] of every bin (``every_bin``), else
    [L, T, 2] of the cue bin and the outcome bin."""
    L, T = theta.shape[0], types.shape[1]
    n_bins, F = phis.shape[1], phis.shape[2]
    out = np.full((L, T, n_bins if every_bin else 2), np.nan)
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
            if every_bin:
                out[i, t] = rpe
            else:
                out[i, t, 0] = rpe[cue_bins[s, t]]
                out[i, t, 1] = rpe[outcome_bins[s, t]]
    return out
