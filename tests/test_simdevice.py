"""The simulated device's own logic on a manually stepped virtual clock (exact times)."""
from __future__ import annotations

import time

import numpy as np
import pytest

from dopa_rl.protocol import messages as P
from dopa_rl.protocol import codec
from dopa_rl.protocol.messages import Action, CloseCause, NackReason, TripReason
from dopa_rl.sim.animal import SimulatedAnimal
from dopa_rl.sim.device import SimDevice, tone_applied_hz
from dopa_rl.testing import SimulatedDUT

MS = 1000


class Host:
    """Minimal in-order host: numbered commands, exactly-once in-order events, cumulative EVENT_ACK."""

    def __init__(self, dev: SimDevice, auto_ack: bool = True) -> None:
        self.dev = dev
        self.dec = codec.FrameDecoder()
        self.seq = 1
        self.expected = 0
        self.events: list = []
        self.auto_ack = auto_ack
        self.hello_seq: int | None = None
        self.epoch = 0          # the device session's tag, carried by every acknowledgement

    def pump(self) -> list:
        new = []
        for rec in self.dec.feed(self.dev.read()):
            if isinstance(rec.msg, P.HelloReply) and rec.msg.cmd_seq == self.hello_seq and not rec.msg.boot:
                self.hello_seq = None  # the reply to our HELLO starts a new device sequence
                self.expected = rec.seq
                self.epoch = rec.msg.epoch
            if rec.seq == self.expected:
                new.append(rec.msg)
                self.expected = (self.expected + 1) & 0xFFFF
        self.events += new
        if new and self.auto_ack:
            self.dev.write(codec.encode(P.EventAck(self.expected, self.epoch), 0))
        return new

    def send(self, msg, seq: int | None = None) -> list:
        if seq is None:
            seq, self.seq = self.seq, self.seq + 1
        if isinstance(msg, P.Hello):
            self.hello_seq = seq
        self.dev.write(codec.encode(msg, seq))
        return self.pump()

    def reply(self, msg, seq: int | None = None):
        """Send and return the ACK/NACK/HELLO_REPLY answering it."""
        s = self.seq if seq is None else seq
        for ev in self.send(msg, seq):
            if isinstance(ev, (P.Ack, P.Nack, P.Resumed)) and ev.cmd_seq == s or isinstance(ev, P.HelloReply):
                return ev
        raise AssertionError(f"no reply to {msg}")

    def of(self, cls) -> list:
        return [e for e in self.events if isinstance(e, cls)]

    def advance(self, us: int) -> list:
        """Let ``us`` pass, sending HEARTBEAT every 200 ms like a live host."""
        new = []
        while us > 0:
            step = min(us, 200 * MS)
            self.dev.advance(step)
            us -= step
            new += self.pump()
            self.dev.write(codec.encode(P.Heartbeat(self.expected, self.epoch), self.seq))
            self.seq += 1
        return new + self.pump()


@pytest.fixture
def dev() -> SimDevice:
    return SimDevice()


@pytest.fixture
def host(dev: SimDevice) -> Host:
    h = Host(dev)
    h.pump()
    assert isinstance(h.events[0], P.HelloReply) and h.events[0].boot == 1
    dev.advance(50 * MS)  # boot counts as a valve close: the minimum gap after it
    r = h.reply(P.Hello(P.PROTOCOL_VERSION, 1, P.BUDGET_KEEP, P.LIMITS_KEEP, 0, 0, 0, 0))
    assert r.boot == 0 and r.schema_hash == P.SCHEMA_HASH and dev.armed
    return h


def test_hello_version_and_arming(dev: SimDevice) -> None:
    h = Host(dev)
    h.pump()
    assert h.reply(P.ValvePulse(10)).reason == NackReason.NOT_ARMED
    assert h.reply(P.Hello(99, 1, P.BUDGET_KEEP, P.LIMITS_KEEP, 0, 0, 0, 0)) == P.Nack(0, 2, P.MsgId.HELLO, NackReason.VERSION)
    assert not dev.armed
    r = h.reply(P.Hello(P.PROTOCOL_VERSION, 1, P.BUDGET_KEEP, P.LIMITS_KEEP, 0, 0, 0, 0))
    assert (r.reset_cause, r.event_ring, r.session, r.epoch) == (P.ResetCause.POWER_ON, P.EVENT_RING, 1, 0x0101)
    assert (dev.config["max_valve_ms"], dev.config["host_timeout_ms"]) == (1000, 1000)   # limits_keep: the defaults
    assert h.reply(P.Ping(-7)).value == -7


