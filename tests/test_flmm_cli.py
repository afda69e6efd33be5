"""``dopa-rl flmm`` (issue 20 item 2): the issue's JSON, tables and NWB sessions, --rpe, --bootstrap, errors."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dopa_rl.cli import main

KEYS = {"formula", "n_trials", "n_groups", "aic", "bic", "coefficients"}
BANDS = {"time_s", "estimate", "pointwise_low", "pointwise_high", "joint_low", "joint_high"}


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """A fastFMM-style table: id, cs and photometry.1..24 at 10 Hz, the cue 0.5 s after the first column, CS+
    (cs = 0) with a response 0.2-1.2 s after the cue that CS- lacks."""
    rng = np.random.default_rng(0)
    L, rate, event_at = 24, 10.0, 0.5
    t = np.arange(L) / rate - event_at
    bump = 2.0 * np.exp(-((t - 0.6) / 0.3) ** 2)
    rows = []
    for g in range(6):
        offset = rng.normal(0, 0.3)
        for j in range(24):
            cs = j % 2
            y = offset + (1 - cs) * bump + rng.normal(0, 0.5, L)
            rows.append({"id": f"m{g}", "trial": j, "cs": cs, **{f"photometry.{k + 1}": y[k] for k in range(L)}})
    path = tmp_path_factory.mktemp("flmm") / "table.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_table_round_trip_with_the_issues_json(table, tmp_path, capsys):
    out, figs = tmp_path / "out.json", tmp_path / "figs"
    code = main(["flmm", str(table), "--formula", "photometry ~ cs + (1 | id)", "--formula", "photometry ~ cs + (cs | id)",
                 "--rate", "10", "--event-at", "0.5", "--json", str(out), "--plots", str(figs), "--outcome-at", "1.0"])
    printed = capsys.readouterr().out
    assert code == 0
    d = json.loads(out.read_text())
    assert set(d) == KEYS and set(d["coefficients"]) == {"Intercept", "cs"}
    assert d["formula"] == "photometry ~ cs + (1 | id)" and (d["n_trials"], d["n_groups"]) == (144, 6)
    cs = d["coefficients"]["cs"]
    assert set(cs) == BANDS
    np.testing.assert_allclose(cs["time_s"], np.arange(24) / 10 - 0.5)  # seconds from the event
    est, lo, hi = (np.array(cs[k]) for k in ("estimate", "joint_low", "joint_high"))
    assert np.all(lo <= est) and np.all(est <= hi)
    after = (np.array(cs["time_s"]) > 0.4) & (np.array(cs["time_s"]) < 0.8)
    assert np.all(hi[after] < 0)  # CS- lacks the CS+ response: the joint band excludes 0 there
    assert "cs: joint multiplier" in printed and "joint band excludes 0" in printed
    assert "model comparison" in printed and printed.count("AIC ") >= 3
    assert sorted(p.name for p in figs.iterdir()) == ["flmm_Intercept.png", "flmm_coefficients.png", "flmm_cs.png"]


def test_bootstrap_bands_from_the_command_line(table, tmp_path, capsys):
    out = tmp_path / "boot.json"
    assert main(["flmm", str(table), "--formula", "photometry ~ cs + (1 | id)", "--rate", "10", "--event-at", "0.5",
                 "--bootstrap", "12", "--json", str(out)]) == 0
    assert "bootstrap 95% bands" in capsys.readouterr().out
    assert set(json.loads(out.read_text())) == KEYS


@pytest.mark.parametrize("argv, message", [
    (["--formula", "photometry ~ lick + (1 | id)", "--rate", "10", "--event-at", "0.5"], "no column 'lick'"),
    (["--formula", "photometry ~ cs", "--rate", "10", "--event-at", "0.5"], "random-effects term"),
    (["--formula", "photometry ~ cs + (1 | id)", "--rate", "10", "--event-at", "5"], "outside the matrix"),
    (["--formula", "photometry ~ cs + (1 | id)", "--event-at", "0.5"], "needs --rate"),
    (["--formula", "signal ~ cs + (1 | id)", "--rate", "10", "--event-at", "0.5"], "no columns named signal.1"),
    (["--formula", "photometry ~ cs + (1 | id)", "--rate", "10", "--event-at", "0.5", "--bootstrap", "3"], "at least 10"),
])
def test_bad_inputs_exit_2_with_one_line_and_write_nothing(table, tmp_path, capsys, argv, message):
    out, figs = tmp_path / "o.json", tmp_path / "figs"
    code = main(["flmm", str(table), *argv, "--json", str(out), "--plots", str(figs)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and message in err[0], err
    assert not out.exists() and not figs.exists()


def test_nwb_sessions_with_the_models_rpe(rw_sessions, tmp_path, capsys):
    out = tmp_path / "rpe.json"
    code = main(["flmm", *map(str, rw_sessions), "--formula", "photometry ~ rpe_cue + (1 | subject)", "--rpe", "rw-pavlovian",
                 "--rpe-params", "alpha=0.15", "--window", "-0.5", "2", "--rate", "20", "--json", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    d = json.loads(out.read_text())
    assert d["n_groups"] == 2 and d["n_trials"] > 500
    rpe = d["coefficients"]["rpe_cue"]
    t = np.array(rpe["time_s"])
    assert t[0] == pytest.approx(-0.5) and t[-1] == pytest.approx(2.0) and np.diff(t).mean() == pytest.approx(0.05)
    # the simulated dopamine carries the cue RPE: its coefficient rises after the cue, from ~0 before it; after
    # the outcome (1.5 s) it turns negative, since the outcome RPE r - V falls as the cue's value V grows
    lo, hi, est = (np.array(rpe[k]) for k in ("joint_low", "joint_high", "estimate"))
    assert np.all(lo[(t > 0.05) & (t < 1.2)] > 0)
    assert np.abs(est[t < -0.05]).max() < 0.1 * est.max()
    assert np.all(hi[(t > 1.6) & (t <= 2.0)] < 0)
    assert "rpe_cue/rpe_outcome from rw-pavlovian (given (--rpe-params)) at 0: alpha=0.15" in printed


def test_rpe_fitted_to_the_dopamine_responses_recovers_alpha(rw_sessions, capsys):
    import re

    from _neural_support import TRUE_ALPHA

    code = main(["flmm", *map(str, rw_sessions), "--formula", "photometry ~ rpe_cue + (1 | subject)",
                 "--rpe", "rw-pavlovian", "--window", "-0.5", "2", "--rate", "20"])
    printed = capsys.readouterr().out
    assert code == 0
    line = next(x for x in printed.splitlines() if x.startswith("rpe_cue/rpe_outcome"))
    assert "fitted to the per-trial dopamine responses" in line
    alphas = [float(a) for a in re.findall(r"alpha=([0-9.]+)", line)]
    assert len(alphas) == 2 and all(abs(a - TRUE_ALPHA) < 0.06 for a in alphas), line


def test_nwb_errors(rw_sessions, tmp_path, capsys):
    files = [str(p) for p in rw_sessions]
    assert main(["flmm", *files, "--formula", "photometry ~ reward + (1 | subject)", "--rate", "100000"]) == 2
    assert "is sampled at" in capsys.readouterr().err
    assert main(["flmm", *files, "--formula", "photometry ~ reward + (1 | subject)", "--event", "lick_time"]) == 2
    assert "--event lick_time: no such trials column" in capsys.readouterr().err
    assert main(["flmm", *files, "--formula", "photometry ~ reward + (1 | subject)", "--event-at", "1"]) == 2
    assert "--event-at applies to tables" in capsys.readouterr().err


def test_table_with_the_rpe_of_a_fitted_model(tmp_path, capsys):
    """A lab's table (mouse, stim, water, dff.1..30) whose cue response scales with the RW value (alpha 0.2):
    --rpe fits alpha to the per-trial responses and the rpe_cue coefficient is positive right after the cue."""
    import re

    rng = np.random.default_rng(0)
    L, rate, event_at = 30, 10.0, 0.5
    t = np.arange(L) / rate - event_at
    rows = []
    for g in range(5):
        v = 0.0
        for j in range(60):
            r = float(rng.random() < 0.7)
            y = 2 * v * np.exp(-((t - 0.3) / 0.2) ** 2) + rng.normal(0, 0.3, L)
            v += 0.2 * (r - v)
            rows.append({"mouse": f"m{g}", "trial": j, "stim": "A", "water": r, **{f"dff.{k + 1}": y[k] for k in range(L)}})
    path = tmp_path / "lab.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    out = tmp_path / "o.json"
    assert main(["flmm", str(path), "--formula", "dff ~ rpe_cue + (1 | mouse)", "--rate", "10", "--event-at", "0.5",
                 "--rpe", "rw-pavlovian", "--columns", "subject=mouse,cue=stim,reward=water", "--json", str(out)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("rpe_cue/rpe_outcome"))
    alphas = [float(a) for a in re.findall(r"alpha=([0-9.]+)", line)]
    assert len(alphas) == 5 and 0.12 < np.median(alphas) < 0.3, line
    rpe = json.loads(out.read_text())["coefficients"]["rpe_cue"]
    tt, lo = np.array(rpe["time_s"]), np.array(rpe["joint_low"])
    assert np.all(lo[(tt >= 0.1) & (tt <= 0.5)] > 0) and not np.any(lo[tt < -0.1] > 0)
