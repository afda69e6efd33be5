"""The real firmware (firmware/build/dopa_rig.elf) in simavr, driven over its UART pseudo-terminal.

Timings are asserted in emulated device time (cycle-stamped pin edges, event timestamps), never with the
wall clock.  Expected values come from docs/rig.md and protocol/messages.toml.
"""
from __future__ import annotations

import time

from dopa_rl.protocol import messages as P
from dopa_rl.protocol import codec
from emulator_harness import EmulatedDUT

from hil_link import Link


def rises(dut: EmulatedDUT, pin: str) -> list[int]:
    return [t for t, lv in dut.pin_edges(pin) if lv == 1]


def falls(dut: EmulatedDUT, pin: str) -> list[int]:
    return [t for t, lv in dut.pin_edges(pin) if lv == 0]


def test_handshake_and_versions(emulated_dut: EmulatedDUT, link: Link) -> None:
    boot = link.wait(lambda e: isinstance(e, P.HelloReply) and e.boot == 1, 3.0, "boot HELLO_REPLY")
    assert boot.cmd_seq == 0
    nack = link.command("HELLO", protocol_version=P.PROTOCOL_VERSION + 1)
    assert isinstance(nack, P.Nack) and nack.reason == P.NackReason.VERSION
    assert isinstance(link.command("CUE_ON"), P.Nack)                 # not armed before a HELLO
    h = link.hello()
    assert (h.protocol_version, h.firmware_version, h.schema_hash) == (P.PROTOCOL_VERSION, P.FIRMWARE_VERSION, P.SCHEMA_HASH)
    assert h.event_ring == P.EVENT_RING and h.session == link.session and h.epoch != 0
    assert h.reset_cause == P.ResetCause.POWER_ON and h.board == P.Board.UNO   # simavr sets PORF at start
    ack = link.command("PING", nonce=-12345)
    assert isinstance(ack, P.Ack) and ack.value == -12345
    assert emulated_dut.pin_edges("cue") == []


def test_valve_pulse_50ms(emulated_dut: EmulatedDUT, link: Link) -> None:
    link.hello()
    ack = link.command("VALVE_PULSE", ms=50)
    assert isinstance(ack, P.Ack) and ack.value == 50
    edges = emulated_dut.wait_edges("valve", 2)
    (t_open, one), (t_close, zero) = edges
    assert (one, zero) == (1, 0)
    assert abs((t_close - t_open) - 50_000) <= 1_000
    opened = link.wait(lambda e: isinstance(e, P.ValveOpened))
    closed = link.wait(lambda e: isinstance(e, P.ValveClosed))
    assert abs(opened.t_us - t_open) <= 20 and abs(closed.t_us - t_close) <= 20   # events carry pin times
    assert closed.cause == P.CloseCause.PULSE_END


def test_lick_pulse_gives_timestamped_lick_events(emulated_dut: EmulatedDUT, link: Link) -> None:
    link.hello()
    t = emulated_dut.now_us() + 20_000
    emulated_dut.set_lick(1, at_us=t)
    emulated_dut.set_lick(0, at_us=t + 30_000)
    on = link.wait(lambda e: isinstance(e, P.LickOn))
    off = link.wait(lambda e: isinstance(e, P.LickOff))
    (t_on, _), (t_off, _) = emulated_dut.wait_edges("lick", 2)
    assert abs(t_on - t) <= 1 and abs(t_off - (t + 30_000)) <= 1
    assert abs(on.t_us - t_on) <= 10 and abs(off.t_us - t_off) <= 10    # time of the first edge, not +debounce


def upload(link: Link, trial_id: int, duration_ms: int, actions: list[tuple[int, int, int]],
           window: tuple[int, int, int, int] | None = None) -> None:
    assert isinstance(link.command("PROGRAM_BEGIN", trial_id=trial_id, duration_ms=duration_ms, n_actions=len(actions)), P.Ack)
    for i, (off, action, arg) in enumerate(actions):
        assert isinstance(link.command("PROGRAM_ACTION", index=i, offset_us=off, action=action, arg=arg), P.Ack)
    if window is not None:
        s, e, action, arg = window
        assert isinstance(link.command("PROGRAM_LICK_WINDOW", start_us=s, end_us=e, action=action, arg=arg), P.Ack)
    assert isinstance(link.command("PROGRAM_COMMIT"), P.Ack)


