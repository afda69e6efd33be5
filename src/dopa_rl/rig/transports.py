"""Links to a rig device.  Every link is a pyserial object, so the client has one interface to talk to.

* Real boards: ``open_link("/dev/ttyACM0")`` (or find it by USB serial number with
  :func:`dopa_rl.rig.ports.find_port_by_serial`).
* Pseudo-terminals: a plain path, exactly like a real port (the simavr emulator and :class:`PtyBridge`).
* Our URL handlers, registered by :func:`register_url_handlers` (pyserial imports
  ``dopa_rl.rig.urlhandlers.protocol_<scheme>``):

  - ``dopasim://?speed=10&seed=1&animal=rw`` an in-process simulated device (:mod:`dopa_rl.rig.simdevice`),
  - ``faulty://<inner url>#corrupt=0.01&drop=0.01&seed=3`` any other link with injected faults
    (see :mod:`dopa_rl.rig.urlhandlers.protocol_faulty`).

* :func:`memory_pair` two connected in-memory ports for unit tests.
* :class:`PtyBridge` exposes any link (typically a simulated device) on a real pseudo-terminal, so any
  program (the benchmark, a user's terminal tool, another process) can open it by path.
  ``python -m dopa_rl.rig.transports "dopasim://?speed=1"`` prints the path and serves until Ctrl-C.
"""
from __future__ import annotations

import os
import select
import threading
import time
import tty

import serial

BAUD = 1_000_000
HANDLER_PACKAGE = "dopa_rl.rig.urlhandlers"


def register_url_handlers() -> None:
    """Make ``dopasim://`` and ``faulty://`` known to ``serial.serial_for_url`` (idempotent)."""
    if HANDLER_PACKAGE not in serial.protocol_handler_packages:
        serial.protocol_handler_packages.append(HANDLER_PACKAGE)


def open_link(url: str, *, baudrate: int = BAUD, timeout: float | None = 0, **kwargs) -> serial.SerialBase:
    """Open any link (port path, pty path or URL) as a pyserial object with our handlers registered."""
    register_url_handlers()
    return serial.serial_for_url(url, baudrate=baudrate, timeout=timeout, **kwargs)


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


class PtyBridge:
    """Serve an open link on a new pseudo-terminal: bytes are copied both ways by two threads.

    ``PtyBridge(open_link("dopasim://?speed=1")).path`` is a tty path any program can open.  The bridge
    keeps one slave descriptor open itself, so clients may close and reopen the path (no EIO in between).
    :meth:`close` stops the threads and closes the inner link.
    """

    def __init__(self, inner: serial.SerialBase, poll_s: float = 0.02) -> None:
        self.inner = inner
        self._poll_s = poll_s
        self._master, self._slave = os.openpty()
        os.set_blocking(self._master, False)  # a full pty (nobody reading) must not block a thread in write()
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        self._stop = threading.Event()
        self.inner.timeout = poll_s
        self._threads = [threading.Thread(target=self._to_device, name="pty->device", daemon=True),
                         threading.Thread(target=self._to_host, name="device->pty", daemon=True)]
        for t in self._threads:
            t.start()

    def _to_device(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], self._poll_s)
            if not ready:
                continue
            try:
                data = os.read(self._master, 4096)
            except OSError:
                continue
            if data:
                try:
                    self.inner.write(data)
                except (serial.SerialException, OSError):
                    pass

    def _to_host(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.inner.read(max(1, self.inner.in_waiting))
            except (serial.SerialException, OSError):
                time.sleep(self._poll_s)
                continue
            view = memoryview(data)
            while view and not self._stop.is_set():
                try:
                    n = os.write(self._master, view)
                except BlockingIOError:
                    time.sleep(0.001)
                    continue
                except OSError:
                    break
                view = view[n:]

    def close(self) -> None:
        """Stop copying, close the pty and the inner link (idempotent)."""
        if self._stop.is_set():
            return
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2)
        for fd in (self._master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            self.inner.close()
        except Exception:
            pass

    safe = close

    def __enter__(self) -> PtyBridge:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def serve_on_pty(url: str) -> PtyBridge:
    """Open ``url`` (e.g. ``dopasim://?speed=1``) and serve it on a new pseudo-terminal."""
    return PtyBridge(open_link(url))


def main(argv: list[str] | None = None) -> int:
    """``python -m dopa_rl.rig.transports URL``: serve a link on a pty, print its path, run until Ctrl-C."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    url = args[0] if args else "dopasim://?speed=1"
    bridge = serve_on_pty(url)
    print(bridge.path, flush=True)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        bridge.close()
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
