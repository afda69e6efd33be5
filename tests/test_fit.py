"""Fitting: parameter recovery (issue 2's criterion), the batched optimizer against scipy, MAP, standard
errors against an independent numerical Hessian, and the results object."""
import json

import numpy as np
import pandas as pd
import pytest

from dopa_rl.errors import InputError
from dopa_rl.fit import fit
from dopa_rl.fit.restarts import start_points
from dopa_rl.models import get_model, simulate_population, tasks
from dopa_rl.models.rw import P_ALPHA, P_BETA, RWChoice


class _NowhereFinite(RWChoice):
    """rw-softmax whose likelihood is -inf everywhere (a model or data error)."""

    analytic_gradient = False

    def loglik(self, x, data, lanes):
        return np.full(len(lanes), -np.inf)


class _FiniteBelow(RWChoice):
    """rw-softmax whose likelihood is -inf for alpha above 0.2 (an overflow region), numerical gradients."""

    analytic_gradient = False

    def loglik(self, x, data, lanes):
        ll = super().loglik(x, data, lanes)
        return np.where(np.atleast_2d(x)[:, 0] <= 0.2, ll, -np.inf)


def bandit_study(n_subjects=40, n_trials=400, seed=0):
    m = get_model("rw-softmax")
    pop = simulate_population(
        m, tasks.bandit_task(n_trials), n_subjects, seed, subjects=[str(s) for s in range(n_subjects)],
        params=lambda rng: {"alpha": rng.uniform(0.1, 0.9), "beta": float(np.exp(rng.uniform(0.0, np.log(12.0))))})
    return m, pop.trials, pop.params.drop(columns="subject")


@pytest.fixture(scope="module")
def study():
    m, df, truth = bandit_study()
    return m, df, truth, fit(m, df, restarts=10)


def test_parameter_recovery_40_subjects(study):
    m, df, truth, result = study
    assert np.corrcoef(truth["alpha"], result.params["alpha"])[0, 1] > 0.85
    assert np.corrcoef(np.log(truth["beta"]), np.log(result.params["beta"]))[0, 1] > 0.85


def test_fitted_loglik_never_below_truth(study):
    m, df, truth, result = study
    ll_true = m.loglik(truth[["alpha", "beta"]].to_numpy(), m.pack(df), np.arange(len(truth)))
    assert np.all(result.loglik_ >= ll_true - 1e-9)
    assert result.converged.all()


def test_batched_optimizer_matches_scipy(study):
    from scipy.optimize import minimize

    m, df, truth, result = study
    data = m.pack(df)
    starts = start_points(m, data.n_subjects, 10, 0)
    for s in range(0, 40, 8):
        def f(z):
            ll, g = m.loglik_grad_z(z[None], data, np.array([s]))
            return -ll[0], -g[0]
        best = min(minimize(f, m.spec.to_unconstrained(x0), jac=True, method="L-BFGS-B",
                            options={"gtol": 1e-9, "ftol": 1e-15}).fun for x0 in starts[s])
        assert -result.loglik_[s] <= best + 1e-6


def test_standard_errors_match_independent_hessian(study):
    from statsmodels.tools.numdiff import approx_hess3

    m, df, truth, result = study
    data = m.pack(df)
    # subjects whose fit is interior (finite SEs): the check must run on some, never pass vacuously
    interior = [s for s in range(len(truth)) if np.all(np.isfinite(result.se_[s]))]
    assert len(interior) >= 30
    for s in interior[:3] + interior[-2:]:
        x = result.x[s]
        H = approx_hess3(x, lambda v: float(m.loglik(v[None], data, np.array([s]))[0]))
        se = np.sqrt(np.diag(np.linalg.inv(-H)))
        assert np.all(np.isfinite(se))
        np.testing.assert_allclose(result.se_[s], se, rtol=2e-3)


