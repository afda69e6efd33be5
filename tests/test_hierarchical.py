"""Hierarchical EM (Laplace): shrinkage beats per-subject MLE on short sessions; the population is recovered
within its reported uncertainty; the M step and Laplace evidence against closed forms."""
import json

import numpy as np
import pandas as pd
import pytest

from dopa_rl.errors import InputError
from dopa_rl.fit import fit
from dopa_rl.fit.hierarchical import HierarchicalResult, fit_hierarchical, laplace_log_evidence, m_step, sampled_log_evidence
from dopa_rl.models import get_model, tasks

MU = np.array([-0.5, -2.3])   # unconstrained: alpha ~ 0.38, beta ~ 4.6 at the population median
SD = np.array([0.8, 0.5])


def population_study(n_subjects=40, n_trials=60, seed=0):
    m = get_model("rw-softmax")
    rng = np.random.default_rng(seed)
    x = m.spec.to_natural(MU + SD * rng.standard_normal((n_subjects, 2)))
    df = pd.concat([m.simulate({"alpha": a, "beta": b}, tasks.bandit_task(n_trials), rng, subject=f"m{i}").trials
                    for i, (a, b) in enumerate(x)], ignore_index=True)
    return m, df, x


@pytest.fixture(scope="module")
def short_sessions():
    m, df, truth = population_study()
    return m, df, truth, fit(m, df, restarts=10), fit_hierarchical(m, df, restarts=10)


def test_hierarchical_rmse_beats_mle_on_short_sessions(short_sessions):
    m, df, truth, mle, hier = short_sessions
    rmse = lambda est: np.sqrt(np.mean((est - truth) ** 2, axis=0))
    assert np.all(rmse(hier.x) < rmse(mle.x)), (rmse(hier.x), rmse(mle.x))
    assert hier.em_converged and hier.em_iterations >= 2


def test_population_mean_within_reported_uncertainty(short_sessions):
    m, df, truth, mle, hier = short_sessions
    assert np.all(np.abs(hier.pop_mean - MU) < 3 * hier.pop_mean_se), (hier.pop_mean, hier.pop_mean_se)
    assert np.all(hier.pop_mean_se < 0.3) and np.all(hier.pop_sd > 0.2)
    assert np.all(np.isfinite(hier.se_)) and np.all(hier.se_ > 0)


def test_json_keeps_fit_shape_and_adds_population(short_sessions):
    m, df, truth, mle, hier = short_sessions
    d, base = json.loads(hier.to_json()), json.loads(mle.to_json())
    assert set(base) <= set(d) and d["method"] == "hier"
    assert set(d["population"]["mean"]) == {"alpha", "beta"} and set(d["population"]["sd"]) == {"alpha", "beta"}
    assert np.isfinite(d["ibic"]) and set(base["subjects"][0]) <= set(d["subjects"][0])
    assert "Population" in hier.summary()
    back = HierarchicalResult.from_json(hier.to_json())
    assert np.allclose(back.pop_mean, hier.pop_mean) and np.allclose(back.pop_sd, hier.pop_sd)
    assert back.ibic == pytest.approx(hier.ibic) and np.allclose(back.x, hier.x) and back.em_converged
    assert np.allclose(back.log_evidence, hier.log_evidence)


def test_m_step_and_laplace_closed_forms():
    z = np.array([[0.0, 1.0], [2.0, 3.0]])
    mu, sd = m_step(z, np.array([[1.0, 0.0], [1.0, 0.0]]))
    assert np.allclose(mu, [1.0, 2.0]) and np.allclose(sd, [np.sqrt(2.0), 1.0])
    # Gaussian likelihood N(y; z, 1) with prior N(0, 1): evidence N(y; 0, 2) exactly
    y = 0.7
    post_mean, post_var = y / 2, 0.5
    ll = -0.5 * (y - post_mean) ** 2 - 0.5 * np.log(2 * np.pi)
    ev = laplace_log_evidence(np.array([ll]), np.array([[post_mean]]), np.zeros(1), np.ones(1), np.array([[[post_var]]]))
    assert ev[0] == pytest.approx(-0.25 * y ** 2 - 0.5 * np.log(4 * np.pi))


def test_sampled_evidence_matches_laplace_for_a_point_population(short_sessions):
    m, df, truth, mle, hier = short_sessions
    # a population of (almost) one point: the marginal likelihood is the likelihood at that point
    mu = m.spec.to_unconstrained(np.array([0.4, 4.0]))
    data = m.pack(df)
    ev = sampled_log_evidence(m, data, mu, np.full(2, 1e-6), 20, np.random.default_rng(0))
    ll = m.loglik(np.tile([0.4, 4.0], (data.n_subjects, 1)), data, np.arange(data.n_subjects))
    assert np.allclose(ev, ll, atol=1e-4)