def test_trial_program_edges_on_schedule_while_host_busy(emulated_dut: EmulatedDUT, link: Link) -> None:
    link.hello()
    A = P.Action
    upload(link, 1, 300, [(20_000, A.CUE_ON, 0), (120_000, A.CUE_OFF, 0), (120_000, A.VALVE_PULSE, 30),
                          (200_000, A.TTL_PULSE, 5)])
    upload_next = [(10_000, A.CUE_ON, 0), (60_000, A.CUE_OFF, 0)]
    started_seq = link.send("TRIAL_START", when=P.TrialWhen.NOW)
    # the host is busy during the trial: it uploads the next program and pings continuously
    upload(link, 2, 100, upload_next)
    assert isinstance(link.command("TRIAL_START", when=P.TrialWhen.AFTER_CURRENT), P.Ack)
    for k in range(60):
        link.send("PING", nonce=k)
    assert isinstance(link.reply(started_seq), P.Ack)
    first = link.wait(lambda e: isinstance(e, P.TrialStarted) and e.trial_id == 1)
    second = link.wait(lambda e: isinstance(e, P.TrialStarted) and e.trial_id == 2, 5.0)
    emulated_dut.wait_edges("cue", 4)
    t0 = first.t_us
    assert second.t_us == t0 + 300_000                               # back to back, on the device clock
    cue_on, cue_off = rises(emulated_dut, "cue"), falls(emulated_dut, "cue")
    expected = {"cue on": (cue_on[0], t0 + 20_000), "cue off": (cue_off[0], t0 + 120_000),
                "valve open": (rises(emulated_dut, "valve")[0], t0 + 120_000),
                "valve close": (falls(emulated_dut, "valve")[0], t0 + 150_000),
                "ttl": (rises(emulated_dut, "ttl")[0], t0 + 200_000),
                "next cue on": (cue_on[1], t0 + 310_000), "next cue off": (cue_off[1], t0 + 360_000)}
    late = {k: got - want for k, (got, want) in expected.items() if abs(got - want) > 100}
    assert not late, f"edges off schedule by (us): {late}"


def test_lick_contingent_reward_within_1ms(emulated_dut: EmulatedDUT, link: Link) -> None:
    link.hello()
    assert isinstance(link.command("CONFIGURE", max_valve_ms=1000, min_valve_gap_ms=50, budget_valve_ms=30000,
                                   host_timeout_ms=1000, debounce_us=500, flags=0), P.Ack)
    upload(link, 5, 400, [(0, P.Action.CUE_ON, 0)], window=(50_000, 350_000, P.Action.VALVE_PULSE, 40))
    assert isinstance(link.command("TRIAL_START", when=P.TrialWhen.NOW), P.Ack)
    started = link.wait(lambda e: isinstance(e, P.TrialStarted))
    t_lick = started.t_us + 100_000
    emulated_dut.set_lick(1, at_us=t_lick)
    emulated_dut.set_lick(0, at_us=t_lick + 20_000)
    emulated_dut.set_lick(1, at_us=t_lick + 60_000)                  # a second lick: the window is used up
    emulated_dut.set_lick(0, at_us=t_lick + 80_000)
    (t_open, _), (t_close, _) = emulated_dut.wait_edges("valve", 2)
    (t_edge, _) = emulated_dut.pin_edges("lick")[0]
    assert 0 <= t_open - t_edge <= 1_000                             # debounce (500 us) + loop latency
    assert abs((t_close - t_open) - 40_000) <= 1_000
    link.wait(lambda e: isinstance(e, P.TrialEnded))
    assert len(rises(emulated_dut, "valve")) == 1


def test_host_silence_turns_everything_off(emulated_dut: EmulatedDUT, link: Link) -> None:
    link.hello()
    assert isinstance(link.command("CONFIGURE", max_valve_ms=2000, min_valve_gap_ms=50, budget_valve_ms=30000,
                                   host_timeout_ms=200, debounce_us=2000, flags=0), P.Ack)
    link.command("CUE_ON")
    link.command("TONE_ON", freq_hz=4000)
    link.quiet = True                                                # from now on the host says nothing
    last = link.command("VALVE_OPEN")
    assert isinstance(last, P.Ack)
    trip = link.wait(lambda e: isinstance(e, P.SafetyTrip) and e.reason == P.TripReason.HOST_TIMEOUT, 3.0)
    for pin in ("valve", "cue", "tone"):
        emulated_dut.wait_edges(pin, 2)                              # the trace may trail the event
        t_off = falls(emulated_dut, pin)[-1]
        assert 200_000 - 50 <= t_off - last.t_us <= 200_000 + 1_000, pin   # within the timeout
    assert abs(trip.t_us - falls(emulated_dut, "valve")[-1]) <= 50
    assert falls(emulated_dut, "valve")[-1] - rises(emulated_dut, "valve")[-1] < 250_000
    link.quiet = False
    assert link.command("CUE_ON").reason == P.NackReason.NOT_ARMED   # disarmed until a new HELLO


