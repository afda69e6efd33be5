"""RPE time courses seen through a fluorescent indicator, and the trace-level fit of any model's learning.

The RPE of each event is an impulse at the event time (sampling rate ``fs``; a time between two samples
is split linearly between them), convolved with the indicator kernel

    k(t) = (exp(-t / decay_s) - exp(-t / rise_s)) / peak,    t >= 0   (difference of exponentials)

and observed as ``y_t = b0 + b1 * x_t + e_t`` with AR(1) noise ``e_t = phi * e_{t-1} + eps_t``,
``eps ~ N(0, sigma^2)``.  For a candidate learning rate the readout ``b0, b1`` and ``sigma`` have closed
forms after prewhitening with ``phi`` (``y_t - phi * y_{t-1}``), and ``phi`` is found by Cochrane-Orcutt
iteration, so the profile log-likelihood of the whole trace depends on the learning parameters alone.  The
RPEs are the named model's own (:func:`model_rpe_events`, through the model interface's ``rpe_events``):
RW Pavlovian gives two events per trial (the cue response is the summed value of the cue's elements, the
outcome response ``r - value``), TD the error of every time bin.

Everything is batched over candidate parameters: one FFT convolution for the whole grid.
"""
from __future__ import annotations

import numpy as np
from scipy import optimize, signal

from dopa_rl.errors import InputError

__all__ = ["INDICATORS", "diff_exp_kernel", "indicator_kernel", "impulse_train", "convolve_kernel",
           "rw_event_rpes", "rpe_trace", "ar1_profile", "fit_trace", "fit_trace_rw", "model_rpe_events",
           "simulate_trace"]

_LN2 = np.log(2.0)

#: Rise and decay time constants (s) of the difference-of-exponentials kernel.  GCaMP6 values are the
#: half-rise and half-decay times after one action potential in vivo (Chen et al. 2013, Nature 499:295,
#: Fig. 3 / Suppl. Table 3; approximate) converted to time constants (t_half / ln 2).  dLight1.1 and
#: GRAB-DA values are the on/off time constants reported by Patriarchi et al. 2018 (Science
#: 360:eaat4422) and Sun et al. 2018 (Cell 174:481).  See docs/indicator.md.
INDICATORS = {
    "gcamp6f": {"rise_s": 0.045 / _LN2, "decay_s": 0.142 / _LN2},
    "gcamp6m": {"rise_s": 0.080 / _LN2, "decay_s": 0.270 / _LN2},
    "gcamp6s": {"rise_s": 0.180 / _LN2, "decay_s": 0.550 / _LN2},
    "dlight1.1": {"rise_s": 0.010, "decay_s": 0.090},
    "grab-da1m": {"rise_s": 0.060, "decay_s": 0.700},
    "grab-da1h": {"rise_s": 0.140, "decay_s": 2.500},
}


def diff_exp_kernel(fs: float, rise_s: float, decay_s: float, duration_s: float | None = None) -> np.ndarray:
    """Peak-normalised difference-of-exponentials kernel sampled at ``fs`` from t = 0.

    ``duration_s`` defaults to 7 decay times.  ``rise_s == decay_s`` gives the alpha function limit.
    """
    if not (fs > 0 and rise_s > 0 and decay_s > 0):
        raise InputError("indicator kernel: fs, rise_s and decay_s must be positive")
    if rise_s > decay_s:
        rise_s, decay_s = decay_s, rise_s
    dur = 7.0 * decay_s if duration_s is None else duration_s
    t = np.arange(int(np.ceil(dur * fs)) + 1) / fs
    if np.isclose(rise_s, decay_s):
        k = t * np.exp(-t / decay_s)
    else:
        k = np.exp(-t / decay_s) - np.exp(-t / rise_s)
    peak = k.max()
    return k / peak if peak > 0 else k


def indicator_kernel(name: str, fs: float, duration_s: float | None = None) -> np.ndarray:
    """The default kernel of a named indicator (keys of :data:`INDICATORS`)."""
    key = name.lower()
    if key not in INDICATORS:
        raise InputError(f"unknown indicator {name!r}; choose one of: {', '.join(INDICATORS)}")
    return diff_exp_kernel(fs, **INDICATORS[key], duration_s=duration_s)


