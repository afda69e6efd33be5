"""Observation models (models/observations.py, models/dopamine.py): both directions, one definition."""
from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from scipy.optimize import minimize

from dopa_rl.models import get_model, tasks
from dopa_rl.models.observations import (LOG_RATE_MAX, GaussianLicks, LinearReadout, PoissonLicks,
                                         SoftmaxChoice, log_rate, profile_loglik, profile_score, readout_loglik)


def _readout_data(L=6, n=80, seed=0):
    rng = np.random.default_rng(seed)
    delta = rng.normal(size=(L, n))
    y = LinearReadout.simulate(delta[min(2, L - 1)], 0.3, 1.7, 0.4, rng)
    y[[3, 17, n - 5]] = np.nan  # missing responses
    return delta, y


def test_profile_loglik_matches_statsmodels_ols_for_every_lane():
    delta, y = _readout_data()
    fit = profile_loglik(delta, y)
    ok = np.isfinite(y)
    for lane in range(delta.shape[0]):
        ols = sm.OLS(y[ok], sm.add_constant(delta[lane, ok])).fit()
        assert fit.loglik[lane] == pytest.approx(ols.llf, rel=1e-10)
        assert [fit.b0[lane], fit.b1[lane]] == pytest.approx(list(ols.params), rel=1e-9, abs=1e-12)
        assert fit.sigma[lane] == pytest.approx(np.sqrt(ols.ssr / ols.nobs), rel=1e-10)
        assert fit.n_obs[lane] == ok.sum()
    # the true lane is the best candidate, and its readout is recovered
    assert np.argmax(fit.loglik) == 2
    assert fit.b1[2] == pytest.approx(1.7, abs=0.15)


def test_profile_loglik_is_the_brute_force_optimum():
    delta, y = _readout_data(L=3)
    fit = profile_loglik(delta, y)
    rng = np.random.default_rng(1)
    for lane in range(3):
        def nll(p, lane=lane):
            return -readout_loglik(delta[lane], y, p[0], p[1], np.exp(p[2]))

        best = minimize(nll, [0.0, 0.0, 0.0], method="Nelder-Mead",
                        options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000})
        assert -best.fun == pytest.approx(fit.loglik[lane], abs=1e-6)
        assert readout_loglik(delta[lane], y, fit.b0[lane], fit.b1[lane], fit.sigma[lane]) == pytest.approx(
            fit.loglik[lane], rel=1e-12)
        # no other readout does better
        for _ in range(20):
            b0, b1, s = rng.normal(), rng.normal() * 2, np.exp(rng.normal())
            assert readout_loglik(delta[lane], y, b0, b1, s) <= fit.loglik[lane] + 1e-9


def test_profile_score_is_the_derivative_in_delta():
    delta, y = _readout_data(L=2, n=30)
    fit = profile_loglik(delta, y)
    score = profile_score(delta, y, fit)
    h = 1e-6
    for i in (0, 3, 11, 29):
        up, dn = delta.copy(), delta.copy()
        up[:, i] += h
        dn[:, i] -= h
        fd = (profile_loglik(up, y).loglik - profile_loglik(dn, y).loglik) / (2 * h)
        assert score[:, i] == pytest.approx(fd, rel=1e-5, abs=1e-6)
    assert (score[:, 3] == 0).all()  # a missing response contributes nothing


def test_profile_loglik_degenerate_lanes_and_separate_event_readouts():
    rng = np.random.default_rng(2)
    y = rng.normal(size=40)
    flat = profile_loglik(np.full((1, 40), 0.7), y)  # e.g. alpha = 0: constant RPEs
    assert flat.b1[0] == 0.0 and flat.b0[0] == pytest.approx(y.mean())
    assert flat.loglik[0] == pytest.approx(sm.OLS(y, np.ones(40)).fit().llf, rel=1e-10)
    few = profile_loglik(np.array([[0.1, 0.2]]), np.array([1.0, 2.0]))
    assert np.isnan(few.loglik[0])
    # cue and outcome with their own readouts: an axis of their own, summed
    d = rng.normal(size=(5, 2, 40))
    resp = np.stack([2 * d[0, 0] + 0.1 * rng.normal(size=40), -1 + 0.5 * d[0, 1] + 0.1 * rng.normal(size=40)])
    both = profile_loglik(d, resp)
    assert both.loglik.shape == (5, 2)
    apart = [profile_loglik(d[:, e], resp[e]).loglik for e in range(2)]
    assert both.loglik.sum(axis=1) == pytest.approx(apart[0] + apart[1])
    assert both.b1[0] == pytest.approx([2.0, 0.5], abs=0.05)


