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
        if isinstance(m, (P.Ack, P.Nack)):
            if m.cmd_type in (P.MsgId.HEARTBEAT, P.MsgId.EVENT_ACK):
                continue
            if isinstance(m, P.Nack) and m.reason == P.NackReason.BAD_CRC:
                want.append(m)           # a damaged frame of ours, reported; not the command's answer
                continue
            if m.cmd_seq in replied:
                continue
            replied.add(m.cmd_seq)
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
