"""Lean results (no data inside, JSON round trip), explicit priors, restarts with non-finite starts, and
parameters at a bound (issue 8 items 4 and 6-7)."""
import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from dopa_rl.errors import InputError
from dopa_rl.fit import FitResult, Prior, fit
from dopa_rl.fit.space import at_bound, standard_errors
from dopa_rl.fit.optimize import minimize_batched
from dopa_rl.models import get_model, simulate_population, tasks
from dopa_rl.models.rw import P_ALPHA, P_BETA, RWChoice


def _bandit(n_subjects=4, n_trials=150, seed=0, model="rw-softmax", **params):
    m = get_model(model)
    pop = simulate_population(m, tasks.bandit_task(n_trials), n_subjects, seed, {"alpha": 0.3, "beta": 4.0, **params},
                              subjects=[f"s{i}" for i in range(n_subjects)])
    return m, pop.trials


@pytest.fixture(scope="module")
def fitted():
    m, df = _bandit()
    return m, df, fit(m, df, restarts=3)


def test_result_holds_no_data(fitted):
    m, df, res = fitted
    fields = {f.name for f in dataclasses.fields(res)}
    assert not fields & {"data", "source", "packed"}
    for f in dataclasses.fields(res):
        assert not isinstance(getattr(res, f.name), pd.DataFrame)
    prov = res.provenance
    assert prov["model"] == "rw-softmax" and prov["method"] == "mle" and prov["restarts"] == 3
    assert prov["data_fingerprint"].startswith("sha256:") and prov["versions"]["dopa_rl"]
    assert prov["n_options"] == 2


def test_prediction_errors_take_the_data_and_check_it(fitted):
    m, df, res = fitted
    pe = res.prediction_errors(df)
    assert len(pe) == len(df) and set(pe["subject"]) == set(res.subjects)
    # the same data read again (another copy, other dtypes) is the same data
    assert len(res.prediction_errors(df.astype({"choice": float}).copy())) == len(df)
    other = df.assign(reward=df["reward"][::-1].to_numpy())
    with pytest.raises(InputError, match="not the data the result was fitted to"):
        res.prediction_errors(other)
    with pytest.raises(TypeError):
        res.prediction_errors()


def test_json_round_trip(fitted, tmp_path):
    m, df, res = fitted
    path = tmp_path / "fit.json"
    res.to_json(path)
    back = FitResult.from_json(path)
    assert back.to_dict() == res.to_dict()
    assert FitResult.from_json(res.to_json()).to_dict() == res.to_dict()
    np.testing.assert_array_equal(back.x, res.x)
    np.testing.assert_array_equal(back.se_, res.se_)
    np.testing.assert_array_equal(back.loglik_, res.loglik_)
    assert back.model.name == "rw-softmax" and back.subjects == res.subjects
    pd.testing.assert_frame_equal(back.to_frame(), res.to_frame())
    pd.testing.assert_frame_equal(back.prediction_errors(df), res.prediction_errors(df))
    assert back.summary() == res.summary()
    with pytest.raises(InputError, match="not a dopa_rl fit result"):
        FitResult.from_json('{"model": "rw-softmax"}')


def test_json_round_trip_of_a_map_fit_with_options_and_non_finite_values(tmp_path):
    m = get_model("rw-softmax", q0=0.5, n_options=3)
    df = pd.DataFrame({"subject": "a", "choice": [0, 1, 0, 0, 1, 0, 0, 0], "reward": [1.0, 0, 1, 1, 0, 1, 1, 1]})
    prior = Prior.normal(m, mean={"beta": 0.0}, sd={"alpha": 1.0})
    res = fit(m, df, prior=prior, restarts=2)
    assert res.method == "map" and res.prior is prior
    res.se_[0, 0] = np.nan  # stored as null, read back as NaN
    back = FitResult.from_json(res.to_json())
    assert back.model.q0 == 0.5 and back.model.n_options == 3
    assert back.prior.to_dict() == prior.to_dict()
    assert np.isnan(back.se_[0, 0]) and back.se_[0, 1] == res.se_[0, 1]
    assert back.to_dict() == res.to_dict()


