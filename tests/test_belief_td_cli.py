"""Belief-state TD from the command line: ``dopa-rl fit``, ``regress --fit neural|trace`` and ``compare
--signal`` take it by name; the comparison picks the generating model (belief TD vs CSC TD); bad input exits 2
with one line and writes nothing."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from dopa_rl.cli import main
from dopa_rl.models import get_model, simulate_population
from dopa_rl.models.belief import variable_delay_task

# reward times on the default 0.25 s grid (the CLI's models use the default TrialTiming)
DELAYS = np.arange(1.0, 2.51, 0.25)
WEIGHTS = norm.pdf(DELAYS, 1.75, 0.4)


def _run(argv, capsys):
    code = main(argv)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def dopamine_table(gen, params, n_sessions=4, n_trials=250, noise=0.15, seed=0):
    """Sessions of a 90%-rewarded variable-delay task; dopamine_cue/outcome = 0.1 + ``gen``'s RPE + noise."""
    rows = []
    for k in range(n_sessions):
        task = variable_delay_task(n_trials, 0.9, DELAYS, WEIGHTS, seed + k)
        tm = task.timing
        rng = np.random.default_rng(seed + 50 + k)
        rew = task.draw_rewards(rng)
        ob = tm.cue_bin + np.round(task.delays_s / tm.bin_s).astype(int)
        rpe = get_model(gen).run(params, list(task.cues), rew, ob)[0]
        i = np.arange(n_trials)
        ct = np.cumsum(rng.exponential(8, n_trials) + 5.0)
        rows.append(pd.DataFrame({
            "subject": f"m{k}", "session": "1", "trial": i, "cue": "A", "reward": rew, "cue_time": ct,
            "outcome_time": ct + task.delays_s,
            "dopamine_cue": 0.1 + rpe[:, tm.cue_bin] + rng.normal(0, noise, n_trials),
            "dopamine_outcome": 0.1 + rpe[i, ob] + rng.normal(0, noise, n_trials)}))
    return pd.concat(rows, ignore_index=True)


@pytest.fixture(scope="module")
def lick_table(tmp_path_factory):
    task = variable_delay_task(300, 0.9, DELAYS, WEIGHTS, 0)
    pop = simulate_population(get_model("belief-td"), task, 2, 0,
                              params={"alpha": 0.2, "gamma": 0.95, "lick_intercept": 0.5, "lick_slope": 2.0})
    path = tmp_path_factory.mktemp("belief_cli") / "licks.csv"
    pop.trials.to_csv(path, index=False)
    return path


def test_fit_takes_belief_td_by_name(lick_table, tmp_path, capsys):
    out, pe = tmp_path / "fit.json", tmp_path / "pe.csv"
    code, text, err = _run(["fit", str(lick_table), "--model", "belief-td", "--restarts", "3", "--json", str(out),
                            "--prediction-errors", str(pe)], capsys)
    assert code == 0, err
    d = json.loads(out.read_text())
    assert d["model"] == "belief-td" and d["param_names"] == ["alpha", "gamma", "lick_intercept", "lick_slope"]
    assert d["provenance"]["model_options"]["reward_times"] == "empirical"
    for s in d["subjects"]:
        assert abs(s["params"]["alpha"] - 0.2) < 0.1 and abs(s["params"]["gamma"] - 0.95) < 0.05
    pes = pd.read_csv(pe)
    assert {"rpe_cue", "rpe_outcome"} <= set(pes.columns) and len(pes) == 600
    assert "Model: belief-td" in text


def test_regress_fit_neural_recovers_the_learning_parameters(tmp_path, capsys):
    path, out = tmp_path / "dop.csv", tmp_path / "reg.json"
    dopamine_table("belief-td", {"alpha": 0.15, "gamma": 0.95}, n_sessions=2).to_csv(path, index=False)
    code, text, err = _run(["regress", str(path), "--model", "belief-td", "--signal", "table", "--fit", "neural",
                            "--restarts", "3", "--json", str(out)], capsys)
    assert code == 0, err
    d = json.loads(out.read_text())
    assert d["model"] == "belief-td"
    assert abs(d["params"]["alpha"] - 0.15) < 0.04 and abs(d["params"]["gamma"] - 0.95) < 0.02
    assert any(r["event"] == "outcome" and r["coef"]["rpe"] > 0 for r in d["regressions"])


def test_regress_fit_trace_on_a_belief_td_photometry_session(tmp_path, capsys):
    from dopa_rl.io.nwb_write import write_session
    from dopa_rl.io.synthetic import simulate_session

    data = simulate_session("pavlovian", "belief-td", params={"alpha": 0.15}, seed=3, subject="m1", session="s1",
                            n_trials=200)
    path = write_session(tmp_path / "belief.nwb", data)
    out = tmp_path / "trace.json"
    code, text, err = _run(["regress", str(path), "--model", "belief-td", "--signal", "photometry", "--fit", "trace",
                            "--kernel-rise", "0.06", "--kernel-decay", "0.45", "--restarts", "1", "--json", str(out)],
                           capsys)
    assert code == 0, err
    d = json.loads(out.read_text())
    assert d["model"] == "belief-td" and set(d["fixed"]) == {"gamma"}
    assert abs(d["params"]["alpha"] - 0.15) < 0.05, d["params"]


@pytest.mark.parametrize("gen, params", [("belief-td", {"alpha": 0.15, "gamma": 0.95}),
                                         ("td", {"alpha": 0.15, "gamma": 0.95, "lambda_": 0.5})])
def test_compare_signal_picks_the_generating_model(gen, params, tmp_path, capsys):
    path, out = tmp_path / "dop.csv", tmp_path / "cmp.json"
    dopamine_table(gen, params).to_csv(path, index=False)
    code, text, err = _run(["compare", str(path), "--signal", "table", "--models", "belief-td,td", "--restarts", "3",
                            "--json", str(out)], capsys)
    assert code == 0, err
    s = json.loads(out.read_text())
    bic = {m: np.array([rec["models"][m]["bic"] for rec in s["per_session"].values()]) for m in s["models"]}
    other = "td" if gen == "belief-td" else "belief-td"
    assert np.all(bic[gen] < bic[other] - 20)           # every session, by a wide margin
    assert max(s["rfx"]["expected_frequency"], key=s["rfx"]["expected_frequency"].get) == gen
    assert {rec["models"]["belief-td"]["n_params"] for rec in s["per_session"].values()} == {2 + 6}


def test_bad_input_exits_2_with_one_line_and_writes_nothing(lick_table, tmp_path, capsys):
    out = tmp_path / "never.json"
    code, _, err = _run(["fit", str(lick_table), "--model", "belief-td", "--n-options", "3", "--json", str(out)], capsys)
    assert code == 2 and "--n-options applies to choice models; belief-td is pavlovian" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()
    no_licks = tmp_path / "nolicks.csv"
    pd.read_csv(lick_table).drop(columns="licks").to_csv(no_licks, index=False)
    code, _, err = _run(["fit", str(no_licks), "--model", "belief-td", "--json", str(out)], capsys)
    assert code == 2 and "model belief-td needs column(s) licks" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()
    far = tmp_path / "far.csv"
    t = pd.read_csv(lick_table)
    t.loc[3, "outcome_time"] = t.loc[3, "cue_time"] + 500.0
    t.to_csv(far, index=False)
    code, _, err = _run(["fit", str(far), "--model", "belief-td", "--json", str(out)], capsys)
    assert code == 2 and "use a coarser bin" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()
