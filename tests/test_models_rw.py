"""Rescorla-Wagner models against hand-computed values, closed forms and published effects."""
import math

import numpy as np
import pandas as pd
import pytest

from dopa_rl.errors import InputError
from dopa_rl.models import get_model, tasks
from dopa_rl.models.rw import rescorla_wagner_step


def choice_table(choices, rewards, subject="s1"):
    return pd.DataFrame({"subject": subject, "session": "1", "trial": range(len(choices)),
                         "choice": choices, "reward": rewards})


def test_rw_update_matches_hand_computation():
    m = get_model("rw-softmax")
    df = choice_table([0, 0, 1, 0], [1.0, 0.0, 1.0, 1.0])
    data = m.pack(df)
    traj = m.trajectories(np.array([0.5, 2.0]), data, 0)
    # Q before each trial, computed by hand with alpha = 0.5
    assert traj["q_0"].tolist() == pytest.approx([0.0, 0.5, 0.25, 0.25])
    assert traj["q_1"].tolist() == pytest.approx([0.0, 0.0, 0.0, 0.5])
    assert traj["rpe"].tolist() == pytest.approx([1.0, -0.5, 1.0, 0.75])
    # softmax(beta * Q) with beta = 2 on trial 2: Q = (0.5, 0)
    assert traj["p_choice_0"][1] == pytest.approx(1 / (1 + math.exp(-1.0)))
    expected_ll = (math.log(0.5) + math.log(1 / (1 + math.exp(-1.0))) + math.log(1 / (1 + math.exp(0.5)))
                   + math.log(1 / (1 + math.exp(-(0.5 - 1.0)))))
    assert m.loglik(np.array([[0.5, 2.0]]), data, np.array([0]))[0] == pytest.approx(expected_ll)


def test_asymmetric_sticky_and_lapse_variants_by_hand():
    df = choice_table([0, 0, 0], [1.0, -1.0, 0.0])
    asym = get_model("rw-softmax-asym")
    traj = asym.trajectories(np.array([0.5, 0.1, 1.0]), asym.pack(df), 0)
    # +1 error at alpha_pos 0.5 -> 0.5; then error -1.5 at alpha_neg 0.1 -> 0.35
    assert traj["q_0"].tolist() == pytest.approx([0.0, 0.5, 0.35])
    sticky = get_model("rw-softmax-sticky")
    tr = sticky.trajectories(np.array([0.0, 1.0, 2.0]), sticky.pack(df), 0)
    # alpha 0: values stay 0; stickiness alone favours the last choice by exp(2)
    assert tr["p_choice_0"].tolist() == pytest.approx([0.5, 1 / (1 + math.exp(-2)), 1 / (1 + math.exp(-2))])
    lapse = get_model("rw-softmax-lapse")
    tr = lapse.trajectories(np.array([1.0, 50.0, 0.2]), lapse.pack(df), 0)
    # after a reward of 1 with alpha 1 the softmax is ~deterministic; the lapse leaves 0.2 / 2 for the other
    assert tr["p_choice_1"][1] == pytest.approx(0.1, abs=1e-6)


def test_negative_rewards_used_as_given():
    m = get_model("rw-softmax")
    traj = m.trajectories(np.array([0.25, 1.0]), m.pack(choice_table([1, 1], [-2.0, -2.0])), 0)
    assert traj["q_1"].tolist() == pytest.approx([0.0, -0.5])


def test_large_rewards_give_a_finite_log_softmax():
    # rewards in the lab's units (say 1000 ms of valve time): after one reward Q = (500, 0), so choosing
    # option 1 has logits (1500, 0) and log P = -1500 exactly to double precision; exp(-1500) underflows
    m = get_model("rw-softmax")
    data = m.pack(choice_table([0, 1], [1000.0, 0.0]))
    ll, grad = m.loglik_grad_z(m.spec.to_unconstrained(np.array([[0.5, 3.0]])), data, np.array([0]))
    assert ll[0] == pytest.approx(math.log(0.5) - 1500.0, rel=1e-12)
    assert np.all(np.isfinite(grad))


def test_rescorla_wagner_step_compound():
    v = rescorla_wagner_step(np.array([0.5, 0.0]), np.array([True, True]), 1.0, 0.2)
    assert v.tolist() == pytest.approx([0.6, 0.1])


def test_acquisition_matches_closed_form():
    m = get_model("rw-pavlovian")
    sim = m.simulate({"alpha": 0.2, "lick_intercept": 0.0, "lick_slope": 1.0}, tasks.acquisition(30), np.random.default_rng(0))
    n = np.arange(30)
    assert sim.trials["V_A"].to_numpy() == pytest.approx(1 - 0.8**n)


def test_extinction_decays_geometrically():
    m = get_model("rw-pavlovian")
    sim = m.simulate({"alpha": 0.3}, tasks.extinction(50, 20), np.random.default_rng(0))
    v = sim.trials["V_A"].to_numpy()
    v50 = v[50]
    assert v[51:70] == pytest.approx(v50 * 0.7 ** np.arange(1, 20))


def test_blocking_emerges():
    m = get_model("rw-pavlovian")
    p = {"alpha": 0.2}
    rng = np.random.default_rng(0)
    blocked = m.simulate(p, tasks.blocking(100, 50, 5), rng).trials
    control = m.simulate(p, tasks.blocking(100, 50, 5, control=True), rng).trials
    vx_blocked = blocked.loc[blocked.phase == "test", "V_X"].iloc[0]
    vx_control = control.loc[control.phase == "test", "V_X"].iloc[0]
    assert vx_blocked < 0.05
    assert vx_control > 0.45
    # anticipatory licking to X follows its value
    assert blocked.loc[blocked.phase == "test", "licks"].mean() < control.loc[control.phase == "test", "licks"].mean()


def test_overexpectation_lowers_both_cues():
    m = get_model("rw-pavlovian")
    tr = m.simulate({"alpha": 0.1}, tasks.overexpectation(150, 100, 5), np.random.default_rng(0)).trials
    before = tr[tr.phase == "compound"].iloc[0]
    after = tr[tr.phase == "test"].iloc[0]
    assert before["V_A"] > 0.95 and before["V_B"] > 0.95
    assert after["V_A"] < before["V_A"] - 0.3 and after["V_B"] < before["V_B"] - 0.3
    # the compound's summed prediction converges to the single reward
    assert after["V_A"] + after["V_B"] == pytest.approx(1.0, abs=0.02)


def test_bandit_learner_tracks_reversal():
    m = get_model("rw-softmax")
    sim = m.simulate({"alpha": 0.3, "beta": 6.0}, tasks.bandit_task(400), np.random.default_rng(3))
    tr = sim.trials
    # after the reversal at trial 200 the better arm is 1
    assert tr.choice[150:200].mean() < 0.25
    assert tr.choice[350:400].mean() > 0.75


def test_bad_parameters_and_tasks_rejected():
    m = get_model("rw-softmax")
    with pytest.raises(InputError, match="alpha=1.5 is outside"):
        m.simulate({"alpha": 1.5, "beta": 2}, tasks.bandit_task(10), np.random.default_rng(0))
    with pytest.raises(InputError, match="unknown parameter"):
        m.simulate({"alhpa": 0.5}, tasks.bandit_task(10), np.random.default_rng(0))
    with pytest.raises(InputError, match="choice tasks"):
        m.simulate({}, tasks.acquisition(10), np.random.default_rng(0))
    with pytest.raises(InputError, match="unknown model"):
        get_model("rw-sofmax")
