"""Sessions on the simulated device (docs/rig.md, "Sessions"): HELLO resumes or starts a session, the
minimum gap and the volume budget hold across HELLO, re-arm and reset, events a HELLO causes or drops
are sent or counted, and only host command frames keep the device alive.  The firmware's host-build
tests (firmware/tests/test_rig.c) check the same cases."""
from __future__ import annotations

from test_simdevice import MS, Host

from dopa_rl.rig import _protocol as P
from dopa_rl.rig._protocol import CloseCause, NackReason, TripReason
from dopa_rl.rig.simdevice import SimDevice

NONCE = 0x5E55


def hello(h: Host, nonce: int = NONCE, budget_ms: int = P.BUDGET_KEEP, seq: int | None = None) -> P.HelloReply:
    h.pump()  # a boot banner waiting is no answer
    r = h.reply(P.Hello(P.PROTOCOL_VERSION, nonce, budget_ms), seq)
    assert isinstance(r, P.HelloReply), r
    return r


def armed_host(dev: SimDevice) -> Host:
    h = Host(dev)
    dev.advance(60 * MS)  # past the minimum gap after boot
    r = hello(h)
    assert (r.session, r.resumed, r.dropped) == (NONCE, 0, 0)
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
    assert (r.resumed, r.session, r.dropped) == (1, NONCE, 0) and dev.armed
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
    assert r.resumed == 1 and h.events[-1] is r and dev.armed
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
    assert (r.resumed, r.dropped, r.lost_total, r.budget_valve_ms) == (0, 4, 4, 70)
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
    assert (r.dropped, r.lost_total, r.budget_valve_ms) == (0, 4, 70)  # the lost count survives HELLO
    h.pump()
    bad = h.reply(P.Hello(P.PROTOCOL_VERSION, NONCE + 3, P.LIMITS["budget_valve_ms"].max + 1))
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
