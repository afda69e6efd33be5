"""Dopamine observation models: RPEs seen in recordings, in both directions.

Forward (simulation):

* :class:`DopamineObservation` holds the ground truth of how RPEs show up in the recordings;
* :func:`simulate_photometry` — RPE impulses convolved with an indicator kernel (difference of
  exponentials, :func:`dopa_rl.models.indicator.diff_exp_kernel`), times photobleaching, plus a motion artifact shared with an
  isosbestic channel, plus Gaussian noise;
* :func:`simulate_spikes` — Poisson spikes with rate ``baseline + gain x RPE`` (clipped at 0), each RPE
  spread over a short phasic window.

Likelihood (fitting): the linear readout ``response_i ~ b0 + b1 * delta_i + Normal(0, sigma)``.
:func:`profile_loglik` solves ``b0``, ``b1`` and ``sigma`` in closed form (ordinary least squares; the
maximum-likelihood ``sigma^2 = RSS / n``) for every candidate set of learning parameters at once, so a
neural fit searches only the learning parameters.  The profile log-likelihood is

    ll(theta) = max_{b0, b1, sigma} sum_i log Normal(y_i | b0 + b1 delta_i(theta), sigma)
              = -n/2 * (log(2 pi RSS(theta) / n) + 1)

and, because the readout is at its optimum, its gradient with respect to each ``delta_i`` is simply
``b1 * residual_i / sigma^2`` (:func:`profile_score`; the envelope theorem), ready to be chained with the
forward-mode derivatives of the RPEs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dopa_rl.errors import InputError

__all__ = ["DopamineObservation", "PhotometrySignals", "rpe_impulses", "simulate_photometry", "simulate_spikes",
           "ProfileFit", "profile_loglik", "profile_score", "readout_loglik", "LinearReadout"]


# ------------------------------------------------------------------------------------------ forward model
@dataclass(frozen=True)
class DopamineObservation:
    """How RPEs show up in the recordings (the ground truth of the dopamine observation models).

    Photometry: ``dff = dff_per_rpe * (RPE impulses * kernel)``; kernel rises with ``tau_rise_s`` and decays
    with ``tau_decay_s`` (peak normalised to 1).  ``f0`` baseline fluorescence (V); bleaching loses
    ``bleach_fraction`` of it with time constant ``bleach_tau_s``; motion dips of ``motion_depth`` (fraction)
    occur at ``motion_rate_hz`` and hit both channels; ``noise_sd`` is the per-sample noise (V).
    Units: ``n_units`` cells with baseline rate ``baseline_hz`` and gains drawn around ``gain_hz`` (Hz per
    unit RPE), the RPE spread over ``burst_s`` seconds.
    """

    photometry_rate: float = 100.0
    dff_per_rpe: float = 0.05
    tau_rise_s: float = 0.06
    tau_decay_s: float = 0.45
    f0: float = 1.5
    control_f0: float = 1.2
    bleach_fraction: float = 0.25
    bleach_tau_s: float = 900.0
    motion_rate_hz: float = 1 / 60
    motion_depth: float = 0.03
    noise_sd: float = 0.002
    n_units: int = 4
    baseline_hz: float = 4.0
    gain_hz: float = 20.0
    burst_s: float = 0.2
    spike_resolution: float = 1.0 / 30000.0


@dataclass(frozen=True)
class PhotometrySignals:
    """A simulated two-channel recording: ``signal`` (470 nm), ``control`` (405 nm isosbestic) at ``rate`` Hz,
    and the true dF/F before bleaching, motion and noise (``dff``)."""

    timestamps: np.ndarray
    signal: np.ndarray
    control: np.ndarray
    dff: np.ndarray
    rate: float


def rpe_impulses(start_times: np.ndarray, rpe: np.ndarray, bin_s: float, t0: float, rate: float,
                 n_samples: int) -> np.ndarray:
    """RPE values placed on a regular grid (``t0 + i / rate``) at ``start_time + bin * bin_s``."""
    start_times = np.asarray(start_times, dtype=float)
    rpe = np.asarray(rpe, dtype=float)
    times = start_times[:, None] + np.arange(rpe.shape[1])[None, :] * bin_s
    idx = np.round((times - t0) * rate).astype(np.int64)
    ok = (idx >= 0) & (idx < n_samples) & (rpe != 0) & np.isfinite(rpe)
    out = np.zeros(n_samples)
    np.add.at(out, idx[ok], rpe[ok])
    return out


def simulate_photometry(start_times: np.ndarray, rpe: np.ndarray, bin_s: float, duration_s: float,
                        obs: DopamineObservation, rng: np.random.Generator) -> PhotometrySignals:
    """A two-channel recording driven by the RPE time course ``rpe`` [trials, bins of ``bin_s`` from each
    trial's start time]."""
    from scipy.signal import fftconvolve

    from dopa_rl.models.indicator import diff_exp_kernel

    rate = obs.photometry_rate
    n = int(np.floor(duration_s * rate)) + 1
    t = np.arange(n) / rate
    drive = rpe_impulses(start_times, rpe, bin_s, 0.0, rate, n)
    dff = obs.dff_per_rpe * fftconvolve(drive, diff_exp_kernel(rate, obs.tau_rise_s, obs.tau_decay_s, 6 * obs.tau_decay_s))[:n]
    bleach = 1.0 - obs.bleach_fraction * (1.0 - np.exp(-t / obs.bleach_tau_s))
    bleach_ctl = 1.0 - 0.8 * obs.bleach_fraction * (1.0 - np.exp(-t / (1.3 * obs.bleach_tau_s)))
    n_motion = rng.poisson(obs.motion_rate_hz * duration_s)
    onsets = np.zeros(n)
    if n_motion:
        np.add.at(onsets, rng.integers(0, n, n_motion), rng.uniform(0.5, 1.5, n_motion))
    motion = -obs.motion_depth * fftconvolve(onsets, diff_exp_kernel(rate, 0.1, 0.8, 6 * 0.8))[:n]
    signal = obs.f0 * bleach * (1.0 + dff + motion) + rng.normal(0.0, obs.noise_sd, n)
    control = obs.control_f0 * bleach_ctl * (1.0 + 0.9 * motion) + rng.normal(0.0, obs.noise_sd, n)
    return PhotometrySignals(t, signal, control, dff, rate)


def simulate_spikes(start_times: np.ndarray, rpe: np.ndarray, bin_s: float, duration_s: float,
                    obs: DopamineObservation, rng: np.random.Generator
                    ) -> tuple[dict[int, np.ndarray], pd.DataFrame]:
    """Poisson spike trains of ``obs.n_units`` dopamine cells whose rate is baseline + gain x RPE.

    Returns spike times by unit id (on the ``spike_resolution`` grid) and a per-unit table with the true
    ``baseline_hz`` and ``gain_hz``.
    """
    dt = 0.001
    n = int(np.ceil(duration_s / dt))
    drive = rpe_impulses(start_times, rpe, bin_s, 0.0, 1.0 / dt, n)
    width = max(1, int(round(obs.burst_s / dt)))
    # each RPE impulse becomes a boxcar of height RPE lasting burst_s
    spread = np.convolve(drive, np.ones(width), mode="full")[:n]
    gains = obs.gain_hz * rng.uniform(0.6, 1.4, obs.n_units)
    bases = obs.baseline_hz * rng.uniform(0.7, 1.3, obs.n_units)
    trains: dict[int, np.ndarray] = {}
    for u in range(obs.n_units):
        lam = np.clip(bases[u] + gains[u] * spread, 0.0, None) * dt
        counts = rng.poisson(lam)
        bins = np.repeat(np.arange(n), counts)
        times = (bins + rng.random(bins.size)) * dt
        times = np.round(times / obs.spike_resolution) * obs.spike_resolution
        trains[u] = np.unique(times)
    props = pd.DataFrame({"baseline_hz": bases, "gain_hz": gains}, index=list(trains))
    return trains, props


# -------------------------------------------------------------------------------------- linear readout
@dataclass(frozen=True)
class ProfileFit:
    """The closed-form readout of every lane: arrays of the lanes' shape (``delta`` without its last axis).

    ``loglik`` is NaN where a lane has fewer than 3 usable observations and +inf where the line fits
    exactly (sigma 0).  ``b1`` is 0 where a lane's deltas are constant (the slope is not identified).
    """

    loglik: np.ndarray
    b0: np.ndarray
    b1: np.ndarray
    sigma: np.ndarray
    n_obs: np.ndarray


def _masked(delta, response, mask):
    d, y = np.broadcast_arrays(np.asarray(delta, dtype=float), np.asarray(response, dtype=float))
    if d.ndim == 0:
        raise InputError("profile_loglik: delta and response need an observation axis (the last)")
    m = np.isfinite(d) & np.isfinite(y)
    if mask is not None:
        m &= np.broadcast_to(np.asarray(mask, dtype=bool), d.shape)
    return np.where(m, d, 0.0), np.where(m, y, 0.0), m


def profile_loglik(delta, response, mask=None) -> ProfileFit:
    """Gaussian log-likelihood of ``response ~ b0 + b1 * delta + noise`` maximised over ``b0, b1, sigma``.

    ``delta`` [..., n]: prediction errors of each candidate parameter set (lanes in the leading axes, e.g.
    [L, n] for L candidates); ``response`` [..., n] broadcasts against it (one recording [n] shared by every
    candidate).  Observations where either is NaN, or ``mask`` is False, are left out.  To give cue and
    outcome responses their own readouts, put them on a separate axis ([L, 2, n]) and sum ``loglik`` over
    it.  Pure numpy, one pass over the data per moment: thousands of candidates per call.
    """
    d, y, m = _masked(delta, response, mask)
    w = m.astype(float)
    n = w.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        nn = np.maximum(n, 1.0)
        xbar = d.sum(axis=-1) / nn
        ybar = y.sum(axis=-1) / nn
        xc = (d - xbar[..., None]) * w
        yc = (y - ybar[..., None]) * w
        sxx = np.einsum("...i,...i->...", xc, xc)
        sxy = np.einsum("...i,...i->...", xc, yc)
        scale = np.abs(d).max(axis=-1, initial=0.0)
        flat = sxx <= nn * (1e-12 * np.maximum(scale, 1e-300)) ** 2
        b1 = np.where(flat, 0.0, sxy / np.where(flat, 1.0, sxx))
        b0 = ybar - b1 * xbar
        res = yc - b1[..., None] * xc
        s2 = np.einsum("...i,...i->...", res, res) / nn
        ll = -0.5 * n * (np.log(2.0 * np.pi * s2) + 1.0)
    few = n < 3
    ll = np.where(few, np.nan, ll)
    return ProfileFit(loglik=ll, b0=np.where(few, np.nan, b0), b1=np.where(few, np.nan, b1),
                      sigma=np.where(few, np.nan, np.sqrt(s2)), n_obs=n.astype(np.int64))


def profile_score(delta, response, fit: ProfileFit, mask=None) -> np.ndarray:
    """d loglik / d delta_i [..., n] of the profile log-likelihood: ``b1 * residual_i / sigma^2`` (0 where
    an observation is left out).  Chain it with d delta / d theta for the gradient in the learning
    parameters; the readout's own derivatives vanish at its optimum."""
    d, y, m = _masked(delta, response, mask)
    b0, b1 = np.asarray(fit.b0)[..., None], np.asarray(fit.b1)[..., None]
    s2 = np.asarray(fit.sigma)[..., None] ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(m, b1 * (y - b0 - b1 * d) / s2, 0.0)


def readout_loglik(delta, response, b0, b1, sigma, mask=None) -> np.ndarray:
    """Gaussian log-likelihood of the responses at a given readout (summed over the last axis)."""
    d, y, m = _masked(delta, response, mask)
    b0, b1, sigma = (np.asarray(v, dtype=float)[..., None] for v in (b0, b1, sigma))
    z = (y - b0 - b1 * d) / sigma
    lp = -0.5 * z * z - np.log(sigma) - 0.5 * np.log(2.0 * np.pi)
    return np.where(m, lp, 0.0).sum(axis=-1)


class LinearReadout:
    """The dopamine readout ``response ~ b0 + b1 * delta + Normal(0, sigma)`` in both directions."""

    name = "linear-readout"

    @staticmethod
    def simulate(delta, b0: float, b1: float, sigma: float, rng: np.random.Generator) -> np.ndarray:
        delta = np.asarray(delta, dtype=float)
        return b0 + b1 * delta + sigma * rng.standard_normal(delta.shape)

    loglik = staticmethod(readout_loglik)
    profile = staticmethod(profile_loglik)
    score = staticmethod(profile_score)
