"""Sessions of the simulated device under protocol v3, on a manually stepped virtual clock (exact times):
the same cases as the firmware's host tests in firmware/tests/test_session.c.  A new session takes the
HELLO's limits before it arms; every session has an epoch that a reset or a new session changes;
acknowledgements of another epoch remove nothing; a resume answers RESUMED with the epoch and the valve
time used; device heartbeats report it too; frames of device types are never answered; the budget caps
every sliding minute across sessions."""
from __future__ import annotations

from test_simdevice import MS, Host

from dopa_rl.protocol import codec
from dopa_rl.protocol import messages as P
from dopa_rl.protocol.messages import NackReason
from dopa_rl.sim.device import SimDevice

NONCE = 0x5E55


def _hello(h: Host, max_ms=P.LIMITS_KEEP, gap_ms=0, budget_ms=P.BUDGET_KEEP, timeout_ms=0, debounce_us=0,
           nonce=NONCE):
    h.pump()
    return h.reply(P.Hello(P.PROTOCOL_VERSION, nonce, budget_ms, max_ms, gap_ms, timeout_ms, debounce_us, 0))


def _booted() -> tuple[SimDevice, Host]:
    dev = SimDevice()
    dev.advance(60 * MS)               # past the minimum gap that boot starts
    return dev, Host(dev)


def test_a_new_session_arms_with_the_hello_limits() -> None:
    dev, h = _booted()
    r = _hello(h, 200, 10, 500, 400, 500)
    assert isinstance(r, P.HelloReply) and r.boot == 0 and r.epoch == h.epoch and dev.armed
    assert {k: dev.config[k] for k in ("max_valve_ms", "min_valve_gap_ms", "budget_valve_ms", "host_timeout_ms",
                                       "debounce_us")} == dict(max_valve_ms=200, min_valve_gap_ms=10,
                                                               budget_valve_ms=500, host_timeout_ms=400,
                                                               debounce_us=500)
    t_on = dev.now_us()
    assert h.reply(P.ValvePulse(400)).value == 200          # clamped at the HELLO's maximum
    dev.advance(300 * MS)
    assert dev.pin_edges("valve") == [(t_on, 1), (t_on + 200 * MS, 0)]
    dev.advance(100 * MS + 1)                                # no host: the HELLO's 400 ms timeout, not 1000
    assert not dev.armed


def test_a_hello_with_a_limit_out_of_bounds_changes_nothing() -> None:
    dev, h = _booted()
    for bad in (dict(max_ms=P.LIMITS["max_valve_ms"].max + 1, gap_ms=50, timeout_ms=1000, debounce_us=2000),
                dict(max_ms=1000, gap_ms=50, timeout_ms=99, debounce_us=2000)):
        r = _hello(h, budget_ms=1000, **bad)
        assert isinstance(r, P.Nack) and (r.cmd_type, r.reason) == (P.MsgId.HELLO, NackReason.BAD_VALUE)
    assert not dev.armed and dev.session == 0
    assert dev.config == {k: P.LIMITS[k].default for k in dev.config if k != "flags"} | {"flags": 0}


def test_a_resume_keeps_the_limits_and_proves_the_session() -> None:
    dev, h = _booted()
    _hello(h, 300, 10, 1000, 1000, 2000)
    epoch = h.epoch
    assert epoch != 0
    h.reply(P.ValvePulse(40))
    h.advance(100 * MS)
    r = _hello(h, 900, 50, 5000, 1000, 2000)                # the same nonce: a resume, its limits ignored
    assert isinstance(r, P.Resumed) and h.events[-1] is r
    assert (r.cmd_seq, r.epoch, r.budget_used_ms, r.lost_total) == (h.seq - 1, epoch, 40, 0)
    assert (dev.config["max_valve_ms"], dev.config["budget_valve_ms"]) == (300, 1000)


def test_epochs_differ_across_resets_and_sessions() -> None:
    dev, h = _booted()
    _hello(h)
    e1 = h.epoch
    _hello(h, nonce=NONCE + 1)
    e2 = h.epoch
    dev.reboot()
    dev.advance(60 * MS)
    _hello(h)
    e3 = h.epoch
    assert 0 not in (e1, e2, e3) and len({e1, e2, e3}) == 3
    assert e1 >> 8 == e2 >> 8 and e3 >> 8 == (e1 >> 8) + 1   # high byte: the boot
    assert (e1 & 0xFF, e2 & 0xFF, e3 & 0xFF) == (1, 2, 1)     # low byte: sessions since boot