def test_valve_pulse_exact_and_clamped(host: Host, dev: SimDevice) -> None:
    dev.advance(1234)
    t0 = dev.now_us()
    assert host.reply(P.ValvePulse(50)).value == 50
    host.advance(200 * MS)
    assert dev.pin_edges("valve") == [(t0, 1), (t0 + 50 * MS, 0)]
    closed = host.of(P.ValveClosed)[-1]
    assert (closed.t_us, closed.open_us, closed.cause) == (t0 + 50 * MS, 50 * MS, CloseCause.PULSE_END)
    # longer than the maximum: clamped, cut at 1000 ms, trip reported
    t0 = dev.now_us()
    assert host.reply(P.ValvePulse(3000)).value == 1000
    host.advance(3000 * MS)
    assert dev.pin_edges("valve")[-2:] == [(t0, 1), (t0 + 1000 * MS, 0)]
    assert host.of(P.ValveClosed)[-1].cause == CloseCause.MAX_OPEN
    assert host.of(P.SafetyTrip)[-1] == P.SafetyTrip(t0 + 1000 * MS, TripReason.MAX_OPEN, 1000)


def test_open_without_close_is_cut_at_max(host: Host, dev: SimDevice) -> None:
    t0 = dev.now_us()
    assert host.reply(P.ValveOpen()).value == 1000
    host.advance(5000 * MS)
    assert dev.pin_edges("valve") == [(t0, 1), (t0 + 1000 * MS, 0)]
    assert [e.reason for e in host.of(P.SafetyTrip)] == [TripReason.MAX_OPEN]


def test_min_gap_refused(host: Host, dev: SimDevice) -> None:
    host.reply(P.ValvePulse(10))
    host.advance(30 * MS)  # closed at 10 ms, now 20 ms after close
    r = host.reply(P.ValvePulse(10))
    assert r.reason == NackReason.SAFETY
    assert host.of(P.SafetyTrip)[-1].reason == TripReason.MIN_GAP and host.of(P.SafetyTrip)[-1].value == 20
    assert len(dev.pin_edges("valve")) == 2
    host.advance(30 * MS)  # 50 ms after close: allowed
    assert isinstance(host.reply(P.ValvePulse(10)), P.Ack)


def test_volume_budget(host: Host, dev: SimDevice) -> None:
    assert isinstance(host.reply(P.Configure(1000, 10, 100, 1000, 2000, 0)), P.Ack)
    host.reply(P.ValvePulse(60))
    host.advance(100 * MS)
    assert host.reply(P.ValvePulse(60)).reason == NackReason.SAFETY
    assert host.of(P.SafetyTrip)[-1] == P.SafetyTrip(dev.now_us(), TripReason.BUDGET, 60)
    t0 = dev.now_us()
    assert host.reply(P.ValveOpen()).value == 40
    host.advance(100 * MS)
    assert dev.pin_edges("valve")[-2:] == [(t0, 1), (t0 + 40 * MS, 0)]
    assert host.of(P.ValveClosed)[-1].cause == CloseCause.BUDGET
    assert host.reply(P.ValveOpen()).reason == NackReason.SAFETY
    assert dev.budget_used_us == 100 * MS


def test_configure_bounds(host: Host) -> None:
    for bad in (P.Configure(6000, 50, 30000, 1000, 2000, 0), P.Configure(1000, 5, 30000, 1000, 2000, 0),
                P.Configure(1000, 50, 30000, 50, 2000, 0), P.Configure(1000, 50, 30000, 1000, 2000, 0x80)):
        assert host.reply(bad).reason == NackReason.BAD_VALUE
    assert host.reply(P.ToneOn(10)).reason == NackReason.BAD_VALUE


