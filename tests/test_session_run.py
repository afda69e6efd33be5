"""Live sessions on the simulated rig: length, counts against the device's own tally, NWB, policies.

Most run in virtual time (dopa_rl.session.virtual: the session machine and the simulated device stepped on
the device's clock, no thread): what they check does not depend on the host's timing.  The threaded stack
on a real-time clock is kept where it is the subject: 200 trials at --speed max (the command line on a
real-time clock: test_session_crash.py, test_session_lab.py)."""
from __future__ import annotations

import time

import numpy as np
import pytest
from _nwb_support import inspector_problems
from _session_support import fast_config, nwb_contents, rising, sim_rig

from dopa_rl.protocol import messages as P
from dopa_rl.session import load_config, open_device, read_journal, run_session
from dopa_rl.session.export import session_tables
from dopa_rl.session.policy import DffState, dff_step
from dopa_rl.session.runner import parse_speed
from dopa_rl.session.virtual import run_virtual_session
from dopa_rl.sim.device import device_from_options


SPEED = parse_speed("max")   # what --speed max gives
DEBOUNCE_US = 1000  # the config's default lick_debounce_us


def _run(tmp_path, cfg_path, n=None, speed=SPEED, seed=0, on_trial=None, out="s.nwb", realtime=False):
    """A session on the simulated rig (its animal seeded with ``seed``): in virtual time, or (``realtime``)
    through the threaded client against the rig's clock at ``speed``."""
    cfg, rig = load_config(cfg_path)
    if not realtime:
        dev, _ = device_from_options({"seed": str(seed), "animal": "rw"})
        result, path = run_virtual_session(cfg, rig, dev, tmp_path / out, n_trials=n, on_trial=on_trial)
        return result, path, dev
    dut = sim_rig(speed, seed)
    try:
        port = open_device(dut.url)
        result, path = run_session(cfg, rig, port, tmp_path / out, speed=speed, n_trials=n, on_trial=on_trial)
        return result, path, dut
    finally:
        dut.close()


def _session_span(result) -> tuple[int, int]:
    """Device times of the first and last event the host received (events come in device order, so the
    device reported everything between them)."""
    evs = [r["t_us"] for r in read_journal(result.journal) if r["kind"] == "ev"]
    return evs[0], evs[-1] - DEBOUNCE_US   # a lick is reported once its debounce time has passed


@pytest.mark.realtime   # a simulated rig on a real-time clock (docs/sessions.md, Tests)
def test_200_trials_fast_counts_match_device_and_nwb_is_valid(tmp_path):
    t = time.monotonic()
    result, path, dut = _run(tmp_path, fast_config(tmp_path, 200), realtime=True)
    wall = time.monotonic() - t
    assert result.reason == "complete"
    assert wall < 30, f"200 trials took {wall:.1f} s"
    trials, events = nwb_contents(path)
    assert len(trials) == 200
    assert not [r for r in read_journal(result.journal) if r["kind"] == "ev" and r["name"] == "ERROR"]  # no overflow
    t0, t1 = _session_span(result)
    # the device's own tally (pin trace) over the session (licks before HELLO are not reported)
    dev_licks = rising(dut, "lick", t0, t1)
    dev_valve = rising(dut, "valve", t0, t1)
    assert len(events["lick"]) == len(dev_licks) > 100
    np.testing.assert_allclose(events["lick"], (np.array(dev_licks) - t0) / 1e6, atol=1e-6)
    assert len(events["valve"]) == len(dev_valve) == int((trials["reward"] > 0).sum())
    assert int((trials["reward"] > 0).sum()) == sum(1 for h in result.history if h["reward_ul"] > 0)
    # per-trial anticipatory licks recounted from the lick events
    for _, row in trials.iloc[::17].iterrows():
        ev = events["lick"]
        assert row["licks"] == ((ev >= row["cue_time"]) & (ev < row["outcome_time"])).sum()
    # the online model learns the CS+ (p = 0.9) and not the CS- (p = 0)
    cs, cm = trials[trials["trial_type"] == "CS+"], trials[trials["trial_type"] == "CS-"]
    assert 0.75 < cs["value"].iloc[-20:].mean() < 1.0 and cm["value"].abs().max() < 1e-12
    assert inspector_problems(path) == []


