"""Sessions on the simulated device (docs/rig.md, "Sessions"): HELLO resumes or starts a session, the
minimum gap and the volume budget hold across HELLO, re-arm and reset, events a HELLO causes or drops
are sent or counted, and only host command frames keep the device alive.  The firmware's host-build
tests (firmware/tests/test_rig.c) check the same cases."""
from __future__ import annotations

import time

import pytest
from test_simdevice import MS, Host

from dopa_rl.protocol import messages as P
from dopa_rl.protocol import codec
from dopa_rl.protocol.messages import CloseCause, NackReason, TripReason
from dopa_rl.rig.client import CommandOutcomeUnknown, CommandRefused, DeviceClient
from dopa_rl.sim.device import SimDevice
from dopa_rl.rig.transports import open_link
from dopa_rl.testing import SimulatedDUT

NONCE = 0x5E55


def hello(h: Host, nonce: int = NONCE, budget_ms: int = P.BUDGET_KEEP, seq: int | None = None):
    """HELLO_REPLY (a new session) or RESUMED (a resume)."""
    h.pump()  # a boot banner waiting is no answer
    s = h.seq if seq is None else seq
    new = h.send(P.Hello(P.PROTOCOL_VERSION, nonce, budget_ms, P.LIMITS_KEEP, 0, 0, 0, 0), seq)
    for r in new:
        if isinstance(r, (P.HelloReply, P.Resumed)) and r.cmd_seq == s:
            return r
    raise AssertionError(f"no answer to HELLO: {new}")


def resumed(r) -> bool:
    return isinstance(r, P.Resumed)


def armed_host(dev: SimDevice) -> Host:
    h = Host(dev)
    dev.advance(60 * MS)  # past the minimum gap after boot
    r = hello(h)
    assert (r.session, r.dropped) == (NONCE, 0)
    return h


def test_an_echoing_line_does_not_keep_the_device_alive() -> None:
    dev = SimDevice()
    h = armed_host(dev)
    h.reply(P.CueOn())
    t_last = dev.now_us()
    for _ in range(150):           # 1.5 s: the host is gone, the device's own bytes come back to it
        dev.advance(10 * MS)
        dev.write(dev.read())
    assert not dev.armed and not dev.cue
    assert dev.pin_edges("cue")[-1] == (t_last + 1000 * MS, 0)


def test_min_gap_holds_across_boot_hello_and_rearm() -> None:
    dev = SimDevice()
    h = Host(dev)
    dev.advance(20 * MS)
    hello(h)
    assert h.reply(P.ValvePulse(10)).reason == NackReason.SAFETY      # 20 ms after boot
    assert h.of(P.SafetyTrip)[-1].reason == TripReason.MIN_GAP
    dev.advance(31 * MS)
    assert isinstance(h.reply(P.ValvePulse(10)), P.Ack)
    h.advance(15 * MS)                                                 # closed 5 ms ago
    hello(h, nonce=NONCE + 1)                                          # a new session ...
    assert h.reply(P.ValvePulse(10)).reason == NackReason.SAFETY
    h.advance(60 * MS)
    h.reply(P.Configure(1000, 50, 30000, 100, 2000, 0))
    h.reply(P.ValveOpen())
    dev.advance(101 * MS)                                              # ... a host timeout closing the valve
    assert not dev.armed and not dev.valve
    hello(h, nonce=NONCE + 1)                                          # ... and the re-arm: the gap holds
    assert dev.armed
    assert h.reply(P.ValvePulse(10)).reason == NackReason.SAFETY
    assert h.of(P.SafetyTrip)[-1].reason == TripReason.MIN_GAP
    assert len([lv for _t, lv in dev.pin_edges("valve") if lv]) == 2


def test_a_retried_hello_does_not_rerun_a_command() -> None:
    dev = SimDevice()
    h = armed_host(dev)
    hseq = h.seq - 1
    pseq = h.seq
    assert isinstance(h.reply(P.ValvePulse(10)), P.Ack)
    h.advance(100 * MS)                                                # closed, past the min gap
    r = hello(h, seq=hseq)                                             # the HELLO retry arrives late ...
    assert resumed(r) and r.lost_total == 0 and r.epoch == h.epoch and dev.armed   # a resume: RESUMED of our epoch
    assert r.budget_used_ms == 10                                      # and the water the session gave
    again = h.reply(P.ValvePulse(10), seq=pseq)                        # ... and so does the pulse's
    assert isinstance(again, P.Ack) and again.cmd_type == P.MsgId.VALVE_PULSE
    h.advance(50 * MS)
    assert len(dev.pin_edges("valve")) == 2 and len(h.of(P.ValveOpened)) == 1
    assert dev.stats["hellos_new"] == 1 and dev.stats["hellos_resumed"] == 1


