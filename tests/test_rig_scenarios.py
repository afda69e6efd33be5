"""The rig scenario list: ONE test body per scenario, run against two devices through the host client.

* ``sim``: the Python simulated device (:class:`dopa_rl.testing.SimulatedDUT`, real-time clock);
* ``emu``: the real firmware in the simavr emulator (``emulated_dut`` fixture from tests/conftest.py,
  marked ``hil``; it skips when the AVR toolchain is missing unless ``DOPA_RL_REQUIRE_HIL=1``).

Every timing is asserted in *device* time (pin edges and event ``t_us``), never with the wall clock.
"""
from __future__ import annotations

import queue
import time
from collections.abc import Iterator

import pytest

from dopa_rl.errors import DeviceError
from dopa_rl.protocol import messages as P
from dopa_rl.rig.client import CommandRefused, DeviceClient, Event
from dopa_rl.rig.transports import open_link

MS = 1000
OUTPUTS = ("valve", "cue", "tone", "ttl")


@pytest.fixture(params=["sim", pytest.param("emu", marks=pytest.mark.hil)])
def dut(request):
    if request.param == "sim":
        from dopa_rl.testing import SimulatedDUT

        d = SimulatedDUT(speed=1.0)
        yield d
        d.close()
    else:
        yield request.getfixturevalue("emulated_dut")


@pytest.fixture(params=[False, True], ids=["manual", "auto"])
def client(request, dut) -> Iterator[DeviceClient]:
    """The client with ``auto_rearm=False`` and with its default options (auto re-arm on)."""
    c = DeviceClient(open_link(dut.url)) if request.param else DeviceClient(open_link(dut.url), auto_rearm=False)
    c.start()
    yield c
    c.safe()


@pytest.fixture
def manual_client(dut) -> Iterator[DeviceClient]:
    c = DeviceClient(open_link(dut.url), auto_rearm=False)
    c.start()
    yield c
    c.safe()


@pytest.fixture
def auto_client(dut) -> Iterator[DeviceClient]:
    c = DeviceClient(open_link(dut.url))   # the default options
    c.start()
    yield c
    c.safe()


def wait_event(c: DeviceClient, name: str, timeout: float = 3.0, where=lambda e: True) -> Event:
    """Next event called ``name`` satisfying ``where`` (others are skipped)."""
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {name} event within {timeout} s")
        try:
            ev = c.events.get(timeout=left)
        except queue.Empty:
            continue
        if ev.name == name and where(ev):
            return ev


def wait_edges(dut, pin: str, n: int, timeout: float = 3.0) -> list[tuple[int, int]]:
    end = time.monotonic() + timeout
    while len(dut.pin_edges(pin)) < n:
        if time.monotonic() > end:
            raise AssertionError(f"{pin} changed {len(dut.pin_edges(pin))} times, expected {n}")
        time.sleep(0.005)
    return dut.pin_edges(pin)


def u32(t: int) -> int:
    return t & 0xFFFFFFFF


def test_handshake_and_versions(dut, client):
    h = client.hello
    assert h.protocol_version == P.PROTOCOL_VERSION and h.schema_hash == P.SCHEMA_HASH
    assert h.firmware_version == P.FIRMWARE_VERSION
    assert h.board in (P.Board.PYTHON_SIM, P.Board.SIMAVR, P.Board.UNO, P.Board.NANO)
    assert h.boot == 0 and h.session == client.session_nonce and h.epoch != 0 and h.event_ring >= P.EVENT_RING
    assert client.ping(12345).value == 12345
    assert all(dut.pin_edges(p) == [] for p in OUTPUTS)  # HELLO arms but switches nothing on


def test_valve_pulse_50ms(dut, client):
    ack = client.valve_pulse(50)
    assert ack.value == 50
    opened = wait_event(client, "VALVE_OPENED")
    closed = wait_event(client, "VALVE_CLOSED")
    (t_on, lv_on), (t_off, lv_off) = wait_edges(dut, "valve", 2)
    assert (lv_on, lv_off) == (1, 0)
    assert abs((t_off - t_on) - 50 * MS) <= 1 * MS
    assert abs(closed.msg.open_us - 50 * MS) <= 1 * MS and closed.msg.cause == P.CloseCause.PULSE_END
    assert abs(opened.msg.t_us - u32(t_on)) <= 100 and abs(closed.msg.t_us - u32(t_off)) <= 100


