"""Write a session (:class:`~dopa_rl.io.nwb_types.SessionData`) to an NWB file, atomically.

What goes where (DESIGN section 3):

- subject and session metadata on the ``NWBFile`` and its ``Subject``;
- the behavior table as ``nwbfile.trials`` (task columns such as ``cue``, ``cue_time``, ``outcome_time``,
  ``reward``, ``choice``, ``licks``);
- lick/valve/cue/TTL events as core ``EventsTable``s (``nwbfile.events[name]``, column ``timestamp``);
- photometry as an ndx-fiber-photometry ``FiberPhotometryResponseSeries`` in ``acquisition`` with
  ``[time, channel]`` data, the ``FiberPhotometryTable`` (one row per channel, with excitation and emission
  wavelengths, indicator, optical fiber, excitation source and photodetector) and the device models;
- units with spike times and ``units.resolution``;
- other sampled signals (the rig's analog input) as TimeSeries in ``acquisition``; devices (rig,
  firmware, valve calibration) as ``Device``s with a description; free-text ``notes``;
- simulated sessions: the true parameters in ``processing/simulation/true_parameters`` (a DynamicTable
  with ``parameter`` and ``value`` columns; read back with :func:`dopa_rl.io.nwb.read_true_parameters`).

Files written here pass nwbinspector without CRITICAL or BEST_PRACTICE_VIOLATION messages (tested).
"""
from __future__ import annotations

import json
import os
import uuid
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dopa_rl.errors import InputError
from dopa_rl.io.atomic import atomic_path
from dopa_rl.io.nwb_types import AnalogSeries, Photometry, SessionData

__all__ = ["build_nwbfile", "write_session", "TRUE_PARAMETERS_MODULE", "TRUE_PARAMETERS_TABLE",
           "TRUE_TRAJECTORIES_TABLE"]

TRUE_PARAMETERS_MODULE = "simulation"
TRUE_PARAMETERS_TABLE = "true_parameters"
TRUE_TRAJECTORIES_TABLE = "true_trajectories"

#: descriptions of the standard trial columns (DESIGN section 3); other columns get a generic one.
TRIAL_COLUMN_DOCS: dict[str, str] = {
    "trial": "0-based trial number in the session",
    "cue": "cue presented on the trial (compound cues written as 'A+X')",
    "choice": "option chosen (0-based)",
    "reward": "reward amount delivered (0 when omitted), in the task's reward units",
    "licks": "anticipatory lick count between cue and outcome",
    "cue_time": "cue onset, in seconds from session start",
    "outcome_time": "reward delivery, or the moment it was omitted, in seconds from session start",
    "iti": "inter-trial interval preceding the trial, in seconds",
    "p_reward": "programmed reward probability of the trial",
}
_METADATA_COLUMNS = {"subject", "session", "start_time", "stop_time"}

_EVENT_DOCS: dict[str, str] = {
    "lick": "lick onsets detected by the lick sensor (debounced on the device)",
    "valve": "water valve openings (reward deliveries)",
    "cue": "cue onsets (LED/tone)",
    "ttl": "TTL sync pulses sent to the recording systems",
}


def _nwb_value_column(values: pd.Series) -> np.ndarray | list:
    """Column values in a form pynwb stores cleanly: numbers as numpy arrays, anything else as str.

    Nullable integer/boolean columns (``Int64``, ``boolean``) with missing values become float64 with NaN.
    """
    if (pd.api.types.is_bool_dtype(values) or pd.api.types.is_integer_dtype(values)) and values.isna().any():
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    if pd.api.types.is_bool_dtype(values):
        return values.to_numpy(dtype=bool)
    if pd.api.types.is_integer_dtype(values):
        return values.to_numpy(dtype=np.int64)
    if pd.api.types.is_float_dtype(values):
        return values.to_numpy(dtype=np.float64)
    return ["" if pd.isna(v) else str(v) for v in values]


