"""Device client details beyond the shared scenarios: raw log, resets, host timeouts, dead links, clocks."""
from __future__ import annotations

import queue
import time

import pytest

from dopa_rl.errors import DeviceError, InputError
from dopa_rl.protocol import messages as P
from dopa_rl.rig.client import DeviceClient
from dopa_rl.rig.rawlog import RX, TX, RawLogWriter, decode_rawlog, read_rawlog
from dopa_rl.rig.transports import open_link
from dopa_rl.sim.links import memory_pair
from dopa_rl.testing import SimulatedDUT


def _names(c: DeviceClient, timeout: float = 0.3) -> list[str]:
    out, end = [], time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            out.append(c.events.get(timeout=0.02).name)
        except queue.Empty:
            pass
    return out


def test_rawlog_roundtrip_and_truncation(tmp_path):
    path = tmp_path / "link.raw"
    with RawLogWriter(path) as w:
        w.write(RX, b"\x01\x02", t=10.0)
        w.write(TX, b"abc", t=10.5)
        w.write(RX, b"", t=11.0)          # nothing to log
    recs = list(read_rawlog(path))
    assert [(r.t_monotonic, r.direction, r.data) for r in recs] == [(10.0, RX, b"\x01\x02"), (10.5, TX, b"abc")]
    path.write_bytes(path.read_bytes()[:-2])   # a crash mid-record
    assert len(list(read_rawlog(path))) == 1
    bad = tmp_path / "x.raw"
    bad.write_bytes(b"not a log")
    with pytest.raises(InputError, match="not a dopa_rl raw link log"):
        list(read_rawlog(bad))


def test_client_session_re_decodes_from_its_raw_log(tmp_path):
    dut = SimulatedDUT(speed=1)
    c = DeviceClient(open_link(dut.url), rawlog=tmp_path / "s.raw")
    try:
        c.start()
        c.cue_on()
        c.ping(99)
        c.cue_off()
        time.sleep(0.05)
    finally:
        c.safe()
        dut.close()
    frames = list(decode_rawlog(tmp_path / "s.raw"))
    sent = [f.received.msg for f in frames if f.direction == TX and f.error is None]
    got = [f.received.msg for f in frames if f.direction == RX and f.error is None]
    assert [type(m).__name__ for m in sent if not isinstance(m, (P.EventAck, P.Heartbeat))][:4] == \
        ["Hello", "CueOn", "Ping", "CueOff"]
    assert any(isinstance(m, P.CueOnset) for m in got) and any(isinstance(m, P.CueOffset) for m in got)
    assert any(isinstance(m, P.Ack) and m.value == 99 for m in got)


def test_device_reboot_rearms_with_the_budget_already_used():
    dut = SimulatedDUT(speed=1)
    c = DeviceClient(open_link(dut.url))
    try:
        c.start()
        c.configure(budget_valve_ms=500, min_valve_gap_ms=10)
        c.valve_pulse(100)
        time.sleep(0.15)
        dut.device.reboot()
        end = time.monotonic() + 2
        while c.stats["rearms"] < 1 or not c.hello or c.device_to_host(0) is None:
            assert time.monotonic() < end
            time.sleep(0.01)
        time.sleep(0.1)
        assert c.stats["device_resets"] == 1
        assert dut.device.armed and dut.device.config["budget_valve_ms"] == 400   # 500 - 100 already given
        assert c.valve_pulse(50).value == 50
        names = _names(c)
        assert "HELLO_REPLY" in names
    finally:
        c.safe()
        dut.close()


def test_host_timeout_rearms_and_resends_refused_commands():
    dut = SimulatedDUT(speed=1)
    c = DeviceClient(open_link(dut.url))
    try:
        c.start()
        c.configure(host_timeout_ms=200)
        c.muted = True
        time.sleep(0.3)                     # the device gives up on us and disarms
        assert not dut.device.armed
        c.muted = False
        assert c.cue_on().value == 1        # NOT_ARMED -> HELLO -> resent under a new seq -> ACK
        assert dut.device.armed and dut.device.cue
        assert c.stats["rearms"] == 1
        assert dut.device.config["host_timeout_ms"] == 200   # the configuration was re-applied
    finally:
        c.safe()
        dut.close()


def test_silent_device_times_out_and_dead_link_fails_fast():
    host, _device = memory_pair()
    c = DeviceClient(host, ack_timeout_s=0.02)
    with pytest.raises(DeviceError, match="no HELLO reply"):
        c.start(handshake_timeout_s=0.2)
    c.safe()
    c.safe()                                # idempotent


