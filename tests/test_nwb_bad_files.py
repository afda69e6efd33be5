"""Bad input files: one clear line naming the file and the problem, exit code 2, the input untouched."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from _nwb_support import hand_session, sha256
from dopa_rl.cli import main
from dopa_rl.io import nwb


def _plain_nwb(path, build):
    from pynwb import NWBHDF5IO, NWBFile

    f = NWBFile(session_description="bad", identifier="bad", session_start_time=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
    build(f)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(f)
    return path


def _not_hdf5(d):
    p = d / "notes.nwb"
    p.write_text("trial,reward\n1,0\n")
    return p, "inspect"


def _truncated(d):
    p = nwb.write_session(d / "full.nwb", hand_session(n_trials=40))
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return p, "inspect"


def _no_trials(d):
    s = hand_session()
    s.trials = None
    return nwb.write_session(d / "notrials.nwb", s), "behavior"


def _missing_column(d):
    s = hand_session()
    s.trials = s.trials.drop(columns=["reward"])
    return nwb.write_session(d / "noreward.nwb", s), "behavior"


def _wrong_dtype(d):
    s = hand_session()
    s.trials["reward"] = ["lots"] * len(s.trials)
    return nwb.write_session(d / "textreward.nwb", s), "behavior"


def _nan_reward(d):
    s = hand_session()
    s.trials.loc[3, "reward"] = np.nan
    return nwb.write_session(d / "nanreward.nwb", s), "behavior"


def _non_monotonic(d):
    from pynwb import TimeSeries

    t = np.arange(100) / 10.0
    t[50], t[51] = t[51], t[50]
    return _plain_nwb(d / "backwards.nwb", lambda f: f.add_acquisition(
        TimeSeries(name="photometry", data=np.ones(100), unit="V", timestamps=t))), "photometry"


def _empty_units(d):
    from pynwb.misc import Units

    def build(f):
        f.units = Units(name="units", description="none sorted", resolution=1 / 30000)
    return _plain_nwb(d / "nounits.nwb", build), "units"


CASES = {
    "not HDF5": (_not_hdf5, "not an HDF5 file"),
    "truncated": (_truncated, "truncated"),
    "NWB without trials": (_no_trials, "no trials table"),
    "trials without a needed column": (_missing_column, "no 'reward' column"),
    "wrong column dtype": (_wrong_dtype, "column 'reward' has non-numeric values"),
    "NaN rewards": (_nan_reward, "'reward' is missing (NaN)"),
    "non-monotonic photometry timestamps": (_non_monotonic, "timestamps are not increasing"),
    "units table empty": (_empty_units, "units table is empty"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_file_one_line_exit_2_untouched(case, tmp_path, capsys):
    make, expected = CASES[case]
    path, what = make(tmp_path)
    before = sha256(path)
    argv = ["inspect", str(path)] + ([] if what == "inspect" else ["--require", what])
    capsys.readouterr()
    rc = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2, err
    assert len(err) == 1, err
    assert err[0].startswith("error: ") and str(path) in err[0] and expected in err[0], err[0]
    assert "Traceback" not in err[0]
    assert sha256(path) == before


def test_good_file_passes_every_requirement(tmp_path):
    """Control for the corpus: the same checks accept a good file (so the failures above are specific)."""
    path = nwb.write_session(tmp_path / "good.nwb", hand_session())
    assert main(["inspect", str(path), "--require", "behavior,photometry,units,events"]) == 0


@pytest.mark.parametrize("case", [c for c in CASES if c in (
    "not HDF5", "truncated", "NWB without trials", "trials without a needed column", "wrong column dtype",
    "NaN rewards")])
def test_bad_file_through_fit(case, tmp_path, capsys):
    """`dopa-rl fit FILE.nwb` reads behavior through the same readers: same one-line refusal."""
    make, expected = CASES[case]
    path, _ = make(tmp_path)
    before = sha256(path)
    capsys.readouterr()
    rc = main(["fit", str(path), "--model", "rw-pavlovian"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and str(path) in err[0] and expected in err[0], err
    assert sha256(path) == before


def test_inspect_survives_timestamps_shorter_than_data(tmp_path, capsys):
    """An odd file (another tool wrote fewer timestamps than samples): inspect still reports on it, and
    reading that series is refused with one line, instead of an internal IndexError."""
    import h5py
    from pynwb import TimeSeries

    path = _plain_nwb(tmp_path / "short_ts.nwb", lambda f: f.add_acquisition(
        TimeSeries(name="photometry", data=np.ones(100), unit="V", timestamps=np.arange(100) / 10.0)))
    with h5py.File(path, "a") as h:  # what pynwb refuses to write, some tools do
        del h["acquisition/photometry/timestamps"]
        h["acquisition/photometry/timestamps"] = np.arange(90) / 10.0
    before = sha256(path)
    summary = nwb.inspect_nwb(path)
    (ts,) = summary["time_series"]
    assert ts["samples"] == 100 and ts["duration"] == pytest.approx(8.9)  # last of the 90 timestamps
    assert any("100 samples but 90 timestamps" in n for n in summary["notes"])
    capsys.readouterr()
    assert main(["inspect", str(path), "--require", "photometry"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0] and "100 samples but 90 timestamps" in err[0], err
    assert sha256(path) == before


def _damaged_chunk(d):
    """A file whose photometry data chunk is overwritten with zeros (opens fine, fails on reading data)."""
    import h5py

    p = nwb.write_session(d / "damaged.nwb", hand_session(n_trials=40))
    with h5py.File(p, "r") as f:
        off = f["acquisition/photometry/data"].id.get_chunk_info(0).byte_offset
    data = bytearray(p.read_bytes())
    data[off + 100: off + 400] = bytes(300)
    p.write_bytes(bytes(data))
    return p


def test_damaged_data_is_an_input_error_but_the_callers_own_os_errors_are_not(tmp_path):
    path = _damaged_chunk(tmp_path)
    from dopa_rl.errors import InputError

    with pytest.raises(InputError, match="may be damaged"):
        nwb.read_photometry(path)
    # an OSError of the caller's own code inside an open session is not blamed on the NWB file
    with pytest.raises(FileNotFoundError):
        with nwb.NWBSession(path):
            open(tmp_path / "no" / "such" / "folder.csv", "w")


def test_inspect_does_not_call_an_empty_trials_table_ready(tmp_path):
    from hdmf.common import VectorData
    from pynwb.epoch import TimeIntervals

    def build(f):
        f.trials = TimeIntervals(name="trials", description="no trials run", columns=[
            VectorData(name=n, description=n, data=np.array([], dtype=float))
            for n in ("start_time", "stop_time", "cue", "reward")])
    path = _plain_nwb(tmp_path / "empty_trials.nwb", build)
    behavior = nwb.inspect_nwb(path)["analyses"]["behavior"]
    assert behavior["ready"] is False and behavior["rows"] == 0
    assert any("no rows" in m for m in behavior["missing"])
    assert main(["inspect", str(path), "--require", "behavior"]) == 2  # the reader agrees
