"""Write -> read round trips of our NWB writer, nwbinspector on what we write, atomic writes."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from _nwb_support import hand_session, inspector_problems
from dopa_rl.errors import InputError
from dopa_rl.io import nwb
from dopa_rl.io.spikes import read_spike_trains


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    session = hand_session()
    path = tmp_path_factory.mktemp("rt") / "m7.nwb"
    nwb.write_session(path, session)
    return session, path


def test_trials_round_trip(written):
    session, path = written
    got = nwb.read_behavior(path)
    want = session.trials
    assert list(got["subject"].unique()) == ["m7"] and list(got["session"].unique()) == ["m7-day1"]
    for col in want.columns:
        if want[col].dtype == object:
            assert list(got[col]) == list(want[col]), col
        else:
            np.testing.assert_array_equal(got[col].to_numpy(), want[col].to_numpy(), err_msg=col)
    assert got["licks"].dtype.kind == "i" and got["cue"].iloc[0] == "A+X"


def test_events_round_trip(written):
    session, path = written
    got = nwb.read_events(path)
    assert set(got) == set(session.events)
    for name, times in session.events.items():
        np.testing.assert_array_equal(got[name], np.sort(times))


def test_photometry_round_trip(written):
    session, path = written
    want = session.photometry[0]
    got = nwb.read_photometry(path)
    np.testing.assert_array_equal(got.signal, want.signal)
    np.testing.assert_array_equal(got.control, want.control)
    np.testing.assert_allclose(got.timestamps, want.timestamps, rtol=0, atol=1e-9)
    assert got.rate == want.rate
    assert (got.signal_excitation_nm, got.control_excitation_nm) == (470.0, 405.0)
    assert got.indicator == "dLight1.1"


def test_irregular_photometry_keeps_timestamps(tmp_path):
    session = hand_session(n_trials=5, regular=False)
    path = nwb.write_session(tmp_path / "irregular.nwb", session)
    got = nwb.read_photometry(path)
    want = session.photometry[0]
    assert got.timestamps[0] < 0  # negative start survives
    np.testing.assert_array_equal(got.timestamps, want.timestamps)
    np.testing.assert_array_equal(got.signal, want.signal)


def test_units_round_trip_through_spikeinterface(written):
    session, path = written
    trains = read_spike_trains(path)
    assert trains.unit_ids == [0, 1, 5]
    assert trains.sampling_frequency == pytest.approx(30000.0)  # from units.resolution, which we always write
    for uid, times in session.units.items():
        np.testing.assert_array_equal(trains[uid], times)
    assert trains.n_spikes == sum(len(t) for t in session.units.values())
    assert list(trains.properties["gain_hz"]) == [10.0, 20.0, 30.0]


def test_true_parameters_round_trip(written):
    _, path = written
    assert nwb.read_true_parameters(path) == {"alpha": 0.25, "model": "rw-pavlovian"}


def test_licks_counted_from_events_when_no_column(tmp_path):
    with_col = hand_session(licks_column=True)
    session = hand_session(licks_column=False)
    path = nwb.write_session(tmp_path / "nolicks.nwb", session)
    got = nwb.read_behavior(path)
    assert got.attrs["licks_from"] == "lick"
    # consumption licks after the outcome must not be counted: only the cue-outcome window
    np.testing.assert_array_equal(got["licks"].to_numpy(), with_col.trials["licks"].to_numpy())


def test_written_file_passes_nwbinspector(written):
    _, path = written
    assert inspector_problems(path) == []


def test_inspector_catches_a_bad_file(tmp_path):
    """The nwbinspector check is able to fail: a file without subject metadata is flagged."""
    from pynwb import NWBHDF5IO, NWBFile
    import datetime as dt

    f = NWBFile(session_description="x", identifier="x", session_start_time=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
    with NWBHDF5IO(str(tmp_path / "bare.nwb"), "w") as io:
        io.write(f)
    assert inspector_problems(tmp_path / "bare.nwb")


def test_write_is_atomic_and_refuses_overwrite(tmp_path, monkeypatch):
    path = tmp_path / "s.nwb"
    nwb.write_session(path, hand_session(n_trials=3))
    before = path.read_bytes()
    with pytest.raises(InputError, match="exists"):
        nwb.write_session(path, hand_session(n_trials=4))
    import pynwb

    def boom(self, *a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(pynwb.NWBHDF5IO, "write", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        nwb.write_session(path, hand_session(n_trials=4), overwrite=True)
    assert path.read_bytes() == before  # the old file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.nwb"]  # no temp file left behind
    with pytest.raises(RuntimeError):
        nwb.write_session(tmp_path / "new.nwb", hand_session(n_trials=4))
    assert not (tmp_path / "new.nwb").exists()


def test_trials_sorted_by_start_time(tmp_path):
    session = hand_session(n_trials=6)
    session.trials = session.trials.iloc[::-1].reset_index(drop=True)
    path = nwb.write_session(tmp_path / "rev.nwb", session)
    got = nwb.read_behavior(path)
    assert np.all(np.diff(got["start_time"].to_numpy()) > 0)
    np.testing.assert_array_equal(got["trial"].to_numpy(), np.arange(6))


def test_session_reads_the_same_as_the_functions(written):
    session, path = written
    with nwb.NWBSession(path) as s:
        pd.testing.assert_frame_equal(s.behavior(), nwb.read_behavior(path))
        np.testing.assert_array_equal(s.photometry().signal, session.photometry[0].signal)
        assert s.events().keys() == session.events.keys()
        assert s.inspect()["analyses"]["behavior"]["ready"]
        assert s.units().unit_ids == [0, 1, 5]
        assert s.nwbfile is not None
    assert s.nwbfile is None
    s.close()  # idempotent
    s.safe()
    with pytest.raises(InputError, match="no trials table named 'nope'"):
        with nwb.NWBSession(path) as s2:
            s2.behavior(trials_table="nope")
    assert s2.nwbfile is None


def test_two_fibers_and_a_signal_without_control(tmp_path):
    from dopa_rl.io.nwb_types import Photometry

    session = hand_session(n_trials=4)
    t = session.photometry[0].timestamps
    session.photometry.append(Photometry(timestamps=t, signal=np.linspace(0, 1, t.size), control=None, rate=50.0,
                                         name="photometry_dms", indicator="GCaMP6f", location="dorsomedial striatum"))
    path = nwb.write_session(tmp_path / "two.nwb", session)
    assert inspector_problems(path) == []
    with pytest.raises(InputError, match="several candidate photometry series"):
        nwb.read_photometry(path)
    dms = nwb.read_photometry(path, "photometry_dms")
    assert dms.control is None and dms.indicator == "GCaMP6f" and dms.location == "dorsomedial striatum"
    np.testing.assert_array_equal(dms.signal, np.linspace(0, 1, t.size))
    nac = nwb.read_photometry(path, "photometry")
    np.testing.assert_array_equal(nac.control, session.photometry[0].control)


def test_rig_extras_analog_devices_notes(tmp_path):
    from dopa_rl.io.nwb_types import AnalogSeries

    session = hand_session(n_trials=4)
    t = np.arange(500) / 100.0
    session.analog["analog_in"] = AnalogSeries(timestamps=t, data=np.sin(t), unit="V", rate=100.0,
                                               description="rig analog input A0")
    session.devices["dopa_rig"] = "dopa_rl Arduino rig, firmware 1.0; valve 12.5 ms = 3 uL"
    session.notes = "valve calibration 2026-02-01"
    path = nwb.write_session(tmp_path / "rig.nwb", session)
    assert inspector_problems(path) == []
    with nwb.NWBSession(path) as s:
        f = s.nwbfile
        np.testing.assert_array_equal(f.acquisition["analog_in"].data[:], np.sin(t))
        assert f.devices["dopa_rig"].description.startswith("dopa_rl Arduino rig") and f.notes.startswith("valve")
        series = {x["path"] for x in s.inspect()["time_series"]}
    assert "acquisition/analog_in" in series


def test_photometry_without_wavelengths_round_trip(tmp_path):
    """A recording whose wavelengths are unknown (as read from a plain TimeSeries) can be written and read
    back with its control channel."""
    from dopa_rl.io.nwb_types import Photometry

    session = hand_session(n_trials=4)
    t = session.photometry[0].timestamps
    rng = np.random.default_rng(5)
    sig, ctl = 1.5 + 0.01 * rng.normal(size=t.size), 1.2 + 0.01 * rng.normal(size=t.size)
    session.photometry = [Photometry(timestamps=t, signal=sig, control=ctl, rate=50.0, signal_excitation_nm=None,
                                     signal_emission_nm=None, control_excitation_nm=None, control_emission_nm=None)]
    path = nwb.write_session(tmp_path / "nowl.nwb", session)
    got = nwb.read_photometry(path)
    np.testing.assert_array_equal(got.signal, sig)
    np.testing.assert_array_equal(got.control, ctl)
    assert got.signal_excitation_nm is None and got.control_excitation_nm is None  # unknown, not NaN
    assert inspector_problems(path) == []


def test_open_sessions_do_not_swallow_or_leak_warning_filters(written):
    """pynwb's read-time warnings are silenced while a file is opened, not the caller's own warnings
    while a session stays open; sessions closed in any order leave the warning filters as they were."""
    import warnings

    _, path = written
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        before = list(warnings.filters)
        with nwb.NWBSession(path) as s:
            s.behavior()
            warnings.warn("the caller's own warning")
        assert any("the caller's own warning" in str(w.message) for w in seen)
        a, b = nwb.NWBSession(path).open(), nwb.NWBSession(path).open()
        a.close()
        b.close()  # closed in the order they were opened, not nested
        assert warnings.filters == before


def test_nullable_columns_with_missing_values_are_written(tmp_path):
    """pandas nullable Int64/boolean columns with missing trials (no lick count, no choice) are stored as
    floats with NaN where missing, instead of failing the whole write."""
    session = hand_session(n_trials=4)
    session.trials["licks"] = pd.array([1, None, 2, 3], dtype="Int64")
    session.trials["flag"] = pd.array([True, None, False, True], dtype="boolean")
    session.trials["n_pokes"] = pd.array([4, 5, 6, 7], dtype="Int64")  # no missing value: stays integer
    got = nwb.read_behavior(nwb.write_session(tmp_path / "nullable.nwb", session))
    np.testing.assert_array_equal(got["licks"].to_numpy(), [1.0, np.nan, 2.0, 3.0])
    np.testing.assert_array_equal(got["flag"].to_numpy(), [1.0, np.nan, 0.0, 1.0])
    assert got["n_pokes"].dtype.kind == "i" and got["n_pokes"].tolist() == [4, 5, 6, 7]


def test_signal_and_isosbestic_as_separate_series_found_by_wavelength(tmp_path):
    """Signal and isosbestic control written as two single-channel FiberPhotometryResponseSeries with
    uninformative names (as some converters do): the reader tells them apart by excitation wavelength."""
    from dopa_rl.io.nwb_types import Photometry

    session = hand_session(n_trials=4)
    t = session.photometry[0].timestamps
    rng = np.random.default_rng(8)
    sig, iso = 1.5 + 0.01 * rng.normal(size=t.size), 1.2 + 0.01 * rng.normal(size=t.size)
    session.photometry = [  # control first, so file order cannot be what picks the signal
        Photometry(timestamps=t, signal=iso, control=None, rate=50.0, name="response_b", signal_excitation_nm=405.0),
        Photometry(timestamps=t, signal=sig, control=None, rate=50.0, name="response_a", signal_excitation_nm=470.0)]
    path = nwb.write_session(tmp_path / "separate.nwb", session)
    got = nwb.read_photometry(path)
    assert got.source_path == "acquisition/response_a"
    np.testing.assert_array_equal(got.signal, sig)
    np.testing.assert_array_equal(got.control, iso)
    assert (got.signal_excitation_nm, got.control_excitation_nm) == (470.0, 405.0)


def test_licks_unknown_when_the_window_is_unknown(tmp_path):
    """A trial without an outcome time (NaN) has no anticipatory window: its lick count is missing (NaN),
    not an observed 0 that the lick models would fit."""
    with_col = hand_session(licks_column=True)
    session = hand_session(licks_column=False)
    session.trials.loc[2, "outcome_time"] = np.nan
    got = nwb.read_behavior(nwb.write_session(tmp_path / "nan_window.nwb", session))
    want = with_col.trials["licks"].to_numpy(dtype=float)
    want[2] = np.nan
    np.testing.assert_array_equal(got["licks"].to_numpy(dtype=float), want)


def test_unwritable_destination_is_an_input_error(tmp_path, capsys):
    """Writing where a file blocks the folder (or into a read-only place) is the user's input problem:
    one line naming the path, exit code 2, nothing left behind."""
    from dopa_rl.cli import main

    blocker = tmp_path / "afile"
    blocker.write_text("a file, not a folder")
    with pytest.raises(InputError, match="cannot write"):
        nwb.write_session(blocker / "s.nwb", hand_session(n_trials=3))
    capsys.readouterr()
    rc = main(["simulate", "--task", "pavlovian", "--model", "rw", "--trials", "10", "--out", str(blocker / "x.nwb")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and str(blocker) in err[0] and "cannot write" in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]