def test_host_silence_turns_everything_off(host: Host, dev: SimDevice) -> None:
    host.reply(P.CueOn())
    host.reply(P.ToneOn(4000))
    host.reply(P.AnalogStart(100))
    dev.advance(500 * MS)
    host.reply(P.Heartbeat(host.expected, host.epoch))  # keeps it alive
    t_last = dev.now_us()
    host.reply(P.ValveOpen())
    dev.advance(999 * MS)
    assert dev.armed and dev.cue
    host.advance(2 * MS)
    assert not dev.armed and not dev.cue and not dev.tone_hz and not dev.valve
    for pin in ("cue", "tone", "valve"):
        assert dev.pin_edges(pin)[-1] == (t_last + 1000 * MS, 0)
    assert host.of(P.SafetyTrip)[-1] == P.SafetyTrip(t_last + 1000 * MS, TripReason.HOST_TIMEOUT, 1000)
    assert host.reply(P.CueOn()).reason == NackReason.NOT_ARMED
    again = host.reply(P.Hello(P.PROTOCOL_VERSION, 1, P.BUDGET_KEEP, P.LIMITS_KEEP, 0, 0, 0, 0))   # the same nonce: a resume, answered by RESUMED
    assert isinstance(again, P.Resumed) and again.epoch == host.epoch and dev.armed
    assert again.budget_used_ms == 1000   # the valve was open 1000 ms before the host timeout cut it


def test_all_off_stays_armed(host: Host, dev: SimDevice) -> None:
    host.reply(P.CueOn())
    host.reply(P.TtlPulse(100))
    host.reply(P.ValvePulse(500))
    host.reply(P.AllOff())
    assert dev.armed and not (dev.cue or dev.ttl or dev.valve)
    assert host.of(P.ValveClosed)[-1].cause == CloseCause.ALL_OFF


def test_idempotent_retry(host: Host, dev: SimDevice) -> None:
    a1 = host.reply(P.ValvePulse(20), seq=500)
    dev.advance(5 * MS)
    a2 = host.reply(P.ValvePulse(20), seq=500)  # the ACK was "lost": retry with the same seq
    assert a1 == a2 and dev.stats["duplicates"] == 1
    host.advance(100 * MS)
    assert len(dev.pin_edges("valve")) == 2 and len(host.of(P.ValveOpened)) == 1
    # same seq but another command type is a new command
    assert host.reply(P.CueOn(), seq=500).value == 1 and dev.cue


def test_bad_frames_are_nacked_and_change_nothing(host: Host, dev: SimDevice) -> None:
    raw = bytearray(codec.build_frame(P.MsgId.VALVE_PULSE, 77, (50).to_bytes(2, "little")))
    raw[-1] ^= 0xFF
    dev.write(codec.cobs_encode(bytes(raw)) + b"\x00")
    host.pump()
    assert host.events[-1] == P.Nack(dev.now_us(), 77, P.MsgId.VALVE_PULSE, NackReason.BAD_CRC)
    assert dev.pin_edges("valve") == []
    assert isinstance(host.reply(P.ValvePulse(50), seq=77), P.Ack)  # the retry executes
    unk = codec.build_frame(0x7E, 78, b"")
    dev.write(codec.cobs_encode(unk) + b"\x00")
    badlen = codec.build_frame(P.MsgId.CUE_ON, 79, b"\x01")
    dev.write(codec.cobs_encode(badlen) + b"\x00")
    host.pump()
    assert [(e.cmd_seq, e.reason) for e in host.events[-2:]] == [(78, NackReason.UNKNOWN_TYPE),
                                                                  (79, NackReason.BAD_LENGTH)]
    assert not dev.cue


def upload(host: Host, trial_id: int, duration_ms: int, actions, window=None) -> None:
    assert host.reply(P.ProgramBegin(trial_id, duration_ms, len(actions))).value == len(actions)
    for i, (off, action, arg) in enumerate(actions):
        assert isinstance(host.reply(P.ProgramAction(i, off, action, arg)), P.Ack)
    if window is not None:
        assert isinstance(host.reply(P.ProgramLickWindow(*window)), P.Ack)
    assert host.reply(P.ProgramCommit()).value == trial_id


