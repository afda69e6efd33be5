"""How a live session stops: Ctrl-C at any moment ends with the outputs off and the NWB written (or a line
saying how to recover it), an upload of unknown outcome does not end the session, and ``recover`` counts
every corrupt journal line."""
from __future__ import annotations

import signal

import pytest
from _session_support import fast_config, nwb_contents, rising, sim_rig
from _virtual_rig import VirtualRig

from dopa_rl.cli import main
from dopa_rl.rig.client import CommandOutcomeUnknown, DeviceClient
from dopa_rl.session import export, load_config, open_device, read_journal, run_session
from dopa_rl.session import runner as runner_mod
from dopa_rl.session.machine import SessionMachine
from dopa_rl.session.virtual import run_virtual_session
from dopa_rl.sim.device import device_from_options

SPEED = 10.0   # the device's default host timeout before CONFIGURE is 1000 ms of device time: 100 ms here


def _session(tmp_path, n, out="s.nwb", seed=0, on_trial=None, realtime=False):
    """A session on the simulated rig: in virtual time (dopa_rl.session.virtual), or (``realtime``) through
    the threaded DeviceClient against the rig's real-time clock at SPEED."""
    cfg, rig = load_config(fast_config(tmp_path, n))
    if not realtime:
        dev, _ = device_from_options({"seed": str(seed), "animal": "rw"})
        result, path = run_virtual_session(cfg, rig, dev, tmp_path / out, on_trial=on_trial)
        return result, path, dev
    dut = sim_rig(SPEED, seed)
    try:
        result, path = run_session(cfg, rig, open_device(dut.url), tmp_path / out, speed=SPEED, on_trial=on_trial)
    finally:
        dut.close()
    return result, path, dut


def _sigint_on_export(monkeypatch, times: int):
    """Ctrl-C ``times`` times just as the NWB starts being written."""
    real = export.session_data

    def interrupted(*a, **kw):
        for _ in range(times):
            signal.raise_signal(signal.SIGINT)
        return real(*a, **kw)

    monkeypatch.setattr(export, "session_data", interrupted)


def test_ctrl_c_while_the_nwb_is_written_still_writes_it(tmp_path, monkeypatch):
    """Before, the KeyboardInterrupt escaped run_session: journal and raw log, no NWB, exit 130."""
    _sigint_on_export(monkeypatch, 1)
    result, path, _ = _session(tmp_path, 3)
    assert path is not None and path.exists() and result.reason == "complete" and result.nwb_error is None
    assert len(nwb_contents(path)[0]) == 3


def test_a_second_ctrl_c_while_writing_says_how_to_recover(tmp_path, monkeypatch):
    _sigint_on_export(monkeypatch, 2)
    result, path, _ = _session(tmp_path, 3)
    assert path is None and not (tmp_path / "s.nwb").exists()
    assert "dopa-rl recover" in result.nwb_error and str(result.journal) in result.nwb_error
    assert result.reason == "interrupted"
    monkeypatch.undo()
    assert main(["recover", str(result.journal), "--out", str(tmp_path / "r.nwb")]) == 0
    assert len(nwb_contents(tmp_path / "r.nwb")[0]) == 3


def test_ctrl_c_mid_session_turns_outputs_off_and_writes_the_nwb(tmp_path):
    def ctrl_c(row):
        if row["trial"] == 3:
            signal.raise_signal(signal.SIGINT)

    result, path, dut = _session(tmp_path, 40, on_trial=ctrl_c)
    # in virtual time, exactly: trial 3 is reported once trial 4 is queued in its ITI; the loop stops at
    # the next event, before trial 4 starts (nothing is cut)
    assert result.reason == "interrupted" and path is not None and result.n_trials == 4 and not result.cut
    _check_stopped(result, path, dut)


def test_ctrl_c_in_the_middle_of_a_trial_cuts_it_into_its_own_interval(tmp_path):
    """SIGINT 300 ms into trial 5 (its outcome is at 1 s): outputs off, trials 0-4 in the trials table,
    trial 5 in the NWB's cut_trials (before, it was written as an omission with reward 0 and aborted=1)."""
    from dopa_rl.protocol import codec
    from dopa_rl.protocol import messages as P

    cfg, rig = load_config(fast_config(tmp_path, 40, p=1.0))
    dev, _ = device_from_options({"seed": "0", "animal": "rw"})
    dec, box = codec.FrameDecoder(), {}

    def watch(wire):   # the device's bytes as they go out (the device calls it; it must not call back in)
        for rec in dec.feed(wire):
            if isinstance(rec.msg, P.TrialStarted) and rec.msg.trial_id == 10:
                box["t5"] = dev.clock.now_us
        if "t5" in box and dev.clock.now_us >= box["t5"] + 300_000 and "sent" not in box:
            box["sent"] = dev.clock.now_us
            signal.raise_signal(signal.SIGINT)

    dev.on_tx = watch
    result, path = run_virtual_session(cfg, rig, dev, tmp_path / "m.nwb")
    assert result.reason == "interrupted" and result.n_trials == 5 and list(result.cut) == [5]
    assert box["sent"] - box["t5"] < 400_000
    _check_stopped(result, path, dev)