def test_map_shrinks_toward_prior_and_costs_likelihood():
    m, df, truth = bandit_study(n_subjects=4, n_trials=60, seed=5)
    mle = fit(m, df, restarts=5)
    map_ = fit(m, df, method="map", restarts=5)
    assert np.all(map_.loglik_ <= mle.loglik_ + 1e-9)
    z_mle = m.spec.to_unconstrained(mle.x)
    z_map = m.spec.to_unconstrained(map_.x)
    mu = m.spec.prior_mean()
    assert np.all(np.abs(z_map - mu).sum(axis=1) <= np.abs(z_mle - mu).sum(axis=1) + 1e-9)
    assert np.all(np.isfinite(map_.log_prior))


def test_results_object_and_json_shape(study, tmp_path):
    m, df, truth, result = study
    frame = result.to_frame()
    assert list(frame.index[:3]) == ["0", "1", "2"]
    k = 2
    np.testing.assert_allclose(result.aic, 2 * k - 2 * result.loglik_)
    np.testing.assert_allclose(result.bic, k * np.log(400) - 2 * result.loglik_)
    out = tmp_path / "fit.json"
    result.to_json(out)
    data = json.loads(out.read_text())
    assert data["model"] == "rw-softmax" and data["method"] == "mle"
    first = data["subjects"][0]
    assert first["subject"] == "0" and first["n_trials"] == 400
    assert set(first["params"]) == {"alpha", "beta"}
    assert first["loglik"] == pytest.approx(result.loglik_[0])
    assert first["aic"] == pytest.approx(2 * 2 - 2 * first["loglik"])
    text = result.summary()
    assert "rw-softmax" in text and "Total" in text


def test_prediction_errors_follow_fitted_trajectories(study):
    m, df, truth, result = study
    pe = result.prediction_errors(df)
    assert len(pe) == len(df)
    one = pe[pe.subject == "3"]
    q = one["value_chosen"].to_numpy()
    np.testing.assert_allclose(one["rpe"].to_numpy(), one["reward"].to_numpy() - q)


def test_subject_with_one_trial_is_rejected():
    m = get_model("rw-softmax")
    df = pd.DataFrame({"subject": ["a", "a", "a", "b"], "choice": [0, 1, 0, 1], "reward": [1, 0, 1, 0]})
    with pytest.raises(InputError, match="subject\\(s\\) b have fewer than 2"):
        fit(m, df)


def test_sessions_reset_values():
    m = get_model("rw-softmax")
    df = pd.DataFrame({"subject": "a", "session": ["1", "1", "2", "2"], "trial": [0, 1, 0, 1],
                       "choice": [0, 0, 0, 0], "reward": [1.0, 1.0, 1.0, 1.0]})
    tr = m.trajectories(np.array([0.5, 1.0]), m.pack(df), 0)
    assert tr["q_0"].tolist() == pytest.approx([0.0, 0.5, 0.0, 0.5])


def test_raw_dataframes_are_checked_before_fitting():
    m = get_model("rw-softmax")
    df = pd.DataFrame({"subject": "a", "choice": [0, 1, 0], "reward": [1.0, np.nan, 0.0]})
    with pytest.raises(InputError, match="reward"):
        fit(m, df)
    df = pd.DataFrame({"subject": "a", "choice": [0, 1.5, 0], "reward": [1.0, 0.0, 0.0]})
    with pytest.raises(InputError, match="choice"):
        fit(m, df)
    # two sessions with restarting trial numbers and no session column would be interleaved
    df = pd.DataFrame({"subject": "a", "trial": [0, 1, 0, 1], "choice": [0, 1, 0, 1], "reward": [1.0, 0.0, 1.0, 0.0]})
    with pytest.raises(InputError, match="trial numbers repeat"):
        fit(m, df)


def test_rewards_in_large_units_fit_like_unit_rewards():
    """RW-softmax is invariant to the reward scale (beta absorbs it): rewards x 1000 must give the same
    maximum likelihood, finite and converged, not -inf at the start points."""
    m, df, _ = bandit_study(n_subjects=3, n_trials=200, seed=3)
    unit = fit(m, df, restarts=4)
    big = fit(m, df.assign(reward=df["reward"] * 1000.0), restarts=4)
    assert np.all(np.isfinite(big.loglik_)) and big.converged.all()
    assert big.loglik_ == pytest.approx(unit.loglik_, abs=1e-4)
    assert big.params["beta"].to_numpy() * 1000 == pytest.approx(unit.params["beta"].to_numpy(), rel=1e-2)