def _time_intervals(name: str, description: str, df: pd.DataFrame, docs: dict[str, str]) -> Any:
    """A ``TimeIntervals`` table of ``df`` (``start_time``/``stop_time`` in seconds), sorted by start time."""
    from hdmf.common import VectorData
    from pynwb.epoch import TimeIntervals

    missing = [c for c in ("start_time", "stop_time") if c not in df.columns]
    if missing:
        raise InputError(f"{name} table for NWB needs columns {missing}: give each row a start and stop time")
    df = df.sort_values("start_time", kind="stable").reset_index(drop=True)
    row = "trial" if name == "trials" else f"{name} row"
    cols = [
        VectorData(name="start_time", description=f"{row} start, in seconds from session start",
                   data=df["start_time"].to_numpy(dtype=np.float64)),
        VectorData(name="stop_time", description=f"{row} end, in seconds from session start",
                   data=df["stop_time"].to_numpy(dtype=np.float64)),
    ]
    for col in df.columns:
        if col in _METADATA_COLUMNS or col in ("start_time", "stop_time"):
            continue
        doc = docs.get(col) or TRIAL_COLUMN_DOCS.get(col) or f"task column {col}"
        cols.append(VectorData(name=col, description=doc, data=_nwb_value_column(df[col])))
    return TimeIntervals(name=name, description=description, columns=cols)


def _add_trials(nwbfile: Any, trials: pd.DataFrame, docs: dict[str, str]) -> None:
    """Write the behavior table as ``nwbfile.trials``, one row per trial, sorted by start time."""
    nwbfile.trials = _time_intervals("trials", "trials of the session, one row per trial", trials, docs)


def _add_events(nwbfile: Any, events: dict[str, np.ndarray], docs: dict[str, str]) -> None:
    """One core ``EventsTable`` per event type (licks, valve openings, cues, TTLs...)."""
    from pynwb.event import EventsTable, TimestampVectorData

    for name, times in events.items():
        times = np.sort(np.asarray(times, dtype=np.float64))
        doc = docs.get(name) or _EVENT_DOCS.get(name) or f"{name} events"
        col = TimestampVectorData(name="timestamp", description="event time in seconds from session start",
                                  data=times)
        nwbfile.add_events_table(EventsTable(name=name, description=doc, columns=[col]))


def _is_regular(t: np.ndarray, rate: float | None) -> bool:
    if rate is None or len(t) < 2:
        return False
    expected = t[0] + np.arange(len(t)) / rate
    return bool(np.allclose(t, expected, rtol=0, atol=1e-9 * max(1.0, abs(float(t[-1])))))


