"""Crash safety and a bad link: ``kill -9`` of a running session loses nothing the device reported; link
faults (corruption, drops, a disconnect) lose or duplicate no event and deliver no extra reward."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from _session_support import fast_config, nwb_contents, rising, sim_rig

from dopa_rl.cli import main
from dopa_rl.rig.transports import PtyBridge, open_link
from dopa_rl.session import load_config, open_device, read_journal, run_session

pytestmark = pytest.mark.realtime   # a simulated rig on a real-time clock, a pty, kill -9 (docs/sessions.md, Tests)

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _results(journal: Path) -> int:
    if not journal.exists():
        return 0
    return sum(1 for line in journal.read_text().splitlines() if '"kind":"result"' in line)


def test_kill_9_then_recover_keeps_every_reported_event(tmp_path):
    speed = 10.0
    cfg = fast_config(tmp_path, 200)
    out = tmp_path / "s.nwb"
    journal = Path(str(out) + ".journal")
    dut = sim_rig(speed, seed=5)
    bridge = PtyBridge(open_link(dut.url), poll_s=0.002)
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "dopa_rl.cli", "run", str(cfg), "--device", bridge.path,
                             "--speed", str(speed), "--out", str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while _results(journal) < 8:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the session did not get going"
            time.sleep(0.05)
        time.sleep(0.37)                      # mid-trial, somewhere
        os.kill(proc.pid, signal.SIGKILL)
        t_kill = dut.now_us()
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        bridge.close()
        dut.close()
    assert not out.exists()                   # the NWB was never written: only the journal survives
    recovered = tmp_path / "r.nwb"
    assert main(["recover", str(journal), "--out", str(recovered)]) == 0
    trials, events = nwb_contents(recovered)
    assert len(trials) >= 8
    t0 = next(r for r in read_journal(journal) if r["kind"] == "ev")["t_us"]
    # everything the device reported up to shortly before the kill (the host acknowledges within ~2 ms of
    # real time; 0.5 s of device time at 10x is 50 ms) is in the recovered file, at its device time
    before = t_kill - 500_000
    dev_licks = (np.array(rising(dut, "lick", t0, before)) - t0) / 1e6
    dev_valve = (np.array(rising(dut, "valve", t0, before)) - t0) / 1e6
    assert len(dev_licks) > 5 and len(dev_valve) > 2
    lick, valve = events["lick"], events["valve"]
    assert all(np.isclose(lick, t, atol=1e-6).any() for t in dev_licks)
    assert all(np.isclose(valve, t, atol=1e-6).any() for t in dev_valve)
    assert len(lick) == len(set(np.round(lick, 6)))          # nothing twice
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(recovered), "r") as io:
        f = io.read()
        assert "INCOMPLETE" in f.session_description and "incomplete" in list(f.keywords[:])


def test_link_faults_lose_nothing_and_give_no_extra_reward(tmp_path):
    # 10x: a 100 ms outage is 1 s of device time, well inside the device's 32-event ring (at 50x the ring
    # would overflow, which the device reports as EVENT_OVERFLOW: a real rig at 1x never gets near that)
    speed = 10.0
    cfg, rig = load_config(fast_config(tmp_path, 30, p=0.7))
    dut = sim_rig(speed, seed=6)
    url = f"faulty://{dut.url}#corrupt=0.002&drop=0.002&seed=3"
    try:
        port = open_device(url)

        def pull_cable(row):
            if row["trial"] == 15:
                port.inject_disconnect(100)

        result, path = run_session(cfg, rig, port, tmp_path / "f.nwb", speed=speed, on_trial=pull_cable)
    finally:
        dut.close()
    assert result.reason == "complete" and result.n_trials == 30
    st = result.client_stats
    assert st["reconnects"] >= 1 and st["decode_errors"] > 0         # the faults really happened
    records = read_journal(result.journal)
    evs = [r for r in records if r["kind"] == "ev"]
    assert [e["i"] for e in evs] == list(range(len(evs)))           # delivered once each, in order
    assert not [e for e in evs if e["name"] == "ERROR"]               # the device lost nothing (no overflow)
    seqs = [e["seq"] for e in evs if e["name"] != "HELLO_REPLY"]
    # strictly increasing device numbering: nothing repeated (gaps are the client's own heartbeat replies)
    assert all(0 < (b - a) % 65536 < 1000 for a, b in zip(seqs, seqs[1:]))
    trials, events = nwb_contents(path)
    t0, t1 = evs[0]["t_us"], evs[-1]["t_us"] - 1000
    dev_valve = rising(dut, "valve", t0)
    assert len(dev_valve) == int((trials["reward"] > 0).sum()) == len(events["valve"])   # no extra reward
    dev_licks = rising(dut, "lick", t0, t1)
    np.testing.assert_allclose(events["lick"][events["lick"] < (t1 - t0) / 1e6], (np.array(dev_licks) - t0) / 1e6,
                               atol=1e-6)


def test_ctrl_c_turns_outputs_off_then_writes_nwb(tmp_path):
    speed = 10.0
    cfg = fast_config(tmp_path, 200)
    out = tmp_path / "c.nwb"
    journal = Path(str(out) + ".journal")
    dut = sim_rig(speed, seed=7)
    bridge = PtyBridge(open_link(dut.url), poll_s=0.002)
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "dopa_rl.cli", "run", str(cfg), "--device", bridge.path,
                             "--speed", str(speed), "--out", str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while _results(journal) < 5:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.05)
        time.sleep(0.12)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 130, stderr
        time.sleep(0.1)
        # every output is off on the device, and stayed off after the host left
        for pin in ("valve", "cue", "tone", "ttl"):
            edges = dut.pin_edges(pin)
            assert not edges or edges[-1][1] == 0, pin
    finally:
        if proc.poll() is None:
            proc.kill()
        bridge.close()
        dut.close()
    records = read_journal(journal)
    assert records[-1]["kind"] == "end" and records[-1]["reason"] == "interrupted"
    # ALL_OFF went out (the client's safe()), after the last trial command
    from dopa_rl.protocol import messages as P
    from dopa_rl.rig.rawlog import TX, decode_rawlog

    tx = [type(f.received.msg).__name__ for f in decode_rawlog(str(out) + ".raw") if f.direction == TX and f.error is None]
    assert "AllOff" in tx and "ProgramBegin" not in tx[tx.index("AllOff"):]
    assert P.AllOff
    trials, _ = nwb_contents(out)
    assert len(trials) >= 5 and "interrupted" in stdout
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(out), "r") as io:
        assert "INCOMPLETE (interrupted)" in io.read().session_description


def test_device_reboot_mid_session_is_recorded_and_gives_no_extra_reward(tmp_path):
    speed = 20.0
    cfg, rig = load_config(fast_config(tmp_path, 24, p=0.8))
    dut = sim_rig(speed, seed=8)
    try:
        def reboot(row):
            if row["trial"] == 10:
                dut.device.reboot()

        result, path = run_session(cfg, rig, open_device(dut.url), tmp_path / "r.nwb", speed=speed, on_trial=reboot)
    finally:
        dut.close()
    records = read_journal(result.journal)
    names = [r["name"] for r in records if r["kind"] == "ev"]
    assert "HELLO_REPLY" in names[5:]                                   # the boot banner is in the journal
    assert any("device reset" in r["text"] for r in records if r["kind"] == "note")
    assert result.reason == "complete" and result.n_trials == 24
    trials, events = nwb_contents(path)
    assert len(events["valve"]) == len(rising(dut, "valve")) == int((trials["reward"] > 0).sum())


def test_events_lost_by_the_device_do_not_stall_the_session(tmp_path):
    """A device whose ring overflows during an outage (reported as EVENT_OVERFLOW): the session goes on."""
    import numpy as _np

    from dopa_rl.sim.animal import SimulatedAnimal
    from dopa_rl.testing import SimulatedDUT

    speed = 50.0
    cfg, rig = load_config(fast_config(tmp_path, 20))
    dut = SimulatedDUT(speed=speed, animal=SimulatedAnimal(_np.random.default_rng(9)), ring_size=8)
    try:
        port = open_device(f"faulty://{dut.url}#seed=1")

        def pull_cable(row):
            if row["trial"] == 6:
                port.inject_disconnect(120)     # 6 s of device time: more events than the 8-frame ring holds

        result, path = run_session(cfg, rig, port, tmp_path / "o.nwb", speed=speed, on_trial=pull_cable)
    finally:
        dut.close()
    records = read_journal(result.journal)
    assert any(r["kind"] == "ev" and r["name"] == "ERROR" for r in records)            # the device said so
    assert any("EVENT_OVERFLOW" in r["text"] for r in records if r["kind"] == "note")
    assert result.reason == "complete"
    trials, events = nwb_contents(path)
    assert 15 <= len(trials) <= 20
    assert len(rising(dut, "valve")) <= sum(1 for r in records if r["kind"] == "plan" and r["plan"]["rewarded"])


def test_journal_cut_mid_line_and_bad_journal(tmp_path, capsys):
    from dopa_rl.session.journal import JournalWriter

    j = JournalWriter(tmp_path / "x.nwb.journal").start()
    j.write("note", text="one")
    j.stop()
    j.safe()                                                   # idempotent
    with open(tmp_path / "x.nwb.journal", "a") as fh:
        fh.write('{"kind":"ev","i":0,"na')                     # a crash in the middle of a line
    recs = read_journal(tmp_path / "x.nwb.journal")
    assert [r["kind"] for r in recs] == ["header", "note"] and recs[0]["version"] == 1 and "ev" in recs[0]["kinds"]
    (tmp_path / "bad.journal").write_text("hello\n")
    assert main(["recover", str(tmp_path / "bad.journal"), "--out", str(tmp_path / "r.nwb")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a dopa_rl session journal" in err[0] and not (tmp_path / "r.nwb").exists()


def test_host_stall_rearm_is_recorded_and_the_session_goes_on(tmp_path):
    """The host goes silent longer than the device's host timeout: the device disarms (SAFETY_TRIP
    HOST_TIMEOUT, programs cleared), the client re-arms, the session goes on; no reward is given twice."""
    from dopa_rl.session.export import export_journal
    from dopa_rl.session.runner import Runner

    speed = 10.0
    cfg, rig = load_config(fast_config(tmp_path, 16, p=0.8))
    dut = sim_rig(speed, seed=10)
    box = {}

    def stall(row):
        if row["trial"] == 5:
            box["runner"].client.muted = True       # nothing at all goes out, as if the host hung
            time.sleep(1.5)                          # host timeout: 1000 ms x 10 = 10 s of device time = 1 s
            box["runner"].client.muted = False

    try:
        runner = Runner(cfg, rig, open_device(dut.url), tmp_path / "h.nwb", speed=speed, on_trial=stall)
        box["runner"] = runner
        result = runner.run()
        path = export_journal(result.journal, tmp_path / "h.nwb")
    finally:
        dut.close()
    records = read_journal(result.journal)
    notes = " | ".join(r["text"] for r in records if r["kind"] == "note")
    # what the device reported across the stall is journaled: the trip (or, when its ring overflowed while
    # nobody acknowledged, the EVENT_OVERFLOW that says how many events it lost) and the re-arm
    assert "HOST_TIMEOUT" in notes or "EVENT_OVERFLOW" in notes, notes
    assert "re-armed" in notes, notes
    assert result.reason == "complete" and result.client_stats["rearms"] >= 1
    trials, events = nwb_contents(path)
    assert len(trials) >= 14
    assert len(rising(dut, "valve")) == len(events["valve"]) == int((trials["reward"] > 0).sum())
