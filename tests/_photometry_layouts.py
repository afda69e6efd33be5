"""Photometry NWB files in the layouts met in the wild, each with the same trials, signal, control and licks.

Each ``write_*`` function writes one layout with the real extension package where it installs beside
our pinned ndx-fiber-photometry 0.2.4 (ndx-events 0.2, ndx-photometry 0.4), and ndx-fiber-photometry 0.1
with h5py from its own schema (``tests/schemas/ndx-fiber-photometry-0.1.0``, the published YAML of that
release): 0.1 and 0.2 share a package and a namespace name.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

N_TRIALS = 8
RATE = 50.0
HERE = Path(__file__).resolve().parent
SCHEMA_01 = HERE / "schemas" / "ndx-fiber-photometry-0.1.0" / "ndx-fiber-photometry.namespace.yaml"


def _isolated(writer: str, path: Path) -> Path:
    """Run ``writer`` in a child process: importing ndx-photometry or ndx-events registers their types in
    pynwb's process-wide type map, and ndx-photometry's ``FibersTable``/``fiber_photometry`` then shadow
    ndx-fiber-photometry's for every file written later in the same process (nwbinspector sees them invalid)."""
    import subprocess
    import sys

    code = f"import sys; sys.path.insert(0, {str(HERE)!r}); import _photometry_layouts as L; L.{writer}(__import__('pathlib').Path({str(path)!r}))"
    subprocess.run([sys.executable, "-c", code], check=True)
    return Path(path)


def write_fp02_ndx_events(path: Path) -> Path:
    """:func:`_write_fp02_ndx_events` in a child process (see :func:`_isolated`)."""
    return _isolated("_write_fp02_ndx_events", path)


def write_ndx_photometry(path: Path) -> Path:
    """:func:`_write_ndx_photometry` in a child process (see :func:`_isolated`)."""
    return _isolated("_write_ndx_photometry", path)