def test_nwb_reads_back_with_inspect_and_fit(tmp_path, capsys):
    from dopa_rl.cli import main

    result, path, _ = _run(tmp_path, fast_config(tmp_path, 30))
    assert main(["inspect", str(path), "--require", "behavior"]) == 0
    out = tmp_path / "fit.json"
    assert main(["fit", str(path), "--model", "rw-pavlovian", "--restarts", "2", "--json", str(out)]) == 0
    assert out.stat().st_size > 0


def test_metadata_holds_config_rig_calibration_versions(tmp_path):
    from pynwb import NWBHDF5IO

    result, path, _ = _run(tmp_path, fast_config(tmp_path, 3))
    with NWBHDF5IO(str(path), "r") as io:
        f = io.read()
        assert "10 ms per uL" in f.devices["valve"].description
        assert f"protocol v{P.PROTOCOL_VERSION}" in f.devices["rig"].description and "firmware 0x" in f.devices["rig"].description
        assert 'subject = "m1"' in f.notes and "complete" in f.session_description
        assert set(f.trials.colnames) >= {"value", "rpe_cue", "rpe_outcome", "licks", "reward_ul", "trial_type"}


def test_stim_on_rpe_pulses_exactly_where_rpe_crossed(tmp_path):
    extra = '[policy]\nkind = "stim-on-rpe"\nthreshold = 0.4\nttl_ms = 5\n'
    result, path, dut = _run(tmp_path, fast_config(tmp_path, 40, p=0.6, extra=extra))
    trials, events = nwb_contents(path)
    crossed = trials["rpe_outcome"] >= 0.4
    assert 3 <= crossed.sum() < len(trials) - 3                  # some trials cross, some do not
    ttl = events["ttl"]
    got = np.array([((ttl >= r.start_time) & (ttl <= r.stop_time)).sum() for r in trials.itertuples()])
    np.testing.assert_array_equal(got, crossed.astype(int))       # a pulse on exactly those trials
    np.testing.assert_allclose(ttl, trials.loc[crossed, "outcome_time"], atol=1e-5)   # at the outcome
    assert len(rising(dut, "ttl")) == crossed.sum()
    # open loop: the same config with the fixed policy sends none
    _, path2, dut2 = _run(tmp_path, fast_config(tmp_path, 10, p=0.6, name="fixed.toml"), out="f.nwb")
    assert "ttl" not in nwb_contents(path2)[1] and not rising(dut2, "ttl")


def test_rpe_target_moves_realised_rpe_to_target(tmp_path):
    target = 0.25
    extra = f'[policy]\nkind = "rpe-target"\ntarget_rpe = {target}\nmin_ul = 0.5\n[safety]\nmax_valve_ms = 150\n'
    _, p_fix, _ = _run(tmp_path, fast_config(tmp_path, 40, name="fix.toml"), out="fix.nwb")
    _, p_tgt, _ = _run(tmp_path, fast_config(tmp_path, 40, extra=extra, name="tgt.toml"), out="tgt.nwb")
    fix, tgt = nwb_contents(p_fix)[0], nwb_contents(p_tgt)[0]

    def err(t):
        r = t[(t["reward_ul"] > 0) & (t["trial"] >= 10)]
        return float(np.abs(r["rpe_outcome"] - target).mean()), r

    e_fix, _ = err(fix)
    e_tgt, r = err(tgt)
    assert e_tgt < 0.05 < e_fix
    assert r["reward_ul"].nunique() > 3                            # it did vary the reward size
    assert (tgt["valve_ms"][tgt["reward_ul"] > 0] <= 150).all()


