"""The hardware test before a session (``dopa-rl check``): each part of the rig driven once and judged by what
the device itself reports (its events and their device times), never by the host's clock.

Parts: the link (HELLO: firmware, protocol, schema hash, board, reset cause), the valve (a short pulse: the
device must report it opened and closed after the planned time), the cue LED, the tone (at the frequency
asked), the TTL output (its rising edge and width), the lick sensor (a contact within a time you give:
touch the spout), and, where the TTL output is wired back to the analog input, a TTL loopback (the analog
input must read high during a TTL pulse and low outside it).
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from dopa_rl.errors import DeviceError
from dopa_rl.protocol import messages as P

__all__ = ["PartResult", "check_loopback", "run_checks"]

VALVE_MS = 20          # valve test pulse (a click, ~0.2 uL on a typical valve)
TTL_MS = 20
TONE_HZ = 4000
PART_S = 0.2           # device seconds each output stays on
LOOPBACK_RATE_HZ = 1000
LOOPBACK_HIGH = 512    # ADC counts (10-bit): above = high


@dataclass(frozen=True)
class PartResult:
    """The verdict on one part of the rig: ``PASS``, ``FAIL`` or ``SKIP``, with what was seen."""

    part: str
    status: str          # PASS, FAIL, SKIP
    detail: str

    def line(self) -> str:
        return f"{self.status:4s} {self.part:<9s} {self.detail}"


def _events_until(client: Any, pred: Callable[[Any], bool], timeout_s: float) -> tuple[Any | None, list]:
    """Events from the client's queue until one satisfies ``pred`` (returned with all seen) or ``timeout_s``
    of real time passes without one (None)."""
    seen = []
    deadline = time.monotonic() + timeout_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None, seen
        try:
            ev = client.events.get(timeout=left)
        except queue.Empty:
            return None, seen
        seen.append(ev)
        if pred(ev):
            return ev, seen


def _wait_device(client: Any, us: int, speed: float) -> None:
    """Let ``us`` of device time pass (the output stays on that long; events keep arriving in the queue)."""
    threading.Event().wait(us / 1e6 / speed)


def check_link(hello: Any) -> PartResult:
    ok = hello.schema_hash == P.SCHEMA_HASH and hello.protocol_version == P.PROTOCOL_VERSION
    detail = (f"firmware 0x{hello.firmware_version:04X}, protocol v{hello.protocol_version}, schema "
              f"0x{hello.schema_hash:08X}, board {hello.board}, reset cause {hello.reset_cause}")
    return PartResult("link", "PASS" if ok else "FAIL", detail + ("" if ok else " (this host expects schema "
                                                                   f"0x{P.SCHEMA_HASH:08X})"))


def check_valve(client: Any, timeout_s: float) -> PartResult:
    client.valve_pulse(VALVE_MS)
    opened, _ = _events_until(client, lambda e: e.name == "VALVE_OPENED", timeout_s)
    closed, _ = _events_until(client, lambda e: e.name == "VALVE_CLOSED", timeout_s) if opened else (None, [])
    if opened is None or closed is None:
        return PartResult("valve", "FAIL", f"asked for a {VALVE_MS} ms pulse; the device reported "
                                           f"{'no opening' if opened is None else 'no closing'}")
    open_ms = closed.msg.open_us / 1000
    ok = abs(open_ms - VALVE_MS) <= 1.0 and closed.msg.cause == P.CloseCause.PULSE_END
    return PartResult("valve", "PASS" if ok else "FAIL", f"{VALVE_MS} ms pulse: open {open_ms:.3f} ms by the device's "
                                                         f"clock (listen for the click)")


def check_output(client: Any, part: str, on: Callable[[], Any], off: Callable[[], Any], onset: str, offset: str,
                 timeout_s: float, speed: float, extra: Callable[[Any], str | None] = lambda ev: None) -> PartResult:
    on()
    ev_on, _ = _events_until(client, lambda e: e.name == onset, timeout_s)
    _wait_device(client, int(PART_S * 1e6), speed)
    off()
    ev_off, _ = _events_until(client, lambda e: e.name == offset, timeout_s)
    if ev_on is None or ev_off is None:
        return PartResult(part, "FAIL", f"no {onset if ev_on is None else offset} event from the device")
    problem = extra(ev_on)
    dur = (ev_off.t_device_us - ev_on.t_device_us) / 1000
    return PartResult(part, "FAIL" if problem else "PASS", problem or f"on for {dur:.1f} ms (device clock)")


def check_ttl(client: Any, timeout_s: float) -> PartResult:
    client.ttl_pulse(TTL_MS)
    ev, _ = _events_until(client, lambda e: e.name == "TTL_SENT", timeout_s)
    if ev is None:
        return PartResult("ttl", "FAIL", "no TTL_SENT event from the device")
    ok = ev.msg.ms == TTL_MS
    return PartResult("ttl", "PASS" if ok else "FAIL", f"{ev.msg.ms} ms pulse at device time {ev.t_device_us / 1e6:.6f} s")


def check_lick(client: Any, wait_s: float, prompt: Callable[[str], None]) -> PartResult:
    prompt(f"touch the lick spout within {wait_s:g} s ...")
    ev, _ = _events_until(client, lambda e: e.name == "LICK_ON", wait_s)
    if ev is None:
        return PartResult("lick", "FAIL", f"no lick contact within {wait_s:g} s (is the sensor wired and the spout touched?)")
    return PartResult("lick", "PASS", f"contact at device time {ev.t_device_us / 1e6:.6f} s")


def check_loopback(client: Any, timeout_s: float, speed: float) -> PartResult:
    """TTL out wired to the analog input: samples during the pulse high, before it low."""
    _wait_device(client, (TTL_MS + 50) * 1000, speed)    # the TTL part's pulse is over
    client.analog_start(LOOPBACK_RATE_HZ)
    _wait_device(client, 50_000, speed)
    client.ttl_pulse(TTL_MS)
    ttl, seen = _events_until(client, lambda e: e.name == "TTL_SENT", timeout_s)
    _wait_device(client, 100_000, speed)
    client.analog_stop()
    _, more = _events_until(client, lambda e: False, min(timeout_s, 0.5))
    if ttl is None:
        return PartResult("loopback", "FAIL", "no TTL_SENT event from the device")
    t0, t1 = ttl.t_device_us, ttl.t_device_us + TTL_MS * 1000
    inside, outside = [], []
    for e in seen + more:
        if e.name != "ANALOG_BATCH":
            continue
        m = e.msg
        for i in range(m.n):
            t = e.t_device_us + int(i * 1e6 / m.rate_hz)
            if t0 + 2000 <= t < t1 - 1000:
                inside.append(m.samples[i])
            elif t0 - 40_000 <= t < t0 - 1000 or t1 + 3000 <= t < t1 + 60_000:
                outside.append(m.samples[i])
    if not inside or not outside:
        return PartResult("loopback", "FAIL", "no analog samples around the TTL pulse")
    hi = sum(s > LOOPBACK_HIGH for s in inside) / len(inside)
    lo = sum(s <= LOOPBACK_HIGH for s in outside) / len(outside)
    ok = hi == 1.0 and lo == 1.0
    return PartResult("loopback", "PASS" if ok else "FAIL",
                      f"analog input high in {hi:.0%} of {len(inside)} samples during the TTL pulse, low in "
                      f"{lo:.0%} of {len(outside)} outside it")


def run_checks(client: Any, *, speed: float = 1.0, lick_wait_s: float = 10.0, loopback: bool = False,
               prompt: Callable[[str], None] = print, on_result: Callable[[PartResult], None] = lambda r: None
               ) -> list[PartResult]:
    """Every part, in order, on a started client (HELLO done); outputs off at the end whatever happens."""
    timeout_s = 2.0 + 1.0 / speed
    results: list[PartResult] = []

    def add(r: PartResult) -> None:
        results.append(r)
        on_result(r)

    add(check_link(client.hello))
    client.configure(max_valve_ms=max(VALVE_MS, 50), budget_valve_ms=1000,
                     host_timeout_ms=int(min(10000, max(1000, 1000 * speed))))
    steps = [
        lambda: check_valve(client, timeout_s),
        lambda: check_output(client, "cue", client.cue_on, client.cue_off, "CUE_ONSET", "CUE_OFFSET", timeout_s, speed),
        lambda: check_output(client, "tone", lambda: client.tone_on(TONE_HZ), client.tone_off, "TONE_ONSET",
                             "TONE_OFFSET", timeout_s, speed,
                             extra=lambda ev: None if abs(ev.msg.freq_hz - TONE_HZ) <= TONE_HZ * 0.02
                             else f"asked for {TONE_HZ} Hz, the device played {ev.msg.freq_hz} Hz"),
        lambda: check_ttl(client, timeout_s),
        lambda: check_lick(client, lick_wait_s, prompt),
    ]
    try:
        for step in steps:
            try:
                add(step())
            except DeviceError as exc:
                add(PartResult("device", "FAIL", str(exc).splitlines()[0]))
                return results
        if loopback:
            add(check_loopback(client, timeout_s, speed))
        else:
            add(PartResult("loopback", "SKIP", "TTL out not wired to the analog input (`loopback` when it is)"))
    finally:
        try:
            client.all_off()
        except DeviceError:
            pass
    return results
