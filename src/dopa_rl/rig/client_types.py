"""Value types of the device client: :class:`Event`, :class:`PendingCommand`, :class:`CommandRefused`.

Import them from :mod:`dopa_rl.rig.client`.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from dopa_rl.errors import DeviceError
from dopa_rl.protocol import messages as P
from dopa_rl.protocol import codec
from dopa_rl.protocol.messages import NackReason

__all__ = ["CommandRefused", "Event", "PendingCommand"]


_NACK_HELP = {
    NackReason.BAD_CRC: "the command arrived damaged",
    NackReason.UNKNOWN_TYPE: "the device does not know this command",
    NackReason.BAD_LENGTH: "the command's body has the wrong length",
    NackReason.BAD_VALUE: "a value outside the device's bounds (docs/rig.md)",
    NackReason.NOT_ARMED: "the outputs are not armed: no session yet (start()), or the device disarmed itself "
                          "after host silence (rearm())",
    NackReason.SAFETY: "the safety kernel refused it",
    NackReason.VERSION: "the device speaks another protocol version",
    NackReason.PROGRAM_STATE: "not possible in the current trial-program state (docs/rig.md, Trial programs)",
}


def trip_text(trip: Any, limits: dict[str, int] | None = None) -> str:
    """One phrase saying which limit a SAFETY_TRIP is about, with its value (and the limit, when known)."""
    lim = limits or {}
    reason = P.TripReason(trip.reason) if trip.reason in P.TripReason._value2member_map_ else trip.reason
    name = getattr(reason, "name", str(reason))

    def of(key: str) -> str:
        return f", {key} = {lim[key]}" if key in lim else ""

    text = {
        P.TripReason.MIN_GAP: f"minimum gap: the valve closed {trip.value} ms before{of('min_valve_gap_ms')}",
        P.TripReason.BUDGET: f"volume budget: {trip.value} ms of valve time used{of('budget_valve_ms')}",
        P.TripReason.MAX_OPEN: f"maximum open time: cut at {trip.value} ms",
        P.TripReason.HOST_TIMEOUT: f"host silence: nothing heard for {trip.value} ms; outputs off, disarmed",
    }.get(reason, f"value {trip.value}")
    return f"SAFETY_TRIP {name} ({text})"


class CommandRefused(DeviceError):
    """The device answered a command with NACK.

    ``reason`` is the :class:`NackReason`, ``nack`` the event, ``trip`` the SAFETY_TRIP the device sent
    just before it (the limit that refused a valve command) or ``None``.  The message names all of them.
    """

    def __init__(self, command: Any, nack: P.Nack, trip: Any = None, limits: dict[str, int] | None = None) -> None:
        reason = NackReason(nack.reason) if nack.reason in NackReason._value2member_map_ else nack.reason
        name = getattr(reason, "name", str(reason))
        text = f"device refused {type(command).__name__} (seq {nack.cmd_seq}): NACK {name}"
        if reason in _NACK_HELP:
            text += f", {_NACK_HELP[reason]}"
        if trip is not None:
            text += f": {trip_text(trip, limits)}"
        super().__init__(text)
        self.reason = reason
        self.nack = nack
        self.trip = trip


@dataclass(frozen=True, slots=True)
class Event:
    """One device event, delivered exactly once and in order.

    ``name`` is the message name (``"LICK_ON"``), ``msg`` the decoded NamedTuple, ``seq`` the device
    sequence number, ``index`` the running count of events delivered by this client, ``t_device_us`` the
    device time unwrapped to 64 bits, ``t_host`` that time on the host clock (``time_fn`` base, from the
    clock fit at delivery; ``None`` before the first fit) and ``t_received`` when its bytes were read.
    """

    name: str
    msg: Any
    seq: int
    index: int
    t_device_us: int
    t_host: float | None
    t_received: float


class PendingCommand:
    """A command sent to the device: ``result(timeout)`` waits for and returns its ACK (or HELLO_REPLY)."""

    def __init__(self, seq: int, msg: Any, internal: bool = False, created: float | None = None,
                 order: int = 0) -> None:
        self.seq = seq
        self.order = order  # allocation count of its seq (distance to newer commands, see _window_free)
        self.msg = msg
        self.type_id = P.SPEC_BY_CLASS[type(msg)].id
        self.wire = codec.encode(msg, seq)
        self.internal = internal
        self.created = time.monotonic() if created is None else created
        self.sent_at = 0.0
        self.attempts = 0
        self.reply: Any = None
        self.trip: Any = None                   # the SAFETY_TRIP that came with a NACK
        self.limits: dict[str, int] | None = None
        self.error: BaseException | None = None
        self._done = threading.Event()

    def done(self) -> bool:
        return self._done.is_set()

    def _finish(self, reply: Any = None, error: BaseException | None = None) -> None:
        self.reply, self.error = reply, error
        self._done.set()

    def result(self, timeout: float | None = None, check: bool = True) -> Any:
        """The reply; raises :class:`CommandRefused` on NACK (unless ``check=False``), DeviceError on failure."""
        if not self._done.wait(timeout):
            raise DeviceError(f"no reply to {type(self.msg).__name__} (seq {self.seq}) within {timeout} s")
        if self.error is not None:
            raise self.error
        if check and isinstance(self.reply, P.Nack):
            raise CommandRefused(self.msg, self.reply, self.trip, self.limits)
        return self.reply
