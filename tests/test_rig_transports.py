"""Links: the in-memory pair, faulty:// (parsing, determinism, stalls, outages), dopasim://, pty bridge."""
from __future__ import annotations

import time

import pytest
import serial

from dopa_rl.protocol import codec
from dopa_rl.protocol import messages as P
from dopa_rl.rig.transports import PtyBridge, open_link
from dopa_rl.sim.links import memory_pair
from dopa_rl.rig.urlhandlers.protocol_faulty import parse_faulty_url


def test_memory_pair_moves_bytes_and_honours_timeouts():
    a, b = memory_pair()
    a.write(b"abc")
    assert b.in_waiting == 3 and b.read(10) == b"abc"
    b.timeout = 0.05
    t = time.monotonic()
    assert b.read(1) == b""
    assert 0.04 <= time.monotonic() - t < 0.5
    b.write(b"xy")
    a.timeout = 1.0
    assert a.read(2) == b"xy"
    a.close()
    with pytest.raises(serial.PortNotOpenError):
        a.read(1)


def test_faulty_url_syntax():
    inner, o = parse_faulty_url("faulty://dopasim://?speed=10&seed=1#corrupt=0.01&drop=0.02&seed=3&dir=rx")
    assert inner == "dopasim://?speed=10&seed=1"
    assert (o["corrupt"], o["drop"], o["seed"], o["dir"]) == (0.01, 0.02, 3, "rx")
    for bad in ("faulty://#drop=0.1", "faulty://loop://#drop=2", "faulty://loop://#bogus=1",
                "faulty://loop://#dir=up", "faulty://loop://#drop=x"):
        with pytest.raises(ValueError):
            parse_faulty_url(bad)
    with pytest.raises(serial.SerialException, match="unknown faulty"):
        open_link("faulty://loop://#bogus=1")


def _through(url: str, data: bytes) -> bytes:
    p = open_link(url, timeout=0.02)
    out = bytearray()
    for i in range(0, len(data), 500):      # loop:// holds 4 KB
        p.write(data[i:i + 500])
        while True:
            chunk = p.read(4096)
            if not chunk:
                break
            out += chunk
    p.close()
    return bytes(out)


def test_faulty_rates_and_reproducibility():
    data = bytes(range(256)) * 40
    clean = _through("faulty://loop://", data)
    assert clean == data
    url = "faulty://loop://#drop=0.05&dup=0.05&seed=11&dir=rx"
    a, b = _through(url, data), _through(url, data)
    assert a == b                              # same seed, same fate for every byte
    assert 0.9 * len(data) < len(a) < 1.1 * len(data) and a != data
    c = _through("faulty://loop://#corrupt=0.1&seed=1&dir=rx", data)
    assert len(c) == len(data) and 0.05 < sum(x != y for x, y in zip(c, data)) / len(data) < 0.15


def test_faulty_stall_keeps_bytes_and_disconnect_loses_them():
    p = open_link("faulty://loop://", timeout=0)
    p.inject_stall(80)
    p.write(b"held")
    assert p.read(10) == b""
    time.sleep(0.1)
    p.timeout = 0.05
    assert p.read(4) == b"held"
    p.inject_disconnect(60)
    with pytest.raises(serial.SerialException, match="disconnected"):
        p.write(b"lost")
    with pytest.raises(serial.SerialException):
        p.open()
    time.sleep(0.08)
    p.open()
    p.write(b"back")
    assert p.read(4) == b"back"
    assert p.stats["disconnects"] == 1 and p.stats["stalls"] == 1
    p.close()


def test_scheduled_disconnect_option():
    p = open_link("faulty://loop://#disconnect_at=0.05&disconnect_ms=50", timeout=0)
    p.write(b"x")
    time.sleep(0.07)
    with pytest.raises(serial.SerialException):
        p.read(1)
    p.shutdown()


def test_dopasim_handler_options_and_errors():
    p = open_link("dopasim://?speed=5&start_us=4294000000", timeout=0.5)
    rec = codec.FrameDecoder().feed(p.read(200))
    assert isinstance(rec[0].msg, P.HelloReply) and rec[0].msg.boot == 1
    dev = p.device
    p.close()
    assert p.device is None and not dev._driver.running      # a device the link created stops with it
    with pytest.raises(serial.SerialException, match="unknown dopasim"):
        open_link("dopasim://?colour=red")
    with pytest.raises(serial.SerialException, match="no simulated device"):
        open_link("dopasim://?attach=nobody")


def test_pty_bridge_serves_a_simulated_device():
    with PtyBridge(open_link("dopasim://?speed=1")) as bridge:
        port = serial.serial_for_url(bridge.path, baudrate=1_000_000, timeout=0.5)
        port.write(codec.encode(P.Hello(P.PROTOCOL_VERSION, 1, P.BUDGET_KEEP, P.LIMITS_KEEP, 0, 0, 0, 0), 1))
        dec = codec.FrameDecoder()
        got = []
        end = time.monotonic() + 2
        while time.monotonic() < end and not any(not r.msg.boot for r in got if isinstance(r.msg, P.HelloReply)):
            got += dec.feed(port.read(max(1, port.in_waiting)))
        port.close()
    replies = [r.msg for r in got if isinstance(r.msg, P.HelloReply) and not r.msg.boot]
    assert replies and replies[0].cmd_seq == 1


def test_faulty_delay_holds_bytes_in_order_and_bounded():
    p = open_link("faulty://loop://#delay=0.2&delay_ms=30&seed=1&dir=rx", timeout=0)
    data = bytes(range(200))
    t0 = time.monotonic()
    p.write(data)
    early = p.read(500)
    assert len(early) < len(data)              # something is being held back
    got = bytearray(early)
    while len(got) < len(data) and time.monotonic() - t0 < 1:
        got += p.read(500)
        time.sleep(0.002)
    assert bytes(got) == data                  # late, never reordered or lost
    assert time.monotonic() - t0 < 0.2        # and no more than about delay_ms late, not 40 x 30 ms
    assert p.stats["rx_delayed"] > 10
    p.close()


def test_pty_bridge_closes_promptly_while_nobody_reads_the_pty():
    """With no program reading the pty its buffer fills up; the copying thread must not block in write()."""
    from dopa_rl.testing import SimulatedDUT

    dut = SimulatedDUT(speed=1, ring_size=1_000_000)   # no EVENT_ACK needed to keep sending
    bridge = PtyBridge(open_link(dut.url))
    try:
        dut.device.write(codec.encode(P.Hello(P.PROTOCOL_VERSION, 1, P.BUDGET_KEEP, P.LIMITS_KEEP, 0, 0, 0, 0), 1))
        dut.device.stress(20_000)                   # ~0.6 MB/s of events towards a pty nobody reads
        time.sleep(0.4)
    finally:
        t0 = time.monotonic()
        bridge.close()
        took = time.monotonic() - t0
        dut.close()
    assert took < 0.5, took
