"""Simulated rig device: the behaviour contract of docs/rig.md in Python, on a virtual clock.

Byte interface (thread-safe; one lock guards the whole device):

- ``write(data) -> int``: host-to-device bytes, decoded and executed at the current device time.
- ``read(size=-1) -> bytes``: device-to-host bytes waiting (never blocks); ``in_waiting``;
  ``read_blocking(size, timeout_s)`` waits for at least one byte.  ``on_tx``: optional callback called
  with every chunk of device-to-host bytes, in order (outside the device lock, from the thread that made
  the bytes; it must not call back into the device).
- ``tx_filter``: optional ``bytes -> bytes`` applied to outgoing bytes (tests use it to drop bytes).

Time: ``now_us()`` is the device time (integer microseconds since construction; on the wire as u32).
Either step it by hand (``advance(us)`` / ``advance_to(t)``, deterministic) or ``start(speed)`` a thread
that runs it at ``speed`` x real time; ``stop()`` stops the thread, ``safe()`` turns every output off
(idempotent), ``close()`` does both.  Device-timed actions happen at their exact virtual times.

Inputs and observation: ``set_lick(level)`` drives the lick pin now; an optional
:class:`~dopa_rl.sim.animal.SimulatedAnimal` drives it instead.  ``pin_trace`` lists every output edge
and lick-pin edge as ``(t_us, pin, level)`` with pin in {"valve", "cue", "tone", "ttl", "lick"};
``pin_edges(pin)`` filters it.  ``reboot(cause)`` simulates a reset (the virtual clock keeps running, a
real board's micros() would restart).  ``stress(rate_hz)`` (simulator only) emits synthetic
ANALOG_BATCH events (``rate_hz=0``, samples = a running u16 counter) at ``rate_hz`` while armed.

Not modelled: UART byte times (a written frame is handled at once) and link bandwidth (device-to-host
bytes are available at once); fault injection belongs to the ``faulty://`` link wrapper.

``dopasim://`` links: :func:`device_from_options` builds a device from URL query options, and
:func:`register` / :func:`attached` let a link reach a device created elsewhere
(``dopasim://?attach=<name>``, used by :class:`dopa_rl.testing.SimulatedDUT`).
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

from dopa_rl.protocol import messages as P
from dopa_rl.protocol import codec
from dopa_rl.protocol.messages import CloseCause, MsgId, NackReason, TripReason
from dopa_rl.sim.kernel import _FOREVER, Program, SimKernel, _i32, _Refused, default_analog, tone_applied_hz
from dopa_rl.sim.vclock import RealtimeDriver, Timer, VirtualClock

__all__ = ["SimDevice", "PINS", "tone_applied_hz", "default_analog"]


def wire_type(wire: bytes) -> int:
    """Message type of one encoded frame."""
    return codec.cobs_decode(wire[:-1])[0]


PINS = P.PINS
# device time between boot and the host reaching a new simulated board: past the minimum valve gap that
# boot starts (boot counts as a valve close)
BOOT_SETTLE_US = 60_000


class SimDevice(SimKernel):
    """The simulated device (see module docstring for the byte interface)."""

    def __init__(self, *, animal: Any = None, analog_source: Callable[[int], int] = default_analog,
                 ring_size: int = P.EVENT_RING, speed: float = 1.0, board: int = P.Board.PYTHON_SIM,
                 start_us: int = 0, retransmit_ms: int = P.RETRANSMIT_MS) -> None:
        if retransmit_ms < 1:
            raise ValueError(f"retransmit_ms must be >= 1, got {retransmit_ms}")
        self._lock = threading.RLock()
        # go-back-N interval (device ms).  A host on the wall clock driving this device at speed S should
        # ask for RETRANSMIT_MS * S (dopa_rl.session.runner.sim_retransmit_ms): its acks take real time, and
        # at 50x the firmware's 50 ms is 1 ms of real time, the whole ring resent every real millisecond (a
        # flood of duplicates that kept the host too busy for its heartbeats, until the host timeout tripped)
        self.retransmit_ms = int(retransmit_ms)
        self._cond = threading.Condition(self._lock)
        self.clock = VirtualClock(start_us)  # start near 2**32 to exercise the host's t_us unwrapping
        self.animal = animal
        self.analog_source = analog_source
        self.ring_size = ring_size
        self.board = board
        self.on_tx: Callable[[bytes], None] | None = None
        self.tx_filter: Callable[[bytes], bytes] | None = None
        self.pin_trace: deque[tuple[int, str, int]] = deque(maxlen=1_000_000)
        self.stats = {k: 0 for k in ("rx_frames", "duplicates", "retransmits", "events_lost", "trips",
                                     "hellos_new", "hellos_resumed", "events_dropped", "foreign_frames")}
        self._txbuf = bytearray()
        self._callbacks: list[bytes] = []
        self._cb_lock = threading.Lock()
        self._driver = RealtimeDriver(self._advance_locked, self._next_deadline_locked, self.now_us, speed)
        self._lick_raw = 0
        self.boot_count = 0        # boots so far: the firmware keeps this count in EEPROM (it survives a reset)
        with self._lock:
            self._boot(P.ResetCause.POWER_ON)

    # ------------------------------------------------------------------ boot / session state
    def _boot(self, cause: int) -> None:
        self.clock.clear()
        self.reset_cause = cause
        self.config = {k: P.LIMITS[k].default for k in
                       ("max_valve_ms", "min_valve_gap_ms", "budget_valve_ms", "host_timeout_ms", "debounce_us")}
        self.config["flags"] = 0
        self.armed = False
        self.decoder = codec.FrameDecoder(on_error=self._on_frame_error)
        self._replies: OrderedDict[int, tuple[int, Any]] = OrderedDict()
        self._ring: deque[tuple[int, bytes]] = deque()
        self._tx_seq = 0
        self._lost = 0
        self._trips_latched: dict[int, P.SafetyTrip] = {}
        self.lost_total = 0        # events lost since reset (overflow, dropped by a new session)
        self.session = 0           # the host's nonce of the current session (0: none)
        self.boot_count = (self.boot_count + 1) & 0xFF
        self._sessions = 0         # sessions started since boot (the epoch's low byte)
        self.epoch = 0             # the current session's tag (0: no session since boot)
        self._last_progress = 0
        self._retx_timer: Timer | None = None
        self._host_deadline = _FOREVER
        self._host_timer: Timer | None = None
        self._hb_timer: Timer | None = None
        self.valve = self.cue = self.ttl = False
        self.tone_hz = 0
        self._valve_open_us = 0
        self._valve_req_end = 0
        self._valve_close_timer: Timer | None = None
        self._ttl_timer: Timer | None = None
        self._sp_timer: Timer | None = None    # sync pulses (SYNC_START): next pulse
        self._sp_cfg: tuple[int, int, int] | None = None   # (min_ms, span_ms, pulse_ms)
        self._sp_x = 1
        self._sp_n = 0
        self.budget_used_us = 0
        self._window_init()        # the last minute's valve time, across sessions (RAM: a reset clears it)
        self._last_close_us: int | None = self.clock.now_us  # boot counts as a close (the minimum gap holds)
        self._analog_rate = 0
        self._analog_timer: Timer | None = None
        self._analog_t0 = 0
        self._stress_timer: Timer | None = None
        self._stress_count = 0
        self._upload: Program | None = None
        self.pending: Program | None = None
        self.pending_queued = False
        self.running: Program | None = None
        self._lick_state = 0
        self._lick_since: int | None = None
        self._lick_timer: Timer | None = None
        if self.animal is not None:
            self.clock.after(0, self._animal_tick)
        self._send(self._hello_reply(0, boot=1))

    def _hello_reply(self, cmd_seq: int, boot: int, dropped: int = 0, used_ms: int = 0) -> P.HelloReply:
        return P.HelloReply(self._t(), cmd_seq, boot, P.PROTOCOL_VERSION, P.FIRMWARE_VERSION, P.SCHEMA_HASH,
                            self.board, self.reset_cause, min(self.ring_size, 255), self.session, dropped,
                            self.lost_total & 0xFFFFFFFF, self.epoch, used_ms)

    def _used_ms(self) -> int:
        """Valve time of the session so far (ms, rounded up; an open valve counts up to now)."""
        used = self.budget_used_us + (self.clock.now_us - self._valve_open_us if self.valve else 0)
        return min((used + 999) // 1000, 0xFFFFFFFF)

    # ------------------------------------------------------------------ public byte interface
    def write(self, data: bytes) -> int:
        with self._lock:
            self._sync()
            for rec in self.decoder.feed(bytes(data)):
                self._on_frame(rec)
            self.clock.run_until(self.clock.now_us)
        if self._driver.running:
            self._driver.wake()
        self._flush_callbacks()
        return len(data)

    def read(self, size: int = -1) -> bytes:
        with self._lock:
            self._sync()
            n = len(self._txbuf) if size is None or size < 0 else min(size, len(self._txbuf))
            out = bytes(self._txbuf[:n])
            del self._txbuf[:n]
        self._flush_callbacks()
        return out

    def read_blocking(self, size: int, timeout_s: float | None) -> bytes:
        """Wait up to ``timeout_s`` for at least one byte, then return up to ``size`` bytes."""
        end = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            while not self._txbuf:
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._cond.wait(0.01 if left is None else min(left, 0.01))
                self._sync()
        return self.read(size)

    @property
    def in_waiting(self) -> int:
        with self._lock:
            return len(self._txbuf)

    # ------------------------------------------------------------------ time
    def now_us(self) -> int:
        """Device time now (in real-time mode the clock is first brought up to the present)."""
        with self._lock:
            self._sync()
            t = self.clock.now_us
        self._flush_callbacks()
        return t

    def _t(self) -> int:
        return self.clock.now_us & 0xFFFFFFFF

    def advance(self, us: int) -> None:
        """Step the device clock by ``us`` microseconds, running everything due (manual mode)."""
        self.advance_to(self.now_us() + int(us))

    def advance_to(self, t_us: int) -> None:
        self._advance_locked(t_us)

    def _advance_locked(self, t_us: int) -> None:
        with self._lock:
            self.clock.run_until(t_us)
        self._flush_callbacks()

    def _next_deadline_locked(self) -> int | None:
        with self._lock:
            return self.clock.next_deadline()

    def _sync(self) -> None:
        if self._driver.running:
            self.clock.run_until(self._driver.virtual_now())

    def start(self, speed: float | None = None) -> None:
        """Run the clock in a background thread at ``speed`` x real time (idempotent)."""
        if speed is not None:
            self._driver.speed = float(speed)
        self._driver.start()

    def stop(self) -> None:
        self._driver.stop()

    def safe(self) -> None:
        """Every output off now (as ALL_OFF; idempotent)."""
        with self._lock:
            self._sync()
            self._all_off(CloseCause.ALL_OFF)
        self._flush_callbacks()

    def close(self) -> None:
        self.stop()
        self.safe()

    def reboot(self, cause: int = P.ResetCause.EXTERNAL) -> None:
        """Simulated reset: outputs drop, state and link are lost, a boot HELLO_REPLY follows."""
        with self._lock:
            self._sync()
            for pin in ("valve", "cue", "tone", "ttl"):
                if self._level(pin):
                    self._edge(pin, 0)
            self._boot(cause)
            self.clock.run_until(self.clock.now_us)
        self._flush_callbacks()

    def _level(self, pin: str) -> int:
        return int(bool({"valve": self.valve, "cue": self.cue, "tone": self.tone_hz, "ttl": self.ttl}[pin]))

    # ------------------------------------------------------------------ pins
    def _edge(self, pin: str, level: int) -> None:
        self.pin_trace.append((self.clock.now_us, pin, level))

    def pin_edges(self, pin: str) -> list[tuple[int, int]]:
        with self._lock:
            return [(t, lv) for t, p, lv in self.pin_trace if p == pin]

    def set_lick(self, level: int) -> None:
        """Drive the lick pin (physical level) now."""
        with self._lock:
            self._sync()
            self._set_lick(int(bool(level)))
            self.clock.run_until(self.clock.now_us)
        self._flush_callbacks()

    def _set_lick(self, level: int) -> None:
        if level == self._lick_raw:
            return
        self._lick_raw = level
        self._edge("lick", level)
        self._lick_input()

    def _lick_input(self) -> None:
        """The raw level or the polarity changed now: (re)start the debounce as a raw edge does."""
        logical = self._lick_raw ^ (self.config["flags"] & P.ConfigFlag.LICK_ACTIVE_LOW)
        if self._lick_since is None:
            if logical == self._lick_state:
                return
            self._lick_since = self.clock.now_us
        if self._lick_timer is not None:
            self._lick_timer.cancel()
        self._lick_timer = self.clock.after(self.config["debounce_us"], self._lick_confirm)

    def _lick_confirm(self) -> None:
        logical = self._lick_raw ^ (self.config["flags"] & P.ConfigFlag.LICK_ACTIVE_LOW)
        since, self._lick_since = self._lick_since, None
        if since is None or logical == self._lick_state:
            return
        self._lick_state = logical
        if not self.armed:
            return
        self._send((P.LickOn if logical else P.LickOff)(since & 0xFFFFFFFF))
        run = self.running
        if logical and run is not None and run.window is not None and not run.window_used:
            ws, we, action, arg = run.window
            if run.start_us + ws <= since < run.start_us + we:
                run.window_used = True
                self._do_action(action, arg)

    def _animal_tick(self) -> None:
        period = 10_000
        for t, level in self.animal.edges_until(self.clock.now_us + period):
            self.clock.schedule(t, self._set_lick, level)
        self.clock.after(period, self._animal_tick)

    def _observe(self, kind: str, arg: int = 0) -> None:
        if self.animal is not None:
            self.animal.observe(kind, self.clock.now_us, arg)

    # ------------------------------------------------------------------ reliable events (go-back-N)
    def _tx(self, wire: bytes) -> None:
        if self.tx_filter is not None:
            wire = self.tx_filter(wire)
        if wire:
            self._txbuf += wire
            self._callbacks.append(wire)
            self._cond.notify_all()

    def _flush_callbacks(self) -> None:
        # one deliverer at a time keeps chunks in order across threads; on_tx must not call back in
        with self._cb_lock:
            with self._lock:
                chunks, self._callbacks = self._callbacks, []
            if self.on_tx is not None:
                for c in chunks:
                    self.on_tx(c)

    def _flush_trips(self) -> None:
        """Queue latched SAFETY_TRIPs (lowest reason first) while there is room (as the firmware)."""
        while self._trips_latched and len(self._ring) < self.ring_size:
            self._push(self._trips_latched.pop(min(self._trips_latched)))

    def _send(self, msg: Any) -> None:
        if not isinstance(msg, P.HelloReply):  # a HELLO_REPLY opens the sequence at 0
            self._flush_trips()
        if self._lost and len(self._ring) < self.ring_size:
            lost, self._lost = self._lost, 0
            self._push(P.Error(self._t(), P.ErrorCode.EVENT_OVERFLOW, lost))
        if len(self._ring) >= self.ring_size:
            self._lost += 1
            self.lost_total += 1
            self.stats["events_lost"] += 1
            return
        self._push(msg)

    def _push(self, msg: Any) -> None:
        if not self._ring:
            self._last_progress = self.clock.now_us
        wire = codec.encode(msg, self._tx_seq)
        self._ring.append((self._tx_seq, wire))
        self._tx_seq = (self._tx_seq + 1) & 0xFFFF
        self._tx(wire)
        if self._retx_timer is None:
            self._retx_timer = self.clock.schedule(self._last_progress + self._retransmit_us(), self._retransmit)

    def _retransmit(self) -> None:
        self._retx_timer = None
        if not self._ring:
            return
        due = self._last_progress + self._retransmit_us()
        if self.clock.now_us >= due:
            for _seq, wire in self._ring:
                self._tx(wire)
            self.stats["retransmits"] += 1
            self._last_progress = self.clock.now_us
            due = self._last_progress + self._retransmit_us()
        self._retx_timer = self.clock.schedule(due, self._retransmit)

    def _retransmit_us(self) -> int:
        """Go-back-N interval in device time (``retransmit_ms``; the firmware's RETRANSMIT_MS by default)."""
        return self.retransmit_ms * 1000

    def _ack_events(self, next_expected: int, epoch: int) -> None:
        if not self._ring or epoch != self.epoch or not self.epoch:
            return  # an acknowledgement meant for another device session (before a reset) removes nothing
        n = (next_expected - self._ring[0][0]) & 0xFFFF
        if 0 < n <= len(self._ring):
            for _ in range(n):
                self._ring.popleft()
            self._last_progress = self.clock.now_us
            self._flush_trips()
            if self._lost and len(self._ring) < self.ring_size:
                lost, self._lost = self._lost, 0
                self._push(P.Error(self._t(), P.ErrorCode.EVENT_OVERFLOW, lost))

    @property
    def unacked(self) -> int:
        with self._lock:
            return len(self._ring)

    # ------------------------------------------------------------------ command dispatch
    def _on_frame_error(self, err: codec.FrameError) -> None:
        if err.msg_type is None or err.kind == P.DecodeError.TOO_LONG or err.msg_type == MsgId.EVENT_ACK:
            return  # EVENT_ACK is never answered, not even when damaged (as the firmware)
        if err.msg_type >= 0x80:
            return  # a device type (an echo), damaged or not, is never answered (as the firmware)
        reason = {P.DecodeError.BAD_CRC: NackReason.BAD_CRC, P.DecodeError.UNKNOWN_TYPE: NackReason.UNKNOWN_TYPE,
                  P.DecodeError.BAD_LENGTH: NackReason.BAD_LENGTH}.get(err.kind)
        if reason is not None:
            self._send(P.Nack(self._t(), err.seq & 0xFFFF, err.msg_type, reason))

    def _on_frame(self, rec: codec.Received) -> None:
        self.stats["rx_frames"] += 1
        msg, seq = rec.msg, rec.seq
        mtype = P.SPEC_BY_CLASS[type(msg)].id
        if mtype >= 0x80:  # a device frame (an echo?) says nothing about the host: no refresh of the deadline,
            self.stats["foreign_frames"] += 1   # and no answer (answering an echo would echo again)
            return
        self._host_deadline = self.clock.now_us + self.config["host_timeout_ms"] * 1000
        if mtype == MsgId.EVENT_ACK:
            self._ack_events(msg.next_expected_seq, msg.epoch)
            return
        if mtype == MsgId.HELLO:
            self._hello(seq, msg)
            return
        if mtype == MsgId.HEARTBEAT:
            self._ack_events(msg.next_expected_seq, msg.epoch)  # like EVENT_ACK, even for a retry (as the firmware)
        stored = self._replies.get(seq)
        if stored is not None and stored[0] == mtype:
            self.stats["duplicates"] += 1
            self._send(stored[1])
            return
        try:
            if not self.armed and mtype not in P.ALLOWED_WHILE_DISARMED:
                raise _Refused(NackReason.NOT_ARMED)
            value = getattr(self, "_cmd_" + MsgId(mtype).name.lower())(msg)
            reply: Any = P.Ack(self._t(), seq, mtype, int(value))
        except _Refused as r:
            reply = P.Nack(self._t(), seq, mtype, r.reason)
        self._replies[seq] = (mtype, reply)
        self._replies.move_to_end(seq)
        while len(self._replies) > P.REPLY_WINDOW:
            self._replies.popitem(last=False)
        self._send(reply)

    def _hello(self, seq: int, msg: P.Hello) -> None:
        """docs/rig.md, "Sessions": the current session's nonce resumes it (RESUMED), any other starts a new
        one with the HELLO's limits (HELLO_REPLY)."""
        if msg.protocol_version != P.PROTOCOL_VERSION:
            self._send(P.Nack(self._t(), seq, MsgId.HELLO, NackReason.VERSION))
            return
        if msg.session != 0 and msg.session == self.session:
            self.stats["hellos_resumed"] += 1
            self._arm()  # a small answer, with the proof that this is the session the host knows
            self._send(P.Resumed(self._t(), seq, self.epoch, self.lost_total & 0xFFFFFFFF, self._used_ms()))
            return
        limits = hello_limits(msg)
        if limits is None:
            self._send(P.Nack(self._t(), seq, MsgId.HELLO, NackReason.BAD_VALUE))
            return
        self.stats["hellos_new"] += 1
        # unacknowledged events of the old session are counted, not sent (a HELLO_REPLY is superseded by
        # the next one); the device seq restarts at 0 with this HELLO_REPLY
        dropped = sum(1 for _seq, wire in self._ring if wire_type(wire) != MsgId.HELLO_REPLY)
        self.lost_total += dropped
        self.stats["events_dropped"] += dropped
        used_ms = self._used_ms() if self.session else 0
        self._ring.clear()
        self._lost = 0
        self._tx_seq = 0
        self._replies.clear()
        self.session = msg.session
        self._sessions = self._sessions % 255 + 1
        self.epoch = (self.boot_count << 8) | self._sessions
        self.budget_used_us = 0  # a valve still open counts against the new budget
        flipped = (self.config["flags"] ^ limits.get("flags", self.config["flags"])) & P.ConfigFlag.LICK_ACTIVE_LOW
        self.config.update(limits)  # the session's limits hold before anything is armed
        if flipped:
            self._lick_input()
        self._send(self._hello_reply(seq, boot=0, dropped=dropped, used_ms=used_ms))
        self._all_off(CloseCause.ALL_OFF)  # its events are sent in the new session
        self._arm()

    def _arm(self) -> None:
        self.armed = True
        self._host_deadline = self.clock.now_us + self.config["host_timeout_ms"] * 1000
        self._schedule_host_check()
        if self._hb_timer is None:
            self._hb_timer = self.clock.after(P.DEVICE_HEARTBEAT_MS * 1000, self._heartbeat)

    def _schedule_host_check(self) -> None:
        if self._host_timer is not None:
            self._host_timer.cancel()
        self._host_timer = self.clock.schedule(self._host_deadline, self._host_check)

    def _host_check(self) -> None:
        self._host_timer = None
        if not self.armed:
            return
        if self.clock.now_us >= self._host_deadline:
            self._all_off(CloseCause.HOST_TIMEOUT)
            self.armed = False
            self._trip(TripReason.HOST_TIMEOUT, self.config["host_timeout_ms"])
        else:
            self._schedule_host_check()

    def _heartbeat(self) -> None:
        self._hb_timer = None
        if not self.armed:
            return
        st = P.StateBit
        state = ((st.ARMED if self.armed else 0) | (st.VALVE if self.valve else 0) | (st.CUE if self.cue else 0)
                 | (st.TONE if self.tone_hz else 0) | (st.TTL if self.ttl else 0)
                 | (st.ANALOG if self._analog_rate else 0) | (st.TRIAL_RUNNING if self.running else 0)
                 | (st.TRIAL_PENDING if self.pending else 0))
        self._send(P.DeviceHeartbeat(self._t(), self.stats["rx_frames"] & 0xFFFF, self.decoder.error_count & 0xFFFF,
                                     min(len(self._ring), 255), state, self._used_ms()))
        self._hb_timer = self.clock.after(P.DEVICE_HEARTBEAT_MS * 1000, self._heartbeat)

    def _trip(self, reason: TripReason, value: int) -> None:
        """Report a trip; one that finds the ring full is latched (one per reason) and queued first when
        room frees, so it is never lost; the same reason again while latched counts as a lost event."""
        self.stats["trips"] += 1
        trip = P.SafetyTrip(self._t(), reason, int(value))
        self._flush_trips()
        if not self._trips_latched and len(self._ring) < self.ring_size:
            self._push(trip)
        elif int(reason) in self._trips_latched:
            self._lost += 1
            self.lost_total += 1
            self.stats["events_lost"] += 1
        else:
            self._trips_latched[int(reason)] = trip



def hello_limits(msg: P.Hello) -> dict[str, int] | None:
    """The limits a new-session HELLO sets ({} for limits_keep, only the budget for budget_keep), or None
    when one is outside its hard bounds (NACK BAD_VALUE, nothing changes)."""
    out: dict[str, int] = {}
    if msg.budget_valve_ms != P.BUDGET_KEEP:
        out["budget_valve_ms"] = msg.budget_valve_ms
    if msg.max_valve_ms != P.LIMITS_KEEP:
        out.update(max_valve_ms=msg.max_valve_ms, min_valve_gap_ms=msg.min_valve_gap_ms,
                   host_timeout_ms=msg.host_timeout_ms, debounce_us=msg.debounce_us, flags=msg.flags)
    for k, v in out.items():
        if k == "flags":
            if v & ~int(P.ConfigFlag.LICK_ACTIVE_LOW):
                return None
        elif not P.LIMITS[k].min <= v <= P.LIMITS[k].max:
            return None
    return out


# ---------------------------------------------------------------------- registry and URL options
_REGISTRY: dict[str, SimDevice] = {}
_REGISTRY_LOCK = threading.Lock()


def register(device: SimDevice) -> str:
    """Give a device a name so a ``dopasim://?attach=<name>`` link can reach it; returns the name."""
    with _REGISTRY_LOCK:
        name = f"sim{id(device):x}"
        _REGISTRY[name] = device
        return name


def unregister(name: str) -> None:
    with _REGISTRY_LOCK:
        _REGISTRY.pop(name, None)


def attached(name: str) -> SimDevice:
    """The registered device called ``name`` (KeyError if none)."""
    with _REGISTRY_LOCK:
        return _REGISTRY[name]


def device_from_options(options: dict[str, str]) -> tuple[SimDevice, bool]:
    """Device for ``dopasim://`` query options; returns (device, created).

    ``attach=NAME`` returns a registered device (created False; its owner starts and stops it).
    Otherwise a new device: ``speed`` (default 1), ``seed`` (default 0), ``animal=rw`` (a simulated
    animal), ``ring`` (event ring size, default 32), ``start_us`` (device time at boot, default 0; e.g.
    4294000000 makes t_us wrap after ~1 s), ``settle_us`` (device time that passes after boot before the
    port opens, default 60000: a board is powered a moment before a host reaches it, and boot counts as a
    valve close, so the minimum gap after it is over), ``retx_ms`` (go-back-N interval in device ms,
    default RETRANSMIT_MS); it is not started.
    """
    if "attach" in options:
        return attached(options["attach"]), False
    unknown = set(options) - {"speed", "seed", "animal", "ring", "start_us", "settle_us", "retx_ms"}
    if unknown:
        raise ValueError(f"unknown dopasim:// option(s) {sorted(unknown)}; "
                         "known: attach, speed, seed, animal, ring, start_us, settle_us, retx_ms")
    animal = None
    if options.get("animal") not in (None, "", "none"):
        if options["animal"] != "rw":
            raise ValueError(f"dopasim:// animal must be rw or none (got {options['animal']!r})")
        import numpy as np

        from dopa_rl.sim.animal import SimulatedAnimal

        animal = SimulatedAnimal(np.random.default_rng(int(options.get("seed", 0))))
    device = SimDevice(animal=animal, speed=float(options.get("speed", 1.0)),
                       ring_size=int(options.get("ring", P.EVENT_RING)), start_us=int(options.get("start_us", 0)),
                       retransmit_ms=int(options.get("retx_ms", P.RETRANSMIT_MS)))
    device.advance(int(options.get("settle_us", BOOT_SETTLE_US)))
    return device, True