def test_on_signal_triggers_ttl_when_dff_crosses(tmp_path):
    extra = ('[policy]\nkind = "on-signal"\nanalog_rate_hz = 100\nbaseline_s = 2.0\ndff_threshold = 0.4\n'
             'refractory_s = 0.5\naction = "ttl"\nttl_ms = 5\n')
    result, path, dut = _run(tmp_path, fast_config(tmp_path, 8, extra=extra))
    tabs = session_tables(read_journal(result.journal))
    t, x = tabs["analog"]
    assert len(t) > 500
    # recompute the crossings offline from the recorded stream: the TTLs sent must follow them
    _, cross = dff_step(DffState(), list(x), float(t[0]), 100.0, 2.0, 0.4, 0.5)
    ttl = tabs["events"]["ttl"]
    assert len(cross) >= 5 and abs(len(ttl) - len(cross)) <= 1, (len(cross), len(ttl))
    lag = ttl[: len(cross)] - np.array([c[0] for c in cross])[: len(ttl)]
    # never before the crossing, and at most one batch of 8 samples (80 ms) after it: the host (of no latency
    # in virtual time) pulses as soon as the batch holding the crossing arrives
    assert (lag >= 0).all() and (lag <= 0.08 + 1e-9).all(), lag
    assert inspector_problems(path) == []                          # the analog stream is valid NWB too
    # a threshold never reached: no pulse
    extra2 = extra.replace("dff_threshold = 0.4", "dff_threshold = 5.0")
    r2, path2, dut2 = _run(tmp_path, fast_config(tmp_path, 4, extra=extra2, name="never.toml"), out="n.nwb")
    assert not rising(dut2, "ttl")


def test_user_policy_from_file(tmp_path):
    (tmp_path / "mypolicy.py").write_text(
        "def only_minus(plan, model_state, history, params):\n"
        "    return {'trial_type': 'CS-', 'cue': 'tone', 'rewarded': False, 'reward_ul': 0.0}\n")
    extra = '[policy]\nkind = "user"\nfunction = "mypolicy.py:only_minus"\n'
    _, path, dut = _run(tmp_path, fast_config(tmp_path, 6, extra=extra))
    trials, events = nwb_contents(path)
    assert (trials["trial_type"] == "CS-").all() and "valve" not in events and not rising(dut, "valve")


def test_td_online_model(tmp_path):
    _, path, _ = _run(tmp_path, fast_config(tmp_path, 30, model="td", p=1.0))
    trials = nwb_contents(path)[0]
    cs = trials[trials["trial_type"] == "CS+"]
    # TD: the cue response grows and the reward response shrinks with learning
    assert cs["rpe_cue"].iloc[-5:].mean() > cs["rpe_cue"].iloc[:3].mean() + 0.2
    assert cs["rpe_outcome"].iloc[-5:].mean() < cs["rpe_outcome"].iloc[:3].mean() - 0.2


@pytest.mark.parametrize("name", ["classical_conditioning.toml", "reward_probability.toml", "closed_loop.toml"])
def test_examples_run_on_sim(tmp_path, name):
    from pathlib import Path

    from dopa_rl.cli import main

    cfg = Path(__file__).resolve().parents[1] / "examples" / name
    out = tmp_path / "ex.nwb"
    assert main(["run", str(cfg), "--device", "sim", "--speed", "virtual", "--trials", "6", "--out", str(out)]) == 0
    assert len(nwb_contents(out)[0]) == 6


def test_cli_run_json_summary_and_plain_lines(tmp_path, capsys):
    import json

    from dopa_rl.cli import main

    out, js = tmp_path / "c.nwb", tmp_path / "c.json"
    cfg = fast_config(tmp_path, 8)
    assert main(["run", str(cfg), "--device", "sim", "--speed", "virtual", "--out", str(out), "--json", str(js)]) == 0
    s = json.loads(js.read_text())
    trials, events = nwb_contents(out)
    assert s["trials"] == len(trials) == 8 and s["reason"] == "complete"
    assert s["rewards"] == int((trials["reward"] > 0).sum()) == s["device_tally"]["valve_openings"]
    assert s["anticipatory_licks"] == int(trials["licks"].sum())
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("trial ")]
    assert len(lines) == 8 and "\r" not in "".join(lines)        # not a terminal: one plain line per trial
