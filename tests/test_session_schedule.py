"""Pure parts of a session: schedule (frequencies, blocks/reversals, ITI), programs, online learners, dF/F."""
from __future__ import annotations

import numpy as np
import pytest

from dopa_rl.models import kernels
from dopa_rl.models import get_model
from dopa_rl.models.rw import cue_matrix
from dopa_rl.rig.client import Action
from dopa_rl.session.config import Rig, parse_config
from dopa_rl.session.policy import DffState, dff_step
from dopa_rl.session.schedule import block_at, plan_trial, program

BASE = """
[session]
subject = "m"
n_trials = 2000
seed = 4
[[trial_types]]
name = "A"
cue = "light"
reward_probability = 0.8
frequency = 3
[[trial_types]]
name = "B"
cue = "tone"
tone_hz = 5000
reward_probability = 0.2
frequency = 1
[iti]
distribution = "{dist}"
mean_s = 2.0
min_s = 1.0
max_s = 4.0
"""


def _cfg(text):
    return parse_config(text)[0]


def test_frequencies_probabilities_and_determinism():
    cfg = _cfg(BASE.format(dist="exponential"))
    plans = [plan_trial(cfg, k) for k in range(2000)]
    a = [p for p in plans if p.trial_type == "A"]
    assert len(a) / 2000 == pytest.approx(0.75, abs=0.03)
    assert np.mean([p.rewarded for p in a]) == pytest.approx(0.8, abs=0.03)
    assert np.mean([p.rewarded for p in plans if p.trial_type == "B"]) == pytest.approx(0.2, abs=0.05)
    iti = np.array([p.iti_s for p in plans])
    assert iti.min() >= 1.0 and iti.max() <= 4.0 and 1.6 < iti.mean() < 2.0   # truncated at max_s
    assert plan_trial(cfg, 17) == plans[17]                                     # pure: same inputs, same trial


def test_uniform_and_fixed_iti():
    u = _cfg(BASE.format(dist="uniform"))
    iti = np.array([plan_trial(u, k).iti_s for k in range(1000)])
    assert iti.min() >= 1.0 and iti.max() <= 4.0 and iti.mean() == pytest.approx(2.5, abs=0.1)
    f = _cfg(BASE.format(dist="fixed"))
    assert {plan_trial(f, k).iti_s for k in range(20)} == {2.0}


def test_blocks_reverse_and_repeat():
    text = BASE.format(dist="fixed") + """
[[blocks]]
trials = 100
[[blocks]]
trials = 100
reward_probability = { A = 0.2, B = 0.8 }
"""
    cfg = _cfg(text)
    assert [block_at(cfg, k)[0] for k in (0, 99, 100, 199, 200, 350)] == [0, 0, 1, 1, 2, 3]
    plans = [plan_trial(cfg, k) for k in range(2000)]

    def p_reward(block_parity, name):
        sel = [p.rewarded for p in plans if p.block % 2 == block_parity and p.trial_type == name]
        return np.mean(sel)

    assert p_reward(0, "A") == pytest.approx(0.8, abs=0.05) and p_reward(1, "A") == pytest.approx(0.2, abs=0.05)
    assert p_reward(0, "B") == pytest.approx(0.2, abs=0.08) and p_reward(1, "B") == pytest.approx(0.8, abs=0.08)


def test_program_timing_and_valve_from_calibration():
    cfg = _cfg(BASE.format(dist="fixed"))
    plan = plan_trial(cfg, 0).with_(trial_type="A", cue="light+tone", cue_s=1.0, trace_s=0.5, post_s=1.0,
                                    rewarded=True, reward_ul=4.0, stim=True, ttl_ms=7)
    dur, acts = program(plan, Rig(ms_per_ul=12.5))
    assert dur == 2500
    assert (0, Action.CUE_ON, 0) in acts and (0, Action.TONE_ON, 5000) in acts
    assert (1_000_000, Action.CUE_OFF, 0) in acts and (1_000_000, Action.TONE_OFF, 0) in acts
    assert (1_500_000, Action.VALVE_PULSE, 50) in acts and (1_500_000, Action.TTL_PULSE, 7) in acts
    omit = plan.with_(rewarded=False, reward_ul=0.0, stim=False)
    assert not [a for a in program(omit, Rig())[1] if a[1] in (Action.VALVE_PULSE, Action.TTL_PULSE)]


def test_online_rw_is_the_offline_model():
    rng = np.random.default_rng(0)
    cues = list(rng.choice(["A", "B", "A+X"], 300))
    rewards = (rng.random(300) < 0.7).astype(float)
    m = get_model("rw-pavlovian").online({"alpha": 0.25})
    online = np.array([[u.value, u.rpe_outcome] for u in (m.step(c, r) for c, r in zip(cues, rewards))])
    X, _ = cue_matrix(cues)
    resets = np.zeros(300, bool)
    resets[0] = True
    _, pred, rpe = kernels.rw_pavlovian_trajectory(np.array([0.25, 0.25, 0.0, 1.0]), X, rewards, resets)
    np.testing.assert_allclose(online[:, 0], pred, atol=1e-12)
    np.testing.assert_allclose(online[:, 1], rpe, atol=1e-12)


def test_online_td_moves_the_rpe_from_reward_to_cue_and_dips_on_omission():
    m = get_model("td").online({"alpha": 0.2, "gamma": 0.95, "lambda_": 0.9})
    first = m.step("A", 1.0, outcome_s=1.5)
    for _ in range(200):
        last = m.step("A", 1.0, outcome_s=1.5)
    assert first.rpe_outcome == pytest.approx(1.0) and first.rpe_cue == pytest.approx(0.0)
    assert last.rpe_outcome < 0.05 and last.rpe_cue > 0.6
    assert m.step("A", 0.0, outcome_s=1.5).rpe_outcome < -0.6


def test_dff_crossings():
    rate = 100.0
    t = np.arange(2000) / rate
    x = 500 + 200 * (np.sin(2 * np.pi * t) > 0.99)          # brief 40 % steps once a second
    st, cross = dff_step(DffState(), list(x.astype(int)), 0.0, rate, 2.0, 0.3, 0.5)
    times = np.array([c[0] for c in cross])
    assert len(times) == 18 and times.min() >= 2.0 and np.allclose(np.diff(times), 1.0, atol=0.02)
    # the same stream in batches of 8 gives the same crossings (the state carries over)
    st2, out = DffState(), []
    for i in range(0, 2000, 8):
        st2, c = dff_step(st2, list(x[i:i + 8].astype(int)), i / rate, rate, 2.0, 0.3, 0.5)
        out += c
    np.testing.assert_allclose([c[0] for c in out], times)
