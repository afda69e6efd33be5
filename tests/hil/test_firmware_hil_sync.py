"""Sync pulses of the real firmware in simavr: the TTL pin's rising edges are the reported SYNC_PULSE times,
each pulse as long as asked, the intervals the xorshift32 sequence of protocol/messages.toml (as the
simulated device sends it).  Times are emulated device time (pin trace), never the wall clock."""
from __future__ import annotations

from dopa_rl.protocol import messages as P
from emulator_harness import EmulatedDUT

from hil_link import Link
from test_sync_pulses import xorshift_intervals

N = 15


def test_sync_pulses_on_the_ttl_pin_equal_the_reported_events(emulated_dut: EmulatedDUT, link: Link) -> None:
    link.hello()
    assert isinstance(link.command("CONFIGURE", max_valve_ms=1000, min_valve_gap_ms=50, budget_valve_ms=30000,
                                   host_timeout_ms=10000, debounce_us=2000, flags=0), P.Ack)
    assert isinstance(link.command("SYNC_START", min_ms=100, max_ms=250, pulse_ms=5, seed=99), P.Ack)
    link.wait(lambda e: isinstance(e, P.SyncPulse) and e.n == N - 1, 30.0, f"{N} SYNC_PULSE events")
    stop = link.command("SYNC_STOP")
    assert isinstance(stop, P.Ack) and stop.value >= N
    pulses = link.of(P.SyncPulse)[:N]
    assert [p.n for p in pulses] == list(range(N)) and all(p.ms == 5 for p in pulses)
    edges = emulated_dut.wait_edges("ttl", 2 * N)[:2 * N]
    rises = [t for t, lv in edges if lv == 1]
    falls = [t for t, lv in edges if lv == 0]
    off = [p.t_us - r for p, r in zip(pulses, rises)]
    assert all(abs(d) <= 20 for d in off), f"event times against the pin (us): {off}"
    assert all(abs((f - r) - 5000) <= 100 for r, f in zip(rises, falls))
    # the intervals (planned on the device clock: a late poll does not shift the next pulse)
    got = [(b - a) for a, b in zip(rises, rises[1:])]
    want = [ms * 1000 for ms in xorshift_intervals(99, N - 1, 100, 250)]
    assert all(abs(g - w) <= 100 for g, w in zip(got, want)), list(zip(got, want))
    # nothing more after SYNC_STOP
    n_after = len([t for t, lv in emulated_dut.pin_edges("ttl") if lv])
    emulated_dut.advance(400_000)
    assert len([t for t, lv in emulated_dut.pin_edges("ttl") if lv]) == n_after