def _add_photometry(nwbfile: Any, phot: Photometry, index: int) -> None:
    """A FiberPhotometryResponseSeries with its table rows and device metadata (ndx-fiber-photometry 0.2)."""
    import ndx_fiber_photometry as nfp
    import ndx_ophys_devices as nod
    from hdmf.backends.hdf5.h5_utils import H5DataIO

    sfx = "" if index == 0 else f"_{index}"
    fiber_model = nod.OpticalFiberModel(
        name=f"optical_fiber_model{sfx}", manufacturer="unspecified", model_number="unspecified",
        description="optical fiber implanted for photometry", numerical_aperture=0.48, core_diameter_in_um=400.0)
    fiber = nod.OpticalFiber(name=f"optical_fiber{sfx}", description=f"fiber implanted in {phot.location}",
                             model=fiber_model, fiber_insertion=nod.FiberInsertion(name="fiber_insertion"))
    src_model = nod.ExcitationSourceModel(
        name=f"excitation_source_model{sfx}", manufacturer="unspecified", model_number="unspecified",
        description="LED excitation source", source_type="LED", excitation_mode="one-photon",
        wavelength_range_in_nm=[380.0, 600.0])
    det_model = nod.PhotodetectorModel(
        name=f"photodetector_model{sfx}", manufacturer="unspecified", model_number="unspecified",
        description="photoreceiver", detector_type="photodiode", wavelength_range_in_nm=[400.0, 700.0])
    detector = nod.Photodetector(name=f"photodetector{sfx}", description="photoreceiver for emitted light",
                                 model=det_model)
    indicator = nod.Indicator(name=f"indicator{sfx}", description=f"{phot.indicator} expressed in {phot.location}",
                              label=phot.indicator)
    devices_added = [fiber_model, src_model, det_model]
    for m in devices_added:
        nwbfile.add_device_model(m)
    nwbfile.add_device(fiber)
    nwbfile.add_device(detector)
    meta = next((v for v in nwbfile.lab_meta_data.values() if isinstance(v, nfp.FiberPhotometry)), None)
    if meta is None:  # one table for every recording of the session; rows added per channel
        meta = nfp.FiberPhotometry(
            name="fiber_photometry",
            fiber_photometry_table=nfp.FiberPhotometryTable(
                name="fiber_photometry_table", description="one row per recorded channel (excitation wavelength)"),
            fiber_photometry_indicators=nfp.FiberPhotometryIndicators(indicators=[]))
        nwbfile.add_lab_meta_data(meta)
    table = meta.fiber_photometry_table
    channels: list[tuple[float | None, float | None, Any, str]] = [
        (phot.signal_excitation_nm, phot.signal_emission_nm, indicator, "signal")]
    meta.fiber_photometry_indicators.add_indicators(indicator)
    if phot.control is not None:
        ctrl_ind = indicator
        if phot.control_indicator and phot.control_indicator != phot.indicator:
            ctrl_ind = nod.Indicator(name=f"control_indicator{sfx}",
                                     description=f"{phot.control_indicator} (movement control)",
                                     label=phot.control_indicator)
            meta.fiber_photometry_indicators.add_indicators(ctrl_ind)
        channels.append((phot.control_excitation_nm, phot.control_emission_nm, ctrl_ind, "control"))
    first_row = len(table)
    for ex_nm, em_nm, ind, role in channels:
        # unknown wavelengths (e.g. a recording read from a plain TimeSeries) are stored as NaN
        known = ex_nm is not None and np.isfinite(ex_nm)
        source = nod.ExcitationSource(name=f"excitation_source_{role}{sfx}", model=src_model,
                                      description=f"{ex_nm:g} nm LED ({role} channel)" if known
                                      else f"LED of unknown wavelength ({role} channel)")
        nwbfile.add_device(source)
        table.add_row(location=phot.location, excitation_wavelength_in_nm=float(ex_nm if known else np.nan),
                      emission_wavelength_in_nm=float(np.nan if em_nm is None else em_nm), indicator=ind,
                      optical_fiber=fiber,
                      excitation_source=source, photodetector=detector)
    region = table.create_fiber_photometry_table_region(
        region=list(range(first_row, first_row + len(channels))),
        description="channels of the response series, in column order")
    data = np.asarray(phot.signal, dtype=np.float64)
    if phot.control is not None:
        data = np.column_stack([data, np.asarray(phot.control, dtype=np.float64)])
    else:
        data = data[:, None]
    t = np.asarray(phot.timestamps, dtype=np.float64)
    timing: dict[str, Any]
    if _is_regular(t, phot.rate):
        timing = {"rate": float(phot.rate), "starting_time": float(t[0])}
    else:
        timing = {"timestamps": H5DataIO(t, compression="gzip")}
    series = nfp.FiberPhotometryResponseSeries(
        name=phot.name, description=phot.description, unit=phot.unit,
        data=H5DataIO(data, compression="gzip", chunks=(min(len(data), 65536), data.shape[1])),
        fiber_photometry_table_region=region, **timing)
    nwbfile.add_acquisition(series)


def _add_analog(nwbfile: Any, name: str, series: AnalogSeries) -> None:
    from hdmf.backends.hdf5.h5_utils import H5DataIO
    from pynwb import TimeSeries

    t = np.asarray(series.timestamps, dtype=np.float64)
    timing: dict[str, Any] = ({"rate": float(series.rate), "starting_time": float(t[0])}
                              if _is_regular(t, series.rate) else {"timestamps": H5DataIO(t, compression="gzip")})
    nwbfile.add_acquisition(TimeSeries(name=name, data=H5DataIO(np.asarray(series.data), compression="gzip"),
                                       unit=series.unit, description=series.description, **timing))


def _add_units(nwbfile: Any, session: SessionData) -> None:
    from pynwb.misc import Units

    units = Units(name="units", description="sorted (or simulated) single units", resolution=session.spike_resolution)
    props = session.unit_properties
    extra = [] if props is None else [c for c in props.columns]
    for col in extra:
        units.add_column(name=col, description=f"unit property {col}")
    for uid, times in session.units.items():
        row: dict[str, Any] = {"spike_times": np.sort(np.asarray(times, dtype=np.float64)), "id": int(uid)}
        for col in extra:
            v = props.loc[uid, col]
            row[col] = v.item() if hasattr(v, "item") else v
        units.add_unit(**row)
    nwbfile.units = units


