"""Dopamine analysis: peri-event alignment, photometry preprocessing, spike rates, per-trial tables,
regression of dopamine responses on a model's reward-prediction errors (docs/dopamine.md); the
distributional-RL unit analysis (:mod:`dopa_rl.neural.distributional`, docs/distributional.md) and the
event-kernel encoding model (:mod:`dopa_rl.neural.kernels`, docs/event-kernels.md).

Every step is a pure function over arrays; :class:`~dopa_rl.neural.pipeline.PhotometryPipeline` records
the steps and parameters it ran.  ``neural`` uses ``io`` types and ``models``; ``io`` never imports it.
"""
from __future__ import annotations

from dopa_rl.neural.alignment import PeriEvent, peri_event_matrix, window_measures
from dopa_rl.neural.photometry import (ControlFit, dff, double_exponential_trend, fit_control, highpass, lowpass,
                                       resample, zscore)
from dopa_rl.neural.pipeline import PhotometryPipeline, ProcessedPhotometry

__all__ = ["PeriEvent", "peri_event_matrix", "window_measures", "ControlFit", "fit_control", "dff", "lowpass",
           "highpass", "double_exponential_trend", "zscore", "resample", "PhotometryPipeline", "ProcessedPhotometry"]
