"""Files written by plain pynwb code (not our writer): other table/series names, read through the mappings."""
from __future__ import annotations

import datetime as dt
import warnings

import numpy as np
import pytest

from _nwb_support import sha256
from dopa_rl.cli import main
from dopa_rl.errors import InputError
from dopa_rl.io import nwb

N = 12
RATE = 20.0


@pytest.fixture(scope="module")
def lab_file(tmp_path_factory):
    """A lab's own layout: trials in intervals/task_trials (unsorted) with their own column names,
    photometry as plain TimeSeries in processing/ophys (raw counts x conversion, explicit timestamps),
    licks as BehavioralEvents."""
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries
    from pynwb.behavior import BehavioralEvents
    from pynwb.epoch import TimeIntervals
    from pynwb.file import Subject

    rng = np.random.default_rng(3)
    f = NWBFile(session_description="lab session", identifier="lab-1",
                session_start_time=dt.datetime(2025, 5, 1, 8, tzinfo=dt.timezone.utc), session_id="day3",
                subject=Subject(subject_id="mouse42", species="Mus musculus"))
    table = TimeIntervals(name="task_trials", description="trials as our lab stores them")
    for col in ("stimulus", "volume_ul", "stim_on", "water_on"):
        table.add_column(name=col, description=col)
    order = rng.permutation(N)  # rows written out of order on purpose
    starts = np.arange(N) * 5.0
    vol = np.where(np.arange(N) % 2 == 0, 3.0, 0.0)
    for i in order:
        table.add_row(start_time=starts[i], stop_time=starts[i] + 4, stimulus=f"tone{i % 2}",
                      volume_ul=vol[i], stim_on=starts[i] + 1, water_on=starts[i] + 2.5)
    f.add_time_intervals(table)
    n = int(N * 5 * RATE)
    t = np.arange(n) / RATE + 0.001 * rng.random(n)
    raw_sig = rng.integers(1000, 2000, n).astype(np.int16)
    raw_iso = rng.integers(500, 900, n).astype(np.int16)
    ophys = f.create_processing_module("ophys", "photometry")
    ophys.add(TimeSeries(name="gcamp_470", data=raw_sig, unit="V", conversion=0.001, timestamps=t,
                         description="GCaMP signal"))
    ophys.add(TimeSeries(name="iso_405", data=raw_iso, unit="V", conversion=0.001, timestamps=t,
                         description="isosbestic"))
    licks_in = [np.sort(rng.uniform(s + 1, s + 2.5, k)) for s, k in zip(starts, rng.integers(0, 5, N))]
    lick_t = np.sort(np.concatenate(licks_in + [np.array([s + 3.0]) for s in starts]))
    beh = f.create_processing_module("behavior", "behavior")
    with warnings.catch_warnings():  # deprecated in pynwb 4, but older files use it: we must read it
        warnings.simplefilter("ignore")
        beh.add(BehavioralEvents(time_series=[TimeSeries(name="lick_times", data=np.ones(len(lick_t)),
                                                         unit="n.a.", timestamps=lick_t, description="licks")]))
    path = tmp_path_factory.mktemp("lab") / "lab.nwb"
    with NWBHDF5IO(str(path), "w") as io:
        io.write(f)
    truth = {"starts": starts, "vol": vol, "licks": np.array([len(x) for x in licks_in]),
             "sig": raw_sig * 0.001, "iso": raw_iso * 0.001, "t": t}
    return path, truth


COLUMNS = {"cue": "stimulus", "reward": "volume_ul", "cue_time": "stim_on", "outcome_time": "water_on"}


def test_behavior_through_column_map(lab_file):
    path, truth = lab_file
    before = sha256(path)
    df = nwb.read_behavior(path, columns=COLUMNS, trials_table="task_trials")
    np.testing.assert_array_equal(df["start_time"].to_numpy(), truth["starts"])  # sorted by start time
    np.testing.assert_array_equal(df["reward"].to_numpy(), truth["vol"])
    np.testing.assert_array_equal(df["cue_time"].to_numpy(), truth["starts"] + 1)
    assert list(df["cue"][:2]) == ["tone0", "tone1"]
    assert (df["subject"] == "mouse42").all() and (df["session"] == "day3").all()
    np.testing.assert_array_equal(df["licks"].to_numpy(), truth["licks"])  # counted from BehavioralEvents
    assert "stimulus" not in df.columns and "volume_ul" not in df.columns
    assert sha256(path) == before


def test_photometry_series_by_name(lab_file):
    path, truth = lab_file
    p = nwb.read_photometry(path, "gcamp_470", control="iso_405")
    np.testing.assert_allclose(p.signal, truth["sig"])  # conversion applied
    np.testing.assert_allclose(p.control, truth["iso"])
    np.testing.assert_array_equal(p.timestamps, truth["t"])
    assert p.source_path == "processing/ophys/gcamp_470"
    auto = nwb.read_photometry(path)  # found by name without being told, control guessed from 'iso'
    np.testing.assert_allclose(auto.control, truth["iso"])


def test_unknown_names_are_explained(lab_file):
    path, _ = lab_file
    with pytest.raises(InputError, match="no trials table named 'trials'.*task_trials"):
        nwb.read_behavior(path)
    with pytest.raises(InputError, match="no column 'stim' \\(for cue\\)"):
        nwb.read_behavior(path, columns={"cue": "stim"}, trials_table="task_trials")
    with pytest.raises(InputError, match="no time series named 'dlight'.*gcamp_470"):
        nwb.read_photometry(path, "dlight")


