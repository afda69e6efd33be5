"""NWB in and out: the one place the rest of dopa_rl imports NWB functionality from.

Reading (files are opened read-only and never modified)::

    from dopa_rl.io import nwb
    info = nwb.inspect_nwb("session.nwb")                 # what the file holds, what is missing
    trials = nwb.read_behavior("session.nwb", columns={"cue": "stimulus"}, trials_table="trials")
    phot = nwb.read_photometry("session.nwb")             # signal + isosbestic/control channel
    events = nwb.read_events("session.nwb")               # {"lick": times, ...}
    spikes = nwb.read_units("session.nwb")                # SpikeTrains: unit id -> spike times (s)

Writing (atomic): ``nwb.write_session(path, SessionData(...))``; simulated sessions come from
:mod:`dopa_rl.io.synthetic`.  pynwb is imported lazily inside these functions.
"""
from __future__ import annotations

import os
from typing import Any

from dopa_rl.io.nwb_inspect import format_inspection, inspect_nwb
from dopa_rl.io.nwb_photometry import find_time_series, read_photometry
from dopa_rl.io.nwb_read import (count_events_in_windows, interval_tables, open_nwb, read_behavior, read_events,
                                 read_true_parameters, read_true_trajectories, table_to_frame)
from dopa_rl.io.nwb_types import Photometry, SessionData, SessionMetadata
from dopa_rl.io.nwb_write import build_nwbfile, write_session

__all__ = [
    "open_nwb", "inspect_nwb", "format_inspection", "read_behavior", "read_events", "read_photometry",
    "read_units", "read_true_parameters", "read_true_trajectories", "write_session", "build_nwbfile", "table_to_frame",
    "interval_tables", "find_time_series", "count_events_in_windows", "Photometry", "SessionData",
    "SessionMetadata",
]


def read_units(path: str | os.PathLike[str], *, sampling_frequency: float | None = None) -> Any:
    """Spike trains of ``nwbfile.units`` (read through spikeinterface) as :class:`dopa_rl.io.spikes.SpikeTrains`."""
    from dopa_rl.io.spikes import read_spike_trains

    return read_spike_trains(path, sampling_frequency=sampling_frequency)
