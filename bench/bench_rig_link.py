"""Benchmark of the host link: command round trips and sustained event rate, over a real pseudo-terminal.

The simulated device runs in a *separate process* behind a pty (``dopa_rl.rig.transports.PtyBridge``),
so the host client pays for everything a real board costs it except the wire time: tty reads and writes,
framing, CRC, acknowledgements, clock fitting, the event queue.

1. Round trip: ``--pings`` sequential PING commands through :class:`~dopa_rl.rig.client.DeviceClient`
   (p50/p99/max).  Reference in the same run: a raw echo of a 10-byte frame over a pty pair (a process
   that copies bytes back) read with pyserial.  With ``--emulator`` also the real firmware in simavr.
2. Sustained events: the device emits ANALOG_BATCH events at ``--rate`` per second for ``--seconds``
   (samples are a running counter, so any loss or repetition is visible) while the client acknowledges
   them.  Zero loss means: counters contiguous, the device never overflowed its ring, every event the
   device numbered was accepted.  Reference: the events/s the frame decoder alone handles (no link).

    .venv/bin/python bench/bench_rig_link.py                      # the full 60 s run recorded in README
    .venv/bin/python bench/bench_rig_link.py --seconds 5 --pings 500   # quick
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))  # emulator_harness (repository tool)

import argparse
import json
import queue
import subprocess
import time

import serial

from dopa_rl.protocol import messages as P
from dopa_rl.protocol import codec
from dopa_rl.rig.client import DeviceClient
from dopa_rl.rig.transports import open_link

_SERVE = """
import sys, time
sys.setswitchinterval(0.0005)   # three threads share this process's GIL: hand it over quickly
from dopa_rl.rig.transports import PtyBridge, open_link
port = open_link("dopasim://?speed=1&ring=" + sys.argv[2])
rate = float(sys.argv[1])
if rate > 0:
    port.device.stress(rate)
bridge = PtyBridge(port, poll_s=0.005)
print(bridge.path, flush=True)
try:
    sys.stdin.read()          # until the parent closes our stdin
finally:
    print("lost", port.device.stats["events_lost"], "tx_seq", port.device._tx_seq, flush=True)
    bridge.close()
"""

_ECHO = """
import os, select, sys, tty
m, s = os.openpty()
tty.setraw(s)
print(os.ttyname(s), flush=True)
while True:
    r, _, _ = select.select([m, sys.stdin], [], [])
    if sys.stdin in r:
        break
    os.write(m, os.read(m, 4096))
