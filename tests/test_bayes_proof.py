"""Proofs that the posterior sampler is right (issue 19): simulation-based calibration, a grid-integrated
posterior, the hierarchical EM estimates, and PyMC's NUTS on the same hierarchical model.

All are marked slow (each compiles a sampler: tens of seconds on the 2-core machine) and run in CI
(``make test`` runs the slow tests)."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from dopa_rl.fit import fit
from dopa_rl.models import get_model, simulate_population, tasks

pytest.importorskip("jax", reason="the bayes extra (pip install 'dopa_rl[bayes]') is not installed")
pytest.importorskip("numpyro")
az = pytest.importorskip("arviz")

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "reference" / "pymc_rw_softmax_10x60.json"
PYMC_PY = ROOT / "bench" / ".venv-pymc" / "bin" / "python"


def _quiet_fit(*args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit(*args, **kw)


def test_per_subject_posterior_equals_the_grid_integrated_posterior():
    """One subject, non-hierarchical: NUTS's posterior means and sds of alpha and beta agree with the posterior
    integrated on a 401 x 401 grid of the unconstrained parameters (prior x compiled likelihood), from 5
    posterior sds below the lowest draw to 5 above the highest."""
    model = get_model("rw-softmax")
    trials = simulate_population(model, tasks.bandit_task(120), 1, 11, {"alpha": 0.35, "beta": 4.0}).trials
    data = model.pack(trials)
    result = _quiet_fit(model, trials, method="bayes", hierarchical=False, chains=4, warmup=500, draws=1000, seed=2)
    pm, psd = model.spec.prior_mean(), model.spec.prior_sd()
    zd = result.idata.posterior["z"].values.reshape(-1, 2)
    # from the lowest to the highest draw and 5 sds beyond each: a skewed posterior (alpha's, in logit units)
    # gets the room its long side needs
    axes = [np.linspace(zd[:, j].min() - 5 * zd[:, j].std(), zd[:, j].max() + 5 * zd[:, j].std(), 401)
            for j in range(2)]
    Z = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 2)
    X = model.spec.to_natural(Z)
    logpost = model.loglik(X, data, np.zeros(len(Z), np.int64)) + stats.norm.logpdf(Z, pm, psd).sum(axis=1)
    w = np.exp(logpost - logpost.max())
    w /= w.sum()
    w2 = w.reshape(401, 401)
    edge = max(w2[[0, -1], :].max(), w2[:, [0, -1]].max())
    assert edge < 1e-5 * w.max()   # the grid holds the posterior: its border is 5 decades below the peak
    mean = w @ X
    sd = np.sqrt(w @ (X - mean) ** 2)
    draws = result.parameter_draws()[:, 0, :]
    ess = np.array([float(az.ess(draws[:, j].reshape(4, -1))) for j in range(2)])
    mcse = sd / np.sqrt(ess)
    assert np.all(np.abs(result.x[0] - mean) < 4 * mcse + 1e-3 * sd), (result.x[0], mean, mcse)
    np.testing.assert_allclose(result.se_[0], sd, rtol=0.08)


def test_group_means_are_near_the_hierarchical_em_estimates():
    model = get_model("rw-softmax")
    rng = np.random.default_rng(21)
    truth = pd.DataFrame({"alpha": 1 / (1 + np.exp(-rng.normal(-0.5, 0.5, 24))),
                          "beta": np.exp(rng.normal(1.2, 0.3, 24))})
    trials = simulate_population(model, tasks.bandit_task(120), 24, 22, truth).trials
    bayes = _quiet_fit(model, trials, method="bayes", chains=2, warmup=500, draws=500, seed=1)
    em = _quiet_fit(model, trials, method="hier", restarts=3)
    mu = bayes.idata.posterior["mu"].values.reshape(-1, 2)
    # the EM population mean (z units) lies within the posterior of mu: within 2 posterior sds, and the two
    # estimates differ by less than the EM mean's own standard error twice over
    assert np.all(np.abs(mu.mean(axis=0) - em.pop_mean) < 2 * mu.std(axis=0)), (mu.mean(axis=0), em.pop_mean)
    assert np.all(np.abs(mu.mean(axis=0) - em.pop_mean) < 2 * em.pop_mean_se + 0.05)
    # and the subjects' posterior means track the EM's shrunk estimates
    for j, n in enumerate(model.spec.names):
        assert np.corrcoef(bayes.x[:, j], em.x[:, j])[0, 1] > 0.95


def test_simulation_based_calibration_ranks_are_uniform():
    """SBC (Talts et al. 2018) on 100 independent problems at once: each subject of a non-hierarchical fit has
    its own parameters drawn from the prior and its own 40-trial data set, and the posterior factorises over
    subjects, so one NUTS run gives 100 posteriors.  The rank of each true parameter among 99 thinned draws
    is uniform on 0..99 when the sampler is calibrated: a chi-square test on 10 bins and a KS test (fixed
    seeds, so the outcome is fixed)."""
    model = get_model("rw-softmax")
    S = 100
    rng = np.random.default_rng(2024)
    z = rng.normal(model.spec.prior_mean(), model.spec.prior_sd(), size=(S, 2))
    x = model.spec.to_natural(z)
    truth = pd.DataFrame(x, columns=model.spec.names)
    trials = simulate_population(model, tasks.bandit_task(40), S, 7, truth).trials
    result = _quiet_fit(model, trials, method="bayes", hierarchical=False, chains=2, warmup=400, draws=990, seed=5)
    draws = result.parameter_draws()                          # [1980, S, 2]
    thin = draws[np.linspace(0, draws.shape[0] - 1, 99).round().astype(int)]
    ranks = (thin < x[None]).sum(axis=0).ravel()             # 0..99, 200 ranks
    counts = np.bincount(ranks // 10, minlength=10)
    assert stats.chisquare(counts).pvalue > 0.01, counts
    assert stats.kstest((ranks + rng.random(ranks.size)) / 100.0, "uniform").pvalue > 0.01


def _reference_problem():
    ref = json.loads(REFERENCE.read_text())
    prob = ref["problem"]
    ch = np.asarray(prob["choices"])
    rw = np.asarray(prob["rewards"])
    S, T = ch.shape
    trials = pd.DataFrame({"subject": np.repeat([str(s + 1) for s in range(S)], T), "session": "1",
                           "trial": np.tile(np.arange(T), S), "choice": ch.ravel().astype(float),
                           "reward": rw.ravel()})
    trials.loc[trials["choice"] < 0, "choice"] = np.nan
    return ref, prob, trials


def test_hierarchical_posterior_agrees_with_pymc():
    """The same hierarchical model sampled by PyMC's NUTS: fresh in the bench environment when it exists
    (bench/.venv-pymc, made by bench/bench_bayes.py), else the stored reference that bench wrote
    (tests/reference/pymc_rw_softmax_10x60.json, command inside).  Posterior means of mu, sigma and every
    subject's alpha and beta agree within Monte Carlo error (|difference| / MCSE of the difference < 4.5, the
    largest of 44 roughly normal scores)."""
    import sys

    sys.path.insert(0, str(ROOT / "bench"))
    from bench_bayes import agreement, ours_summary, run_pymc

    ref, prob, trials = _reference_problem()
    pymc = run_pymc(prob)["params"] if PYMC_PY.exists() else ref["pymc"]["params"]
    model = get_model("rw-softmax")
    result = _quiet_fit(model, trials, method="bayes", chains=prob["chains"], warmup=prob["warmup"],
                        draws=prob["draws"], seed=prob["seed"])
    assert result.model.pack(trials).extra["choices"].tolist() == prob["choices"]
    z = agreement(ours_summary(result), pymc, ["mu", "sigma", *model.spec.names])
    assert max(z.values()) < 4.5, z
    np.testing.assert_allclose(ours_summary(result)["mu"]["sd"], pymc["mu"]["sd"], rtol=0.15)
