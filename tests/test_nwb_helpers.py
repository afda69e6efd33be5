"""Small pure helpers behind the NWB code: window counting, RPE placement, atomic writes."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dopa_rl.cli import main
from dopa_rl.io.atomic import atomic_open, atomic_write_text
from dopa_rl.io.nwb import count_events_in_windows
from dopa_rl.io.synthetic import rpe_impulses

finite = st.floats(-100, 100, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(finite, max_size=40), st.lists(st.tuples(finite, finite), min_size=1, max_size=10))
def test_count_events_in_windows_matches_brute_force(times, windows):
    lo = np.array([w[0] for w in windows])
    hi = np.array([w[1] for w in windows])
    t = np.array(times)
    want = [int(np.sum((t >= a) & (t < b))) for a, b in zip(lo, hi)]
    np.testing.assert_array_equal(count_events_in_windows(t, lo, hi), want)


def test_nan_windows_count_zero():
    assert count_events_in_windows(np.array([1.0, 2.0]), np.array([np.nan, 0.0]), np.array([5.0, 5.0])).tolist() == [0, 2]


def test_rpe_impulses_land_at_trial_start_plus_bin():
    rpe = np.zeros((2, 10))
    rpe[0, 2] = 0.5   # trial 0 starts at 1.0 s: bin 2 of 0.25 s -> 1.5 s
    rpe[1, 8] = -1.0  # trial 1 starts at 4.0 s: bin 8 -> 6.0 s
    out = rpe_impulses(np.array([1.0, 4.0]), rpe, 0.25, 0.0, 100.0, 1000)
    assert out[150] == 0.5 and out[600] == -1.0 and np.count_nonzero(out) == 2


def test_atomic_open_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(ZeroDivisionError):
        with atomic_open(target) as fh:
            fh.write("half")
            1 / 0
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]
    atomic_write_text(target, "new")
    assert target.read_text() == "new"


def test_inspect_json_to_unwritable_place_is_an_input_error(tmp_path, capsys):
    from _nwb_support import hand_session
    from dopa_rl.io import nwb

    path = nwb.write_session(tmp_path / "s.nwb", hand_session(n_trials=3))
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file, not a folder")
    rc = main(["inspect", str(path), "--json", str(blocker / "s.json")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: --json")


def test_series_names_match_whole_words():
    from dopa_rl.io.nwb_photometry import _CONTROL_WORDS, _SIGNAL_WORDS, name_has_word

    assert name_has_word("processing/ophys/GCaMP6f_470nm", _SIGNAL_WORDS)
    assert name_has_word("acquisition/iso_405", _CONTROL_WORDS) and name_has_word("Isosbestic", _CONTROL_WORDS)
    assert not name_has_word("gcamp_filtered", _CONTROL_WORDS)  # "red" inside "filtered" is not a word
    assert not name_has_word("acquisition/reward_times", _CONTROL_WORDS | _SIGNAL_WORDS)


def test_temp_file_of_a_write_in_progress_is_not_an_nwb_input(tmp_path):
    """While a session is being written (or after a killed write), its temporary file must not be picked
    up as a session by `dopa-rl fit FOLDER` (which reads the folder's *.nwb files)."""
    from dopa_rl.io.atomic import atomic_path
    from dopa_rl.io.behavior import expand_paths

    (tmp_path / "done.nwb").write_bytes(b"complete")
    with atomic_path(tmp_path / "writing.nwb") as tmp:
        tmp.write_bytes(b"half")
        assert tmp.parent == tmp_path  # same folder, so os.replace stays atomic
        assert expand_paths(tmp_path) == [tmp_path / "done.nwb"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["done.nwb", "writing.nwb"]


def test_naive_session_start_time_is_local_time(monkeypatch):
    """A naive datetime (e.g. datetime.now() on the rig PC) means local time, as pynwb reads it;
    it must not be relabelled as UTC, which would shift the session by the UTC offset."""
    import datetime as dt
    import time

    from dopa_rl.io.nwb_types import SessionMetadata

    monkeypatch.setenv("TZ", "XYZ-02")  # POSIX zone 2 h east of UTC, needs no tz database
    time.tzset()
    try:
        naive = dt.datetime(2026, 3, 4, 9, 30)
        md = SessionMetadata(subject_id="m1", session_id="s1", session_start_time=naive)
        assert md.session_start_time.utcoffset() == dt.timedelta(hours=2)
        assert md.session_start_time.timestamp() == naive.timestamp()  # the same instant
        aware = dt.datetime(2026, 3, 4, 9, 30, tzinfo=dt.timezone.utc)
        assert SessionMetadata(subject_id="m1", session_id="s1", session_start_time=aware).session_start_time == aware
    finally:
        monkeypatch.undo()
        time.tzset()


def test_inspect_json_is_strict_json_even_for_an_empty_series(tmp_path, capsys):
    import json
    from datetime import datetime, timezone

    from pynwb import NWBHDF5IO, NWBFile, TimeSeries

    f = NWBFile(session_description="empty series", identifier="e1", session_start_time=datetime(2026, 1, 1, tzinfo=timezone.utc))
    f.add_acquisition(TimeSeries(name="empty_signal", data=np.zeros(0), unit="V", timestamps=np.zeros(0)))
    path = tmp_path / "e.nwb"
    with NWBHDF5IO(str(path), "w") as io:
        io.write(f)
    out = tmp_path / "s.json"
    assert main(["inspect", str(path), "--json", str(out)]) == 0
    capsys.readouterr()

    def refuse(token):
        raise ValueError(f"not JSON: {token}")

    json.loads(out.read_text(), parse_constant=refuse)   # NaN / Infinity would raise