"""


def _spawn(code: str, *args: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    path = proc.stdout.readline().strip()
    if not path:
        raise RuntimeError("helper process printed no pty path")
    return proc, path


def _finish(proc: subprocess.Popen) -> str:
    proc.stdin.close()
    out = proc.stdout.read()
    proc.wait(10)
    return out


def _pct(xs: list[float]) -> dict:
    xs = sorted(xs)
    return {"p50_ms": 1e3 * xs[len(xs) // 2], "p99_ms": 1e3 * xs[min(len(xs) - 1, int(0.99 * len(xs)))],
            "max_ms": 1e3 * xs[-1], "n": len(xs)}


def raw_echo_rtt(n: int) -> dict:
    proc, path = _spawn(_ECHO)
    port = serial.serial_for_url(path, baudrate=1_000_000, timeout=1.0)
    frame = codec.encode(P.Ping(1), 1)
    rtts = []
    for _ in range(n):
        t = time.perf_counter()
        port.write(frame)
        got = b""
        while len(got) < len(frame):
            got += port.read(len(frame) - len(got))
        rtts.append(time.perf_counter() - t)
    port.close()
    proc.stdin.close()
    proc.wait(5)
    return _pct(rtts)


def client_rtt(url: str, n: int) -> dict:
    c = DeviceClient(open_link(url), read_poll_s=0.005)
    try:
        c.start()
        rtts = []
        for i in range(n):
            t = time.perf_counter()
            c.ping(i)
            rtts.append(time.perf_counter() - t)
        return dict(_pct(rtts), retries=c.stats["retries"])
    finally:
        c.safe()


def sim_rtt(n: int) -> dict:
    proc, path = _spawn(_SERVE, "0", str(P.EVENT_RING))
    try:
        return client_rtt(path, n)
    finally:
        _finish(proc)


def emulator_rtt(n: int) -> dict | None:
    import emulator_harness as emulator

    why = emulator.toolchain_missing()
    if why:
        print(f"emulator skipped: {why}")
        return None
    try:
        elf, harness = emulator.build()
    except Exception as exc:  # the firmware may be mid-edit in a shared tree
        print(f"emulator skipped: {exc}")
        return None
    with emulator.EmulatedDUT(elf, harness) as dut:
        return client_rtt(dut.url, n)


def decoder_capacity(n: int = 20000) -> float:
    wire = b"".join(codec.encode(P.AnalogBatch(i, 0, 8, tuple(range(8))), i & 0xFFFF) for i in range(n))
    dec = codec.FrameDecoder()
    t = time.perf_counter()
    for i in range(0, len(wire), 4096):
        dec.feed(wire[i:i + 4096])
    return n / (time.perf_counter() - t)


def sustained_events(rate: float, seconds: float, ring: int = P.EVENT_RING) -> dict:
    proc, path = _spawn(_SERVE, str(rate), str(ring))
    c = DeviceClient(open_link(path), read_poll_s=0.005)
    state = {"n": 0, "next": None, "bad": 0, "first": None, "last": None}

    def on_event(ev) -> None:
        if ev.name != "ANALOG_BATCH" or ev.msg.rate_hz != 0:
            return
        s = ev.msg.samples
        if state["next"] is not None and s[0] != state["next"]:
            state["bad"] += 1
        state["next"] = (s[-1] + 1) & 0xFFFF
        state["n"] += 1
        state["first"] = state["first"] or ev.t_received
        state["last"] = ev.t_received

    try:
        c.start()
        cpu0 = time.process_time()
        end = time.monotonic() + seconds
        while time.monotonic() < end:        # the application consumes its events as they come
            try:
                on_event(c.events.get(timeout=0.1))
            except queue.Empty:
                pass
        cpu = time.process_time() - cpu0
        c.stop()
    finally:
        c.safe()
        tail = _finish(proc)
    lost = int(tail.split()[1]) if tail.startswith("lost") else -1
    span = (state["last"] or 0) - (state["first"] or 0)
    return {"target_per_s": rate, "seconds": seconds, "device_ring": ring, "events": state["n"],
            "rate_per_s": state["n"] / span if span > 0 else 0.0, "gaps_or_repeats": state["bad"],
            "device_events_lost": lost, "duplicates_dropped": c.stats["duplicates"],
            "host_cpu_fraction": cpu / seconds}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pings", type=int, default=2000, help="round trips to time (default 2000)")
    ap.add_argument("--rate", type=float, default=2000.0, help="events per second to sustain (default 2000)")
    ap.add_argument("--seconds", type=float, default=60.0, help="duration of the event test (default 60)")
    ap.add_argument("--ring", type=int, default=P.EVENT_RING,
                    help=f"simulated device's event ring (default {P.EVENT_RING}, as the firmware)")
    ap.add_argument("--emulator", action="store_true", help="also time round trips to the firmware in simavr")
    ap.add_argument("--json", metavar="FILE", help="write the results as JSON")
    args = ap.parse_args(argv)

    res: dict = {}
    res["raw_pty_echo"] = raw_echo_rtt(args.pings)
    res["client_sim_pty"] = sim_rtt(args.pings)
    r, s = res["raw_pty_echo"], res["client_sim_pty"]
    print(f"raw pty echo   : p50 {r['p50_ms']:.3f} ms  p99 {r['p99_ms']:.3f} ms  max {r['max_ms']:.3f} ms")
    print(f"client -> sim  : p50 {s['p50_ms']:.3f} ms  p99 {s['p99_ms']:.3f} ms  max {s['max_ms']:.3f} ms  "
          f"(p50 {s['p50_ms'] / r['p50_ms']:.1f}x the raw echo, {s['retries']} retries)")
    if args.emulator:
        e = emulator_rtt(args.pings)
        if e is not None:
            res["client_emulator"] = e
            print(f"client -> simavr firmware: p50 {e['p50_ms']:.3f} ms  p99 {e['p99_ms']:.3f} ms  "
                  f"max {e['max_ms']:.3f} ms ({e['retries']} retries)")
    cap = decoder_capacity()
    res["decoder_events_per_s"] = cap
    ev = sustained_events(args.rate, args.seconds, args.ring)
    res["sustained"] = ev
    ok = ev["gaps_or_repeats"] == 0 and ev["device_events_lost"] == 0
    print(f"events         : {ev['events']} in {ev['seconds']:.0f} s = {ev['rate_per_s']:.0f}/s (target "
          f"{ev['target_per_s']:.0f}/s), gaps/repeats {ev['gaps_or_repeats']}, device ring overflow "
          f"{ev['device_events_lost']} (ring {ev['device_ring']}), host CPU {100 * ev['host_cpu_fraction']:.0f}% -> "
          f"{'ZERO LOSS' if ok else 'LOSS'}; the frame decoder alone handles {cap:.0f}/s "
          f"({cap / max(ev['rate_per_s'], 1):.0f}x the sustained rate)")
    if args.json:
        from dopa_rl.io.atomic import atomic_write_text

        atomic_write_text(args.json, json.dumps(res, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
