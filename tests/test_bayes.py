"""Posterior fitting (issue 19): the JAX likelihoods against the compiled ones, the result family of a NUTS fit,
the command line, and the lazy, optional JAX stack.  The proofs of correctness (SBC, grid posterior, EM,
PyMC) are in test_bayes_proof.py."""
from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from dopa_rl.cli import main
from dopa_rl.errors import InputError
from dopa_rl.fit import fit
from dopa_rl.models import Param, get_model, pavlovian_model, simulate_population, tasks

jax = pytest.importorskip("jax", reason="the bayes extra (pip install 'dopa_rl[bayes]') is not installed")
pytest.importorskip("numpyro")
az = pytest.importorskip("arviz")

from dopa_rl.fit.bayes import BayesUnavailableError  # noqa: E402
from dopa_rl.fit.bayes_result import BayesResult  # noqa: E402
from dopa_rl.fit.results import FitResult  # noqa: E402
from dopa_rl.models import jax_rules  # noqa: E402

EXAMPLE = "examples/rw_forgetting.py:MODEL"

CHOICE = ["rw-softmax", "rw-softmax-lapse", "rw-softmax-asym", "rw-softmax-asym-lapse", "rw-softmax-sticky",
          "rw-softmax-sticky-lapse"]
PAVLOVIAN = ["rw-pavlovian", "rw-pavlovian-asym"]


def run_cli(capsys, *argv):
    code = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return code, out, err


def _cue_rule(v, present, reward, theta):
    """A user's Pavlovian rule in the numba style, with an ``if`` on the (data) presence."""
    pred = 0.0
    for e in range(v.shape[0]):
        pred += v[e] * present[e]
    for e in range(v.shape[0]):
        if present[e] > 0:
            v[e] += theta[0] * (reward - pred)


USER_PAV = pavlovian_model("user-cue-rule", [Param("alpha", lower=0, upper=1)], _cue_rule)


def _random_params(model, S, rng):
    lo = np.array([p.init_low for p in model.spec])
    hi = np.array([p.init_high for p in model.spec])
    return lo + rng.random((S, len(lo))) * (hi - lo)


def _data(model, S, T, seed=1):
    task = tasks.bandit_task(T) if model.kind == "choice" else tasks.make_task("blocking")
    trials = simulate_population(model, task, S, seed).trials
    if model.kind == "choice":  # a missed trial and a second session exercise the masks and resets
        trials.loc[3, "choice"] = np.nan
    return trials


