"""Neural and joint fitting: learning parameters recovered from dopamine responses."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dopa_rl.errors import InputError
from dopa_rl.fit.neural import DopamineModel, fit_dopamine
from dopa_rl.io.synthetic import simulate_session
from dopa_rl.models import get_model
from dopa_rl.models.dopamine import profile_loglik
from dopa_rl.neural.pipeline import PhotometryPipeline
from dopa_rl.neural.regression import model_rpes
from dopa_rl.neural.tables import responses_from_trace


def _session(model, alpha, seed, n_trials):
    d = simulate_session("pavlovian", model, params={"alpha": alpha}, seed=seed, n_trials=n_trials)
    proc = PhotometryPipeline().run(d.photometry[0])
    trials, _ = responses_from_trace(proc.z, proc.rate, proc.t0, d.trials)
    return trials, d.true_parameters


@pytest.mark.parametrize("model,name,alpha", [("rw", "rw-pavlovian", 0.2), ("td", "td", 0.15)])
def test_neural_fit_recovers_alpha_from_photometry_of_400_trials(model, name, alpha):
    trials, truth = _session(model, alpha, seed=21, n_trials=400)
    res = fit_dopamine(get_model(name), trials, mode="neural", restarts=5)
    assert list(res.params.columns) == (["alpha"] if model == "rw" else ["alpha", "gamma", "lambda_"])
    assert abs(res.params["alpha"].iloc[0] - alpha) < 0.1
    assert res.converged.all()
    if model == "rw":  # (TD's lambda_ is weakly identified by cue/outcome responses: its Hessian may be flat)
        assert 0 < res.se_[0, 0] < 0.05
    assert res.n_obs.iloc[0] == 800 and "alpha" in res.summary()


def test_neural_loglik_is_the_profile_likelihood_of_the_model_rpes():
    trials, _ = _session("rw", 0.3, seed=3, n_trials=60)
    base = get_model("rw-pavlovian")
    dm = DopamineModel(base, "neural")
    packed = dm.pack(trials)
    ll = dm.loglik(np.array([[0.3], [0.05]]), packed, np.array([0, 0]))
    for a, got in zip((0.3, 0.05), ll):
        r = model_rpes(base, trials, {"alpha": a})
        want = sum(profile_loglik(r[f"rpe_{ev}"].to_numpy(), trials[f"dopamine_{ev}"].to_numpy()).loglik
                   for ev in ("cue", "outcome"))
        assert got == pytest.approx(want, rel=1e-9)
    assert ll[0] > ll[1]                                # the true learning rate explains the dopamine better


def test_joint_fit_is_at_least_as_accurate_as_behaviour_alone():
    model = get_model("rw-pavlovian")
    err = {"behavior": [], "joint": []}
    for seed, alpha in enumerate((0.08, 0.3, 0.5, 0.2)):
        trials, _ = _session("rw", alpha, seed=100 + seed, n_trials=120)
        for mode in err:
            res = fit_dopamine(model, trials, mode=mode, restarts=3, seed=seed)
            err[mode].append(abs(res.params["alpha"].iloc[0] - alpha))
    assert np.mean(err["joint"]) <= np.mean(err["behavior"])
    assert np.max(err["joint"]) < 0.1
    res = fit_dopamine(model, trials, mode="joint", restarts=2)
    assert list(res.params.columns) == model.param_names     # shared learning rate + lick readout


def test_choice_model_neural_fit():
    from dopa_rl.models import tasks

    rng = np.random.default_rng(5)
    m = get_model("rw-softmax")
    sim = m.simulate({"alpha": 0.3, "beta": 4.0}, tasks.bandit_task(300), rng)
    tr = sim.trials
    r = model_rpes(m, tr, {"alpha": 0.3, "beta": 4.0})
    tr = tr.assign(dopamine_cue=0.1 + r["rpe_cue"] + rng.normal(0, 0.2, len(tr)),
                   dopamine_outcome=0.1 + 2 * r["rpe_outcome"] + rng.normal(0, 0.2, len(tr)))
    res = fit_dopamine(m, tr, mode="neural", restarts=3)
    assert list(res.params.columns) == ["alpha"] and abs(res.params["alpha"].iloc[0] - 0.3) < 0.1


def test_neural_fit_needs_dopamine_and_behaviour_fit_needs_licks():
    trials, _ = _session("rw", 0.2, seed=1, n_trials=30)
    with pytest.raises(InputError, match="dopamine_cue"):
        fit_dopamine(get_model("rw-pavlovian"), trials.drop(columns=["dopamine_cue", "dopamine_outcome"]))
    with pytest.raises(InputError, match="needs column.*licks"):
        fit_dopamine(get_model("rw-pavlovian"), trials.drop(columns=["licks"]), mode="behavior")
    few = trials.assign(dopamine_cue=np.nan, dopamine_outcome=pd.Series([1.0, 2.0] + [np.nan] * 28))
    with pytest.raises(InputError, match="fewer than 3 dopamine"):
        fit_dopamine(get_model("rw-pavlovian"), few)


@pytest.mark.parametrize("name", ["td", "rw-pavlovian-asym", "rw-softmax"])
def test_lane_rpes_equal_the_models_own_trajectories(name):
    """The compiled many-lane RPEs (neural_kernels) against each model's trajectories, lane by lane."""
    from dopa_rl.models import tasks

    m = get_model(name)
    rng = np.random.default_rng(8)
    task = tasks.bandit_task(80) if m.kind == "choice" else tasks.pavlovian_task(80, p_reward=0.6)
    tr = m.simulate({p.name: p.default for p in m.spec}, task, rng).trials
    tr = tr.assign(dopamine_cue=rng.normal(size=len(tr)), dopamine_outcome=rng.normal(size=len(tr)))
    dm = DopamineModel(m, "neural")
    packed = dm.pack(tr)
    xs = np.array([[p.init_low for p in dm.spec], [p.init_high for p in dm.spec]])
    cue, out = dm.rpes(dm.full_x(xs), packed, np.array([0, 0]))
    for i, x in enumerate(xs):
        want = model_rpes(m, tr, dict(zip(dm.spec.names, x)))
        np.testing.assert_allclose(cue[i], want["rpe_cue"], atol=1e-12)
        np.testing.assert_allclose(out[i], want["rpe_outcome"], atol=1e-12)
