"""ANCCR (Jeong et al. 2022) with the reference implementation's published defaults."""
import numpy as np
import pytest

from dopa_rl.errors import InputError
from dopa_rl.models.anccr import (ANCCR_DEFAULTS, anccr_simulate, anccr_trial_responses, concat_events,
                                  fit_anccr_responses,
                                  cue_reward_events, random_rewards)


def _run(ev, T, rng):
    res = anccr_simulate(ev["ids"], ev["times"], ev["magnitudes"], rewards=["reward"],
                         omission={"omission": "reward"}, T=T, rng=rng)
    return res, ev["ids"], ev["trial"]


def test_defaults_are_the_published_ones():
    assert ANCCR_DEFAULTS == {"alpha": 0.02, "alpha_r": 0.2, "w": 0.6, "k": 0.01, "threshold": 0.6,
                              "minimum_rate": 1e-3, "sampling_interval": 0.2, "max_jitter": 0.1,
                              "t_ratio": 1.2}


def test_conditioning_moves_the_response_from_reward_to_cue_and_omission_dips():
    # Jeong et al. 2022 Fig. 2 (omission.m): background rewards, 500 cue-reward trials, then 50% reward
    rng = np.random.default_rng(2)
    ev = concat_events(random_rewards(500, 31.0, rng),
                       cue_reward_events(500, rng, p_reward=1.0, mean_iti=30, delay=1.0),
                       cue_reward_events(100, rng, p_reward=0.5, mean_iti=30, delay=1.0))
    res, ids, trial = _run(ev, 1.2 * 31.0, rng)
    da = res["da"]
    cue = da[ids == "cue"]
    rew = da[(ids == "reward") & (trial >= 0)]
    om = da[(ids == "omission") & res["active"]]
    assert cue[:5].mean() < 0.3 < 0.6 < cue[495:500].mean()          # cue response acquired
    assert rew[:5].mean() > 0.6 > 0.3 > rew[495:500].mean()          # reward response declines
    assert om.size > 20 and om.mean() < -0.1                          # omission: negative response
    assert res["mct"][res["labels"].index("cue")]                     # the cue became a meaningful cause


def test_cue_responses_order_with_reward_probability():
    # Jeong et al. 2022 Fig. 2 (rewardprobability.m): cue response grows, reward response shrinks with p
    cue, rew = [], []
    for p in (0.3, 0.6, 0.9):
        rng = np.random.default_rng(10)
        ev = cue_reward_events(1500, rng, p_reward=p, mean_iti=100, max_iti=300, delay=0.5, post_delay=1.0)
        res, ids, _ = _run(ev, 1.2 * (100.5 / 0.6), rng)
        cue.append(res["da"][ids == "cue"][-100:].mean())
        rew.append(res["da"][ids == "reward"][-100:].mean())
    assert 0 < cue[0] < cue[1] < cue[2]
    assert rew[0] > rew[1] > rew[2] > 0


def test_trial_responses_for_a_trials_table():
    rng = np.random.default_rng(3)
    n = 300
    ct = np.cumsum(rng.exponential(30, n) + 2.0)
    reward = (rng.random(n) < 0.8).astype(float)
    out = anccr_trial_responses(["A"] * n, ct, ct + 1.0, reward, rng=rng)
    assert out["cue"].shape == (n,) and out["outcome"].shape == (n,)
    assert out["cue"][-50:].mean() > out["cue"][:10].mean() + 0.2
    rewarded = reward > 0
    assert np.all(np.isfinite(out["outcome"][rewarded]))
    late_om = out["outcome"][200:][~rewarded[200:]]
    assert np.all(np.isfinite(late_om)) and late_om.mean() < 0


def test_unsorted_input_is_returned_in_input_order():
    rng = np.random.default_rng(4)
    ev = cue_reward_events(100, rng, mean_iti=20, delay=1.0)
    perm = np.random.default_rng(0).permutation(ev["ids"].size)
    a = anccr_simulate(ev["ids"], ev["times"], rewards=["reward"], T=25.0, rng=np.random.default_rng(1))
    b = anccr_simulate(ev["ids"][perm], ev["times"][perm], rewards=["reward"], T=25.0,
                       rng=np.random.default_rng(1))
    np.testing.assert_allclose(b["da"], a["da"][perm])


