"""Real NWB files written by other tools (see ../shared/data/real/README.md); never modified by reading."""
from __future__ import annotations

import json

import numpy as np
import pytest

from _nwb_support import sha256
from dopa_rl.cli import main
from dopa_rl.io import nwb
from dopa_rl.io.spikes import read_spike_trains

AKAM = "akam_dlight_nac/m53_NAc_L-2019-11-24-093939_dLight.nwb"
ZHENG = "zheng2022_human_mtl_units/sub-4_ses-4_ecephys+image.nwb"
PYNAPPLE = "pynapple_A8604_units/A8604-211122.nwb"


@pytest.mark.parametrize("name", [AKAM, ZHENG, PYNAPPLE])
def test_inspect_real_file(name, real_data, tmp_path, capsys):
    path = real_data / name
    before = sha256(path)
    out = tmp_path / "s.json"
    assert main(["inspect", str(path), "--json", str(out)]) == 0
    s = json.loads(out.read_text())
    text = capsys.readouterr().out
    assert "analyses:" in text
    if name == AKAM:
        (ts,) = s["time_series"]
        assert ts["samples"] == 705249 and ts["channels"] == 2 and ts["rate"] == 130.0
        assert [c["role"] for c in ts["channel_info"]] == ["signal", "control"]
        assert {e["name"]: e["count"] for e in s["events"]} == {"reward_cue": 137, "sync_pulses": 1046}
        assert s["analyses"]["photometry"]["ready"] and not s["analyses"]["units"]["ready"]
    elif name == ZHENG:
        assert s["units"]["count"] == 35 and s["units"]["spikes"] == 214278 and s["units"]["resolution"] is None
        assert {t["name"] for t in s["interval_tables"]} == {"encoding_table", "recognition_table",
                                                            "timediscrimination_table"}
        assert any("negative time" in n for n in s["notes"])
        assert not s["analyses"]["behavior"]["ready"] and "--trials-table" in s["analyses"]["behavior"]["missing"][0]
    else:
        assert s["units"]["count"] == 3 and s["units"]["spikes"] == 21354
    assert sha256(path) == before


def test_akam_photometry_in_volts_with_control(real_data):
    path = real_data / AKAM
    before = sha256(path)
    p = nwb.read_photometry(path)
    assert len(p.signal) == 705249 and p.rate == 130.0
    # README: raw means 1.478 V (dLight) and 1.449 V (tdTomato): conversion applied, channels by wavelength
    assert p.signal.mean() == pytest.approx(1.478, abs=0.002)
    assert p.control.mean() == pytest.approx(1.449, abs=0.002)
    assert (p.signal_excitation_nm, p.control_excitation_nm) == (470.0, 565.0)
    assert p.control_indicator == "tdTomato"
    swapped = nwb.read_photometry(path, signal_nm=565, control_nm=470)
    np.testing.assert_array_equal(swapped.signal, p.control)
    assert sha256(path) == before


def test_units_without_resolution_match_raw_hdf5(real_data):
    import h5py

    path = real_data / ZHENG
    with h5py.File(path, "r") as f:  # independent read of the ragged spike_times column
        flat, ends = f["units/spike_times"][:], f["units/spike_times_index"][:]
        ids = f["units/id"][:]
    trains = read_spike_trains(path)
    assert trains.unit_ids == [int(i) for i in ids] and trains.n_spikes == 214278
    starts = np.concatenate([[0], ends[:-1]])
    for uid, a, b in zip(ids, starts, ends):
        np.testing.assert_array_equal(trains[int(uid)], np.sort(flat[a:b]))
    small = read_spike_trains(real_data / PYNAPPLE)
    assert len(small) == 3 and small.n_spikes == 21354 and "location" in small.properties.columns


def test_trials_from_custom_interval_table(real_data, capsys):
    path = real_data / ZHENG
    df = nwb.read_behavior(path, trials_table="recognition_table", columns={"reward": "accuracy", "choice": "resp_value"})
    assert len(df) == 180 and np.all(np.diff(df["start_time"].to_numpy()) >= 0)
    assert set(df["reward"].unique()) <= {0, 1, 2} and (df["subject"] == "4").all()
    events = nwb.read_events(path)
    assert events["events"][0] < 0  # the real-data quirk: a negative first TTL timestamp
    rc = main(["inspect", str(path), "--trials-table", "recognition_table", "--columns",
               "reward=accuracy,choice=resp_value", "--require", "behavior,units"])
    assert rc == 0


def test_ttl_codes_come_with_their_times(real_data):
    import h5py

    path = real_data / ZHENG
    frames = nwb.read_event_tables(path)
    with h5py.File(path, "r") as f:
        codes, times = f["acquisition/events/data"][:], f["acquisition/events/timestamps"][:]
    order = np.argsort(times, kind="stable")
    ev = frames["events"]
    np.testing.assert_array_equal(ev["timestamp"], times[order])
    np.testing.assert_array_equal(ev["data"], codes[order])
    with nwb.NWBSession(real_data / AKAM) as s:
        assert {k: len(v) for k, v in s.event_tables().items()} == {"reward_cue": 137, "sync_pulses": 1046}
