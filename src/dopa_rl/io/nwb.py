"""NWB in and out: the one place the rest of dopa_rl imports NWB functionality from.

Reading (files are opened read-only and never modified)::

    from dopa_rl.io import nwb
    info = nwb.inspect_nwb("session.nwb")                 # what the file holds, what is missing
    trials = nwb.read_behavior("session.nwb", columns={"cue": "stimulus"}, trials_table="trials")
    phot = nwb.read_photometry("session.nwb")             # signal + isosbestic/control channel
    events = nwb.read_events("session.nwb")               # {"lick": times, ...}
    tables = nwb.read_event_tables("session.nwb")         # {"ttl": DataFrame(timestamp, data...), ...}
    spikes = nwb.read_units("session.nwb")                # SpikeTrains: unit id -> spike times (s)
    results = nwb.read_results("session.nwb")             # {"dopa_rl_fit": ResultTables, ...} (result.to_nwb)

To read several things from one file, open it once (saves ~0.1 s per reader on an hour-long session)::

    with nwb.NWBSession("session.nwb") as s:
        trials, phot, events, spikes = s.behavior(), s.photometry(), s.events(), s.units()

Writing (atomic): ``nwb.write_session(path, SessionData(...))``; simulated sessions come from
:mod:`dopa_rl.io.synthetic`.  pynwb is imported lazily inside these functions.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dopa_rl.io.nwb_inspect import format_inspection, inspect_nwb, inspect_nwbfile
from dopa_rl.io.nwb_photometry import find_time_series, photometry_from_nwbfile, read_photometry
from dopa_rl.io.nwb_read import (behavior_from_nwbfile, count_events_in_windows, event_frames_from_nwbfile,
                                 events_from_nwbfile, interval_tables, open_nwb, read_behavior, read_event_tables,
                                 read_events, read_true_parameters, read_true_trajectories, table_to_frame)
from dopa_rl.io.nwb_results import add_result, read_results, results_from_nwbfile
from dopa_rl.io.nwb_types import AnalogSeries, Photometry, SessionData, SessionMetadata
from dopa_rl.io.nwb_write import build_nwbfile, write_session

__all__ = [
    "open_nwb", "inspect_nwb", "format_inspection", "read_behavior", "read_events", "read_event_tables", "read_photometry",
    "read_units", "read_true_parameters", "read_true_trajectories", "write_session", "build_nwbfile", "table_to_frame",
    "interval_tables", "find_time_series", "count_events_in_windows", "Photometry", "SessionData",
    "SessionMetadata", "AnalogSeries", "NWBSession", "read_results", "results_from_nwbfile", "add_result",
]


def read_units(path: str | os.PathLike[str], *, sampling_frequency: float | None = None) -> Any:
    """Spike trains of ``nwbfile.units`` (read through spikeinterface) as :class:`dopa_rl.io.spikes.SpikeTrains`."""
    from dopa_rl.io.spikes import read_spike_trains

    return read_spike_trains(path, sampling_frequency=sampling_frequency)


class NWBSession:
    """One NWB file opened once, read-only, for several reads; use as a context manager.

    Methods mirror the module functions: :meth:`behavior`, :meth:`photometry`, :meth:`events`,
    :meth:`units`, :meth:`inspect`.  ``nwbfile`` is the open ``pynwb.NWBFile`` while the session is open.
    :meth:`close` (alias :meth:`safe`) is idempotent.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.nwbfile: Any = None
        self._stack: contextlib.ExitStack | None = None

    def open(self) -> "NWBSession":
        """Open the file (errors are InputErrors naming it); a no-op when already open."""
        if self._stack is None:
            stack = contextlib.ExitStack()
            self.nwbfile = stack.enter_context(open_nwb(self.path))
            self._stack = stack
        return self

    def close(self) -> None:
        """Close the file; safe to call any number of times."""
        stack, self._stack, self.nwbfile = self._stack, None, None
        if stack is not None:
            stack.close()

    safe = close

    def __enter__(self) -> "NWBSession":
        return self.open()

    def __exit__(self, *exc: Any) -> bool | None:
        stack, self._stack, self.nwbfile = self._stack, None, None
        # the stack's exit converts h5py errors raised inside the block into InputErrors naming the file
        return stack.__exit__(*exc) if stack is not None else None

    def _file(self) -> Any:
        return self.open().nwbfile

    def behavior(self, *, columns: Mapping[str, str] | None = None, trials_table: str | None = None,
                 validate: bool = True) -> pd.DataFrame:
        """The behavior table (see :func:`read_behavior`)."""
        return behavior_from_nwbfile(self._file(), self.path, columns=columns, trials_table=trials_table,
                                     validate=validate)

    def photometry(self, series: str | None = None, **kwargs: Any) -> Photometry:
        """One photometry recording (see :func:`read_photometry`)."""
        return photometry_from_nwbfile(self._file(), self.path, series, **kwargs)

    def events(self) -> dict[str, np.ndarray]:
        """Event times by name (see :func:`read_events`)."""
        return events_from_nwbfile(self._file())

    def event_tables(self) -> dict[str, pd.DataFrame]:
        """Events with all their columns (see :func:`read_event_tables`)."""
        return event_frames_from_nwbfile(self._file())

    def inspect(self, **kwargs: Any) -> dict[str, Any]:
        """The summary of :func:`inspect_nwb`."""
        return inspect_nwbfile(self._file(), self.path, **kwargs)

    def results(self) -> dict[str, Any]:
        """The analysis results written with ``result.to_nwb`` (see :func:`read_results`)."""
        return results_from_nwbfile(self._file())

    def units(self, *, sampling_frequency: float | None = None) -> Any:
        """Spike trains (see :func:`read_units`; spikeinterface reads the file on its own)."""
        return read_units(self.path, sampling_frequency=sampling_frequency)
