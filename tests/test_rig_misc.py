"""Rig holes of issue 7 closed on the host and the simulated device: configure() keeping flags, frames the
client cannot use, a dead worker, a full event queue, long silences and the 32-bit clock, lost lick edges
and safety trips on a full ring, lick polarity flips, and errors a rig user can act on."""
from __future__ import annotations

import time

import pytest

from dopa_rl.errors import DeviceError
from dopa_rl.protocol import messages as P
from dopa_rl.rig.client import DeviceClient
from dopa_rl.rig.transports import open_link
from dopa_rl.testing import SimulatedDUT


@pytest.fixture
def dut_client():
    dut = SimulatedDUT(speed=1)
    c = DeviceClient(open_link(dut.url))
    try:
        c.start()
        yield dut, c
    finally:
        c.safe()
        dut.close()


def test_configure_keeps_the_flags_it_is_not_given(dut_client):
    dut, c = dut_client
    c.configure(flags=P.ConfigFlag.LICK_ACTIVE_LOW)
    assert dut.device.config["flags"] == P.ConfigFlag.LICK_ACTIVE_LOW
    c.configure(max_valve_ms=500)                  # omitted flags: the lick polarity stays inverted
    assert dut.device.config["flags"] == P.ConfigFlag.LICK_ACTIVE_LOW
    assert dut.device.config["max_valve_ms"] == 500
    c.configure(flags=0)
    assert dut.device.config["flags"] == 0


def _inject_from_device(dut: SimulatedDUT, wire: bytes) -> None:
    """Bytes the host reads as if the device had sent them (an echo, crossed wiring...)."""
    with dut.device._lock:
        dut.device._tx(wire)


@pytest.mark.parametrize("msg", [P.Ping(7), P.Heartbeat(3, 1), P.EventAck(3, 1), P.ValvePulse(20)])
def test_a_command_frame_arriving_from_the_device_is_counted_and_ignored(dut_client, msg):
    from dopa_rl.protocol import codec

    dut, c = dut_client
    c.ping(1)
    time.sleep(0.05)
    _inject_from_device(dut, codec.encode(msg, c.next_expected_seq))   # valid CRC, the seq we expect next
    time.sleep(0.1)
    assert c.stats["foreign_frames"] == 1
    assert c.link_up and c._thread is not None and c._thread.is_alive()
    assert c.ping(2).value == 2                    # the worker is alive and the sequence is intact
    assert c.cue_on().value == 1


def test_a_dead_worker_takes_the_link_down_and_every_call_fails_loudly(dut_client):
    dut, c = dut_client

    def boom(now: float) -> None:
        raise RuntimeError("injected bug")

    c._housekeeping = boom                          # the worker's next pass raises
    end = time.monotonic() + 2
    while c.link_up:
        assert time.monotonic() < end, "the link still reads up after the worker died"
        time.sleep(0.01)
    opened = len(dut.pin_edges("valve"))
    with pytest.raises(DeviceError, match="worker.*injected bug"):
        c.valve_pulse(20)
    time.sleep(0.05)
    assert len(dut.pin_edges("valve")) == opened    # nothing was sent for the failed call


def test_an_undrained_bounded_event_queue_never_blocks_the_worker():
    dut = SimulatedDUT(speed=1)
    c = DeviceClient(open_link(dut.url), event_queue_size=4)
    try:
        c.start()
        for k in range(12):                         # 12 ACKs (and more) for a queue of 4 nobody reads
            assert c.ping(k).value == k
        assert c.events.qsize() == 4
        assert c.stats["events_dropped"] >= 9
        assert c.stats["events"] == c.events.qsize() + c.stats["events_dropped"]
    finally:
        c.safe()
        dut.close()