def test_convergence_flag_is_false_where_the_fit_failed():
    """rw-pavlovian is invariant to the reward scale (lick_slope absorbs it).  With rewards x 1000 most start
    points overflow the lick rate and the optimizer stalls far from the optimum; it must not report
    convergence there.  With rewards x 1e6 the lick rate is far beyond exp(LOG_RATE_MAX) at every start (it
    grows linearly there, so the likelihood stays finite): the fit must reach the optimum or say it did not."""
    m = get_model("rw-pavlovian")
    sim = m.simulate({"alpha": 0.2, "lick_intercept": 0.5, "lick_slope": 1.5}, tasks.pavlovian_task(n_trials=120),
                     np.random.default_rng(0))
    unit = fit(m, sim.trials, restarts=4)
    assert unit.converged.all()
    big = fit(m, sim.trials.assign(reward=sim.trials["reward"] * 1000.0), restarts=4)
    assert big.loglik_[0] >= unit.loglik_[0] - 1e-3 or not big.converged[0]
    huge = fit(m, sim.trials.assign(reward=sim.trials["reward"] * 1e6), restarts=4)
    # with the analytic gradient (issue 21) the fit reaches the optimum even here (lick slope 1.7e-6), though
    # its convergence test does not pass at that scale: it must say so (with finite differences it stalled
    # more than 1 log unit short, also flagged)
    assert huge.loglik_[0] >= unit.loglik_[0] - 1e-3 and not huge.converged[0]
    assert "did not report convergence" in huge.summary()
    subject = json.loads(huge.to_json(), parse_constant=lambda c: pytest.fail(f"not JSON: {c}"))["subjects"][0]
    assert subject["converged"] is False
    # a fit with no finite likelihood anywhere: -inf, null in JSON, not converged
    broken = fit(_NowhereFinite("rw-softmax", [P_ALPHA, P_BETA], "test"), bandit_study(1, 50)[1], restarts=2)
    assert broken.loglik_[0] == -np.inf and not broken.converged[0]
    subject = json.loads(broken.to_json(), parse_constant=lambda c: pytest.fail(f"not JSON: {c}"))["subjects"][0]
    assert subject["loglik"] is None and subject["converged"] is False


def test_sessions_keep_their_order_of_appearance():
    """Session labels are text; sessions 1..11 stay in the table's order (not "1", "10", "11", "2", ...)."""
    m = get_model("rw-softmax")
    df = pd.DataFrame({"subject": "a", "session": np.repeat([str(k) for k in range(1, 12)], 2), "trial": [0, 1] * 11,
                       "choice": [0, 1] * 11, "reward": [1.0, 0.0] * 11})
    pe = fit(m, df, restarts=1).prediction_errors(df)
    assert pe["session"].tolist() == df["session"].tolist()


def test_standard_errors_with_a_parameter_at_its_bound(study):
    """With the lapse pinned at epsilon ~ 0 (z = -25), rw-softmax-lapse is rw-softmax: the SEs of alpha and
    beta must be rw-softmax's, and epsilon's NaN (not 0 from a vanishing Jacobian, not NaN for all)."""
    from dopa_rl.fit.space import standard_errors

    m, df, truth, result = study
    lapse = get_model("rw-softmax-lapse")
    s = next(i for i in range(40) if np.all(np.isfinite(result.se_[i])))
    z = np.append(m.spec.to_unconstrained(result.x[s]), -25.0)[None]
    data = lapse.pack(df[df["subject"] == result.subjects[s]])  # standard_errors' row i is subject i
    se = standard_errors(lapse, data, z, "mle")[0]
    assert np.isnan(se[2])
    np.testing.assert_allclose(se[:2], result.se_[s], rtol=1e-3)