def test_trial_program_timing_and_back_to_back(host: Host, dev: SimDevice) -> None:
    acts = [(100 * MS, Action.CUE_ON, 0), (600 * MS, Action.CUE_OFF, 0), (500 * MS, Action.VALVE_PULSE, 50),
            (0, Action.TTL_PULSE, 5)]
    upload(host, 1, 1000, acts)
    dev.advance(777)
    t0 = dev.now_us()
    assert host.reply(P.TrialStart(P.TrialWhen.NOW)).value == 1
    dev.advance(300 * MS)
    upload(host, 2, 800, [(100 * MS, Action.CUE_ON, 0), (200 * MS, Action.CUE_OFF, 0)])
    assert isinstance(host.reply(P.TrialStart(P.TrialWhen.AFTER_CURRENT)), P.Ack)
    assert host.reply(P.ProgramBegin(3, 100, 0)).value == 0
    assert host.reply(P.ProgramCommit()).reason == NackReason.PROGRAM_STATE  # pending is queued
    host.advance(2000 * MS)
    t1 = t0 + 1000 * MS
    assert dev.pin_edges("cue") == [(t0 + 100 * MS, 1), (t0 + 600 * MS, 0), (t1 + 100 * MS, 1), (t1 + 200 * MS, 0)]
    assert dev.pin_edges("valve") == [(t0 + 500 * MS, 1), (t0 + 550 * MS, 0)]
    assert dev.pin_edges("ttl") == [(t0, 1), (t0 + 5 * MS, 0)]
    assert [(e.t_us, e.trial_id) for e in host.of(P.TrialStarted)] == [(t0, 1), (t1, 2)]
    assert [(e.t_us, e.trial_id, e.aborted) for e in host.of(P.TrialEnded)] == [(t1, 1, 0), (t1 + 800 * MS, 2, 0)]
    # TRIAL_ENDED of trial 1 comes right before TRIAL_STARTED of trial 2
    kinds = [type(e) for e in host.events]
    assert kinds[kinds.index(P.TrialEnded) + 1] is P.TrialStarted
    assert host.reply(P.TrialStart(P.TrialWhen.NOW)).reason == NackReason.PROGRAM_STATE  # nothing pending


def test_program_validation(host: Host) -> None:
    assert host.reply(P.ProgramAction(0, 0, Action.CUE_ON, 0)).reason == NackReason.PROGRAM_STATE
    host.reply(P.ProgramBegin(5, 100, 2))
    assert host.reply(P.ProgramAction(2, 0, Action.CUE_ON, 0)).reason == NackReason.BAD_VALUE
    assert host.reply(P.ProgramAction(0, 100 * MS, Action.CUE_ON, 0)).reason == NackReason.BAD_VALUE
    assert host.reply(P.ProgramAction(0, 0, 99, 0)).reason == NackReason.BAD_VALUE
    assert host.reply(P.ProgramLickWindow(50 * MS, 150 * MS, Action.VALVE_PULSE, 10)).reason == NackReason.BAD_VALUE
    host.reply(P.ProgramAction(0, 0, Action.CUE_ON, 0))
    assert host.reply(P.ProgramCommit()).reason == NackReason.PROGRAM_STATE  # action 1 missing
    assert host.reply(P.ProgramBegin(5, 100, 17)).reason == NackReason.BAD_VALUE


def test_lick_debounce_first_edge_time(host: Host, dev: SimDevice) -> None:
    host.reply(P.Configure(1000, 50, 30000, 1000, 500, 0))
    t0 = dev.now_us()
    dev.set_lick(1)
    dev.advance(100)
    dev.set_lick(0)  # bounce
    dev.advance(100)
    dev.set_lick(1)
    host.advance(10 * MS)
    assert [e.t_us for e in host.of(P.LickOn)] == [t0]
    dev.set_lick(0)
    dev.advance(200)  # glitch shorter than the debounce: no event
    dev.set_lick(1)
    host.advance(10 * MS)
    assert host.of(P.LickOff) == []
    t1 = dev.now_us()
    dev.set_lick(0)
    host.advance(10 * MS)
    assert [e.t_us for e in host.of(P.LickOff)] == [t1]
    assert dev.pin_edges("lick")[0] == (t0, 1)


