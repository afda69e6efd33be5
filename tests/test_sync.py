"""dopa_rl.sync: random-interval sync pulses aligned across clocks (offset, drift, dropped and extra pulses)."""
import numpy as np
import pytest

from dopa_rl.errors import InputError
from dopa_rl.sync import align_pulses, random_intervals


def acquisition_clock(rig, rng, *, offset=12.3, drift_ppm=50.0, drop=0.05, spurious=0.01, jitter=1e-4):
    """What another system records of the rig's pulses: its own clock (offset, drift), jitter, some pulses
    missed and some spurious ones (noise on the line)."""
    kept = rig[rng.random(len(rig)) >= drop]
    t = offset + (1 + drift_ppm * 1e-6) * kept + rng.normal(0, jitter, len(kept))
    extra = rng.uniform(t[0], t[-1], int(round(spurious * len(rig))))
    return np.sort(np.concatenate([t, extra])), kept


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_offset_drift_dropped_and_spurious_pulses(seed):
    rng = np.random.default_rng(seed)
    rig = np.cumsum(random_intervals(1200, rng))           # about an hour of pulses, 1-5 s apart
    other, kept = acquisition_clock(rig, rng)
    m = align_pulses(rig, other)
    assert m.residual_ms < 0.5
    assert abs(m.offset_s - 12.3) < 1e-3
    assert abs(m.drift_ppm - 50.0) < 1.0
    # every pulse both systems saw is paired, none wrongly: the pairs are exactly the kept pulses
    assert m.n_matched == len(kept)
    np.testing.assert_allclose(m.rig_matched, kept)
    # the mapping takes the other clock's times of rig events back to the rig's times (to well under 1 ms)
    events = rng.uniform(0, rig[-1], 50)
    seen = 12.3 + (1 + 50e-6) * events
    np.testing.assert_allclose(m.to_rig(seen), events, atol=2e-4)
    np.testing.assert_allclose(m.to_other(m.to_rig(seen)), seen, atol=1e-9)


def test_rig_side_gaps_and_recording_that_starts_late():
    """The other system started 10 minutes late and missed a stretch; the rig lost none."""
    rng = np.random.default_rng(5)
    rig = np.cumsum(random_intervals(1000, rng))
    late = rig[(rig > 600) & ~((rig > 1500) & (rig < 1700))]
    other = -3.0 + (1 - 20e-6) * late
    m = align_pulses(rig, other)
    assert m.n_matched == len(late)
    assert abs(m.offset_s + 3.0) < 1e-6 and abs(m.drift_ppm + 20.0) < 1e-3


def test_unrelated_sequences_are_refused():
    rng = np.random.default_rng(1)
    a = np.cumsum(random_intervals(300, rng))
    b = np.cumsum(random_intervals(300, rng))
    with pytest.raises(InputError, match="do not match"):
        align_pulses(a, b)


def test_periodic_pulses_are_ambiguous_and_refused():
    """Evenly spaced pulses carry no fingerprint: which pulse is which cannot be told."""
    with pytest.raises(InputError, match="do not match"):
        align_pulses(np.arange(200.0), 7.0 + np.arange(200.0))


@pytest.mark.parametrize("bad", [[1.0, np.nan, 3.0], [1.0, 2.0]])
def test_bad_input(bad):
    with pytest.raises(InputError):
        align_pulses(np.asarray(bad), np.arange(100.0))


# ----------------------------------------------------------------------------- dopa-rl sync on a simulated session
import datetime as dt  # noqa: E402
import hashlib  # noqa: E402

import pandas as pd  # noqa: E402

from dopa_rl.cli import main  # noqa: E402

LATENCY_S = 0.25      # the simulated dopamine transient peaks this long after a rewarded outcome
OFFSET, DRIFT = 12.3, 50.0


def simulated_session(tmp_path, rng):
    """A rig session (trials, random-interval sync pulses on the rig clock) and what a photometry system
    recorded on its own clock: the rig's pulses (5% lost, 1% spurious, 0.1 ms jitter) and a 50 Hz trace with
    a dopamine transient LATENCY_S after each rewarded outcome."""
    from dopa_rl.io.nwb import write_session
    from dopa_rl.io.nwb_types import SessionData, SessionMetadata

    n = 60
    start = np.cumsum(rng.uniform(8, 14, n))
    outcome = start + 1.5
    rewarded = rng.random(n) < 0.5
    trials = pd.DataFrame({"start_time": start, "stop_time": start + 3.0, "cue_time": start, "outcome_time": outcome,
                           "cue": "light", "reward": rewarded.astype(float)})
    pulses = np.cumsum(random_intervals(400, rng))
    pulses = pulses[pulses < start[-1] + 20]
    md = SessionMetadata(subject_id="m1", session_id="s1", session_start_time=dt.datetime(2026, 12, 7, 9, 0),
                         institution="test lab", experimenter=("Doe, Jane",))
    nwb = write_session(tmp_path / "s.nwb", SessionData(metadata=md, trials=trials, events={"sync": pulses},
                                                        event_descriptions={"sync": "rig sync pulses, session time"}))
    seen, _ = acquisition_clock(pulses, rng, offset=OFFSET, drift_ppm=DRIFT)
    pd.DataFrame({"t": seen}).to_csv(tmp_path / "fp_ttl.csv", index=False)
    # the photometry trace: samples every 20 ms on the photometry clock
    t_other = np.arange(OFFSET, OFFSET + start[-1] + 20, 0.02)
    t_true = (t_other - OFFSET) / (1 + DRIFT * 1e-6)       # the rig time of each sample
    x = rng.normal(0, 0.05, len(t_other))
    for t in outcome[rewarded]:
        x += np.exp(-0.5 * ((t_true - t - LATENCY_S) / 0.08) ** 2)
    pd.DataFrame({"t": t_other, "dff": x}).to_csv(tmp_path / "fp.csv", index=False)
    return nwb, trials[rewarded]


