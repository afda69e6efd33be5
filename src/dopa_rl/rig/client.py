"""Host-side device client: reliable commands and exactly-once, in-order events over any open link.

The client is handed an OPEN pyserial object (see :mod:`dopa_rl.rig.transports`); it never chooses or
opens a port itself (on a lost link it only calls ``close()``/``open()`` on the object it was given).

>>> from dopa_rl.rig.transports import open_link           # doctest: +SKIP
>>> with DeviceClient(open_link("dopasim://?speed=1")) as dev:
...     dev.start()                                          # HELLO, checks versions, arms outputs
...     dev.valve_pulse(50)                                  # -> Ack(value=50): the ms applied
...     ev = dev.events.get(timeout=1)                       # Event(name="VALVE_OPENED", ...)

How it works (the behaviour contract is docs/rig.md):

* **Commands** get a host sequence number and wait for one ACK/NACK with that ``cmd_seq``.  With no
  answer after ``ack_timeout_s`` the *same bytes* (same seq) are sent again: the device keeps the replies
  to its last 16 sequence numbers and re-sends the stored reply instead of executing twice.  At most
  ``max_in_flight`` commands are outstanding (well inside that window).  A NACK ``BAD_CRC`` naming a
  pending command makes it resend at once (the NACK is still delivered as an event: the device reported
  it).  Replies re-sent for retries are recognised by ``cmd_seq`` and not delivered twice.  :meth:`send` returns a :class:`PendingCommand` (a future); :meth:`command` waits.
* **Events** carry the device's own sequence number.  Only the next expected one is accepted
  (duplicates are dropped, frames after a gap kept until it fills); ``EVENT_ACK(next_expected)`` is sent
  promptly, and the device's go-back-N resends whatever was lost, so each event reaches :attr:`events` (a queue) and the
  listeners exactly once and in order.  Each :class:`Event` has the 64-bit device time and the host time
  it maps to (:class:`~dopa_rl.rig.clocksync.ClockMap`, refitted continuously from arrival times).
* A **worker thread** does all reading, acknowledging, retrying and heart-beating; the caller never
  blocks on the link (only :meth:`command` waits, for its own reply).  ``HEARTBEAT`` goes out when nothing
  was sent for ``heartbeat_s``.  Replies to these internal heartbeats are not delivered.
* **Lost link** (``SerialException``/``OSError``): the worker closes and re-opens the same port object
  until ``reconnect_timeout_s``, then resends pending commands with their original seqs and
  re-acknowledges events.  If the device session survived (outage shorter than its host timeout), nothing
  is lost or repeated.  If the device rebooted (unsolicited HELLO_REPLY) or disarmed itself (SAFETY_TRIP
  HOST_TIMEOUT), ``auto_rearm`` sends HELLO with this client's session nonce: a resume (nothing lost) or,
  after a reset, a new session with the remaining volume budget (:mod:`dopa_rl.rig.client_session`);
  commands refused as NOT_ARMED are then resent under new seqs; commands in flight across a reset fail
  with :class:`CommandOutcomeUnknown` (they may or may not have run; never repeated blindly).
* A **raw log** (:mod:`dopa_rl.rig.rawlog`) of every byte both ways, if ``rawlog`` is given.
"""
from __future__ import annotations

import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import serial

from dopa_rl.errors import DeviceError
from dopa_rl.protocol import messages as P
from dopa_rl.protocol import codec
from dopa_rl.protocol.messages import MsgId, NackReason
from dopa_rl.rig.client_commands import DeviceCommands, check_wire, limits_message
from dopa_rl.rig.client_lifecycle import ClientLifecycle
from dopa_rl.rig.client_session import CommandOutcomeUnknown, RearmRecord, SessionMixin, new_nonce
from dopa_rl.rig.client_types import CommandRefused, Event, PendingCommand
from dopa_rl.rig.clocksync import ClockMap, Unwrapper
from dopa_rl.rig.rawlog import RX, TX, RawLogWriter

