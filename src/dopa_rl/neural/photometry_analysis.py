"""One photometry recording analysed around its events: the pipeline, the event-aligned matrix, per-trial
named windows, bootstrap bands per trial type and transients (what ``dopa-rl photometry`` runs).

:func:`analyse_photometry` returns a :class:`PhotometryAnalysis`; its :meth:`~PhotometryAnalysis.summary`
is the JSON-ready summary (docs/dopamine.md).  Events may be the transients detected in the trace itself
(``event_times="transients"``, GuPPy #201's spontaneous mode).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dopa_rl.errors import InputError
from dopa_rl.io.nwb_types import Photometry
from dopa_rl.neural.alignment import PeriEvent, check_window, peri_event_matrix, window_measures
from dopa_rl.neural.peri_stats import BootstrapBand, bootstrap_band, window_table
from dopa_rl.neural.pipeline import PhotometryPipeline, ProcessedPhotometry
from dopa_rl.neural.transients import TransientSettings, detect_transients

__all__ = ["PhotometryAnalysis", "analyse_photometry", "TRANSIENT_EVENTS"]

#: ``event_times`` value that aligns to the detected transients.
TRANSIENT_EVENTS = "transients"


@dataclass
class PhotometryAnalysis:
    """Everything :func:`analyse_photometry` computed (see there)."""

    processed: ProcessedPhotometry
    event: str
    peri: PeriEvent
    baseline: tuple[float, float]
    response: tuple[float, float]
    named_windows: dict[str, tuple[float, float]]
    windows: pd.DataFrame | None
    windows_excluded: dict[str, int]
    bands: dict[str, tuple[np.ndarray, BootstrapBand]]
    n_boot: int
    transients: pd.DataFrame | None
    transient_settings: TransientSettings | None
    trial_type: str | None = None
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary: ``rate``, ``event``, ``control_fit``, ``n_events``, ``excluded``, ``peak_z``,
        ``peak_time``, ``response``, ``steps``, ``windows`` (when named), ``bands``, ``transients`` (when
        detected), ``warnings``."""
        proc, pe = self.processed, self.peri
        mean = pe.mean()
        after = pe.time > 0
        i = int(np.flatnonzero(after)[np.argmax(mean[after])]) if after.any() else int(np.argmax(mean))
        meas = window_measures(pe.matrix, pe.time, self.response, self.baseline)
        cf = proc.control_fit
        out: dict[str, Any] = {
            "rate": proc.rate, "event": self.event,
            "control_fit": None if cf is None else {"slope": cf.slope, "intercept": cf.intercept, "method": cf.method,
                                                    "n_samples": cf.n_samples,
                                                    "epoch": list(cf.baseline) if cf.baseline else None},
            "n_events": pe.n_events, "excluded": pe.excluded, "peak_z": float(mean[i]), "peak_time": float(pe.time[i]),
            "response": {"window": list(self.response), "baseline": list(self.baseline),
                         **{k: float(meas[k].mean()) for k in ("mean", "peak", "auc")}},
            "steps": proc.steps,
        }
        w = self.windows
        if w is not None:
            out["windows"] = {
                "baseline": list(self.baseline), "units": {"peak": "z", "auc": "z*s", "time": "s from the event"},
                "windows": {k: list(v) for k, v in self.named_windows.items()}, "excluded": self.windows_excluded,
                "mean": {k: {"n": int(len(g)), "peak": float(g["peak"].mean()), "auc": float(g["auc"].mean())}
                         for k, g in w.groupby("window", sort=False)},
                "per_trial": w.to_dict(orient="records"),
            }
        out["bands"] = {
            "baseline": list(self.baseline), "level": 0.95, "n_boot": self.n_boot, "trial_type": self.trial_type,
            "groups": {k: {"n_trials": b.n_trials, "excludes_baseline": [list(iv) for iv in b.intervals()]}
                       for k, (_, b) in self.bands.items()}}
        if self.transients is not None:
            tr = self.transients
            duration = float(proc.timestamps[-1] - proc.timestamps[0])
            out["transients"] = {"settings": self.transient_settings.to_dict(), "n": int(len(tr)),
                                 "per_minute": float(len(tr) / (duration / 60.0)) if duration > 0 else None,
                                 "events": tr.to_dict(orient="records")}
        out["warnings"] = list(self.warnings)
        return out


def _bands(pe: PeriEvent, types, baseline, n_boot: int, trial_type: str | None):
    kept = None if types is None else np.asarray(types, dtype=object)[pe.kept]
    groups = {"all": np.ones(pe.n_events, bool)} if kept is None else \
        {str(v): kept == v for v in dict.fromkeys(kept)}
    bands = {}
    for label, rows in groups.items():
        if label == "":
            warnings.warn(f"`trial_types` {trial_type or ''}: {int(rows.sum())} trial(s) without a value are left "
                          "out of the bands", stacklevel=3)
        elif rows.sum() < 2:
            warnings.warn(f"`trial_types` {trial_type or ''}: type {label!r} has {int(rows.sum())} trial; no band",
                          stacklevel=3)
        else:
            bands[label] = (pe.matrix[rows], bootstrap_band(pe.matrix[rows], pe.time, baseline=baseline, n_boot=n_boot))
    return bands