def test_hierarchical_needs_two_subjects():
    m, df, _ = population_study(n_subjects=2, n_trials=20)
    with pytest.raises(InputError, match="at least 2 subjects"):
        fit_hierarchical(m, df[df.subject == "m0"])


def test_importance_evidence_is_exact_for_a_gaussian_model_and_its_error_is_honest():
    """A model whose likelihood is a Gaussian in z: the evidence is known in closed form; the estimator's
    spread over seeds matches the standard error it reports, and the draws follow the error asked for."""
    from dopa_rl.fit.hierarchical import importance_log_evidence
    from dopa_rl.models.base import Packed
    from dopa_rl.models.params import Param, ParamSpec

    class Gauss:
        spec = ParamSpec([Param("a", -np.inf, np.inf, 0.0, -1.0, 1.0), Param("b", -np.inf, np.inf, 0.0, -1.0, 1.0)])

        def __init__(self, y, v):
            self.y, self.v = y, v

        def loglik(self, x, data, lanes):
            d = x - self.y[lanes]
            return -0.5 * np.sum(d * d / self.v[lanes], axis=1) - 0.5 * np.sum(np.log(2 * np.pi * self.v[lanes]), axis=1)

    rng = np.random.default_rng(0)
    S = 30
    y, v = rng.normal(0, 1, (S, 2)), rng.uniform(0.01, 0.2, (S, 2))
    mu, sd = np.array([0.2, -0.1]), np.array([0.9, 1.2])
    m = Gauss(y, v)
    data = Packed([str(i) for i in range(S)], np.ones(S, np.int64), np.ones((S, 1), bool), np.zeros((S, 1)),
                  np.zeros((S, 1), np.int64), np.ones(S, np.int64))
    # exact: y_s ~ N(mu, sd^2 + v_s); the Laplace posterior is exact here
    exact = -0.5 * np.sum((y - mu) ** 2 / (sd ** 2 + v) + np.log(2 * np.pi * (sd ** 2 + v)), axis=1)
    post_var = 1 / (1 / sd ** 2 + 1 / v)
    z_hat = post_var * (mu / sd ** 2 + y / v)
    cov = np.stack([np.diag(pv) for pv in post_var])
    totals, ses = [], []
    for seed in range(12):
        ev, se, draws = importance_log_evidence(m, data, mu, sd, z_hat, cov, np.random.default_rng(seed),
                                                target_se=0.05, max_draws=100000)
        totals.append(ev.sum() - exact.sum())
        ses.append(np.sqrt(np.sum(se ** 2)))
    totals, ses = np.array(totals), np.array(ses)
    assert abs(totals.mean()) < 4 * 0.05 / np.sqrt(12)          # unbiased within its error
    assert 0.5 < totals.std(ddof=1) / ses.mean() < 1.6           # the reported error is the real spread
    assert np.all((ses > 0.035) & (ses < 0.08))                  # sized to about the error asked for
    # a tighter target takes more draws
    _, _, few = importance_log_evidence(m, data, mu, sd, z_hat, cov, np.random.default_rng(0), target_se=0.2)
    assert few.sum() < draws.sum()


def test_hierarchical_reports_the_evidence_error(short_sessions):
    m, df, truth, mle, hier = short_sessions
    assert np.isfinite(hier.ibic_se) and 0 < hier.ibic_se < 2 * 0.25 * 1.5
    assert hier.log_evidence_se.shape == hier.log_evidence.shape and np.all(np.isfinite(hier.log_evidence_se))
    d = hier.to_dict()
    assert d["ibic_se"] == pytest.approx(hier.ibic_se)
    back = HierarchicalResult.from_dict(d, m)
    assert back.ibic_se == pytest.approx(hier.ibic_se) and np.allclose(back.log_evidence_se, hier.log_evidence_se)
    assert "Monte Carlo SE" in hier.summary()


def test_hierarchical_evidence_options_are_checked(short_sessions):
    m, df, *_ = short_sessions
    with pytest.raises(InputError, match="evidence must be one of"):
        fit_hierarchical(m, df, evidence="laplace")
    with pytest.raises(InputError, match="evidence_se must be a number > 0"):
        fit_hierarchical(m, df, evidence_se=0)
    with pytest.raises(InputError, match="n_samples must be an integer >= 2"):
        fit_hierarchical(m, df, n_samples=1)