def test_lick_rate_is_bounded_the_same_way_when_simulating_and_fitting():
    M = LOG_RATE_MAX
    eta = np.array([-50.0, 1.0, M, M + 1.0, M + 1e6])
    # exp up to exp(M), then linear in eta (continuous value and slope): no overflow, a gradient everywhere
    np.testing.assert_allclose(np.exp(log_rate(eta)), [np.exp(-50.0), np.e, np.exp(M), 2 * np.exp(M),
                                                        (1 + 1e6) * np.exp(M)], rtol=1e-12)
    h = 1e-6
    assert (np.exp(log_rate(M + h)) - np.exp(log_rate(M - h))) / (2 * h) == pytest.approx(np.exp(M), rel=1e-5)
    huge = M + 5.0
    sim = PoissonLicks.simulate(np.ones(4000), huge, 0.0, np.random.default_rng(0))
    assert sim.mean() == pytest.approx(6 * np.exp(M), rel=0.01)
    # the fitted likelihood is the Poisson of the same rate, so the simulated counts are likely under it
    ll = PoissonLicks.loglik(sim, np.ones(4000), huge, 0.0)
    assert np.all(np.isfinite(ll)) and ll.mean() > -8  # Poisson entropy at this rate: 7.3
    assert PoissonLicks.loglik(sim, np.ones(4000), huge + 1.0, 0.0).sum() < ll.sum()
    # and the model's compiled likelihood is this observation model on the fitted values
    m = get_model("rw-pavlovian")
    simu = m.simulate({"alpha": 0.2, "lick_intercept": 0.5, "lick_slope": 30.0}, tasks.acquisition(60),
                      np.random.default_rng(3))
    data = m.pack(simu.trials)
    x = np.array([[0.2, 0.5, 30.0]])
    traj = m.trajectories(x[0], data, 0)
    expect = PoissonLicks.loglik(simu.trials["licks"], traj["value"], 0.5, 30.0).sum()
    assert m.loglik(x, data, np.array([0]))[0] == pytest.approx(expect, rel=1e-9)


def test_td_lick_likelihood_is_the_poisson_observation_model():
    m = get_model("td")
    params = {"alpha": 0.2, "gamma": 0.9, "lambda_": 0.8, "lick_intercept": 0.2, "lick_slope": 2.0}
    sim = m.simulate(params, tasks.acquisition(40), np.random.default_rng(4))
    data = m.pack(sim.trials)
    x = m.check_params(params)
    traj = m.trajectories(x, data, 0)
    expect = PoissonLicks.loglik(sim.trials["licks"], traj["value"], 0.2, 2.0).sum()
    assert m.loglik(x[None], data, np.array([0]))[0] == pytest.approx(expect, rel=1e-10)


def test_gaussian_licks_round_trip():
    rng = np.random.default_rng(5)
    v = rng.random(5000)
    y = GaussianLicks.simulate(v, 1.0, 3.0, 0.5, rng)
    fit = profile_loglik(v[None], y)  # the same linear-Gaussian family
    assert fit.b0[0] == pytest.approx(1.0, abs=0.05) and fit.b1[0] == pytest.approx(3.0, abs=0.1)
    assert fit.sigma[0] == pytest.approx(0.5, abs=0.02)
    assert GaussianLicks.loglik(y, v, 1.0, 3.0, 0.5).sum() == pytest.approx(
        readout_loglik(v, y, 1.0, 3.0, 0.5), rel=1e-12)


def test_softmax_choice_rule_both_directions():
    q = np.array([[0.0, 1.0, 0.5], [2.0, -1.0, 0.0], [0.3, 0.3, 0.3]])
    beta, kappa, eps, prev = 2.0, 0.7, 0.1, np.array([2, -1, 0])
    logits = beta * q + kappa * (np.arange(3)[None] == prev[:, None])
    soft = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    expect = (1 - eps) * soft + eps / 3
    assert SoftmaxChoice.probabilities(q, beta, kappa, eps, prev) == pytest.approx(expect)
    ll = SoftmaxChoice.loglik(q, [1, 0, -1], beta, kappa, eps, prev)
    assert ll[:2] == pytest.approx(np.log([expect[0, 1], expect[1, 0]])) and np.isnan(ll[2])
    # no underflow without lapse: log softmax from the logits
    assert SoftmaxChoice.loglik([[0.0, 1.0]], [0], 2000.0)[0] == pytest.approx(-2000.0)
    draws = SoftmaxChoice.simulate(np.repeat(q[:1], 20000, axis=0), beta, np.random.default_rng(0), kappa, eps, 2)
    assert np.bincount(draws, minlength=3) / 20000 == pytest.approx(expect[0], abs=0.01)


def test_rw_choice_likelihood_is_the_softmax_observation_model():
    m = get_model("rw-softmax-sticky-lapse")
    params = {"alpha": 0.3, "beta": 4.0, "kappa": 0.8, "epsilon": 0.05}
    sim = m.simulate(params, tasks.bandit_task(120), np.random.default_rng(6))
    data = m.pack(sim.trials)
    x = m.check_params(params)
    traj = m.trajectories(x, data, 0)
    q = traj[[c for c in traj.columns if c.startswith("q_")]].to_numpy()
    ch = sim.trials["choice"].to_numpy()
    prev = np.concatenate([[-1], ch[:-1]])
    expect = SoftmaxChoice.loglik(q, ch, 4.0, 0.8, 0.05, prev).sum()
    assert m.loglik(x[None], data, np.array([0]))[0] == pytest.approx(expect, rel=1e-12)
