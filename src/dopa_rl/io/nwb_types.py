"""Plain data containers shared by the NWB readers, the NWB writer, the simulator and the rig.

Nothing here imports pynwb, so the rig and the simulator can build a session in memory cheaply and only
pay for pynwb when they write it (:func:`dopa_rl.io.nwb.write_session`).
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["SessionMetadata", "Photometry", "AnalogSeries", "Table", "Intervals", "SessionData"]


@dataclass
class SessionMetadata:
    """Who, when and where: the subject and session fields every file we write carries (DANDI-ready).

    ``age`` is ISO-8601 (``"P90D"`` = 90 days old); ``sex`` is one of ``M``, ``F``, ``U``, ``O``;
    ``species`` is the Latin binomial.  ``experimenter`` entries are ``"Last, First"``.
    A naive ``session_start_time`` is taken as this computer's local time and given its UTC offset.
    """

    subject_id: str
    session_id: str
    session_start_time: _dt.datetime
    species: str = "Mus musculus"
    sex: str = "U"
    age: str = "P90D"
    subject_description: str = "mouse"
    session_description: str = "reward conditioning session"
    experiment_description: str = "Reward-prediction-error study: conditioning with dopamine recording."
    institution: str = "unspecified institution"
    lab: str | None = None
    experimenter: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ("dopamine", "reward prediction error", "reinforcement learning")
    identifier: str | None = None
    genotype: str | None = None
    strain: str | None = None

    def __post_init__(self) -> None:
        if self.session_start_time.tzinfo is None:  # naive = local time of this computer (as pynwb reads it)
            self.session_start_time = self.session_start_time.astimezone()


@dataclass
class Photometry:
    """One fiber-photometry recording: a signal channel and, when recorded, a control channel.

    ``timestamps`` are seconds from session start (one per sample).  ``rate`` is the sampling rate when
    the samples are regular (the writer then stores rate + starting time instead of timestamps).
    ``signal``/``control`` are in ``unit`` (already multiplied by the file's conversion factor).
    Channels are identified by excitation wavelength: e.g. 470 nm signal, 405-415 nm isosbestic control.
    """

    timestamps: np.ndarray
    signal: np.ndarray
    control: np.ndarray | None = None
    rate: float | None = None
    name: str = "photometry"
    unit: str = "V"
    signal_excitation_nm: float | None = 470.0
    signal_emission_nm: float | None = 525.0
    control_excitation_nm: float | None = 405.0
    control_emission_nm: float | None = 525.0
    indicator: str = "dLight1.1"
    control_indicator: str | None = None  # None: the same indicator at its isosbestic wavelength
    location: str = "nucleus accumbens"
    description: str = "fiber photometry response"
    source_path: str = ""  # where the series was found in the file ("acquisition/raw_photometry")

    @property
    def duration(self) -> float:
        """Seconds from the first to the last sample (0 for fewer than two samples)."""
        return float(self.timestamps[-1] - self.timestamps[0]) if len(self.timestamps) > 1 else 0.0

    def to_frame(self) -> pd.DataFrame:
        """A DataFrame with ``time``, ``signal`` and (when present) ``control`` columns."""
        data = {"time": self.timestamps, "signal": self.signal}
        if self.control is not None:
            data["control"] = self.control
        return pd.DataFrame(data)


@dataclass
class AnalogSeries:
    """Any other sampled signal (e.g. the rig's analog input): written as a plain TimeSeries in acquisition."""

    timestamps: np.ndarray
    data: np.ndarray
    unit: str = "V"
    description: str = "analog input"
    rate: float | None = None  # give it for regular sampling: stored as rate + starting time


@dataclass
class Table:
    """A plain table (one value per cell: numbers or text) written as a DynamicTable in ``processing/<module>``."""

    frame: pd.DataFrame
    description: str
    column_descriptions: dict[str, str] = field(default_factory=dict)
    module: str = "session"
    module_description: str = "the live session's record: provenance and parameter changes"


@dataclass
class Intervals:
    """Another table of time intervals (besides the trials): ``table`` has ``start_time``/``stop_time`` in
    seconds and any columns; written as a TimeIntervals table under ``intervals/``."""

    table: pd.DataFrame
    description: str
    column_descriptions: dict[str, str] = field(default_factory=dict)


@dataclass
class SessionData:
    """Everything one session file holds, as plain Python/numpy/pandas objects.

    - ``trials``: the behavior table (DESIGN section 3) with ``start_time``/``stop_time`` in seconds;
      columns ``subject``/``session`` are metadata and are not written as trial columns.
    - ``events``: event name -> event times in seconds (``"lick"``, ``"valve"``, ``"cue"``, ``"ttl"``...),
      written as core ``EventsTable``s.
    - ``photometry``: zero or more recordings.
    - ``units``: unit id -> spike times in seconds; ``unit_properties``: extra per-unit columns;
      ``spike_resolution``: the spike-time resolution in seconds (always written).
    - ``analog``: other sampled signals by name (:class:`AnalogSeries`, TimeSeries in acquisition);
      ``devices``: device name -> description (rig, firmware version, valve calibration...);
      ``notes``: free text stored as the file's ``notes``; ``tables``: other tables by name (:class:`Table`);
      ``intervals``: other interval tables by name (:class:`Intervals`, e.g. a live session's cut trials).
    - ``true_parameters``: for simulated sessions, the parameters that generated the data;
      ``true_trajectories``: the model's latent per-trial values (``V_A``, ``rpe_cue``, ``rpe_outcome``...),
      one row per trial, kept out of the trials table.
    """

    metadata: SessionMetadata
    trials: pd.DataFrame | None = None
    events: dict[str, np.ndarray] = field(default_factory=dict)
    event_descriptions: dict[str, str] = field(default_factory=dict)
    photometry: list[Photometry] = field(default_factory=list)
    units: dict[int, np.ndarray] = field(default_factory=dict)
    unit_properties: pd.DataFrame | None = None
    spike_resolution: float = 1.0 / 30000.0
    true_parameters: dict[str, Any] = field(default_factory=dict)
    true_trajectories: pd.DataFrame | None = None
    analog: dict[str, AnalogSeries] = field(default_factory=dict)
    devices: dict[str, str] = field(default_factory=dict)
    notes: str | None = None
    trial_column_descriptions: dict[str, str] = field(default_factory=dict)
    tables: dict[str, Table] = field(default_factory=dict)
    intervals: dict[str, Intervals] = field(default_factory=dict)