def test_a_contact_bouncing_faster_than_the_debounce_gives_no_lick(host: Host, dev: SimDevice) -> None:
    """As on the firmware (tests/hil/test_firmware_timing.py): 332 edges 1.8 ms apart at 2 ms debounce
    hold no level for 2 ms, so there is no LICK event at all."""
    for k in range(332):
        dev.set_lick((k + 1) % 2)
        host.advance(1800)
    host.advance(10 * MS)
    assert len(dev.pin_edges("lick")) == 332
    assert host.of(P.LickOn) == [] and host.of(P.LickOff) == []


def test_pulses_are_exact_against_the_budget(host: Host, dev: SimDevice) -> None:
    """As on the firmware: a 300 ms budget gives three 100 ms pulses, commanded or programmed, each counted
    100 ms exactly, and refuses a fourth."""
    for session in (1, 2):
        if session == 2:
            assert host.reply(P.Hello(P.PROTOCOL_VERSION, 2, P.BUDGET_KEEP, P.LIMITS_KEEP, 0, 0, 0, 0)).boot == 0   # a fresh budget
        # session 2: its budget restarts, the minute's 300 ms still count (min(600, MINUTE_VALVE_MS) - 300 left)
        assert isinstance(host.reply(P.Configure(1000, 10, 300 * session, 5000, 2000, 0)), P.Ack)
        if session == 1:
            for _ in range(3):
                assert host.reply(P.ValvePulse(100)).value == 100
                host.advance(120 * MS)
            assert host.reply(P.ValvePulse(1)).reason == NackReason.SAFETY
        else:
            upload(host, 1, 900, [(0, Action.VALVE_PULSE, 100), (200 * MS, Action.VALVE_PULSE, 100),
                                  (400 * MS, Action.VALVE_PULSE, 100), (600 * MS, Action.VALVE_PULSE, 1)])
            host.reply(P.TrialStart(P.TrialWhen.NOW))
            host.advance(1000 * MS)
    edges = dev.pin_edges("valve")
    assert [off - on for (on, _), (off, _) in zip(edges[0::2], edges[1::2])] == [100 * MS] * 6
    assert [c.open_us for c in host.of(P.ValveClosed)] == [100 * MS] * 6
    assert [t.reason for t in host.of(P.SafetyTrip)] == [TripReason.BUDGET] * 2


def test_lick_contingent_reward(host: Host, dev: SimDevice) -> None:
    host.reply(P.Configure(1000, 50, 30000, 1000, 300, 0))
    upload(host, 9, 1000, [(0, Action.CUE_ON, 0)], window=(200 * MS, 800 * MS, Action.VALVE_PULSE, 30))
    t0 = dev.now_us()
    host.reply(P.TrialStart(P.TrialWhen.NOW))
    dev.advance(100 * MS)
    dev.set_lick(1)  # before the window: no reward
    dev.advance(20 * MS)
    dev.set_lick(0)
    dev.advance(180 * MS)
    t_lick = dev.now_us()
    dev.set_lick(1)
    dev.advance(20 * MS)
    dev.set_lick(0)
    dev.advance(100 * MS)
    dev.set_lick(1)  # a second lick in the window does nothing
    host.advance(1000 * MS)
    assert t_lick - t0 == 300 * MS
    assert dev.pin_edges("valve") == [(t_lick + 300, 1), (t_lick + 300 + 30 * MS, 0)]


def test_go_back_n_recovers_dropped_bytes(host: Host, dev: SimDevice) -> None:
    rng = np.random.default_rng(4)
    dev.tx_filter = lambda b: bytes(x for x in b if rng.random() > 0.05)
    for i in range(40):
        host.send(P.Ping(i))
        dev.advance(10 * MS)
        host.pump()
    dev.tx_filter = None
    for _ in range(40):
        host.advance(60 * MS)
    acks = [e.value for e in host.of(P.Ack) if e.cmd_type == P.MsgId.PING]
    assert acks == list(range(40))  # each exactly once, in order
    assert dev.stats["retransmits"] > 0 and dev.unacked == 0 and dev.stats["events_lost"] == 0
    assert host.dec.error_count > 0


