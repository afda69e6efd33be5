"""A session in virtual time: the :class:`~dopa_rl.session.machine.SessionMachine` and a simulated device
stepped together on the device's clock, with no thread and no real time anywhere.

:class:`VirtualLink` is the host's side of the link for a device whose clock is stepped by hand (the
simulated device of :mod:`dopa_rl.sim.device` in manual mode: ``write(bytes)`` is handled at the current
device time, ``read()`` returns what it sent, ``advance_to(t_us)`` runs it up to ``t_us``, ``clock.next_deadline()``
says when something is next due).  It speaks the same protocol as :class:`dopa_rl.rig.client.DeviceClient`
(HELLO, the named commands of :class:`dopa_rl.rig.client_commands.DeviceCommands`, EVENT_ACK of every event)
and delivers the same :class:`~dopa_rl.rig.client.Event` values, in device order, but as a host of no
latency: a command's reply is read at the device time it was sent, and host time *is* device time.  So a
session run through it depends only on the config, the device and its seed: the same seed gives the same
events, the same trials and the same journal (up to the wall-clock fields ``created`` and ``latencies_s``).

A device reset (its boot banner) is handled as the client does: the banner is delivered, a new session is
opened with what is left of the volume budget and the last CONFIGURE is sent again.  A host timeout
(SAFETY_TRIP HOST_TIMEOUT: the device was stepped while nobody read it, as a test does to stall the host)
re-arms with a HELLO that resumes the session; a command refused NOT_ARMED is sent again once re-armed.
Not modelled: link faults (the ``faulty://`` wrapper is for real-time tests).

:class:`VirtualRunner` is :class:`~dopa_rl.session.runner.Runner` with this link and this clock;
:func:`run_virtual_session` runs one and writes its NWB exactly as :func:`~dopa_rl.session.runner.run_session`
does.
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dopa_rl.errors import DeviceError
from dopa_rl.protocol import codec
from dopa_rl.protocol import messages as P
from dopa_rl.rig.client import CommandOutcomeUnknown, CommandRefused, Event
from dopa_rl.rig.client_commands import DeviceCommands, limits_message
from dopa_rl.rig.rawlog import RX, TX, RawLogWriter
from dopa_rl.session.config import Rig, SessionConfig
from dopa_rl.session.machine import Upload
from dopa_rl.session.runner import POLL_S, Runner, RunResult, export_run

__all__ = ["SESSION_NONCE", "VirtualLink", "VirtualRunner", "run_virtual_session"]

SESSION_NONCE = 0x5E55_1017   # the virtual host's session nonce (fixed: a run is a function of its seed)
REPLY_WAIT_US = 1000          # device time a reply may take (the simulated device answers at once)


class _Replied:
    """A command already answered (what :meth:`VirtualLink.send` returns, as a PendingCommand would)."""

    def __init__(self, link: VirtualLink, msg: Any, reply: Any) -> None:
        self._link, self.msg, self.reply = link, msg, reply

    def result(self, timeout: float | None = None, check: bool = True) -> Any:
        """The reply; CommandRefused on NACK unless ``check=False``."""
        if check and isinstance(self.reply, P.Nack):
            raise self._link._refused(self.msg, self.reply)
        return self.reply

    def done(self) -> bool:
        return True


class VirtualLink(DeviceCommands):
    """The host side of a link to a hand-stepped device (see the module docstring)."""

    command_timeout_s = 1.0

    def __init__(self, device: Any, *, rawlog: str | Path | None = None, limits: dict[str, int] | None = None) -> None:
        self.device = device
        self.hello: P.HelloReply | None = None
        # the limits this link has confirmed, which every HELLO carries (protocol v3: a new device session arms
        # with them): those given, then its last CONFIGURE, as DeviceClient's
        self._config: P.Configure = limits_message(
            P.Configure(*(P.LIMITS[k].default for k in ("max_valve_ms", "min_valve_gap_ms", "budget_valve_ms",
                                                         "host_timeout_ms", "debounce_us")), 0),
            "VirtualLink: limits", dict(limits or {}))
        self._epoch = 0                     # the device session's tag (HELLO_REPLY.epoch), on every ack
        self.heartbeat_s = 0.0            # (the virtual host acknowledges every event at once)
        self.rearm_log: list = []         # (the client's record of HELLO episodes; none kept here)
        self.stats = {k: 0 for k in ("frames_in", "accepted", "events", "duplicates", "event_acks", "commands",
                                     "device_resets", "rearms", "new_sessions", "retries", "reconnects",
                                     "disconnects")}
        self.events: deque[Event] = deque()
        self._listeners: list[Callable[[Event], None]] = []
        self._decoder = codec.FrameDecoder()
        self._seq = 0
        self._expected: int | None = None   # the device sequence number of the next event
        self._index = 0
        self._waiting: tuple[int, int] | None = None   # (seq, type id) of the command awaiting its reply
        self._reply: Any = None
        self._lost_session = False
        self._last_trip: Any = None
        self._valve_used_us = 0
        self._valve_open_us = 0             # planned time of a valve open whose close is not yet reported
        self._budget_ms: int | None = None
        self._rearm_due = False
        self._resending = False
        self._closed = False
        self._rawlog = RawLogWriter(rawlog, time_fn=self.now) if rawlog is not None else None

    # ------------------------------------------------------------------ time
    def now(self) -> float:
        """Host time in seconds: the device's clock (a host of no latency)."""
        return self.device.clock.now_us / 1e6

    def advance(self, max_us: int) -> bool:
        """Run the device to its next deadline (at most ``max_us`` ahead) and read what it sent; True if
        that delivered events."""
        clock = self.device.clock
        limit = clock.now_us + int(max_us)
        nd = clock.next_deadline()
        self.device.advance_to(limit if nd is None else min(max(nd, clock.now_us), limit))
        return self._pump()

    # ------------------------------------------------------------------ the DeviceClient surface a session uses
    def add_listener(self, fn: Callable[[Event], None]) -> None:
        """Call ``fn(event)`` for every event, in order."""
        self._listeners.append(fn)

    def start(self) -> P.HelloReply:
        """HELLO: a new device session (whatever the device said before it, its boot banner included, is
        not part of it); returns the HELLO_REPLY."""
        self._read()   # dropped
        reply = self._hello(P.BUDGET_KEEP)
        if reply.protocol_version != P.PROTOCOL_VERSION or reply.schema_hash != P.SCHEMA_HASH:
            raise DeviceError(f"protocol mismatch: device speaks protocol v{reply.protocol_version} (schema "
                              f"0x{reply.schema_hash:08X}), host dopa_rl speaks v{P.PROTOCOL_VERSION} "
                              f"(schema 0x{P.SCHEMA_HASH:08X})")
        return reply

    def command(self, msg: Any, timeout: float | None = None, check: bool = True) -> Any:
        """Send ``msg`` and return its reply (ACK); CommandRefused on NACK (unless ``check=False``),
        CommandOutcomeUnknown if the device reset before it answered."""
        if self._closed:
            raise DeviceError("the virtual link is closed")
        type_id = P.SPEC_BY_CLASS[type(msg)].id
        rearms = self.stats["rearms"]
        seq = self._write(msg)
        self.stats["commands"] += 1
        self._waiting, self._reply, self._lost_session = (seq, type_id), None, False
        deadline = self.device.clock.now_us + REPLY_WAIT_US
        try:
            self._pump()
            while self._reply is None:
                if self._lost_session:
                    raise CommandOutcomeUnknown(f"device reset while {type(msg).__name__} (seq {seq}) was in "
                                                "flight; unknown whether it ran; it was not repeated")
                if self.device.clock.now_us >= deadline:
                    raise DeviceError(f"no reply to {type(msg).__name__} (seq {seq}) within {REPLY_WAIT_US} us "
                                      "of device time")
                self.advance(deadline - self.device.clock.now_us)
        finally:
            self._waiting = None
        reply = self._reply
        if (isinstance(reply, P.Nack) and reply.reason == P.NackReason.NOT_ARMED and self.hello is not None
                and type_id != P.MsgId.HELLO and not self._resending):
            if self.stats["rearms"] == rearms:   # (not re-armed meanwhile, by the trip that disarmed it)
                self._rearm("command refused: NOT_ARMED")   # (as the client: re-arm, then send it again, once)
            self._resending = True
            try:
                return self.command(msg, timeout, check)
            finally:
                self._resending = False
        if check and isinstance(reply, P.Nack):
            raise self._refused(msg, reply)
        if isinstance(msg, P.Configure):
            self._config = msg
            self._budget_ms = msg.budget_valve_ms if self._budget_ms is None else self._budget_ms
        return reply

    def send(self, msg: Any, timeout: float | None = None) -> _Replied:
        """Send ``msg`` without checking its reply (it is read at once all the same)."""
        return _Replied(self, msg, self.command(msg, check=False))

    def safe(self) -> None:
        """Every output off (ALL_OFF), then the link closes.  Idempotent, never raises."""
        if self._closed:
            return
        try:
            if self.hello is not None:
                self.command(P.AllOff(), check=False)
        except Exception:   # noqa: BLE001 - best effort, as DeviceClient.safe
            pass
        self._closed = True
        if self._rawlog is not None:
            self._rawlog.close()

    stop = close = safe

    # ------------------------------------------------------------------ bytes
    def _write(self, msg: Any) -> int:
        seq = self._seq
        self._seq = (self._seq + 1) & 0xFFFF
        self._raw(TX, codec.encode(msg, seq))
        return seq

    def _raw(self, direction: int, wire: bytes) -> None:
        if self._rawlog is not None:
            self._rawlog.write(direction, wire)
        if direction == TX:
            self.device.write(wire)

    def _read(self) -> bytes:
        data = self.device.read()
        if data and self._rawlog is not None:
            self._rawlog.write(RX, data)
        return data

    def _pump(self) -> bool:
        """Read and handle what the device sent; acknowledge new events.  True if any was delivered."""
        before = self.stats["accepted"]
        while True:
            data = self._read()
            if not data:
                break
            for rec in self._decoder.feed(data):
                self._on_frame(rec)
        new = self.stats["accepted"] > before
        if new and self._expected is not None and not self._closed:
            self._raw(TX, codec.encode(P.EventAck(self._expected, self._epoch), 0))
            self.stats["event_acks"] += 1
        if self._rearm_due and not self._closed:
            self._rearm("SAFETY_TRIP HOST_TIMEOUT")
        return new

    def _on_frame(self, rec: codec.Received) -> None:
        self.stats["frames_in"] += 1
        msg = rec.msg
        if P.SPEC_BY_CLASS[type(msg)].id < 0x80:
            return   # a host command type: never from the device
        if isinstance(msg, P.HelloReply) and msg.boot:
            if self.hello is not None:
                self._device_reset(rec)
            return
        if isinstance(msg, P.HelloReply) and self._waiting is not None and self._waiting[1] == P.MsgId.HELLO:
            self._expected = rec.seq   # a new session: the device's numbers restart with this reply
        if self._expected is None or rec.seq != self._expected:
            self.stats["duplicates"] += 1   # a retransmitted copy (go-back-N), or a frame of a lost session
            return
        self._expected = (rec.seq + 1) & 0xFFFF
        self.stats["accepted"] += 1
        if isinstance(msg, P.SafetyTrip):
            self._last_trip = msg
            self._rearm_due |= msg.reason == P.TripReason.HOST_TIMEOUT and self.hello is not None
        if isinstance(msg, P.ValveOpened):
            self._valve_used_us += self._valve_open_us
            self._valve_open_us = msg.planned_ms * 1000
        elif isinstance(msg, P.ValveClosed):
            self._valve_used_us += msg.open_us
            self._valve_open_us = 0
        if isinstance(msg, P.HelloReply):
            self._epoch = msg.epoch
        if isinstance(msg, (P.Ack, P.Nack, P.HelloReply, P.Resumed)) and self._waiting is not None:
            seq, type_id = self._waiting
            kind = P.MsgId.HELLO if isinstance(msg, (P.HelloReply, P.Resumed)) else msg.cmd_type
            if msg.cmd_seq == seq and kind == type_id:
                self._reply = msg
        self._deliver(rec.seq, msg)

    def _deliver(self, seq: int, msg: Any) -> None:
        now64 = self.device.clock.now_us
        t64 = now64 - ((now64 - msg.t_us) & 0xFFFFFFFF)   # the latest device time with these low 32 bits
        ev = Event(P.SPEC_BY_CLASS[type(msg)].name, msg, seq, self._index, t64, t64 / 1e6, now64 / 1e6)
        self._index += 1
        self.stats["events"] += 1
        self.events.append(ev)
        for fn in self._listeners:
            fn(ev)

    # ------------------------------------------------------------------ sessions
    def _hello_msg(self, budget_ms: int) -> P.Hello:
        """HELLO with the limits this link has confirmed (its last CONFIGURE, else those it was given)."""
        src = self._config
        return P.Hello(P.PROTOCOL_VERSION, SESSION_NONCE, budget_ms, src.max_valve_ms, src.min_valve_gap_ms,
                       src.host_timeout_ms, src.debounce_us, src.flags)

    def _hello(self, budget_ms: int) -> P.HelloReply:
        reply = self.command(self._hello_msg(budget_ms), check=False)
        if isinstance(reply, P.Nack):
            raise DeviceError(f"device refused HELLO (NACK {P.NackReason(reply.reason).name})")
        self.hello = reply
        self.stats["new_sessions"] += 1
        return reply

    def _budget_left_ms(self) -> int:
        """The session's volume budget less the valve time given so far (BUDGET_KEEP before CONFIGURE)."""
        if self._budget_ms is None:
            return P.BUDGET_KEEP
        return max(0, self._budget_ms - (self._valve_used_us + self._valve_open_us + 999) // 1000)

    def _rearm(self, why: str) -> None:
        """HELLO with our nonce: the device resumes the session (RESUMED) or, if it lost it, starts a new one
        (HELLO_REPLY: CONFIGURE is sent again).  A command in flight keeps waiting for its own reply."""
        self._rearm_due = False
        waiting, reply, lost = self._waiting, self._reply, self._lost_session
        self._waiting = None
        self.stats["rearms"] += 1
        left = self._budget_left_ms()
        r = self.command(self._hello_msg(left), check=False)
        if isinstance(r, P.HelloReply):
            self.hello = r
            self.stats["new_sessions"] += 1
            if self._config is not None:
                self.command(self._config._replace(budget_valve_ms=max(1, left)) if left != P.BUDGET_KEEP
                             else self._config)
        elif isinstance(r, P.Nack):
            raise DeviceError(f"re-arming after {why}: device refused HELLO (NACK {P.NackReason(r.reason).name})")
        self._waiting, self._reply, self._lost_session = waiting, reply, lost

    def _device_reset(self, rec: codec.Received) -> None:
        """A boot banner after our HELLO: deliver it, open a new session with the budget that is left, and
        send the last CONFIGURE again (its budget reduced by the valve time already given)."""
        self.stats["device_resets"] += 1
        self.stats["rearms"] += 1
        self._expected = None
        self._deliver(rec.seq, rec.msg)
        waiting, self._waiting = self._waiting, None   # (a command in flight: its outcome is unknown)
        self._valve_used_us += self._valve_open_us   # a valve open at the reset closed with it
        self._valve_open_us = 0
        left = self._budget_left_ms()
        self._hello(left)
        if self._config is not None:
            self.command(self._config._replace(budget_valve_ms=max(1, left)) if left != P.BUDGET_KEEP
                         else self._config)
        self._waiting, self._reply, self._lost_session = waiting, None, waiting is not None

    def _refused(self, msg: Any, nack: P.Nack) -> CommandRefused:
        cfg = self._config if self._config is not None else self.hello
        limits = None if cfg is None else {k: getattr(cfg, k) for k in ("max_valve_ms", "min_valve_gap_ms",
                                                                        "budget_valve_ms", "host_timeout_ms")}
        return CommandRefused(msg, nack, self._last_trip if nack.reason == P.NackReason.SAFETY else None, limits)


class VirtualRunner(Runner):
    """:class:`~dopa_rl.session.runner.Runner` on a :class:`VirtualLink` (``link_class``): the loop steps
    the device's clock instead of waiting on a thread; host time is device time.  ``port`` is the
    hand-stepped device."""

    link_class = VirtualLink

    def _open_client(self, limits: dict[str, int]) -> VirtualLink:
        return self.link_class(self.port, rawlog=self.raw_path, limits=limits)

    def _now(self) -> float:
        return self.port.clock.now_us / 1e6

    def _next_event(self) -> Event | None:
        link = self.client
        end = self.port.clock.now_us + int(POLL_S * 1e6)
        while not link.events and self.port.clock.now_us < end:
            link.advance(end - self.port.clock.now_us)
        if not link.events:
            return None
        ev = link.events.popleft()
        self._fed_at = time.perf_counter()
        return ev

    def _latency(self, up: Upload) -> float:
        # virtual time has none: report the host's compute time from the event's delivery to the upload
        return time.perf_counter() - getattr(self, "_fed_at", time.perf_counter())


def run_virtual_session(config: SessionConfig, rig: Rig, device: Any, out: str | Path, *,
                        n_trials: int | None = None, device_name: str = "simulated device (virtual time)",
                        on_trial: Callable[[dict], None] | None = None, write_nwb: bool = True,
                        pause: Any = None) -> tuple[RunResult, Path | None]:
    """Run a session in virtual time on a hand-stepped ``device`` (a :class:`dopa_rl.sim.device.SimDevice`
    not started), then write the NWB from its journal as :func:`~dopa_rl.session.runner.run_session` does.

    Parameters
    ----------
    config, rig : the session config and rig file.
    device : the device; its clock is advanced by the run.
    out : the NWB file to write (journal and raw log beside it).
    n_trials : overrides the config's number of trials.
    device_name : what the journal and the NWB name as the device.
    on_trial : called with each learned trial's row.
    write_nwb : False: the journal and raw log only.
    pause : a flag with ``is_set()`` (a ``threading.Event``): while set, no new trial starts.

    Returns
    -------
    (RunResult, Path or None) : the run and the NWB written (None if not).
    """
    runner = VirtualRunner(config, rig, device, out, speed=1.0, n_trials=n_trials, device_name=device_name,
                           on_trial=on_trial, client_kw={"heartbeat_s": 0.0}, pause=pause)
    return export_run(runner, out, write_nwb=write_nwb)