def peak_latency(times, values, events):
    from dopa_rl.neural.alignment import peri_event_matrix

    rate = 1 / np.median(np.diff(times))
    # resample onto a regular grid starting at 0 (the aligned timestamps are on the rig clock)
    grid = np.arange(0, times[-1], 1 / rate)
    m = peri_event_matrix(np.interp(grid, times, values), events, (-1.0, 2.0), rate=rate, t0=0.0, warn=False)
    mean = m.mean()
    i = int(np.argmax(mean))
    return m.time[i], mean[i]


def test_sync_command_puts_the_dopamine_response_at_the_trial_events(tmp_path):
    from _nwb_support import inspector_problems

    from dopa_rl.io.nwb_photometry import read_photometry
    from dopa_rl.io.nwb_read import open_nwb

    nwb, rewarded = simulated_session(tmp_path, np.random.default_rng(3))
    before = hashlib.sha256(nwb.read_bytes()).hexdigest()
    out = tmp_path / "aligned.nwb"
    assert main(["sync", str(nwb), "--pulses", str(tmp_path / "fp_ttl.csv"), "--column", "t",
                 "--photometry", str(tmp_path / "fp.csv"), "--photometry-signal", "dff", "--out", str(out),
                 "--json", str(tmp_path / "m.json")]) == 0
    assert hashlib.sha256(nwb.read_bytes()).hexdigest() == before        # the input was not touched
    phot = read_photometry(out, "photometry_synced")
    lat, amp = peak_latency(phot.timestamps, phot.signal, rewarded["outcome_time"].to_numpy())
    assert abs(lat - LATENCY_S) <= 0.02 and amp > 0.9                    # within one sample, at full height
    # unaligned, the same trace puts the response nowhere near the outcome (the test can fail)
    raw = pd.read_csv(tmp_path / "fp.csv")
    _, raw_amp = peak_latency(raw["t"].to_numpy(), raw["dff"].to_numpy(), rewarded["outcome_time"].to_numpy())
    assert raw_amp < 0.2
    with open_nwb(out) as f:
        row = f.processing["sync"]["clock_alignment"].to_dataframe().iloc[0]
        assert row["clock"] == "fp_ttl" and row["rig_events"] == "sync"
        assert abs(row["offset_s"] - OFFSET) < 1e-3 and abs(row["drift_ppm"] - DRIFT) < 2 and row["residual_ms"] < 0.5
        pairs = f.processing["sync"]["sync_pulses_fp_ttl"].to_dataframe()
        assert len(pairs) == row["n_matched"]
        np.testing.assert_allclose(pairs["other_time"], OFFSET + (1 + DRIFT * 1e-6) * pairs["rig_time"], atol=1e-3)
        assert len(f.trials) == 60                                         # everything else is still there
    assert inspector_problems(out) == []
    import json

    assert json.loads((tmp_path / "m.json").read_text())["n_matched"] == row["n_matched"]


def test_sync_in_place_replaces_the_file_only_when_complete(tmp_path):
    from dopa_rl.io.nwb_read import open_nwb

    nwb, _ = simulated_session(tmp_path, np.random.default_rng(4))
    assert main(["sync", str(nwb), "--pulses", str(tmp_path / "fp_ttl.csv"), "--in-place", "--clock", "fp"]) == 0
    with open_nwb(nwb) as f:
        assert "sync_pulses_fp" in f.processing["sync"].data_interfaces
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fp.csv", "fp_ttl.csv", "s.nwb"]   # no temporary left
    # a second alignment to the same clock name is refused and leaves the file as it was
    before = hashlib.sha256(nwb.read_bytes()).hexdigest()
    assert main(["sync", str(nwb), "--pulses", str(tmp_path / "fp_ttl.csv"), "--in-place", "--clock", "fp"]) == 2
    assert hashlib.sha256(nwb.read_bytes()).hexdigest() == before


@pytest.mark.parametrize("change, message", [
    ({"--column": "time"}, "no column 'time'"),
    ({"--pulses": "missing.csv"}, "no such file"),
    ({"--rig-events": "lick"}, "no 'lick' events"),
    ({"--out": "x.h5"}, "must end in .nwb"),
    ({"--pulses": "garbage.csv"}, "not a number"),
    ({"--pulses": "unrelated.csv"}, "do not match"),
])
def test_sync_bad_input_one_line_exit_2_nothing_written(tmp_path, capsys, change, message):
    nwb, _ = simulated_session(tmp_path, np.random.default_rng(5))
    (tmp_path / "garbage.csv").write_text("t\n1.0\nabc\n")
    pd.DataFrame({"t": np.cumsum(random_intervals(200, np.random.default_rng(9)))}).to_csv(tmp_path / "unrelated.csv")
    opts = {"--pulses": "fp_ttl.csv", "--column": "t", "--out": "out.nwb"} | change
    argv = ["sync", str(nwb)] + [x for k, v in opts.items() for x in (k, str(tmp_path / v) if k in ("--pulses", "--out") else v)]
    before = set(tmp_path.iterdir())
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert set(tmp_path.iterdir()) == before