def test_ring_overflow_reported(dev: SimDevice) -> None:
    h = Host(dev, auto_ack=False)
    h.reply(P.Hello(P.PROTOCOL_VERSION, 1, P.BUDGET_KEEP, P.LIMITS_KEEP, 0, 0, 0, 0))
    for i in range(P.EVENT_RING + 5):
        h.send(P.Ping(i))
    assert dev.stats["events_lost"] == 6  # ring holds HELLO_REPLY + 31 ACKs
    dev.write(codec.encode(P.EventAck(h.expected, h.epoch), 0))
    h.pump()
    err = h.of(P.Error)
    assert err and err[0].code == P.ErrorCode.EVENT_OVERFLOW and err[0].value == 6


def test_a_retried_heartbeat_still_acknowledges_events(dev: SimDevice) -> None:
    """HEARTBEAT's next_expected_seq acts exactly like an EVENT_ACK, also when the HEARTBEAT is a retry
    answered from the reply memory (as on the firmware)."""
    h = Host(dev, auto_ack=False)
    h.reply(P.Hello(P.PROTOCOL_VERSION, 1, P.BUDGET_KEEP, P.LIMITS_KEEP, 0, 0, 0, 0))
    h.send(P.Heartbeat(0, h.epoch), seq=50)                       # acknowledges nothing yet; its ACK is seq 1
    h.send(P.CueOn(), seq=51)
    assert dev.unacked == 4                              # HELLO_REPLY, ACK, CUE_ONSET, ACK
    h.send(P.Heartbeat(h.expected, h.epoch), seq=50)              # the host retries the heartbeat, now acking all
    assert dev.unacked == 1                              # only the re-sent reply to the retry is left


def test_reboot_reports_cause_and_outputs_off(host: Host, dev: SimDevice) -> None:
    host.reply(P.CueOn())
    host.reply(P.ValveOpen())
    dev.advance(10 * MS)
    dev.reboot(P.ResetCause.WATCHDOG)
    assert dev.pin_edges("cue")[-1] == (dev.now_us(), 0) and dev.pin_edges("valve")[-1][1] == 0
    assert not dev.armed
    h2 = Host(dev)
    boot = h2.pump()[0]
    assert boot.boot == 1 and boot.reset_cause == P.ResetCause.WATCHDOG
    assert h2.reply(P.Hello(P.PROTOCOL_VERSION, 1, P.BUDGET_KEEP, P.LIMITS_KEEP, 0, 0, 0, 0)).reset_cause == P.ResetCause.WATCHDOG


