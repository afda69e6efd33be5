"""A frame-level fault wrapper for client tests: drop chosen frames, inject stray ones, echo the line.

``FrameFilter(port)`` wraps an open pyserial link (a ``dopasim://`` or emulator pty link) for
:class:`dopa_rl.rig.client.DeviceClient`.  Unlike ``faulty://`` (random byte faults) it acts on whole
frames, decoded with the protocol codec, so a test can lose exactly the frame a finding is about:

- ``drop_rx(pred)`` / ``drop_tx(pred)``: frames (``codec.Received``) for which ``pred`` is true are lost
  (device to host / host to device); ``pred`` may count and return False once it has had enough;
- ``inject_rx(wire)``: bytes the host reads next, as if the device had sent them (a stray or replayed
  frame);
- ``echo``: when True, every frame the device sends also goes back to the device (a loopback plug);
- ``paused``: when True the host reads nothing (a stalled host: the device's ring fills up);
- ``rx_log`` / ``tx_log``: every whole frame that passed, decoded (``codec.Received``), in order.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

from dopa_rl.protocol import codec

Pred = Callable[[codec.Received], bool]


class _Lane:
    """Splits a byte stream at 0x00 delimiters and decides per frame."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.pred: Pred | None = None
        self.log: list[codec.Received] = []

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        for b in data:
            self.buf.append(b)
            if b != 0:
                continue
            wire, self.buf = bytes(self.buf), bytearray()
            try:
                rec = codec.decode(wire)
            except Exception:        # a frame we cannot read passes untouched (the codec counts it)
                out += wire
                continue
            if self.pred is not None and self.pred(rec):
                continue
            self.log.append(rec)
            out += wire
        return bytes(out)


class FrameFilter:
    """See the module docstring; quacks like the pyserial object it wraps (what the client uses)."""

    def __init__(self, port) -> None:
        self.port = port
        self._rx, self._tx = _Lane(), _Lane()
        self._inject = bytearray()
        self._lock = threading.Lock()
        self.echo = False
        self.paused = False

    # ------------------------------------------------------------------ test controls
    def drop_rx(self, pred: Pred | None) -> None:
        self._rx.pred = pred

    def drop_tx(self, pred: Pred | None) -> None:
        self._tx.pred = pred

    def inject_rx(self, wire: bytes) -> None:
        with self._lock:
            self._inject += wire

    @property
    def rx_log(self) -> list[codec.Received]:
        return self._rx.log

    @property
    def tx_log(self) -> list[codec.Received]:
        return self._tx.log

    # ------------------------------------------------------------------ pyserial surface
    @property
    def portstr(self) -> str:
        return f"filter:{self.port.portstr}"

    @property
    def timeout(self):
        return self.port.timeout

    @timeout.setter
    def timeout(self, value) -> None:
        self.port.timeout = value

    @property
    def in_waiting(self) -> int:
        if self.paused:
            return 0
        with self._lock:
            return len(self._inject) + self.port.in_waiting

    def read(self, size: int = 1) -> bytes:
        if self.paused:              # what a read with a timeout does when nothing comes
            time.sleep(self.port.timeout or 0.005)
            return b""
        with self._lock:
            if self._inject:
                out, self._inject = bytes(self._inject), bytearray()
                return out
        out = self._rx.feed(self.port.read(size))
        if out and self.echo:          # whole frames only (a loopback would not split them)
            self.port.write(out)
        return out

    def write(self, data: bytes) -> int:
        self.port.write(self._tx.feed(bytes(data)))
        return len(data)

    def close(self) -> None:
        self.port.close()

    def open(self) -> None:
        self.port.open()
