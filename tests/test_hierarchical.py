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