# ------------------------------------------------------------------------------------- JAX = compiled
@pytest.mark.parametrize("name", CHOICE + PAVLOVIAN + [EXAMPLE, "user-pav"])
def test_jax_trials_equal_the_compiled_kernels(name):
    """log-likelihood, value at the cue and outcome RPE of the JAX recursion equal the compiled kernels'
    (model.loglik, model.rpes) at random parameters, to 1e-6."""
    model = USER_PAV if name == "user-pav" else get_model(name)
    trials = _data(model, 4, 50)
    data = model.pack(trials)
    fn = jax.jit(jax_rules.trial_function(model, data))
    x = _random_params(model, data.n_subjects, np.random.default_rng(3))
    out = {k: np.asarray(v) for k, v in fn(x).items()}
    lanes = np.arange(data.n_subjects)
    np.testing.assert_allclose(out["logp"].sum(axis=1), model.loglik(x, data, lanes), rtol=1e-6)
    cue, rpe = model.rpes(x, data, lanes)
    T = cue.shape[1]
    np.testing.assert_allclose(out["value"][:, :T], cue, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(out["rpe"][:, :T], rpe, rtol=1e-6, atol=1e-9)
    assert np.isnan(out["rpe"]).any() == np.isnan(rpe).any()


def test_a_rule_jax_cannot_trace_names_the_one_function_to_write():
    def gated(q, choice, reward, theta):
        if reward > 0.5:               # a Python if on a traced value
            q[choice] += theta[0] * (reward - q[choice])

    from dopa_rl.models import choice_model

    model = choice_model("gated", [Param("alpha", lower=0, upper=1)], gated)
    data = model.pack(_data(get_model("rw-softmax"), 2, 30))
    with pytest.raises(InputError, match=r"jax_rule\(gated\)"):
        jax_rules.trial_function(model, data)

    @jax_rules.jax_rule(gated)
    def gated_jax(q, choice, reward, theta):
        import jax.numpy as jnp

        hit = (jnp.arange(q.shape[0]) == choice) & (reward > 0.5)
        return jnp.where(hit, q + theta[0] * (reward - q), q)

    fn = jax_rules.loglik_function(model, data)   # checked against the compiled rule at three points
    x = np.tile([0.4, 3.0], (2, 1))
    np.testing.assert_allclose(np.asarray(fn(x)), model.loglik(x, data, np.arange(2)), rtol=1e-9)


def test_a_wrong_jax_twin_is_refused():
    from dopa_rl.models import choice_model

    def rule(q, choice, reward, theta):
        q[choice] += theta[0] * (reward - q[choice])

    model = choice_model("twin-wrong", [Param("alpha", lower=0, upper=1)], rule)
    jax_rules.jax_rule(rule)(lambda q, c, r, th: q)          # forgets to learn
    data = model.pack(_data(get_model("rw-softmax"), 2, 30))
    with pytest.raises(InputError, match="disagrees with the model's own"):
        jax_rules.trial_function(model, data)


def test_td_says_it_has_no_jax_version():
    model = get_model("td")
    data = model.pack(simulate_population(model, tasks.make_task("acquisition"), 1, 0).trials)
    with pytest.raises(InputError, match="no JAX log-likelihood"):
        jax_rules.trial_function(model, data)


# ------------------------------------------------------------------------------------------ options
@pytest.mark.parametrize("kw, msg", [({"chains": 0}, "chains must be an integer >= 1"),
                                     ({"draws": 2.5}, "draws must be"),
                                     ({"target_accept": 1.5}, "target_accept must be between 0 and 1"),
                                     ({"chain_method": "threads"}, "chain_method must be one of"),
                                     ({"max_iter": 3}, "do not apply to method='bayes'")])
def test_bad_sampler_options_are_one_line(kw, msg):
    model = get_model("rw-softmax")
    with pytest.raises(InputError, match=msg):
        fit(model, _data(model, 2, 20), method="bayes", **kw)


def test_missing_extra_is_an_import_error_naming_the_install(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "numpyro", None)
    model = get_model("rw-softmax")
    trials = _data(model, 2, 20)
    with pytest.raises(ImportError, match=r"pip install 'dopa_rl\[bayes\]'") as info:
        fit(model, trials, method="bayes")
    assert isinstance(info.value, BayesUnavailableError) and isinstance(info.value, InputError)
    csv = tmp_path / "d.csv"
    trials.to_csv(csv, index=False)
    code, out, err = run_cli(capsys, "fit", csv, "--model", "rw-softmax", "--method", "bayes", "--json",
                             tmp_path / "p.json")
    assert code == 2 and "pip install 'dopa_rl[bayes]'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "p.json").exists()


@pytest.mark.parametrize("argv, msg", [(["--method", "bayes", "--chains", "0"], "--chains 0: must be at least 1"),
                                       (["--method", "bayes", "--target-accept", "1"], "--target-accept 1"),
                                       (["--posterior", "x.nc"], "--posterior apply to --method bayes only"),
                                       (["--draws", "10"], "--draws apply to --method bayes only"),
                                       (["--method", "bayes", "--restarts", "3"], "--restarts")])
def test_cli_bad_sampler_flags_exit_2_and_write_nothing(argv, msg, tmp_path, capsys):
    model = get_model("rw-softmax")
    csv = tmp_path / "d.csv"
    _data(model, 2, 20).to_csv(csv, index=False)
    code, out, err = run_cli(capsys, "fit", csv, "--model", "rw-softmax", "--json", tmp_path / "p.json", *argv)
    assert code == 2 and msg in err
    assert not (tmp_path / "p.json").exists()


def test_jax_stays_unimported_by_the_package_and_other_commands(tmp_path):
    model = get_model("rw-softmax")
    csv = tmp_path / "d.csv"
    _data(model, 2, 30).to_csv(csv, index=False)
    code = ("import sys, dopa_rl, dopa_rl.fit, dopa_rl.fit.bayes, dopa_rl.fit.bayes_result, dopa_rl.models.jax_rules\n"
            "from dopa_rl.cli import main\n"
            f"assert main(['fit', {str(csv)!r}, '--model', 'rw-softmax', '--restarts', '2']) == 0\n"
            "assert main(['fit', '--help']) == 0 if False else True\n"
            "bad = [m for m in ('jax', 'numpyro', 'arviz') if m in sys.modules]\n"
            "assert not bad, bad\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]


# --------------------------------------------------------------------------------- one NUTS fit, shared
@pytest.fixture(scope="module")
def posterior():
    model = get_model("rw-softmax")
    rng = np.random.default_rng(5)
    truth = pd.DataFrame({"alpha": 1 / (1 + np.exp(-rng.normal(-0.5, 0.5, 16))),
                          "beta": np.exp(rng.normal(1.2, 0.3, 16))})
    trials = simulate_population(model, tasks.bandit_task(100), 16, 7, truth).trials
    trials.loc[3, "choice"] = np.nan                      # a missed trial: no observation, no update
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fit(model, trials, method="bayes", chains=2, warmup=500, draws=500, seed=3)
    return model, trials, result


def test_json_has_the_issue_shape_and_round_trips(posterior):
    model, trials, result = posterior
    d = json.loads(result.to_json())
    s0 = d["subjects"][0]
    assert set(s0["params"]) == set(s0["hdi"]) == {"alpha", "beta"}
    for name, (lo, hi) in s0["hdi"].items():
        assert lo < s0["params"][name] < hi
    assert set(d["group"]) == {"alpha", "beta"}
    assert all(set(g) == {"mean", "sd", "hdi"} for g in d["group"].values())
    assert set(d["diagnostics"]) == {"rhat_max", "ess_bulk_min", "ess_tail_min", "divergences", "chains", "draws"}
    assert d["diagnostics"]["chains"] == 2 and d["diagnostics"]["draws"] == 500
    back = FitResult.from_json(result.to_json())          # the fit family's reader gives the posterior back
    assert isinstance(back, BayesResult)
    assert back.to_dict() == d
    np.testing.assert_array_equal(back.hdi_, result.hdi_)
    assert "94% HDI" in back.summary() and "R-hat max" in back.summary()


def test_summaries_are_the_draws(posterior):
    model, trials, result = posterior
    post = result.idata.posterior
    a = post["alpha"].values.reshape(-1, len(result.subjects))
    np.testing.assert_allclose(result.params["alpha"].to_numpy(), a.mean(axis=0), rtol=1e-12)
    iv = az.hdi(result.idata, var_names=["alpha"], hdi_prob=0.94)["alpha"].values
    np.testing.assert_allclose(result.hdi_[:, 0, :], iv, rtol=1e-10)
    assert result.diagnostics["rhat_max"] == pytest.approx(
        max(float(az.rhat(post[[v]])[v].max()) for v in ("mu", "sigma", "u")), rel=1e-12)


def test_posterior_file_round_trip_gives_the_same_trialwise_posteriors(posterior, tmp_path):
    model, trials, result = posterior
    path = tmp_path / "post.nc"
    result.to_netcdf(path)
    assert set(az.from_netcdf(path).groups()) >= {"posterior", "log_likelihood", "sample_stats"}
    back = BayesResult.from_json(result.to_json(), posterior=path)
    a = result.prediction_errors(trials, n_draws=50)
    b = back.prediction_errors(trials, n_draws=50)
    pd.testing.assert_frame_equal(a, b)


def test_prediction_errors_are_the_posterior_of_the_compiled_rpes(posterior):
    """The posterior mean of each trial's RPE equals the mean over the same draws of the compiled kernels'
    RPEs (model.rpes, one lane per draw and subject)."""
    model, trials, result = posterior
    pe = result.prediction_errors(trials, n_draws=60)
    draws = result.parameter_draws(60)                   # [M, S, k]
    M, S, k = draws.shape
    data = model.pack(trials)
    cue, rpe = model.rpes(draws.reshape(-1, k), data, np.tile(np.arange(S), M))
    T = rpe.shape[1]
    want = np.nanmean(rpe.reshape(M, S, T), axis=0)
    got = pe["rpe"].to_numpy().reshape(S, -1)[:, :T]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)
    low, high = pe["rpe_low"].to_numpy().reshape(S, -1), pe["rpe_high"].to_numpy().reshape(S, -1)
    ok = np.isfinite(got)
    assert (low[ok] <= got[ok] + 1e-12).all() and (got[ok] <= high[ok] + 1e-12).all()
    assert np.isnan(got).sum() == np.isnan(want).sum()


def test_posterior_predictive_table_and_figure(posterior):
    from dopa_rl.report.bayes import ppc_figure

    model, trials, result = posterior
    table = result.posterior_predictive(trials, n_draws=50)
    t1 = table[(table.option == 1)].set_index("trial")
    data = model.pack(trials)
    ch = data.extra["choices"]
    obs = ((ch == 1).sum(axis=0) / (ch >= 0).sum(axis=0))
    np.testing.assert_allclose(t1["observed"].to_numpy(), obs, rtol=1e-12)
    p = table.pivot(index="trial", columns="option", values="predicted").to_numpy()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-9)
    # the model predicts the reversal: the preference for option 1 falls after trial 50
    assert t1.loc[40:49, "predicted"].mean() < 0.5 < t1.loc[90:99, "predicted"].mean() or \
        t1.loc[40:49, "predicted"].mean() > 0.5 > t1.loc[90:99, "predicted"].mean()
    assert ppc_figure(result, trials, n_draws=30)[:8] == b"\x89PNG\r\n\x1a\n"


