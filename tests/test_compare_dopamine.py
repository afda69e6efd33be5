"""``dopa-rl compare --signal``: RW, TD and ANCCR fitted to the same dopamine responses, compared by BIC and
random-effects selection across sessions."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from _neural_support import write_sessions
from dopa_rl.cli import main
from dopa_rl.models.anccr import anccr_trial_responses

SMALL_GRID = "t_ratio=0.6:2.4:9.6,alpha=0.01:0.05:0.2"


def _run(argv, capsys):
    code = main(argv)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.fixture(scope="module")
def rw_photometry(tmp_path_factory):
    """Four simulated RW Pavlovian sessions (120 trials, alpha 0.15) with photometry (io/synthetic)."""
    return write_sessions(tmp_path_factory.mktemp("cmp_rw"), n=4, n_trials=120, seed=21)


def anccr_table(n_sessions=4, n_trials=120, noise=0.2, seed=100):
    """Trials whose dopamine_cue/dopamine_outcome are ANCCR's DA (t_ratio 2.4, alpha 0.05) read out as
    0.2 + 1.5 * DA + noise; an omission ANCCR does not yet recognise has DA 0."""
    rows = []
    for k in range(n_sessions):
        rng = np.random.default_rng(seed + k)
        ct = np.cumsum(rng.exponential(20, n_trials) + 3.0)
        reward = (rng.random(n_trials) < 0.75).astype(float)
        da = anccr_trial_responses(["A"] * n_trials, ct, ct + 1.0, reward, rng=np.random.default_rng(k),
                                   t_ratio=2.4, alpha=0.05)
        rows.append(pd.DataFrame({
            "subject": f"m{k + 1}", "session": "s1", "trial": np.arange(n_trials), "cue": "A", "reward": reward,
            "cue_time": ct, "outcome_time": ct + 1.0,
            "dopamine_cue": 0.2 + 1.5 * da["cue"] + rng.normal(0, noise, n_trials),
            "dopamine_outcome": 0.2 + 1.5 * np.nan_to_num(da["outcome"]) + rng.normal(0, noise, n_trials)}))
    return pd.concat(rows, ignore_index=True)


def _check_scored_alike(out, models):
    """Same n_obs for every model of a session; k = learning parameters + 6 readout; AIC/BIC from them."""
    for s, rec in out["per_session"].items():
        for m in models:
            r = rec["models"][m]
            assert r["aic"] == pytest.approx(2 * r["n_params"] - 2 * r["loglik"])
            assert r["bic"] == pytest.approx(r["n_params"] * np.log(rec["n_obs"]) - 2 * r["loglik"])
        k = {m: rec["models"][m]["n_params"] for m in models}
        assert k == {"rw-pavlovian": 1 + 6, "td": 3 + 6, "anccr": k["anccr"]} and k["anccr"] >= 2 + 6


def test_rw_sessions_rw_beats_anccr_by_bic(rw_photometry, tmp_path, capsys):
    out, figs = tmp_path / "cmp.json", tmp_path / "figs"
    code, text, err = _run(["compare", *map(str, rw_photometry), "--signal", "photometry",
                            "--models", "rw-pavlovian,td,anccr", "--restarts", "3", "--json", str(out),
                            "--plots", str(figs)], capsys)
    assert code == 0, err
    s = json.loads(out.read_text())
    assert s["models"] == ["rw-pavlovian", "td", "anccr"] and len(s["sessions"]) == 4
    assert all(rec["n_obs"] == 2 * 120 for rec in s["per_session"].values())     # every cue and outcome
    _check_scored_alike(s, s["models"])
    bic = {m: np.array([rec["models"][m]["bic"] for rec in s["per_session"].values()]) for m in s["models"]}
    assert np.sum(bic["rw-pavlovian"] < bic["anccr"]) >= 3
    assert set(s["rfx"]) >= {"expected_frequency", "exceedance", "protected_exceedance", "bor"}
    assert max(s["rfx"]["expected_frequency"], key=s["rfx"]["expected_frequency"].get) == "rw-pavlovian"
    assert s["rfx"]["protected_exceedance"]["anccr"] < 0.2
    assert (figs / "compare.png").stat().st_size > 1000
    assert "rw-pavlovian" in text and "anccr" in text and "the same for every model" in text


def test_anccr_responses_anccr_wins(tmp_path, capsys):
    path, out = tmp_path / "anccr.csv", tmp_path / "cmp.json"
    anccr_table().to_csv(path, index=False)
    code, text, err = _run(["compare", str(path), "--signal", "table", "--models", "rw-pavlovian,td,anccr",
                            "--restarts", "3", "--anccr-grid", SMALL_GRID, "--json", str(out)], capsys)
    assert code == 0, err
    s = json.loads(out.read_text())
    assert all(rec["n_obs"] == 2 * 120 for rec in s["per_session"].values())  # unrecognised omissions count too
    _check_scored_alike(s, s["models"])
    best = [min(rec["models"], key=lambda m: rec["models"][m]["bic"]) for rec in s["per_session"].values()]
    assert best.count("anccr") >= 3, best
    assert max(s["rfx"]["protected_exceedance"], key=s["rfx"]["protected_exceedance"].get) == "anccr"
    assert s["totals"]["anccr"]["best_sessions"] == best.count("anccr")
    recovered = [rec["models"]["anccr"]["params"] for rec in s["per_session"].values()]
    assert sum(p == {"t_ratio": 2.4, "alpha": 0.05} for p in recovered) >= 3


def test_every_model_is_scored_by_the_same_profiled_readout():
    """The comparison's log-likelihoods recomputed by hand: each model's signal at its fitted parameters
    through dopa_rl.models.dopamine.profile_loglik, cue and outcome each with their own readout."""
    from dopa_rl.fit.dopamine_compare import compare_dopamine
    from dopa_rl.models import get_model
    from dopa_rl.models.anccr import ANCCRResponses
    from dopa_rl.models.dopamine import profile_loglik
    from dopa_rl.neural.regression import model_rpes

    trials = anccr_table(n_sessions=2, n_trials=60, noise=0.3)
    comp = compare_dopamine(trials, [get_model("rw-pavlovian"), ANCCRResponses({"t_ratio": [1.2, 2.4], "alpha": [0.05]})],
                            restarts=2, progress=False)
    assert comp.sessions == ["m1/s1", "m2/s1"]
    for i, key in enumerate(comp.sessions):
        tr = trials[trials["subject"] == key.split("/")[0]].reset_index(drop=True)
        rw = model_rpes(get_model("rw-pavlovian"), tr, comp.params[0][key])
        da = anccr_trial_responses(tr["cue"], tr["cue_time"], tr["outcome_time"], tr["reward"],
                                   rng=np.random.default_rng(0), **comp.params[1][key])
        for j, (cue, outcome) in enumerate([(rw["rpe_cue"], rw["rpe_outcome"]),
                                            (da["cue"], np.nan_to_num(da["outcome"]))]):
            ll = sum(float(profile_loglik(np.asarray(x, float), tr[c].to_numpy(float)).loglik)
                     for x, c in ((cue, "dopamine_cue"), (outcome, "dopamine_outcome")))
            assert comp.loglik[i, j] == pytest.approx(ll, rel=1e-6, abs=1e-6)
    assert list(comp.n_obs) == [120, 120]
    assert comp.bic[0, 1] == pytest.approx(8 * np.log(120) - 2 * comp.loglik[0, 1])


def _behaviour_only_nwb(tmp_path):
    from _nwb_support import hand_session
    from dopa_rl.io.nwb_write import write_session

    data = dataclasses.replace(hand_session(), photometry=[], units={}, unit_properties=None)
    return write_session(tmp_path / "behaviour_only.nwb", data)


@pytest.mark.parametrize("case, match", [
    ("unknown_model", "unknown model 'nosuch'"),
    ("table_without_dopamine", "no dopamine_cue or dopamine_outcome column"),
    ("photometry_on_csv", "--signal photometry reads NWB files"),
    ("photometry_on_behaviour_nwb", "behaviour_only.nwb"),
    ("hier_with_signal", "--method hier is for behaviour"),
    ("bad_grid", "--anccr-grid 'gamma=0.9'"),
    ("matrix_without_signal", "--matrix compares models on dopamine responses"),
])
def test_bad_input_exit_2_one_line_nothing_written(tmp_path, capsys, case, match):
    behaviour = tmp_path / "choices.csv"
    anccr_table(n_sessions=1, n_trials=20).drop(columns=["dopamine_cue", "dopamine_outcome"]).to_csv(behaviour,
                                                                                                      index=False)
    table = tmp_path / "da.csv"
    anccr_table(n_sessions=1, n_trials=20).to_csv(table, index=False)
    argv = {
        "unknown_model": [str(table), "--signal", "table", "--models", "rw-pavlovian,nosuch"],
        "table_without_dopamine": [str(behaviour), "--signal", "table", "--models", "rw-pavlovian,anccr"],
        "photometry_on_csv": [str(behaviour), "--signal", "photometry", "--models", "rw-pavlovian,anccr"],
        "photometry_on_behaviour_nwb": [str(_behaviour_only_nwb(tmp_path) if case == "photometry_on_behaviour_nwb"
                                            else ""), "--signal", "photometry", "--models", "td,anccr"],
        "hier_with_signal": [str(table), "--signal", "table", "--models", "td,anccr", "--method", "hier"],
        "bad_grid": [str(table), "--signal", "table", "--models", "td,anccr", "--anccr-grid", "gamma=0.9"],
        "matrix_without_signal": [str(behaviour), "--models", "rw-pavlovian,td", "--matrix", "da"],
    }[case]
    out, figs = tmp_path / "cmp.json", tmp_path / "figs"
    code, text, err = _run(["compare", *argv, "--json", str(out), "--plots", str(figs)], capsys)
    assert code == 2 and match in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists() and not figs.exists()


def test_units_signal_compares_on_the_mean_unit_response(rw_photometry, tmp_path, capsys):
    out = tmp_path / "cmp.json"
    code, text, err = _run(["compare", *map(str, rw_photometry[:2]), "--signal", "units", "--models",
                            "rw-pavlovian,anccr", "--restarts", "2", "--anccr-grid", SMALL_GRID, "--json", str(out)],
                           capsys)
    assert code == 0, err
    s = json.loads(out.read_text())
    assert s["signal"] == "units" and len(s["sessions"]) == 2
    assert all(rec["n_obs"] == 240 for rec in s["per_session"].values())
    assert all(rec["models"]["rw-pavlovian"]["bic"] < rec["models"]["anccr"]["bic"]
               for rec in s["per_session"].values())


def test_anccr_without_event_times_fails_before_any_fit(tmp_path, capsys, monkeypatch):
    """A table with responses but no cue/outcome times (e.g. a peri-cue matrix): RW/TD could run, ANCCR not."""
    import dopa_rl.fit.neural

    def no_fit(*a, **k):
        raise AssertionError("an RW/TD fit ran before the ANCCR input check")

    monkeypatch.setattr(dopa_rl.fit.neural, "fit_dopamine", no_fit)
    table = tmp_path / "no_times.csv"
    anccr_table(n_sessions=1, n_trials=30).drop(columns=["cue_time", "outcome_time"]).to_csv(table, index=False)
    out = tmp_path / "cmp.json"
    code, text, err = _run(["compare", str(table), "--signal", "table", "--models", "rw-pavlovian,anccr",
                            "--json", str(out)], capsys)
    assert code == 2 and "model anccr needs trial column(s) cue_time, outcome_time" in err, err
    assert len(err.strip().splitlines()) == 1 and text == "" and not out.exists()