def test_valve_open_longer_than_max_is_cut(emulated_dut: EmulatedDUT, link: Link) -> None:
    link.hello()
    assert isinstance(link.command("CONFIGURE", max_valve_ms=150, min_valve_gap_ms=50, budget_valve_ms=30000,
                                   host_timeout_ms=1000, debounce_us=2000, flags=0), P.Ack)
    ack = link.command("VALVE_PULSE", ms=500)
    assert ack.value == 150                                           # the ACK reports the clamped value
    (t_open, _), (t_close, _) = emulated_dut.wait_edges("valve", 2)
    assert abs((t_close - t_open) - 150_000) <= 1_000
    trip = link.wait(lambda e: isinstance(e, P.SafetyTrip))
    assert trip.reason == P.TripReason.MAX_OPEN and trip.value == 150


def test_volume_budget_stops_rewards(emulated_dut: EmulatedDUT, link: Link) -> None:
    link.hello()
    assert isinstance(link.command("CONFIGURE", max_valve_ms=1000, min_valve_gap_ms=10, budget_valve_ms=100,
                                   host_timeout_ms=1000, debounce_us=2000, flags=0), P.Ack)
    assert link.command("VALVE_PULSE", ms=60).value == 60
    emulated_dut.wait_edges("valve", 2)
    link.keepalive(0.05)
    nack = link.command("VALVE_PULSE", ms=60)
    assert isinstance(nack, P.Nack) and nack.reason == P.NackReason.SAFETY
    trip = link.wait(lambda e: isinstance(e, P.SafetyTrip))
    assert trip.reason == P.TripReason.BUDGET
    link.keepalive(0.1)
    assert len(rises(emulated_dut, "valve")) == 1


def test_bad_crc_frame_is_nacked_and_changes_nothing(emulated_dut: EmulatedDUT, link: Link) -> None:
    link.hello()
    raw = bytearray(codec.build_frame(P.MsgId.CUE_ON, 4242, b""))
    raw[-1] ^= 0x5A                                                  # break the CRC
    link.send_raw(codec.cobs_encode(bytes(raw)) + b"\x00")
    nack = link.reply(4242)
    assert isinstance(nack, P.Nack) and nack.reason == P.NackReason.BAD_CRC
    link.keepalive(0.1)
    assert emulated_dut.pin_edges("cue") == []
    assert isinstance(link.command("CUE_ON"), P.Ack)                  # the link still works
    emulated_dut.wait_edges("cue", 1)


def test_analog_stream_at_1khz(emulated_dut: EmulatedDUT, link: Link) -> None:
    link.hello()
    assert link.command("ANALOG_START", rate_hz=1000).value == 1000
    link.keepalive_device(emulated_dut.now_us, 100_000)              # device time: a loaded machine slows
    emulated_dut.set_analog_mv(1000)                                 # the emulator, not the sample clock
    link.keepalive_device(emulated_dut.now_us, 100_000)
    assert isinstance(link.command("ANALOG_STOP"), P.Ack)
    batches = link.of(P.AnalogBatch)
    assert len(batches) >= 10 and all(b.rate_hz == 1000 for b in batches)
    full = [b for b in batches if b.n == 8]
    steps = {b2.t_us - b1.t_us for b1, b2 in zip(full, full[1:])}
    assert steps == {8000}                                          # 8 samples at exactly 1 ms
    values = [v for b in batches for v in b.samples[:b.n]]
    assert abs(values[0] - 1023 * 2500 / 5000) <= 2                # 2.5 V at start
    assert abs(values[-1] - 1023 * 1000 / 5000) <= 2               # then 1.0 V


