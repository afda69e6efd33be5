"""What a new user hit on real and awkward lab files (issue 8, item 7): each case one test."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dopa_rl.cli import main
from dopa_rl.fit import fit
from dopa_rl.models import get_model, simulate_population, tasks

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_cli(capsys, *argv):
    code = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return code, out, err


def write(path, text):
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def bandit_csv(tmp_path_factory):
    """Two subjects x 200 trials of a two-armed bandit, choices numbered from 1 as many labs do."""
    pop = simulate_population(get_model("rw-softmax"), tasks.bandit_task(200), 2, 3, keep_latent=False)
    df = pop.trials[["subject", "trial", "choice", "reward"]].assign(choice=lambda d: d.choice + 1)
    path = tmp_path_factory.mktemp("lab") / "bandit.csv"
    df.to_csv(path, index=False)
    return path, df


def test_a_stray_choice_value_warns_and_options_are_reported(bandit_csv, tmp_path, capsys):
    path, df = bandit_csv
    typo = df.copy()
    typo.loc[56, "choice"] = 3                    # a typo in a two-option file: file row 57
    bad = tmp_path / "typo.csv"
    typo.to_csv(bad, index=False)
    out = tmp_path / "fit.json"
    code, stdout, err = run_cli(capsys, "fit", bad, "--model", "rw-softmax", "--choice-base", "1", "--restarts", "2",
                                "--json", out)
    assert code == 0, err
    warning = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "choice 3" in warning[0] and "row 57" in warning[0] and "1 of 400" in warning[0]
    assert "Options: 3, numbered 1..3" in stdout
    prov = json.loads(out.read_text())["provenance"]
    assert prov["n_options"] == 3 and prov["cli"]["choice_base"] == 1
    # with --n-options the value above it is refused, naming the row and the value as written
    code, _, err = run_cli(capsys, "fit", bad, "--model", "rw-softmax", "--choice-base", "1", "--n-options", "2",
                           "--json", tmp_path / "no.json")
    assert code == 2 and err.count("\n") == 1 and "choice 3 in row 57" in err and "out of range" in err
    assert not (tmp_path / "no.json").exists()
    # the clean file: no warning
    code, stdout, err = run_cli(capsys, "fit", path, "--model", "rw-softmax", "--choice-base", "1", "--restarts", "1")
    assert code == 0 and "warning" not in err and "Options: 2" in stdout


def test_a_column_mapped_twice_is_exit_2(bandit_csv, tmp_path, capsys):
    path, _ = bandit_csv
    out = tmp_path / "fit.json"
    code, _, err = run_cli(capsys, "fit", path, "--model", "rw-softmax", "--columns", "reward=gain,reward=loss",
                           "--json", out)
    assert code == 2 and err.count("\n") == 1 and "'reward' is mapped twice" in err and "pandas" in err
    assert not out.exists()


def test_a_missed_trial_is_skipped_whatever_its_outcome_cell_holds(tmp_path, capsys):
    rows = "subject,choice,reward\n" + "".join(f"1,{k % 2},{(k + 1) % 2}\n" for k in range(10))
    ref = write(tmp_path / "ref.csv", rows)
    missed = write(tmp_path / "missed.csv", rows + "1,,\n1,,omitted\n1,,NaN\n")
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert run_cli(capsys, "fit", ref, "--model", "rw-softmax", "--restarts", "2", "--json", a)[0] == 0
    code, _, err = run_cli(capsys, "fit", missed, "--model", "rw-softmax", "--restarts", "2", "--json", b)
    assert code == 0, err
    sa, sb = (json.loads(p.read_text())["subjects"][0] for p in (a, b))
    assert sb["n_trials"] == 13 and sb["n_obs"] == 10 and sb["loglik"] == pytest.approx(sa["loglik"], abs=1e-9)
    # a trial with a choice still needs its outcome
    code, _, err = run_cli(capsys, "fit", write(tmp_path / "c.csv", rows + "1,0,\n"), "--model", "rw-softmax")
    assert code == 2 and "every trial needs an outcome" in err


def test_rewards_far_from_order_one_warn(bandit_csv, tmp_path, capsys):
    _, df = bandit_csv
    path = tmp_path / "ul.csv"
    df.assign(reward=df.reward * 250.0).to_csv(path, index=False)   # uL of water
    code, _, err = run_cli(capsys, "fit", path, "--model", "rw-softmax", "--choice-base", "1", "--method", "map",
                           "--restarts", "1")
    assert code == 0 and "warning: rewards are up to 250" in err and "Reward scale" in err


def test_carry_over_keeps_values_across_sessions(tmp_path, capsys):
    df = pd.DataFrame({"subject": "a", "session": ["1", "1", "2", "2"], "trial": [0, 1, 0, 1],
                       "choice": [0, 0, 0, 0], "reward": [1.0, 1.0, 1.0, 1.0]})
    m = get_model("rw-softmax")
    fresh = fit(m, df, restarts=1)
    kept = fit(m, df, restarts=1, carry_over=True)
    x = np.array([[0.5, 1.0]])
    fresh.x, kept.x = x.copy(), x.copy()
    assert fresh.prediction_errors(df)["q_0"].tolist() == pytest.approx([0.0, 0.5, 0.0, 0.5])
    assert kept.prediction_errors(df)["q_0"].tolist() == pytest.approx([0.0, 0.5, 0.75, 0.875])
    assert kept.provenance["carry_over"] is True
    for name in ("rw-pavlovian", "td"):   # every model
        pav = pd.DataFrame({"subject": "a", "session": ["1"] * 6 + ["2"] * 6, "trial": list(range(6)) * 2,
                            "cue": "A", "reward": 1.0, "licks": [0, 1, 2, 3, 4, 5] * 2})
        mm = get_model(name)
        a, b = fit(mm, pav, restarts=1), fit(mm, pav, restarts=1, carry_over=True)
        xs = np.asarray(mm.check_params(mm.spec.defaults()))[None]
        a.x, b.x = xs.copy(), xs.copy()
        va, vb = a.prediction_errors(pav)["value"].to_numpy(), b.prediction_errors(pav)["value"].to_numpy()
        assert va[6] == pytest.approx(va[0]) and vb[6] > va[6]
    path = tmp_path / "s.csv"
    df.to_csv(path, index=False)
    out = tmp_path / "fit.json"
    assert run_cli(capsys, "fit", path, "--model", "rw-softmax", "--carry-over", "--restarts", "1", "--json", out)[0] == 0
    assert json.loads(out.read_text())["provenance"]["carry_over"] is True


def test_fractional_licks_are_exit_2_naming_the_column(tmp_path, capsys):
    path = write(tmp_path / "rates.csv", "subject,cue,reward,licks\n1,A,1,2.5\n1,A,1,3.25\n1,A,0,1\n")
    code, _, err = run_cli(capsys, "fit", path, "--model", "rw-pavlovian", "--restarts", "1")
    assert code == 2 and err.count("\n") == 1 and "column 'licks'" in err and "non-integer" in err and "counts" in err


def test_inspect_reports_only_what_exists(tmp_path, capsys):
    from dopa_rl.io import nwb
    from dopa_rl.io.synthetic import simulate_sessions

    path = simulate_sessions("pavlovian", "rw", out=tmp_path / "s.nwb", n_trials=20, progress=False)[0]
    analyses = nwb.inspect_nwb(path)["analyses"]
    assert set(analyses) == {"behavior", "photometry", "units"}
    assert not any("regression" in line for line in nwb.format_inspection(nwb.inspect_nwb(path)).splitlines())


def test_capitalised_headers_match_and_messages_name_only_the_files_columns(tmp_path, capsys):
    path = write(tmp_path / "caps.csv", "Subject,Choice,Reward\nm1,0,1\nm1,1,0\nm1,0,1\n")
    code, out, err = run_cli(capsys, "fit", path, "--model", "rw-softmax", "--restarts", "1")
    assert code == 0, err
    assert "m1" in out
    path = write(tmp_path / "nochoice.csv", "animal,lever_pressed,water\n1,0,1\n1,1,0\n")
    code, _, err = run_cli(capsys, "fit", path, "--model", "rw-softmax", "--columns", "subject=animal,reward=water")
    assert code == 2 and "no 'cue' or 'choice' column" in err
    present = err.split("[columns:")[1]
    assert "animal" in present and "lever_pressed" in present and "session" not in present and "trial" not in present


def test_no_subject_column_is_said_so(tmp_path, capsys):
    # two animals in one file, their column not mapped: trial numbers repeat because the subject is missing
    path = write(tmp_path / "two.csv", "mouse,trial,choice,reward\nA,0,0,1\nA,1,1,0\nB,0,0,1\nB,1,1,0\n")
    code, _, err = run_cli(capsys, "fit", path, "--model", "rw-softmax")
    assert code == 2 and err.count("\n") == 1
    assert "no subject column" in err and "--columns subject=" in err and "mouse" in err


def test_comment_lines_before_the_header_are_skipped(tmp_path, capsys):
    path = write(tmp_path / "bpod.csv", "# exported by Bpod r2.3\n# rig 4\nsubject,choice,reward\n1,0,1\n1,1,0\n1,0,1\n")
    code, out, err = run_cli(capsys, "fit", path, "--model", "rw-softmax", "--restarts", "1")
    assert code == 0, err
    only = write(tmp_path / "notes.csv", "# nothing here yet\n")
    code, _, err = run_cli(capsys, "fit", only, "--model", "rw-softmax")
    assert code == 2 and "only '#' comment lines" in err


def test_json_has_what_it_takes_to_reproduce_the_fit(bandit_csv, tmp_path, capsys):
    path, _ = bandit_csv
    out = tmp_path / "fit.json"
    code, _, err = run_cli(capsys, "fit", path, "--model", "rw-softmax", "--choice-base", "1", "--restarts", "3",
                           "--seed", "5", "--columns", "reward=reward", "--json", out)
    assert code == 0, err
    prov = json.loads(out.read_text())["provenance"]
    cli = prov["cli"]
    assert cli["inputs"] == [str(path)] and cli["columns"] == {"reward": "reward"} and cli["choice_base"] == 1
    assert cli["seed"] == 5 and cli["restarts"] == 3 and prov["versions"]["dopa_rl"] and prov["n_options"] == 2
    assert prov["data_fingerprint"].startswith("sha256:") and prov["model"] == "rw-softmax"


def test_prediction_errors_csv_numbers_choices_as_the_input(bandit_csv, tmp_path, capsys):
    path, df = bandit_csv
    pe = tmp_path / "pe.csv"
    code, _, err = run_cli(capsys, "fit", path, "--model", "rw-softmax", "--choice-base", "1", "--restarts", "1",
                           "--prediction-errors", pe)
    assert code == 0, err
    out = pd.read_csv(pe)
    assert out["choice"].tolist() == df["choice"].tolist()
    assert {"q_1", "q_2", "p_choice_1", "p_choice_2"} <= set(out.columns) and "q_0" not in out.columns


def test_jobs_zero_is_exit_2(bandit_csv, capsys):
    path, _ = bandit_csv
    code, _, err = run_cli(capsys, "fit", path, "--model", "rw-softmax", "--choice-base", "1", "--jobs", "0")
    assert code == 2 and "--jobs" in err and err.count("\n") == 1


def test_read_nwb_example_without_an_argument_says_how(tmp_path):
    r = subprocess.run([sys.executable, str(EXAMPLES / "read_nwb.py")], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "usage: python read_nwb.py SESSION.nwb" in r.stderr


def test_fit_bandit_example_says_why_it_prefers_a_model(tmp_path):
    r = subprocess.run([sys.executable, str(EXAMPLES / "fit_bandit.py"), "--out", str(tmp_path / "f.png")],
                       capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "kappa adds" in r.stdout and "AIC prefers" in r.stdout and "BIC" in r.stdout


def test_simulate_does_not_overwrite_files(tmp_path, capsys):
    out = tmp_path / "sim.csv"
    assert run_cli(capsys, "simulate", "--subjects", "1", "--trials", "20", "--out", out)[0] == 0
    before = out.read_bytes()
    code, _, err = run_cli(capsys, "simulate", "--subjects", "1", "--trials", "20", "--seed", "1", "--out", out)
    assert code == 2 and "exist" in err and "--overwrite" in err and out.read_bytes() == before
    assert run_cli(capsys, "simulate", "--subjects", "1", "--trials", "20", "--seed", "1", "--out", out,
                   "--overwrite")[0] == 0
    assert out.read_bytes() != before
    # the params file alone is protected too, and NWB folders
    (tmp_path / "other_params.csv").write_text("keep\n")
    code, _, err = run_cli(capsys, "simulate", "--trials", "20", "--out", tmp_path / "other.csv")
    assert code == 2 and not (tmp_path / "other.csv").exists()
    folder = tmp_path / "nwb"
    assert run_cli(capsys, "simulate", "--task", "pavlovian", "--trials", "20", "--out", folder)[0] == 0
    code, _, err = run_cli(capsys, "simulate", "--task", "pavlovian", "--trials", "20", "--out", folder)
    assert code == 2 and "sub-sim01_ses-01.nwb" in err
