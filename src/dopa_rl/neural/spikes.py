"""Spike trains around events: PSTHs, trial-wise firing rates in windows, baseline normalisation, and a
dopamine-unit selector.  Spike trains come from :func:`dopa_rl.io.nwb.read_units` (spikeinterface).

Counting uses ``np.searchsorted`` on the sorted spike times, so a unit of a million spikes costs one
binary search per window edge, not a pass over its spikes per trial.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dopa_rl.errors import InputError
from dopa_rl.io.nwb_read import count_events_in_windows

__all__ = ["PSTH", "psth", "window_rates", "normalise_rates", "select_dopamine_units"]


@dataclass
class PSTH:
    """Firing rate (Hz) per unit, trial and time bin: ``rates[u, trial, bin]``, bin centres in ``time``."""

    rates: np.ndarray
    time: np.ndarray
    unit_ids: list
    kept: np.ndarray  # [n_events] events with a finite time

    def mean(self) -> np.ndarray:
        """[units, bins] trial-averaged rate."""
        return self.rates.mean(axis=1)


def _events(events) -> tuple[np.ndarray, np.ndarray]:
    ev = np.atleast_1d(np.asarray(events, dtype=float))
    return ev, np.isfinite(ev)


def psth(trains: Mapping, events, window: tuple[float, float] = (-1.0, 2.0), bin_s: float = 0.05,
         units: Sequence | None = None) -> PSTH:
    """Peri-event histograms of each unit in ``units`` (default all), in Hz; NaN events are excluded."""
    if not bin_s > 0:
        raise InputError(f"`bin_s` {bin_s}: must be positive")
    if not window[1] > window[0]:
        raise InputError(f"`window` {window[0]:g} {window[1]:g}: the end must come after the start")
    ids = list(trains) if units is None else list(units)
    missing = [u for u in ids if u not in trains]
    if missing:
        raise InputError(f"unit(s) {', '.join(map(str, missing))} not found; units are {', '.join(map(str, trains))}")
    ev, ok = _events(events)
    edges = np.arange(window[0], window[1] + bin_s / 2, bin_s)
    grid = ev[ok, None] + edges[None, :]
    rates = np.zeros((len(ids), int(ok.sum()), len(edges) - 1))
    for i, u in enumerate(ids):
        t = np.asarray(trains[u], dtype=float)
        if t.size:
            c = np.searchsorted(t, grid, side="left")
            rates[i] = np.diff(c, axis=1) / bin_s
    return PSTH(rates, (edges[:-1] + edges[1:]) / 2, ids, ok)


def window_rates(trains: Mapping, events, window: tuple[float, float] = (0.0, 0.5), units: Sequence | None = None,
                 *, recording: tuple[float, float] | None = None) -> pd.DataFrame:
    """Firing rate (Hz) of each unit in ``[event + window[0], event + window[1])`` for every event.

    Returns a DataFrame [events x units]; NaN where the event time is missing or (when ``recording``
    (start, stop) is given) where the window leaves the recording.  A unit with no spikes at all gives a
    warning (its rates are 0, which is what was recorded).
    """
    if not window[1] > window[0]:
        raise InputError(f"response window {window[0]:g} {window[1]:g}: the end must come after the start")
    ids = list(trains) if units is None else list(units)
    ev, ok = _events(events)
    lo, hi = ev + window[0], ev + window[1]
    if recording is not None:
        ok = ok & (lo >= recording[0]) & (hi <= recording[1])
    out = {}
    for u in ids:
        t = np.asarray(trains[u], dtype=float)
        if t.size == 0:
            warnings.warn(f"unit {u} has no spikes; its rates are 0", stacklevel=2)
        r = count_events_in_windows(t, lo, hi) / (window[1] - window[0])
        out[u] = np.where(ok, r, np.nan)
    return pd.DataFrame(out)


def normalise_rates(rates: pd.DataFrame, baseline: pd.DataFrame, *, how: str = "subtract") -> pd.DataFrame:
    """Rates relative to each unit's baseline (same shape): ``subtract`` (Hz above the trial's baseline) or
    ``zscore`` (over trials, by the unit's baseline mean and SD; units with a constant baseline give NaN
    and a warning)."""
    if how == "subtract":
        return rates - baseline.to_numpy()
    if how == "zscore":
        mu = baseline.mean(axis=0)
        sd = baseline.std(axis=0, ddof=1)
        flat = [u for u in sd.index if not sd[u] > 0]
        if flat:
            warnings.warn(f"unit(s) {', '.join(map(str, flat))}: baseline rate does not vary; z-score undefined",
                          stacklevel=2)
        return (rates - mu) / sd.where(sd > 0)
    raise InputError(f"normalisation {how!r}: use subtract or zscore")


def named_units(trains: Mapping, units: Sequence, where: str = "") -> list:
    """The units named by the user (ids as given or as text, e.g. ``--units 3`` for unit 3), in that order;
    an InputError listing those not in ``trains`` and the ids there are."""
    ids = [next((k for k in trains if str(k) == str(u)), u) for u in units]
    missing = [str(u) for u in ids if u not in trains]
    if missing:
        raise InputError(f"{where + ': ' if where else ''}`units` {', '.join(missing)} not in the file; units are "
                         f"{', '.join(map(str, trains))}")
    return ids


def select_dopamine_units(trains: Mapping, reward_times, *, window: tuple[float, float] = (0.0, 0.3),
                          baseline: tuple[float, float] = (-1.0, 0.0), min_increase_hz: float = 1.0,
                          alpha: float = 0.01, units: Sequence | None = None) -> list:
    """Units whose reward response exceeds baseline: mean rate increase of at least ``min_increase_hz``
    and a one-sided paired Wilcoxon test p < ``alpha`` over rewarded trials; or the explicit ``units``."""
    if units is not None:
        return named_units(trains, units)
    from scipy.stats import wilcoxon

    resp = window_rates(trains, reward_times, window)
    base = window_rates(trains, reward_times, baseline)
    chosen = []
    for u in resp.columns:
        d = (resp[u] - base[u]).dropna().to_numpy()
        if d.size < 5 or d.mean() < min_increase_hz or not np.any(d != 0):
            continue
        if wilcoxon(d, alternative="greater").pvalue < alpha:
            chosen.append(u)
    return chosen