def test_an_acknowledgement_of_another_epoch_removes_nothing() -> None:
    dev, h = _booted()
    h.auto_ack = False
    _hello(h)
    old = h.epoch
    dev.reboot()                                             # the device resets ...
    dev.advance(60 * MS)
    _hello(h)                                                # ... and opens a new session
    h.reply(P.CueOn())
    assert dev.unacked == 3                                  # HELLO_REPLY, CUE_ONSET, ACK
    dev.write(codec.encode(P.EventAck(3, old), 0))           # a host still acking the session before the reset
    dev.write(codec.encode(P.Heartbeat(3, old), 900))
    assert dev.unacked == 4                                  # nothing removed (the HEARTBEAT's ACK added)
    h.pump()
    dev.advance(60 * MS)                                     # go-back-N: the HELLO_REPLY is sent again
    again = list(h.dec.feed(dev.read()))
    assert isinstance(again[0].msg, P.HelloReply) and again[0].seq == 0
    dev.write(codec.encode(P.EventAck(4, h.epoch), 0))       # under the new epoch: all of it
    assert dev.unacked == 0


def test_frames_of_device_types_are_never_answered() -> None:
    dev, h = _booted()
    _hello(h)
    before = len(h.events)
    dev.write(codec.encode(P.LickOn(5), 77))                 # an echo of a device frame
    dev.write(codec.cobs_encode(codec.build_frame(P.MsgId.ACK, 78, b"\x00\x00\x00")) + b"\x00")   # wrong length
    wire = codec.build_frame(P.MsgId.CUE_ONSET, 79, b"\x00" * 4)
    dev.write(codec.cobs_encode(wire[:-1] + bytes([wire[-1] ^ 0x10])) + b"\x00")   # damaged: bad CRC
    h.pump()
    assert h.events[before:] == [] and dev.stats["foreign_frames"] == 1


def test_heartbeats_report_the_valve_time_used() -> None:
    dev, h = _booted()
    _hello(h)
    h.reply(P.ValvePulse(60))
    h.advance(150 * MS)                                      # closed, and past the 50 ms gap
    h.reply(P.ValveOpen())
    t_open = dev.now_us()
    dev.advance(400 * MS)
    h.pump()
    hb = h.of(P.DeviceHeartbeat)[-1]
    assert hb.budget_used_ms == 60 + -(-(hb.t_us - t_open) // MS)   # an open valve counts up to now


def test_a_host_rotating_session_nonces_gets_one_budget_per_minute() -> None:
    """Finding: a host opening session after session got 1961 ms of opening in 2.6 s against a 300 ms
    budget.  The budget also caps every sliding minute, and no HELLO refreshes that count."""
    dev, h = _booted()
    opened = 0
    for k in range(6):
        _hello(h, 1000, 10, 300, 1000, 2000, nonce=NONCE + k)   # a new session each time, budget 300 ms
        opened += isinstance(h.reply(P.ValvePulse(100)), P.Ack)
        h.advance(150 * MS)
    assert opened == 3 and len(dev.pin_edges("valve")) == 6       # 300 ms in the minute, not 600
    assert h.of(P.SafetyTrip)[-1].reason == P.TripReason.BUDGET
    for k in range(14):                                           # 70 s (7 buckets of 10 s): allowed again
        _hello(h, 1000, 10, 300, 5000, 2000, nonce=NONCE + 10 + k)
        h.advance(5000 * MS)
    _hello(h, 1000, 10, 300, 1000, 2000, nonce=NONCE + 99)
    assert h.reply(P.ValvePulse(100)).value == 100


def test_no_hello_raises_the_minute_ceiling() -> None:
    """As firmware/tests/test_session.c: a host giving every new session a 60 s budget still gets at most
    MINUTE_VALVE_MS of valve time in any minute (device-held); a pulse beyond it is refused, an open valve is
    cut at it."""
    dev, h = _booted()
    opened = 0
    for k in range(3):
        _hello(h, 5000, 10, 60000, 10000, 2000, nonce=NONCE + k)
        opened += isinstance(h.reply(P.ValvePulse(4000)), P.Ack)
        h.advance(4200 * MS)
    assert opened == 2 and len(dev.pin_edges("valve")) == 4         # 8 s in the minute; 4 more would pass 10 s
    assert h.of(P.SafetyTrip)[-1].reason == P.TripReason.BUDGET
    _hello(h, 5000, 10, 60000, 10000, 2000, nonce=NONCE + 9)
    assert isinstance(h.reply(P.ValveOpen()), P.Ack)
    h.advance(3000 * MS)
    closed = h.of(P.ValveClosed)[-1]
    assert closed.open_us == P.MINUTE_VALVE_MS * MS - 8000 * MS and closed.cause == P.CloseCause.BUDGET