def analyse_photometry(phot: Photometry, event_times, *, pipeline: PhotometryPipeline | None = None,
                       event: str = "event", window: tuple[float, float] = (-1.0, 3.0),
                       named_windows: dict[str, tuple[float, float]] | None = None,
                       baseline: tuple[float, float] = (-1.0, 0.0), response: tuple[float, float] = (0.0, 1.0),
                       trial_types=None, trial_type: str | None = None,
                       transients: TransientSettings | None = None, n_boot: int = 2000) -> PhotometryAnalysis:
    """Run the pipeline on ``phot`` and measure everything around ``event_times``.

    Parameters
    ----------
    phot : Photometry
        The recording.
    event_times : array-like or "transients"
        Event times (s, NaN = missing), or :data:`TRANSIENT_EVENTS` to align to the detected transients
        (needs ``transients``).
    pipeline : PhotometryPipeline, optional
        Preprocessing (default: Akam's pipeline, ``PhotometryPipeline()``).
    event : str
        Name of the event (for messages and the summary).
    window : (float, float)
        Peri-event window of the matrix, heatmaps and bands (s).
    named_windows : dict, optional
        ``{name: (start, stop)}``: per-trial peak, peak time and AUC (z x s) of the baseline-subtracted z-score
        (:func:`dopa_rl.neural.peri_stats.window_table`).
    baseline, response : (float, float)
        Per-trial baseline (subtracted everywhere) and the summary's response window (s).
    trial_types : array-like, optional
        One label per event (empty string: no type); bands per label instead of one over all events.
    trial_type : str, optional
        Name of the labels' column (for messages and the summary).
    transients : TransientSettings, optional
        Detect transients with these settings (:func:`dopa_rl.neural.transients.transient_settings`).
    n_boot : int
        Bootstrap resamples per band.

    Returns
    -------
    PhotometryAnalysis
    """
    pipeline = pipeline or PhotometryPipeline()
    window, baseline = check_window(window, "`window`"), check_window(baseline, "`baseline`")
    response = check_window(response, "`response`")
    named = dict(named_windows or {})
    spontaneous = isinstance(event_times, str)
    if spontaneous and event_times != TRANSIENT_EVENTS:
        raise InputError(f"`event_times` {event_times!r}: give times, or {TRANSIENT_EVENTS!r}")
    if spontaneous and transients is None:
        raise InputError(f"`event` {TRANSIENT_EVENTS} aligns to the detected transients: add `transients` settings")
    if spontaneous and trial_types is not None:
        raise InputError(f"`trial_types` need events of a trials table, not {TRANSIENT_EVENTS}")
    if int(n_boot) < 100:
        raise InputError(f"`n_boot` {n_boot}: at least 100 resamples are needed for a 95% band")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        proc = pipeline.run(phot)
        tr = None
        if transients is not None:
            tr = detect_transients(proc.z, proc.rate, t0=proc.t0, settings=transients, dff=proc.dff)
        if spontaneous:
            times = tr["timestamp"].to_numpy()
            if not len(times):
                raise InputError(f"`event` {TRANSIENT_EVENTS}: no transient was detected; lower the `threshold` "
                                 "or check the trace")
        else:
            times = np.asarray(event_times, dtype=float)
        if trial_types is not None and len(trial_types) != len(times):
            raise InputError(f"`trial_types`: {len(trial_types)} labels for {len(times)} '{event}' events")
        pe = peri_event_matrix(proc.z, times, window, rate=proc.rate, t0=proc.t0)
        if pe.n_events == 0:
            raise InputError(f"none of the {len(times)} '{event}' events has its {window[0]:g} to {window[1]:g} s "
                             f"window inside the recording ({proc.t0:.6g} to {proc.timestamps[-1]:.6g} s)")
        win, win_excluded = None, {}
        if named:
            lo = min(baseline[0], *(a for a, _ in named.values()))
            hi = max(baseline[1], *(b for _, b in named.values()))
            # one sample more on each side: window ends between samples are interpolated, never cut short
            pad = 1.0 / proc.rate
            if (hi - lo + 2 * pad) * proc.rate >= len(proc.z):
                raise InputError(f"`named_windows` with the baseline span {lo:g} to {hi:g} s: longer than the "
                                 f"recording ({len(proc.z) / proc.rate:.6g} s)")
            wpe = peri_event_matrix(proc.z, times, (lo - pad, hi + pad), rate=proc.rate, t0=proc.t0, warn=False)
            if wpe.n_events == 0:
                raise InputError(f"`named_windows`: none of the {len(times)} '{event}' events has {lo:g} to {hi:g} s "
                                 f"(the baseline and every named window) inside the recording ({proc.t0:.6g} to "
                                 f"{proc.timestamps[-1]:.6g} s)")
            win = window_table(wpe.matrix, wpe.time, named, baseline=baseline, trial_ids=np.flatnonzero(wpe.kept))
            win_excluded = wpe.excluded
        bands = _bands(pe, trial_types, baseline, int(n_boot), trial_type)
    return PhotometryAnalysis(proc, event, pe, baseline, response, named, win, win_excluded, bands, int(n_boot), tr,
                              transients, trial_type, [str(w.message) for w in caught] + list(proc.notes))
