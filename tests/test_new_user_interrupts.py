"""Issue 15 item 5, Ctrl-C: every command stops with "interrupted", exit 130, and never writes a half result,
also when the interrupt lands inside a compiled (numba) kernel, and in the demo's simulated session."""
from __future__ import annotations

import pytest

from dopa_rl.cli import main


def run_cli(capsys, *argv):
    code = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def choices(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "choices.csv"
    assert main(["simulate", "--task", "bandit", "--model", "rw-softmax", "--subjects", "3", "--trials", "60",
                 "--out", str(path)]) == 0
    return path


def _interrupted_in_numba(*args, **kwargs):
    """What Ctrl-C inside numba's parallel kernel looks like to Python (measured: ``dopa-rl fit --method hier``
    interrupted gave "internal error (SystemError: CPUDispatcher(...) returned a result with an exception set)")."""
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt as exc:
        raise SystemError("CPUDispatcher(<function _rw_choice_loglik_parallel>) returned a result with an "
                          "exception set") from exc


@pytest.mark.parametrize("debug", [[], ["--debug"]])
def test_ctrl_c_inside_a_numba_fit_is_interrupted_exit_130(choices, tmp_path, capsys, monkeypatch, debug):
    import dopa_rl.fit

    monkeypatch.setattr(dopa_rl.fit, "fit", _interrupted_in_numba)
    out = tmp_path / "fit.json"
    code, stdout, err = run_cli(capsys, *debug, "fit", choices, "--model", "rw-softmax", "--method", "hier",
                                "--json", out)
    assert (code, err.strip()) == (130, "error: interrupted")
    assert not out.exists() and list(tmp_path.iterdir()) == [] and stdout == ""


def test_ctrl_c_during_the_demo_session_stops_before_fitting_and_writes_no_report(tmp_path, capsys, monkeypatch):
    from dopa_rl.session.runner import Runner

    def interrupted_loop(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(Runner, "_loop", interrupted_loop)
    import dopa_rl.fit

    def no_fit(*a, **k):
        raise AssertionError("the demo went on to fit after Ctrl-C")

    monkeypatch.setattr(dopa_rl.fit, "fit", no_fit)
    out = tmp_path / "demo"
    code, _, err = run_cli(capsys, "demo", "--out", out, "--trials", "20", "--speed", "1")
    assert code == 130 and err.strip().endswith("error: interrupted"), err
    assert not (out / "report").exists()
