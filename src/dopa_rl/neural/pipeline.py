"""The photometry preprocessing pipeline: chosen steps run in order, each recorded with its parameters.

Default (Akam's pyPhotometry pipeline, the one the real dLight recording's reference figures use):
10 Hz zero-phase low-pass of both channels, double-exponential photobleaching fit subtracted from each,
OLS fit of the detrended control to the detrended signal, ``dF/F = (signal - fitted control) / signal
trend``, z-scored over the session.  With ``detrend="none"`` the isosbestic convention applies:
``dF/F = (signal - fitted control) / fitted control``.  Without a control channel, dF/F is the detrended
signal over its trend.

Options for what GuPPy users ask for (docs/dopamine.md): ``fit_epoch`` fits the control on a baseline epoch
only and applies the fit to the whole recording (drug step-changes, GuPPy #200); ``bleach`` removes the
slow drift left in dF/F after control subtraction in long recordings (GuPPy #209) by a robust exponential
or polynomial fit (:func:`dopa_rl.neural.photometry.bleach_trend`).
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from dopa_rl.errors import InputError
from dopa_rl.io.nwb_types import Photometry
from dopa_rl.neural import photometry as P

__all__ = ["PhotometryPipeline", "ProcessedPhotometry", "DETREND_METHODS", "ZSCORE_METHODS", "BLEACH_CHOICES"]

DETREND_METHODS = ("double-exp", "highpass", "none")
ZSCORE_METHODS = ("session", "baseline", "robust")
BLEACH_CHOICES = ("none", *P.BLEACH_METHODS)


@dataclass
class ProcessedPhotometry:
    """Output of :meth:`PhotometryPipeline.run`: dF/F and its z-score on ``timestamps`` (regular, ``rate``)."""

    timestamps: np.ndarray
    rate: float
    dff: np.ndarray
    z: np.ndarray
    control_fit: P.ControlFit | None
    steps: list[dict[str, Any]]
    name: str = "photometry"
    notes: list[str] = field(default_factory=list)

    @property
    def t0(self) -> float:
        return float(self.timestamps[0])


@dataclass
class PhotometryPipeline:
    """Which preprocessing steps to run, and with which parameters (all recorded in ``steps``).

    ``lowpass_hz`` None skips the low-pass; ``control_fit`` "none" ignores the control channel;
    ``fit_epoch`` (start, stop) seconds fits the control on that epoch only; ``zscore`` "baseline" needs
    ``zscore_epoch``; ``resample_hz`` resamples dF/F at the end; ``bleach`` (``exp``, ``double-exp``,
    ``poly1``-``poly3``) subtracts the drift fitted to dF/F after control subtraction, robustly unless
    ``bleach_robust`` is False, on the ``bleach_epoch`` only when given (extrapolated to the rest).
    """

    lowpass_hz: float | None = 10.0
    detrend: str = "double-exp"
    highpass_hz: float = 0.001
    control_fit: str = "ols"
    fit_epoch: tuple[float, float] | None = None
    zscore: str = "session"
    zscore_epoch: tuple[float, float] | None = None
    resample_hz: float | None = None
    bleach: str = "none"
    bleach_robust: bool = True
    bleach_epoch: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.detrend not in DETREND_METHODS:
            problems.append(f"`detrend` {self.detrend!r}: choose one of {', '.join(DETREND_METHODS)}")
        if self.control_fit not in (*P.CONTROL_METHODS, "none"):
            problems.append(f"`control_fit` {self.control_fit!r}: choose one of {', '.join(P.CONTROL_METHODS)}, none")
        if self.bleach not in BLEACH_CHOICES:
            problems.append(f"`bleach` {self.bleach!r}: choose one of {', '.join(BLEACH_CHOICES)}")
        if self.zscore not in ZSCORE_METHODS:
            problems.append(f"`zscore` {self.zscore!r}: choose one of {', '.join(ZSCORE_METHODS)}")
        if self.zscore == "baseline" and self.zscore_epoch is None:
            problems.append("`zscore` baseline needs `zscore_epoch` START STOP (seconds)")
        if self.bleach_epoch is not None and self.bleach == "none":
            problems.append("`bleach_epoch` needs a `bleach` method (exp, double-exp, poly1-poly3)")
        for name, ep in (("`fit_epoch`", self.fit_epoch), ("`zscore_epoch`", self.zscore_epoch),
                         ("`bleach_epoch`", self.bleach_epoch)):
            if ep is not None and not ep[1] > ep[0]:
                problems.append(f"{name} {ep[0]:g} {ep[1]:g}: the end must come after the start")
        if problems:
            raise InputError("; ".join(problems))

    def params(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("fit_epoch", "zscore_epoch", "bleach_epoch"):
            d[k] = list(d[k]) if d[k] is not None else None
        return d

    def _epoch(self, t: np.ndarray, epoch: tuple[float, float], what: str) -> np.ndarray:
        m = (t >= epoch[0]) & (t < epoch[1])
        if m.sum() < 3:
            raise InputError(f"{what} {epoch[0]:g} {epoch[1]:g}: fewer than 3 samples of the recording "
                             f"({t[0]:.6g} to {t[-1]:.6g} s) fall in it")
        return m

    def run(self, phot: Photometry) -> ProcessedPhotometry:
        """Run the steps on one recording (its arrays are not modified)."""
        t = np.asarray(phot.timestamps, dtype=float)
        sig = P.check_trace(phot.signal, f"photometry '{phot.name}' signal")
        if len(t) != len(sig):
            raise InputError(f"photometry '{phot.name}': {len(sig)} samples but {len(t)} timestamps")
        rate = float(phot.rate) if phot.rate else float(1.0 / np.median(np.diff(t)))
        steps: list[dict[str, Any]] = []
        notes: list[str] = []
        ctl = None
        if phot.control is not None and self.control_fit != "none":
            ctl = np.asarray(phot.control, dtype=float)
            if ctl.shape != sig.shape:
                raise InputError(f"photometry '{phot.name}': control channel has {ctl.shape[0]} samples but the "
                                 f"signal {sig.shape[0]}; give a control on the signal's timestamps")
            ctl = P.check_trace(ctl, f"photometry '{phot.name}' control")
        elif phot.control is None and self.control_fit != "none":
            notes.append("no control channel: dF/F without motion correction")
        if not phot.rate and np.abs(np.diff(t) - 1.0 / rate).max() > 0.25 / rate:
            # jittered clock: filters and windows need a regular grid; interpolate onto one at the median rate
            grid = t[0] + np.arange(int(np.floor((t[-1] - t[0]) * rate)) + 1) / rate
            sig = np.interp(grid, t, sig)
            ctl = None if ctl is None else np.interp(grid, t, ctl)
            t = grid
            steps.append({"step": "regularise", "rate_hz": rate, "method": "linear interpolation"})
        if self.lowpass_hz is not None:
            if self.lowpass_hz >= rate / 2:
                notes.append(f"low-pass {self.lowpass_hz:g} Hz skipped: at or above the Nyquist frequency {rate / 2:g} Hz")
            else:
                sig = P.lowpass(sig, rate, self.lowpass_hz)
                ctl = None if ctl is None else P.lowpass(ctl, rate, self.lowpass_hz)
                steps.append({"step": "lowpass", "cutoff_hz": self.lowpass_hz, "order": 2, "zero_phase": True})
        sig_base = ctl_base = None
        if self.detrend == "double-exp":
            sig_base, ps = P.double_exponential_trend(sig, rate, t)
            step = {"step": "detrend", "method": "double-exp", "fit_on": "bin means (1 s, or duration/2500)", "signal": ps}
            if ctl is not None:
                ctl_base, pc = P.double_exponential_trend(ctl, rate, t)
                step["control"] = pc
            steps.append(step)
        elif self.detrend == "highpass":
            hp = P.highpass(sig, rate, self.highpass_hz)
            sig_base = sig - hp
            if ctl is not None:
                hc = P.highpass(ctl, rate, self.highpass_hz)
                ctl_base = ctl - hc
            steps.append({"step": "detrend", "method": "highpass", "cutoff_hz": self.highpass_hz})
        fit = None
        mask = None if self.fit_epoch is None else self._epoch(t, self.fit_epoch, "`fit_epoch`")
        if sig_base is not None:
            s_det = sig - sig_base
            if ctl is not None:
                c_det = ctl - ctl_base
                fit = P.fit_control(s_det, c_det, self.control_fit, mask=mask)
                s_det -= fit.predict(c_det)
                del c_det
            out = P.dff(s_det, sig_base, 0.0)
            formula = "(signal - trend - fitted control) / trend" if ctl is not None else "(signal - trend) / trend"
        else:
            if ctl is not None:
                fit = P.fit_control(sig, ctl, self.control_fit, mask=mask)
                fitted = fit.predict(ctl)
                out = P.dff(sig, fitted)
                formula = "(signal - fitted control) / fitted control"
            else:
                mean = float(sig.mean() if mask is None else sig[mask].mean())
                out = P.dff(sig, np.full_like(sig, mean))
                formula = "(signal - mean) / mean"
        if fit is not None:
            if self.fit_epoch is not None:
                fit = P.ControlFit(fit.slope, fit.intercept, fit.method, fit.n_samples, fit.iterations,
                                   tuple(self.fit_epoch))
            steps.append({"step": "control_fit", **fit.to_dict()})
            if fit.slope <= 0:
                msg = (f"control fit slope is {fit.slope:.3g} (not positive): the control does not follow the signal; "
                       "check the channels or use `control_fit` none")
                warnings.warn(msg, stacklevel=2)
                notes.append(msg)
        steps.append({"step": "dff", "formula": formula})
        if self.fit_epoch is not None and sig_base is not None:
            notes.append(f"the {self.detrend} photobleaching trend was fitted on the whole recording, not on "
                         f"`fit_epoch`: it absorbs part of a slow step change; with drug step-changes use "
                         f"`detrend` none (the isosbestic convention) so that only the fit epoch sets the baseline")
        if self.bleach != "none":
            if self.fit_epoch is not None and self.bleach_epoch is None:
                notes.append(f"`bleach` {self.bleach} was fitted on the whole recording: a step change after "
                             "`fit_epoch` is partly taken as drift; give `bleach_epoch` (e.g. the fit epoch) "
                             "to keep it")
            drift, info = P.bleach_trend(out, rate, t, self.bleach, robust=self.bleach_robust,
                                         epoch=self.bleach_epoch)
            out -= drift
            if info.get("tau_at_bound"):
                notes.append(f"`bleach` {self.bleach}: the drift's time constant reached its bound "
                             f"({info['params'].get('tau_s', info['params'].get('tau1_s')):.3g} s): it is nearly a "
                             "straight line (or a step); poly1 fits that with fewer parameters")
            steps.append({"step": "bleach_detrend", "on": "dF/F after control subtraction",
                          "loss": "Tukey bisquare IRLS (MAD scale)" if self.bleach_robust else "least squares", **info})
        if self.resample_hz is not None and self.resample_hz != rate:
            out = P.resample(out, rate, self.resample_hz)
            rate = float(self.resample_hz)
            t = t[0] + np.arange(len(out)) / rate
            steps.append({"step": "resample", "rate_hz": rate, "method": "polyphase"})
        zmask = None if self.zscore != "baseline" else self._epoch(t, self.zscore_epoch, "`zscore_epoch`")
        z = P.zscore(out, mask=zmask, robust=self.zscore == "robust")
        steps.append({"step": "zscore", "method": self.zscore,
                      "epoch": list(self.zscore_epoch) if self.zscore == "baseline" else None})
        return ProcessedPhotometry(t, rate, out, z, fit, steps, phot.name, notes)