def test_resume_after_a_host_timeout_keeps_the_session() -> None:
    dev = SimDevice()
    h = armed_host(dev)
    h.reply(P.Configure(1000, 10, 100, 200, 2000, 0))
    pseq = h.seq
    h.reply(P.ValvePulse(60))
    dev.advance(300 * MS)                                              # pulse over, then the host timeout
    assert not dev.armed
    h.pump()
    seq_before = h.expected
    r = hello(h)
    assert resumed(r) and h.events[-1] is r and dev.armed
    assert h.expected == seq_before + 1                                # the device seq goes on
    h.reply(P.ValvePulse(60), seq=pseq)                                # an old retry: the stored reply
    assert len(h.of(P.ValveOpened)) == 1
    assert h.reply(P.ValvePulse(60)).reason == NackReason.SAFETY       # the budget kept its 60 ms used
    assert h.of(P.SafetyTrip)[-1].reason == TripReason.BUDGET
    assert isinstance(h.reply(P.ValvePulse(40)), P.Ack)


def test_a_new_session_sends_the_events_it_causes_and_counts_what_it_drops() -> None:
    dev = SimDevice()
    h = armed_host(dev)
    h.auto_ack = False
    h.reply(P.CueOn())                                                 # CUE_ONSET + ACK, unacknowledged
    h.reply(P.ValveOpen())                                             # VALVE_OPENED + ACK
    assert dev.unacked == 4
    r = hello(h, nonce=NONCE + 1, budget_ms=70)                        # another host: a new session
    assert isinstance(r, P.HelloReply) and (r.dropped, r.lost_total, dev.config["budget_valve_ms"]) == (4, 4, 70)
    names = [type(e).__name__ for e in h.events[h.events.index(r):]]
    assert names == ["HelloReply", "ValveClosed", "CueOffset"]        # sent in the new session
    assert h.of(P.ValveClosed)[-1].cause == CloseCause.ALL_OFF and not dev.valve and not dev.cue
    h.auto_ack = True
    h.pump()
    h.advance(60 * MS)
    assert isinstance(h.reply(P.ValvePulse(60)), P.Ack)               # the new session's budget: 70 ms
    h.advance(100 * MS)
    assert h.reply(P.ValvePulse(20)).reason == NackReason.SAFETY
    h.pump()
    r = hello(h, nonce=NONCE + 2)                                      # nothing unacknowledged: none dropped
    assert (r.dropped, r.lost_total, dev.config["budget_valve_ms"]) == (0, 4, 70)  # the lost count survives HELLO
    h.pump()
    bad = h.reply(P.Hello(P.PROTOCOL_VERSION, NONCE + 3, P.LIMITS["budget_valve_ms"].max + 1, P.LIMITS_KEEP, 0, 0, 0, 0))
    assert isinstance(bad, P.Nack) and bad.reason == NackReason.BAD_VALUE


def test_ring_overflow_counts_survive_hello() -> None:
    dev = SimDevice()
    h = armed_host(dev)
    h.auto_ack = False
    for i in range(P.EVENT_RING + 5):
        h.send(P.Ping(i))
    lost = dev.stats["events_lost"]
    assert lost > 0
    r = hello(h, nonce=NONCE + 1)
    assert r.lost_total == lost + r.dropped and r.dropped == P.EVENT_RING   # 32 ACKs


# ---------------------------------------------------------------------- the client's default path


def _drop_hello_replies(dut: SimulatedDUT, seconds: float) -> None:
    """From now on, the device's answers to HELLO never leave it for ``seconds`` (boot banners do)."""
    until = time.monotonic() + seconds

    def filt(wire: bytes) -> bytes:
        msg = codec.decode(wire).msg
        return b"" if isinstance(msg, P.HelloReply) and not msg.boot and time.monotonic() < until else wire

    dut.device.tx_filter = filt


