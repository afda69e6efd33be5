"""Transient detection in a photometry trace with indicator-specific defaults (GuPPy #201, #211).

A transient is the highest point of a run of the trace above half the threshold, rising at least
``threshold`` robust standard deviations above a sliding baseline, at least ``min_width_s`` above half the
threshold (noise riding on a transient does not split it: dips below that level shorter than
``min_separation_s`` are bridged, so two transients are at least that far apart), and, optionally, at
least ``min_dff`` above the baseline in dF/F.

The sliding baseline: in windows of ``window_s`` seconds centred every ``window_s / 4`` seconds, the median
and the robust SD (1.4826 x the median absolute deviation), then both again from the samples below the
median + 2 SD, corrected for that truncation so that Gaussian noise gives back exactly its median and SD;
linearly interpolated between window centres.  GuPPy (``analysis/transients.py``) does the same two passes
on non-overlapping 15 s chunks with the MAD unscaled and uncorrected (threshold median + 3 MAD of the rest);
here the threshold is in units of the noise SD itself, so "3" means 3 SD of the noise.  With 150
transients 8 noise SDs high in 20 min of filtered noise (3 to 7 s apart), one pass inflated the SD up to
1.8x; with the two passes its median ratio to the noise SD was 1.0 (dLight) to 1.13 (GRAB-DA1m).

Default widths come from the sensor kinetics in :data:`dopa_rl.models.indicator.INDICATORS` (one place
for those numbers, with their sources): ``min_width_s`` is the full width at half maximum of the sensor's
impulse response (nothing the sensor reports can be narrower), ``min_separation_s`` its decay time constant
(two peaks closer than that are one transient as the sensor sees it).  The threshold default
(:data:`THRESHOLDS`) is per indicator: the lowest of 3 (GuPPy's default), 3.5, ... 6 robust SDs at which
eight hours of white noise low-passed at 10 Hz (the pipeline's default) gave no false transient with that
indicator's width and separation; at GuPPy's 3 SD every indicator gave hundreds (see :data:`THRESHOLDS`).
With another low-pass, or noise of another spectrum, check the false-positive rate on a stretch without
transients (``bench/calibrate_transients.py`` shows how) and set ``threshold``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dopa_rl.errors import InputError

__all__ = ["TransientSettings", "transient_settings", "detect_transients", "sliding_baseline",
           "TRANSIENT_INDICATORS", "TRANSIENT_COLUMNS", "THRESHOLDS"]

TRANSIENT_COLUMNS = ("timestamp", "amplitude_z", "amplitude_sd", "width_s", "baseline", "robust_sd")
#: CLI names of the indicators (keys of ``dopa_rl.models.indicator.INDICATORS``); ``dlight`` is dLight1.1.
TRANSIENT_INDICATORS = {"dlight": "dlight1.1", "gcamp6f": "gcamp6f", "gcamp6m": "gcamp6m", "gcamp6s": "gcamp6s",
                        "grab-da": "grab-da1m", "grab-da1m": "grab-da1m", "grab-da1h": "grab-da1h"}
#: Default threshold (robust SDs above the sliding median) per indicator kinetics: the lowest of 3, 3.5, ... 6
#: with no false transient in 8 h of white noise low-passed at 10 Hz (100 Hz, seed 7;
#: ``bench/calibrate_transients.py``, figures in bench/README.md; tests/test_photometry_tasks.py checks an
#: hour of such noise per indicator).  False transients in those 8 h at 3 / 3.5 / 4 / 4.5 / 5 SD: dLight1.1
#: 532 / 72 / 7 / 1 / 0; GCaMP6f 444 / 50 / 1 / 1 / 0; GCaMP6m 776 / 104 / 5 / 0; GCaMP6s 1214 / 230 / 22 / 0;
#: GRAB-DA1m 1364 / 260 / 29 / 0; GRAB-DA1h 262 / 310 / 64 / 4 / 0.
THRESHOLDS = {"dlight1.1": 5.0, "gcamp6f": 5.0, "gcamp6m": 4.5, "gcamp6s": 4.5, "grab-da1m": 4.5, "grab-da1h": 5.0}


@dataclass(frozen=True)
class TransientSettings:
    """Detection parameters: threshold in robust SDs, widths in seconds, the baseline window, an optional
    dF/F floor (fraction, e.g. 0.02 for 2 %), and where the defaults came from."""

    threshold: float = 3.0
    min_width_s: float = 0.1
    min_separation_s: float = 0.1
    window_s: float = 15.0
    min_dff: float | None = None
    indicator: str | None = None
    source: str = ""

    def to_dict(self) -> dict:
        return {"threshold_sd": self.threshold, "min_width_s": self.min_width_s,
                "min_separation_s": self.min_separation_s, "window_s": self.window_s, "min_dff": self.min_dff,
                "indicator": self.indicator, "source": self.source}


def _fwhm(rise_s: float, decay_s: float) -> float:
    """Full width at half maximum of ``exp(-t/decay) - exp(-t/rise)`` (t >= 0), by root finding."""
    from scipy.optimize import brentq

    f = lambda t: np.exp(-t / decay_s) - np.exp(-t / rise_s)  # noqa: E731
    tp = rise_s * decay_s / (decay_s - rise_s) * np.log(decay_s / rise_s)
    half = f(tp) / 2
    t1 = brentq(lambda t: f(t) - half, 0.0, tp)
    t2 = brentq(lambda t: f(t) - half, tp, tp + 50 * decay_s)
    return float(t2 - t1)


def transient_settings(indicator: str | None = None, *, threshold: float | None = None,
                       min_width_s: float | None = None, min_separation_s: float | None = None,
                       window_s: float | None = None, min_dff: float | None = None) -> TransientSettings:
    """Settings for ``indicator`` (a key of :data:`TRANSIENT_INDICATORS`, or None for dLight's), each one
    overridable; bad values raise one InputError naming the parameter."""
    from dopa_rl.models.indicator import INDICATORS

    name = (indicator or "dlight").lower()
    if name not in TRANSIENT_INDICATORS:
        raise InputError(f"`indicator` {indicator!r}: choose one of {', '.join(TRANSIENT_INDICATORS)}")
    kin = INDICATORS[TRANSIENT_INDICATORS[name]]
    width = _fwhm(kin["rise_s"], kin["decay_s"])
    s = TransientSettings(
        threshold=THRESHOLDS[TRANSIENT_INDICATORS[name]] if threshold is None else float(threshold),
        min_width_s=width if min_width_s is None else float(min_width_s),
        min_separation_s=kin["decay_s"] if min_separation_s is None else float(min_separation_s),
        window_s=15.0 if window_s is None else float(window_s),
        min_dff=min_dff, indicator=name,
        source=(f"{TRANSIENT_INDICATORS[name]} kinetics (rise {kin['rise_s']:.3g} s, decay {kin['decay_s']:.3g} s; "
                "docs/indicator.md): min width = their FWHM, min separation = the decay; threshold: no false "
                "transient in 8 h of white noise low-passed at 10 Hz; window 15 s as GuPPy's"))
    for label, v in (("threshold", s.threshold), ("min_width_s", s.min_width_s), ("window_s", s.window_s)):
        if not (np.isfinite(v) and v > 0):
            raise InputError(f"`{label}` {v:g}: must be a positive number")
    if not (np.isfinite(s.min_separation_s) and s.min_separation_s >= 0):
        raise InputError(f"`min_separation_s` {s.min_separation_s:g}: must be 0 or more")
    if min_dff is not None and not (np.isfinite(min_dff) and min_dff > 0):
        raise InputError(f"`min_dff` {min_dff:g}: must be a positive fraction of dF/F")
    return s


_CLIP = 2.0  # second pass: samples above median + 2 robust SD are left out (GuPPy's highAmpFilt, in SDs)


def _truncated_constants(c: float = _CLIP) -> tuple[float, float]:
    """Median ``m`` and MAD ``d`` of a standard normal truncated above at ``c``: the second pass divides by
    them so that pure Gaussian noise gives back its own median and SD (no bias from the truncation)."""
    from scipy.optimize import brentq
    from scipy.stats import norm

    p = norm.cdf(c)
    m = float(norm.ppf(p / 2))
    d = brentq(lambda d: norm.cdf(min(m + d, c)) - norm.cdf(m - d) - p / 2, 1e-6, 10.0)
    return m, float(d)


def sliding_baseline(x: np.ndarray, rate: float, window_s: float = 15.0) -> tuple[np.ndarray, np.ndarray]:
    """Median and robust SD of ``x`` in windows of ``window_s`` s centred every ``window_s / 4`` s, linearly
    interpolated to every sample; raises when the trace is shorter than one window.

    Two passes per window: the median and 1.4826 MAD; then the same of the samples below median + 2 SD
    (transients out), corrected for that truncation so that Gaussian noise gives its true median and SD.
    """
    from numpy.lib.stride_tricks import sliding_window_view

    x = np.asarray(x, dtype=float)
    w = int(round(window_s * rate))
    if w < 5 or w > x.size:
        raise InputError(f"`window_s` {window_s:g}: needs 5 samples up to the whole trace ({x.size / rate:.3g} s) "
                         f"at {rate:g} Hz")
    hop = max(1, w // 4)
    starts = np.arange(0, x.size - w + 1, hop)
    if starts[-1] != x.size - w:
        starts = np.append(starts, x.size - w)
    blocks = sliding_window_view(x, w)[starts]
    med = np.median(blocks, axis=1)
    sd = 1.4826 * np.median(np.abs(blocks - med[:, None]), axis=1)
    kept = np.where(blocks <= (med + _CLIP * sd)[:, None], blocks, np.nan)
    m2 = np.nanmedian(kept, axis=1)
    mad2 = np.nanmedian(np.abs(kept - m2[:, None]), axis=1)
    mt, dt = _truncated_constants()
    sd = mad2 / dt
    med = m2 - mt * sd
    centres = starts + (w - 1) / 2.0
    idx = np.arange(x.size)
    return np.interp(idx, centres, med), np.interp(idx, centres, sd)


def _runs_and_peaks(u: np.ndarray, threshold: float, min_width: float, min_gap: float = 0.0
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Peak index and width (samples) of each transient of ``u`` (a trace in SDs above its baseline).

    A candidate is a run of samples at or above ``threshold / 2``, runs less than ``min_gap`` samples apart
    joined (noise dipping through the decay of one transient does not split it); its peak is the run's
    largest sample, which must reach ``threshold``; its width is the run's length, which must be at least
    ``min_width``.  A real transient reaching the threshold stays above half the threshold for at least its
    full width at half maximum, so the sensor's FWHM is the least width a real one can have.
    """
    above = u >= threshold / 2.0
    edges = np.diff(np.concatenate([[0], above.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    if not starts.size:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    if min_gap > 0 and starts.size > 1:
        join = (starts[1:] - stops[:-1]) < min_gap
        starts = starts[np.concatenate([[True], ~join])]
        stops = stops[np.concatenate([~join, [True]])]
    # the segment [start_i, start_i+1) holds run i and the gap after it, which is below threshold / 2:
    # the segment's maximum is the run's whenever the run reaches the threshold
    tops = np.maximum.reduceat(u, starts)
    ok = (tops >= threshold) & ((stops - starts) >= min_width)
    peaks = np.asarray([a + int(np.argmax(u[a:b])) for a, b in zip(starts[ok], stops[ok])], dtype=np.int64)
    return peaks, (stops[ok] - starts[ok]).astype(float)


def detect_transients(z: np.ndarray, rate: float, *, t0: float = 0.0, settings: TransientSettings | None = None,
                      dff: np.ndarray | None = None) -> pd.DataFrame:
    """Transients of the trace ``z`` (regularly sampled at ``rate`` Hz from time ``t0``).

    Parameters
    ----------
    z : ndarray
        The trace (z-scored dF/F, or any trace: the threshold is relative to its own sliding robust SD).
    rate : float
        Sampling rate (Hz).
    t0 : float
        Time of the first sample (s).
    settings : TransientSettings, optional
        Default: :func:`transient_settings` for dLight.
    dff : ndarray, optional
        dF/F on the same samples; needed for ``settings.min_dff``.

    Returns
    -------
    DataFrame
        One row per transient, columns :data:`TRANSIENT_COLUMNS`: ``timestamp`` (s), ``amplitude_z`` (peak
        minus the sliding median, units of ``z``), ``amplitude_sd`` (the same in robust SDs), ``width_s`` (time
        above half the threshold), and the local ``baseline`` and ``robust_sd``.
    """
    s = settings or transient_settings()
    z = np.asarray(z, dtype=float)
    if not (rate and np.isfinite(rate) and rate > 0):
        raise InputError(f"sampling rate {rate!r} must be a positive number")
    if not np.isfinite(z).all():
        raise InputError("transient detection: the trace has NaN or infinite samples")
    if s.min_dff is not None:
        if dff is None or np.shape(dff) != z.shape:
            raise InputError("`min_dff` needs the dF/F trace on the same samples as the z-scored one")
    med, sd = sliding_baseline(z, rate, s.window_s)
    if not (sd > 0).all():
        raise InputError("transient detection: the trace is constant over a baseline window (robust SD 0)")
    u = (z - med) / sd
    peaks, widths = _runs_and_peaks(u, s.threshold, s.min_width_s * rate, s.min_separation_s * rate)
    if s.min_dff is not None and peaks.size:
        dmed, _ = sliding_baseline(np.asarray(dff, dtype=float), rate, s.window_s)
        keep = (np.asarray(dff)[peaks] - dmed[peaks]) >= s.min_dff
        peaks, widths = peaks[keep], widths[keep]
    return pd.DataFrame({
        "timestamp": t0 + peaks / rate, "amplitude_z": z[peaks] - med[peaks], "amplitude_sd": u[peaks],
        "width_s": widths / rate, "baseline": med[peaks], "robust_sd": sd[peaks]})[list(TRANSIENT_COLUMNS)]