def test_bad_input():
    with pytest.raises(InputError):
        anccr_simulate(["cue", "reward"], [0.0], rewards=["reward"])
    with pytest.raises(InputError):
        anccr_simulate(["cue", "reward"], [0.0, 1.0])
    with pytest.raises(InputError):
        anccr_trial_responses(["A"], [0.0], [np.nan], [1.0])
    with pytest.raises(InputError):
        anccr_simulate(["cue", "reward", "reward"], [0.0, 1.0, 2.0], rewards=["reward"], T=[1.0, 2.0])


def test_fit_through_the_linear_readout_recovers_the_generating_parameters():
    rng = np.random.default_rng(5)
    n = 250
    ct = np.cumsum(rng.exponential(20, n) + 3.0)
    reward = (rng.random(n) < 0.75).astype(float)
    true = anccr_trial_responses(["A"] * n, ct, ct + 1.0, reward, rng=np.random.default_rng(0),
                                 t_ratio=2.4, alpha=0.05)
    noise = np.random.default_rng(1)
    yc = 0.5 + 2.0 * true["cue"] + noise.normal(0, 0.2, n)
    yo = 0.5 + 2.0 * np.nan_to_num(true["outcome"]) + noise.normal(0, 0.2, n)
    grid = {"t_ratio": [0.6, 2.4, 9.6], "alpha": [0.005, 0.05, 0.2]}
    fit = fit_anccr_responses(["A"] * n, ct, ct + 1.0, reward, yc, yo, grid=grid)
    assert fit["params"] == {"t_ratio": 2.4, "alpha": 0.05}
    assert fit["b1"] == pytest.approx(2.0, rel=0.1) and fit["b0"] == pytest.approx(0.5, abs=0.1)
    assert fit["n_params"] == 5 and fit["aic"] == pytest.approx(10 - 2 * fit["loglik"])
    with pytest.raises(InputError):
        fit_anccr_responses(["A"] * n, ct, ct + 1.0, reward, yc, yo, grid={"gamma": [0.9]})


def test_uncued_trials_enter_only_with_their_outcome():
    rng = np.random.default_rng(6)
    n = 80
    ct = np.cumsum(rng.exponential(20, n) + 3.0)
    cue = np.array(["A"] * n, dtype=object)
    cue[::10] = ""                                            # as neural.tables.prepare_trials marks them
    ct_nan = ct.copy()
    ct_nan[5::10] = np.nan
    out = anccr_trial_responses(cue, ct_nan, ct + 1.0, np.ones(n), rng=np.random.default_rng(0))
    uncued = (cue == "") | np.isnan(ct_nan)
    assert np.all(np.isnan(out["cue"][uncued])) and np.all(np.isfinite(out["cue"][~uncued]))
    assert np.all(np.isfinite(out["outcome"]))


def test_per_event_readout_scores_every_response():
    """readout="per_event" (the RW/TD neural fits' readout): own b0/b1/sigma at cue and outcome, and the
    outcomes of omissions ANCCR has not yet recognised are scored as DA 0, not dropped."""
    from dopa_rl.models.dopamine import profile_loglik

    rng = np.random.default_rng(7)
    n = 120
    ct = np.cumsum(rng.exponential(20, n) + 3.0)
    reward = (rng.random(n) < 0.7).astype(float)
    da = anccr_trial_responses(["A"] * n, ct, ct + 1.0, reward, rng=np.random.default_rng(0), t_ratio=2.4)
    assert np.isnan(da["outcome"]).any()                     # early omissions are not yet recognised
    yc = 1.0 + 2.0 * da["cue"] + rng.normal(0, 0.2, n)
    yo = -1.0 + 0.5 * np.nan_to_num(da["outcome"]) + rng.normal(0, 0.2, n)
    fit = fit_anccr_responses(["A"] * n, ct, ct + 1.0, reward, yc, yo, grid={"t_ratio": [2.4]}, readout="per_event")
    assert fit["n_obs"] == 2 * n and fit["n_params"] == 1 + 6
    assert fit["b1"]["cue"] == pytest.approx(2.0, rel=0.1) and fit["b0"]["outcome"] == pytest.approx(-1.0, abs=0.1)
    by_hand = float(profile_loglik(da["cue"], yc).loglik + profile_loglik(np.nan_to_num(da["outcome"]), yo).loglik)
    assert fit["loglik"] == pytest.approx(by_hand)
    shared = fit_anccr_responses(["A"] * n, ct, ct + 1.0, reward, yc, yo, grid={"t_ratio": [2.4]})
    assert shared["n_obs"] < 2 * n and shared["n_params"] == 1 + 3