def _add_ground_truth(nwbfile: Any, params: dict[str, Any], trajectories: pd.DataFrame | None) -> None:
    """Store the generating parameters as a ``parameter``/``value`` table (values as JSON text) and the
    latent per-trial trajectories as a ``true_trajectories`` table, in ``processing/simulation``."""
    from hdmf.common import DynamicTable, VectorData

    module = nwbfile.create_processing_module(name=TRUE_PARAMETERS_MODULE,
                                              description="ground truth of a simulated session")
    if params:
        names = list(params)
        values = [json.dumps(params[k]) for k in names]
        module.add(DynamicTable(
            name=TRUE_PARAMETERS_TABLE,
            description="parameters that generated this simulated session (values are JSON)",
            columns=[VectorData(name="parameter", description="parameter name", data=names),
                     VectorData(name="value", description="parameter value, JSON-encoded", data=values)]))
    if trajectories is not None and len(trajectories.columns):
        module.add(DynamicTable(
            name=TRUE_TRAJECTORIES_TABLE, description="latent model values per trial (rows follow the trials table)",
            columns=[VectorData(name=str(c), description=f"true {c} per trial",
                                data=_nwb_value_column(trajectories[c])) for c in trajectories.columns]))


def _add_tables(nwbfile: Any, tables: dict[str, Any]) -> None:
    from hdmf.common import DynamicTable, VectorData

    for name, t in tables.items():
        module = nwbfile.processing.get(t.module) or nwbfile.create_processing_module(
            name=t.module, description=t.module_description)
        module.add(DynamicTable(name=name, description=t.description, columns=[
            VectorData(name=str(c), description=t.column_descriptions.get(c, str(c)), data=_nwb_value_column(t.frame[c]))
            for c in t.frame.columns]))


def build_nwbfile(session: SessionData) -> Any:
    """Build an in-memory ``pynwb.NWBFile`` from ``session`` (nothing is written)."""
    from pynwb import NWBFile
    from pynwb.file import Subject

    md = session.metadata
    subject = Subject(subject_id=str(md.subject_id), species=md.species, sex=md.sex, age=md.age,
                      description=md.subject_description, genotype=md.genotype, strain=md.strain)
    kwargs: dict[str, Any] = dict(
        session_description=md.session_description,
        identifier=md.identifier or str(uuid.uuid4()),
        session_start_time=md.session_start_time,
        session_id=str(md.session_id),
        institution=md.institution,
        experiment_description=md.experiment_description,
        keywords=list(md.keywords),
        subject=subject,
    )
    if md.lab:
        kwargs["lab"] = md.lab
    if md.experimenter:
        kwargs["experimenter"] = list(md.experimenter)
    if session.notes:
        kwargs["notes"] = session.notes
    nwbfile = NWBFile(**kwargs)
    for name, description in session.devices.items():
        nwbfile.create_device(name=name, description=description)
    if session.trials is not None and len(session.trials):
        _add_trials(nwbfile, session.trials, session.trial_column_descriptions)
    for name, iv in session.intervals.items():
        if len(iv.table):
            nwbfile.add_time_intervals(_time_intervals(name, iv.description, iv.table, iv.column_descriptions))
    if session.events:
        _add_events(nwbfile, session.events, session.event_descriptions)
    for i, phot in enumerate(session.photometry):
        _add_photometry(nwbfile, phot, i)
    for name, series in session.analog.items():
        _add_analog(nwbfile, name, series)
    if session.units:
        _add_units(nwbfile, session)
    if session.true_parameters or session.true_trajectories is not None:
        _add_ground_truth(nwbfile, session.true_parameters, session.true_trajectories)
    _add_tables(nwbfile, {k: t for k, t in session.tables.items() if len(t.frame)})
    return nwbfile


def write_session(path: str | os.PathLike[str], session: SessionData, *, overwrite: bool = False) -> Path:
    """Write ``session`` to ``path`` (an ``.nwb`` file) atomically and return the path.

    Refuses to replace an existing file unless ``overwrite=True``.  The file appears only when complete.
    """
    from pynwb import NWBHDF5IO

    path = Path(path)
    if path.suffix.lower() != ".nwb":
        raise InputError(f"{path}: NWB output file names must end in .nwb")
    if path.exists() and not overwrite:
        raise InputError(f"{path}: file exists; choose another name or remove it first")
    nwbfile = build_nwbfile(session)
    try:
        with atomic_path(path) as tmp, warnings.catch_warnings():
            # the temporary name ends in .tmp on purpose (see atomic_path); the final name ends in .nwb
            warnings.filterwarnings("ignore", message=r"The file path provided: .* does not end in '\.nwb'")
            with NWBHDF5IO(str(tmp), "w") as io:
                io.write(nwbfile)
    except OSError as exc:  # a file where the folder should be, no permission, read-only or full disk
        at = f" at {exc.filename}" if exc.filename and Path(exc.filename).parent != path.parent else ""
        raise InputError(f"{path}: cannot write there ({exc.strerror or exc}{at})") from exc
    return path