def test_cli_inspect_with_mapping(lab_file, tmp_path, capsys):
    import json

    path, _ = lab_file
    out = tmp_path / "s.json"
    cols = ",".join(f"{k}={v}" for k, v in COLUMNS.items())
    rc = main(["inspect", str(path), "--trials-table", "task_trials", "--columns", cols,
               "--require", "behavior,photometry,events", "--json", str(out)])
    assert rc == 0
    s = json.loads(out.read_text())
    assert s["analyses"]["behavior"]["ready"] is True
    assert s["interval_tables"][0]["name"] == "task_trials" and s["interval_tables"][0]["rows"] == N
    assert {x["path"] for x in s["time_series"]} >= {"processing/ophys/gcamp_470", "processing/ophys/iso_405"}
    assert "task_trials: 12 rows" in capsys.readouterr().out


def test_ragged_lick_times_column_is_counted(tmp_path):
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.file import Subject

    f = NWBFile(session_description="x", identifier="rag", session_start_time=dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc),
                subject=Subject(subject_id="a", species="Mus musculus"))
    for name, index in (("cue", False), ("reward", False), ("lick_times", True)):
        f.add_trial_column(name=name, description=name, index=index)
    for i in range(5):  # i licks in trial i, plus one after the trial's end that must not count
        f.add_trial(start_time=i * 5.0, stop_time=i * 5 + 4.0, cue="A", reward=1.0,
                    lick_times=list(np.arange(i) * 0.5 + i * 5.0 + 1) + [i * 5.0 + 4.5])
    with NWBHDF5IO(str(tmp_path / "rag.nwb"), "w") as io:
        io.write(f)
    df = nwb.read_behavior(tmp_path / "rag.nwb")
    assert df["licks"].tolist() == [0, 1, 2, 3, 4] and df.attrs["licks_from"] == "trials column lick_times"


def test_malformed_mapped_column_is_named_as_the_lab_calls_it(tmp_path):
    """With --columns reward=volume_ul, a text or NaN volume is reported as 'volume_ul', the column the user has."""
    from pynwb import NWBHDF5IO, NWBFile

    f = NWBFile(session_description="x", identifier="x", session_start_time=dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc))
    for name in ("stimulus", "volume_ul", "volume_nan"):
        f.add_trial_column(name=name, description=name)
    for i in range(4):
        f.add_trial(start_time=i * 5.0, stop_time=i * 5 + 4.0, stimulus="A", volume_ul="lots",
                    volume_nan=float("nan") if i == 2 else 1.0)
    with NWBHDF5IO(str(tmp_path / "lab.nwb"), "w") as io:
        io.write(f)
    with pytest.raises(InputError, match="column 'reward' \\(your 'volume_ul'\\) has non-numeric values"):
        nwb.read_behavior(tmp_path / "lab.nwb", columns={"cue": "stimulus", "reward": "volume_ul"})
    with pytest.raises(InputError, match="column 'reward' \\(your 'volume_nan'\\) is missing \\(NaN\\)"):
        nwb.read_behavior(tmp_path / "lab.nwb", columns={"cue": "stimulus", "reward": "volume_nan"})


def test_unrelated_series_named_control_is_not_taken_as_isosbestic(tmp_path):
    """A guessed control (by name only) must have the signal's number of samples: a 'control_lever'
    series with a few presses is not interpolated into an isosbestic channel."""
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries

    f = NWBFile(session_description="x", identifier="x", session_start_time=dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc))
    f.add_acquisition(TimeSeries(name="gcamp_470", data=np.linspace(1, 2, 200), unit="V", rate=RATE))
    f.add_acquisition(TimeSeries(name="control_lever", data=np.ones(5), unit="n.a.", timestamps=np.arange(5.0)))
    with NWBHDF5IO(str(tmp_path / "lever.nwb"), "w") as io:
        io.write(f)
    p = nwb.read_photometry(tmp_path / "lever.nwb")
    assert p.source_path == "acquisition/gcamp_470" and p.control is None
    named = nwb.read_photometry(tmp_path / "lever.nwb", control="control_lever")  # when asked, it is used
    assert named.control is not None and len(named.control) == 200


def test_sampled_lick_sensor_trace_is_not_counted_as_licks(tmp_path):
    """A lick *sensor* voltage stored with timestamps (1 kHz) is a signal, not 4000 licks; a lick event
    series beside it is what gets counted."""
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries
    from pynwb.file import Subject

    f = NWBFile(session_description="x", identifier="sensor", session_start_time=dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc),
                subject=Subject(subject_id="a", species="Mus musculus"))
    f.add_trial_column(name="cue", description="cue")
    f.add_trial_column(name="reward", description="reward")
    for i in range(4):
        f.add_trial(start_time=i * 1.0, stop_time=i + 0.9, cue="A", reward=1.0)
    t = np.arange(4000) / 1000.0
    f.add_acquisition(TimeSeries(name="lick_sensor", data=np.sin(t), unit="V", timestamps=t))
    with NWBHDF5IO(str(tmp_path / "sensor.nwb"), "w") as io:
        io.write(f)
    assert "lick_sensor" not in nwb.read_events(tmp_path / "sensor.nwb")
    df = nwb.read_behavior(tmp_path / "sensor.nwb")
    assert "licks" not in df.columns or df["licks"].isna().all() or df["licks"].sum() < 10
