"""A noisy, interrupted link: nothing lost, nothing repeated.

1,000 commands go to the simulated device (20x real time) through ``faulty://`` with 1% corrupted and 1%
dropped bytes in both directions and one disconnect/reconnect.  Every command gets exactly one reply,
every device event is delivered exactly once and in order, and no valve command runs twice (valve
openings are counted in the device's own pin trace).  The same faults with 120 commands run against the
real firmware in simavr (marked ``hil``).
"""
from __future__ import annotations

import time

import pytest

from dopa_rl.errors import DeviceError
from dopa_rl.protocol import messages as P
from dopa_rl.protocol import codec
from dopa_rl.rig.client import DeviceClient
from dopa_rl.rig.transports import open_link
from dopa_rl.testing import SimulatedDUT

N_COMMANDS = 1000
SPEED = 20.0


def _drain(client) -> list:
    """Every event delivered so far, after a short pause for the last acknowledgements."""
    time.sleep(0.1)
    events = []
    while not client.events.empty():
        events.append(client.events.get_nowait())
    return events


def _commands(n: int) -> list:
    cycle = [lambda i: P.ValvePulse(2), lambda i: P.CueOn(), lambda i: P.ToneOn(1000 + i % 5000),
             lambda i: P.Ping(i), lambda i: P.CueOff(), lambda i: P.ToneOff(), lambda i: P.TtlPulse(1),
             lambda i: P.Ping(-i)]
    return [cycle[i % len(cycle)](i) for i in range(n)]


def _drive(client: DeviceClient, port, cmds: list, valve_gap_s: float) -> tuple[list, list]:
    """Send ``cmds`` one at a time (under loss, pipelined commands could execute out of order), pulling
    the cable for 100 ms half-way; returns the replies and the sequence numbers used."""
    replies, seqs_sent = [], []
    for i, msg in enumerate(cmds):
        if i == len(cmds) // 2:
            port.inject_disconnect(100)
        if isinstance(msg, P.ValvePulse):
            time.sleep(valve_gap_s)
        pc = client.send(msg)
        replies.append(pc.result(30))
        seqs_sent.append(pc.seq)
    return replies, seqs_sent