def test_unwrap_uses_the_host_clock_across_long_silences():
    from dopa_rl.rig.clocksync import Unwrapper

    for silence_min in (30, 40, 71.5, 72, 100, 300):
        u = Unwrapper()
        t0 = 123_456_789
        assert u(t0, 1000.0) == t0
        gap_us = int(silence_min * 60e6)
        assert u((t0 + gap_us) & 0xFFFFFFFF, 1000.0 + gap_us / 1e6 + 0.003) == t0 + gap_us, silence_min
        assert u((t0 + gap_us - 500) & 0xFFFFFFFF, 1000.0 + gap_us / 1e6 + 0.004) == t0 + gap_us - 500
    u = Unwrapper()                                 # without host times: nearest to the last stamp, as before
    assert u(10) == 10 and u(5) == 5 and u((1 << 32) - 5) == -5


def test_client_times_events_right_after_40_minutes_without_any_frame():
    dut = SimulatedDUT(realtime=False)              # the device clock moves only when the test says so
    offset = [0.0]
    c = DeviceClient(open_link(dut.url), auto_rearm=False, time_fn=lambda: time.monotonic() + offset[0])
    try:
        c.start()
        c.configure(host_timeout_ms=1000)
        c.ping(1)
        end = time.monotonic() + 2.0                # its ACK acknowledged: else the 40 min below are 48,000
        while dut.device.unacked and time.monotonic() < end:   # go-back-N rounds the client must wade through
            time.sleep(0.002)
        c.muted = True                              # the host goes quiet: the device disarms and falls silent
        offset[0] += 2.0
        dut.advance(2_000_000)
        time.sleep(0.1)
        assert not dut.device.armed
        frames = c.stats["frames_in"]
        offset[0] += 40 * 60                        # 40 min (> 2**31 us) without a single frame
        dut.advance(40 * 60_000_000)
        time.sleep(0.05)
        assert c.stats["frames_in"] == frames
        c.muted = False
        seen = []
        c.add_listener(seen.append)
        assert c.ping(2).value == 2
        time.sleep(0.05)
        ack = [e for e in seen if e.name == "ACK" and e.msg.value == 2][0]
        assert ack.t_device_us == dut.device.clock.now_us     # not 71.6 min in the past
        assert abs(ack.t_host - ack.t_received) < 5.0
    finally:
        c.safe()
        dut.close()


def test_command_arguments_out_of_range_raise_input_errors_naming_the_range(dut_client):
    from dopa_rl.errors import InputError

    dut, c = dut_client
    for bad in (-5, 70000, 50.7, True, "50"):
        with pytest.raises(InputError, match=r"valve_pulse: ms must be an integer in 1\.\.65535"):
            c.valve_pulse(bad)
    with pytest.raises(InputError, match=r"tone_on: freq_hz .* 50\.\.20000"):
        c.tone_on(10)
    with pytest.raises(InputError, match=r"ttl_pulse: ms .* 1\.\.1000"):
        c.ttl_pulse(0)
    with pytest.raises(InputError, match=r"analog_start: rate_hz .* 1\.\.1000"):
        c.analog_start(5000)
    with pytest.raises(InputError, match=r"configure: max_valve_ms .* 1\.\.5000"):
        c.configure(max_valve_ms=6000)
    with pytest.raises(InputError, match=r"configure: flags"):
        c.configure(flags=4)
    with pytest.raises(InputError, match=r"ping: nonce .* -2147483648\.\.2147483647"):
        c.ping(1 << 40)
    with pytest.raises(InputError, match=r"actions\[1\] offset_us .* 0\.\.99999"):
        c.upload_program(1, 100, [(0, P.Action.CUE_ON, 0), (100_000, P.Action.CUE_OFF, 0)])
    with pytest.raises(InputError, match=r"actions\[0\] action must be an Action"):
        c.upload_program(1, 100, [(0, 99, 0)])
    with pytest.raises(InputError, match=r"lick_window arg \(VALVE_PULSE\) .* 1\.\.65535"):
        c.upload_program(1, 100, [], lick_window=(0, 50_000, P.Action.VALVE_PULSE, 0))
    with pytest.raises(InputError, match=r"VALVE_PULSE\.ms must be an integer in 0\.\.65535"):
        c.command(P.ValvePulse(70000))             # any command: its wire range, not a struct error
    assert dut.pin_edges("valve") == [] and c.link_up and c.ping(3).value == 3


