"""Done means (issue 8): a user model written in a file outside the package, with public imports only, named
on the command line as FILE.py:NAME, fits a CSV and passes dopa_rl.testing.check_model."""
import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import dopa_rl
from dopa_rl.cli import main
from dopa_rl.models import get_model
from dopa_rl.testing import check_model

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "rw_forgetting.py"
SRC = str(ROOT / "src")


def _public_imports_only(path: Path) -> list[str]:
    """Every dopa_rl name the file imports; fails on private modules or names."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dopa_rl"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                assert not any(part.startswith("_") for part in full.split(".")), full
                assert node.module in ("dopa_rl.models", "dopa_rl.fit", "dopa_rl.testing"), full
                names.append(full)
        elif isinstance(node, ast.Import):
            assert not any(a.name.startswith("dopa_rl.") and "._" in a.name for a in node.names)
    return names


@pytest.fixture
def user_file(tmp_path):
    """The example model copied into a folder of the user's, far from the package."""
    folder = tmp_path / "lab_models"
    folder.mkdir()
    path = folder / "forgetting.py"
    shutil.copy(EXAMPLE, path)
    assert Path(dopa_rl.__file__).parent not in path.parents
    return path


def test_user_file_on_the_command_line_fits_a_csv_and_passes_check_model(user_file, tmp_path, capsys):
    assert _public_imports_only(user_file) == ["dopa_rl.models.Param", "dopa_rl.models.choice_model",
                                               "dopa_rl.fit.fit", "dopa_rl.models.tasks",
                                               "dopa_rl.testing.check_model"]
    spec = f"{user_file}:MODEL"
    csv = tmp_path / "choices.csv"
    assert main(["simulate", "--task", "bandit", "--model", spec, "--subjects", "4", "--trials", "300",
                 "--seed", "3", "--out", str(csv)]) == 0
    truth = pd.read_csv(tmp_path / "choices_params.csv")
    assert list(truth.columns) == ["subject", "alpha", "phi", "beta"]
    out = tmp_path / "fit.json"
    assert main(["fit", str(csv), "--model", spec, "--restarts", "4", "--json", str(out),
                 "--prediction-errors", str(tmp_path / "pe.csv")]) == 0
    assert "rw-forgetting" in capsys.readouterr().out
    fitted = json.loads(out.read_text())
    assert fitted["model"] == "rw-forgetting"
    alphas = [s["params"]["alpha"] for s in fitted["subjects"]]
    assert np.corrcoef(alphas, truth["alpha"])[0, 1] > 0.5
    pe = pd.read_csv(tmp_path / "pe.csv")
    assert {"rpe", "q_0", "q_1"} <= set(pe.columns) and len(pe) == 1200
    # the model named the same way passes the public conformance check
    report = check_model(get_model(spec))
    assert report.recovery["phi"] >= 0.5 and len(report.seconds) == 9


def test_the_forgetting_rule_does_what_it_says(user_file):
    m = get_model(f"{user_file}:MODEL")
    q = np.array([0.5, 0.8, -0.4])
    m.update(q, 1, 1.0, np.array([0.25, 0.5]))
    np.testing.assert_allclose(q, [0.25, 0.8 + 0.25 * 0.2, -0.2])


@pytest.mark.parametrize("spec,words", [("missing.py:MODEL", "file missing.py not found"),
                                        ("{file}:NOPE", "has no model 'NOPE'; it defines: MODEL"),
                                        ("no_such_lab_pkg.models:MODEL", "no module named 'no_such_lab_pkg'")])
def test_a_missing_file_module_or_name_is_exit_2_with_one_line(user_file, tmp_path, spec, words):
    csv = tmp_path / "c.csv"
    csv.write_text("subject,choice,reward\n1,0,1\n1,1,0\n1,0,1\n")
    spec = spec.format(file=user_file)
    for args in (["fit", str(csv), "--model", spec], ["simulate", "--model", spec, "--out", str(tmp_path / "s.csv")],
                 ["models", spec]):
        r = subprocess.run([sys.executable, "-m", "dopa_rl", *args], capture_output=True, text=True, cwd=tmp_path,
                           env={"PYTHONPATH": SRC})
        assert r.returncode == 2, r.stderr
        assert r.stderr.strip().count("\n") == 0 and words in r.stderr, r.stderr
    assert not (tmp_path / "s.csv").exists()


def test_the_example_runs_as_a_script(tmp_path):
    r = subprocess.run([sys.executable, str(EXAMPLE), "--subjects", "6", "--trials", "300"], capture_output=True,
                       text=True, cwd=tmp_path, timeout=600, env={"PYTHONPATH": SRC})
    assert r.returncode == 0, r.stderr
    assert "rw-forgetting: 9 checks passed" in r.stdout
    assert "alpha  recovered" in r.stdout
