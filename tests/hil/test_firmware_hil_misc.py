"""Firmware holes of issue 7 in simavr: the maximum-open cut under trial actions, lost lick edges counted,
and a lick polarity flip.  Timings in emulated device time (pin trace)."""
from __future__ import annotations

from dopa_rl.protocol import messages as P
from emulator_harness import EmulatedDUT

from hil_link import Link
from test_firmware_hil import upload

A = P.Action


def _cut(dut: EmulatedDUT, link: Link, n_ttl: int) -> tuple[int, int]:
    """A programmed 2000 ms pulse (cut at max_valve_ms = 1000) with n_ttl TTL actions due 50 us before
    the cut; returns (open time, close time - (trial start + 1000 ms)) in us."""
    link.hello()
    # this host goes quiet while it waits for the pin edges: keep its host timeout away from the cut
    assert isinstance(link.command("CONFIGURE", max_valve_ms=1000, min_valve_gap_ms=50, budget_valve_ms=30000,
                                   host_timeout_ms=5000, debounce_us=2000, flags=0), P.Ack)
    upload(link, 1, 1500, [(0, A.VALVE_PULSE, 2000)] + [(1_000_000 - 50, A.TTL_PULSE, 1)] * n_ttl)
    assert isinstance(link.command("TRIAL_START", when=P.TrialWhen.NOW), P.Ack)
    started = link.wait(lambda e: isinstance(e, P.TrialStarted))
    (t_open, _), (t_close, _) = dut.wait_edges("valve", 2, timeout=5.0)
    trip = link.wait(lambda e: isinstance(e, P.SafetyTrip))
    assert trip.reason == P.TripReason.MAX_OPEN
    return t_close - t_open, t_close - (started.t_us + 1_000_000)


def test_max_open_cut_plain(emulated_dut: EmulatedDUT, link: Link) -> None:
    open_us, late_us = _cut(emulated_dut, link, 0)
    print(f"plain: open {open_us} us, cut {late_us} us after the limit")
    assert 0 <= late_us <= 100


def test_max_open_cut_has_priority_over_15_trial_actions(emulated_dut: EmulatedDUT, link: Link) -> None:
    open_us, late_us = _cut(emulated_dut, link, 15)
    print(f"15 actions: open {open_us} us, cut {late_us} us after the limit")
    assert 0 <= late_us <= 100
    assert len([t for t, lv in emulated_dut.pin_edges("ttl") if lv]) >= 1     # the actions ran too


def test_lost_lick_edges_are_counted(emulated_dut: EmulatedDUT, link: Link) -> None:
    """Lick edges every 10 us around a timed change come faster than the loop takes them in (the interrupt
    alone costs ~9 us an edge) and overflow the 8-entry queue: the loss is reported, not silent."""
    link.hello()
    upload(link, 2, 600, [(500_000, A.CUE_ON, 0)])
    assert isinstance(link.command("TRIAL_START", when=P.TrialWhen.NOW), P.Ack)
    started = link.wait(lambda e: isinstance(e, P.TrialStarted))
    t_cue = started.t_us + 500_000
    n = 30                                                   # the harness schedules at most 32 changes
    for k in range(n):
        emulated_dut.set_lick((k + 1) % 2, at_us=t_cue - 295 + 10 * k)
    emulated_dut.wait_edges("cue", 1)
    emulated_dut.wait_edges("lick", n)
    err = link.wait(lambda e: isinstance(e, P.Error) and e.code == P.ErrorCode.LICK_OVERFLOW, 3.0, "LICK_OVERFLOW")
    print(f"lick edges lost: {err.value} of {n}")
    assert 1 <= err.value < n


def test_lick_polarity_flip_is_a_lick_change(emulated_dut: EmulatedDUT, link: Link) -> None:
    link.hello()
    cfg = dict(max_valve_ms=1000, min_valve_gap_ms=50, budget_valve_ms=30000, host_timeout_ms=1000, debounce_us=500)
    ack = link.command("CONFIGURE", **cfg, flags=P.ConfigFlag.LICK_ACTIVE_LOW)   # sensor low = licking now
    on = link.wait(lambda e: isinstance(e, P.LickOn), 2.0, "LICK_ON")
    assert 0 <= on.t_us - ack.t_us <= 1_000
    link.command("CONFIGURE", **cfg, flags=0)
    link.wait(lambda e: isinstance(e, P.LickOff), 2.0, "LICK_OFF")
    assert emulated_dut.pin_edges("lick") == []                                # no raw edge at all
