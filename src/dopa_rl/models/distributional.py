"""Distributional (expectile) reinforcement learning, after Dabney et al. (2020), Nature 577:671.

Each dopamine unit ``i`` is a channel with its own value ``V_i`` and asymmetric learning rates::

    delta_i = r - V_i
    V_i    += alpha_pos_i * delta_i   if delta_i > 0   else   alpha_neg_i * delta_i

``V_i`` converges (in expectation) to the ``tau_i = alpha_pos_i / (alpha_pos_i + alpha_neg_i)`` expectile
of the reward distribution.  The unit's response to the outcome is its asymmetrically scaled error,
``gain * (alpha_pos * delta+ + alpha_neg * delta-)``, so the response crosses baseline at the unit's
expectile (the *reversal point*) with slopes proportional to ``alpha_pos`` above and ``alpha_neg`` below.

Pure numpy, vectorised over units (and over candidate parameters when fitting); the only loop is over
trials, which the recursion requires.
"""
from __future__ import annotations

import numpy as np

from dopa_rl.errors import InputError

__all__ = ["expectile", "simulate_distributional", "simulate_unit_responses", "fit_units"]


def expectile(samples, tau, weights=None, *, tol: float = 1e-12, max_iter: int = 200) -> np.ndarray:
    """The ``tau`` expectile(s) of a sample (or of a discrete distribution with ``weights``).

    Solves ``sum_j w_j |tau - 1[x_j < e]| (x_j - e) = 0`` by iteratively reweighted means (the
    asymmetric-least-squares fixed point, which is monotone and converges for 0 < tau < 1).
    ``tau`` may be an array; returns an array of the same shape.
    """
    x = np.asarray(samples, float).ravel()
    w = np.ones_like(x) if weights is None else np.asarray(weights, float).ravel()
    t = np.atleast_1d(np.asarray(tau, float))
    if x.size == 0 or w.shape != x.shape:
        raise InputError("expectile: samples must be non-empty and weights the same length")
    if np.any((t <= 0) | (t >= 1)):
        raise InputError("expectile: tau must lie strictly between 0 and 1")
    e = np.full(t.shape, np.sum(w * x) / np.sum(w))
    for _ in range(max_iter):
        above = x[None, :] > e[:, None]
        ww = w[None, :] * np.where(above, t[:, None], 1.0 - t[:, None])
        new = (ww @ x) / ww.sum(axis=1)
        if np.max(np.abs(new - e)) < tol:
            e = new
            break
        e = new
    return e.reshape(np.shape(tau))


def _check_rates(alpha_pos, alpha_neg):
    ap = np.atleast_1d(np.asarray(alpha_pos, float))
    an = np.atleast_1d(np.asarray(alpha_neg, float))
    ap, an = np.broadcast_arrays(ap, an)
    if np.any(~np.isfinite(ap)) or np.any(~np.isfinite(an)) or np.any(ap <= 0) or np.any(an <= 0) \
            or np.any(ap > 1) or np.any(an > 1):
        raise InputError("distributional model: alpha_pos and alpha_neg must lie in (0, 1]")
    return ap.astype(float), an.astype(float)


def simulate_distributional(alpha_pos, alpha_neg, rewards, v0=0.0) -> dict:
    """Run the expectile learners on a reward sequence.

    ``alpha_pos``, ``alpha_neg``: arrays of any common shape (units, or units x candidates);
    ``rewards``: 1-D array of outcomes (trials).  Returns ``{"values": (trials, *shape) value before
    each outcome, "rpe": (trials, *shape) r - V, "final": V after the last trial}``.
    """
    ap, an = _check_rates(alpha_pos, alpha_neg)
    r = np.asarray(rewards, float).ravel()
    if not np.all(np.isfinite(r)):
        raise InputError("distributional model: rewards must be finite")
    V = np.broadcast_to(np.asarray(v0, float), ap.shape).astype(float).copy()
    values = np.empty((r.size,) + ap.shape)
    for t, rt in enumerate(r):
        values[t] = V
        d = rt - V
        V += np.where(d > 0, ap, an) * d
    return {"values": values, "rpe": r.reshape((-1,) + (1,) * ap.ndim) - values, "final": V}


def simulate_unit_responses(alpha_pos, alpha_neg, rewards, rng: np.random.Generator, *, gain=1.0,
                            baseline=0.0, noise_sd=0.0, v0=0.0) -> dict:
    """Outcome responses of expectile units: ``baseline + gain * alpha(delta) * delta + noise``.

    Returns ``{"responses": (trials, units), "rpe", "values", "tau"}``; ``tau`` is each unit's
    ``alpha_pos / (alpha_pos + alpha_neg)``.
    """
    ap, an = _check_rates(alpha_pos, alpha_neg)
    sim = simulate_distributional(ap, an, rewards, v0)
    d = sim["rpe"]
    resp = np.asarray(baseline, float) + np.asarray(gain, float) * np.where(d > 0, ap, an) * d
    if noise_sd:
        resp = resp + rng.normal(0.0, 1.0, resp.shape) * np.asarray(noise_sd, float)
    return {"responses": resp, "rpe": d, "values": sim["values"], "tau": ap / (ap + an)}


def fit_units(rewards, responses, *, grid: int = 25, bounds=(0.005, 0.5), v0=0.0) -> dict:
    """Per-unit MLE of ``alpha_pos``, ``alpha_neg`` from outcome responses (Gaussian noise).

    Model: ``response_t = b0 + b1 * alpha(delta_t) * delta_t + noise``, with ``delta_t`` from the
    expectile learner; ``b0``, ``b1`` and the noise variance are profiled out in closed form, and the
    learning rates searched on a log grid (``grid`` x ``grid`` candidates shared by all units, all
    evaluated in one vectorised pass).  Returns per-unit arrays ``alpha_pos``, ``alpha_neg``, ``tau``,
    ``b0``, ``b1``, ``loglik``.
    """
    y = np.asarray(responses, float)
    if y.ndim == 1:
        y = y[:, None]
    r = np.asarray(rewards, float).ravel()
    if y.shape[0] != r.size:
        raise InputError(f"fit_units: {r.size} rewards but {y.shape[0]} response rows")
    if not np.all(np.isfinite(y)):
        raise InputError("fit_units: responses must be finite (drop trials with missing responses first)")
    g = np.geomspace(bounds[0], bounds[1], grid)
    ap, an = np.meshgrid(g, g, indexing="ij")
    ap, an = ap.ravel(), an.ravel()
    d = simulate_distributional(ap, an, r, v0)["rpe"]            # trials x candidates
    x = np.where(d > 0, ap, an) * d
    n = r.size
    xc = x - x.mean(axis=0)
    yc = y - y.mean(axis=0)                                       # trials x units
    sxx = np.sum(xc * xc, axis=0)                                 # candidates
    sxy = xc.T @ yc                                               # candidates x units
    syy = np.sum(yc * yc, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rss = syy[None, :] - np.where(sxx[:, None] > 0, sxy ** 2 / sxx[:, None], 0.0)
    rss = np.maximum(rss, 1e-300)
    best = np.argmin(rss, axis=0)
    units = np.arange(y.shape[1])
    b1 = sxy[best, units] / sxx[best]
    b0 = y.mean(axis=0) - b1 * x.mean(axis=0)[best]
    ll = -0.5 * n * (np.log(2 * np.pi * rss[best, units] / n) + 1.0)
    return {"alpha_pos": ap[best], "alpha_neg": an[best], "tau": ap[best] / (ap[best] + an[best]),
            "b0": b0, "b1": b1, "loglik": ll}
