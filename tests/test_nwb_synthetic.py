"""Synthetic sessions: model -> NWB -> read back, dopamine signals that follow the RPE, ground truth stored."""
from __future__ import annotations

import numpy as np
import pytest

from _nwb_support import inspector_problems
from dopa_rl.errors import InputError
from dopa_rl.io import nwb
from dopa_rl.io.spikes import read_spike_trains
from dopa_rl.io.synthetic import DopamineObservation, photometry_from_rpe, simulate_session, simulate_sessions


@pytest.fixture(scope="module")
def pav(tmp_path_factory):
    session = simulate_session("pavlovian", "rw", seed=11, n_trials=80)
    path = nwb.write_session(tmp_path_factory.mktemp("syn") / "pav.nwb", session)
    return session, path


def test_simulated_session_round_trip(pav):
    session, path = pav
    got = nwb.read_behavior(path)
    want = session.trials
    for col in want.columns:
        if col in ("subject", "session"):
            assert (got[col].astype(str) == want[col].astype(str)).all()
        elif want[col].dtype.kind in "fiu":
            np.testing.assert_array_equal(got[col].to_numpy(), want[col].to_numpy(), err_msg=col)
        else:
            assert list(got[col]) == list(want[col]), col
    events = nwb.read_events(path)
    for name, times in session.events.items():
        np.testing.assert_array_equal(events[name], np.sort(times))
    phot = nwb.read_photometry(path)
    np.testing.assert_array_equal(phot.signal, session.photometry[0].signal)
    np.testing.assert_array_equal(phot.control, session.photometry[0].control)
    trains = read_spike_trains(path)
    assert set(trains) == set(session.units)
    for uid, times in session.units.items():
        np.testing.assert_array_equal(trains[uid], times)


def test_licks_in_events_match_lick_counts(pav):
    session, path = pav
    lick = nwb.read_events(path)["lick"]
    tr = session.trials
    counted = nwb.count_events_in_windows(lick, tr["cue_time"].to_numpy(), tr["outcome_time"].to_numpy())
    np.testing.assert_array_equal(counted, tr["licks"].to_numpy())


def test_ground_truth_stored(pav):
    session, path = pav
    truth = nwb.read_true_parameters(path)
    assert truth["model"] == "rw-pavlovian" and truth["task"] == "pavlovian"
    for k in ("alpha", "lick_intercept", "lick_slope"):
        assert truth[k] == pytest.approx(session.true_parameters[k])
    traj = nwb.read_true_trajectories(path)
    assert len(traj) == len(session.trials) and {"rpe_cue", "rpe_outcome", "V_A"} <= set(traj.columns)
    assert "V_A" not in nwb.read_behavior(path).columns  # latent values stay out of the trials table
    props = read_spike_trains(path).properties
    assert (props["gain_hz"] > 0).all()


def _mean_window(t, x, centers, lo, hi):
    idx = [(t >= c + lo) & (t < c + hi) for c in centers]
    return np.array([x[i].mean() for i in idx])


def test_dopamine_follows_rpe(pav):
    """Independent checks of the generative story: outcome responses scale with the true RPE,
    the control channel shares the motion artifact, the signal bleaches, spikes rise with the RPE."""
    session, path = pav
    phot = nwb.read_photometry(path)
    traj = nwb.read_true_trajectories(path)
    out_t = session.trials["outcome_time"].to_numpy()
    resp = _mean_window(phot.timestamps, phot.signal, out_t, 0.1, 0.8) - _mean_window(
        phot.timestamps, phot.signal, out_t, -0.5, -0.05)
    r = np.corrcoef(resp, traj["rpe_outcome"])[0, 1]
    assert r > 0.8, r
    first = phot.signal[phot.timestamps < 60].mean()
    last = phot.signal[phot.timestamps > phot.timestamps[-1] - 60].mean()
    assert last < first  # photobleaching
    trains = read_spike_trains(path)
    spikes = np.sort(np.concatenate(list(trains.values())))
    counts = nwb.count_events_in_windows(spikes, out_t, out_t + 0.2)
    r_spk = np.corrcoef(counts, traj["rpe_outcome"])[0, 1]
    assert r_spk > 0.5, r_spk


def _highpass_corr(phot):
    k = np.ones(int(10 * phot.rate)) / int(10 * phot.rate)  # remove the slow bleaching trend
    hp_sig = (phot.signal - np.convolve(phot.signal, k, "same"))[len(k):-len(k)]
    hp_ctl = (phot.control - np.convolve(phot.control, k, "same"))[len(k):-len(k)]
    return np.corrcoef(hp_sig, hp_ctl)[0, 1]


def test_motion_artifact_is_shared_with_isosbestic():
    starts, rpe = np.arange(20) * 6.0, np.zeros((20, 15))
    obs = DopamineObservation(motion_rate_hz=0.2)
    phot, _ = photometry_from_rpe(starts, rpe, 0.25, 130.0, obs, np.random.default_rng(0))
    assert _highpass_corr(phot) > 0.8
    still = DopamineObservation(motion_rate_hz=0.2, motion_depth=0.0)
    phot0, _ = photometry_from_rpe(starts, rpe, 0.25, 130.0, still, np.random.default_rng(0))
    assert abs(_highpass_corr(phot0)) < 0.1