def _openings(dut) -> list[int]:
    return [t for t, lv in dut.pin_edges("valve") if lv]


def _wait(cond, timeout: float = 3.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end
        time.sleep(0.01)


def test_one_valve_command_opens_once_across_a_reboot_with_hello_replies_lost():
    dut = SimulatedDUT(speed=1)
    c = DeviceClient(open_link(dut.url))
    try:
        c.start()
        _drop_hello_replies(dut, 1.2)
        dut.device.reboot()
        dut.advance(60 * MS)
        ack = c.valve_pulse(20)                # refused NOT_ARMED, then sent again after the re-arm
        assert ack.value == 20
        time.sleep(0.3)
        assert len(_openings(dut)) == 1
        assert dut.device.stats["hellos_new"] == 2      # start, and the one the reboot calls for
        rec = c.rearm_log[-1]
        assert rec.resumed is False and rec.reset_cause == P.ResetCause.EXTERNAL and rec.t_reply is not None, (
            [(r.why, r.resumed) for r in c.rearm_log], c.stats)
    finally:
        c.safe()
        dut.close()


def test_one_valve_command_opens_once_across_a_host_timeout_with_hello_replies_lost():
    dut = SimulatedDUT(speed=1)
    c = DeviceClient(open_link(dut.url))
    try:
        c.start()
        c.configure(host_timeout_ms=400)
        c.muted = True
        time.sleep(0.5)                        # the device disarms itself
        assert not dut.device.armed
        _drop_hello_replies(dut, 1.2)
        c.muted = False
        assert c.valve_pulse(20).value == 20
        time.sleep(0.3)
        assert len(_openings(dut)) == 1
        assert dut.device.stats["hellos_new"] == 1 and dut.device.stats["hellos_resumed"] >= 1
        assert [r.resumed for r in c.rearm_log] == [False, True], [(r.why, r.resumed) for r in c.rearm_log]
        assert c.stats["new_sessions"] == 1
    finally:
        c.safe()
        dut.close()


def test_a_host_stall_mid_pulse_keeps_the_minimum_gap_through_the_rearm():
    dut = SimulatedDUT(speed=1)
    c = DeviceClient(open_link(dut.url))
    try:
        c.start()
        c.configure(min_valve_gap_ms=500, host_timeout_ms=200)
        time.sleep(0.5)                        # the gap after boot
        c.valve_pulse(100)
        c.muted = True                         # the host stalls while the valve is open
        time.sleep(0.35)
        c.muted = False
        with pytest.raises(CommandRefused) as exc:   # the re-armed device still refuses within the gap
            c.valve_pulse(20)
        assert exc.value.reason == NackReason.SAFETY
        edges = dut.pin_edges("valve")
        assert len(_openings(dut)) == 1 and edges[-1][1] == 0
        time.sleep(0.3)
        assert c.valve_pulse(20).value == 20         # 500 ms after the close: allowed
        time.sleep(0.1)
        edges = dut.pin_edges("valve")
        gaps = [edges[i][0] - edges[i - 1][0] for i in range(2, len(edges), 2)]
        assert gaps and min(gaps) >= 500 * MS
    finally:
        c.safe()
        dut.close()


def test_a_reboot_keeps_the_water_delivered_on_the_default_path():
    """No configure(): the budget the device had at start() minus what was delivered is re-imposed."""
    dut = SimulatedDUT(speed=1)
    c = DeviceClient(open_link(dut.url))
    try:
        c.start()
        c.valve_pulse(100)
        time.sleep(0.15)
        dut.device.reboot()
        _wait(lambda: c.stats["new_sessions"] == 2 and dut.device.armed)
        assert dut.device.config["budget_valve_ms"] == 30000 - 100
        assert c.rearm_log[-1].budget_ms == 29900
    finally:
        c.safe()
        dut.close()


def test_a_reboot_mid_pulse_counts_the_planned_time():
    dut = SimulatedDUT(speed=1)
    c = DeviceClient(open_link(dut.url))
    try:
        c.start()
        c.configure(budget_valve_ms=1000)
        c.valve_pulse(300)
        time.sleep(0.05)
        dut.device.reboot()                   # the valve closes with the reset, no VALVE_CLOSED
        _wait(lambda: c.stats["new_sessions"] == 2 and dut.device.armed)
        time.sleep(0.1)
        assert dut.device.config["budget_valve_ms"] == 700
    finally:
        c.safe()
        dut.close()


def test_commands_in_flight_across_an_unseen_reset_fail_as_unknown():
    """A pulse whose replies are lost keeps being retried; the device reboots (banner lost too) and the
    application re-arms: the device has no session any more, so the HELLO starts a new one.  A retry
    reaching the new session would open the valve again: the client holds retries while its HELLO is
    pending and then reports the pulse as unknown, never resending it."""
    dut = SimulatedDUT(speed=1)
    c = DeviceClient(open_link(dut.url), ack_timeout_s=0.02)
    c.resync_s = 30.0
    try:
        c.start()

        slow_hello: list[float] = []

        def drop(wire: bytes) -> bytes:          # no reply to the pulse, no boot banner, a slow HELLO reply
            msg = codec.decode(wire).msg
            lost = (isinstance(msg, P.HelloReply) and msg.boot
                    or isinstance(msg, P.HelloReply) and slow_hello and time.monotonic() < slow_hello[0]
                    or isinstance(msg, (P.Ack, P.Nack)) and msg.cmd_type == P.MsgId.VALVE_PULSE)
            return b"" if lost else wire

        dut.device.tx_filter = drop
        pc = c.send(P.ValvePulse(20))
        time.sleep(0.05)
        dut.device.reboot()
        dut.advance(60 * MS)                     # retries now reach a disarmed device (NACK NOT_ARMED, lost)
        slow_hello.append(time.monotonic() + 0.3)
        r = c.rearm()
        assert isinstance(r, P.HelloReply)        # a new session
        with pytest.raises(CommandOutcomeUnknown):
            pc.result(5)
        time.sleep(0.3)
        assert len(_openings(dut)) == 1
        assert c.cue_on().value == 1
    finally:
        c.safe()
        dut.close()


def test_a_device_reboot_mid_trial_on_the_default_path():
    dut = SimulatedDUT(speed=1)
    c = DeviceClient(open_link(dut.url))
    A = P.Action
    prog = [(0, A.CUE_ON, 0), (100 * MS, A.VALVE_PULSE, 50), (400 * MS, A.CUE_OFF, 0)]
    try:
        c.start()
        c.upload_program(1, 500, prog)
        c.trial_start()
        time.sleep(0.25)                      # the reward was given, the cue is still on
        dut.device.reboot()
        _wait(lambda: c.stats["new_sessions"] == 2 and dut.device.armed)
        assert dut.device.config["budget_valve_ms"] == 30000 - 50
        c.upload_program(2, 300, prog[:2])    # the session goes on
        c.trial_start()
        time.sleep(0.45)
        names = []
        while not c.events.empty():
            names.append(c.events.get_nowait().name)
        assert names.count("TRIAL_STARTED") == 2 and names.count("TRIAL_ENDED") == 1   # trial 1 died with the reset
        assert names.count("VALVE_OPENED") == 2 and names.count("VALVE_CLOSED") == 2
        assert len(_openings(dut)) == 2
        assert [r.resumed for r in c.rearm_log] == [False, False] and c.rearm_log[1].reset_cause == P.ResetCause.EXTERNAL
    finally:
        c.safe()
        dut.close()


def test_a_budget_configured_after_a_reboot_counts_the_water_given_before():
    """configure(budget_valve_ms=B) is the session's budget: after a reset (new device session) the device
    is given B minus what was delivered before it."""
    dut = SimulatedDUT(speed=1)
    c = DeviceClient(open_link(dut.url))
    try:
        c.start()
        c.configure(budget_valve_ms=1000, min_valve_gap_ms=10)
        c.valve_pulse(100)
        time.sleep(0.15)
        dut.device.reboot()
        _wait(lambda: c.stats["new_sessions"] == 2 and dut.device.armed)
        time.sleep(0.1)
        assert dut.device.config["budget_valve_ms"] == 900
        c.configure(budget_valve_ms=500)
        assert dut.device.config["budget_valve_ms"] == 400      # 500 for the session, 100 given before
        assert c._config.budget_valve_ms == 500
    finally:
        c.safe()
        dut.close()
