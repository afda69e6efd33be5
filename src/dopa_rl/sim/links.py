"""In-process pyserial ports: the wire between a host and a simulated device living in the same process.

* :class:`VirtualPort` the base of the in-process ports (``dopasim://`` and the memory pair),
* :func:`memory_pair` two connected in-memory ports for unit tests.
"""
from __future__ import annotations

import threading
import time

import serial

from dopa_rl.protocol.messages import BAUD

__all__ = ["BytePipe", "VirtualPort", "MemoryPort", "memory_pair"]


class BytePipe:
    """A one-way, thread-safe byte queue with blocking reads (the wire inside :func:`memory_pair`)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._cond = threading.Condition()
        self.closed = False

    def put(self, data: bytes) -> None:
        with self._cond:
            self._buf += data
            self._cond.notify_all()

    def get(self, size: int, timeout: float | None) -> bytes:
        """Up to ``size`` bytes; waits up to ``timeout`` seconds for the first (``None``: forever, 0: never)."""
        with self._cond:
            if not self._buf and timeout != 0 and not self.closed:
                if timeout is None:
                    while not self._buf and not self.closed:
                        self._cond.wait()
                else:
                    self._cond.wait_for(lambda: self._buf or self.closed, timeout)
            out = bytes(self._buf[:size])
            del self._buf[:size]
            return out

    def clear(self) -> None:
        with self._cond:
            self._buf.clear()

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._buf)


class VirtualPort(serial.SerialBase):
    """Base of the in-process pyserial ports (memory pair, simulated device): no line settings to apply,
    nothing buffered on the way out, and a closed port refuses I/O like a real one."""

    def _reconfigure_port(self, *args, **kwargs) -> None:
        pass

    def _check(self) -> None:
        if not self.is_open:
            raise serial.PortNotOpenError()

    @property
    def out_waiting(self) -> int:
        return 0

    def flush(self) -> None:
        pass

    def reset_output_buffer(self) -> None:
        pass


class MemoryPort(VirtualPort):
    """A pyserial port whose other end is another :class:`MemoryPort` (see :func:`memory_pair`).

    Honours ``timeout`` like a real port (``None`` blocks, ``0`` never waits).  The baud rate is ignored.
    """

    def __init__(self, rx: BytePipe, tx: BytePipe, name: str = "memory", timeout: float | None = 0) -> None:
        super().__init__(timeout=timeout, baudrate=BAUD)
        self._rx, self._tx = rx, tx
        self._port = name
        self.is_open = True

    def open(self) -> None:
        self.is_open = True

    def close(self) -> None:
        self.is_open = False

    @property
    def in_waiting(self) -> int:
        self._check()
        return len(self._rx)

    def read(self, size: int = 1) -> bytes:
        self._check()
        if size <= 0:
            return b""
        out = bytearray()
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        while len(out) < size:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            chunk = self._rx.get(size - len(out), wait)
            out += chunk
            if not chunk and (wait == 0 or self._rx.closed or deadline is not None):
                break
        return bytes(out)

    def write(self, data: bytes) -> int:
        self._check()
        data = bytes(data)
        self._tx.put(data)
        return len(data)

    def reset_input_buffer(self) -> None:
        self._rx.clear()


def memory_pair(timeout: float | None = 0) -> tuple[MemoryPort, MemoryPort]:
    """Two connected in-memory ports ``(host_end, device_end)``: bytes written to one are read from the other."""
    a_to_b, b_to_a = BytePipe(), BytePipe()
    return (MemoryPort(b_to_a, a_to_b, "memory-host", timeout),
            MemoryPort(a_to_b, b_to_a, "memory-device", timeout))