def test_a_refused_command_says_which_limit_refused_it(dut_client):
    from dopa_rl.rig.client import CommandRefused

    dut, c = dut_client
    c.configure(min_valve_gap_ms=500, budget_valve_ms=100)
    time.sleep(0.5)   # boot counts as a valve close: the 500 ms gap holds from it too
    c.valve_pulse(20)
    time.sleep(0.1)
    with pytest.raises(CommandRefused, match=r"NACK SAFETY.*SAFETY_TRIP MIN_GAP.*min_valve_gap_ms = 500") as e:
        c.valve_pulse(20)
    assert e.value.trip.reason is P.TripReason.MIN_GAP
    time.sleep(0.5)
    with pytest.raises(CommandRefused, match=r"SAFETY_TRIP BUDGET.*20 ms of valve time used.*budget_valve_ms = 100"):
        c.valve_pulse(90)
    with pytest.raises(CommandRefused, match=r"NACK PROGRAM_STATE, not possible in the current trial-program") as e:
        c.trial_start()
    assert e.value.trip is None


def test_a_command_refused_while_disarmed_says_so():
    from dopa_rl.rig.client import CommandRefused

    dut = SimulatedDUT(speed=1)
    c = DeviceClient(open_link(dut.url), auto_rearm=False)
    try:
        c.start()
        c.configure(host_timeout_ms=200)
        c.muted = True
        time.sleep(0.4)
        c.muted = False
        with pytest.raises(CommandRefused, match=r"NACK NOT_ARMED, the outputs are not armed.*rearm\(\)"):
            c.cue_on()
    finally:
        c.safe()
        dut.close()


def test_events_carry_enum_members(dut_client):
    dut, c = dut_client
    seen = []
    c.add_listener(seen.append)
    c.configure(min_valve_gap_ms=500)
    time.sleep(0.5)   # boot counts as a valve close: the 500 ms gap holds from it too
    c.valve_pulse(20)
    time.sleep(0.1)
    with pytest.raises(DeviceError):
        c.valve_pulse(20)
    time.sleep(0.05)
    by = {e.name: e.msg for e in seen}
    assert by["SAFETY_TRIP"].reason is P.TripReason.MIN_GAP and by["SAFETY_TRIP"].reason.name == "MIN_GAP"
    assert by["NACK"].reason is P.NackReason.SAFETY and by["NACK"].cmd_type is P.MsgId.VALVE_PULSE
    assert by["VALVE_CLOSED"].cause is P.CloseCause.PULSE_END
    assert by["ACK"].cmd_type is P.MsgId.VALVE_PULSE
    assert c.hello.board is P.Board.PYTHON_SIM and c.hello.reset_cause is P.ResetCause.POWER_ON


