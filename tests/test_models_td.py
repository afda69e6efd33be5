"""TD(lambda): published qualitative effects and a plain-loop reference."""
import numpy as np
import pytest

from dopa_rl.models import get_model, tasks
from reference_models import td_csc_single_cue

PARAMS = {"alpha": 0.2, "gamma": 0.95, "lambda_": 0.9}


def test_td_matches_plain_loop_reference():
    m = get_model("td")
    tm = m.timing
    rewards = np.random.default_rng(0).choice([0.0, 1.0], size=60, p=[0.3, 0.7])
    rpe, val = m.run(PARAMS, ["A"] * 60, rewards)
    ref_rpe, ref_val = td_csc_single_cue(rewards, alpha=0.2, gamma=0.95, lambda_=0.9, cue_bin=tm.cue_bin,
                                         outcome_bin=tm.outcome_bin, n_bins=tm.n_bins)
    np.testing.assert_allclose(rpe, ref_rpe, atol=1e-12)
    np.testing.assert_allclose(val, ref_val, atol=1e-12)


def test_rpe_moves_from_reward_to_cue():
    m = get_model("td")
    sim = m.simulate(PARAMS, tasks.acquisition(300), np.random.default_rng(0))
    tm = sim.task.timing
    cue, rew = sim.rpe[:, tm.cue_bin], sim.rpe[:, tm.outcome_bin]
    assert rew[0] == pytest.approx(1.0)          # naive: all of the error at the reward
    assert cue[0] == pytest.approx(0.0)
    assert abs(rew[-20:]).max() < 0.02            # trained: the reward is predicted
    # the cue response reaches the discounted value of the reward (closed form for CSC TD)
    assert cue[-1] == pytest.approx(0.95 ** (tm.outcome_bin - tm.cue_bin), abs=0.01)
    assert cue[:20].mean() < cue[100:120].mean() < cue[-20:].mean()   # rising over training
    # no error anywhere else in a trained trial
    others = np.delete(sim.rpe[-1], [tm.cue_bin, tm.outcome_bin])
    assert np.abs(others).max() < 0.02


def test_omission_dip_at_expected_reward_time():
    m = get_model("td")
    sim = m.simulate(PARAMS, tasks.omission(300, 40, p_omit=0.25), np.random.default_rng(1))
    tm = sim.task.timing
    tr = sim.trials
    omitted = np.flatnonzero((tr.phase == "probe") & (tr.reward == 0))
    assert omitted.size > 3
    first = omitted[0]
    assert sim.rpe[first, tm.outcome_bin] < -0.8
    assert np.argmin(sim.rpe[first]) == tm.outcome_bin
    assert sim.rpe[first, tm.cue_bin] > 0.6      # the cue still predicted reward


@pytest.mark.parametrize("name", ["td-presence", "td-microstimulus"])
def test_other_representations_learn_cue_response(name):
    m = get_model(name)
    sim = m.simulate(PARAMS, tasks.acquisition(400), np.random.default_rng(0))
    tm = sim.task.timing
    # presence codes no time, so it learns a smaller cue value than CSC; both move error to the cue
    assert sim.rpe[-20:, tm.cue_bin].mean() > sim.rpe[:5, tm.cue_bin].mean() + 0.05
    assert sim.rpe[-20:, tm.outcome_bin].mean() < sim.rpe[:5, tm.outcome_bin].mean() - 0.05


def test_partial_reinforcement_cue_value_scales_with_probability():
    m = get_model("td")
    tm = m.timing
    lo = m.simulate(PARAMS, tasks.partial_reinforcement(600, 0.25), np.random.default_rng(0)).rpe[-200:, tm.cue_bin].mean()
    hi = m.simulate(PARAMS, tasks.partial_reinforcement(600, 0.75), np.random.default_rng(0)).rpe[-200:, tm.cue_bin].mean()
    assert hi > 2 * lo > 0


@pytest.mark.parametrize("cue_onset_s", [0.0, 0.5])
def test_cue_at_trial_start_still_gives_a_cue_response(cue_onset_s):
    # the trial starts at V = 0, so entering the cue bin gives gamma * V(cue) even when the cue is bin 0;
    # with CSC the trained cue response is gamma^(bins from cue to outcome) * r wherever the cue sits
    timing = tasks.TrialTiming(cue_onset_s=cue_onset_s, outcome_s=cue_onset_s + 2.0, trial_s=cue_onset_s + 3.0)
    m = get_model("td", timing=timing)
    rpe, _ = m.run({"alpha": 0.3, "gamma": 0.95, "lambda_": 0.9}, ["A"] * 400, np.ones(400))
    assert rpe[-1, timing.cue_bin] == pytest.approx(0.95 ** 8, abs=0.01)
    assert abs(rpe[-1, timing.outcome_bin]) < 0.01
