"""One test per photometry layout met in the wild: each reads the trials, the signal and its control
channel (and the licks) back exactly.  The files are written by ``_photometry_layouts`` with the real
extension packages (ndx-fiber-photometry 0.2, ndx-events 0.2, ndx-photometry 0.4) or, for
ndx-fiber-photometry 0.1, with h5py from its published schema."""
from __future__ import annotations

import numpy as np
import pytest

import _photometry_layouts as layouts
from _nwb_support import sha256
from dopa_rl.io import nwb

TRUTH = layouts.truth()


def check_trials(path):
    df = nwb.read_behavior(path)
    np.testing.assert_array_equal(df["start_time"].to_numpy(), TRUTH["starts"])
    np.testing.assert_array_equal(df["reward"].to_numpy(), TRUTH["reward"])
    np.testing.assert_array_equal(df["cue_time"].to_numpy(), TRUTH["starts"] + 1.0)
    assert df["cue"].tolist() == TRUTH["cue"].tolist()
    assert (df["subject"] == "m1").all() and (df["session"] == "s1").all()
    # licks counted between cue and outcome: 1.2 and 1.5 s into each trial, not 2.3
    assert df["licks"].tolist() == [2] * layouts.N_TRIALS, df.attrs.get("licks_from")


def check_photometry(path, *, source, signal_nm=470.0, control_nm=405.0, indicator=None, atol=0.0):
    p = nwb.read_photometry(path)
    assert p.source_path == source
    np.testing.assert_allclose(p.signal, TRUTH["signal"], rtol=0, atol=atol)
    assert p.control is not None, "no control channel found"
    np.testing.assert_allclose(p.control, TRUTH["control"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(p.timestamps, TRUTH["t"], rtol=0, atol=1e-9)
    assert (p.signal_excitation_nm, p.control_excitation_nm) == (signal_nm, control_nm)
    if indicator is not None:
        assert p.indicator == indicator
    return p


def check_licks(path, name="lick"):
    events = nwb.read_events(path)
    np.testing.assert_allclose(events[name], TRUTH["licks"])
    return events


def test_fiber_photometry_02_with_core_events_table(tmp_path):
    """0.2: one [time, 2] series whose FIRST column is the isosbestic: told apart by the table's
    wavelengths, not column order; licks from a core EventsTable."""
    path = layouts.write_fp02_core_events(tmp_path / "fp02.nwb")
    before = sha256(path)
    check_trials(path)
    check_photometry(path, source="acquisition/raw_photometry", indicator="dLight1.1")
    check_licks(path)
    assert sha256(path) == before


def test_fiber_photometry_02_with_ndx_events(tmp_path):
    """0.2 with signal and isosbestic as separate series in processing/ophys; ndx-events 0.2 Events and TTLs."""
    path = layouts.write_fp02_ndx_events(tmp_path / "fp02-ndx-events.nwb")
    check_trials(path)
    check_photometry(path, source="processing/ophys/FiberPhotometryResponseSeries", indicator="dLight1.1")
    events = check_licks(path)
    np.testing.assert_allclose(events["ttl"], TRUTH["starts"] + 2.0)


def test_fiber_photometry_01_as_dandi_001038(tmp_path):
    """0.1 (devices carry the wavelengths, the table references them): before, pynwb could not construct
    the file at all with 0.2 installed ("cannot read as NWB")."""
    path = layouts.write_fp01(tmp_path / "fp01.nwb")
    before = sha256(path)
    check_trials(path)
    p = check_photometry(path, source="acquisition/FiberPhotometryResponseSeries", indicator="GCaMP6f")
    assert p.signal_emission_nm == 525.0 and p.location == "SNc"
    check_licks(path)
    with nwb.NWBSession(path) as s:  # one open for all of it, as the commands do
        assert len(s.behavior()) == layouts.N_TRIALS and s.photometry().control is not None
    assert sha256(path) == before


def test_older_ndx_photometry(tmp_path):
    """ndx-photometry 0.4: wavelengths from the ExcitationSourcesTable rows each series points to."""
    path = layouts.write_ndx_photometry(tmp_path / "ndx-photometry.nwb")
    check_trials(path)
    check_photometry(path, source="acquisition/signal", indicator="dLight1.1")
    check_licks(path)


def test_roi_response_series_in_a_fiber_photometry_container(tmp_path):
    """RoiResponseSeries whose rois point to fibers, each fiber to its excitation source."""
    path = layouts.write_roi_response(tmp_path / "roi.nwb")
    check_trials(path)
    check_photometry(path, source="processing/ophys/FiberPhotometry/SignalDfOverF")
    check_licks(path)


def test_roi_response_series_told_apart_by_name_only(tmp_path):
    """Every series points to both fibers (no column can be told by its rows): the names decide."""
    path = layouts.write_roi_response(tmp_path / "roi-shared.nwb", shared_rois=True)
    check_trials(path)
    check_photometry(path, source="processing/ophys/FiberPhotometry/SignalDfOverF", signal_nm=None, control_nm=None)


def test_plain_time_series(tmp_path):
    """Plain TimeSeries found by their names; ADC counts times the conversion; BehavioralEvents licks."""
    path = layouts.write_plain_timeseries(tmp_path / "plain.nwb")
    check_trials(path)
    check_photometry(path, source="acquisition/photometry_470", signal_nm=None, control_nm=None, atol=0.5e-4)
    check_licks(path, "lick_times")


@pytest.mark.parametrize("writer", list(layouts.LAYOUTS.values()), ids=list(layouts.LAYOUTS))
def test_every_layout_is_ready_for_the_photometry_analyses(writer, tmp_path):
    """``inspect`` sees the same: behavior and photometry ready in every layout."""
    path = writer(tmp_path / "x.nwb")
    summary = nwb.inspect_nwb(path)
    assert summary["analyses"]["behavior"]["ready"] and summary["analyses"]["photometry"]["ready"], summary["analyses"]
