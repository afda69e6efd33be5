"""Every registered model through one table (like scikit-learn's estimator checks):
seeded simulation reproduces exactly, the vectorized likelihood equals a plain loop, gradients match
finite differences, and a fit never ends below the likelihood of the true parameters."""
import numpy as np
import pandas as pd
import pytest

from dopa_rl.fit import fit
from dopa_rl.models import get_model, model_names, tasks
from dopa_rl.models.kernels import PARALLEL_MIN_LANES
import reference_models as ref


def task_for(model, n_trials=300):
    if model.kind == "choice":
        return tasks.bandit_task(n_trials)
    return tasks.partial_reinforcement(n_trials, 0.7)


def simulate_subjects(model, n_subjects=3, n_trials=300, seed=0):
    rng = np.random.default_rng(seed)
    frames, truth = [], []
    for s in range(n_subjects):
        p = model.spec.as_dict(model.spec.random_starts(1, rng)[0])
        truth.append(list(p.values()))
        frames.append(model.simulate(p, task_for(model, n_trials), rng, subject=f"s{s}").trials)
    return pd.concat(frames, ignore_index=True), np.array(truth)


@pytest.fixture(params=model_names())
def model(request):
    return get_model(request.param)


def test_seed_reproduces_exactly(model):
    a = model.simulate(model.spec.defaults(), task_for(model, 50), np.random.default_rng(7))
    b = model.simulate(model.spec.defaults(), task_for(model, 50), np.random.default_rng(7))
    pd.testing.assert_frame_equal(a.trials, b.trials)
    np.testing.assert_array_equal(a.rpe, b.rpe)
    c = model.simulate(model.spec.defaults(), task_for(model, 50), np.random.default_rng(8))
    assert not a.trials.equals(c.trials)


def test_vectorized_likelihood_equals_plain_loop(model):
    df, truth = simulate_subjects(model, n_subjects=3, n_trials=80)
    data = model.pack(df)
    rng = np.random.default_rng(1)
    x = model.spec.random_starts(2 * PARALLEL_MIN_LANES, rng)            # enough lanes for the parallel kernel
    lanes = rng.integers(0, 3, size=x.shape[0])
    many = model.loglik(x, data, lanes)
    one_by_one = np.array([model.loglik(x[i:i + 1], data, lanes[i:i + 1])[0] for i in range(len(x))])
    np.testing.assert_allclose(many, one_by_one, rtol=1e-12)
    for i in range(4):
        sub = df[df.subject == data.subjects[lanes[i]]]
        p = model.spec.as_dict(x[i])
        if model.kind == "choice":
            expected = ref.rw_choice_loglik(
                sub.choice.astype(int).tolist(), sub.reward.tolist(), alpha_pos=p.get("alpha_pos", p.get("alpha")),
                alpha_neg=p.get("alpha_neg", p.get("alpha")), beta=p["beta"], kappa=p.get("kappa", 0.0),
                epsilon=p.get("epsilon", 0.0))
        elif model.name.startswith("rw-pavlovian"):
            expected = ref.rw_pavlovian_loglik(
                sub.cue.tolist(), sub.reward.tolist(), sub.licks.astype(float).tolist(),
                alpha_pos=p.get("alpha_pos", p.get("alpha")), alpha_neg=p.get("alpha_neg", p.get("alpha")),
                lick_intercept=p["lick_intercept"], lick_slope=p["lick_slope"])
        elif model.name == "td":
            tm = model.timing
            _, val = ref.td_csc_single_cue(sub.reward.to_numpy(), alpha=p["alpha"], gamma=p["gamma"],
                                           lambda_=p["lambda_"], cue_bin=tm.cue_bin, outcome_bin=tm.outcome_bin,
                                           n_bins=data.extra["n_bins"])
            vbar = val[:, tm.cue_bin:tm.outcome_bin].mean(axis=1)
            loglam = p["lick_intercept"] + p["lick_slope"] * vbar
            k = sub.licks.to_numpy(float)
            from scipy.special import gammaln
            expected = float(np.sum(k * loglam - np.exp(loglam) - gammaln(k + 1)))
        else:
            continue
        assert many[i] == pytest.approx(expected, rel=1e-10, abs=1e-9)


def test_gradient_matches_finite_differences(model):
    df, _ = simulate_subjects(model, n_subjects=2, n_trials=60)
    data = model.pack(df)
    z = model.spec.to_unconstrained(model.spec.random_starts(3, np.random.default_rng(2)))
    lanes = np.array([0, 1, 0])
    _, g = model.loglik_grad_z(z, data, lanes)
    h = 1e-6
    for j in range(z.shape[1]):
        zp, zm = z.copy(), z.copy()
        zp[:, j] += h
        zm[:, j] -= h
        fd = (model.loglik(model.spec.to_natural(zp), data, lanes) - model.loglik(model.spec.to_natural(zm), data, lanes)) / (2 * h)
        np.testing.assert_allclose(g[:, j], fd, rtol=1e-4, atol=1e-4)


def test_fit_never_below_truth(model):
    df, truth = simulate_subjects(model, n_subjects=3, n_trials=250, seed=3)
    result = fit(model, df, restarts=4)
    ll_true = model.loglik(truth, model.pack(df), np.arange(3))
    assert np.all(result.loglik_ >= ll_true - 1e-6)
    assert result.params.shape == (3, len(model.spec))
    assert np.isfinite(result.aic).all() and np.isfinite(result.bic).all()
