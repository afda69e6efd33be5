"""Issue 15 item 5, the smaller things a new lab member hit: --lowpass above Nyquist, the EM progress bar, raw
warnings in compare, and regress warning about subjects at a bound as fit does."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from _nwb_support import hand_session
from dopa_rl.cli import main
from dopa_rl.io import nwb


def run_cli(capsys, *argv):
    code = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def session_50hz(tmp_path_factory):
    return nwb.write_session(tmp_path_factory.mktemp("s") / "s.nwb", hand_session(n_trials=20, rate=50.0))


@pytest.fixture(scope="module")
def choices(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "choices.csv"
    assert main(["simulate", "--task", "bandit", "--model", "rw-softmax", "--subjects", "3", "--trials", "80",
                 "--out", str(path)]) == 0
    return path


def test_lowpass_above_nyquist_is_exit_2(session_50hz, capsys):
    code, _, err = run_cli(capsys, "photometry", session_50hz, "--lowpass", "30")
    assert code == 2 and "Nyquist frequency 25 Hz" in err and "--lowpass 0" in err and err.count("\n") == 1, err
    code, _, err = run_cli(capsys, "photometry", session_50hz, "--lowpass", "10")
    assert code == 0, err


def test_em_progress_bar_reaches_100_percent(choices, capsys):
    import pandas as pd

    from dopa_rl.fit import fit
    from dopa_rl.models import get_model

    res = fit(get_model("rw-softmax"), pd.read_csv(choices), method="hier", restarts=2, progress=True)
    assert res.em_converged and res.em_iterations < 200
    err = capsys.readouterr().err
    last = err.replace("\r", "\n").strip().splitlines()[-1]
    assert "100%" in last and f"{res.em_iterations}/{res.em_iterations}" in last, last


def test_compare_prints_each_warning_once_as_one_line(choices, capsys, monkeypatch):
    import dopa_rl.fit.mle

    real = dopa_rl.fit.mle.fit

    def noisy(*a, **k):
        warnings.warn("overflow encountered in exp", RuntimeWarning)
        return real(*a, **k)

    monkeypatch.setattr(dopa_rl.fit.mle, "fit", noisy)
    code, _, err = run_cli(capsys, "compare", choices, "--models", "rw-softmax,rw-softmax-sticky", "--restarts", "1")
    assert code == 0, err
    assert err.splitlines() == ["warning: overflow encountered in exp (RuntimeWarning)"], err


def test_regress_marks_subjects_at_a_bound_as_fit_does(tmp_path, capsys, monkeypatch):
    import pandas as pd

    import dopa_rl.fit.neural

    real = dopa_rl.fit.neural.fit_dopamine

    def one_at_bound(*a, **k):
        res = real(*a, **k)
        res.at_bound[0, 0] = True
        return res

    monkeypatch.setattr(dopa_rl.fit.neural, "fit_dopamine", one_at_bound)
    rng = np.random.default_rng(0)
    rows = []
    for s in ("m1", "m2"):
        reward = (rng.random(60) < 0.7).astype(float)
        rows.append(pd.DataFrame({"subject": s, "trial": np.arange(60), "cue": "A", "reward": reward,
                                  "dopamine_cue": rng.normal(0, 1, 60),
                                  "dopamine_outcome": reward - 0.5 + rng.normal(0, 0.3, 60)}))
    table = tmp_path / "t.csv"
    pd.concat(rows).to_csv(table, index=False)
    code, out, err = run_cli(capsys, "regress", table, "--model", "rw-pavlovian", "--signal", "table",
                             "--fit", "neural", "--restarts", "2")
    assert code == 0, err
    assert "* at a bound (standard error NaN) for 1 subject(s): m1: alpha" in out
    lines = out.splitlines()
    assert any(line.split()[:1] == ["m1"] and line.split()[1].endswith("*") for line in lines), out
    assert any(line.split()[:1] == ["m2"] for line in lines), out     # per-subject rows, not only the mean