def test_analog_batches(host: Host, dev: SimDevice) -> None:
    dev.analog_source = lambda t: (t // 1000) % 1024
    t0 = dev.now_us()
    assert host.reply(P.AnalogStart(1000)).value == 1000
    host.advance(20 * MS)
    host.reply(P.AnalogStop())
    batches = host.of(P.AnalogBatch)
    assert [b.n for b in batches] == [8, 8, 5]
    assert [b.t_us for b in batches] == [t0, t0 + 8 * MS, t0 + 16 * MS]
    assert batches[0].samples == tuple((t0 // 1000 + k) % 1024 for k in range(8))


def test_tone_frequency_rounding(host: Host) -> None:
    assert tone_applied_hz(4000) == 4000 and tone_applied_hz(3001) == 3003
    assert host.reply(P.ToneOn(3001)).value == 3003
    assert host.of(P.ToneOnset)[-1].freq_hz == 3003


def test_animal_learns_anticipatory_licking() -> None:
    animal = SimulatedAnimal(np.random.default_rng(1))
    dev = SimDevice(animal=animal)
    h = Host(dev)
    h.reply(P.Hello(P.PROTOCOL_VERSION, 1, P.BUDGET_KEEP, P.LIMITS_KEEP, 0, 0, 0, 0))
    antic = []
    for trial in range(60):
        upload(h, trial, 4000, [(0, Action.CUE_ON, 0), (1500 * MS, Action.CUE_OFF, 0),
                                (1500 * MS, Action.VALVE_PULSE, 20)])
        t0 = dev.now_us()
        h.reply(P.TrialStart(P.TrialWhen.NOW))
        h.advance(4000 * MS)
        antic.append(sum(1 for e in h.of(P.LickOn) if t0 < e.t_us < t0 + 1500 * MS))
    assert animal.value("cue") > 0.8
    assert np.mean(antic[-15:]) > np.mean(antic[:5]) + 2


def test_simulated_dut_realtime() -> None:
    with SimulatedDUT(speed=10) as dut:
        t0 = dut.now_us()
        time.sleep(0.1)
        dt = dut.now_us() - t0
        assert 0.7e6 < dt < 2e6
        dut.set_lick(1)
        assert dut.pin_edges("lick")[-1][1] == 1
        assert dut.url.startswith("dopasim://?attach=")


def test_device_from_options_and_registry() -> None:
    from dopa_rl.sim import device as simdevice

    dev, created = simdevice.device_from_options({"speed": "5", "seed": "3", "animal": "rw", "ring": "64"})
    assert created and dev.ring_size == 64 and dev.animal is not None and dev._driver.speed == 5.0
    name = simdevice.register(dev)
    assert simdevice.device_from_options({"attach": name}) == (dev, False)
    simdevice.unregister(name)
    with pytest.raises(KeyError):
        simdevice.attached(name)
    with pytest.raises(ValueError, match="unknown dopasim"):
        simdevice.device_from_options({"sped": "1"})


def test_device_time_wraps_on_the_wire() -> None:
    dev = SimDevice(start_us=2**32 - 60 * MS)
    dev.advance(50 * MS)  # the minimum gap after boot
    h = Host(dev)
    h.reply(P.Hello(P.PROTOCOL_VERSION, 1, P.BUDGET_KEEP, P.LIMITS_KEEP, 0, 0, 0, 0))
    h.reply(P.ValvePulse(20))
    h.advance(50 * MS)
    opened, closed = h.of(P.ValveOpened)[0], h.of(P.ValveClosed)[0]
    assert opened.t_us == 2**32 - 10 * MS and closed.t_us == 10 * MS  # wrapped
    assert dev.pin_edges("valve") == [(2**32 - 10 * MS, 1), (2**32 + 10 * MS, 0)]  # trace is 64-bit


def test_realtime_threads_exchange_without_loss() -> None:
    """Reader thread + writer thread against the clock thread: every command answered exactly once."""
    import threading

    dev = SimDevice(speed=1.0)
    dev.start()
    got: list = []
    dec = codec.FrameDecoder()
    stop = threading.Event()

    def reader() -> None:
        expected, epoch = None, 0
        while not stop.is_set():
            for rec in dec.feed(dev.read_blocking(4096, 0.02)):
                if isinstance(rec.msg, P.HelloReply) and not rec.msg.boot:
                    expected, epoch = rec.seq, rec.msg.epoch
                if rec.seq == expected:
                    got.append(rec.msg)
                    expected = (expected + 1) & 0xFFFF
                    dev.write(codec.encode(P.EventAck(expected, epoch), 0))

    th = threading.Thread(target=reader)
    th.start()
    try:
        dev.write(codec.encode(P.Hello(P.PROTOCOL_VERSION, 1, P.BUDGET_KEEP, P.LIMITS_KEEP, 0, 0, 0, 0), 1))
        for i in range(200):
            dev.write(codec.encode(P.Ping(i), 2 + i))
            while i - sum(isinstance(m, P.Ack) for m in got) > 8:  # at most 8 replies outstanding
                time.sleep(0.0005)
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and sum(isinstance(m, P.Ack) for m in got) < 200:
            time.sleep(0.01)
    finally:
        stop.set()
        th.join()
        dev.close()
    assert [m.value for m in got if isinstance(m, P.Ack) and m.cmd_type == P.MsgId.PING] == list(range(200))
    assert dev.stats["events_lost"] == 0
