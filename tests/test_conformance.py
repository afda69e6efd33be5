"""Every registered model through one table (like scikit-learn's estimator checks):
seeded simulation reproduces exactly, the vectorized likelihood equals a plain loop, gradients match
finite differences, and a fit never ends below the likelihood of the true parameters; then the public
``dopa_rl.testing.check_model`` over every registered model and over the example user model."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dopa_rl.fit import fit
from dopa_rl.models import get_model, model_names, simulate_population, tasks
from dopa_rl.models.kernels import PARALLEL_MIN_LANES
from dopa_rl.models.registry import load_model_spec
from dopa_rl.testing import check_model
from dopa_rl.testing.reference import builtin_reference
import reference_models as ref

EXAMPLE_MODEL = str(Path(__file__).resolve().parents[1] / "examples" / "rw_forgetting.py") + ":MODEL"


def task_for(model, n_trials=300):
    if model.kind == "choice":
        return tasks.bandit_task(n_trials)
    return tasks.partial_reinforcement(n_trials, 0.7)


def simulate_subjects(model, n_subjects=3, n_trials=300, seed=0):
    pop = simulate_population(model, task_for(model, n_trials), n_subjects, seed,
                              subjects=[f"s{s}" for s in range(n_subjects)])
    return pop.trials, pop.params[model.param_names].to_numpy()


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
        else:  # td-presence, td-microstimulus, belief-td: the package's independent plain loop (no silent skip)
            expected = builtin_reference(model)(p, sub)
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


def test_package_td_reference_agrees_with_the_tests_own_loop():
    """The package's plain TD loop (used by check_model) against this repository's independent one."""
    model = get_model("td")
    df, _ = simulate_subjects(model, n_subjects=1, n_trials=40)
    p = {"alpha": 0.3, "gamma": 0.9, "lambda_": 0.7, "lick_intercept": 0.2, "lick_slope": 1.5}
    tm = model.timing
    _, val = ref.td_csc_single_cue(df.reward.to_numpy(), alpha=p["alpha"], gamma=p["gamma"], lambda_=p["lambda_"],
                                   cue_bin=tm.cue_bin, outcome_bin=tm.outcome_bin, n_bins=model.pack(df).extra["n_bins"])
    loglam = p["lick_intercept"] + p["lick_slope"] * val[:, tm.cue_bin:tm.outcome_bin].mean(axis=1)
    from scipy.special import gammaln
    k = df.licks.to_numpy(float)
    assert builtin_reference(model)(p, df) == pytest.approx(float(np.sum(k * loglam - np.exp(loglam) - gammaln(k + 1))),
                                                            rel=1e-12)


# Parameters the simulated tasks cannot identify, declared rather than skipped: TD sees licks only through
# the mean value from cue to outcome, where gamma and lambda_ trade off against alpha; a lapse rate of a few
# percent needs far more than 500 trials once stickiness or asymmetric rates are free as well.
WEAK = {"belief-td": ("gamma",), "td": ("gamma", "lambda_"), "td-presence": ("gamma", "lambda_"), "td-microstimulus": ("gamma", "lambda_"),
        "rw-softmax-asym-lapse": ("epsilon",), "rw-softmax-sticky-lapse": ("epsilon",)}
# TD fits cost ~50x RW ones (time bins, finite-difference gradients): a smaller recovery study
SIZE = {name: dict(n_trials=300, restarts=2) for name in ("td", "td-presence", "td-microstimulus", "belief-td")}


@pytest.mark.parametrize("name", model_names() + [EXAMPLE_MODEL],
                         ids=model_names() + ["examples/rw_forgetting.py:MODEL"])
def test_check_model_passes(name):
    model = load_model_spec(name) if ":" in name else get_model(name)
    report = check_model(model, weak=WEAK.get(model.name, ()), **SIZE.get(model.name, {}))
    assert set(report.seconds) == {"parameters", "seed_reproducibility", "transforms_round_trip",
                                   "bad_parameters_raise", "parameters_matter", "lanes_equal_loop", "model_interface", "gradient",
                                   "recovery"}
    assert set(report.recovery) == set(model.param_names)