def truth() -> dict:
    """What every layout stores: trials, the signal (470 nm, dLight) and its control (405 nm), licks."""
    n = int(N_TRIALS * 4 * RATE)
    t = np.arange(n) / RATE
    starts = np.arange(N_TRIALS) * 4.0
    return {
        "t": t,
        "signal": 1.0 + 0.1 * np.sin(2 * np.pi * 0.5 * t),
        "control": 0.5 + 0.01 * np.cos(2 * np.pi * 0.3 * t),
        "starts": starts,
        "cue": np.array(["A", "B"] * (N_TRIALS // 2)),
        "reward": np.where(np.arange(N_TRIALS) % 2 == 0, 2.0, 0.0),
        "licks": np.sort(np.concatenate([s + np.array([1.2, 1.5, 2.3]) for s in starts])),
    }


def _nwbfile(identifier: str):
    from pynwb import NWBFile
    from pynwb.file import Subject

    f = NWBFile(session_description="photometry layout", identifier=identifier,
                session_start_time=dt.datetime(2025, 3, 1, 9, tzinfo=dt.timezone.utc), session_id="s1",
                subject=Subject(subject_id="m1", species="Mus musculus"))
    tr = truth()
    for col in ("cue", "reward", "cue_time", "outcome_time"):
        f.add_trial_column(name=col, description=col)
    for i, s in enumerate(tr["starts"]):
        f.add_trial(start_time=s, stop_time=s + 3.5, cue=str(tr["cue"][i]), reward=float(tr["reward"][i]),
                    cue_time=s + 1.0, outcome_time=s + 2.0)
    return f


def _write(f, path: Path) -> Path:
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(path), "w") as io:
        io.write(f)
    return path


def _core_licks(f) -> None:
    """Licks as an NWB core EventsTable (pynwb >= 4)."""
    from pynwb.event import EventsTable

    licks = EventsTable(name="lick", description="lick onsets")
    for x in truth()["licks"]:
        licks.add_row(timestamp=float(x))
    f.add_events_table(licks)


def _fp02_table(f, rows):
    """An ndx-fiber-photometry 0.2 FiberPhotometryTable, one row per (indicator, excitation nm, emission nm)."""
    import ndx_fiber_photometry as nfp
    import ndx_ophys_devices as nod

    made = {"manufacturer": "unspecified", "model_number": "unspecified"}
    fiber_model = nod.OpticalFiberModel(name="fiber_model", description="fiber", numerical_aperture=0.48,
                                        core_diameter_in_um=400.0, **made)
    src_model = nod.ExcitationSourceModel(name="led_model", description="LED", source_type="LED",
                                          excitation_mode="one-photon", wavelength_range_in_nm=[400.0, 480.0], **made)
    det_model = nod.PhotodetectorModel(name="det_model", description="photodiode", detector_type="photodiode",
                                       wavelength_range_in_nm=[500.0, 600.0], **made)
    for m in (fiber_model, src_model, det_model):
        f.add_device_model(m)
    fiber = nod.OpticalFiber(name="fiber", description="fiber", model=fiber_model,
                             fiber_insertion=nod.FiberInsertion(name="fiber_insertion"))
    det = nod.Photodetector(name="photodetector", description="photodiode", model=det_model)
    f.add_device(fiber)
    f.add_device(det)
    table = nfp.FiberPhotometryTable(name="fiber_photometry_table", description="fibers")
    indicators = {}
    for label, ex, em in rows:
        src = nod.ExcitationSource(name=f"led_{int(ex)}", description=f"{ex:g} nm LED", model=src_model)
        f.add_device(src)
        if label not in indicators:
            indicators[label] = nod.Indicator(name=label, description=label, label=label)
        table.add_row(location="NAc", excitation_wavelength_in_nm=ex, emission_wavelength_in_nm=em,
                      indicator=indicators[label], optical_fiber=fiber, excitation_source=src, photodetector=det)
    f.add_lab_meta_data(nfp.FiberPhotometry(name="fiber_photometry", fiber_photometry_table=table,
                                            fiber_photometry_indicators=nfp.FiberPhotometryIndicators(
                                                indicators=list(indicators.values()))))
    return table


def write_fp02_core_events(path: Path) -> Path:
    """ndx-fiber-photometry 0.2: one [time, 2] series, the isosbestic column FIRST; core EventsTable licks."""
    from ndx_fiber_photometry import FiberPhotometryResponseSeries

    f = _nwbfile("fp02-core")
    table = _fp02_table(f, [("dLight1.1", 405.0, 525.0), ("dLight1.1", 470.0, 525.0)])
    tr = truth()
    region = table.create_fiber_photometry_table_region(region=[0, 1], description="isosbestic, signal")
    f.add_acquisition(FiberPhotometryResponseSeries(
        name="raw_photometry", description="two channels", data=np.column_stack([tr["control"], tr["signal"]]),
        unit="V", rate=RATE, fiber_photometry_table_region=region))
    _core_licks(f)
    return _write(f, path)


def _write_fp02_ndx_events(path: Path) -> Path:
    """ndx-fiber-photometry 0.2: signal and isosbestic as two series in processing/ophys; licks as ndx-events
    0.2 ``Events`` and reward TTLs as ``TTLs`` in acquisition."""
    from ndx_events import TTLs, Events
    from ndx_fiber_photometry import FiberPhotometryResponseSeries

    f = _nwbfile("fp02-ndx-events")
    table = _fp02_table(f, [("dLight1.1", 470.0, 525.0), ("dLight1.1", 405.0, 525.0)])
    tr = truth()
    ophys = f.create_processing_module("ophys", "photometry")
    for name, col, row in (("FiberPhotometryResponseSeries", "signal", 0),
                           ("FiberPhotometryResponseSeriesIsosbestic", "control", 1)):
        region = table.create_fiber_photometry_table_region(region=[row], description=name)
        ophys.add(FiberPhotometryResponseSeries(name=name, description=name, data=tr[col], unit="V",
                                                timestamps=tr["t"], fiber_photometry_table_region=region))
    f.add_acquisition(Events(name="lick", description="lick onsets", timestamps=tr["licks"]))
    f.add_acquisition(TTLs(name="ttl", description="reward TTLs", timestamps=tr["starts"] + 2.0,
                           data=np.ones(N_TRIALS, dtype=np.uint8), labels=["", "reward"]))
    return _write(f, path)


def _write_ndx_photometry(path: Path) -> Path:
    """The older ndx-photometry (0.4): FiberPhotometryResponseSeries pointing into the FibersTable,
    ExcitationSourcesTable (peak wavelength) and FluorophoresTable of its ``fiber_photometry`` metadata."""
    from hdmf.common import DynamicTableRegion
    from ndx_photometry import (ExcitationSourcesTable, FiberPhotometry, FiberPhotometryResponseSeries, FibersTable,
                                FluorophoresTable, PhotodetectorsTable)

    f = _nwbfile("ndx-photometry")
    tr = truth()
    sources = ExcitationSourcesTable(description="LEDs")
    sources.add_row(peak_wavelength=470.0, source_type="LED")
    sources.add_row(peak_wavelength=405.0, source_type="LED")
    detectors = PhotodetectorsTable(description="detectors")
    detectors.add_row(peak_wavelength=525.0, type="photodiode")
    fluors = FluorophoresTable(description="indicators")
    fluors.add_row(label="dLight1.1", location="NAc", emission_peak_wavelength=525.0, excitation_peak_wavelength=490.0)
    fibers = FibersTable(description="fibers")
    fibers.add_row(location="NAc")
    f.add_lab_meta_data(FiberPhotometry(fibers=fibers, excitation_sources=sources, photodetectors=detectors,
                                        fluorophores=fluors))
    for name, col, src in (("signal", "signal", 0), ("reference", "control", 1)):
        f.add_acquisition(FiberPhotometryResponseSeries(
            name=name, description=name, data=tr[col], unit="V", rate=RATE,
            fibers=DynamicTableRegion(name="fibers", data=[0], description="fiber", table=fibers),
            excitation_sources=DynamicTableRegion(name="excitation_sources", data=[src], description="LED",
                                                  table=sources),
            fluorophores=DynamicTableRegion(name="fluorophores", data=[0], description="dLight", table=fluors)))
    _core_licks(f)
    return _write(f, path)


def write_roi_response(path: Path, shared_rois: bool = False) -> Path:
    """RoiResponseSeries holding photometry (as DANDI 000689/001038 conversions do): a ``Fluorescence``
    container named ``FiberPhotometry`` in processing/ophys with a signal and a reference series whose
    ``rois`` point into a fibers table; each fiber row points to the excitation source (peak wavelength).
    ``shared_rois``: every series points to both rows (as the Markowitz et al. 2023 conversion does), so
    only the names (``SignalDfOverF``, ``ReferenceDfOverF``) tell signal from reference."""
    from hdmf.common import DynamicTable, DynamicTableRegion, VectorData
    from pynwb.ophys import Fluorescence, RoiResponseSeries

    f = _nwbfile("roi")
    tr = truth()
    ophys = f.create_processing_module("ophys", "fiber photometry")
    sources = DynamicTable(name="excitation_sources", description="LEDs",
                           columns=[VectorData(name="peak_wavelength", description="nm", data=[470.0, 405.0])])
    fibers = DynamicTable(name="fibers", description="one row per fiber and excitation", columns=[
        VectorData(name="location", description="where", data=["VTA", "VTA"]),
        DynamicTableRegion(name="excitation_source", description="its LED", data=[0, 1], table=sources)])
    ophys.add(sources)
    ophys.add(fibers)
    container = Fluorescence(name="FiberPhotometry")
    ophys.add(container)  # before its series, so their regions share an ancestor with the fibers table
    for name, col, row in (("SignalDfOverF", "signal", 0), ("ReferenceDfOverF", "control", 1)):
        container.add_roi_response_series(RoiResponseSeries(
            name=name, description=name, data=tr[col], unit="a.u.", timestamps=tr["t"],
            rois=DynamicTableRegion(name="rois", data=[0, 1] if shared_rois else [row], description="fiber",
                                    table=fibers)))
    _core_licks(f)
    return _write(f, path)


def write_plain_timeseries(path: Path) -> Path:
    """Plain TimeSeries named by the lab (``photometry_470``, ``photometry_405``); licks as BehavioralEvents."""
    import warnings

    from pynwb import TimeSeries
    from pynwb.behavior import BehavioralEvents

    f = _nwbfile("plain")
    tr = truth()
    raw = np.round(tr["signal"] / 1e-4).astype(np.int32)   # ADC counts with a conversion, as rigs store them
    f.add_acquisition(TimeSeries(name="photometry_470", data=raw, unit="V", conversion=1e-4, rate=RATE))
    f.add_acquisition(TimeSeries(name="photometry_405", data=tr["control"], unit="V", rate=RATE))
    beh = f.create_processing_module("behavior", "behavior")
    with warnings.catch_warnings():   # deprecated in pynwb 4, still in older files
        warnings.simplefilter("ignore")
        beh.add(BehavioralEvents(time_series=[TimeSeries(name="lick_times", data=np.ones(len(tr["licks"])),
                                                         unit="n.a.", timestamps=tr["licks"])]))
    return _write(f, path)


def write_fp01(path: Path) -> Path:
    """ndx-fiber-photometry 0.1 as DANDI 001038 stores it, written with h5py from the 0.1 schema (the
    package cannot be installed beside 0.2.4, and pynwb 4 refuses to load its schema: 0.1 makes
    ``OpticalFiber.model`` a text attribute where NWB 2.9 has a link).  On a pynwb-written base file
    (trials, core EventsTable licks) it adds: the 0.1 devices in /general/devices (ExcitationSource with
    ``excitation_wavelength_in_nm``, Indicator with ``label``, Photodetector with ``detected_wavelength_in_nm``),
    a ``FiberPhotometry`` lab metadata group holding a FiberPhotometryTable of object references to them,
    the signal and its isosbestic as two FiberPhotometryResponseSeries in acquisition, and the 0.1 schema
    cached in /specifications as pynwb caches specs."""
    import json
    import uuid

    import h5py
    from ruamel.yaml import YAML

    f = _nwbfile("fp01")
    _core_licks(f)
    _write(f, path)
    tr = truth()
    yaml = YAML(typ="safe")
    ns = "ndx-fiber-photometry"

    def typed(obj, neurodata_type, namespace=ns, **attrs):
        obj.attrs.update({"namespace": namespace, "neurodata_type": neurodata_type, "object_id": str(uuid.uuid4()),
                          **attrs})
        return obj

    with h5py.File(path, "a") as h5:
        for cached in (ns, "ndx-ophys-devices"):  # pynwb caches what this process has loaded (0.2.4)
            if f"specifications/{cached}" in h5:
                del h5[f"specifications/{cached}"]
        spec = h5.create_group(f"specifications/{ns}/0.1.0")
        spec.create_dataset("namespace", data=json.dumps(yaml.load(SCHEMA_01.read_text())))
        ext = SCHEMA_01.with_name("ndx-fiber-photometry.extensions.yaml")
        spec.create_dataset("ndx-fiber-photometry.extensions", data=json.dumps(yaml.load(ext.read_text())))
        devices = h5["general/devices"] if "general/devices" in h5 else h5.create_group("general/devices")
        dev = {
            "GCaMP6f": ("Indicator", {"description": "indicator", "label": "GCaMP6f"}),
            "Fiber1": ("OpticalFiber", {"description": "fiber", "model": "400 um", "numerical_aperture": 0.48}),
            "DichroicMirror": ("DichroicMirror", {"description": "dichroic mirror"}),
            "PhotodetectorPMT": ("Photodetector", {"description": "PMT", "detector_type": "PMT",
                                                   "detected_wavelength_in_nm": 525.0}),
            "ExcitationSource470": ("ExcitationSource", {"description": "470 nm LED", "illumination_type": "LED",
                                                         "excitation_wavelength_in_nm": 470.0}),
            "ExcitationSource405": ("ExcitationSource", {"description": "405 nm LED", "illumination_type": "LED",
                                                         "excitation_wavelength_in_nm": 405.0}),
        }
        for name, (kind, attrs) in dev.items():
            typed(devices.create_group(name), kind, **attrs)
        meta = typed(h5.create_group("general/FiberPhotometry"), "FiberPhotometry")
        cols = ["location", "indicator", "optical_fiber", "excitation_source", "photodetector", "dichroic_mirror"]
        table = typed(meta.create_group("FiberPhotometryTable"), "FiberPhotometryTable",
                      description="fibers", colnames=np.array(cols, dtype=object))
        typed(table.create_dataset("id", data=np.arange(2)), "ElementIdentifiers", "hdmf-common")
        vector = lambda name, data, **kw: typed(table.create_dataset(name, data=data, **kw), "VectorData",  # noqa: E731
                                                "hdmf-common", description=name)
        vector("location", np.array(["SNc", "SNc"], dtype=object), dtype=h5py.string_dtype())
        refs = lambda *names: np.array([devices[n].ref for n in names], dtype=h5py.ref_dtype)  # noqa: E731
        vector("indicator", refs("GCaMP6f", "GCaMP6f"))
        vector("optical_fiber", refs("Fiber1", "Fiber1"))
        vector("excitation_source", refs("ExcitationSource470", "ExcitationSource405"))
        vector("photodetector", refs("PhotodetectorPMT", "PhotodetectorPMT"))
        vector("dichroic_mirror", refs("DichroicMirror", "DichroicMirror"))
        for name, col, row in (("FiberPhotometryResponseSeries", "signal", 0),
                               ("FiberPhotometryResponseSeriesIsosbestic", "control", 1)):
            g = typed(h5.create_group(f"acquisition/{name}"), "FiberPhotometryResponseSeries",
                      description=name, comments="no comments")
            g.create_dataset("data", data=tr[col]).attrs.update(
                {"unit": "F", "conversion": 1.0, "offset": 0.0, "resolution": -1.0})
            g.create_dataset("starting_time", data=0.0).attrs.update({"rate": RATE, "unit": "seconds"})
            typed(g.create_dataset("fiber_photometry_table_region", data=np.array([row])), "DynamicTableRegion",
                  "hdmf-common", description="source fibers", table=table.ref)
    return path


LAYOUTS = {
    "ndx-fiber-photometry 0.2 + core EventsTable": write_fp02_core_events,
    "ndx-fiber-photometry 0.2 + ndx-events 0.2": write_fp02_ndx_events,
    "ndx-fiber-photometry 0.1 (DANDI 001038)": write_fp01,
    "ndx-photometry 0.4": write_ndx_photometry,
    "RoiResponseSeries in a FiberPhotometry container": write_roi_response,
    "plain TimeSeries": write_plain_timeseries,
}
