"""Recovery studies and the compare / recover-params commands."""
import json

import numpy as np
import pandas as pd
import pytest

from dopa_rl.cli import main
from dopa_rl.errors import InputError
from dopa_rl.fit.recovery import draw_population, recover_models, recover_parameters, recovery_stats
from dopa_rl.models import get_model, tasks


def run_cli(capsys, *argv):
    code = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return code, out, err


def test_model_recovery_rw_softmax_vs_sticky_at_least_80_percent():
    models = [get_model("rw-softmax"), get_model("rw-softmax-sticky")]
    population = {"rw-softmax": {"beta": (1.0, 5.0)}, "rw-softmax-sticky": {"beta": (1.0, 5.0), "kappa": (1.0, 2.5)}}
    rec = recover_models(models, tasks.bandit(150, (0.7, 0.3), reversal_every=30), 25, seed=0, params=population)
    assert np.all(np.diag(rec.confusion_bic.to_numpy()) >= 0.8), rec.confusion_bic
    assert np.all(np.diag(rec.confusion_rfx.to_numpy()) >= 0.8), rec.confusion_rfx
    assert rec.winner_pxp == {"rw-softmax": "rw-softmax", "rw-softmax-sticky": "rw-softmax-sticky"}
    assert np.allclose(rec.confusion_bic.sum(axis=1), 1.0)


def test_parameter_recovery_statistics():
    rec = recover_parameters(get_model("rw-softmax"), tasks.bandit_task(300), 30, seed=1)
    assert rec.stats.loc["alpha", "r"] > 0.7 and rec.stats.loc["beta", "spearman"] > 0.7
    truth = pd.DataFrame({"a": [0.0, 1.0, 2.0]})
    s = recovery_stats(truth, pd.DataFrame({"a": [1.0, 2.0, 3.0]}))
    assert s.loc["a", "r"] == pytest.approx(1.0) and s.loc["a", "bias"] == pytest.approx(1.0) and s.loc["a", "rmse"] == pytest.approx(1.0)


def test_population_draws_and_their_validation():
    m = get_model("rw-softmax-sticky")
    pop = draw_population(m, 50, np.random.default_rng(0), {"kappa": (1.0, 2.0), "alpha": 0.3})
    assert pop["kappa"].between(1, 2).all() and (pop["alpha"] == 0.3).all() and pop["beta"].between(0, 50).all()
    with pytest.raises(InputError, match="unknown parameter"):
        draw_population(m, 5, np.random.default_rng(0), {"gamma": 0.9})
    with pytest.raises(InputError, match="not inside"):
        draw_population(m, 5, np.random.default_rng(0), {"alpha": (0.5, 2.0)})


def test_compare_command_table_json_and_figure(tmp_path, capsys):
    data = tmp_path / "s.csv"
    assert main(["simulate", "--task", "bandit", "--model", "rw-softmax", "--subjects", "5", "--trials", "100",
                 "--out", str(data)]) == 0
    out, figs = tmp_path / "cmp.json", tmp_path / "figs"
    code, text, err = run_cli(capsys, "compare", data, "--models", "rw-softmax,rw-softmax-sticky", "--restarts", "3",
                              "--cv", "2", "--json", out, "--plots", figs)
    assert code == 0, err
    d = json.loads(out.read_text())
    assert d["models"] == ["rw-softmax", "rw-softmax-sticky"] and set(d["rfx"]) >= {"protected_exceedance", "bor"}
    assert len(d["log_evidence"]) == 5 and d["cv"]["folds_over"] == "blocks"
    assert (figs / "compare.png").stat().st_size > 1000 and "Bayesian omnibus risk" in text


def test_recover_params_command(tmp_path, capsys):
    out, figs = tmp_path / "rec.json", tmp_path / "figs"
    code, text, err = run_cli(capsys, "recover-params", "--model", "rw-softmax", "--subjects", "8", "--trials", "80",
                              "--restarts", "3", "--json", out, "--plots", figs)
    assert code == 0, err
    d = json.loads(out.read_text())
    assert set(d["stats"]) == {"alpha", "beta"} and {"r", "bias", "rmse"} <= set(d["stats"]["alpha"])
    assert (figs / "recovery.png").exists()
    code, text, err = run_cli(capsys, "recover-params", "--models", "rw-softmax,rw-softmax-sticky", "--subjects", "4",
                              "--trials", "60", "--restarts", "2", "--plots", figs)
    assert code == 0, err and (figs / "model_recovery.png").exists() and "by BIC" in text


@pytest.mark.parametrize("argv, expect", [
    (["compare", "DATA", "--models", "rw-softmax"], "at least 2 models"),
    (["compare", "DATA", "--models", "rw-softmax,rw-sofmax"], "unknown model"),
    (["compare", "DATA", "--models", "rw-softmax,rw-softmax"], "named twice"),
    (["compare", "DATA", "--models", "rw-softmax,rw-pavlovian"], "mixes"),
    (["compare", "DATA", "--models", "rw-softmax,rw-softmax-sticky", "--cv", "1"], "--cv"),
    (["compare", "DATA", "--models", "rw-softmax,rw-softmax-sticky", "--plots", "DATA"], "is a file"),
    (["compare", "DATA", "--models", "rw-softmax,rw-softmax-sticky", "--plots", "/no/such/dir/figs"], "does not exist"),
    (["recover-params", "--model", "rw-softmax", "--subjects", "1"], "--subjects"),
    (["recover-params", "--model", "rw-softmax", "--params", "gamma=0.9"], "no model here has"),
    (["recover-params", "--model", "rw-softmax", "--params", "beta=lots"], "--params"),
    (["recover-params", "--model", "rw-softmax", "--params", "alpha=0.5:3"], "not inside"),
    (["recover-params", "--model", "rw-softmax", "--task", "pavlovian"], "does not suit"),
    (["recover-params", "--models", "rw-softmax,rw-softmax-sticky", "--method", "map"], "--method map"),
    (["recover-params", "--model", "rw-softmax", "--scheduler", "local:x"], "local:N"),
])
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, capsys, argv, expect):
    data = tmp_path / "d.csv"
    data.write_text("subject,choice,reward\n1,0,1\n1,1,0\n1,0,1\n2,1,0\n2,0,1\n2,1,1\n")
    out = tmp_path / "o.json"
    argv = [str(data) if a == "DATA" else a for a in argv]
    code, text, err = run_cli(capsys, *argv, "--json", out)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and expect in errors[0], err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["d.csv"]
