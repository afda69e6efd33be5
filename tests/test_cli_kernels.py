"""``dopa-rl kernels`` end to end: kernels recovered from a synthetic NWB trace built from known kernels, a
regressor not used to build it contributes nothing, RPE regressors on a simulated RW session, the real dLight
recording's reward-cue kernel, bad input."""
from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from dopa_rl.cli import main
from dopa_rl.io.nwb_types import Photometry, SessionData, SessionMetadata
from dopa_rl.io.nwb_write import write_session
from dopa_rl.models.indicator import diff_exp_kernel

AKAM = "akam_dlight_nac/m53_NAc_L-2019-11-24-093939_dLight.nwb"
FS = 50.0
TRUE = {"cue": (1.0, 0.10, 0.5), "outcome": (1.5, 0.15, 0.8), "lick": (-0.6, 0.10, 0.6)}  # amplitude, rise, decay


def _run(argv, capsys):
    code = main(argv)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _true_kernel(name, lags):
    a, rise, decay = TRUE[name]
    k = np.exp(-np.clip(lags, 0, None) / decay) - np.exp(-np.clip(lags, 0, None) / rise)
    return a * np.where(lags >= 0, k, 0.0) / k.max()


def _kernel_session(path, constant_delay=None):
    """Cues every ~8 s, outcomes 0.8-2.5 s later (or ``constant_delay`` s later), random licks, a tone that
    is not in the trace; the trace is the sum of the TRUE kernels."""
    rng = np.random.default_rng(8)
    dur = 1500.0
    n = int(dur * FS)
    cue = np.arange(10.0, dur - 10, 8.0) + rng.uniform(-1, 1, int((dur - 20) / 8) + 1)[: len(np.arange(10.0, dur - 10, 8.0))]
    outcome = cue + (rng.uniform(0.8, 2.5, cue.size) if constant_delay is None else constant_delay)
    lick = np.sort(rng.uniform(5, dur - 5, int(0.5 * dur)))
    tone = np.sort(rng.uniform(5, dur - 5, 200))                    # recorded, but not in the trace
    x = np.zeros(n)
    for name, times in (("cue", cue), ("outcome", outcome), ("lick", lick)):
        a, rise, decay = TRUE[name]
        u = np.zeros(n)
        np.add.at(u, np.round(times * FS).astype(int), 1.0)
        x += a * np.convolve(u, diff_exp_kernel(FS, rise, decay))[:n]
    t = np.arange(n) / FS
    sig = 1.5 * (1 + 0.05 * x) + rng.normal(0, 0.03, n)
    ctl = 1.2 + rng.normal(0, 0.01, n)
    import pandas as pd

    trials = pd.DataFrame({"start_time": cue - 0.5, "stop_time": outcome + 1.0, "cue": "A", "cue_time": cue,
                           "outcome_time": outcome, "reward": 1.0})
    md = SessionMetadata(subject_id="k1", session_id="s1", session_start_time=dt.datetime(2026, 1, 5, tzinfo=dt.timezone.utc),
                         identifier="kernels-test", institution="dopa_rl tests")
    session = SessionData(metadata=md, trials=trials, events={"lick": lick, "tone": tone},
                          photometry=[Photometry(timestamps=t, signal=sig, control=ctl, rate=FS)])
    return write_session(path, session)


@pytest.fixture(scope="module")
def kernel_file(tmp_path_factory):
    return _kernel_session(tmp_path_factory.mktemp("kernels") / "kernels.nwb")


def test_kernels_recovered_and_unused_regressor_contributes_nothing(kernel_file, tmp_path, capsys):
    out, figs = tmp_path / "k.json", tmp_path / "figs"
    code, text, err = _run(["kernels", str(kernel_file), "--events", "cue,outcome,lick,tone", "--json", str(out),
                            "--plots", str(figs)], capsys)
    assert code == 0, err
    d = json.loads(out.read_text())
    assert {"r2_cv", "unique", "kernels", "lags"} <= set(d) and d["rate"] == 20.0 and d["rpe"] is None
    assert d["events"]["cue"]["source"] == "trials column cue_time" and d["events"]["tone"]["source"] == "events table"
    lags = np.array(d["lags"])
    for name in ("cue", "outcome", "lick"):
        r = np.corrcoef(d["kernels"][name], _true_kernel(name, lags))[0, 1]
        assert r > 0.9, (name, r)
        assert d["unique"][name] > 0.005
    assert abs(d["unique"]["tone"]) < 0.002 and d["r2_cv"] > 0.5
    assert [p.name for p in figs.iterdir()] == ["event_kernels.png"]