def impulse_train(times, amplitudes, fs: float, n_samples: int, t0: float = 0.0) -> np.ndarray:
    """Impulses at ``times`` (s, sample ``i`` is at ``t0 + i / fs``) with ``amplitudes``.

    ``amplitudes`` may be (events,) or (lanes, events); the result is (n_samples,) or (lanes, n_samples).
    Events outside the recording are dropped.
    """
    tm = np.asarray(times, float).ravel()
    amp = np.asarray(amplitudes, float)
    one = amp.ndim == 1
    amp = np.atleast_2d(amp)
    if amp.shape[1] != tm.size:
        raise InputError(f"impulse train: {tm.size} times but {amp.shape[1]} amplitudes")
    p = (tm - t0) * fs
    i0 = np.floor(p).astype(int)
    frac = p - i0
    u = np.zeros((amp.shape[0], n_samples))
    for idx, wgt in ((i0, 1.0 - frac), (i0 + 1, frac)):
        ok = (idx >= 0) & (idx < n_samples)
        np.add.at(u.T, idx[ok], (amp[:, ok] * wgt[ok]).T)
    return u[0] if one else u


def convolve_kernel(u: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Causal convolution of impulse train(s) (last axis is time) with a kernel, same length (FFT)."""
    u = np.asarray(u, float)
    k = np.asarray(kernel, float).reshape((1,) * (u.ndim - 1) + (-1,))
    return signal.fftconvolve(u, k, axes=-1)[..., : u.shape[-1]]


def rw_event_rpes(cues, rewards, alphas) -> tuple[np.ndarray, np.ndarray]:
    """Rescorla-Wagner (``rw-pavlovian``) cue and outcome RPEs per trial for each candidate ``alpha``
    (lanes x trials): the model's own kernel, so compound cues ``"A+X"`` sum their elements' values."""
    from dopa_rl.models.registry import get_model

    model = get_model("rw-pavlovian")
    a = np.atleast_1d(np.asarray(alphas, float))
    r = np.asarray(rewards, float).ravel()
    table = _trials_table(cues, r)
    data = model.pack_learning(table)
    x = np.tile(model.check_params({}), (a.size, 1))
    x[:, model.param_names.index("alpha")] = a
    cue, out = model.rpes(x, data, np.zeros(a.size, np.int64))
    order = data.row_index[0, : data.n_trials[0]]
    c, o = np.empty_like(cue), np.empty_like(out)
    c[:, order], o[:, order] = cue, out
    return c, o


def _trials_table(cue, reward, cue_time=None, outcome_time=None):
    import pandas as pd

    r = np.asarray(reward, float).ravel()
    cues = [str(c) for c in np.asarray(cue, dtype=object).ravel()]
    cols = {"subject": "1", "trial": np.arange(r.size), "cue": cues, "reward": r}
    if cue_time is not None:
        cols["cue_time"] = np.asarray(cue_time, float).ravel()
    if outcome_time is not None:
        cols["outcome_time"] = np.asarray(outcome_time, float).ravel()
    return pd.DataFrame(cols)


def model_rpe_events(model, cue, cue_time, outcome_time, reward, *, names=None, fixed=None):
    """Adapter for :func:`fit_trace`: any model's prediction errors as timed events (its ``rpe_events``).

    One session's trials (``cue``, ``cue_time``, ``outcome_time``, ``reward``, one value each).  ``names``:
    the parameters the grid columns hold (default: the model's ``learning_params``); the others come from
    ``fixed`` or the model's defaults.  RW models give the cue and outcome responses; TD every time bin
    (bin ``b`` of a trial at ``cue_time + b * bin_s - cue_onset_s``).  Returns ``rpe_events(P) -> (times,
    amplitudes)``; the model's compiled many-lane kernel runs once per call for every candidate row of P.
    """
    ct, ot = np.asarray(cue_time, float).ravel(), np.asarray(outcome_time, float).ravel()
    r = np.asarray(reward, float).ravel()
    if not (ct.size == ot.size == r.size == np.asarray(cue, dtype=object).size):
        raise InputError("trace fit: cue, cue_time, outcome_time and reward need one value per trial")
    names = list(model.learning_params if names is None else names)
    unknown = sorted(set(names) - set(model.param_names))
    if unknown:
        raise InputError(f"trace fit: unknown parameter(s) {', '.join(unknown)}; model {model.name} has "
                         f"{', '.join(model.param_names)}")
    base = model.check_params(dict(fixed or {}))
    cols = [model.param_names.index(n) for n in names]
    data = model.pack_learning(_trials_table(cue, r, ct, ot))
    order = data.row_index[0, : data.n_trials[0]]
    anchors = {"cue": ct[order], "outcome": ot[order]}

    def rpe_events(P):
        P = np.atleast_2d(np.asarray(P, float))
        X = np.tile(base, (P.shape[0], 1))
        X[:, cols] = P
        anchor, offset, amp = model.rpe_events(X, data, np.zeros(P.shape[0], np.int64))
        n = order.size
        times = np.stack([anchors[a] for a in anchor], axis=-1) + np.asarray(offset)[:n]
        amp = np.nan_to_num(amp[:, :n], nan=0.0)
        return times.ravel(), amp.reshape(P.shape[0], -1)

    return rpe_events


def rpe_trace(cue_times, outcome_times, cue_rpe, outcome_rpe, fs, n_samples, kernel, t0=0.0) -> np.ndarray:
    """The model's predicted photometry shape: RPE impulses at cue and outcome convolved with ``kernel``."""
    times = np.concatenate([np.ravel(cue_times), np.ravel(outcome_times)])
    amps = np.concatenate([np.atleast_2d(cue_rpe), np.atleast_2d(outcome_rpe)], axis=-1)
    u = impulse_train(times, amps, fs, n_samples, t0)
    return convolve_kernel(u, kernel)


def ar1_profile(y, X, *, n_iter: int = 4, phi=None) -> dict:
    """Profile log-likelihood of ``y = b0 + b1 * x + AR(1) noise`` for each regressor row of ``X``.

    ``X``: (lanes, n) or (n,).  ``phi`` fixed (scalar) or estimated per lane by ``n_iter``
    Cochrane-Orcutt iterations (clipped to [0, 0.999]).  The likelihood is conditional on the first
    sample.  Returns arrays ``loglik``, ``b0``, ``b1``, ``phi``, ``sigma`` (one per lane).
    """
    y = np.asarray(y, float).ravel()
    X = np.atleast_2d(np.asarray(X, float))
    L, n = X.shape
    if n != y.size or n < 4:
        raise InputError(f"trace fit: the regressor has {n} samples but the trace {y.size}")
    ph = np.zeros(L) if phi is None else np.full(L, float(phi))
    iters = n_iter if phi is None else 1
    for it in range(iters + (1 if phi is None else 0)):
        ys = y[None, 1:] - ph[:, None] * y[None, :-1]
        xs = X[:, 1:] - ph[:, None] * X[:, :-1]
        cs = (1.0 - ph)[:, None]
        # OLS of ys on [cs, xs]: normal equations per lane
        m = n - 1
        s_cc = cs[:, 0] ** 2 * m
        s_cx = cs[:, 0] * xs.sum(1)
        s_xx = np.einsum("ln,ln->l", xs, xs)
        s_cy = cs[:, 0] * ys.sum(1)
        s_xy = np.einsum("ln,ln->l", xs, ys)
        det = s_cc * s_xx - s_cx ** 2
        with np.errstate(invalid="ignore", divide="ignore"):
            b0 = np.where(det > 0, (s_xx * s_cy - s_cx * s_xy) / det, s_cy / np.maximum(s_cc, 1e-300))
            b1 = np.where(det > 0, (s_cc * s_xy - s_cx * s_cy) / det, 0.0)
        if phi is not None or it == iters:
            res = ys - cs * b0[:, None] - xs * b1[:, None]
            break
        e = y[None, :] - b0[:, None] - b1[:, None] * X                # structural residuals
        num = np.einsum("ln,ln->l", e[:, 1:], e[:, :-1])
        den = np.einsum("ln,ln->l", e[:, :-1], e[:, :-1])
        ph = np.clip(num / np.maximum(den, 1e-300), 0.0, 0.999)
    rss = np.einsum("ln,ln->l", res, res)
    sig2 = np.maximum(rss / m, 1e-300)
    ll = -0.5 * m * (np.log(2 * np.pi * sig2) + 1.0)
    return {"loglik": ll, "b0": b0, "b1": b1, "phi": ph, "sigma": np.sqrt(sig2)}


def fit_trace(trace, fs: float, rpe_events, grid, *, kernel, t0: float = 0.0, bounds=None,
              n_restarts: int = 1, refine: bool = True) -> dict:
    """Fit any model's learning parameters to a whole trace through a kernel (generic trace-level fit).

    ``rpe_events(params)``: for candidate parameters ``params`` (lanes x n_params) returns ``(times,
    amplitudes)``, the event times (s) and the model RPE of each event per lane (lanes x events).  For
    TD, the events are the time bins with their ``delta_t``.  ``grid``: (lanes x n_params) candidates,
    evaluated in one batch.  Then local refinements start from the ``n_restarts`` best grid points
    (bounded scalar search for one parameter, bounded Nelder-Mead otherwise; ``bounds`` default: the
    grid's range).  Returns ``{"params": best row, "b0", "b1", "phi", "sigma", "loglik", "grid_loglik"}``.
    """
    y = np.asarray(trace, float).ravel()
    if not np.all(np.isfinite(y)):
        raise InputError("trace fit: the trace has non-finite samples (interpolate or crop them first)")
    G = np.asarray(grid, float)
    G = G[:, None] if G.ndim == 1 else G
    k = np.asarray(kernel, float)
    lo = G.min(0) if bounds is None else np.asarray(bounds, float)[:, 0]
    hi = G.max(0) if bounds is None else np.asarray(bounds, float)[:, 1]

    def evaluate(P):
        times, amps = rpe_events(np.atleast_2d(P))
        return ar1_profile(y, convolve_kernel(impulse_train(times, amps, fs, y.size, t0), k))

    prof = evaluate(G)
    ll = prof["loglik"]
    i = int(np.argmax(ll))
    best = {key: float(v[i]) for key, v in prof.items()}
    best["params"] = G[i].copy()
    if refine and G.shape[0] > 2:
        if G.shape[1] == 1:
            g = G[:, 0]
            order = np.argsort(g)
            gs, ls = g[order], ll[order]
            peaks = [j for j in range(gs.size) if ls[j] >= ls[max(j - 1, 0)] and ls[j] >= ls[min(j + 1, gs.size - 1)]]
            peaks = sorted(peaks, key=lambda j: -ls[j])[:max(1, n_restarts)]
            for j in peaks:
                a, b = gs[max(j - 1, 0)], gs[min(j + 1, gs.size - 1)]
                res = optimize.minimize_scalar(lambda v: -evaluate([[v]])["loglik"][0], bounds=(a, b),
                                               method="bounded", options={"xatol": 1e-4})
                if -res.fun > best["loglik"]:
                    best = {key: float(v[0]) for key, v in evaluate([[res.x]]).items()}
                    best["params"] = np.array([res.x])
        else:
            for j in np.argsort(-ll)[:max(1, n_restarts)]:
                res = optimize.minimize(lambda v: -evaluate(v[None, :])["loglik"][0], G[j], method="Nelder-Mead",
                                        bounds=list(zip(lo, hi)), options={"xatol": 1e-4, "fatol": 1e-3})
                if -res.fun > best["loglik"]:
                    best = {key: float(v[0]) for key, v in evaluate(res.x[None, :]).items()}
                    best["params"] = np.asarray(res.x)
    best["params"] = best["params"].tolist()
    best["grid_loglik"] = ll.tolist()
    return best


def fit_trace_rw(trace, fs: float, cue, cue_time, outcome_time, reward, *, kernel=None,
                 indicator: str | None = "dlight1.1", t0: float = 0.0, alpha_grid=None,
                 refine: bool = True, n_restarts: int = 1) -> dict:
    """Fit the RW learning rate to a whole photometry trace through an indicator kernel.

    ``kernel``: an array sampled at ``fs`` (else the default of ``indicator``).  The profile likelihood is
    evaluated on ``alpha_grid`` (default 40 points in [0.01, 1]) in one batch; then bounded scalar
    searches between the neighbours of the ``n_restarts`` best local maxima of the grid profile refine it
    (the best result is kept).  Returns ``{"alpha", "b0", "b1", "phi", "sigma", "loglik", "grid": alphas,
    "grid_loglik"}``.
    """
    k = indicator_kernel(indicator, fs) if kernel is None else np.asarray(kernel, float)
    ct, ot = np.asarray(cue_time, float).ravel(), np.asarray(outcome_time, float).ravel()
    r = np.asarray(reward, float).ravel()
    if not (ct.size == ot.size == r.size == np.asarray(cue, dtype=object).size):
        raise InputError("trace fit: cue, cue_time, outcome_time and reward need one value per trial")
    grid = np.linspace(0.01, 1.0, 40) if alpha_grid is None else np.asarray(alpha_grid, float)
    from dopa_rl.models.registry import get_model

    rpe_events = model_rpe_events(get_model("rw-pavlovian"), cue, ct, ot, r, names=("alpha",))
    out = fit_trace(trace, fs, rpe_events, grid, kernel=k, t0=t0, n_restarts=n_restarts, refine=refine)
    out["alpha"] = out.pop("params")[0]
    out["grid"] = grid.tolist()
    return out


def simulate_trace(fs: float, cue, cue_time, outcome_time, reward, alpha: float, rng: np.random.Generator,
                   *, kernel=None, indicator: str = "dlight1.1", b0: float = 0.0, b1: float = 1.0,
                   phi: float = 0.9, sigma: float = 0.1, duration_s: float | None = None,
                   t0: float = 0.0) -> np.ndarray:
    """A photometry trace from the generative model of :func:`fit_trace_rw` (for tests and docs)."""
    k = indicator_kernel(indicator, fs) if kernel is None else np.asarray(kernel, float)
    ot = np.asarray(outcome_time, float).ravel()
    dur = float(ot.max() - t0 + 10.0) if duration_s is None else duration_s
    n = int(np.ceil(dur * fs))
    c_rpe, o_rpe = rw_event_rpes(cue, reward, [alpha])
    x = rpe_trace(cue_time, ot, c_rpe, o_rpe, fs, n, k, t0)[0]
    eps = rng.normal(0.0, sigma, n)
    e = signal.lfilter([1.0], [1.0, -phi], eps)
    return b0 + b1 * x + e