def test_reconnect_gives_up_after_the_timeout():
    dut = SimulatedDUT(speed=1)
    port = open_link(f"faulty://{dut.url}")
    c = DeviceClient(port, reconnect_timeout_s=0.2)
    try:
        c.start()
        port.inject_disconnect(5000)
        with pytest.raises(DeviceError, match="lost"):
            for _ in range(100):
                c.ping(1)
                time.sleep(0.01)
        assert not c.link_up
    finally:
        c.safe()
        port.shutdown()
        dut.close()


def test_timestamps_unwrap_across_2_32_and_map_to_host_time():
    start = (1 << 32) - 150_000                    # the device clock wraps 150 ms after boot
    dut = SimulatedDUT(speed=1, start_us=start)
    c = DeviceClient(open_link(dut.url))
    seen = []
    c.add_listener(lambda e: (_ for _ in ()).throw(RuntimeError("listener bug")))  # must not kill the link
    c.add_listener(seen.append)
    try:
        c.start()
        for _ in range(6):
            c.ping(0)
            c.ttl_pulse(1)
            time.sleep(0.05)
    finally:
        c.safe()
        dut.close()
    t = [e.t_device_us for e in seen]
    assert t == sorted(t) and t[0] < (1 << 32) < t[-1]
    assert any(e.msg.t_us < 1000_000 for e in seen)   # raw stamps did wrap
    last = seen[-1]
    assert last.t_host is not None and -0.001 <= last.t_received - last.t_host < 0.05


def test_lost_sequence_sync_is_detected_and_rearmed():
    """A reboot whose boot banner never reaches us: only stale-numbered frames arrive; after resync_s the
    client gives up on the old session (failing the command in flight) and starts a new one."""
    from dopa_rl.protocol import codec

    dut = SimulatedDUT(speed=1)
    c = DeviceClient(open_link(dut.url), ack_timeout_s=0.05)
    c.resync_s = 0.3
    try:
        c.start()
        for i in range(40):
            c.ping(i)                                   # our expected seq is now well past the ring size

        def drop_banner(wire: bytes) -> bytes:
            msg = codec.decode(wire).msg
            return b"" if isinstance(msg, P.HelloReply) and msg.boot else wire

        dut.device.tx_filter = drop_banner
        dut.device.reboot()
        with pytest.raises(DeviceError, match="sequence sync"):
            c.cue_on()
        end = time.monotonic() + 3
        while c.next_expected_seq is None and time.monotonic() < end:
            time.sleep(0.01)
        assert c.cue_on().value == 1 and dut.device.cue
        assert c.stats["resyncs"] == 1 and c.stats["rearms"] == 1
        assert len([t for t, lv in dut.pin_edges("cue") if lv]) == 1   # the failed cue_on never ran
    finally:
        c.safe()
        dut.close()


def test_idle_client_keeps_the_device_armed_with_heartbeats():
    dut = SimulatedDUT(speed=1)
    c = DeviceClient(open_link(dut.url))
    try:
        c.start()
        c.configure(host_timeout_ms=400)
        time.sleep(1.2)                                   # three host timeouts of doing nothing
        assert dut.device.armed
        assert c.stats["heartbeats"] >= 3
        assert "SAFETY_TRIP" not in _names(c, 0.05)
    finally:
        c.safe()
        dut.close()


@pytest.mark.realtime
def test_live_clock_fit_finds_the_device_crystal_error():
    """A device whose clock runs 200 ppm fast: the fitted drift on the host says -200 ppm (host seconds
    per device second minus one), and device times map onto the host clock within a millisecond.

    Real time (the pure fit is tested on exact points in test_rig_clocksync.py): each 0.1 s bucket keeps its
    fastest reply, and on a loaded machine even the fastest is late by a varying few hundred microseconds,
    so the pings span 4 s and the drift must be within 60 ppm of -200 (0 ppm, no crystal error, fails)."""
    dut = SimulatedDUT(speed=1.0002)
    c = DeviceClient(open_link(dut.url))
    try:
        c.start()
        end = time.monotonic() + 4.0
        while time.monotonic() < end:
            c.ping(0)
            time.sleep(0.005)
        c.clock.refit()
        fit = c.clock.fit
        assert fit.drift == pytest.approx(1 / 1.0002 - 1, abs=6e-5)
        # read both clocks back to back several times: a thread switch between the two reads (common on a
        # loaded CI machine) would otherwise be counted as a mapping error
        errors = []
        for _ in range(5):
            t_dev = dut.now_us()
            t_host = time.monotonic()
            errors.append(abs(c.device_to_host(t_dev) - t_host))
        assert min(errors) < 1e-3
    finally:
        c.safe()
        dut.close()


