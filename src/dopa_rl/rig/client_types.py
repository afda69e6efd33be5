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


class CommandRefused(DeviceError):
    """The device answered a command with NACK; ``reason`` is the :class:`NackReason`, ``nack`` the event."""

    def __init__(self, command: Any, nack: P.Nack) -> None:
        reason = NackReason(nack.reason) if nack.reason in NackReason._value2member_map_ else nack.reason
        name = getattr(reason, "name", str(reason))
        super().__init__(f"device refused {type(command).__name__} (seq {nack.cmd_seq}): NACK {name}")
        self.reason = reason
        self.nack = nack


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
            raise CommandRefused(self.msg, self.reply)
        return self.reply
