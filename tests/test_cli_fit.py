"""The `dopa-rl` simulate / fit / models commands, and every kind of bad input (one line, exit 2)."""
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from dopa_rl.cli import main


def run_cli(capsys, *argv):
    code = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def sim_csv(tmp_path_factory):
    d = tmp_path_factory.mktemp("sim")
    path = d / "choices.csv"
    assert main(["simulate", "--task", "bandit", "--model", "rw-softmax", "--subjects", "3", "--trials", "150",
                 "--seed", "4", "--out", str(path)]) == 0
    return path


def test_simulate_writes_table_and_true_params(sim_csv):
    df = pd.read_csv(sim_csv)
    assert len(df) == 450 and set(df.subject) == {1, 2, 3}
    truth = pd.read_csv(sim_csv.with_name("choices_params.csv"))
    assert list(truth.columns) == ["subject", "alpha", "beta"]


def test_fit_json_shape_with_column_map_and_one_based_choices(sim_csv, tmp_path, capsys):
    df = pd.read_csv(sim_csv).rename(columns={"subject": "mouse_id", "choice": "lever", "reward": "outcome"})
    df["lever"] += 1
    lab = tmp_path / "lab.tsv"
    df[["mouse_id", "lever", "outcome"]].to_csv(lab, sep="\t", index=False)
    out = tmp_path / "fit.json"
    code, stdout, err = run_cli(capsys, "fit", lab, "--model", "rw-softmax", "--columns",
                                "subject=mouse_id,choice=lever,reward=outcome", "--choice-base", "1",
                                "--restarts", "3", "--json", out)
    assert code == 0, err
    data = json.loads(out.read_text())
    assert data["model"] == "rw-softmax" and data["method"] == "mle"
    subj = {s["subject"]: s for s in data["subjects"]}
    assert set(subj) == {"1", "2", "3"}
    for s in subj.values():
        assert s["n_trials"] == 150 and set(s["params"]) == {"alpha", "beta"}
        assert s["aic"] == pytest.approx(4 - 2 * s["loglik"])
    assert "alpha" in stdout and "Total" in stdout
    # same data through the standard names gives the same fit
    code, _, _ = run_cli(capsys, "fit", sim_csv, "--model", "rw-softmax", "--restarts", "3", "--json", tmp_path / "b.json")
    other = {s["subject"]: s for s in json.loads((tmp_path / "b.json").read_text())["subjects"]}
    assert other["2"]["loglik"] == pytest.approx(subj["2"]["loglik"], abs=1e-8)


def test_fit_writes_prediction_errors_and_csv(sim_csv, tmp_path, capsys):
    code, _, err = run_cli(capsys, "fit", sim_csv, "--model", "rw-softmax-sticky", "--method", "map", "--restarts", "2",
                           "--csv", tmp_path / "t.csv", "--prediction-errors", tmp_path / "pe.csv")
    assert code == 0, err
    assert len(pd.read_csv(tmp_path / "pe.csv")) == 450
    assert {"kappa", "se_kappa", "bic"} <= set(pd.read_csv(tmp_path / "t.csv").columns)


def test_models_lists_everything(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "models", "--json", tmp_path / "m.json")
    assert code == 0
    for name in ("rw-softmax", "rw-softmax-asym", "rw-softmax-sticky", "rw-softmax-lapse", "rw-pavlovian", "td"):
        assert name in out
    models = json.loads((tmp_path / "m.json").read_text(), parse_constant=lambda c: pytest.fail(f"not JSON: {c}"))
    assert any(m["name"] == "td" for m in models)
    slope = next(p for p in next(m for m in models if m["name"] == "td")["params"] if p["name"] == "lick_slope")
    assert slope["lower"] is None and slope["upper"] is None     # unbounded: null, not -Infinity


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