@pytest.mark.parametrize("task,model", [("pavlovian", "rw"), ("bandit", "rw"), ("pavlovian", "td")])
def test_simulate_sessions_files_pass_nwbinspector(task, model, tmp_path):
    paths = simulate_sessions(task=task, model=model, n_subjects=1, n_sessions=1, out=tmp_path / "one.nwb",
                              seed=5, n_trials=30)
    assert paths == [tmp_path / "one.nwb"]
    assert inspector_problems(paths[0]) == []
    assert nwb.read_true_parameters(paths[0])["task"] == task


def test_simulate_sessions_folder_and_reproducible(tmp_path):
    a = simulate_sessions("bandit", "rw", n_subjects=2, n_sessions=2, out=tmp_path / "a", seed=9, n_trials=25,
                          progress=False)
    b = simulate_sessions("bandit", "rw", n_subjects=2, n_sessions=2, out=tmp_path / "b", seed=9, n_trials=25,
                          progress=False)
    assert [p.name for p in a] == ["sub-sim01_ses-01.nwb", "sub-sim01_ses-02.nwb",
                                   "sub-sim02_ses-01.nwb", "sub-sim02_ses-02.nwb"]
    ta, tb = nwb.read_true_parameters(a[0]), nwb.read_true_parameters(a[1])
    assert ta["alpha"] == tb["alpha"]  # a subject keeps its parameters across sessions
    assert ta["alpha"] != nwb.read_true_parameters(a[2])["alpha"]
    for pa, pb in zip(a, b):
        np.testing.assert_array_equal(nwb.read_behavior(pa)["choice"], nwb.read_behavior(pb)["choice"])
    assert not nwb.read_behavior(a[0])["choice"].equals(nwb.read_behavior(a[1])["choice"])


def test_simulate_sessions_bad_requests(tmp_path):
    with pytest.raises(InputError, match="need a folder"):
        simulate_sessions("pavlovian", "rw", n_subjects=2, out=tmp_path / "x.nwb")
    with pytest.raises(InputError, match="Pavlovian tasks only"):
        simulate_sessions("bandit", "td", out=tmp_path / "y.nwb")
    with pytest.raises(InputError, match="`task`"):
        simulate_sessions("maze", "rw", out=tmp_path / "z.nwb")
    assert list(tmp_path.iterdir()) == []


def test_fit_accepts_a_folder_of_nwb_sessions(tmp_path, capsys):
    from dopa_rl.cli import main

    simulate_sessions("pavlovian", "rw", n_subjects=2, n_sessions=1, out=tmp_path / "sessions", seed=4,
                      n_trials=40, progress=False)
    out = tmp_path / "fit.json"
    assert main(["fit", str(tmp_path / "sessions"), "--model", "rw-pavlovian", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "sim01" in text and "sim02" in text and out.exists()


def test_dopamine_response_moves_from_reward_to_cue(pav):
    """Read back from the file: the cue response grows and the rewarded-outcome response shrinks with learning."""
    session, path = pav
    phot = nwb.read_photometry(path)
    beh = nwb.read_behavior(path)
    cue_t, out_t = beh["cue_time"].to_numpy(), beh["outcome_time"].to_numpy()
    cue = _mean_window(phot.timestamps, phot.signal, cue_t, 0.1, 0.8) - _mean_window(
        phot.timestamps, phot.signal, cue_t, -0.5, -0.05)
    out = _mean_window(phot.timestamps, phot.signal, out_t, 0.1, 0.8) - _mean_window(
        phot.timestamps, phot.signal, out_t, -0.5, -0.05)
    rewarded = beh["reward"].to_numpy() > 0
    first, last = rewarded & (np.arange(len(beh)) < 3), rewarded & (np.arange(len(beh)) >= len(beh) - 20)
    assert cue[:1].mean() < 0.25 * cue[-20:].mean()  # no cue response before learning
    assert out[first].mean() > 2 * out[last].mean()  # the reward response shrinks
    assert np.corrcoef(cue, nwb.read_true_trajectories(path)["rpe_cue"])[0, 1] > 0.6


def test_every_registered_model_simulates_nwb_sessions(tmp_path, capsys):
    """`dopa-rl simulate --out x.nwb` promises any model: every registered model writes a readable session
    for the task of its kind, and a model of the other kind is one clear line, exit 2, nothing written."""
    from dopa_rl.cli import main
    from dopa_rl.models import list_models

    for m in list_models():
        task = "bandit" if m.kind == "choice" else "pavlovian"
        out = tmp_path / f"{m.name}.nwb"
        assert main(["simulate", "--task", task, "--model", m.name, "--trials", "20", "--out", str(out)]) == 0, m.name
        beh = nwb.read_behavior(out)
        assert len(beh) == 20 and nwb.read_true_parameters(out)["model"] == m.name
    for m in list_models():
        wrong = "pavlovian" if m.kind == "choice" else "bandit"
        assert main(["simulate", "--task", wrong, "--model", m.name, "--out", str(tmp_path / "no.nwb")]) == 2
        assert "tasks only" in capsys.readouterr().err
    assert not (tmp_path / "no.nwb").exists()
