"""`dopa-rl fit --method hier / --restarts auto / --scheduler`: JSON shape, identical results on a dask
LocalCluster, and bad input (one line, exit 2, nothing written)."""
import json

import numpy as np
import pandas as pd
import pytest

from dopa_rl.cli import main


def run_cli(capsys, *argv):
    code = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def study_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("pop") / "study.csv"
    assert main(["simulate", "--task", "bandit", "--model", "rw-softmax", "--subjects", "8", "--trials", "80",
                 "--seed", "2", "--out", str(path)]) == 0
    return path


def test_fit_hier_json_adds_population_and_ibic(study_csv, tmp_path, capsys):
    out = tmp_path / "hier.json"
    code, text, err = run_cli(capsys, "fit", study_csv, "--model", "rw-softmax", "--method", "hier",
                              "--restarts", "3", "--json", out)
    assert code == 0, err
    d = json.loads(out.read_text())
    assert d["method"] == "hier" and len(d["subjects"]) == 8 and d["ibic"] > 0
    assert set(d["population"]["mean"]) == set(d["population"]["sd"]) == {"alpha", "beta"}
    assert "Population" in text and "iBIC" in text


def test_restarts_auto_from_the_cli(study_csv, tmp_path, capsys):
    out = tmp_path / "auto.json"
    code, _, err = run_cli(capsys, "fit", study_csv, "--model", "rw-softmax", "--restarts", "auto", "--json", out)
    assert code == 0, err
    d = json.loads(out.read_text())
    assert d["meta"]["restarts"] == "auto" and all(s["restarts_agree"] for s in d["subjects"])


def test_scheduler_local2_identical_to_serial(study_csv, tmp_path, capsys):
    serial, dask = tmp_path / "serial.json", tmp_path / "dask.json"
    base = ["fit", study_csv, "--model", "rw-softmax", "--method", "hier", "--restarts", "4", "--seed", "3"]
    assert run_cli(capsys, *base, "--json", serial)[0] == 0
    code, _, err = run_cli(capsys, *base, "--scheduler", "local:2", "--json", dask)
    assert code == 0, err
    a, b = json.loads(serial.read_text()), json.loads(dask.read_text())
    a.pop("meta"), b.pop("meta")
    a["provenance"].pop("cli", None), b["provenance"].pop("cli", None)  # the command lines differ, by design
    assert a == b


@pytest.mark.parametrize("extra, expect", [
    (["--restarts", "lots"], "--restarts"),
    (["--restarts", "0"], "--restarts"),
    (["--scheduler", "local:0"], "local:N"),
    (["--scheduler", "no such place"], "--scheduler"),
    (["--method", "hier", "--em-max-iter", "0"], "--em-max-iter"),
])
def test_bad_population_options(study_csv, tmp_path, capsys, extra, expect):
    out = tmp_path / "x.json"
    code, text, err = run_cli(capsys, "fit", study_csv, "--model", "rw-softmax", "--json", out, *extra)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and expect in errors[0] and not out.exists()


def test_scheduler_address_of_a_running_cluster(study_csv):
    from distributed import LocalCluster

    from dopa_rl.fit import fit
    from dopa_rl.fit.schedulers import get_scheduler
    from dopa_rl.models import get_model

    m = get_model("rw-softmax")
    df = pd.read_csv(study_csv)
    serial = fit(m, df, restarts=3, seed=5)
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None, silence_logs=40) as cluster:
        with get_scheduler(cluster.scheduler_address) as scheduler:
            assert scheduler.n_workers == 2
            remote = fit(m, df, restarts=3, seed=5, scheduler=scheduler)
    assert np.array_equal(serial.x, remote.x) and np.array_equal(serial.loglik_, remote.loglik_)