BAD_INPUTS = [
    # (file contents or None for a missing file, extra args, words the one-line message must contain)
    (None, [], ["no such file"]),
    ("subject,choice\n1,0\n1,1\n", [], ["no 'reward' column", "--columns reward=NAME"]),
    ("subject,choice,reward\n1,0,1\n1,1,lots\n", [], ["reward", "non-numeric", "row 2"]),
    ("subject,choice,reward\n1,0,1\n1,-1,0\n", [], ["choice out of range", "missed trial is an empty cell"]),
    ("subject,choice,reward\n1,0,1\n1,5,0\n", ["--n-options", "2"], ["choice 5", "out of range"]),
    ("", [], ["empty"]),
    ("subject,choice,reward\n", [], ["no rows"]),
    ("subject,choice,reward\n1,0,1\n1,1,0\n2,0,1\n", [], ["subject(s) 2", "fewer than 2"]),
    ("subject,choice,reward\n1,0,1\n1,1,0\n", ["--model", "rw-sofmax"], ["unknown model"]),
    ("subject,choice,reward\n1,0,1\n1,1,0\n", ["--columns", "choice=lever"], ["lever", "not found"]),
    ("subject,choice,reward\n1,0,1\n1,1,0\n", ["--columns", "choise=choice"], ["not a standard column"]),
    ("subject,choice,reward\n1,0,1\n1,1,0\n", ["--restarts", "0"], ["--restarts"]),
    ("subject,choice,reward\n1,0,\n1,1,0\n", [], ["reward", "missing"]),
    ("subject,choice,reward\n1,0,1\n1,1,inf\n1,0,0\n", [], ["reward", "infinite", "row 2"]),
    # 1-based choices without --choice-base 1 must not silently become a 3-option task with option 0 unused
    ("subject,choice,reward\n1,1,1\n1,2,0\n1,1,1\n", [], ["option 0 never", "--choice-base 1"]),
]


def test_non_numeric_reward_is_reported_once(tmp_path, capsys):
    # a decimal comma in a semicolon file: one problem, not also "missing (NaN)"
    path = write(tmp_path / "eu.csv", "subject;choice;reward\n1;0;1,5\n1;1;0\n1;0;1\n")
    code, _, err = run_cli(capsys, "fit", path, "--model", "rw-softmax")
    assert code == 2 and "non-numeric" in err and "'1,5'" in err and "missing" not in err


@pytest.mark.parametrize("contents,extra,words", BAD_INPUTS)
def test_bad_input_one_line_exit_2(tmp_path, capsys, contents, extra, words):
    path = tmp_path / "data.csv"
    if contents is not None:
        write(path, contents)
    before = hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None
    out_json = tmp_path / "out.json"
    args = ["fit", path, "--model", "rw-softmax", "--json", out_json] + extra
    if "--model" in extra:
        args = ["fit", path, "--json", out_json] + extra
    code, out, err = run_cli(capsys, *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], lines[0]
    assert not out_json.exists()            # nothing written
    if before:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == before   # input untouched


def test_simulate_true_parameters_name_every_parameter(tmp_path):
    out = tmp_path / "s.csv"
    assert main(["simulate", "--model", "rw-softmax-sticky", "--params", "alpha=0.3", "--subjects", "2",
                 "--trials", "20", "--out", str(out)]) == 0
    truth = pd.read_csv(tmp_path / "s_params.csv")
    assert list(truth.columns) == ["subject", "alpha", "beta", "kappa"]
    assert truth["alpha"].tolist() == [0.3, 0.3] and truth["beta"].tolist() == [3.0, 3.0]   # beta's default


def test_bad_simulate_arguments(tmp_path, capsys):
    code, _, err = run_cli(capsys, "simulate", "--params", "alpha=x", "--out", tmp_path / "a.csv")
    assert code == 2 and "NAME=NUMBER" in err
    code, _, err = run_cli(capsys, "simulate", "--task", "blocking", "--model", "rw-softmax", "--out", tmp_path / "a.csv")
    assert code == 2 and "choice model" in err
    assert not (tmp_path / "a.csv").exists()