def test_data_not_fitted_is_refused(posterior):
    model, trials, result = posterior
    other = trials.assign(reward=1.0 - trials["reward"])
    with pytest.raises(InputError, match="not the data the result was fitted to"):
        result.prediction_errors(other)
    with pytest.raises(InputError, match="need the draws"):
        BayesResult.from_json(result.to_json()).prediction_errors(trials)


# ---------------------------------------------------------------------------------------- command line
@pytest.mark.slow
def test_cli_fits_a_user_model_from_a_file(tmp_path, capsys):
    """`dopa-rl fit --method bayes` on a model from examples/rw_forgetting.py (its rule traced from the numba-style
    update): the per-subject table with 94% HDIs and the diagnostics, JSON in the issue's shape, post.nc an
    ArviZ InferenceData, a posterior predictive figure."""
    model = get_model(EXAMPLE)
    trials = simulate_population(model, tasks.bandit_task(80), 4, 3,
                                 {"alpha": 0.4, "phi": 0.2, "beta": 4.0}).trials
    csv = tmp_path / "d.csv"
    trials.to_csv(csv, index=False)
    code, out, err = run_cli(capsys, "fit", csv, "--model", EXAMPLE, "--method", "bayes", "--chains", 2,
                             "--warmup", 300, "--draws", 300, "--json", tmp_path / "post.json",
                             "--posterior", tmp_path / "post.nc", "--prediction-errors", tmp_path / "pe.csv",
                             "--plots", tmp_path / "figs")
    assert code == 0, err
    assert "Posterior means and 94% HDI" in out and "Diagnostics: R-hat max" in out
    d = json.loads((tmp_path / "post.json").read_text())
    assert d["model"] == "rw-forgetting" and set(d["subjects"][0]["hdi"]) == {"alpha", "phi", "beta"}
    assert d["provenance"]["cli"]["chains"] == 2
    idata = az.from_netcdf(tmp_path / "post.nc")
    assert idata.posterior.sizes["chain"] == 2 and idata.posterior.sizes["draw"] == 300
    assert set(idata.posterior["phi"].dims) == {"chain", "draw", "subject"}
    pe = pd.read_csv(tmp_path / "pe.csv")
    assert len(pe) == len(trials) and {"rpe", "rpe_low", "rpe_high", "value", "p_chosen"} <= set(pe.columns)
    assert (tmp_path / "figs" / "ppc.png").read_bytes()[:4] == b"\x89PNG"
    # the diagnostics of so short a run are reported against their thresholds, as a warning line
    if d["diagnostics"]["ess_bulk_min"] < 400:
        assert "warning:" in err and "bulk ESS" in err


@pytest.mark.slow
def test_cli_compare_ranks_models_by_psis_loo(tmp_path, capsys):
    model = get_model("rw-softmax-sticky")
    trials = simulate_population(model, tasks.bandit_task(100), 6, 4, {"alpha": 0.3, "beta": 4.0, "kappa": 1.5}).trials
    csv = tmp_path / "d.csv"
    trials.to_csv(csv, index=False)
    code, out, err = run_cli(capsys, "compare", csv, "--models", "rw-softmax,rw-softmax-sticky", "--method", "bayes",
                             "--chains", 2, "--warmup", 300, "--draws", 300, "--json", tmp_path / "cmp.json")
    assert code == 0, err
    d = json.loads((tmp_path / "cmp.json").read_text())
    assert [m["model"] for m in d["models"]][0] == "rw-softmax-sticky"     # the generating model wins
    first, second = d["models"]
    assert first["elpd_diff"] == 0 and second["elpd_diff"] > 0 and second["dse"] > 0
    assert "PSIS-LOO" in out
    from dopa_rl.fit.bayes_compare import BayesComparison

    assert BayesComparison.from_json(tmp_path / "cmp.json").to_dict() == d
