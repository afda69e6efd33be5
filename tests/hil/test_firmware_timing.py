"""The firmware's timing paths in simavr (issue 16, item 4): lick edges drained before every poll (debounce
holds under bouncing, a lick flood never starves the link), the maximum-open cut within 100 us whatever
falls due, pulse lengths exact against the budget, actions at offset 0 on time.

Every timing is read from the emulator's cycle-stamped pin trace in device time (never the wall clock), so
a loaded machine slows these tests down but cannot fail them.  Each test prints what it measured.
"""
from __future__ import annotations

import random

import pytest

from dopa_rl.protocol import messages as P
from emulator_harness import EmulatedDUT

from hil_link import Link
from test_firmware_hil import falls, rises, upload

A = P.Action
LIMITS = dict(min_valve_gap_ms=10, host_timeout_ms=5000, flags=0)


def configure(link: Link, *, max_valve_ms: int = 1000, budget_valve_ms: int = 30000, debounce_us: int = 2000) -> None:
    assert isinstance(link.command("CONFIGURE", max_valve_ms=max_valve_ms, budget_valve_ms=budget_valve_ms,
                                   debounce_us=debounce_us, **LIMITS), P.Ack)


def lick_events(link: Link) -> list[object]:
    return link.of(P.LickOn) + link.of(P.LickOff)


