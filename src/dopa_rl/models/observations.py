"""Observation models: how a learner's latent values and prediction errors meet the data.

Each observation model has both directions, written once and shared by simulation and fitting:

* :class:`SoftmaxChoice` — ``P(c) = (1 - epsilon) * softmax(beta * Q + kappa * [c == previous]) + epsilon / K``;
* :class:`PoissonLicks` — anticipatory licks ``~ Poisson(rate(b0 + b1 * V))`` with ``rate = exp`` up to
  ``exp(LOG_RATE_MAX)`` and linear beyond, in simulation and likelihood alike (:func:`safe_log_rate`);
* :class:`GaussianLicks` — lick rates (or any continuous vigour measure) ``~ Normal(b0 + b1 * V, sd)``;
* the dopamine readout ``response ~ b0 + b1 * delta + noise`` with its closed-form profile likelihood, and
  the forward model from RPEs to photometry and spikes (:mod:`dopa_rl.models.dopamine`, re-exported here).

The scalar functions (``choice_probs``, ``poisson_logpmf``, ``gaussian_logpdf``, ``safe_log_rate``) are
numba-compiled and are what the likelihood kernels in :mod:`dopa_rl.models.kernels` call per trial; the
classes are their array-level faces for simulation, tests and users.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from dopa_rl.errors import InputError
from dopa_rl.models.dopamine import (DopamineObservation, LinearReadout, ProfileFit, profile_loglik,
                                     profile_score, readout_loglik, rpe_impulses, simulate_photometry,
                                     simulate_spikes)

#: above this log rate (about 22000 licks per trial) the Poisson rate grows linearly, not exponentially
LOG_RATE_MAX = 10.0


# ------------------------------------------------------------------------------------ compiled scalars
@njit(cache=True, inline="always")
def safe_log_rate(eta):
    """The log of the Poisson rate used for a linear predictor ``eta``: the rate is ``exp(eta)`` up to
    ``exp(LOG_RATE_MAX)`` and grows linearly beyond (continuous, with a continuous slope), so neither
    simulation nor likelihood overflows and the likelihood keeps a gradient everywhere."""
    if eta <= LOG_RATE_MAX:
        return eta
    return LOG_RATE_MAX + math.log1p(eta - LOG_RATE_MAX)


@njit(cache=True)
def _safe_log_rate_array(eta):
    out = np.empty(eta.shape[0])
    for i in range(eta.shape[0]):
        out[i] = safe_log_rate(eta[i])
    return out


def log_rate(eta) -> np.ndarray:
    """:func:`safe_log_rate` over an array (any shape)."""
    eta = np.asarray(eta, dtype=float)
    return _safe_log_rate_array(np.ascontiguousarray(eta.ravel())).reshape(eta.shape)


@njit(cache=True, inline="always")
def poisson_logpmf(k, eta):
    """log Poisson(k | exp(safe_log_rate(eta)))."""
    lr = safe_log_rate(eta)
    return k * lr - math.exp(lr) - math.lgamma(k + 1.0)


@njit(cache=True, inline="always")
def gaussian_logpdf(y, mean, sd):
    """log Normal(y | mean, sd)."""
    z = (y - mean) / sd
    return -0.5 * z * z - math.log(sd) - 0.5 * math.log(2.0 * math.pi)


@njit(cache=True, inline="always")
def choice_probs(Q, prev, beta, kappa, eps, p):
    """Fill ``p`` with P(option) = (1 - eps) * softmax(beta*Q + kappa*[option == prev]) + eps / K.

    Returns log-sum-exp of the logits, so ``logit_c - lse`` is log softmax_c even where ``p[c]`` underflows.
    """
    K = Q.shape[0]
    mx = -np.inf
    for k in range(K):
        v = beta * Q[k]
        if k == prev:
            v += kappa
        p[k] = v
        if v > mx:
            mx = v
    se = 0.0
    for k in range(K):
        p[k] = math.exp(p[k] - mx)
        se += p[k]
    for k in range(K):
        p[k] = (1.0 - eps) * p[k] / se + eps / K
    return mx + math.log(se)


@njit(cache=True, inline="always")
def choice_logp(Q, c, prev, beta, kappa, eps, p):
    """log P(choice c) under :func:`choice_probs` (``p`` is scratch, filled with the probabilities)."""
    lse = choice_probs(Q, prev, beta, kappa, eps, p)
    if eps > 0.0:
        return math.log(p[c])
    # log softmax from the logits: finite even when beta * (Q difference) makes p[c] underflow to 0
    return beta * Q[c] + (kappa if c == prev else 0.0) - lse


@njit(cache=True, inline="always")
def choice_draw(p, u):
    """The option chosen by a uniform ``u`` in [0, 1) from probabilities ``p`` (inverse CDF)."""
    K = p.shape[0]
    cum = 0.0
    for k in range(K - 1):
        cum += p[k]
        if u < cum:
            return k
    return K - 1


@njit(cache=True)
def _choice_rows(Q, choices, prev, beta, kappa, eps):
    N, K = Q.shape
    P = np.empty((N, K))
    logp = np.full(N, np.nan)
    for i in range(N):
        c = choices[i]
        if c >= 0:
            logp[i] = choice_logp(Q[i], c, prev[i], beta[i], kappa[i], eps[i], P[i])
        else:
            choice_probs(Q[i], prev[i], beta[i], kappa[i], eps[i], P[i])
    return P, logp


@njit(cache=True)
def _draw_rows(P, u):
    out = np.empty(P.shape[0], np.int64)
    for i in range(P.shape[0]):
        out[i] = choice_draw(P[i], u[i])
    return out


# ---------------------------------------------------------------------------------------- array faces
def _rows(q, *scalars, ints=()):
    q = np.atleast_2d(np.asarray(q, dtype=float))
    n = q.shape[0]
    out = [np.ascontiguousarray(np.broadcast_to(np.asarray(v, dtype=float), (n,))) for v in scalars]
    out += [np.ascontiguousarray(np.broadcast_to(np.asarray(v, dtype=np.int64), (n,))) for v in ints]
    return np.ascontiguousarray(q), out


class SoftmaxChoice:
    """The softmax choice rule with stickiness and lapse, over rows of option values ``q`` [N, K].

    ``beta``, ``kappa``, ``epsilon`` and ``prev`` (the previous choice, -1 for none) broadcast to the N rows.
    The fitting kernels of every choice model call the same compiled :func:`choice_probs`.
    """

    name = "softmax"

    @staticmethod
    def probabilities(q, beta, kappa=0.0, epsilon=0.0, prev=-1) -> np.ndarray:
        q, (b, k, e, pv) = _rows(q, beta, kappa, epsilon, ints=(prev,))
        return _choice_rows(q, np.full(q.shape[0], -1, np.int64), pv, b, k, e)[0]

    @staticmethod
    def loglik(q, choices, beta, kappa=0.0, epsilon=0.0, prev=-1) -> np.ndarray:
        """log P of each row's choice [N] (NaN where the choice is -1: a missed trial)."""
        q, (b, k, e, pv, c) = _rows(q, beta, kappa, epsilon, ints=(prev, choices))
        if (c >= q.shape[1]).any():
            raise InputError(f"choice {int(c.max())} is out of range for {q.shape[1]} options")
        return _choice_rows(q, c, pv, b, k, e)[1]

    @staticmethod
    def simulate(q, beta, rng: np.random.Generator, kappa=0.0, epsilon=0.0, prev=-1) -> np.ndarray:
        """One choice per row, drawn with ``rng``."""
        P = SoftmaxChoice.probabilities(q, beta, kappa, epsilon, prev)
        return _draw_rows(P, rng.random(P.shape[0]))