def test_rpe_regressors_improve_the_encoding_model(rw_sessions, tmp_path, capsys):
    out = tmp_path / "r.json"
    code, text, err = _run(["kernels", str(rw_sessions[0]), "--events", "cue,outcome", "--rpe", "rw-pavlovian",
                            "--window", "-0.2", "1.2", "--json", str(out)], capsys)
    assert code == 0, err
    d = json.loads(out.read_text())
    rpe = d["rpe"]
    assert rpe["model"] == "rw-pavlovian" and rpe["source"].startswith("fitted to the whole trace")
    assert abs(rpe["params"]["alpha"] - 0.15) < 0.05
    assert rpe["r2_cv_gain"] > 0.05 and d["unique"]["outcome_rpe"] > 0.05
    code, text, err = _run(["kernels", str(rw_sessions[0]), "--events", "cue,outcome", "--rpe", "rw-pavlovian",
                            "--rpe-params", "alpha=0.3", "--json", str(out)], capsys)
    assert code == 0, err
    assert json.loads(out.read_text())["rpe"]["source"] == "given (--rpe-params)" and "alpha=0.3" in text


def test_real_dlight_reward_cue_kernel_peaks_within_1s(real_data, tmp_path, capsys):
    out = tmp_path / "real.json"
    code, _, err = _run(["kernels", str(real_data / AKAM), "--events", "reward_cue", "--json", str(out)], capsys)
    assert code == 0, err
    d = json.loads(out.read_text())
    assert d["events"]["reward_cue"] == {"source": "events table", "n": 137}
    peak = d["peaks"]["reward_cue"]
    assert 0 < peak["lag"] <= 1.0 and peak["value"] > 1.0
    assert d["unique"]["reward_cue"] > 0.05


@pytest.mark.parametrize("extra, needle", [
    (["--events", "cue,nosuch"], "--events nosuch"),
    (["--window", "3", "-1"], "--window"),
    (["--rpe-params", "alpha=0.2"], "--rpe-params needs --rpe"),
    (["--rpe", "rw-pavlovian", "--rpe-params", "beta=2"], "--params 'beta=2'"),
    (["--events", "cue,cue"], "distinct event names"),
])
def test_kernels_bad_input(kernel_file, tmp_path, capsys, extra, needle):
    out = tmp_path / "bad.json"
    code, _, err = _run(["kernels", str(kernel_file), "--json", str(out), "--plots", str(tmp_path / "f"), *extra], capsys)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists() and not (tmp_path / "f").exists()


def test_rpe_and_trace_fit_need_trial_columns(real_data, tmp_path, capsys):
    """The real recording has reward-cue times but no reward column: a clear exit 2, nothing written."""
    out = tmp_path / "x.json"
    for argv in (["kernels", str(real_data / AKAM), "--events", "reward_cue", "--rpe", "rw-pavlovian"],
                 ["regress", str(real_data / AKAM), "--model", "rw-pavlovian", "--signal", "photometry",
                  "--fit", "trace"]):
        code, _, err = _run([*argv, "--json", str(out)], capsys)
        # kernels checks the event columns its RPE regressors need; regress reads the trials through the one
        # behaviour loader first, which names the missing column and how to map it
        needle = ("needs trial column(s) cue_time, outcome_time, reward" if argv[0] == "kernels"
                  else "no 'reward' column (map yours with --columns reward=NAME)")
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
        assert not out.exists()


def test_constant_delay_warns_that_cue_and_outcome_cannot_be_separated(kernel_file, tmp_path, capsys):
    const = _kernel_session(tmp_path / "constant.nwb", constant_delay=1.5)
    out = tmp_path / "c.json"
    code, text, err = _run(["kernels", str(const), "--events", "cue,outcome,lick", "--json", str(out)], capsys)
    assert code == 0, err
    d = json.loads(out.read_text())
    assert [c["events"] for c in d["collinear"]] == [["cue", "outcome"]]
    c = d["collinear"][0]
    assert c["vif"] is None or c["vif"] > 100
    assert c["lag"]["leader"] == "cue" and c["lag"]["median_s"] == pytest.approx(1.5, abs=0.01) and c["lag"]["sd_s"] < 0.01
    assert "warning: the cue and outcome kernels cannot be separated: outcome follows cue by 1.5 s" in err
    # the pipeline's control-fit warning in the command's terms: kernels has no --control-fit, so it is not offered
    assert "check the channels or use control_fit none (UserWarning)" in err and "--control-fit" not in err, err
    assert "cue          unique" in text and "(not separable from outcome)" in text
    # the same session with the delay jittered (0.8-2.5 s): no warning, nothing flagged
    out2 = tmp_path / "j.json"
    code, text, err = _run(["kernels", str(kernel_file), "--events", "cue,outcome,lick", "--json", str(out2)], capsys)
    assert code == 0, err
    assert json.loads(out2.read_text())["collinear"] == []
    assert "cannot be separated" not in err and "not separable" not in text