def test_flood_is_reported_and_survived(emulated_dut: EmulatedDUT, link: Link) -> None:
    link.hello()
    flood = b"".join(codec.encode(codec.message("PING", nonce=k), 1000 + k) for k in range(300))  # 3.3 kB at once
    link.send_raw(flood)
    link.keepalive_device(emulated_dut.now_us, 600_000)
    errors = link.of(P.Error)
    assert any(e.code == P.ErrorCode.RX_OVERFLOW for e in errors)   # lost UART bytes are counted, not silent
    assert all(e.code in (P.ErrorCode.RX_OVERFLOW, P.ErrorCode.EVENT_OVERFLOW) and e.value > 0 for e in errors)
    answered = {e.cmd_seq for e in link.of(P.Ack) if e.cmd_type == P.MsgId.PING}
    assert 10 < len(answered) < 300                                  # some got through, the rest was dropped
    assert isinstance(link.command("PING", nonce=7), P.Ack)          # and the link works again


def test_tone_frequency_and_edges(emulated_dut: EmulatedDUT, link: Link) -> None:
    link.hello()
    for hz, made in ((4000, 4000), (3000, 3003)):                   # Timer1 makes 1e6 / round(1e6 / hz)
        assert link.command("TONE_ON", freq_hz=hz).value == made
        link.keepalive(0.05)
        assert isinstance(link.command("TONE_OFF"), P.Ack)
    edges = emulated_dut.wait_edges("tone", 4)
    assert [lv for _, lv in edges] == [1, 0, 1, 0]
    onsets, offsets = link.of(P.ToneOnset), link.of(P.ToneOffset)
    assert [o.freq_hz for o in onsets] == [4000, 3003]
    assert all(abs(e.t_us - t) <= 10 for e, (t, _) in zip(onsets + offsets, edges[0::2] + edges[1::2]))
    f4000, f3003 = emulated_dut.tone_frequencies()                  # toggles of the OC1A pin itself
    assert abs(f4000 - 4000) < 2 and abs(f3003 - 3003) < 2


def test_unacknowledged_events_are_resent_go_back_n(emulated_dut: EmulatedDUT, link: Link) -> None:
    link.hello()
    link.quiet = True                                                 # receive, but acknowledge nothing
    link.send("CUE_ON")
    decoder, seen = codec.FrameDecoder(), []
    end = time.monotonic() + 0.4
    while time.monotonic() < end:                                     # raw frames, duplicates included
        seen += [(r.seq, type(r.msg).__name__) for r in decoder.feed(link.port.read(4096))]
        time.sleep(0.002)
    acks = [s for s, name in seen if name == "Ack"]
    onsets = [s for s, name in seen if name == "CueOnset"]
    assert len(acks) >= 3 and len(set(acks)) == 1                    # the same frame, again and again
    assert len(onsets) >= 3 and len(set(onsets)) == 1 and onsets[0] == acks[0] - 1   # CUE_ONSET, then ACK
    link.send("EVENT_ACK", next_expected_seq=acks[0] + 1, epoch=link.epoch)             # now acknowledged: resends stop
    time.sleep(0.05)
    link.port.read(4096)
    time.sleep(0.2)
    later = [type(r.msg).__name__ for r in decoder.feed(link.port.read(4096))]
    assert "Ack" not in later and "CueOnset" not in later


def test_an_echoing_line_does_not_keep_the_firmware_alive(emulated_dut: EmulatedDUT, link: Link) -> None:
    """The device's own bytes looped back to it (a loopback plug, a pty with echo, crossed wiring) are no
    host: the host timeout (1 s) still turns everything off and disarms."""
    link.hello()
    assert isinstance(link.command("CUE_ON"), P.Ack)
    t_last = emulated_dut.now_us()                     # after the last frame from the host
    end = time.monotonic() + 1.6
    while time.monotonic() < end:                      # from now on only an echo
        data = link.port.read(4096)
        if data:
            link.port.write(data)
        time.sleep(0.001)
    (t_on, _), (t_off, level) = emulated_dut.wait_edges("cue", 2, timeout=1.0)
    assert level == 0 and t_last + 990_000 <= t_off <= t_last + 1_050_000, (t_off - t_last)
    link.keepalive(0.3)                                # take in what the echo left in the ring
    seq = link.send("VALVE_PULSE", ms=10)
    nack = link.wait(lambda e: isinstance(e, P.Nack) and e.cmd_seq == seq and e.cmd_type == P.MsgId.VALVE_PULSE)
    assert nack.reason == P.NackReason.NOT_ARMED
    assert emulated_dut.pin_edges("valve") == []