class PoissonLicks:
    """Anticipatory lick counts ``~ Poisson(exp(safe_log_rate(intercept + slope * value)))``."""

    name = "poisson"

    @staticmethod
    def rate(value, intercept, slope) -> np.ndarray:
        return np.exp(log_rate(intercept + slope * np.asarray(value, dtype=float)))

    @staticmethod
    def loglik(licks, value, intercept, slope) -> np.ndarray:
        """Log-likelihood of each count (NaN counts give NaN: unobserved)."""
        k = np.asarray(licks, dtype=float)
        lr = log_rate(intercept + slope * np.asarray(value, dtype=float))
        from scipy.special import gammaln

        return k * lr - np.exp(lr) - gammaln(k + 1.0)

    @staticmethod
    def simulate(value, intercept, slope, rng: np.random.Generator) -> np.ndarray:
        return rng.poisson(PoissonLicks.rate(value, intercept, slope))


class GaussianLicks:
    """Lick rates (or another continuous response) ``~ Normal(intercept + slope * value, sd)``."""

    name = "gaussian"

    @staticmethod
    def loglik(licks, value, intercept, slope, sd) -> np.ndarray:
        y = np.asarray(licks, dtype=float)
        z = (y - (intercept + slope * np.asarray(value, dtype=float))) / sd
        return -0.5 * z * z - np.log(sd) - 0.5 * np.log(2 * np.pi)

    @staticmethod
    def simulate(value, intercept, slope, sd, rng: np.random.Generator) -> np.ndarray:
        mean = intercept + slope * np.asarray(value, dtype=float)
        return mean + sd * rng.standard_normal(np.shape(mean))


LICK_MODELS = {"poisson": PoissonLicks, "gaussian": GaussianLicks}

__all__ = ["SoftmaxChoice", "PoissonLicks", "GaussianLicks", "LICK_MODELS", "LOG_RATE_MAX",
           "safe_log_rate", "log_rate", "poisson_logpmf", "gaussian_logpdf", "choice_probs", "choice_logp", "choice_draw",
           "DopamineObservation", "LinearReadout", "ProfileFit", "profile_loglik", "profile_score",
           "readout_loglik", "rpe_impulses", "simulate_photometry", "simulate_spikes"]
