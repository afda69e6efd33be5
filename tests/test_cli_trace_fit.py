"""``dopa-rl regress --fit trace``: the learning rate fitted to the whole photometry trace through the indicator
kernel, on synthetic NWB sessions with a known alpha; bad input."""
from __future__ import annotations

import json

import pytest

from _neural_support import TRUE_ALPHA
from dopa_rl.cli import main


def _run(argv, capsys):
    code = main(argv)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_trace_fit_recovers_alpha_with_the_true_kernel(rw_sessions, tmp_path, capsys):
    out = tmp_path / "t.json"
    # the simulated sessions' kernel: rise 0.06 s, decay 0.45 s (models.dopamine.DopamineObservation)
    code, text, err = _run(["regress", *map(str, rw_sessions), "--model", "rw-pavlovian", "--signal", "photometry",
                            "--fit", "trace", "--kernel-rise", "0.06", "--kernel-decay", "0.45", "--restarts", "2",
                            "--json", str(out)], capsys)
    assert code == 0, err
    d = json.loads(out.read_text())
    assert d["fit"] == "trace" and d["indicator"] == "dlight1.1"
    assert d["kernel"]["rise_s"] == 0.06 and d["kernel"]["decay_s"] == 0.45
    assert len(d["trace_fits"]) == 2
    for f in d["trace_fits"]:
        assert abs(f["params"]["alpha"] - TRUE_ALPHA) < 0.05, f
        assert 0 < f["phi"] < 1 and f["b1"] > 0
    assert abs(d["params"]["alpha"] - TRUE_ALPHA) < 0.05 and 0 < d["phi"] < 1
    assert any(r["event"] == "outcome" and r["coef"]["rpe"] > 0 and r["pvalue"]["rpe"] < 1e-3
               for r in d["regressions"])
    assert "model rw-pavlovian (trace): alpha=" in text


def test_trace_fit_with_an_estimated_kernel_and_td(rw_sessions, tmp_path, capsys):
    out = tmp_path / "e.json"
    code, _, err = _run(["regress", str(rw_sessions[0]), "--model", "rw-pavlovian", "--signal", "photometry",
                         "--fit", "trace", "--indicator", "estimate", "--restarts", "2", "--json", str(out)], capsys)
    assert code == 0, err
    d = json.loads(out.read_text())
    assert d["kernel"]["indicator"] == "estimate" and 0.02 < d["kernel"]["rise_s"] < d["kernel"]["decay_s"] < 1.5
    assert abs(d["params"]["alpha"] - TRUE_ALPHA) < 0.05
    code, _, err = _run(["regress", str(rw_sessions[0]), "--model", "td", "--signal", "photometry", "--fit", "trace",
                         "--restarts", "1", "--json", str(out)], capsys)
    assert code == 0, err
    d = json.loads(out.read_text())
    assert d["model"] == "td" and 0 < d["params"]["alpha"] <= 1 and set(d["fixed"]) == {"gamma", "lambda_"}


@pytest.mark.parametrize("extra, needle", [
    (["--signal", "units", "--fit", "trace"], "use --signal photometry"),
    (["--signal", "photometry", "--fit", "trace", "--indicator", "gfp"], "--indicator 'gfp'"),
    (["--signal", "photometry", "--fit", "trace", "--params", "alpha=0.1"], "--params and --fit trace"),
    (["--signal", "photometry", "--fit", "trace", "--model", "rw-softmax"], "model rw-softmax needs column(s) choice"),
])
def test_trace_fit_bad_input(rw_sessions, tmp_path, capsys, extra, needle):
    out = tmp_path / "bad.json"
    argv = ["regress", str(rw_sessions[0]), "--json", str(out), *extra]
    if "--model" not in extra:
        argv += ["--model", "rw-pavlovian"]
    code, _, err = _run(argv, capsys)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()
