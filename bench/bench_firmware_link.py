"""Link benchmark against the real firmware running in the simavr emulator (1,000,000 baud UART on a pty).

1. Command round trip: sequential PINGs, time from write to the matching ACK (p50/p99/max).
   Reference in the same run: the same bytes echoed back by a plain Python thread on a pseudo-terminal
   (what the OS + pyserial cost without any device), and the wire-time floor of request + reply.
2. Sustained event rate with zero loss: pipelined PINGs (a window of outstanding commands), every ACK an
   event through the device's reliable ring, acknowledged cumulatively; checks that every command got
   exactly one reply, device sequence numbers are contiguous and no EVENT_OVERFLOW was reported.
   Rates are given per wall second and per device second (the device clock's own t_us).

Usage: .venv/bin/python bench/bench_firmware_link.py [--pings 1000] [--seconds 10] [--window 4]
Needs the AVR toolchain and simavr (bash .ci/install-system-packages); builds firmware and harness.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))  # emulator_harness (repository tool)

import argparse
import os
import select
import threading
import time

import numpy as np
import serial

from dopa_rl.protocol import messages as P
from dopa_rl.protocol import codec
from emulator_harness import EmulatedDUT, build

SIMAVR_US_PER_BYTE = 11.0   # simavr charges 11 bit times per byte; 1 Mbaud -> 11 us


class Host:
    """Minimal host: numbered commands, in-order event delivery, cumulative EVENT_ACK."""

    def __init__(self, url: str) -> None:
        self.port = serial.serial_for_url(url, baudrate=P.BAUD, timeout=0)
        self.dec = codec.FrameDecoder()
        self.expect = 0
        self.seq = 0
        self.dups = 0
        self.gaps = 0
        self.acked = 0           # next_expected last sent in an EVENT_ACK
        self.last_ack = 0.0
        self.ack_every = 8       # cumulative EVENT_ACK after this many events, or 10 ms

    def send(self, msg, seq: int | None = None) -> int:
        if seq is None:
            self.seq = (self.seq + 1) & 0xFFFF
            seq = self.seq
        self.port.write(codec.encode(msg, seq))
        return seq

    def poll(self, wait: float = 0.002) -> list:
        """Events that arrived, waiting up to ``wait`` s for the first bytes (select, no busy loop:
        a spinning host steals the CPU the emulator needs on a small machine)."""
        out = []
        select.select([self.port.fileno()], [], [], wait)
        for rec in self.dec.feed(self.port.read(65536)):
            if isinstance(rec.msg, P.HelloReply) and rec.seq == 0:
                self.expect = 0
            if rec.seq == self.expect:
                out.append(rec.msg)
                self.expect = (self.expect + 1) & 0xFFFF
            elif ((rec.seq - self.expect) & 0xFFFF) < 0x8000:
                self.gaps += 1          # ahead of what we expect: a frame was lost (go-back-N resends it)
            else:
                self.dups += 1
        pending = (self.expect - self.acked) & 0xFFFF
        if pending and (pending >= self.ack_every or time.monotonic() - self.last_ack > 0.01):
            self.send(codec.message("EVENT_ACK", next_expected_seq=self.expect))
            self.acked, self.last_ack = self.expect, time.monotonic()
        return out

    def hello(self) -> None:
        end = time.monotonic() + 5
        while time.monotonic() < end:
            seq = self.send(codec.message("HELLO", protocol_version=P.PROTOCOL_VERSION))
            t = time.monotonic() + 0.5
            while time.monotonic() < t:
                if any(isinstance(m, P.HelloReply) and m.cmd_seq == seq for m in self.poll()):
                    return
                time.sleep(0.001)
        raise SystemExit("no HELLO_REPLY from the emulated firmware")


def pty_echo_reference(n: int, request: bytes, reply_len: int) -> np.ndarray:
    """Round trips through a bare pty whose far end echoes a reply of reply_len bytes per request."""
    master, slave = os.openpty()
    import tty
    tty.setraw(slave)
    stop = threading.Event()

    def echo() -> None:
        buf = b""
        while not stop.is_set():
            try:
                buf += os.read(master, 4096)
            except OSError:
                return
            while len(buf) >= len(request):
                buf = buf[len(request):]
                os.write(master, b"\x01" * (reply_len - 1) + b"\x00")

    th = threading.Thread(target=echo, daemon=True)
    th.start()
    port = serial.serial_for_url(os.ttyname(slave), baudrate=P.BAUD, timeout=0)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        port.write(request)
        got = b""
        while not got.endswith(b"\x00"):
            got += port.read(4096)
        times.append(time.perf_counter() - t0)
    stop.set()
    port.close()
    os.close(master)
    os.close(slave)
    return np.array(times)


def round_trips(host: Host, n: int) -> np.ndarray:
    times = []
    for k in range(n):
        t0 = time.perf_counter()
        seq = host.send(codec.message("PING", nonce=k))
        done = False
        while not done:
            for m in host.poll():
                if isinstance(m, P.Ack) and m.cmd_seq == seq:
                    done = True
        times.append(time.perf_counter() - t0)
    return np.array(times)


def sustained(host: Host, seconds: float, window: int) -> dict:
    """PINGs with up to ``window`` outstanding; a NACK BAD_CRC or 0.5 s without a reply makes the host
    resend the same seq (the protocol's retry: the device answers a seq it already answered again,
    without executing it twice)."""
    outstanding: dict[int, float] = {}     # seq -> time sent
    replies: dict[int, int] = {}
    nonces: dict[int, int] = {}
    sent = retries = overflow = 0
    first_t = last_t = None
    t_start = time.monotonic()
    t_end = t_start + seconds
    while (time.monotonic() < t_end or outstanding) and time.monotonic() < t_end + 5:
        while len(outstanding) < window and time.monotonic() < t_end:
            seq = host.send(codec.message("PING", nonce=sent))
            nonces[seq] = sent
            outstanding[seq] = time.monotonic()
            sent += 1
        now = time.monotonic()
        for seq, t in list(outstanding.items()):
            if now - t > 0.5:
                host.send(codec.message("PING", nonce=nonces[seq]), seq)
                outstanding[seq] = now
                retries += 1
        for m in host.poll():
            if isinstance(m, P.Ack) and m.cmd_type == P.MsgId.PING:
                assert m.value == nonces[m.cmd_seq]
                if m.cmd_seq in outstanding:          # a late duplicate answer to a retry is not counted
                    replies[m.cmd_seq] = replies.get(m.cmd_seq, 0) + 1
                    outstanding.pop(m.cmd_seq)
                first_t = m.t_us if first_t is None else first_t
                last_t = m.t_us
            elif isinstance(m, P.Nack) and m.reason == P.NackReason.BAD_CRC and m.cmd_seq in outstanding:
                host.send(codec.message("PING", nonce=nonces[m.cmd_seq]), m.cmd_seq)
                outstanding[m.cmd_seq] = time.monotonic()
                retries += 1
            elif isinstance(m, P.Error) and m.code == P.ErrorCode.EVENT_OVERFLOW:
                overflow += m.value
    wall = time.monotonic() - t_start
    got = sum(replies.values())
    dev_s = ((last_t - first_t) & 0xFFFFFFFF) / 1e6 if first_t is not None else float("nan")
    return {"sent": sent, "replies": got, "exactly_once": all(v == 1 for v in replies.values()) and got == sent,
            "lost_events": overflow, "gaps": host.gaps, "retries": retries, "wall_s": wall,
            "per_wall_s": got / wall, "device_s": dev_s, "per_device_s": got / dev_s}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pings", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--window", type=int, default=4)
    ap.add_argument("--ack-every", type=int, default=8, help="host EVENT_ACK after this many events (or 10 ms)")
    args = ap.parse_args()

    elf, harness = build()
    ping = codec.encode(codec.message("PING", nonce=1), 1)
    ack = codec.encode(codec.message("ACK", t_us=1, cmd_seq=1, cmd_type=2, value=1), 1)
    ref = pty_echo_reference(args.pings, ping, len(ack))
    with EmulatedDUT(elf, harness) as dut:
        host = Host(dut.url)
        host.hello()
        rt = round_trips(host, args.pings)
        host.ack_every = args.ack_every
        rate = sustained(host, args.seconds, args.window)

    floor_ms = (len(ping) + len(ack)) * SIMAVR_US_PER_BYTE / 1000
    q = lambda a, p: float(np.percentile(a, p) * 1000)  # noqa: E731
    print(f"round trip, {args.pings} sequential PINGs ({len(ping)} B out, {len(ack)} B back):")
    print(f"  emulated firmware : p50 {q(rt, 50):.3f} ms  p99 {q(rt, 99):.3f} ms  max {rt.max() * 1000:.3f} ms")
    print(f"  reference pty echo: p50 {q(ref, 50):.3f} ms  p99 {q(ref, 99):.3f} ms  max {ref.max() * 1000:.3f} ms")
    print(f"  wire-time floor   : {floor_ms:.3f} ms;  p50 ratio firmware/pty-echo {q(rt, 50) / q(ref, 50):.1f}x,"
          f" firmware/wire floor {q(rt, 50) / floor_ms:.1f}x")
    print(f"sustained events (PING->ACK, window {args.window}, EVENT_ACK every {args.ack_every}, {args.seconds:.0f} s):")
    print(f"  {rate['replies']} of {rate['sent']} commands answered, exactly once: {rate['exactly_once']},"
          f" events lost: {rate['lost_events']}, frames resent by the device: {rate['gaps']},"
          f" commands retried by the host: {rate['retries']}")
    print(f"  {rate['per_wall_s']:.0f} events/s wall, {rate['per_device_s']:.0f} events/s device time"
          f" ({rate['device_s']:.2f} device s in {rate['wall_s']:.2f} wall s)")
    link_max = 1e6 / SIMAVR_US_PER_BYTE / len(ping)
    print(f"  host->device link limit for PING-driven events: {link_max:.0f}/s"
          f" -> {rate['per_device_s'] / link_max:.2f} of it")
    return 0 if rate["exactly_once"] and rate["lost_events"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