def _check_replies_and_outputs(cmds: list, replies: list, seqs_sent: list, events: list, dut) -> None:
    """Checks that hold for any device: one ACK per command, events once and in order, no repeated valve."""
    assert len(replies) == len(cmds)
    assert all(isinstance(r, P.Ack) and r.cmd_type == P.SPEC_BY_CLASS[type(m)].id for r, m in zip(replies, cmds))
    app_seqs = set(seqs_sent)
    acks = [e for e in events if e.name == "ACK" and e.msg.cmd_seq in app_seqs]
    assert sorted(e.msg.cmd_seq for e in acks) == sorted(app_seqs)        # one delivered ACK per command
    seqs = [e.seq for e in events]
    assert seqs == sorted(set(seqs))                                      # no repeats, in device order
    assert [e.index for e in events] == list(range(len(events)))
    # the events each command causes, once each, in command order (a valve closes by itself 2 ms of device
    # time after opening, so VALVE_CLOSED is checked apart: it alternates with VALVE_OPENED)
    expected = []
    for m in cmds:
        expected += [n for n in EXPECTED_EVENTS[P.SPEC_BY_CLASS[type(m)].name] if n != "VALVE_CLOSED"]
    output_names = set(sum(EXPECTED_EVENTS.values(), [])) - {"VALVE_CLOSED"}
    assert [e.name for e in events if e.name in output_names] == expected
    valve = [e.name for e in events if e.name.startswith("VALVE_")]
    assert valve == ["VALVE_OPENED", "VALVE_CLOSED"] * (len(valve) // 2)
    # no valve command ran twice: as many openings in the pin trace as valve commands, no gap refusals
    n_valve = sum(isinstance(m, P.ValvePulse) for m in cmds)
    assert len([t for t, level in dut.pin_edges("valve") if level == 1]) == n_valve
    assert len([t for t, level in dut.pin_edges("cue") if level == 1]) == sum(isinstance(m, P.CueOn) for m in cmds)
    assert not [e for e in events if e.name == "SAFETY_TRIP"]


EXPECTED_EVENTS = {"VALVE_PULSE": ["VALVE_OPENED", "VALVE_CLOSED"], "CUE_ON": ["CUE_ONSET"],
                   "CUE_OFF": ["CUE_OFFSET"], "TONE_ON": ["TONE_ONSET"], "TONE_OFF": ["TONE_OFFSET"],
                   "TTL_PULSE": ["TTL_SENT"], "PING": []}


def test_thousand_commands_through_noise_and_a_disconnect():
    dut = SimulatedDUT(speed=SPEED)
    port = open_link(f"faulty://{dut.url}#corrupt=0.01&drop=0.01&seed=3")
    client = DeviceClient(port, ack_timeout_s=0.01, heartbeat_s=0.05, max_in_flight=4, command_timeout_s=20.0)
    device_out = codec.FrameDecoder()
    sent: dict[int, object] = {}          # what the device put on the wire, first copy of each seq

    def on_tx(chunk: bytes) -> None:
        for rec in device_out.feed(chunk):
            if isinstance(rec.msg, P.HelloReply) and rec.msg.boot == 0:
                sent.clear()             # our HELLO restarts the device's numbering
            sent.setdefault(rec.seq, rec.msg)

    dut.device.on_tx = on_tx
    try:
        client.start()
        # valve pulses are spaced by a few ms of real time (tens of ms of device time): a repeated
        # execution would show up as an extra opening, or as a MIN_GAP refusal
        client.configure(min_valve_gap_ms=10, host_timeout_ms=10000)
        t0 = time.monotonic()
        cmds = _commands(N_COMMANDS)
        replies, seqs_sent = _drive(client, port, cmds, valve_gap_s=0.004)
        time.sleep(0.1)                           # the last VALVE_CLOSED events
        port.set_faults(corrupt=0, drop=0)        # a clean link for the final tally
        deadline = time.monotonic() + 5
        caught_up = False
        while not caught_up and time.monotonic() < deadline:
            with dut.device._lock:               # an instant where the device has nothing unacknowledged
                caught_up = dut.device.unacked == 0 and client.next_expected_seq == dut.device._tx_seq
                accepted_then, expected_then = client.stats["accepted"], client.next_expected_seq
            time.sleep(0.002)
        elapsed = time.monotonic() - t0
        events = []
        while not client.events.empty():
            events.append(client.events.get_nowait())
    finally:
        client.safe()
        dut.close()

    stats, fstats = client.stats, port.stats
    # the faults really happened
    assert fstats["rx_corrupted"] > 50 and fstats["rx_dropped"] > 50 and fstats["tx_dropped"] > 10
    assert fstats["disconnects"] == 1 and stats["reconnects"] == 1
    assert stats["retries"] > 10 and stats["duplicates"] > 0

    _check_replies_and_outputs(cmds, replies, seqs_sent, events, dut)
    # everything the device numbered since HELLO was accepted (its ring is empty, its next seq is ours)
    assert caught_up and accepted_then == expected_then   # every seq from HELLO_REPLY (0) on, once each
    # independent check against the device's own output: what it numbered, the client delivered, in
    # order, except replies to the client's heartbeats and the re-sent replies to retried commands
    # (the NACK BAD_CRC of a damaged command frame is delivered; the command is then resent)
    want, replied = [], set()
    for seq in range(expected_then):
        m = sent[seq]
        if isinstance(m, (P.Ack, P.Nack, P.Resumed)):    # (RESUMED: the answer to a retried HELLO)
            if not isinstance(m, P.Resumed) and m.cmd_type in (P.MsgId.HEARTBEAT, P.MsgId.EVENT_ACK):
                continue
            if isinstance(m, P.Nack) and m.reason == P.NackReason.BAD_CRC:
                want.append(m)           # a damaged frame of ours, reported; not the command's answer
                continue
            if m.cmd_seq in replied:
                continue
            replied.add(m.cmd_seq)
        elif isinstance(m, P.HelloReply):
            replied.add(m.cmd_seq)           # the HELLO's answer: a RESUMED to its retry is a re-sent reply
        want.append(m)
    assert [e.msg for e in events if e.seq < expected_then] == want

    assert elapsed < 30, elapsed


@pytest.mark.hil
def test_firmware_through_noise_and_a_disconnect(emulated_dut):
    """The same faults against the real firmware in simavr (real time, so 120 commands)."""
    port = open_link(f"faulty://{emulated_dut.url}#corrupt=0.01&drop=0.01&seed=4")
    client = DeviceClient(port, ack_timeout_s=0.06, command_timeout_s=20.0)
    try:
        client.start()
        client.configure(min_valve_gap_ms=10, host_timeout_ms=10000)
        cmds = _commands(120)
        replies, seqs_sent = _drive(client, port, cmds, valve_gap_s=0.02)
        events = _drain(client)
    finally:
        client.safe()
        port.shutdown()
    assert port.stats["rx_dropped"] > 5 and port.stats["disconnects"] == 1 and client.stats["reconnects"] == 1
    _check_replies_and_outputs(cmds, replies, seqs_sent, events, emulated_dut)


def test_duplicated_and_delayed_bytes_and_a_stall():
    """The other faults: duplicated bytes, delayed bytes, a 150-ms stall (bytes late, none lost) and the
    disconnect; still exactly once."""
    dut = SimulatedDUT(speed=SPEED)
    port = open_link(f"faulty://{dut.url}#dup=0.01&delay=0.002&delay_ms=15&corrupt=0.002&seed=8")
    client = DeviceClient(port, ack_timeout_s=0.03, heartbeat_s=0.05, command_timeout_s=20.0)
    try:
        client.start()
        client.configure(min_valve_gap_ms=10, host_timeout_ms=10000)
        cmds = _commands(300)
        replies, seqs_sent = _drive(client, port, cmds[:100], valve_gap_s=0.004)
        port.inject_stall(150)
        more = _drive(client, port, cmds[100:], valve_gap_s=0.004)
        replies, seqs_sent = replies + more[0], seqs_sent + more[1]
        events = _drain(client)
    finally:
        client.safe()
        dut.close()
    fs = port.stats
    assert fs["rx_duplicated"] > 10 and fs["tx_duplicated"] > 2 and fs["rx_delayed"] > 2 and fs["stalls"] == 1
    assert fs["disconnects"] == 2                  # _drive pulls the cable half-way through each batch
    _check_replies_and_outputs(cmds, replies, seqs_sent, events, dut)


# ---------------------------------------------------------------------- the default client, a reboot, heavy faults
class _DeviceTally:
    """What the simulated device numbered (first copy of each seq, per device session; boot banners apart)
    and what it had unacknowledged when it was reset (lost with its RAM, reported by its boot banner)."""

    def __init__(self, dut) -> None:
        self.dec = codec.FrameDecoder()
        self.epochs: list[dict[int, object]] = [{}]
        self.lost_at_reset = 0
        self.dut = dut
        dut.device.on_tx = self.on_tx

    def on_tx(self, chunk: bytes) -> None:
        for rec in self.dec.feed(chunk):
            m = rec.msg
            if isinstance(m, P.HelloReply) and m.boot:
                continue
            if (isinstance(m, P.HelloReply) and rec.seq == 0 and self.epochs[-1]
                    and self.epochs[-1].get(0) != m):
                self.epochs.append({})         # a new session restarts the numbering
            self.epochs[-1].setdefault(rec.seq, m)

    def reboot(self) -> None:
        with self.dut.device._lock:
            self.lost_at_reset += sum(1 for _s, w in self.dut.device._ring
                                      if not isinstance(codec.decode(w).msg, P.HelloReply))
        self.dut.device.reboot()
        self.epochs.append({})

    @property
    def numbered(self) -> int:
        return sum(len(e) for e in self.epochs)


def _drive_default(client, port, tally, n: int, gap_s: float, clock=time.monotonic) -> tuple[list, float]:
    """n commands: valve pulses one at a time (after the others are answered and the gap has passed),
    the rest pipelined up to max_in_flight; a reboot at n/3 (between commands) and a 100-ms disconnect at
    n/2.  Returns (command, outcome, seconds of ``clock``) for each, and the longest time a command took."""
    out, pend = [], []

    def settle() -> None:
        end = time.monotonic() + 60
        while pend:
            assert time.monotonic() < end
            for item in [it for it in pend if it[1].done()]:
                msg, pc, t0 = item
                try:
                    res = pc.result(0, check=False)
                except DeviceError as exc:
                    res = exc
                out.append((msg, res, getattr(pc, "t_done", clock()) - pc.created))
                pend.remove(item)
            time.sleep(0.0005)

    def timed(pc):                         # each outcome timed when it is there, not when we look at it
        finish = pc._finish

        def fin(*args, **kw):
            pc.t_done = clock()
            finish(*args, **kw)
        pc._finish = fin
        return pc

    for i, msg in enumerate(_commands(n)):
        if i == n // 3 and tally is not None:
            settle()
            tally.reboot()
            time.sleep(0.01)
        if i == n // 2:
            port.inject_disconnect(100)
        if isinstance(msg, P.ValvePulse):
            settle()
            time.sleep(gap_s)
        pend.append((msg, timed(client.send(msg)), clock()))
        if isinstance(msg, P.ValvePulse):
            settle()
    settle()
    return out, max(dt for _m, _r, dt in out)


def _check_safety_and_accounting(out, client, dut, tally, budget_ms: int, gap_ms: int) -> dict:
    events = _drain(client)
    # the pulses the host knows succeeded: ACKed in time, or ACKed after the caller had given up (the ACK
    # still arrives as an event)
    ok_pulses = {r.cmd_seq for m, r, _dt in out if isinstance(m, P.ValvePulse) and isinstance(r, P.Ack)}
    late = {e.msg.cmd_seq for e in events if e.name == "ACK" and e.msg.cmd_type == P.MsgId.VALVE_PULSE} - ok_pulses
    edges = dut.pin_edges("valve")
    rises = [t for t, lv in edges if lv]
    assert len(rises) == len(ok_pulses | late)                         # one opening per pulse the host saw succeed
    assert edges and edges[-1][1] == 0 and len(edges) == 2 * len(rises)
    opens = [edges[k + 1][0] - edges[k][0] for k in range(0, len(edges), 2)]
    assert sum(opens) <= budget_ms * 1000                              # never beyond the session's budget
    gaps = [edges[k][0] - edges[k - 1][0] for k in range(2, len(edges), 2)]
    assert not gaps or min(gaps) >= gap_ms * 1000                      # never within the min gap of a close
    # every event the device numbered was accepted once, or counted as dropped by a new session, or was
    # unacknowledged when the device was reset (its boot banner says so)
    dropped = sum(r.dropped for r in client.rearm_log if r.resumed is False)
    acc = client.stats["accepted"]
    assert acc + dropped <= tally.numbered <= acc + dropped + tally.lost_at_reset, (
        tally.numbered, acc, dropped, tally.lost_at_reset)
    sessions = [0]
    for e in events:                                                   # in order, once, per device session
        if e.name == "HELLO_REPLY":
            sessions.append(e.seq)
            continue
        assert e.seq > sessions[-1] or len(sessions) == 1, e
        sessions[-1] = e.seq
    return {"commands": len(out), "openings": len(rises), "ok_pulses": len(ok_pulses), "late_acks": len(late),
            "failed": sum(isinstance(r, DeviceError) for _m, r, _dt in out),
            "open_ms": sum(opens) / 1000, "hellos_new": dut.device.stats["hellos_new"],
            "hellos_resumed": dut.device.stats["hellos_resumed"], "rearms": client.stats["rearms"],
            "resyncs": client.stats["resyncs"], "dropped": dropped, "lost_total": dut.device.lost_total,
            "lost_at_reset": tally.lost_at_reset, "events": client.stats["events"],
            "host_timeouts": sum(isinstance(m, P.SafetyTrip) and m.reason == P.TripReason.HOST_TIMEOUT
                                 for e in list(tally.epochs) for m in list(e.values())),
            "why": [r.why for r in client.rearm_log]}


def _settle_link(client, dut, port) -> None:
    port.set_faults(corrupt=0, drop=0)
    end = time.monotonic() + 5
    while time.monotonic() < end:
        with dut.device._lock:
            if dut.device.unacked == 0 and client.next_expected_seq == dut.device._tx_seq:
                return
        time.sleep(0.005)
    raise AssertionError("the link did not catch up")


@pytest.mark.parametrize("p,n,speed", [(0.01, 1000, 5.0), (0.05, 300, 5.0)], ids=["1pct-1000", "5pct-300"])
def test_default_client_through_faults_a_disconnect_and_a_reboot(p, n, speed):
    """The client's default options (auto re-arm on) through faulty:// with a disconnect and a device
    reboot mid-session: one opening per pulse the host saw succeed, the gap and the budget hold, no HELLO
    storm, every event accounted for.  Device and client both run on the device's virtual clock at
    ``speed`` x real time (the client's ``time_fn``), so every timeout keeps its real proportions (at 5 %
    the device resends its whole ring every 50 ms: 5x leaves the client thread enough CPU)."""
    dut = SimulatedDUT(speed=speed)
    port = open_link(f"faulty://{dut.url}#seed=5")
    tally = _DeviceTally(dut)
    clock = lambda: dut.device.now_us() / 1e6  # noqa: E731
    client = DeviceClient(port, time_fn=clock)
    budget_ms = n // 8 * 2 * 4 // 5               # 4/5 of what the pulses ask for: the budget runs out
    try:
        client.start()
        client.configure(min_valve_gap_ms=10, budget_valve_ms=budget_ms)
        port.set_faults(corrupt=p, drop=p)       # each byte, both ways
        out, slowest = _drive_default(client, port, tally, n, gap_s=0.02 / speed, clock=clock)
        time.sleep(0.05)
        _settle_link(client, dut, port)
        res = _check_safety_and_accounting(out, client, dut, tally, budget_ms, gap_ms=10)
    finally:
        client.safe()
        dut.close()
    print(f"\n{p:.0%} corrupt + {p:.0%} drop: {res}, slowest command {slowest:.2f} s (device time), faults {port.stats}")
    assert slowest < 6.0                          # every command completes or fails within a few seconds
    # no HELLO storm: one new session (the reboot); a re-arm only for the reboot and for each time the
    # device disarmed itself (host timeout: the disconnect is 1 s of device time; heavy loss can starve it),
    # resumed by the client; the device runs a few retries of those HELLOs at most
    why = res["why"]
    assert res["hellos_new"] == 2
    assert sum(w.startswith(("device reset", "lost sequence sync")) for w in why) == 1, why   # the reboot only
    assert sum(w.startswith("SAFETY_TRIP") for w in why) <= res["host_timeouts"], why
    assert res["hellos_resumed"] <= 3 * res["rearms"] + 3
    assert res["openings"] < n // 8               # the budget refused some


@pytest.mark.hil
@pytest.mark.parametrize("p,n", [(0.01, 120), (0.05, 40)], ids=["1pct-120", "5pct-40"])
def test_firmware_with_the_default_client_through_faults_and_a_disconnect(emulated_dut, p, n):
    """The real firmware in simavr with the client's default options (real time; the emulator cannot be
    reset from outside, so no reboot): one opening per pulse the host saw succeed, the gap and the budget
    hold, no new session after start()."""
    port = open_link(f"faulty://{emulated_dut.url}#seed=6")
    client = DeviceClient(port)
    budget_ms = n // 8 * 2 * 4 // 5
    try:
        client.start()
        client.configure(min_valve_gap_ms=10, budget_valve_ms=budget_ms)
        port.set_faults(corrupt=p, drop=p)
        out, slowest = _drive_default(client, port, None, n, gap_s=0.02)
        time.sleep(0.2)
        port.set_faults(corrupt=0, drop=0)
        time.sleep(0.3)
        events = _drain(client)
    finally:
        client.safe()
        port.shutdown()
    ok = [r for m, r, _dt in out if isinstance(m, P.ValvePulse) and isinstance(r, P.Ack)]
    edges = emulated_dut.pin_edges("valve")
    rises = [t for t, lv in edges if lv]
    print(f"\nfirmware {p:.0%}+{p:.0%}: {len(out)} commands, {len(rises)} openings, {len(ok)} pulses ACKed, "
          f"slowest {slowest:.2f} s, stats {client.stats}, rearms {[r.why for r in client.rearm_log]}")
    assert len(rises) == len(ok) and len(edges) == 2 * len(rises)
    # a close within RIG_ON_TIME_US (16 us, firmware rig.h) of its planned time counts the plan: the pin may
    # stay open that much longer per pulse than the budget counts
    assert sum(edges[k + 1][0] - edges[k][0] for k in range(0, len(edges), 2)) <= budget_ms * 1000 + 16 * len(rises)
    assert all(edges[k][0] - edges[k - 1][0] >= 10_000 for k in range(2, len(edges), 2))
    assert client.stats["new_sessions"] == 1 and slowest < 6.0
    seqs = [e.seq for e in events]
    assert seqs == sorted(set(seqs))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_handshake_completes_at_5pct_corruption_and_5pct_drops(seed):
    """Finding: at 5 % faults start() failed in 11 of 12 runs (the 48-byte HELLO_REPLY within 3 s).  Now
    the reply is short and the handshake goes on while the device shows life."""
    dut = SimulatedDUT(speed=1)
    port = open_link(f"faulty://{dut.url}#corrupt=0.05&drop=0.05&seed={seed}")
    client = DeviceClient(port)
    try:
        reply = client.start()
        assert reply.boot == 0 and reply.session == client.session_nonce and reply.epoch == client.hello.epoch
        assert dut.device.session == client.session_nonce and dut.device.epoch == reply.epoch
        # (the device may since have disarmed itself: at 5 % of every byte a HELLO gets through about once
        # per 1.5 s, so its 1 s host timeout can run out; the client re-arms as it does after any trip)
    finally:
        client.safe()
        dut.close()
