"""Plain per-trial reference implementations, written independently of the package's kernels.

They are slow and obvious on purpose: the conformance tests check the vectorized, compiled likelihoods
against them.
"""
from __future__ import annotations

import math

import numpy as np


def rw_choice_loglik(choices, rewards, *, alpha_pos, alpha_neg, beta, kappa=0.0, epsilon=0.0, q0=0.0,
                     n_options=2, resets=None):
    q = [q0] * n_options
    prev = None
    ll = 0.0
    for t, (c, r) in enumerate(zip(choices, rewards)):
        if resets is not None and resets[t]:
            q = [q0] * n_options
            prev = None
        if c < 0:
            continue
        logits = [beta * q[k] + (kappa if prev == k else 0.0) for k in range(n_options)]
        z = sum(math.exp(v) for v in logits)
        p = math.exp(logits[c]) / z
        p = (1 - epsilon) * p + epsilon / n_options
        ll += math.log(p)
        d = r - q[c]
        q[c] += (alpha_pos if d >= 0 else alpha_neg) * d
        prev = c
    return ll


def rw_pavlovian_loglik(cues, rewards, licks, *, alpha_pos, alpha_neg, lick_intercept, lick_slope):
    v: dict[str, float] = {}
    ll = 0.0
    for cue, r, k in zip(cues, rewards, licks):
        elems = [e for e in cue.split("+") if e]
        pred = sum(v.get(e, 0.0) for e in elems)
        lam = math.exp(lick_intercept + lick_slope * pred)
        if not math.isnan(k):
            ll += k * math.log(lam) - lam - math.lgamma(k + 1)
        d = r - pred
        a = alpha_pos if d >= 0 else alpha_neg
        for e in elems:
            v[e] = v.get(e, 0.0) + a * d
    return ll


def td_csc_single_cue(rewards, *, alpha, gamma, lambda_, cue_bin, outcome_bin, n_bins):
    """TD(lambda) with a complete serial compound for one cue; returns rpe, value [T, n_bins]."""
    F = n_bins - cue_bin
    w = np.zeros(F)

    def x(t):
        f = np.zeros(F)
        if t >= cue_bin:
            f[t - cue_bin] = 1.0
        return f

    T = len(rewards)
    rpe = np.zeros((T, n_bins))
    val = np.zeros((T, n_bins))
    for i, r in enumerate(rewards):
        e = np.zeros(F)
        for t in range(n_bins):
            val[i, t] = w @ x(t)
            if t == 0:
                e = x(0)
                v_prev = w @ x(0)
                continue
            delta = (r if t == outcome_bin else 0.0) + gamma * (w @ x(t)) - v_prev
            rpe[i, t] = delta
            w = w + alpha * delta * e
            v_prev = w @ x(t)
            e = gamma * lambda_ * e + x(t)
    return rpe, val