def test_reboots_with_the_same_boot_time_are_each_seen_at_once():
    """The same firmware booting twice stamps its boot banner with the same t_us: a banner after an
    accepted HELLO_REPLY is a new reset, not a retransmitted copy (seen at once, not after resync_s)."""
    dut = SimulatedDUT(realtime=False)     # the device clock stands still: every banner says t_us = 0
    c = DeviceClient(open_link(dut.url))
    c.resync_s = 30.0                      # only the banner itself may reveal the reboots
    try:
        c.start()
        assert c.cue_on().value == 1
        for k in (1, 2):
            dut.device.reboot()
            end = time.monotonic() + 1.0
            while not (c.stats["device_resets"] == k and dut.device.armed and c.next_expected_seq is not None):
                assert time.monotonic() < end, (k, c.stats)
                time.sleep(0.01)
            assert c.cue_on().value == 1
        assert c.stats["resyncs"] == 0
    finally:
        c.safe()
        dut.close()


def test_a_command_failed_during_an_outage_is_never_sent_later():
    """The caller was told the command failed: when the link comes back it must not run after all (not on
    reconnect, nor re-sent after the re-arming HELLO that the device's host timeout calls for)."""
    dut = SimulatedDUT(speed=1)
    port = open_link(f"faulty://{dut.url}#seed=1")
    c = DeviceClient(port, command_timeout_s=0.3, reconnect_timeout_s=5.0)
    try:
        c.start()
        port.inject_disconnect(1500)
        with pytest.raises(DeviceError):
            c.valve_pulse(20)                   # fails after command_timeout_s + 1 s of waiting
        end = time.monotonic() + 3
        while not (c.stats["reconnects"] == 1 and dut.device.armed):
            assert time.monotonic() < end, c.stats
            time.sleep(0.01)
        time.sleep(0.3)
        assert dut.pin_edges("valve") == []
        assert c.ping(5).value == 5             # the link itself works again
    finally:
        c.safe()
        dut.close()


def test_a_hello_damaged_on_the_way_is_retried_not_taken_for_a_refusal():
    """NACK BAD_CRC naming our HELLO means "send it again", not "the device refused this protocol"."""
    from dopa_rl.protocol import codec

    dut = SimulatedDUT(speed=1)
    port = open_link(dut.url)
    write, damaged = port.write, []

    def damage_first_hello(data: bytes) -> int:
        if not damaged and isinstance(codec.decode(data).msg, P.Hello):
            raw = codec.cobs_decode(bytes(data[:-1]))
            data = codec.cobs_encode(raw[:-1] + bytes([raw[-1] ^ 0x5A])) + b"\x00"   # bad CRC, readable header
            damaged.append(data)
        return write(data)

    port.write = damage_first_hello
    c = DeviceClient(port)
    try:
        hello = c.start()
        assert damaged and hello.boot == 0 and dut.device.armed
        assert c.cue_on().value == 1
    finally:
        c.safe()
        dut.close()


def test_a_slow_hello_reply_is_waited_for_not_answered_by_a_second_session():
    """The device runs every HELLO it receives (a new session each time: its unacknowledged events are
    dropped).  A HELLO_REPLY held up for a while comes back by itself (go-back-N), so a short
    ack_timeout_s must not make the client send HELLO again and again."""
    from dopa_rl.protocol import codec

    dut = SimulatedDUT(speed=1)
    executed = []
    out = codec.FrameDecoder()
    dut.device.on_tx = lambda chunk: executed.extend(
        r.msg.t_us for r in out.feed(chunk) if isinstance(r.msg, P.HelloReply) and r.msg.boot == 0)
    port = open_link(dut.url)
    read, hold_until = port.read, []

    def slow_read(size: int = 1) -> bytes:            # the device-to-host direction stalls for 50 ms
        if not hold_until:
            hold_until.append(time.monotonic() + 0.05)
        return b"" if time.monotonic() < hold_until[0] else read(size)

    port.read = slow_read
    c = DeviceClient(port, ack_timeout_s=0.01)
    try:
        c.start()
        assert len(set(executed)) == 1, executed      # one session, not one per retry
        assert c.cue_on().value == 1
    finally:
        c.safe()
        dut.close()
