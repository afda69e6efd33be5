"""Sessions in virtual time (dopa_rl.session.virtual): the session machine and the simulated device stepped
together on the device's clock.  The same seed gives the same session, byte for byte in the journal, and
``dopa-rl demo`` gives the same numbers on every run (issue 15: it gave 1809/1722/1730/1793 licks and a
fitted alpha of 0.17-0.50 for one seed); a reset and a pause work there as on the threaded runner."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
from _session_support import fast_config, nwb_contents, rising

from dopa_rl.cli import main
from dopa_rl.protocol import messages as P
from dopa_rl.session import load_config, parse_config
from dopa_rl.session.journal import read_journal
from dopa_rl.session.virtual import VirtualLink, VirtualRunner, run_virtual_session
from dopa_rl.sim.animal import AnimalParams
from dopa_rl.sim.device import device_from_options


def _device(seed):
    dev, _ = device_from_options({"seed": str(seed), "animal": "rw"})
    return dev


def _session(cfg, rig, out, seed=1):
    dev = _device(seed)
    result, path = run_virtual_session(cfg, rig, dev, out)
    return dev, result, path


def _records(journal):
    """The journal without its header (the one record holding the wall-clock creation time)."""
    return [r for r in read_journal(journal) if r["kind"] != "header"]


def test_the_same_seed_gives_the_same_session_in_virtual_time(tmp_path):
    from dopa_rl.commands.demo import DEMO_CONFIG

    cfg, rig = parse_config(DEMO_CONFIG.format(trials=25, seed=3), source="demo config")
    runs = [_session(cfg, rig, tmp_path / f"s{i}.nwb", seed=3) for i in range(2)]
    (dev_a, a, path_a), (dev_b, b, path_b) = runs
    assert a.reason == b.reason == "complete" and a.n_trials == 25
    assert _records(a.journal) == _records(b.journal)                  # every event, command, plan and result
    assert a.history == b.history and list(dev_a.pin_trace) == list(dev_b.pin_trace)
    ta, ea = nwb_contents(path_a)
    tb, eb = nwb_contents(path_b)
    assert ta.equals(tb) and ea.keys() == eb.keys() and all(np.array_equal(ea[k], eb[k]) for k in ea)
    # what the session learned is what the device did: rewards against the valve's pin, licks against the
    # lick contacts the device debounced
    assert (ta["reward_ul"] > 0).sum() == len(rising(dev_a, "valve")) == a.tally["valve_openings"] > 5
    assert len(ea["lick"]) > 50
    # another seed is another animal
    c = _session(cfg, rig, tmp_path / "other.nwb", seed=4)[1]
    assert [h["licks"] for h in c.history] != [h["licks"] for h in a.history]


def test_a_device_reset_in_virtual_time_restarts_the_next_trial_and_gives_no_water_twice(tmp_path):
    cfg, rig = load_config(fast_config(tmp_path, 14, p=1.0))
    dev = _device(5)
    box = {}

    def reboot(row):
        if row["trial"] == 5:      # trial 6 is queued in trial 5's ITI: the reset loses it
            dev.reboot()
            box["t"] = dev.clock.now_us

    runner = VirtualRunner(cfg, rig, dev, tmp_path / "r.nwb", on_trial=reboot)
    result = runner.run()
    assert result.reason == "complete" and result.error is None
    assert [h["trial"] for h in result.history] == list(range(14)) and not result.cut
    recs = read_journal(result.journal)
    starts = [r["f"]["trial_id"] // 2 for r in recs if r["kind"] == "ev" and r["name"] == "TRIAL_STARTED"
              and r["f"]["trial_id"] % 2 == 0]
    assert starts == list(range(14))                                   # trial 6 ran once, after the reset
    notes = " | ".join(r["text"] for r in recs if r["kind"] == "note")
    assert "device reset" in notes and "trial 6 starts now" in notes
    # the limits were sent again in the new session: CONFIGURE twice, the second one's budget reduced by
    # the valve time already given
    configures = [r for r in recs if r["kind"] == "ev" and r["name"] == "ACK" and r["f"]["cmd_type"] == 0x03]
    assert len(configures) == 2 and result.client_stats["device_resets"] == 1
    rewarded = sum(1 for h in result.history if h["reward_ul"] > 0)
    planned = sum(1 for k in range(14) if runner.machine.plans[k].reward_ul > 0)
    assert rewarded == len(rising(dev, "valve")) == planned > 5        # no trial's water given twice
    assert box["t"] < max(t for t, lv in dev.pin_edges("valve") if lv)


class _PauseBetween:
    """A pause flag that is set between two device times (what SIGUSR1 ... SIGUSR2 would do)."""

    def __init__(self, dev, start_us, end_us):
        self.dev, self.start_us, self.end_us = dev, start_us, end_us

    def is_set(self):
        return self.start_us <= self.dev.clock.now_us < self.end_us


def test_a_pause_in_virtual_time_holds_the_next_trial_and_resumes(tmp_path):
    cfg, rig = load_config(fast_config(tmp_path, 8))
    dev = _device(6)
    t0 = dev.clock.now_us
    pause = _PauseBetween(dev, t0 + 5_000_000, t0 + 60_000_000)       # 55 s: longer than the stall limit
    runner = VirtualRunner(cfg, rig, dev, tmp_path / "p.nwb", pause=pause)
    result = runner.run()
    assert result.reason == "complete" and [h["trial"] for h in result.history] == list(range(8))
    recs = read_journal(result.journal)
    notes = [r["text"] for r in recs if r["kind"] == "note"]
    held = [n for n in notes if n.startswith("paused after trial")]
    assert len(held) == 1 and any(n.startswith("resumed; trial") for n in notes)
    k = int(held[0].split()[3].rstrip(";"))
    start = {r["f"]["trial_id"] // 2: r["t_us"] for r in recs if r["kind"] == "ev" and r["name"] == "TRIAL_STARTED"
             and r["f"]["trial_id"] % 2 == 0}
    # trial k was the last to start before the pause ended (none in the 55 s), trial k + 1 came right after
    assert start[k] < pause.start_us + 5_000_000 and not [t for t in start.values() if start[k] < t < pause.end_us]
    assert pause.end_us <= start[k + 1] < pause.end_us + 1_000_000
    # the dashboard's and the lab's view of it: the monitor reads the state from the journal
    from dopa_rl.session.monitor import RigState, apply_record

    states = []
    s = RigState("r", str(result.journal))
    for r in recs:
        s = apply_record(s, r)
        states.append(s.state)
    assert "paused" in states and states[-1] == "complete"


def test_demo_gives_the_same_numbers_for_the_same_seed_and_states_the_true_parameters(tmp_path):
    """issue 15: the same seed gave 1809/1722/1730/1793 licks and alpha 0.17-0.50 (the simulated rig on a
    real-time clock at 50x: the host's thread scheduling moved trial starts and the animal's random draws)."""
    summaries = []
    for i in range(2):
        out = tmp_path / f"demo{i}"
        assert main(["demo", "--out", str(out), "--trials", "24", "--restarts", "2", "--seed", "7"]) == 0
        summaries.append(json.loads((out / "report" / "summary.json").read_text()))
    a, b = summaries
    for s in (a, b):
        s.pop("wall_s"), s.pop("latency_ms")                             # wall-clock measurements
    assert a == b
    assert a["fits"]["rw-pavlovian"]["params"]["alpha"] == b["fits"]["rw-pavlovian"]["params"]["alpha"]
    assert a["licks"] == a["device_tally"]["lick_contacts"] > 0 and a["virtual_time"] is True and a["seed"] == 7
    assert a["simulated_animal"]["true_parameters"] == dataclasses.asdict(AnimalParams())
    t0, _ = nwb_contents(tmp_path / "demo0" / "session.nwb")
    t1, _ = nwb_contents(tmp_path / "demo1" / "session.nwb")
    assert t0.equals(t1)


def test_a_host_stall_in_virtual_time_disarms_the_device_and_the_session_goes_on(tmp_path):
    """The host hangs for 2.5 s of device time (the device runs, nobody reads or acknowledges): the device
    trips HOST_TIMEOUT (outputs off, programs cleared, disarmed); the host re-arms (the session resumes) and
    the trial the stall cut is run again; no reward is given twice (the real-time twin of this test is in
    test_session_crash.py)."""
    cfg, rig = load_config(fast_config(tmp_path, 16, p=0.8))
    dev = _device(10)

    def stall(row):
        if row["trial"] == 5:
            dev.advance(2_500_000)                   # host timeout: 1000 ms

    runner = VirtualRunner(cfg, rig, dev, tmp_path / "h.nwb", on_trial=stall)
    result = runner.run()
    assert result.reason == "complete" and result.error is None
    recs = read_journal(result.journal)
    evs = [r for r in recs if r["kind"] == "ev"]
    trips = [e for e in evs if e["name"] == "SAFETY_TRIP" and e["f"]["reason"] == P.TripReason.HOST_TIMEOUT]
    resumed = [e for e in evs if e["name"] == "RESUMED"]          # (protocol v3: the answer to a resuming HELLO)
    assert len(trips) == len(resumed) == 1 and resumed[0]["i"] > trips[0]["i"]
    # the trip came 1000 ms of device time into the stall; the host read it (and re-armed) when it woke
    assert trips[0]["rx"] > trips[0]["t_us"] / 1e6 + 1.0
    notes = " | ".join(r["text"] for r in recs if r["kind"] == "note")
    assert "session resumed" in notes and "re-uploaded" in notes and result.client_stats["rearms"] == 1
    learned = [h["trial"] for h in result.history]
    assert learned == sorted(set(learned)) and len(learned) + len(result.cut) == 16
    path = tmp_path / "h.nwb"
    from dopa_rl.session.export import export_journal

    export_journal(result.journal, path)
    trials, events = nwb_contents(path)
    assert len(rising(dev, "valve")) == len(events["valve"]) == int((trials["reward"] > 0).sum()) > 5


def test_run_speed_virtual_gives_the_same_session_twice_and_refuses_a_real_rig(tmp_path, capsys):
    from pathlib import Path

    cfg = str(Path(__file__).resolve().parents[1] / "examples" / "classical_conditioning.toml")
    outs = []
    for i in range(2):
        out = tmp_path / f"v{i}.nwb"
        assert main(["run", cfg, "--device", "sim", "--speed", "virtual", "--trials", "10", "--out", str(out),
                     "--json", str(tmp_path / f"v{i}.json")]) == 0
        outs.append(out)
    a, b = (json.loads((tmp_path / f"v{i}.json").read_text()) for i in range(2))
    assert a["reason"] == "complete" and a["trials"] == 10
    assert {k: a[k] for k in ("rewards", "anticipatory_licks", "device_tally")} == \
        {k: b[k] for k in ("rewards", "anticipatory_licks", "device_tally")}
    assert _records(Path(str(outs[0]) + ".journal")) == _records(Path(str(outs[1]) + ".journal"))
    capsys.readouterr()
    bad = tmp_path / "rig.nwb"
    assert main(["run", cfg, "--device", "rig", "--speed", "virtual", "--out", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --speed virtual: only with --device sim (got --device rig); a rig runs in real time"]
    assert not list(tmp_path.glob("rig.nwb*"))


class _StallMidUpload(VirtualLink):
    """A host that hangs for 2.5 s of device time between PROGRAM_BEGIN and the first PROGRAM_ACTION of
    program 8 (trial 4's task part, queued in ITI 3): the device trips HOST_TIMEOUT, which clears the
    upload; the action is refused NOT_ARMED, sent again after the re-arm and then refused PROGRAM_STATE."""

    stalled = False

    def send(self, msg, timeout=None):
        if isinstance(msg, P.ProgramAction) and msg.index == 0 and self._uploading == 8 and not self.stalled:
            type(self).stalled = True
            self.device.advance(2_500_000)
        return super().send(msg, timeout)

    def command(self, msg, timeout=None, check=True):
        if isinstance(msg, P.ProgramBegin):
            self._uploading = msg.trial_id
        return super().command(msg, timeout, check)


def test_an_upload_cut_by_a_host_timeout_restarts_the_trial_instead_of_ending_the_session(tmp_path):
    """Seen on the threaded client at --speed max on a loaded machine: PROGRAM_COMMIT refused PROGRAM_STATE
    after a host timeout and re-arm in the middle of an upload ended the session with an error."""
    class Runner(VirtualRunner):
        link_class = _StallMidUpload

    cfg, rig = load_config(fast_config(tmp_path, 10, p=1.0))
    dev = _device(11)
    runner = Runner(cfg, rig, dev, tmp_path / "u.nwb")
    result = runner.run()
    assert _StallMidUpload.stalled
    assert result.reason == "complete", result.error
    recs = read_journal(result.journal)
    notes = " | ".join(r["text"] for r in recs if r["kind"] == "note")
    assert "upload of trial 4's task part (program 8): refused" in notes
    assert "trial 4 uploaded again" in notes or "trial 4 re-uploaded" in notes
    starts = [r["f"]["trial_id"] // 2 for r in recs if r["kind"] == "ev" and r["name"] == "TRIAL_STARTED"
              and r["f"]["trial_id"] % 2 == 0]
    assert starts == list(range(10)) and [h["trial"] for h in result.history] == list(range(10))
    rewarded = sum(1 for h in result.history if h["reward_ul"] > 0)
    planned = sum(1 for k in range(10) if runner.machine.plans[k].reward_ul > 0)
    assert rewarded == len(rising(dev, "valve")) == planned > 3          # trial 4 ran (and gave water) once
