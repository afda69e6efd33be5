"""``dopa-rl photometry`` and ``dopa-rl regress`` end to end: JSON keys, real recordings, bad input."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from _neural_support import TRUE_ALPHA
from _nwb_support import hand_session, sha256
from dopa_rl.cli import main
from dopa_rl.io.nwb_write import write_session

AKAM = "akam_dlight_nac/m53_NAc_L-2019-11-24-093939_dLight.nwb"
JEONG = "jeong2022_dlight_cs/binary.csv"


def _run(argv, capsys):
    code = main(argv)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_photometry_on_synthetic_session(rw_sessions, tmp_path, capsys):
    out = tmp_path / "p.json"
    code, text, _ = _run(["photometry", str(rw_sessions[0]), "--json", str(out), "--plots", str(tmp_path / "figs")],
                         capsys)
    assert code == 0, text
    s = json.loads(out.read_text())
    assert {"series", "rate", "control_fit", "n_events", "peak_z", "peak_time"} <= set(s)
    assert set(s["control_fit"]) >= {"slope", "intercept", "method"} and s["control_fit"]["method"] == "ols"
    # the first cue comes 0.5 s into the recording: its -1 s window starts before it
    assert s["event"] == "cue_time" and s["n_events"] == 299 and s["excluded"] == {"outside": 1} and s["rate"] == 100.0
    assert s["peak_z"] > 0.5 and 0 < s["peak_time"] < 1.0
    assert [st["step"] for st in s["steps"]] == ["lowpass", "detrend", "control_fit", "dff", "zscore"]
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == ["event_aligned_mean.png", "trial_heatmap.png",
                                                                 "trial_type_bands.png"]


def test_photometry_on_the_real_dlight_recording(real_data, tmp_path, capsys):
    """README reference (Akam's pipeline): OLS slope of dLight on tdTomato 0.232; peri-cue z peak ~3 SD within 1 s."""
    path = real_data / AKAM
    before = sha256(path)
    out = tmp_path / "akam.json"
    code, text, err = _run(["photometry", str(path), "--event", "reward_cue", "--json", str(out)], capsys)
    assert code == 0, err
    s = json.loads(out.read_text())
    assert s["n_events"] == 137 and s["rate"] == 130.0 and s["series"] == "acquisition/raw_photometry"
    assert s["control_fit"]["slope"] == pytest.approx(0.232, abs=0.005)
    assert 2.5 < s["peak_z"] < 3.3 and 0 < s["peak_time"] <= 1.0
    assert s["response"]["mean"] > 1.0                       # the cue response, baseline-subtracted, in z
    assert "137 'reward_cue' events" in text
    assert sha256(path) == before


def test_regress_json_on_synthetic_photometry(rw_sessions, tmp_path, capsys):
    out = tmp_path / "r.json"
    code, text, err = _run(["regress", *map(str, rw_sessions), "--model", "rw-pavlovian", "--signal", "photometry",
                            "--json", str(out), "--plots", str(tmp_path / "figs"), "--restarts", "3"], capsys)
    assert code == 0, err
    s = json.loads(out.read_text())
    assert s["model"] == "rw-pavlovian" and s["signal"] == "photometry" and s["fit"] == "behavior"
    assert set(s["params"]) == {"alpha", "lick_intercept", "lick_slope"}
    ols = [r for r in s["regressions"] if r["model"] == "ols"]
    assert len(ols) == 4 and all(set(r) >= {"event", "unit", "coef", "pvalue", "n"} for r in ols)
    assert all(set(r["coef"]) >= {"const", "rpe"} and "rpe" in r["pvalue"] and r["unit"] is None for r in ols)
    assert all(r["coef"]["rpe"] > 0 and r["pvalue"]["rpe"] < 1e-3 for r in ols if r["event"] == "outcome")
    assert {r["model"] for r in s["regressions"]} == {"ols", "mixedlm"}
    figs = {p.name for p in (tmp_path / "figs").iterdir()}
    assert {"response_vs_rpe.png", "cue_early_late.png", "outcome_rewarded_omitted.png", "cue_heatmap.png"} <= figs


def test_regress_units_neural_fit(rw_sessions, tmp_path, capsys):
    out = tmp_path / "u.json"
    code, _, err = _run(["regress", str(rw_sessions[0]), "--model", "rw-pavlovian", "--signal", "units",
                         "--fit", "neural", "--units", "auto", "--json", str(out), "--plots", str(tmp_path)], capsys)
    assert code == 0, err
    s = json.loads(out.read_text())
    assert s["fit"] == "neural" and set(s["params"]) == {"alpha"}
    assert abs(s["params"]["alpha"] - TRUE_ALPHA) < 0.1
    units = {r["unit"] for r in s["regressions"]}
    assert units and None not in units
    assert (tmp_path / "psth_outcome_heatmaps.png").exists()


def test_regress_table_with_matrix_on_real_jeong(real_data, tmp_path, capsys):
    """CS+ (cs 0, sucrose) vs CS- trials as a table with a peri-cue matrix: the cue response rises with the cue RPE."""
    df = pd.read_csv(real_data / JEONG).copy()
    table = tmp_path / "jeong.csv"
    # the file numbers CS+ trials only (CS- rows have no trial number): trials are taken in row order here
    df = df.drop(columns=["trial"]).assign(reward=(df["cs"] == 0).astype(float),
                                           cue=np.where(df["cs"] == 0, "CSplus", "CSminus"))
    df.drop(columns=["cs"]).to_csv(table, index=False)
    out = tmp_path / "j.json"
    code, _, err = _run(["regress", str(table), "--model", "rw-pavlovian", "--signal", "table", "--matrix",
                         "photometry", "--rate", "25", "--event-at", "2.0", "--columns", "subject=id",
                         "--params", "alpha=0.1", "--window", "0", "1", "--baseline", "-1", "0",
                         "--json", str(out), "--plots", str(tmp_path / "figs")], capsys)
    assert code == 0, err
    s = json.loads(out.read_text())
    cue = [r for r in s["regressions"] if r["event"] == "cue" and r["model"] == "ols"]
    assert len(cue) == 7
    assert sum(r["coef"]["rpe"] > 0 for r in cue) >= 6
    assert {p.name for p in (tmp_path / "figs").iterdir()} == {"matrix_heatmap.png", "matrix_by_cue.png",
                                                               "matrix_early_late.png", "response_vs_rpe.png"}
    mixed = next(r for r in s["regressions"] if r["model"] == "mixedlm" and r["event"] == "cue")
    assert mixed["coef"]["rpe"] > 0 and mixed["pvalue"]["rpe"] < 1e-3


def _bad_session(tmp_path, name, **phot_changes):
    data = hand_session(20)
    data.photometry = [dataclasses.replace(data.photometry[0], **phot_changes)]
    return write_session(tmp_path / f"{name}.nwb", data)


@pytest.mark.parametrize("case,match", [
    ("constant", "constant"),
    ("short", "needs .* use a shorter --window"),
    ("outside", "none of the 20 'cue_time' events"),
    ("no_event", "no events table or trials column named 'lever'"),
])
def test_photometry_bad_input_exit_2_nothing_written(tmp_path, capsys, case, match):
    if case == "constant":
        t = np.arange(6000) / 50.0
        path = _bad_session(tmp_path, case, timestamps=t, signal=np.full(t.size, 1.5), control=np.ones(t.size))
    elif case == "short":
        t = np.arange(100) / 50.0
        path = _bad_session(tmp_path, case, timestamps=t, signal=1 + np.sin(t), control=1 + np.cos(t))
    else:
        t = np.arange(1000) / 50.0 + 500.0                     # recording after every trial
        path = _bad_session(tmp_path, case, timestamps=t, signal=1 + 0.1 * np.sin(t), control=1 + 0.1 * np.cos(t),
                            rate=None)
    out = tmp_path / "o.json"
    argv = ["photometry", str(path), "--json", str(out), "--plots", str(tmp_path / "figs"), "--detrend", "none"]
    if case == "no_event":
        argv += ["--event", "lever"]
    code, text, err = _run(argv, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and pytest.importorskip("re").search(match, err), err
    assert not out.exists() and not (tmp_path / "figs").exists()


def test_some_events_outside_are_excluded_and_counted(tmp_path, capsys):
    t = np.arange(int(60 * 50)) / 50.0                         # 60 s: only the first trials fit
    path = _bad_session(tmp_path, "partial", timestamps=t, signal=1 + 0.05 * np.sin(t), control=1 + 0.05 * np.cos(t))
    out = tmp_path / "o.json"
    code, text, err = _run(["photometry", str(path), "--json", str(out), "--detrend", "none"], capsys)
    assert code == 0, err
    s = json.loads(out.read_text())
    assert s["n_events"] + s["excluded"]["outside"] == 20 and s["excluded"]["outside"] > 0
    assert any("outside the recording" in w for w in s["warnings"])


def test_regress_bad_input(rw_sessions, tmp_path, capsys):
    out = tmp_path / "r.json"
    for argv, match in (
        (["--signal", "table"], "--signal table reads CSV/TSV"),
        (["--signal", "units", "--units", "9"], "--units 9 not in the file"),
        (["--signal", "photometry", "--params", "beta=2"], "--params 'beta=2'"),
        (["--signal", "photometry", "--window", "1", "0"], "end must come after"),
    ):
        code, _, err = _run(["regress", str(rw_sessions[0]), "--model", "rw-pavlovian", *argv, "--json", str(out)],
                            capsys)
        assert code == 2 and match in err and len(err.strip().splitlines()) == 1, err
        assert not out.exists()


def test_messy_nwb_trials_are_counted_in_the_output(tmp_path, capsys):
    """Uncued (free) rewards, a missing reward and a missing outcome time, in an NWB trials table."""
    from dopa_rl.io.synthetic import simulate_session

    data = simulate_session("pavlovian", "rw", params={"alpha": 0.2}, seed=4, n_trials=120)
    tr = data.trials.copy()
    tr["cue"] = tr["cue"].astype(object)
    tr.loc[[10, 40], "cue"] = ""                     # free rewards: empty cue ...
    tr.loc[70, "cue_time"] = np.nan                  # ... or no cue time
    tr.loc[20, "reward"] = np.nan
    tr.loc[30, "outcome_time"] = np.nan
    data.trials = tr
    path = write_session(tmp_path / "messy.nwb", data)
    out = tmp_path / "m.json"
    code, text, err = _run(["regress", str(path), "--model", "rw-pavlovian", "--signal", "photometry", "--fit",
                            "neural", "--json", str(out)], capsys)
    assert code == 0, err
    s = json.loads(out.read_text())
    assert s["excluded"] == {"uncued": 3, "missing_reward": 1, "missing_outcome_time": 1}
    assert s["n_trials"] == 118
    cue = next(r for r in s["regressions"] if r["event"] == "cue")
    assert cue["n"] == 118 - 1                        # the trial without a cue time has no cue response
    assert "excluded: uncued 3, missing_reward 1, missing_outcome_time 1" in text


def test_regress_same_session_twice_is_refused(rw_sessions, tmp_path, capsys):
    code, _, err = _run(["regress", str(rw_sessions[0]), str(rw_sessions[0]), "--model", "rw-pavlovian",
                         "--signal", "photometry", "--params", "alpha=0.2"], capsys)
    assert code == 2 and "trial numbers repeat" in err


def test_unit_without_spikes_is_warned_about_and_counted(tmp_path, capsys):
    data = hand_session(40)
    data.units = {0: data.units[0], 1: np.array([])}
    data.unit_properties = None
    path = write_session(tmp_path / "silent.nwb", data)
    out = tmp_path / "s.json"
    with pytest.warns(UserWarning, match="unit.* 1 .*no spikes"):
        code, _, err = _run(["regress", str(path), "--model", "rw-pavlovian", "--signal", "units", "--params",
                             "alpha=0.2", "--json", str(out)], capsys)
    assert code == 0, err
    s = json.loads(out.read_text())
    assert s["excluded"] == {"silent_units": 1}
    silent = [r for r in s["regressions"] if r["unit"] == "1"]
    assert silent and all(r["coef"]["rpe"] is None and "does not vary" in r["note"] for r in silent)


def test_regress_table_with_mapped_dopamine_columns(tmp_path, capsys):
    """A lab's CSV with one row per trial and its own names for the cue and outcome responses."""
    from dopa_rl.io.synthetic import simulate_session
    from dopa_rl.neural.pipeline import PhotometryPipeline
    from dopa_rl.neural.tables import responses_from_trace

    data = simulate_session("pavlovian", "rw", params={"alpha": 0.3}, seed=9, n_trials=200)
    proc = PhotometryPipeline().run(data.photometry[0])
    wide, _ = responses_from_trace(proc.z, proc.rate, proc.t0, data.trials)
    table = tmp_path / "lab.tsv"
    wide.rename(columns={"dopamine_cue": "da_cue", "dopamine_outcome": "da_rew", "subject": "mouse"}) \
        .to_csv(table, sep="\t", index=False)
    out = tmp_path / "t.json"
    code, _, err = _run(["regress", str(table), "--model", "rw-pavlovian", "--signal", "table", "--fit", "joint",
                         "--columns", "subject=mouse,dopamine_cue=da_cue,dopamine_outcome=da_rew",
                         "--json", str(out), "--restarts", "3"], capsys)
    assert code == 0, err
    s = json.loads(out.read_text())
    assert s["fit"] == "joint" and abs(s["params"]["alpha"] - 0.3) < 0.1
    assert all(r["coef"]["rpe"] > 0 and r["pvalue"]["rpe"] < 1e-3 for r in s["regressions"])