def test_lick_pulse_gives_timestamped_lick_events(dut, client):
    dut.set_lick(1)
    dut.advance(30 * MS)
    dut.set_lick(0)
    on = wait_event(client, "LICK_ON")
    off = wait_event(client, "LICK_OFF")
    (t_rise, _), (t_fall, _) = wait_edges(dut, "lick", 2)
    assert abs(on.msg.t_us - u32(t_rise)) <= 20, (on.msg.t_us, t_rise)
    assert abs(off.msg.t_us - u32(t_fall)) <= 20, (off.msg.t_us, t_fall)
    # the client's clock map puts the lick on the host clock, before it was received
    assert on.t_host is not None and on.t_host <= on.t_received + 1e-3


def _burn(seconds: float) -> None:
    end = time.monotonic() + seconds
    x = 0
    while time.monotonic() < end:
        x += sum(range(2000))


def test_trial_program_edges_on_schedule_while_host_busy(dut, client):
    A = P.Action
    client.upload_program(7, 300, [(50 * MS, A.CUE_ON, 0), (150 * MS, A.CUE_OFF, 0),
                                   (200 * MS, A.VALVE_PULSE, 40), (220 * MS, A.TTL_PULSE, 5)])
    client.trial_start(P.TrialWhen.NOW)
    _burn(0.2)           # the host is busy computing ...
    time.sleep(0.15)     # ... then asleep, while the device runs the trial
    started = wait_event(client, "TRIAL_STARTED")
    ended = wait_event(client, "TRIAL_ENDED")
    assert started.msg.trial_id == ended.msg.trial_id == 7 and ended.msg.aborted == 0
    t0 = started.t_device_us
    cue = wait_edges(dut, "cue", 2)
    valve = wait_edges(dut, "valve", 2)
    ttl = wait_edges(dut, "ttl", 2)
    expect = [(cue[0], 50 * MS, 1), (cue[1], 150 * MS, 0), (valve[0], 200 * MS, 1), (ttl[0], 220 * MS, 1)]
    for (t, level), offset, want_level in expect:
        assert level == want_level
        assert abs(u32(t) - u32(t0 + offset)) <= 100, (t - t0, offset)
    assert abs(valve[1][0] - valve[0][0] - 40 * MS) <= 1 * MS
    assert abs(ended.t_device_us - t0 - 300 * MS) <= 100


def test_lick_contingent_reward_within_1ms(dut, client):
    client.configure(debounce_us=500)
    A = P.Action
    client.upload_program(9, 400, [], lick_window=(20 * MS, 350 * MS, A.VALVE_PULSE, 30))
    client.trial_start()
    wait_event(client, "TRIAL_STARTED")
    dut.advance(60 * MS)
    dut.set_lick(1)
    dut.advance(20 * MS)
    dut.set_lick(0)
    wait_event(client, "VALVE_CLOSED")
    (t_lick, _), _ = wait_edges(dut, "lick", 2)
    (t_open, lv), (t_close, _) = wait_edges(dut, "valve", 2)
    assert lv == 1 and 0 <= t_open - t_lick <= 1 * MS, t_open - t_lick
    assert abs(t_close - t_open - 30 * MS) <= 1 * MS
    # only the first lick in the window rewards
    dut.advance(30 * MS)
    dut.set_lick(1)
    dut.advance(20 * MS)
    dut.set_lick(0)
    wait_event(client, "TRIAL_ENDED")
    assert len(dut.pin_edges("valve")) == 2