def test_prior_is_an_argument_of_map():
    m, df = _bandit(n_subjects=2, n_trials=60, seed=3)
    default = fit(m, df, method="map", restarts=3)
    explicit = fit(m, df, method="map", restarts=3, prior=Prior.default(m))
    np.testing.assert_allclose(default.x, explicit.x)
    # a tight prior holds the fit at its mean (unconstrained space)
    target = {"alpha": 0.0, "beta": np.log(5.0 / 45.0)}  # alpha 0.5, beta 5
    tight = fit(m, df, restarts=3, prior=Prior.normal(m, mean=target, sd=[1e-3, 1e-3]))
    np.testing.assert_allclose(tight.x, [[0.5, 5.0]] * 2, rtol=1e-2)
    assert np.all(tight.log_prior > default.log_prior)
    # a per-subject prior (what EM passes per iteration): one row per subject
    per = Prior(("alpha", "beta"), np.array([[2.0, -1.0], [-2.0, -1.0]]), np.full((2, 2), 1e-3))
    res = fit(m, df, restarts=2, prior=per)
    np.testing.assert_allclose(m.spec.to_unconstrained(res.x), per.mean, atol=1e-2)
    with pytest.raises(InputError, match="method='map'"):
        fit(m, df, method="mle", prior=per)
    with pytest.raises(InputError, match="model rw-softmax-sticky has alpha, beta, kappa"):
        fit(get_model("rw-softmax-sticky"), df, prior=Prior.default(m))
    with pytest.raises(InputError, match="sd must be > 0"):
        Prior.normal(m, sd={"beta": 0.0})
    with pytest.raises(InputError, match="unknown parameter"):
        Prior.normal(m, mean={"gamma": 0.0})


class _FiniteBelow(RWChoice):
    """rw-softmax whose likelihood is -inf for alpha above 0.2 (an overflow region), numerical gradients."""

    analytic_gradient = False

    def loglik(self, x, data, lanes):
        ll = super().loglik(x, data, lanes)
        return np.where(np.atleast_2d(x)[:, 0] <= 0.2, ll, -np.inf)


def test_starts_with_a_non_finite_likelihood_are_redrawn_not_wasted():
    m, df = _bandit(n_subjects=3, n_trials=200, seed=4, alpha=0.1)
    odd = _FiniteBelow("rw-softmax", [P_ALPHA, P_BETA], "test")
    # the default start (alpha 0.3) and most random starts lie where the likelihood is -inf
    res = fit(odd, df, restarts=6)
    ref = fit(m, df, restarts=6)
    assert np.all(np.isfinite(res.loglik_)) and res.converged.all()
    assert res.meta["starts_redrawn"] > 0
    assert np.all(res.x[:, 0] <= 0.2)
    assert np.all(res.loglik_ >= np.minimum(ref.loglik_, res.loglik_.max()) - 1e-6)
    # every restart reached a finite optimum: none was stopped at iteration 0 as "converged"
    assert np.all(res.n_at_best >= 4)


def test_a_non_finite_lane_is_never_converged_and_infinite_gradients_are_not_zero():
    def fun_grad(x, lanes):
        f = np.sum((x - 1.0) ** 2, axis=1)
        g = 2 * (x - 1.0)
        f[lanes == 0] = np.inf       # lane 0 starts where the value is not finite
        g[lanes == 1, 0] = np.inf    # lane 1's gradient is infinite everywhere in its first coordinate
        return f, g

    x0 = np.zeros((3, 2))
    res = minimize_batched(fun_grad, x0, np.full(2, -10.0), np.full(2, 10.0))
    assert not res.converged[0] and not res.converged[1]
    np.testing.assert_allclose(res.x[1], 0.0)  # never moved along a zeroed gradient
    assert res.converged[2] and np.allclose(res.x[2], 1.0)


def test_parameter_a_hair_inside_a_bound_gets_nan_se_and_is_marked():
    m = get_model("rw-softmax")
    z = m.spec.to_unconstrained(np.array([[0.3, 49.9997], [0.3, 4.0], [1e-5, 4.0]]))
    flags = at_bound(m, z)
    assert flags.tolist() == [[False, True], [False, False], [True, False]]
    _, df = _bandit(n_subjects=3, n_trials=100, seed=6)
    se = standard_errors(m, m.pack(df), z, "mle")
    assert np.isnan(se[0, 1])
    assert np.isnan(se[2, 0])  # (beta is not identified when alpha is 0)
    # after a few alternations, always the same rewarded choice: beta runs to within 3e-6 of its bound 50
    det = pd.DataFrame({"subject": "d", "choice": [0, 1] * 10 + [0] * 60, "reward": [1.0, 0.0] * 10 + [1.0] * 60})
    res = fit(m, det, restarts=3)
    assert res.at_bound[0, 1] and np.isnan(res.se_[0, 1])
    assert "beta" in res.to_frame()["at_bound"].iloc[0]
    subject = json.loads(res.to_json())["subjects"][0]
    assert "beta" in subject["at_bound"] and subject["se"]["beta"] is None
    assert "at a bound" in res.summary() and "50*" in res.summary()


class _InfiniteBetaGradient(RWChoice):
    """rw-softmax whose gradient in beta is +inf everywhere (a broken analytic gradient)."""

    def _loglik_grad_natural(self, x, data, lanes):
        ll, g = super()._loglik_grad_natural(x, data, lanes)
        g[:, 1] = np.inf
        return ll, g


def test_infinite_gradient_components_are_not_read_as_zero():
    _, df = _bandit(n_subjects=2, n_trials=100, seed=8)
    res = fit(_InfiniteBetaGradient("rw-softmax", [P_ALPHA, P_BETA], "test"), df, restarts=2)
    assert not res.converged.any()
