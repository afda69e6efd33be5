"""Fiber-photometry preprocessing steps: pure functions over arrays (docs/dopamine.md).

* :func:`lowpass` / :func:`highpass`: zero-phase Butterworth (``scipy.signal.sosfiltfilt``);
* :func:`double_exponential_trend`: photobleaching as ``c + a_slow exp(-t/tau_slow) + a_fast exp(-t/tau_fast)``,
  fitted on 1 s bin means (about 100x faster than at the full rate, same curve) and evaluated at every sample;
* :func:`fit_control`: the control (isosbestic or red) channel fitted to the signal by OLS, or by
  iteratively reweighted least squares with Huber or Tukey bisquare weights (MAD scale, as statsmodels
  RLM), optionally on a baseline epoch only;
* :func:`dff`, :func:`zscore` (session, baseline epoch, or robust median/MAD), :func:`resample`;
* :func:`bleach_trend`: the slow drift left in dF/F after control subtraction in long recordings
  (single or double exponential, or a polynomial of degree 1-3), fitted by iteratively reweighted least
  squares with Tukey bisquare weights (MAD scale) so that transients do not pull the fit.

Inputs are never modified; each step makes one output array.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from dopa_rl.errors import InputError

__all__ = ["ControlFit", "lowpass", "highpass", "double_exponential_trend", "fit_control", "dff", "zscore",
           "resample", "check_trace", "bleach_trend", "robust_weights", "CONTROL_METHODS", "BLEACH_METHODS"]

CONTROL_METHODS = ("ols", "huber", "bisquare")
BLEACH_METHODS = ("exp", "double-exp", "poly1", "poly2", "poly3")
_TUNING = {"huber": 1.345, "bisquare": 4.685}


def check_trace(x: np.ndarray, what: str = "signal") -> np.ndarray:
    """A 1-D finite float trace with some variation, else one InputError saying what is wrong."""
    x = np.asarray(x, dtype=float)
    if x.ndim != 1:
        raise InputError(f"{what}: expected one channel (1-D), got shape {x.shape}")
    if x.size < 3:
        raise InputError(f"{what}: only {x.size} sample(s); nothing to analyse")
    bad = ~np.isfinite(x)
    if bad.any():
        raise InputError(f"{what}: {int(bad.sum())} sample(s) are NaN or infinite (first at sample "
                         f"{int(np.flatnonzero(bad)[0])}); fill or cut them before analysis")
    if x.max() == x.min():
        raise InputError(f"{what} is constant (every sample is {x[0]:g}); the channel was not recording")
    return x


def _butter(rate: float, cutoff: float, btype: str, order: int):
    from scipy.signal import butter

    nyq = rate / 2.0
    if not (0 < cutoff < nyq):
        raise InputError(f"filter cutoff {cutoff:g} Hz must be between 0 and the Nyquist frequency {nyq:g} Hz")
    return butter(order, cutoff, btype=btype, fs=rate, output="sos")


def lowpass(x: np.ndarray, rate: float, cutoff_hz: float = 10.0, order: int = 2) -> np.ndarray:
    """Zero-phase Butterworth low-pass (forward-backward, so no delay).

    Parameters
    ----------
    x : numpy.ndarray
        The trace.
    rate : float
        Its sampling rate (Hz).
    cutoff_hz : float, default 10.0
        Frequencies above it are removed (Hz); below the Nyquist frequency ``rate / 2``.
    order : int, default 2
        Filter order.

    Returns
    -------
    numpy.ndarray
        The filtered trace.
    """
    from scipy.signal import sosfiltfilt

    return sosfiltfilt(_butter(rate, cutoff_hz, "lowpass", order), np.asarray(x, dtype=float))


def highpass(x: np.ndarray, rate: float, cutoff_hz: float = 0.001, order: int = 2) -> np.ndarray:
    """Zero-phase Butterworth high-pass: a very low cutoff removes photobleaching drift.

    Parameters
    ----------
    x, rate : numpy.ndarray, float
        The trace and its sampling rate (Hz).
    cutoff_hz : float, default 0.001
        Frequencies below it are removed (Hz).
    order : int, default 2
        Order of the Butterworth filter, applied forward and backward (no delay).

    Returns
    -------
    numpy.ndarray
        The trace without its slow drift.
    """
    from scipy.signal import sosfiltfilt

    return sosfiltfilt(_butter(rate, cutoff_hz, "highpass", order), np.asarray(x, dtype=float))


def _bin_means(t: np.ndarray, x: np.ndarray, rate: float, bin_s: float) -> tuple[np.ndarray, np.ndarray]:
    k = max(1, int(round(bin_s * rate)))
    m = (len(x) // k) * k
    if m < 5 * k:  # short recordings: fit every sample
        return t, x
    return t[:m].reshape(-1, k).mean(axis=1), x[:m].reshape(-1, k).mean(axis=1)


def _double_exp(t, const, amp_fast, amp_slow, tau_slow, tau_multiplier):
    return const + amp_slow * np.exp(-t / tau_slow) + amp_fast * np.exp(-t / (tau_slow * tau_multiplier))


def double_exponential_trend(x: np.ndarray, rate: float, t: np.ndarray | None = None, *, bin_s: float | None = None
                             ) -> tuple[np.ndarray, dict[str, float]]:
    """Photobleaching trend of ``x`` and its parameters.

    Fitted with ``scipy.optimize.curve_fit`` on bin means, with the starting point and bounds of Akam's
    pyPhotometry pipeline (slow time constant 10 min to 10 h, fast one a fraction of it).

    Parameters
    ----------
    x, rate : numpy.ndarray, float
        The fluorescence trace and its sampling rate (Hz).
    t : numpy.ndarray, optional
        Sample times (s); default ``arange(len(x)) / rate``.
    bin_s : float, optional
        Bin width (s); default 1 s, longer for recordings over ~40 min so that at most 2,500 bins enter the fit.

    Returns
    -------
    trend : numpy.ndarray
        The trend, same length as ``x``.
    params : dict of str to float
        The fitted amplitudes and time constants.
    """
    from scipy.optimize import curve_fit

    x = np.asarray(x, dtype=float)
    t = np.arange(len(x)) / rate if t is None else np.asarray(t, dtype=float) - float(t[0])
    if bin_s is None:
        bin_s = max(1.0, len(x) / rate / 2500.0)
    tb, xb = _bin_means(t, x, rate, bin_s)
    top = float(np.max(np.abs(xb)))
    if top == 0:
        raise InputError("signal is zero everywhere; cannot fit a photobleaching trend")
    span = max(float(t[-1]), 1.0)
    lo_tau = min(600.0, span / 20)  # Akam's bounds for recordings of an hour or so; scaled for short ones
    tau0 = 3600.0 if span >= 3600 else max(span / 2, lo_tau)
    p0 = [top / 2, top / 4, top / 4, tau0, 0.1]
    bounds = ([0, 0, 0, lo_tau, 0], [top, top, top, 36000.0, 1.0])
    if np.min(xb) < 0:  # signals that may go negative (already centred): allow a negative constant
        bounds[0][0] = -top
        p0[0] = float(np.median(xb))
    try:
        popt, _ = curve_fit(_double_exp, tb, xb, p0=p0, bounds=bounds, maxfev=5000)
    except (RuntimeError, ValueError) as exc:
        raise InputError(f"double-exponential photobleaching fit failed ({exc}); use `detrend` highpass") from None
    trend = _double_exp(t, *popt)
    names = ("const", "amp_fast", "amp_slow", "tau_slow_s", "tau_multiplier")
    return trend, {k: float(v) for k, v in zip(names, popt)}


@dataclass(frozen=True)
class ControlFit:
    """``signal ~ intercept + slope * control``: the fitted motion/bleaching component of the signal."""

    slope: float
    intercept: float
    method: str
    n_samples: int
    iterations: int = 0
    baseline: tuple[float, float] | None = None

    def predict(self, control: np.ndarray) -> np.ndarray:
        return self.intercept + self.slope * np.asarray(control, dtype=float)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["baseline"] = list(self.baseline) if self.baseline else None
        return d


def _wls(x: np.ndarray, y: np.ndarray, w: np.ndarray | None) -> tuple[float, float]:
    if w is None:
        # moments by dot products (no centred copies of hour-long traces); the means are removed from the
        # sums afterwards, exact enough in float64 for signals whose mean is up to ~1e4 times their spread
        n = x.size
        mx, my = float(x.sum()) / n, float(y.sum()) / n
        sxx = float(x @ x) - n * mx * mx
        sxy = float(x @ y) - n * mx * my
        b = sxy / sxx if sxx > 0 else 0.0
        return my - b * mx, b
    sw = w.sum()
    mx, my = float(w @ x) / sw, float(w @ y) / sw
    dx = x - mx
    wdx = w * dx
    sxx = float(wdx @ dx)
    b = float(wdx @ (y - my)) / sxx if sxx > 0 else 0.0
    return my - b * mx, b


def fit_control(signal: np.ndarray, control: np.ndarray, method: str = "ols", *, mask: np.ndarray | None = None,
                max_samples: int | None = 200_000, max_iter: int = 50, tol: float = 1e-8) -> ControlFit:
    """Fit ``signal ~ a + b * control`` by OLS or robust IRLS.

    Parameters
    ----------
    signal, control : numpy.ndarray
        The two channels, same length.
    method : {"ols", "huber", "bisquare"}, default "ols"
        Least squares, or an iteratively reweighted robust fit.
    mask : numpy.ndarray of bool, optional
        Fit only on these samples (a baseline epoch).
    max_samples : int or None, default 200000
        Robust fits use every k-th sample so that at most this many enter the iterations (the traces are
        low-passed first, so neighbouring samples carry the same information); OLS uses every sample.
    max_iter : int, default 50
        Largest number of IRLS iterations.
    tol : float, default 1e-8
        IRLS stops when the coefficients change by less than this.

    Returns
    -------
    ControlFit
        Slope, intercept, method, samples used and iterations.
    """
    if method not in CONTROL_METHODS:
        raise InputError(f"`control_fit` {method!r}: choose one of {', '.join(CONTROL_METHODS)}")
    signal = np.asarray(signal, dtype=float)
    control = np.asarray(control, dtype=float)
    if signal.shape != control.shape:
        raise InputError(f"control channel has {control.shape[0]} samples but the signal {signal.shape[0]}; "
                         "they must be sampled together (resample the control onto the signal's timestamps)")
    y, x = (signal, control) if mask is None else (signal[mask], control[mask])
    if y.size < 3:
        raise InputError(f"control fit: only {y.size} sample(s) in the fitting epoch")
    if x.max() == x.min():
        raise InputError("control channel is constant over the fitting epoch; fit without it (`control_fit` none)")
    if method == "ols":
        a, b = _wls(x, y, None)
        return ControlFit(float(b), float(a), method, int(y.size))
    if max_samples and y.size > max_samples:
        step = int(np.ceil(y.size / max_samples))
        y, x = np.ascontiguousarray(y[::step]), np.ascontiguousarray(x[::step])
    a, b = _wls(x, y, None)
    it = 0
    for it in range(1, max_iter + 1):
        w = robust_weights(y - (a + b * x), method)
        if w is None:
            break
        a_new, b_new = _wls(x, y, w)
        done = abs(b_new - b) <= tol * max(1.0, abs(b)) and abs(a_new - a) <= tol * max(1.0, abs(a))
        a, b = a_new, b_new
        if done:
            break
    return ControlFit(float(b), float(a), method, int(y.size), it)


def robust_weights(residuals: np.ndarray, method: str = "bisquare") -> np.ndarray | None:
    """IRLS weights of ``residuals`` for the Huber (t = 1.345) or Tukey bisquare (c = 4.685) norm, on the
    MAD scale (1.4826 x median absolute deviation from the median), as statsmodels RLM; None when the
    scale is 0 (a perfect fit: nothing to reweight)."""
    r = np.asarray(residuals, dtype=float)
    scale = 1.4826 * float(np.median(np.abs(r - np.median(r))))
    if not scale > 0:
        return None
    u = np.abs(r) / (_TUNING[method] * scale)
    if method == "huber":
        return 1.0 / np.maximum(u, 1.0)
    return np.where(u < 1.0, (1.0 - u * u) ** 2, 0.0)


def _exp_model(n_exp: int):
    if n_exp == 1:
        return lambda t, c, a, tau: c + a * np.exp(-t / tau)
    return lambda t, c, a1, tau1, a2, tau_ratio: (c + a1 * np.exp(-t / tau1)
                                                  + a2 * np.exp(-t / (tau1 * tau_ratio)))


def _fit_bleach_once(tb: np.ndarray, xb: np.ndarray, w: np.ndarray, method: str, span: float,
                     p0: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """One weighted fit on the bins; returns (fitted values on ``tb``, parameters)."""
    from scipy.optimize import curve_fit

    keep = w > 0
    if method.startswith("poly"):
        poly = np.polynomial.Polynomial.fit(tb[keep] / span, xb[keep], int(method[-1]), w=np.sqrt(w[keep]))
        return poly(tb / span), poly.convert().coef / span ** np.arange(int(method[-1]) + 1)
    n_exp = 1 if method == "exp" else 2
    f = _exp_model(n_exp)
    top = max(float(np.ptp(xb)), float(np.max(np.abs(xb))), 1e-12)
    lo_tau, hi_tau = span / 200.0, span * 20.0
    if n_exp == 1:
        start = [float(np.median(xb[-max(3, len(xb) // 10):])), float(xb[0] - xb[-1]), span / 3]
        bounds = ([-10 * top, -10 * top, lo_tau], [10 * top, 10 * top, hi_tau])
    else:
        start = [float(np.median(xb[-max(3, len(xb) // 10):])), float(xb[0] - xb[-1]) / 2, span / 2,
                 float(xb[0] - xb[-1]) / 2, 0.1]
        bounds = ([-10 * top, -10 * top, lo_tau, -10 * top, 0.005], [10 * top, 10 * top, hi_tau, 10 * top, 1.0])
    start = np.clip(start if p0 is None else p0, np.array(bounds[0]) + 1e-12, np.array(bounds[1]) - 1e-12)
    try:
        popt, _ = curve_fit(f, tb[keep], xb[keep], p0=start, bounds=bounds, sigma=1.0 / np.sqrt(w[keep]),
                            maxfev=20000)
    except (RuntimeError, ValueError) as exc:
        raise InputError(f"`bleach` {method}: the fit to the dF/F drift failed ({exc}); try `bleach` poly2") from None
    return f(tb, *popt), popt


def bleach_trend(x: np.ndarray, rate: float, t: np.ndarray | None = None, method: str = "exp", *,
                 robust: bool = True, bin_s: float | None = None, epoch: tuple[float, float] | None = None,
                 max_iter: int = 30, tol: float = 1e-6) -> tuple[np.ndarray, dict]:
    """Slow drift of a dF/F trace (photobleaching left after control subtraction) and its fitted parameters.

    Parameters
    ----------
    x : ndarray
        dF/F after control subtraction (1-D).
    rate : float
        Sampling rate, Hz.
    t : ndarray, optional
        Sample times (s); default ``arange(len(x)) / rate``.  The fit uses time from the first sample.
    method : {"exp", "double-exp", "poly1", "poly2", "poly3"}
        ``c + a exp(-t/tau)``; ``c + a1 exp(-t/tau1) + a2 exp(-t/(tau1 r))``, ``0 < r <= 1``; or a polynomial.
    robust : bool
        Iteratively reweighted least squares with Tukey bisquare weights on the MAD scale (as statsmodels
        RLM), so that transients, which sit above the baseline, get weight 0 instead of pulling the curve
        up; False: one least-squares fit.
    bin_s : float, optional
        The fit uses bin means of this many seconds (default 1 s, or duration / 2500 for recordings over
        ~40 min); the trend is evaluated at every sample.
    epoch : (float, float), optional
        Fit only the bins whose centre lies in ``[start, stop)`` (seconds on ``t``'s clock) and extrapolate
        the curve to the whole recording: a drug step after the epoch is then kept, not bent into the drift.
    max_iter, tol : int, float
        IRLS stops after ``max_iter`` rounds or when the fitted bins move less than ``tol`` x their spread.

    Returns
    -------
    trend : ndarray
        The fitted drift at every sample (subtract it: the baseline becomes 0).
    info : dict
        ``method``, ``params`` (names to values; time constants in s), ``robust``, ``iterations``,
        ``bin_s``, ``downweighted`` (fraction of bins with weight below 0.5 in the last round) and, for the
        exponentials, ``tau_at_bound`` (the first time constant reached span / 200 or 20 x span: the drift
        is nearly a step or a straight line; ``poly1`` describes the latter with fewer parameters).
    """
    if method not in BLEACH_METHODS:
        raise InputError(f"`bleach` {method!r}: choose one of {', '.join(BLEACH_METHODS)}, none")
    x = check_trace(x, "dF/F for the bleaching fit")
    t_in = t
    t = np.arange(len(x)) / rate if t is None else np.asarray(t, dtype=float) - float(t[0])
    if bin_s is None:
        bin_s = max(1.0, len(x) / rate / 2500.0)
    t_abs0 = 0.0 if t_in is None else float(np.asarray(t_in, dtype=float)[0])
    tb, xb = _bin_means(t, x, rate, bin_s)
    if epoch is not None:
        keep = (tb + t_abs0 >= epoch[0]) & (tb + t_abs0 < epoch[1])
        tb, xb = tb[keep], xb[keep]
    n_par = {"exp": 3, "double-exp": 5}[method] if method in ("exp", "double-exp") else int(method[-1]) + 1
    if len(tb) < 3 * n_par:
        where = "the recording" if epoch is None else f"`bleach_epoch` {epoch[0]:g} {epoch[1]:g}"
        raise InputError(f"`bleach` {method}: {where} is too short for a drift fit "
                         f"({len(tb)} bins of {bin_s:g} s for {n_par} parameters)")
    span = max(float(t[-1]), 1.0 / rate)
    w = np.ones_like(xb)
    fitted, popt = _fit_bleach_once(tb, xb, w, method, span, None)
    it = 0
    if robust:
        spread = max(float(np.std(xb)), 1e-300)
        for it in range(1, max_iter + 1):
            w_new = robust_weights(xb - fitted, "bisquare")
            if w_new is None or (w_new > 0).sum() < 3 * n_par:
                break
            w = w_new
            new, popt = _fit_bleach_once(tb, xb, w, method, span, None if method.startswith("poly") else popt)
            moved = float(np.max(np.abs(new - fitted)))
            fitted = new
            if moved <= tol * spread:
                break
    if method.startswith("poly"):
        trend = np.polynomial.Polynomial(popt)(t)
        names = [f"c{k}" for k in range(len(popt))]
    else:
        trend = _exp_model(1 if method == "exp" else 2)(t, *popt)
        names = ["const", "amp", "tau_s"] if method == "exp" else ["const", "amp1", "tau1_s", "amp2", "tau_ratio"]
    info = {"method": method, "params": {k: float(v) for k, v in zip(names, popt)}, "robust": bool(robust),
            "iterations": int(it), "bin_s": float(bin_s), "downweighted": float(np.mean(w < 0.5)),
            "epoch": None if epoch is None else [float(epoch[0]), float(epoch[1])]}
    if not method.startswith("poly"):
        # a time constant at its bound (span / 200 or 20 x span): the drift is a step or a straight line
        info["tau_at_bound"] = bool(popt[2] > 0.99 * span * 20.0 or popt[2] < 1.01 * span / 200.0)
    return trend, info


def dff(signal: np.ndarray, baseline: np.ndarray, fitted: np.ndarray | None = None) -> np.ndarray:
    """dF/F = (signal - fitted) / baseline.

    Parameters
    ----------
    signal : numpy.ndarray
        The signal channel.
    baseline : numpy.ndarray
        The denominator (the fitted control, or a trend).
    fitted : numpy.ndarray, optional
        Subtracted from the signal; defaults to ``baseline`` (the isosbestic convention
        ``(signal - fitted control) / fitted control``).

    Returns
    -------
    numpy.ndarray
        dF/F, same length.

    Raises
    ------
    InputError
        Where the baseline reaches 0.
    """
    baseline = np.asarray(baseline, dtype=float)
    if np.any(baseline == 0) or not np.all(np.isfinite(baseline)):
        raise InputError("dF/F: the baseline fluorescence reaches 0 or is not finite; check the control fit "
                         "or use another `detrend`")
    out = np.subtract(signal, baseline if fitted is None else fitted)
    out /= baseline
    return out


def zscore(x: np.ndarray, *, mask: np.ndarray | None = None, robust: bool = False) -> np.ndarray:
    """(x - centre) / spread, over the whole trace or the ``mask`` epoch.

    Parameters
    ----------
    x : numpy.ndarray
        The trace.
    mask : numpy.ndarray of bool, optional
        Samples the centre and spread are taken from (default: all).
    robust : bool, default False
        Median and 1.4826 MAD instead of mean and standard deviation.

    Returns
    -------
    numpy.ndarray
        The z-scored trace.
    """
    x = np.asarray(x, dtype=float)
    ref = x if mask is None else x[mask]
    if ref.size < 2:
        raise InputError("z-score: fewer than 2 samples in the reference epoch")
    if robust:
        centre = float(np.median(ref))
        spread = 1.4826 * float(np.median(np.abs(ref - centre)))
    else:
        centre, spread = float(ref.mean()), float(ref.std())
    if not spread > 0:
        raise InputError("z-score: the trace is constant over the reference epoch (spread 0)")
    out = x - centre
    out /= spread
    return out


def resample(x: np.ndarray, rate: float, new_rate: float) -> np.ndarray:
    """Polyphase resampling (anti-aliased) from ``rate`` to ``new_rate`` Hz.

    Parameters
    ----------
    x : numpy.ndarray
        A trace sampled at ``rate``.
    rate, new_rate : float
        Its sampling rate and the rate wanted (Hz).

    Returns
    -------
    numpy.ndarray
        The resampled trace.
    """
    from fractions import Fraction

    from scipy.signal import resample_poly

    if new_rate <= 0:
        raise InputError(f"`resample_hz` {new_rate:g}: the new rate must be positive")
    frac = Fraction(float(new_rate) / float(rate)).limit_denominator(1000)
    return resample_poly(np.asarray(x, dtype=float), frac.numerator, frac.denominator)