def test_host_silence_turns_every_output_off(dut, manual_client):
    client = manual_client
    client.configure(host_timeout_ms=300, max_valve_ms=3000)
    client.cue_on()
    client.tone_on(4000)
    last = client.valve_open()
    client.muted = True   # the host hangs: not a byte more
    t_mute = dut.now_us()
    trip = wait_event(client, "SAFETY_TRIP")
    assert trip.msg.reason == P.TripReason.HOST_TIMEOUT
    for pin in ("valve", "cue", "tone"):
        t_off, level = wait_edges(dut, pin, 2)[-1]
        assert level == 0
        assert last.t_us + 300 * MS - 2 * MS <= u32(t_off) <= u32(t_mute + 300 * MS + 5 * MS), (pin, t_off, t_mute)
    client.muted = False
    with pytest.raises(CommandRefused) as exc:   # disarmed until a new HELLO
        client.cue_on()
    assert exc.value.reason == P.NackReason.NOT_ARMED
    client.rearm()                               # a new session: armed, our limits applied again
    assert client.cue_on().value == 1
    client.muted = True                          # the 300 ms host timeout is back in force
    t_mute = dut.now_us()
    wait_event(client, "SAFETY_TRIP")
    t_off, level = wait_edges(dut, "cue", 4)[-1]
    assert level == 0 and u32(t_off) <= u32(t_mute + 305 * MS)
    client.muted = False
    client.rearm()
    assert client.cue_on().value == 1
    assert wait_edges(dut, "cue", 5)[-1][1] == 1