def _check_stopped(result, path, dut):
    for pin in ("valve", "cue", "tone", "ttl"):
        edges = dut.pin_edges(pin)
        assert not edges or edges[-1][1] == 0, pin
    trials, _ = nwb_contents(path)
    records = read_journal(result.journal)
    learned = [r["trial"] for r in records if r["kind"] == "result"]
    # the trials table holds exactly the trials learned from; a trial cut by the stop is journaled and
    # sits in the NWB's cut_trials intervals
    assert list(trials["trial"]) == learned
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(path), "r") as io:
        f = io.read()
        cut = f.intervals["cut_trials"].to_dataframe() if "cut_trials" in f.intervals else None
    if result.cut:
        assert cut is not None and sorted(cut["trial"]) == sorted(result.cut)
        assert any("was running when the session ended (interrupted)" in r["text"] for r in records if r["kind"] == "note")
    else:
        assert cut is None
    assert not set(result.cut) & set(learned)


@pytest.mark.realtime   # the threaded client (a subclass of it): a simulated rig on a real-time clock
def test_an_upload_of_unknown_outcome_does_not_end_the_session(tmp_path, monkeypatch):
    """A reset during an upload (CommandOutcomeUnknown) used to end ``dopa-rl run``."""
    box = {"calls": 0}

    class ResetDuringUpload(DeviceClient):
        def upload_program(self, trial_id, duration_ms, actions, **kw):
            box["calls"] += 1
            if box["calls"] == 7:                                       # trial 3's task part
                box["dut"].device.reboot()
                raise CommandOutcomeUnknown("test: the device reset during the upload")
            return super().upload_program(trial_id, duration_ms, actions, **kw)

    monkeypatch.setattr(runner_mod, "DeviceClient", ResetDuringUpload)
    cfg, rig = load_config(fast_config(tmp_path, 10, p=1.0))
    dut = box["dut"] = sim_rig(SPEED, 3)
    try:
        result, path = run_session(cfg, rig, open_device(dut.url), tmp_path / "u.nwb", speed=SPEED)
    finally:
        dut.close()
    assert result.reason == "complete", result.error
    records = read_journal(result.journal)
    notes = " | ".join(r["text"] for r in records if r["kind"] == "note")
    assert "outcome unknown" in notes and "device reset" in notes
    trials, events = nwb_contents(path)
    assert len(trials) >= 9                                              # at most the running trial was cut
    started = [r["f"]["trial_id"] for r in records if r["kind"] == "ev" and r["name"] == "TRIAL_STARTED"]
    task = [t // 2 for t in started if t % 2 == 0]
    assert len(task) == len(set(task))                                   # no trial ran twice
    assert len(rising(dut, "valve")) == len(events["valve"]) == int((trials["reward"] > 0).sum())


def test_recover_warns_about_and_counts_every_corrupt_line(tmp_path, capsys):
    """Before, a corrupt line in the middle of a journal was skipped silently."""
    cfg, rig = load_config(fast_config(tmp_path, 6))
    m = SessionMachine.of(cfg, rig, 1.0)
    vr = VirtualRig(m)
    vr.begin()
    vr.run()
    import json

    lines = [json.dumps(r) for r in vr.journal_records({"max_reward_ul": cfg.max_reward_ul, "subject": "m1"})]
    evs = [i for i, ln in enumerate(lines) if '"kind": "ev"' in ln and "HEARTBEAT" in ln]
    lines[evs[3]] = lines[evs[3]][:40] + "\x00garbage"                   # damaged in the middle
    lines[evs[7]] = "[1, 2]"                                              # JSON, but no record
    journal = tmp_path / "d.nwb.journal"
    journal.write_text("\n".join(lines) + "\n" + '{"kind":"ev","i":9')      # and a cut last line
    assert main(["recover", str(journal), "--out", str(tmp_path / "d.nwb")]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: ") and "3 corrupt lines skipped" in err[0]
    assert f"line {evs[3] + 1}, {evs[7] + 1}, {len(lines) + 1}" in err[0]
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(tmp_path / "d.nwb"), "r") as io:
        f = io.read()
        assert "3 corrupt lines skipped" in f.notes and len(f.trials) == 6


@pytest.mark.realtime   # the threaded client (a subclass of it): a simulated rig on a real-time clock
@pytest.mark.parametrize("when", ["handshake", "configure"])
def test_ctrl_c_while_starting_ends_cleanly(tmp_path, monkeypatch, when):
    """SIGINT during HELLO or CONFIGURE: the session stops before its first trial, outputs off, journal ended."""
    class Interrupted(DeviceClient):
        def start(self, *a, **kw):
            if when == "handshake":
                signal.raise_signal(signal.SIGINT)
            return super().start(*a, **kw)

        def configure(self, **kw):
            if when == "configure":
                signal.raise_signal(signal.SIGINT)
            return super().configure(**kw)

    monkeypatch.setattr(runner_mod, "DeviceClient", Interrupted)
    result, path, dut = _session(tmp_path, 5, realtime=True)
    assert result.reason == "interrupted" and result.n_trials == 0
    records = read_journal(result.journal)
    assert records[-1]["kind"] == "end" and records[-1]["reason"] == "interrupted"
    assert not rising(dut, "valve") and not [r for r in records if r["kind"] == "ev" and r["name"] == "TRIAL_STARTED"]