def test_the_readme_rig_snippet_prints_the_valve_event(tmp_path, capsys, monkeypatch):
    import re
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme[readme.index("## Driving a rig from Python"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    code = re.sub(r'find_port_by_serial\("[0-9A-F]+"\)', '"dopasim://?speed=1"', code)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert re.search(r"^VALVE_OPENED \d+", out, re.M), out
    assert re.search(r"^VALVE_CLOSED 50000 PULSE_END", out, re.M), out


# ---------------------------------------------------------------------- the simulated device, as the firmware
MS = 1000


def _sim_host(auto_ack: bool = True):
    from dopa_rl.sim.device import SimDevice
    from test_simdevice import Host                 # the minimal in-order host of the device tests

    dev = SimDevice()
    dev.advance(60 * MS)                            # boot counts as a valve close: past the minimum gap
    h = Host(dev, auto_ack=auto_ack)
    h.pump()
    assert isinstance(h.reply(P.Hello(P.PROTOCOL_VERSION, 1, P.BUDGET_KEEP, P.LIMITS_KEEP, 0, 0, 0, 0)), P.HelloReply) and dev.armed
    return dev, h


def _ack(dev, h) -> None:
    from dopa_rl.protocol import codec

    dev.write(codec.encode(P.EventAck(h.expected, h.epoch), 0))
    h.pump()


def test_sim_safety_trips_survive_a_full_ring():
    dev, h = _sim_host(auto_ack=False)
    h.send(P.Configure(1000, 50, 10, 1000, 2000, 0))
    h.send(P.ValvePulse(10))
    dev.advance(10 * MS)
    h.pump()
    _ack(dev, h)
    for i in range(40):
        h.send(P.Ping(i))
    assert dev.unacked == P.EVENT_RING
    h.send(P.ValvePulse(10))                        # 0 ms after the close: MIN_GAP, ring full
    dev.advance(60 * MS)
    h.send(P.ValvePulse(10))                        # budget used up: BUDGET, ring full
    h.send(P.ValvePulse(10))                        # BUDGET again while the first waits: counted lost
    assert not dev.valve and h.of(P.SafetyTrip) == []
    _ack(dev, h)
    _ack(dev, h)
    trips = h.of(P.SafetyTrip)
    assert [(t.reason, t.value) for t in trips] == [(P.TripReason.MIN_GAP, 0), (P.TripReason.BUDGET, 10)]
    assert trips[0].t_us < trips[1].t_us
    err = h.of(P.Error)
    assert err and err[-1].code == P.ErrorCode.EVENT_OVERFLOW and err[-1].value == (40 - P.EVENT_RING) + 3 + 1   # as the firmware


def test_sim_max_open_cut_is_on_time_with_trial_actions_due_just_before():
    dev, h = _sim_host()
    acts = [(0, P.Action.VALVE_PULSE, 2000)] + [(1000 * MS - 50, P.Action.TTL_PULSE, 1)] * 15
    h.reply(P.ProgramBegin(1, 2000, len(acts)))
    for i, (off, a, arg) in enumerate(acts):
        h.reply(P.ProgramAction(i, off, a, arg))
    h.reply(P.ProgramCommit())
    t0 = dev.now_us()
    h.reply(P.TrialStart(P.TrialWhen.NOW))
    h.advance(1100 * MS)
    (t_open, _), (t_close, _) = dev.pin_edges("valve")
    assert t_open == t0 and t_close - (t0 + 1000 * MS) == 0


@pytest.mark.parametrize("rest_min", [0.1, 36])
def test_sim_lick_polarity_flip_is_a_lick_change(rest_min):
    dev, h = _sim_host()
    dev.set_lick(0)                                 # the sensor rests low
    h.advance(int(rest_min * 60e6))
    ons = len(h.of(P.LickOn))
    h.reply(P.Configure(1000, 50, 30000, 1000, 2000, P.ConfigFlag.LICK_ACTIVE_LOW))
    t_cfg = dev.now_us()
    dev.advance(1999)
    h.pump()
    assert len(h.of(P.LickOn)) == ons               # debounced like any change
    dev.advance(1)
    h.pump()
    assert len(h.of(P.LickOn)) == ons + 1 and h.of(P.LickOn)[-1].t_us == t_cfg & 0xFFFFFFFF
    h.reply(P.Configure(1000, 50, 30000, 1000, 2000, 0))
    h.advance(3 * MS)
    assert len(h.of(P.LickOff)) == 1


def test_sim_back_to_back_programmed_pulses_merge():
    dev, h = _sim_host()
    h.reply(P.ProgramBegin(1, 100, 2))
    h.reply(P.ProgramAction(0, 0, P.Action.VALVE_PULSE, 30))
    h.reply(P.ProgramAction(1, 30 * MS, P.Action.VALVE_PULSE, 30))
    h.reply(P.ProgramCommit())
    t0 = dev.now_us()
    h.reply(P.TrialStart(P.TrialWhen.NOW))
    h.advance(100 * MS)
    assert dev.pin_edges("valve") == [(t0, 1), (t0 + 60 * MS, 0)]     # one opening, as the firmware
    assert h.of(P.SafetyTrip) == []