def test_host_stall_mid_pulse_rearms_by_itself(dut, auto_client):
    """The default client: the host stalls while the valve is open, the device cuts it (host timeout) and
    disarms; the client resumes the session by itself.  The minimum gap and the water already given hold."""
    client = auto_client
    client.configure(host_timeout_ms=600, min_valve_gap_ms=500, budget_valve_ms=800)
    dut.advance(500 * MS)                                 # the gap after boot
    assert client.valve_open().value == 800               # planned close: when the budget runs out
    client.muted = True                                   # the host stalls mid-pulse
    wait_edges(dut, "valve", 2)
    time.sleep(0.2)
    client.muted = False
    trip = wait_event(client, "SAFETY_TRIP", where=lambda e: e.msg.reason == P.TripReason.HOST_TIMEOUT)
    resumed = wait_event(client, "RESUMED")                # a resume of the session the client knows
    assert resumed.msg.lost_total == 0 and resumed.msg.epoch == client.hello.epoch
    (t_on, _), (t_off, _) = dut.pin_edges("valve")[:2]
    assert resumed.msg.budget_used_ms == -(-(t_off - t_on) // MS)   # the device's count of the water given
    assert abs(u32(t_off) - u32(trip.msg.t_us)) <= 100 and t_off - t_on < 780 * MS
    with pytest.raises(CommandRefused) as exc:            # the gap holds across the re-arm
        client.valve_pulse(10)
    assert exc.value.reason == P.NackReason.SAFETY
    wait_event(client, "SAFETY_TRIP", where=lambda e: e.msg.reason == P.TripReason.MIN_GAP)
    dut.advance(500 * MS)
    left = 800 - (t_off - t_on) // MS
    with pytest.raises(CommandRefused):                   # and so does the water already given
        client.valve_pulse(left + 2)
    wait_event(client, "SAFETY_TRIP", where=lambda e: e.msg.reason == P.TripReason.BUDGET)
    assert client.valve_pulse(max(1, left - 2)).value == max(1, left - 2)
    edges = wait_edges(dut, "valve", 4)
    assert len(edges) == 4 and edges[2][0] - edges[1][0] >= 500 * MS
    assert [r.resumed for r in client.rearm_log] == [False, True]


def test_over_long_open_is_cut_at_the_maximum(dut, client):
    client.configure(max_valve_ms=200)
    assert client.valve_pulse(500).value == 200          # clamped, and the ACK says so
    closed = wait_event(client, "VALVE_CLOSED")
    trip = wait_event(client, "SAFETY_TRIP")
    assert closed.msg.cause == P.CloseCause.MAX_OPEN and trip.msg.reason == P.TripReason.MAX_OPEN
    (t_on, _), (t_off, _) = wait_edges(dut, "valve", 2)
    assert abs(t_off - t_on - 200 * MS) <= 1 * MS
    dut.advance(60 * MS)
    client.valve_open()                                   # open without a close: cut at the maximum too
    wait_event(client, "VALVE_CLOSED")
    (t_on, _), (t_off, _) = wait_edges(dut, "valve", 4)[2:]
    assert abs(t_off - t_on - 200 * MS) <= 1 * MS


def test_limits_configured_while_the_valve_is_open_apply_to_it(dut, client):
    client.valve_open()                                   # planned close after the 1000 ms default
    dut.advance(50 * MS)
    client.configure(max_valve_ms=150)                    # the open valve now closes 150 ms after opening
    closed = wait_event(client, "VALVE_CLOSED")
    assert closed.msg.cause == P.CloseCause.MAX_OPEN
    assert wait_event(client, "SAFETY_TRIP").msg.reason == P.TripReason.MAX_OPEN
    (t_on, _), (t_off, _) = wait_edges(dut, "valve", 2)
    assert abs(t_off - t_on - 150 * MS) <= 1 * MS


def test_volume_budget_stops_rewards(dut, client):
    client.configure(budget_valve_ms=100, min_valve_gap_ms=10)
    assert client.valve_pulse(60).value == 60
    wait_event(client, "VALVE_CLOSED")
    dut.advance(20 * MS)
    with pytest.raises(CommandRefused) as exc:            # 60 + 60 > 100: refused, not shortened
        client.valve_pulse(60)
    assert exc.value.reason == P.NackReason.SAFETY
    trip = wait_event(client, "SAFETY_TRIP")
    assert trip.msg.reason == P.TripReason.BUDGET
    assert client.valve_pulse(30).value == 30             # what is left can still be given
    wait_event(client, "VALVE_CLOSED")
    dut.advance(20 * MS)
    with pytest.raises(CommandRefused):
        client.valve_pulse(20)
    time.sleep(0.05)
    assert len(dut.pin_edges("valve")) == 4               # exactly two openings


def test_pulses_are_exact_against_the_budget(dut, client):
    """A 300 ms budget gives exactly three 100 ms pulses on both devices: each VALVE_CLOSED counts 100 ms
    exactly, the pin is open 100 ms (the firmware within two steps of its 4 us clock), a fourth is refused."""
    client.configure(budget_valve_ms=300, min_valve_gap_ms=10)
    for k in range(3):
        assert client.valve_pulse(100).value == 100
        closed = wait_event(client, "VALVE_CLOSED")
        assert closed.msg.open_us == 100 * MS and closed.msg.cause == P.CloseCause.PULSE_END
        wait_edges(dut, "valve", 2 * (k + 1))
        dut.advance(15 * MS)
    with pytest.raises(CommandRefused) as exc:
        client.valve_pulse(1)
    assert exc.value.reason == P.NackReason.SAFETY
    edges = dut.pin_edges("valve")
    lengths = [off - on for (on, _), (off, _) in zip(edges[0::2], edges[1::2])]
    assert len(lengths) == 3 and all(abs(n - 100 * MS) <= 8 for n in lengths), lengths


def test_bad_crc_frame_is_nacked_and_changes_nothing(dut, client):
    from dopa_rl.protocol import codec

    seq = 40000
    good = codec.build_frame(P.MsgId.CUE_ON, seq, b"")
    bad = good[:-1] + bytes([good[-1] ^ 0x5A])           # wrong CRC, readable header
    client.send_raw(codec.cobs_encode(bad) + b"\x00")
    nack = wait_event(client, "NACK", where=lambda e: e.msg.cmd_seq == seq)
    assert nack.msg.reason == P.NackReason.BAD_CRC and nack.msg.cmd_type == P.MsgId.CUE_ON
    dut.advance(20 * MS)
    assert dut.pin_edges("cue") == []
    assert client.ping(7).value == 7                      # the link carries on


def test_protocol_mismatch_is_refused_with_both_versions(dut):
    """A host built for another schema refuses the device, naming both; another protocol version is
    refused by the device itself (NACK VERSION)."""
    c = DeviceClient(open_link(dut.url), schema_hash=0x12345678)
    with pytest.raises(DeviceError) as exc:
        c.start()
    c.safe()
    text = str(exc.value)
    assert "protocol mismatch" in text and "0x12345678" in text and f"0x{P.SCHEMA_HASH:08X}" in text
    c = DeviceClient(open_link(dut.url), protocol_version=P.PROTOCOL_VERSION + 1)
    with pytest.raises(DeviceError, match=f"protocol version {P.PROTOCOL_VERSION + 1}"):
        c.start()
    c.safe()


# ---------------------------------------------------------------------- raw-protocol corner cases
class RawHost:
    """Bytes-level host (no client): numbered commands, in-order events, cumulative EVENT_ACK."""

    def __init__(self, url: str) -> None:
        from dopa_rl.protocol import codec

        self.codec = codec
        self.port = open_link(url)
        self.dec = codec.FrameDecoder()
        self.seq, self.expect, self.events, self.epoch = 100, None, [], 0

    def pump(self) -> None:
        got = False
        for rec in self.dec.feed(self.port.read(4096)):
            if isinstance(rec.msg, P.HelloReply) and rec.msg.boot == 0:
                self.expect, self.epoch = rec.seq, rec.msg.epoch
            if rec.seq == self.expect:
                self.events.append(rec.msg)
                self.expect = (self.expect + 1) & 0xFFFF
                got = True
        if got:
            self.port.write(self.codec.encode(P.EventAck(self.expect, self.epoch), 0))

    def send(self, msg) -> int:
        self.seq += 1
        self.port.write(self.codec.encode(msg, self.seq))
        return self.seq

    def reply(self, seq: int, timeout: float = 3.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.pump()
            for e in self.events:
                if isinstance(e, (P.Ack, P.Nack, P.HelloReply)) and e.cmd_seq == seq:
                    return e
            time.sleep(0.002)
        raise AssertionError(f"no reply to seq {seq}")

    def hello(self) -> None:
        for _ in range(10):
            seq = self.send(P.Hello(P.PROTOCOL_VERSION, 1, P.BUDGET_KEEP, P.LIMITS_KEEP, 0, 0, 0, 0))
            try:
                self.reply(seq, 0.5)
                return
            except AssertionError:
                continue
        raise AssertionError("no HELLO_REPLY")


@pytest.fixture
def raw(dut) -> Iterator[RawHost]:
    h = RawHost(dut.url)
    h.hello()
    yield h
    h.port.close()


def test_event_ack_is_never_answered_even_when_damaged(dut, raw):
    c = raw.codec
    good = c.build_frame(P.MsgId.EVENT_ACK, 555, (0).to_bytes(2, "little"))
    raw.port.write(c.cobs_encode(good[:-1] + bytes([good[-1] ^ 0x5A])) + b"\x00")    # bad CRC
    raw.port.write(c.cobs_encode(c.build_frame(P.MsgId.EVENT_ACK, 556, b"\x00")) + b"\x00")  # 1-byte body
    seq = raw.send(P.Ping(9))
    assert raw.reply(seq).value == 9
    assert [e for e in raw.events if isinstance(e, P.Nack)] == []


def test_an_event_type_sent_to_the_device_is_not_answered_whatever_its_length(dut, raw):
    """An echo of the device's own frames (a loopback, a pty with echo) gets no answer: answering it would
    echo again (an echo line filled the application's queue with 417 NACK UNKNOWN_TYPE in 2.7 s)."""
    c = raw.codec
    for seq, body in ((700, b"\x00" * 4), (701, b"\x00")):            # LICK_ON: right and wrong body size
        raw.port.write(c.cobs_encode(c.build_frame(P.MsgId.LICK_ON, seq, body)) + b"\x00")
    assert raw.reply(raw.send(P.Ping(5))).value == 5                  # sent after them, answered after them
    assert [e for e in raw.events if isinstance(e, P.Nack)] == []


def test_program_duration_bound(dut, raw):
    ok = raw.reply(raw.send(P.ProgramBegin(1, 0x7FFFFFFF // 1000, 0)))          # ~35.8 min: accepted
    assert isinstance(ok, P.Ack)
    refused = raw.reply(raw.send(P.ProgramBegin(2, 0x7FFFFFFF // 1000 + 1, 0)))
    assert isinstance(refused, P.Nack) and refused.reason == P.NackReason.BAD_VALUE


def test_program_begin_discards_a_committed_program_not_yet_started(dut, raw):
    assert isinstance(raw.reply(raw.send(P.ProgramBegin(1, 100, 0))), P.Ack)
    assert isinstance(raw.reply(raw.send(P.ProgramCommit())), P.Ack)
    assert isinstance(raw.reply(raw.send(P.ProgramBegin(2, 100, 0))), P.Ack)    # program 1 is gone
    nack = raw.reply(raw.send(P.TrialStart(P.TrialWhen.NOW)))
    assert isinstance(nack, P.Nack) and nack.reason == P.NackReason.PROGRAM_STATE
    assert isinstance(raw.reply(raw.send(P.ProgramCommit())), P.Ack)
    assert raw.reply(raw.send(P.TrialStart(P.TrialWhen.NOW))).value == 2