__all__ = ["DeviceClient", "Event", "PendingCommand", "CommandRefused", "CommandOutcomeUnknown", "RearmRecord",
           "Action"]

Action = P.Action
_INTERNAL = {MsgId.HEARTBEAT, MsgId.EVENT_ACK}

class DeviceClient(ClientLifecycle, DeviceCommands, SessionMixin):
    """Reliable client of one rig device over an open pyserial link (see the module docstring).

    ``limits`` (the keyword arguments of :meth:`configure`) are the safety limits the first HELLO carries;
    omitted ones are the defaults of protocol/messages.toml.
    """

    def __init__(self, port: serial.SerialBase, *, rawlog: str | os.PathLike[str] | RawLogWriter | None = None,
                 ack_timeout_s: float = 0.1, command_timeout_s: float = 5.0, heartbeat_s: float = 0.25,
                 max_in_flight: int = 8, reconnect_timeout_s: float = 10.0, auto_rearm: bool = True,
                 read_poll_s: float = 0.005, time_fn: Callable[[], float] = time.monotonic,
                 event_queue_size: int = 0, protocol_version: int = P.PROTOCOL_VERSION,
                 schema_hash: int = P.SCHEMA_HASH, limits: dict[str, int] | None = None) -> None:
        if not 1 <= max_in_flight <= P.REPLY_WINDOW // 2:
            raise ValueError(f"max_in_flight must be in 1..{P.REPLY_WINDOW // 2}")
        self.port = port
        self.protocol_version = protocol_version  # what this host speaks (tests may pretend otherwise)
        self.schema_hash = schema_hash
        self.ack_timeout_s = ack_timeout_s
        self.command_timeout_s = command_timeout_s
        self.heartbeat_s = heartbeat_s
        self.max_in_flight = max_in_flight
        self.reconnect_timeout_s = reconnect_timeout_s
        self.auto_rearm = auto_rearm
        self.read_poll_s = read_poll_s
        self.time_fn = time_fn
        self.rawlog = RawLogWriter(rawlog, time_fn) if isinstance(rawlog, (str, os.PathLike)) else rawlog
        self.events: queue.Queue[Event] = queue.Queue(event_queue_size)
        self.clock = ClockMap()
        self.hello: P.HelloReply | None = None
        self.muted = False  # test aid: when True nothing at all is sent (simulates a hung host)
        self.stats = {k: 0 for k in ("frames_in", "accepted", "events", "duplicates", "out_of_order", "retries",
                                     "duplicate_replies", "nack_bad_crc", "event_acks", "heartbeats",
                                     "disconnects", "reconnects", "device_resets", "rearms", "resyncs",
                                     "decode_errors", "foreign_frames", "events_dropped", "resumes",
                                     "new_sessions", "stray_banners")}
        self._listeners: list[Callable[[Event], None]] = []
        self._decoder = codec.FrameDecoder(on_error=self._on_decode_error)
        self._unwrap = Unwrapper()
        self._lock = threading.RLock()          # guards pending/seq/session state
        self._window = threading.Condition(self._lock)
        self._wlock = threading.Lock()          # one writer at a time on the port
        self._pending: dict[int, PendingCommand] = {}
        self._answered: deque[int] = deque(maxlen=64)
        self._requeue: list[PendingCommand] = []
        self._next_seq = 1
        self._allocated = 0
        self._expected: int | None = None
        self._hello_cmd: PendingCommand | None = None
        self._seen_epochs: set[int] = set()      # epochs of the HELLO_REPLYs taken: copies are ignored
        self._lost_expected: int | None = None   # next expected seq when we last gave up a device session
        self._banner: tuple[codec.Received, float] | None = None   # a boot banner not yet confirmed
        self._boot_t: int | None = None
        self._index = 0
        self._unacked = 0
        self._ack_due = False
        self._last_ack_sent = 0.0
        self._last_tx = 0.0                      # last command frame written (EVENT_ACKs do not count)
        self._link_up = True                     # the transport is open
        self._answering = False                  # the last command that ended got its reply (link_up)
        self._dead: DeviceError | None = None
        self._stale_first: float | None = None  # first and last unusable frame since the last accepted one
        self._stale_last = 0.0
        self.resync_s = 5.0                      # fallback only: a renumbering is seen in the replies at once
        # the limits this client has confirmed: its first HELLO sets the defaults of messages.toml, every
        # HELLO carries them (a new device session arms with them), configure() changes them
        # (``limits``: what the first HELLO carries instead, the keys of configure(), so the device arms with
        # them from its first moment: e.g. a host timeout long enough for a fast simulated clock)
        self._config = limits_message(
            P.Configure(*(P.LIMITS[k].default for k in ("max_valve_ms", "min_valve_gap_ms", "budget_valve_ms",
                                                         "host_timeout_ms", "debounce_us")), 0),
            "DeviceClient: limits", dict(limits or {}))
        self._epoch = 0                          # the device session's tag (HELLO_REPLY.epoch): on every ack we send
        self._device_used_ms = 0                 # valve time the current device session reports it has used
        self._valve_used_us = 0                  # valve time this client saw delivered (all sessions)
        self._valve_open_planned_us = 0          # planned time of a valve seen open, not yet closed
        self._valve_opened_seen = False          # a VALVE_OPENED since the last valve command's ACK
        self._budget_offset_ms = 0               # valve time given in device sessions before the current one
        self._rearming = False                   # a re-arming HELLO is pending: other commands are held
        self.session_nonce = new_nonce()
        self.rearm_log: list[RearmRecord] = []
        self._hello_seqs: deque[int] = deque(maxlen=32)   # our recent HELLOs: any may be the one answered
        self._ahead: dict[int, codec.Received] = {}         # frames received beyond a gap, by device seq
        self._last_trip: tuple[Any, int | None] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._safe_done = False

    # ------------------------------------------------------------------ lifecycle
    def start(self, handshake_timeout_s: float = 3.0, max_handshake_s: float = 60.0) -> P.HelloReply:
        """Start the worker thread and shake hands (HELLO); returns the device's HELLO_REPLY.

        The device must show a sign of life (a frame from it, even a damaged one) within
        ``handshake_timeout_s``; while it does the handshake goes on, HELLO after HELLO (harmless: the
        same nonce resumes), up to ``max_handshake_s``: on a lossy line the long HELLO_REPLY may need many
        go-back-N rounds.  Raises :class:`DeviceError` when the device stays silent, or speaks another
        protocol version or schema (the message names both).
        """
        if self._thread is None:
            self._port_timeout()
            self._thread = threading.Thread(target=self._run, name="dopa-rl-device-client", daemon=True)
            self._thread.start()
        self.rearm_log.append(RearmRecord("start", self.time_fn(), self._config.budget_valve_ms))
        t0 = quiet_since = time.monotonic()
        signs = (self.stats["frames_in"], self.stats["decode_errors"])
        pc: PendingCommand | None = None
        while True:
            try:
                if pc is None or pc.done():
                    pc = self._send(self._hello_msg(self._config.budget_valve_ms), internal=False)
                reply = pc.result(0.05, check=False)
                if isinstance(reply, P.Resumed):
                    # an earlier HELLO of this handshake started our session (a retried copy after a slow
                    # reply): this one resumed it.  Its HELLO_REPLY taken, that is the answer; else (lost)
                    # start afresh under a new nonce, so the reply we wait for is one a new session sends
                    if self.hello is not None and reply.epoch == self._epoch:
                        reply = self.hello
                    else:
                        self.session_nonce = new_nonce()
                        pc = None
                        continue
                break
            except DeviceError as exc:
                now = time.monotonic()
                now_signs = (self.stats["frames_in"], self.stats["decode_errors"])
                if now_signs != signs:
                    signs, quiet_since = now_signs, now
                if now - quiet_since > handshake_timeout_s or now - t0 > max_handshake_s:
                    self.stop()
                    what = ("nothing from the device" if now - quiet_since > handshake_timeout_s
                            else f"no complete HELLO reply in {max_handshake_s} s")
                    raise DeviceError(f"no HELLO reply from the device on {self.port.portstr!r} ({what} within "
                                      f"{handshake_timeout_s} s); check the cable, the port and the baud rate "
                                      f"({exc})") from None
        if isinstance(reply, P.Nack):
            self.stop()
            raise DeviceError(f"device refused HELLO: it does not speak host protocol version {self.protocol_version} "
                              f"(NACK {NackReason(reply.reason).name}); update the firmware (make firmware)")
        try:
            self._check_versions(reply)
        except DeviceError:
            self.stop()
            raise
        return reply

    def _check_versions(self, reply: P.HelloReply) -> None:
        if reply.protocol_version != self.protocol_version or reply.schema_hash != self.schema_hash:
            raise DeviceError(
                f"protocol mismatch: device speaks protocol v{reply.protocol_version} (schema "
                f"0x{reply.schema_hash:08X}, firmware 0x{reply.firmware_version:04X}), host dopa_rl speaks "
                f"v{self.protocol_version} (schema 0x{self.schema_hash:08X}); flash the firmware built from this "
                "dopa_rl version (make firmware) or install the matching dopa_rl")

    def _port_timeout(self) -> None:
        try:
            self.port.timeout = self.read_poll_s
        except (serial.SerialException, OSError, ValueError):
            pass


    # ------------------------------------------------------------------ public API
    def send(self, msg: Any, timeout: float | None = None) -> PendingCommand:
        """Send a command without waiting for its reply (waits only while ``max_in_flight`` are outstanding).

        Commands outstanding together may be *executed* out of order when the link loses a frame (the lost
        one is retried later); use :meth:`command`, which waits, whenever order matters.
        """
        check_wire(msg)  # InputError naming the field and its range, not a struct error
        return self._send(msg, window_timeout=self.command_timeout_s if timeout is None else timeout)

    def command(self, msg: Any, timeout: float | None = None, check: bool = True) -> Any:
        """Send a command and wait for its ACK (``CommandRefused`` on NACK unless ``check=False``)."""
        t = self.command_timeout_s if timeout is None else timeout
        return self.send(msg, t).result(t + 1.0, check=check)

    def send_raw(self, data: bytes) -> None:
        """Write arbitrary bytes (tests: corrupted frames).  Replies to them arrive as ordinary events."""
        self._write(bytes(data))

    def device_to_host(self, t_device_us: int) -> float | None:
        """Host time (``time_fn`` seconds) of a 64-bit device time, from the current clock fit."""
        return self.clock.to_host(t_device_us)

    @property
    def next_expected_seq(self) -> int | None:
        return self._expected

    @property
    def link_up(self) -> bool:
        """True only while commands succeed: the transport is open, the device answered the last command
        that ended (a command that got no reply, or a lost device session, takes it down until the next
        reply), and no re-arming HELLO holds the commands back."""
        return self._link_up and self._dead is None and self._answering and not self._rearming

    # ------------------------------------------------------------------ sending
    def _alloc_seq(self) -> int:
        seq = self._next_seq
        self._next_seq = seq + 1 if seq < 0xFFFF else 1  # 0 is left to EVENT_ACK
        self._allocated += 1
        return seq

    def _window_free(self) -> bool:
        """Room for one more command: fewer than ``max_in_flight`` outstanding, and the oldest outstanding
        one still well inside the device's memory of its last 16 replies (so its retry is never re-run)."""
        pend = self._pending.values()
        if sum(1 for p in pend if not p.internal) >= self.max_in_flight:
            return False
        # (a HELLO is never in the device's reply memory: a pending one does not count)
        oldest = min((p.order for p in pend if p.type_id != MsgId.HELLO), default=self._allocated)
        return self._allocated - oldest < P.REPLY_WINDOW - 4

    def _send(self, msg: Any, internal: bool = False, window_timeout: float = 5.0) -> PendingCommand:
        if isinstance(msg, P.Configure) and not internal:
            msg = self._device_configure(msg)   # the session's budget, less what earlier device sessions gave
        with self._window:
            if self._dead is not None:
                raise self._dead
            if not internal and not self._window.wait_for(
                    lambda: self._window_free() or self._dead is not None or self._stop.is_set(), window_timeout):
                raise DeviceError(f"{self.max_in_flight} commands still unanswered after {window_timeout} s")
            if self._dead is not None:
                raise self._dead
            if self._thread is None:
                raise DeviceError("the device client is not running (call start() first)")
            seq = self._alloc_seq()
            pc = PendingCommand(seq, msg, internal, created=self.time_fn(), order=self._allocated)
            if isinstance(msg, P.Hello):
                self._hello_cmd = pc
                self._hello_seqs.append(seq)
            self._pending[pc.seq] = pc
            pc.sent_at = self.time_fn()
            if self._rearming and not isinstance(msg, P.Hello):
                return pc                        # held until the HELLO is answered (attempts stays 0)
            pc.attempts = 1
            pc.sent_expected = self._expected
        if self._link_up:
            self._write(pc.wire)
        return pc

    def _write(self, data: bytes, command: bool = True) -> None:
        if self.muted:
            return
        with self._wlock:
            try:
                self.port.write(data)
            except (serial.SerialException, OSError):
                self._link_up = False
                return
            now = self.time_fn()
            if command:
                self._last_tx = now
            if self.rawlog is not None:
                self.rawlog.write(TX, data, now)

    def _send_event_ack(self, now: float) -> None:
        if self._expected is None:
            return
        self._write(codec.encode(P.EventAck(self._expected, self._epoch), 0), command=False)
        self._unacked = 0
        self._ack_due = False
        self._last_ack_sent = now
        self.stats["event_acks"] += 1

    # ------------------------------------------------------------------ worker
    def _run(self) -> None:
        try:
            self._work()
        except BaseException as exc:  # a bug must not leave a dead worker behind a link that reads "up"
            self._die(exc)

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                if not self._link_up:
                    raise serial.SerialException("write failed")
                n = self.port.in_waiting
                data = self.port.read(max(1, n))
            except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
                if self._stop.is_set():
                    return
                if not self._reconnect(exc):
                    return
                continue
            now = self.time_fn()
            if data:
                if self.rawlog is not None:
                    self.rawlog.write(RX, data, now)
                for rec in self._decoder.feed(data):
                    self._on_frame(rec, now)
            self._housekeeping(self.time_fn())

    def _housekeeping(self, now: float) -> None:
        if self.muted:
            self._stale_first = None  # unacknowledged on purpose: re-sends are expected
            return
        if (self._stale_first is not None and self._stale_last - self._stale_first > self.resync_s
                and self.hello is not None):
            # for a while only frames we cannot accept, and go-back-N has not brought the next one: the
            # device restarted its numbering without us seeing why (e.g. a reboot whose banner was lost)
            self.stats["resyncs"] += 1
            self._suspect_session("lost sequence sync with the device")
        elif (self._expected is None or self._rearming) and self.hello is not None and self.auto_rearm and self._link_up:
            hc = self._hello_cmd
            if hc is not None and hc.done() and hc.error is not None:
                self._rearm("the re-arming HELLO got no answer")
        if self._unacked and (self._unacked >= 8 or now - self._last_ack_sent >= 0.002):
            self._ack_due = True
        if self._ack_due and now - self._last_ack_sent >= 0.001 and self._expected is not None:
            self._send_event_ack(now)
        elif self._rearming and now - self._last_ack_sent >= self.ack_timeout_s:
            # nothing but HELLO goes out while it is pending: an EVENT_ACK (never answered, runs nothing)
            # keeps the device's host deadline fresh
            # (tagged with the epoch of the session we knew: a device that reset has another, and ignores it)
            self._write(codec.encode(P.EventAck(self._expected or 0, self._epoch), 0), command=False)
            self._last_ack_sent = now
        resend: list[PendingCommand] = []
        with self._lock:
            self._expire_requeued(now)
            for pc in list(self._pending.values()):
                if getattr(pc, "heard", False):
                    continue                     # the device has our session: its HELLO_REPLY is on the way
                if now - pc.sent_at >= (self._hello_retry_s() if pc.type_id == MsgId.HELLO else self.ack_timeout_s):
                    if now - pc.created > self.command_timeout_s and self._link_up:
                        del self._pending[pc.seq]
                        # sent at least once, it may have run (its reply may be what was lost): unknown
                        self._answering = False
                        err = (CommandOutcomeUnknown if pc.attempts else DeviceError)(
                            f"no reply to {type(pc.msg).__name__} (seq {pc.seq}) after {pc.attempts} attempts "
                            f"in {self.command_timeout_s} s; " + ("unknown whether it ran; it was not repeated"
                                                                  if pc.attempts else "it was never sent"))
                        pc._finish(error=err)
                        self._window.notify_all()
                        continue
                    if self._rearming and pc.type_id != MsgId.HELLO:
                        continue                 # held: a retry could reach a new device session
                    pc.sent_at = now
                    pc.attempts += 1
                    resend.append(pc)
            idle = not self._pending
        for pc in resend:
            self.stats["retries"] += 1
            self._write(pc.wire)
        if idle and self.heartbeat_s and self._expected is not None and now - self._last_tx >= self.heartbeat_s:
            self.stats["heartbeats"] += 1
            self._send(P.Heartbeat(self._expected, self._epoch), internal=True)

    def _reconnect(self, exc: BaseException) -> bool:
        """Re-open the same port object after a lost link; False when giving up (the client is then dead)."""
        self._link_up = False
        self.stats["disconnects"] += 1
        deadline = time.monotonic() + self.reconnect_timeout_s
        while not self._stop.is_set():
            try:
                self.port.close()
            except Exception:
                pass
            time.sleep(0.02)
            try:
                self.port.open()
                self._port_timeout()
                break
            except (serial.SerialException, OSError):
                if time.monotonic() > deadline:
                    self._dead = DeviceError(f"link to {self.port.portstr!r} lost ({exc}) and not back after "
                                             f"{self.reconnect_timeout_s} s")
                    self._fail_all(self._dead)
                    return False
        if self._stop.is_set():
            return False
        self.stats["reconnects"] += 1
        self._stale_first = None
        self._decoder.reset()
        self._link_up = True
        now = self.time_fn()
        self._expire_old(now)  # their callers were told they failed: never send them now
        with self._lock:
            pend = sorted((p for p in self._pending.values() if p.attempts and
                           (not self._rearming or p.type_id == MsgId.HELLO)), key=lambda p: p.created)
        for pc in pend:
            pc.sent_at = now
            self._write(pc.wire)
        self._send_event_ack(now)
        return True

    def _expire_old(self, now: float) -> None:
        """Fail for good the commands (pending or awaiting a re-arm) older than ``command_timeout_s``."""
        with self._window:
            old = [p for p in list(self._pending.values()) + self._requeue if now - p.created > self.command_timeout_s]
            for p in old:
                self._pending.pop(p.seq, None)
            self._requeue = [p for p in self._requeue if p not in old]
            self._window.notify_all()
        for p in [p for p in old if not p.done()]:
            p._finish(error=DeviceError(f"no reply to {type(p.msg).__name__} (seq {p.seq}) in "
                                        f"{self.command_timeout_s} s (the link was down); it was not sent again"))

    # ------------------------------------------------------------------ receiving
    def _on_decode_error(self, err: codec.FrameError) -> None:
        self.stats["decode_errors"] += 1

    def _on_frame(self, rec: codec.Received, now: float) -> None:
        self.stats["frames_in"] += 1
        msg = rec.msg
        if P.SPEC_BY_CLASS[type(msg)].id < 0x80:
            # a host command type (our own bytes echoed, crossed wiring): never from the device
            self.stats["foreign_frames"] += 1
            return
        if isinstance(msg, P.HelloReply):
            if msg.boot:
                if msg.t_us != self._boot_t:
                    self._boot_t = msg.t_us
                    self._on_banner(rec, now)
                return
            hc = self._hello_cmd
            if hc is not None and not hc.done() and self._answers_hello(msg, hc):
                if msg.epoch not in self._seen_epochs:
                    # reply to our pending HELLO starting a new session: the device restarted its sequence
                    # numbers (a resumed session goes on with its numbers: its RESUMED is taken in order).
                    # A copy of a HELLO_REPLY already taken (its epoch seen) changes nothing
                    self._seen_epochs.add(msg.epoch)
                    if self._expected is not None and self.hello is not None:
                        self._unwrap.reset()     # the device reset without our seeing its banner
                        self.clock.reset()
                    self._expected = rec.seq
                    self._epoch = msg.epoch          # our acks from now on are this session's
                    self._device_used_ms = 0
                    self._ahead.clear()
                    # copies of an earlier boot banner all came before this reply (the device empties its
                    # ring on HELLO): a banner from now on is a new reset, even with the same boot t_us
                    self._boot_t = None
        elif isinstance(msg, P.Nack) and msg.cmd_type == MsgId.HELLO and msg.reason == NackReason.VERSION:
            hc = self._hello_cmd
            if hc is not None and msg.cmd_seq == hc.seq and not hc.done():
                # HELLO refused (NACK VERSION): there is no session, so no sequence to check
                with self._window:
                    self._pending.pop(hc.seq, None)
                    self._window.notify_all()
                hc._finish(reply=msg)
                return
        if self._expected is None:
            hc = self._hello_cmd
            if not (isinstance(msg, P.Resumed) and hc is not None and not hc.done() and self._answers_hello(msg, hc)):
                return
            if msg.epoch != self._epoch or self._lost_expected is None:
                # a resume of the session our earlier HELLO started: that session's HELLO_REPLY (seq 0) is
                # still in the device's ring and comes by go-back-N; another HELLO would change nothing
                hc.heard = True
                return
            # the device kept the session we know (we gave it up on a wrong suspicion): its numbering goes
            # on from where we were, and its ring holds everything since
            self._expected = self._lost_expected
        if rec.seq != self._expected:
            if (self._expected - rec.seq) & 0xFFFF < 0x8000:
                if self._renumbered(msg, rec.seq):
                    self.stats["resyncs"] += 1
                    self._lose_session("lost sequence sync with the device (it renumbered its events: "
                                       "a reset whose banner was lost)")
                    return
                self.stats["duplicates"] += 1
                self._ack_due = True
            else:
                self.stats["out_of_order"] += 1
                if (rec.seq - self._expected) & 0xFFFF < 2 * P.EVENT_RING:
                    # kept until the gap before it fills (go-back-N resends the whole ring; without this, a
                    # lossy link drains it one frame per round)
                    self._ahead.setdefault(rec.seq, rec)
            if self._stale_first is None:
                self._stale_first = now
            self._stale_last = now
            return
        self._accept(rec, now)
        while self._expected is not None and self._expected in self._ahead:
            self._accept(self._ahead.pop(self._expected), now)

    def _accept(self, rec: codec.Received, now: float) -> None:
        """The next event in device order: acknowledge, time, handle and deliver it."""
        msg = rec.msg
        self._stale_first = None
        self._expected = (rec.seq + 1) & 0xFFFF
        self.stats["accepted"] += 1
        self._unacked += 1
        t64 = self._unwrap(msg.t_us, now)
        self.clock.add(t64, now)
        if not self._handle(msg, now):
            return
        self.stats["events"] += 1
        self._deliver(self._make_event(P.SPEC_BY_CLASS[type(msg)].name, msg, rec.seq, t64, self.clock.to_host(t64), now))

    def _make_event(self, name: str, msg: Any, seq: int, t64: int, t_host: float | None, now: float) -> Event:
        ev = Event(name, msg, seq, self._index, t64, t_host, now)
        self._index += 1
        return ev

    def _handle(self, msg: Any, now: float) -> bool:
        """Bookkeeping for one in-order event; False if it must not be delivered to the application."""
        if isinstance(msg, P.SafetyTrip):
            self._last_trip = (msg, self._expected)   # a refused command's NACK follows its trip at once
        if isinstance(msg, P.Nack) and msg.reason == NackReason.BAD_CRC:
            # a frame of ours arrived damaged; if it names a pending command, resend that at once.  The
            # NACK itself is delivered (it is something the device reported), unless it is about our
            # own heartbeats/acks
            self.stats["nack_bad_crc"] += 1
            with self._lock:
                pc = self._pending.get(msg.cmd_seq)
                if pc is not None and pc.type_id == msg.cmd_type:
                    pc.sent_at = 0.0
            return msg.cmd_type not in _INTERNAL
        if isinstance(msg, P.Resumed) and msg.epoch != self._epoch:
            # our HELLO resumed a device session we never saw start (its HELLO_REPLY was lost: the device
            # reset): not ours to resume.  Its HELLO_REPLY is still in the device's ring (our acks carry the
            # old epoch, which it ignores) and comes by go-back-N
            self.stats["resyncs"] += 1
            self._lose_session(f"the device answered a resume from another session (epoch {msg.epoch:#06x}, "
                               f"ours {self._epoch:#06x}): it reset")
            return False
        if isinstance(msg, (P.Ack, P.Nack, P.HelloReply, P.Resumed)):
            with self._window:
                pc = self._pending.get(msg.cmd_seq)
                hc = self._hello_cmd
                if hc is not None and not hc.done() and self._answers_hello(msg, hc):
                    pc = hc                      # (an earlier copy of our HELLO may be the one answered)
                if pc is None or pc.type_id != (MsgId.HELLO if isinstance(msg, (P.HelloReply, P.Resumed))
                                                else msg.cmd_type):
                    if msg.cmd_seq in self._answered:
                        self.stats["duplicate_replies"] += 1
                        return False
                    return not (isinstance(msg, P.Nack) and msg.cmd_type in _INTERNAL)
                if (isinstance(msg, P.Nack) and msg.reason == NackReason.NOT_ARMED and self.auto_rearm
                        and self.hello is not None and not pc.internal):
                    # the device is disarmed (host timeout, or a reset): resend after the re-arming HELLO.
                    # Sent more than once, an earlier copy may have run before a reset: then it is resent
                    # only if the HELLO resumes the session (no reset), else it fails as unknown
                    del self._pending[pc.seq]
                    pc.maybe_ran = pc.attempts > 1
                    self._requeue.append(pc)
                    self._rearm("command refused: NOT_ARMED")
                    return True
                self._pending.pop(pc.seq, None)
                self._answered.append(pc.seq)
                self._answered.append(msg.cmd_seq)
                self._answering = True
                self._window.notify_all()
            if pc.type_id == MsgId.HELLO and not isinstance(msg, P.Nack):
                self._on_hello_reply(pc, msg, now)
            elif isinstance(msg, P.Ack):
                self._note_valve_ack(pc, msg)
            elif isinstance(msg, P.Nack):
                self._explain(pc)
            pc._finish(reply=msg)
            return not pc.internal or pc.type_id == MsgId.HELLO
        self._note_valve(msg)
        if isinstance(msg, P.SafetyTrip) and msg.reason == P.TripReason.HOST_TIMEOUT and self.auto_rearm:
            self._rearm("SAFETY_TRIP HOST_TIMEOUT")
        return True