# ---------------------------------------------------------------------------------------------------- licks
@pytest.mark.parametrize("period_us, debounce_us", [(1800, 2000), (1990, 2000), (400, 1000)])
def test_a_contact_bouncing_faster_than_the_debounce_gives_no_lick(emulated_dut: EmulatedDUT, link: Link,
                                                                   period_us: int, debounce_us: int) -> None:
    """Raw edges closer together than debounce_us never hold a level that long: no LICK event at all (an
    even number of edges ends on the resting level), as on the simulated device."""
    link.hello()
    configure(link, debounce_us=debounce_us)
    n = 2 * (600_000 // period_us // 2)                             # ~0.6 s of bouncing, even
    t = emulated_dut.now_us() + 20_000
    emulated_dut.lick_train(t, period_us, n)
    edges = emulated_dut.wait_edges("lick", n, timeout=10.0)
    link.keepalive(0.05)
    emulated_dut.advance(2 * debounce_us + 5_000)                   # the last level has long been held
    assert isinstance(link.command("PING", nonce=1), P.Ack)
    assert edges[-1][0] - edges[0][0] == pytest.approx((n - 1) * period_us, abs=2)
    got = lick_events(link)
    lost = sum(e.value for e in link.of(P.Error) if e.code == P.ErrorCode.LICK_OVERFLOW)
    print(f"{n} edges every {period_us} us at {debounce_us} us debounce: {len(got)} LICK events, {lost} edges lost")
    assert got == [] and lost == 0


def test_debounce_holds_after_a_bouncing_onset(emulated_dut: EmulatedDUT, link: Link) -> None:
    """A contact that bounces (edges every 1.8 ms) and then rests touching gives exactly one LICK_ON, stamped
    with its first edge and confirmed debounce_us after the last one."""
    link.hello()
    configure(link)                                                  # debounce 2000 us
    t = emulated_dut.now_us() + 20_000
    emulated_dut.lick_train(t, 1800, 41)                            # odd: ends touching
    edges = emulated_dut.wait_edges("lick", 41, timeout=10.0)
    on = link.wait(lambda e: isinstance(e, P.LickOn), 3.0, "LICK_ON")
    link.keepalive(0.05)
    assert len(link.of(P.LickOn)) == 1 and link.of(P.LickOff) == []
    assert abs(on.t_us - edges[0][0]) <= 8


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_debounce_holds_under_a_random_bounce(emulated_dut: EmulatedDUT, link: Link, seed: int) -> None:
    """Edges at random intervals of 0.05-1.95 ms (2 ms debounce): 30 of them (ending at rest) give no LICK
    event, 31 (ending touching) exactly one LICK_ON, stamped with the first edge."""
    rng = random.Random(seed)
    link.hello()
    configure(link)
    for n, ons in ((30, 0), (31, 1)):
        base = len(emulated_dut.edge_cycles("lick"))
        # 500 ms ahead: the n commands reach the harness before the first is due even on a loaded machine
        # (an edge whose time has passed is applied when it arrives, which would change the bounce pattern)
        t = emulated_dut.now_us() + 500_000
        first = t
        planned = []
        for k in range(n):                                          # the harness holds up to 32 at once
            emulated_dut.set_lick((k + 1) % 2, at_us=t)
            planned.append(t)
            t += rng.randint(50, 1950)
        edges = emulated_dut.wait_edges("lick", base + n, timeout=10.0)[base:]
        assert [abs(us - want) <= 1 for (us, _), want in zip(edges, planned)] == [True] * n, "edges off schedule"
        emulated_dut.advance(10_000)
        assert isinstance(link.command("PING", nonce=n), P.Ack)    # every event before it is in
        got = link.of(P.LickOn)
        assert len(got) == ons and link.of(P.LickOff) == [], (n, got)
        if ons:
            assert abs(got[0].t_us - first) <= 8


def test_a_lick_flood_never_starves_the_link(emulated_dut: EmulatedDUT, link: Link) -> None:
    """Edges every 0.4 ms at 1 ms debounce for ~1.5 s: every ping sent meanwhile is answered and no received
    byte is lost (the link was held for a debounce deadline that never came)."""
    link.hello()
    configure(link, debounce_us=1000)
    n = 3600
    t = emulated_dut.now_us() + 10_000
    emulated_dut.lick_train(t, 400, n)
    seqs = []
    while len(emulated_dut.edge_cycles("lick")) < n - 200:          # a ping every 5 ms while the flood lasts
        seqs.append(link.send("PING", nonce=len(seqs)))
        link.pump()
        emulated_dut.advance(5_000)
    emulated_dut.wait_edges("lick", n, timeout=10.0)
    link.reply(seqs[-1], timeout=5.0)                               # frames are answered in order
    answered = {e.cmd_seq for e in link.of(P.Ack) if e.cmd_type == P.MsgId.PING}
    lost = sum(e.value for e in link.of(P.Error) if e.code == P.ErrorCode.RX_OVERFLOW)
    print(f"lick flood: {len(answered & set(seqs))} of {len(seqs)} pings answered, {lost} bytes lost")
    assert len(seqs) >= 20
    assert set(seqs) <= answered and lost == 0
    assert lick_events(link) == []


# ---------------------------------------------------------------------------------------------- valve cut
MAX_MS = 20


def _cut_late(dut: EmulatedDUT, link: Link, trial: int, actions: list[tuple[int, int, int]]) -> int:
    """A programmed 2 x MAX_MS pulse at offset 0 (cut at max_valve_ms) with ``actions`` (offsets relative to
    the cut); returns how much longer than max_valve_ms the valve was open, in us, from the pin trace."""
    cut = MAX_MS * 1000
    n_closed = len(falls(dut, "valve"))
    upload(link, trial, 3 * MAX_MS, [(0, A.VALVE_PULSE, 2 * MAX_MS)] + [(cut + d, a, arg) for d, a, arg in actions])
    assert isinstance(link.command("TRIAL_START", when=P.TrialWhen.NOW), P.Ack)
    started = link.wait(lambda e: isinstance(e, P.TrialStarted) and e.trial_id == trial)
    dut.wait_edges("valve", 2 * (n_closed + 1), timeout=5.0)
    link.wait(lambda e: isinstance(e, P.TrialEnded) and e.trial_id == trial, 3.0, "TRIAL_ENDED")
    dut.advance(12_000)                                              # the 10 ms minimum gap, in device time
    assert rises(dut, "valve")[n_closed] - started.t_us <= 100                 # opened on time
    return falls(dut, "valve")[n_closed] - rises(dut, "valve")[n_closed] - cut


def test_max_open_cut_within_100us_whatever_falls_due(emulated_dut: EmulatedDUT, link: Link) -> None:
    """The cut at max_valve_ms lands 0-100 us after its time with any single action due just before it, and
    with 15 actions (15 re-timing VALVE_PULSEs included) due 50 us before it."""
    link.hello()
    configure(link, max_valve_ms=MAX_MS)
    cases = [(d, a, arg) for d in (-150, -100, -60, -30, -10, 0)
             for a, arg in ((A.TONE_ON, 4000), (A.CUE_ON, 0), (A.TTL_PULSE, 1), (A.VALVE_PULSE, 2 * MAX_MS))]
    cases = [[c] for c in cases] + [[(-50, A.VALVE_PULSE, 2 * MAX_MS)] * 15, [(-50, A.TONE_ON, 4000)] * 15,
                                    [(-50, A.TTL_PULSE, 1)] * 15]
    late = {}
    for trial, actions in enumerate(cases, start=1):
        late[trial] = _cut_late(emulated_dut, link, trial, actions)
        if actions[0][1] == A.TONE_ON:
            assert isinstance(link.command("TONE_OFF"), P.Ack)
    print("cut late (us): " + ", ".join(f"{cases[k - 1][0][1].name}x{len(cases[k - 1])}@{cases[k - 1][0][0]}: {v}"
                                       for k, v in late.items()))
    print(f"cut late: min {min(late.values())} us, max {max(late.values())} us")
    bad = {k: v for k, v in late.items() if not -4 <= v <= 100}                # -4: one step of the clock
    assert not bad, {f"{cases[k - 1][0][1].name}x{len(cases[k - 1])}@{cases[k - 1][0][0]}": v for k, v in bad.items()}
    trips = [e.reason for e in link.of(P.SafetyTrip)]
    assert trips == [P.TripReason.MAX_OPEN] * len(cases)     # re-timing pulses reached after a cut: no MIN_GAP
    assert len(link.of(P.ValveOpened)) == len(cases)


# ------------------------------------------------------------------------------------------ pulse lengths
def test_pulses_are_exact_against_the_budget(emulated_dut: EmulatedDUT, link: Link) -> None:
    """A 300 ms budget gives exactly three 100 ms pulses (commanded and programmed) and refuses a fourth, as
    on the simulated device; each pulse lasts 100 ms in the pin trace within two steps of the 4 us clock,
    and the VALVE_CLOSED events count exactly the budget."""
    link.hello()
    configure(link, budget_valve_ms=300)
    for k in range(3):
        r = link.command("VALVE_PULSE", ms=100)
        assert isinstance(r, P.Ack) and r.value == 100, (k, r, [c.open_us for c in link.of(P.ValveClosed)],
                                                         [c - o for o, c in zip(rises(emulated_dut, "valve"), falls(emulated_dut, "valve"))])
        emulated_dut.wait_edges("valve", 2 * (k + 1))
        emulated_dut.advance(12_000)                                 # the 10 ms minimum gap, in device time
    nack = link.command("VALVE_PULSE", ms=1)
    assert isinstance(nack, P.Nack) and nack.reason == P.NackReason.SAFETY
    link.session = 2
    link.hello()                                                     # a new session: its budget restarts, but
    configure(link, budget_valve_ms=600)                             # the minute's 300 ms still count: 300 left
    upload(link, 1, 900, [(0, A.VALVE_PULSE, 100), (200_000, A.VALVE_PULSE, 100), (400_000, A.VALVE_PULSE, 100),
                          (600_000, A.VALVE_PULSE, 1)])
    assert isinstance(link.command("TRIAL_START", when=P.TrialWhen.NOW), P.Ack)
    emulated_dut.wait_edges("valve", 12)
    link.wait(lambda e: isinstance(e, P.TrialEnded), 3.0, "TRIAL_ENDED")
    lengths = [c - o for o, c in zip(rises(emulated_dut, "valve"), falls(emulated_dut, "valve"))]
    closed = link.of(P.ValveClosed)
    print(f"pulse lengths (us): {lengths}; VALVE_CLOSED open_us: {[c.open_us for c in closed]}")
    assert len(lengths) == 6 and all(abs(n - 100_000) <= 8 for n in lengths)        # two steps of the clock
    assert [c.open_us for c in closed] == [100_000] * 6
    assert [e.reason for e in link.of(P.SafetyTrip)] == [P.TripReason.BUDGET] * 2   # the 4th of each refused


# ------------------------------------------------------------------------------------------------ offset 0
def test_actions_at_offset_0_run_on_time(emulated_dut: EmulatedDUT, link: Link) -> None:
    """An offset-0 action of a trial started NOW and of one started back to back lands as close to the
    trial's start (TRIAL_STARTED.t_us) as an action at 20 ms to its time (0-60 us: the loop's latency)."""
    link.hello()
    upload(link, 1, 50, [(0, A.CUE_ON, 0), (20_000, A.CUE_OFF, 0)])
    assert isinstance(link.command("TRIAL_START", when=P.TrialWhen.NOW), P.Ack)
    upload(link, 2, 50, [(0, A.CUE_ON, 0), (20_000, A.CUE_OFF, 0)])
    assert isinstance(link.command("TRIAL_START", when=P.TrialWhen.AFTER_CURRENT), P.Ack)
    first = link.wait(lambda e: isinstance(e, P.TrialStarted) and e.trial_id == 1)
    second = link.wait(lambda e: isinstance(e, P.TrialStarted) and e.trial_id == 2, 3.0)
    emulated_dut.wait_edges("cue", 4)
    assert second.t_us == first.t_us + 50_000                       # back to back, exactly
    cue_on, cue_off = rises(emulated_dut, "cue"), falls(emulated_dut, "cue")
    late = {"now: cue on @0": cue_on[0] - first.t_us, "now: cue off @20ms": cue_off[0] - (first.t_us + 20_000),
            "back to back: cue on @0": cue_on[1] - second.t_us,
            "back to back: cue off @20ms": cue_off[1] - (second.t_us + 20_000)}
    print("late (us): " + ", ".join(f"{k} {v}" for k, v in late.items()))
    assert all(0 <= v <= 60 for v in late.values()), late
