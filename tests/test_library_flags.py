"""Issue 15 item 4, every message that named a command-line flag in the library: the library now names its
Python parameter (`` `name` ``, never ``--flag``), and the command that reaches it names its own flag
(``dopa_rl.commands.common.speak_flags`` with the parser's flags and the command's ``PARAMETER_FLAGS``).

Each message is checked from both sides.  The few a command cannot reach (argparse refuses the value first, or
the command always passes what is missing) are checked from the library side only, and say so."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from _nwb_support import hand_session
from dopa_rl.cli import main
from dopa_rl.errors import InputError
from dopa_rl.io import nwb


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def raises(call, *args, **kw) -> str:
    with pytest.raises(InputError) as e:
        call(*args, **kw)
    text = str(e.value)
    assert " --" not in text and not text.startswith("--"), text
    return text


@pytest.fixture(scope="module")
def session_file(tmp_path_factory):
    return nwb.write_session(tmp_path_factory.mktemp("flags") / "s.nwb", hand_session(n_trials=6))


@pytest.fixture(scope="module")
def units_table(tmp_path_factory):
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("units") / "units.csv"
    pd.DataFrame({"reward": rng.choice([1.0, 2.0, 4.0], 40), "cued": rng.integers(0, 2, 40),
                  "unit_1": rng.normal(size=40), "unit_2": rng.normal(size=40)}).to_csv(path, index=False)
    return path


# ----------------------------------------------------------------------------- io: trials table, inspect, sync
def test_trials_table_hint(session_file, capsys):
    text = raises(nwb.read_behavior, session_file, trials_table="task")
    assert "choose one with `trials_table` NAME" in text
    code, _, err = cli(capsys, "fit", session_file, "--model", "rw-pavlovian", "--trials-table", "task")
    assert code == 2 and "choose one with --trials-table NAME" in err and "`" not in err, err


def test_inspect_hints_name_parameters_and_the_command_names_its_flags(tmp_path, capsys):
    session = hand_session(n_trials=4)
    session.photometry = []
    session.trials = session.trials.rename(columns={"reward": "volume"})
    path = nwb.write_session(tmp_path / "nophot.nwb", session)
    s = nwb.inspect_nwb(path, trials_table="task")
    assert "with `trials_table` NAME" in s["analyses"]["behavior"]["missing"][0]
    assert "name one with `series` NAME" in s["analyses"]["photometry"]["missing"][0]
    s = nwb.inspect_nwb(path)
    assert "reward column (map with `columns` reward=NAME)" in s["analyses"]["behavior"]["missing"]
    out_json = tmp_path / "i.json"
    code, out, err = cli(capsys, "inspect", path, "--trials-table", "task", "--json", out_json)
    assert code == 0, err
    assert "with --trials-table NAME" in out and "name one with --photometry NAME" in out and "`" not in out
    j = json.loads(out_json.read_text())
    assert "with --trials-table NAME" in j["analyses"]["behavior"]["missing"][0]
    code, out, err = cli(capsys, "inspect", path)
    assert code == 0 and "map with --columns reward=NAME" in out, out + err


# ----------------------------------------------------------------------------- models: columns and choices
def test_event_columns_hint(tmp_path, capsys):
    from dopa_rl.models.base import require_event_columns

    text = raises(require_event_columns, pd.DataFrame({"reward": [1.0]}), "the trace-level fit")
    assert "(map yours with `columns`, e.g. `columns` reward=volume,outcome_time=reward_on)" in text
    # the trace fit on a file whose trials have no cue_time
    session = hand_session(n_trials=6)
    session.trials = session.trials.drop(columns="cue_time")
    path = nwb.write_session(tmp_path / "nocue.nwb", session)
    code, _, err = cli(capsys, "regress", path, "--model", "rw-pavlovian", "--signal", "photometry", "--fit", "trace")
    assert code == 2, err
    assert "(map yours with --columns, e.g. --columns reward=volume,outcome_time=reward_on)" in err, err


def test_one_based_choices_hint(tmp_path, capsys):
    from dopa_rl.models import get_model

    df = pd.DataFrame({"subject": "m", "choice": [1, 2, 1, 2, 1], "reward": [1, 0, 1, 0, 1]})
    text = raises(get_model("rw-softmax").pack, df)
    assert "(use `choice_base` 1), or give `n_options` 3" in text
    path = tmp_path / "one.csv"
    df.to_csv(path, index=False)
    code, _, err = cli(capsys, "fit", path, "--model", "rw-softmax")
    assert code == 2 and "(use --choice-base 1), or give --n-options 3" in err, err


# ----------------------------------------------------------------------------- fit: dopamine modes, restarts
def test_behavior_mode_without_the_behavior(tmp_path, capsys):
    from dopa_rl.fit.neural import fit_dopamine
    from dopa_rl.models import get_model

    rng = np.random.default_rng(1)
    df = pd.DataFrame({"subject": "m", "session": "s", "trial": np.arange(30), "cue": "A",
                       "reward": rng.integers(0, 2, 30).astype(float), "dopamine_cue": rng.normal(size=30),
                       "dopamine_outcome": rng.normal(size=30)})
    text = raises(fit_dopamine, get_model("rw-pavlovian"), df, mode="behavior")
    assert text.startswith("`mode` behavior: model rw-pavlovian needs column(s) licks")
    assert "use `mode` neural to fit the dopamine alone, or regress on fixed `params`" in text
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    code, _, err = cli(capsys, "regress", path, "--model", "rw-pavlovian", "--signal", "table", "--fit", "behavior")
    assert code == 2, err
    assert "--fit behavior: model rw-pavlovian needs column(s) licks" in err, err
    assert "use --fit neural to fit the dopamine alone, or regress on fixed --params" in err, err


def _weak(summary):
    """The summary of a fit whose restarts did not agree (forced: one restart at the best)."""
    def summary_with_one_restart_at_best(self):
        self.n_at_best = np.ones_like(self.n_at_best)
        return summary(self)
    return summary_with_one_restart_at_best


def test_restarts_hint_in_the_summary(tmp_path, capsys, monkeypatch):
    from dopa_rl.fit import FitResult, fit
    from dopa_rl.models import get_model

    rng = np.random.default_rng(2)
    df = pd.DataFrame({"subject": "m", "choice": rng.integers(0, 2, 60), "reward": rng.integers(0, 2, 60)})
    res = fit(get_model("rw-softmax"), df, restarts=2, progress=False)
    res.n_at_best = np.ones_like(res.n_at_best)
    assert "(use more `restarts` or `restarts` auto)" in res.summary()
    path = tmp_path / "c.csv"
    df.to_csv(path, index=False)
    monkeypatch.setattr(FitResult, "summary", _weak(FitResult.summary))
    code, out, err = cli(capsys, "fit", path, "--model", "rw-softmax", "--restarts", "2")
    assert code == 0, err
    assert "(use more --restarts or --restarts auto)" in out and "`" not in out, out


# ----------------------------------------------------------------------------- neural: indicator, control fit
def test_indicator_messages(session_file, capsys):
    from dopa_rl.neural.trace_fit import resolve_kernel

    assert raises(resolve_kernel, "gfp", 25.0).startswith("`indicator` 'gfp': choose one of")
    # library only: the command always passes the trace and its events to an 'estimate'
    assert raises(resolve_kernel, "estimate", 25.0).startswith("`indicator` estimate needs the trace")
    code, _, err = cli(capsys, "regress", session_file, "--model", "rw-pavlovian", "--signal", "photometry",
                       "--fit", "trace", "--indicator", "gfp")
    assert code == 2 and err.startswith("error: --indicator 'gfp': choose one of"), err


def test_control_fit_warning(tmp_path, capsys):
    from dopa_rl.neural.pipeline import PhotometryPipeline

    session = hand_session(n_trials=6)
    phot = session.photometry[0]
    rng = np.random.default_rng(3)
    slow = np.sin(phot.timestamps / 5.0)
    phot.signal = 1.5 + 0.05 * slow + 0.002 * rng.normal(size=slow.size)
    phot.control = 1.2 - 0.05 * slow + 0.002 * rng.normal(size=slow.size)   # the control moves against the signal
    with pytest.warns(UserWarning) as caught:
        PhotometryPipeline(detrend="none", highpass_hz=0.0).run(phot)
    text = [str(w.message) for w in caught if "control fit slope" in str(w.message)][0]
    assert "use `control_fit` none" in text
    path = nwb.write_session(tmp_path / "anti.nwb", session)
    code, out, err = cli(capsys, "photometry", path, "--detrend", "none", "--json", tmp_path / "p.json")
    assert code == 0, err
    assert "use --control-fit none" in out and "`" not in out, out
    assert any("use --control-fit none" in w for w in json.loads((tmp_path / "p.json").read_text())["warnings"])


# ----------------------------------------------------------------------------- neural: outcome responses
@pytest.mark.parametrize("kw, argv, lib, flag", [
    ({"magnitude_column": "volume"}, ["--magnitude-column", "volume"], "(`magnitude_column`)", "(--magnitude-column)"),
    ({"cued_column": "odour"}, ["--cued-column", "odour"], "(`cued_column`)", "(--cued-column)"),
    ({"unit_prefix": "cell_"}, ["--unit-prefix", "cell_"], "(set the prefix with `unit_prefix`)",
     "(set the prefix with --unit-prefix)"),
    ({"units": ["9"]}, ["--units", "9"], "`units` names units not in the table", "--units names units not in the table"),
    ({"window": (0.6, 0.2)}, ["--window", "0.6", "0.2"], "`window` 0.6 0.2: the end", "--window 0.6 0.2: the end"),
    ({"baseline": (0.0, -1.0)}, ["--baseline", "0", "-1"], "`baseline` 0 -1: the end", "--baseline 0 -1: the end"),
])
def test_outcome_response_messages(units_table, capsys, kw, argv, lib, flag):
    from dopa_rl.neural.outcome_responses import load_outcome_responses

    assert lib in raises(load_outcome_responses, units_table, "table", **kw)
    code, _, err = cli(capsys, "distributional", units_table, "--signal", "table", *argv)
    assert code == 2 and flag in err and "`" not in err, err


def test_outcome_response_signal_messages(units_table, capsys):
    from dopa_rl.neural.outcome_responses import load_outcome_responses

    text = raises(load_outcome_responses, units_table, "units")
    assert "`signal` units reads NWB files; use `signal` table for CSV/TSV" in text
    code, _, err = cli(capsys, "distributional", units_table, "--signal", "units")
    assert code == 2 and "--signal units reads NWB files; use --signal table for CSV/TSV" in err, err
    # library only: the command's --signal and --baseline-event take only their choices (argparse refuses others)
    assert raises(load_outcome_responses, units_table, "spikes").startswith("`signal` 'spikes': choose")
    assert raises(load_outcome_responses, units_table, "table", baseline_event="cue").startswith(
        "`baseline_event` 'cue': choose first or outcome")


# ----------------------------------------------------------------------------- session and rig
def test_speed_device_and_address_messages(tmp_path, capsys):
    from dopa_rl.session.config import Rig
    from dopa_rl.session.dashboard import check_address
    from dopa_rl.session.runner import device_url, parse_speed

    assert raises(parse_speed, "fast").startswith("`speed` 'fast': use max, realtime")
    assert raises(parse_speed, "500").startswith("`speed` '500': the factor must be in")
    assert raises(device_url, "rig", Rig(), speed=1.0, seed=0).startswith("`device` rig: the rig file names no port")
    assert check_address("127.0.0.1", 70000) == ["`port` 70000: must be in 0..65535 (0 = a free port)"]
    code, _, err = cli(capsys, "check", "sim", "--speed", "500")
    assert code == 2 and err.startswith("error: --speed '500': the factor"), err
    code, _, err = cli(capsys, "calibrate", "--device", "rig", "--rig-file", tmp_path / "r.toml", "--measured-ul", "1")
    assert code == 2 and "--device rig: the rig file names no port" in err, err
    # --port 70000 from `dopa-rl run`: tests/test_session_lab.py::test_lab_bad_input


def test_target_volume_message(tmp_path, capsys):
    from dopa_rl.rig.calibration import open_times

    assert raises(open_times, [2.0, 100.0], 4.0, 200).startswith("`target_ul`: 100 uL needs about 400 ms")
    code, _, err = cli(capsys, "calibrate", "--device", "sim", "--speed", "50", "--rig-file", tmp_path / "r.toml",
                       "--pulses", "5", "--ms", "40", "--target-ul", "2,100", "--measured-ul", "16,1,2",
                       "--max-valve-ms", "200")
    assert code == 2 and "--target-ul: 100 uL needs about" in err, err


def test_loopback_skip_message(tmp_path, capsys):
    from dopa_rl.rig.check import run_checks
    from dopa_rl.rig.client import DeviceClient
    from dopa_rl.rig.transports import open_link
    from dopa_rl.testing import SimulatedDUT

    dut = SimulatedDUT(speed=10.0)
    try:
        with DeviceClient(open_link(dut.url), heartbeat_s=0.02) as dev:
            dev.start()
            res = {r.part: r for r in run_checks(dev, speed=10.0, lick_wait_s=0.3, prompt=lambda _t: None)}
    finally:
        dut.close()
    assert res["loopback"].detail == "TTL out not wired to the analog input (`loopback` when it is)"
    out_json = tmp_path / "c.json"
    code, out, err = cli(capsys, "check", "sim", "--speed", "10", "--lick-wait", "0.3", "--json", out_json)
    assert "(--ttl-loopback when it is)" in out and "`" not in out, out + err
    parts = {p["part"]: p for p in json.loads(out_json.read_text())["parts"]}
    assert parts["loopback"]["detail"] == "TTL out not wired to the analog input (--ttl-loopback when it is)"