def test_console_script_exit_code_and_help():
    exe = Path(sys.executable).with_name("dopa-rl")
    r = subprocess.run([str(exe), "fit", "/nonexistent.csv", "--model", "rw-softmax"], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    for cmd in ("fit", "simulate", "models", "demo"):
        r = subprocess.run([str(exe), cmd, "--help"], capture_output=True, text=True)
        assert r.returncode == 0 and "Example" in r.stdout
        if cmd == "fit":   # --jobs sets numba threads (fit(n_jobs=...)), not processes
            assert "threads" in " ".join(r.stdout[r.stdout.index("--jobs N "):].split()[:6])


@pytest.mark.parametrize("option", ["--json", "--csv", "--prediction-errors"])
def test_output_in_missing_folder_is_exit_2_and_writes_nothing(sim_csv, tmp_path, capsys, option):
    ok = tmp_path / "ok.json"
    target = tmp_path / "no_such_folder" / "out.file"
    extra = [] if option == "--json" else ["--json", ok]
    code, out, err = run_cli(capsys, "fit", sim_csv, "--model", "rw-softmax", "--restarts", "1", option, target, *extra)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and option in lines[0] and "does not exist" in lines[0], err
    assert not target.parent.exists() and not ok.exists() and out == ""
    code, _, err = run_cli(capsys, "models", "--json", target)
    assert code == 2 and not target.parent.exists()


def test_folder_of_session_files_without_session_column_keeps_sessions_apart(sim_csv, tmp_path, capsys):
    """One CSV per session (subject column, no session/trial columns): each file is its own session, so
    the fit equals the fit of the same trials with an explicit session column (not two interleaved ones)."""
    df = pd.read_csv(sim_csv)
    one = df[df.subject == 2].reset_index(drop=True)
    folder = tmp_path / "sessions"
    folder.mkdir()
    for k in range(2):
        one.iloc[k * 75:(k + 1) * 75][["subject", "choice", "reward"]].to_csv(folder / f"day{k + 1}.csv", index=False)
    ref = one[["subject", "choice", "reward"]].assign(session=[1] * 75 + [2] * 75)
    ref.to_csv(tmp_path / "ref.csv", index=False)
    code, _, err = run_cli(capsys, "fit", folder, "--model", "rw-softmax", "--restarts", "2", "--json", tmp_path / "a.json")
    assert code == 0, err
    code, _, err = run_cli(capsys, "fit", tmp_path / "ref.csv", "--model", "rw-softmax", "--restarts", "2",
                           "--json", tmp_path / "b.json")
    assert code == 0, err
    a, b = (json.loads((tmp_path / f"{n}.json").read_text())["subjects"][0] for n in "ab")
    assert a["n_trials"] == 150 and a["loglik"] == pytest.approx(b["loglik"], abs=1e-9)


def test_repeated_trial_numbers_are_exit_2(tmp_path, capsys):
    # two sessions in one file, trial numbers restarting, no session column: the order is ambiguous
    path = write(tmp_path / "d.csv", "subject,trial,choice,reward\n1,0,0,1\n1,1,1,0\n1,0,1,1\n1,1,0,0\n")
    code, _, err = run_cli(capsys, "fit", path, "--model", "rw-softmax", "--restarts", "1")
    assert code == 2 and "trial numbers repeat" in err and "session" in err and err.count("\n") == 1
    # the same file given twice
    ok = write(tmp_path / "e.csv", "subject,session,trial,choice,reward\n1,1,0,0,1\n1,1,1,1,0\n")
    code, _, err = run_cli(capsys, "fit", ok, ok, "--model", "rw-softmax", "--restarts", "1")
    assert code == 2 and "trial numbers repeat" in err


def test_large_utf8_table_with_a_character_across_the_sniffing_sample(tmp_path, capsys):
    # the delimiter sniffer reads the first 64 KiB; a two-byte character cut in half there is still text
    rows = ["subject,choice,reward,note"] + [f"m{i % 2},{i % 2},1.0,x" for i in range(8000)]
    k = 5000                                  # the row that will straddle byte 65536
    pad = 65535 - len(("\n".join(rows[:k]) + "\n").encode())
    assert pad > 20
    rows[k] = "m0,0,1.0," + "y" * (pad - len("m0,0,1.0,")) + "µl"
    data = ("\n".join(rows) + "\n").encode()
    assert data[65535:65537] == "µ".encode()
    path = tmp_path / "big.csv"
    path.write_bytes(data)
    code, _, err = run_cli(capsys, "fit", path, "--model", "rw-softmax", "--restarts", "1")
    assert code == 0, err


def test_stdout_closed_by_the_reader_is_quiet_and_outputs_are_written(sim_csv, tmp_path):
    # `dopa-rl fit ... --json out.json | head -1`: the reader goes away; no "internal error", the JSON is there
    exe = Path(sys.executable).with_name("dopa-rl")
    out = tmp_path / "fit.json"
    p = subprocess.Popen([str(exe), "fit", str(sim_csv), "--model", "rw-softmax", "--restarts", "1", "--json", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait() == 141 and err == "", err
    assert json.loads(out.read_text())["model"] == "rw-softmax"


def test_windows_code_page_csv_is_read_and_binary_is_refused(tmp_path, capsys):
    # Excel on Windows saves CSV in cp1252: "µl" is byte 0xB5, not UTF-8
    path = tmp_path / "excel.csv"
    path.write_bytes("souris,choice,volume µl\r\nsouris é,0,4\r\nsouris é,1,0\r\nsouris é,0,4\r\n".encode("cp1252"))
    out = tmp_path / "fit.json"
    code, _, err = run_cli(capsys, "fit", path, "--model", "rw-softmax", "--restarts", "1",
                           "--columns", "subject=souris,reward=volume µl", "--json", out)
    assert code == 0, err
    assert json.loads(out.read_text())["subjects"][0]["subject"] == "souris é"
    utf16 = tmp_path / "unicode.txt"   # Excel "Unicode text": UTF-16 LE with a BOM, tab-separated, CRLF
    utf16.write_bytes("souris\tchoice\tvolume µl\r\nsouris é\t0\t4\r\nsouris é\t1\t0\r\n".encode("utf-16"))
    code, _, err = run_cli(capsys, "fit", utf16, "--model", "rw-softmax", "--restarts", "1",
                           "--columns", "subject=souris,reward=volume µl", "--json", out)
    assert code == 0, err
    assert json.loads(out.read_text())["subjects"][0]["subject"] == "souris é"
    binary = tmp_path / "session.h5"
    binary.write_bytes(b"\x89HDF\r\n\x1a\n\x00\x00\x00\x00\xff\xfe" * 10)
    code, _, err = run_cli(capsys, "fit", binary, "--model", "rw-softmax")
    assert code == 2 and "binary" in err and err.count("\n") == 1


def test_option_zero_never_chosen_is_fine_when_n_options_is_given(tmp_path, capsys):
    path = write(tmp_path / "d.csv", "subject,choice,reward\n1,1,1\n1,2,0\n1,1,1\n")
    code, _, err = run_cli(capsys, "fit", path, "--model", "rw-softmax", "--restarts", "1", "--n-options", "3")
    assert code == 0, err


def test_demo_out_naming_a_file_is_exit_2(tmp_path, capsys):
    target = write(tmp_path / "notes.txt", "keep me\n")
    code, _, err = run_cli(capsys, "demo", "--out", target, "--trials", "20")
    assert code == 2 and "--out" in err and err.count("\n") == 1
    assert target.read_text() == "keep me\n"


def test_folder_with_a_non_behavior_table_names_that_file(tmp_path, capsys):
    # `dopa-rl simulate --out data/choices.csv` also writes data/choices_params.csv; fitting data/ must say so
    folder = tmp_path / "data"
    assert main(["simulate", "--subjects", "2", "--trials", "30", "--out", str(folder / "choices.csv")]) == 0
    capsys.readouterr()
    code, _, err = run_cli(capsys, "fit", folder, "--model", "rw-softmax", "--restarts", "1")
    assert code == 2 and err.count("\n") == 1
    assert "choices_params.csv: no 'reward' column" in err and "no 'cue' or 'choice' column" in err
    assert "normalize_behavior" not in err


def test_hidden_files_in_a_folder_are_skipped(sim_csv, tmp_path, capsys):
    folder = tmp_path / "usb"
    folder.mkdir()
    (folder / "choices.csv").write_bytes(sim_csv.read_bytes())
    (folder / "._choices.csv").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ")  # AppleDouble
    code, out, err = run_cli(capsys, "fit", folder, "--model", "rw-softmax", "--restarts", "1")
    assert code == 0, err
    assert "Subjects: 3" in out


def test_outputs_never_overwrite_the_input_or_each_other(sim_csv, tmp_path, capsys):
    data = tmp_path / "mine.csv"
    data.write_bytes(sim_csv.read_bytes())
    before = data.read_bytes()
    code, _, err = run_cli(capsys, "fit", data, "--model", "rw-softmax", "--restarts", "1", "--csv", data)
    assert code == 2 and "--csv" in err and "input file" in err and err.count("\n") == 1
    assert data.read_bytes() == before
    out = tmp_path / "out.txt"
    code, _, err = run_cli(capsys, "fit", data, "--model", "rw-softmax", "--restarts", "1", "--json", out, "--csv", out)
    assert code == 2 and "--json" in err and not out.exists()


def test_trailing_rows_of_empty_cells_are_not_trials(tmp_path, capsys):
    path = write(tmp_path / "excel.csv", "subject,choice,reward\r\n1,0,1\r\n1,1,0\r\n1,0,1\r\n,,\r\n,,\r\n")
    code, out, err = run_cli(capsys, "fit", path, "--model", "rw-softmax", "--restarts", "1")
    assert code == 0, err
    assert "Subjects: 1" in out
    inner = write(tmp_path / "gap.csv", "subject,choice,reward\n1,0,1\n,,\n1,0,1\n")   # a gap inside is still reported
    code, _, err = run_cli(capsys, "fit", inner, "--model", "rw-softmax", "--restarts", "1")
    assert code == 2 and "row 2" in err


def test_ids_are_text_leading_zeros_kept(tmp_path, capsys):
    path = write(tmp_path / "ids.csv", "mouse,choice,reward\n007,0,1\n007,1,0\n7,0,1\n7,1,1\n")
    out = tmp_path / "fit.json"
    code, _, err = run_cli(capsys, "fit", path, "--model", "rw-softmax", "--restarts", "1",
                           "--columns", "subject=mouse", "--json", out)
    assert code == 0, err
    assert [s["subject"] for s in json.loads(out.read_text())["subjects"]] == ["007", "7"]
