"""Links to a rig device.  Every link is a pyserial object, so the client has one interface to talk to.

* Real boards: ``open_link("/dev/ttyACM0")`` (or find it by USB serial number with
  :func:`dopa_rl.rig.ports.find_port_by_serial`).
* Pseudo-terminals: a plain path, exactly like a real port (the simavr emulator and :class:`PtyBridge`).
* The URL handlers, registered by :func:`register_url_handlers` (pyserial imports
  ``<package>.protocol_<scheme>`` from each package in :data:`HANDLER_PACKAGES`):

  - ``dopasim://?speed=10&seed=1&animal=rw`` an in-process simulated device (:mod:`dopa_rl.sim.device`,
    handler in ``dopa_rl.sim.urlhandlers``),
  - ``faulty://<inner url>#corrupt=0.01&drop=0.01&seed=3`` any other link with injected faults
    (see :mod:`dopa_rl.rig.urlhandlers.protocol_faulty`).

* :class:`PtyBridge` exposes any link (typically a simulated device) on a real pseudo-terminal, so any
  program (the benchmark, a user's terminal tool, another process) can open it by path.
  ``python -m dopa_rl.rig.transports "dopasim://?speed=1"`` prints the path and serves until Ctrl-C.
* In-process ports (:func:`dopa_rl.sim.links.memory_pair`) live with the simulated device.
"""
from __future__ import annotations

import os
import select
import threading
import time
import tty

import serial

from dopa_rl.protocol.messages import BAUD

__all__ = ["HANDLER_PACKAGES", "register_url_handlers", "open_link", "PtyBridge", "serve_on_pty", "main"]

# pyserial finds a scheme's handler by module name, so the rig names the simulated device's handler
# package without importing it (rig and sim never import each other).
HANDLER_PACKAGES = ("dopa_rl.rig.urlhandlers", "dopa_rl.sim.urlhandlers")


def register_url_handlers() -> None:
    """Make ``dopasim://`` and ``faulty://`` known to ``serial.serial_for_url`` (idempotent)."""
    for package in HANDLER_PACKAGES:
        if package not in serial.protocol_handler_packages:
            serial.protocol_handler_packages.append(package)


def open_link(url: str, *, baudrate: int = BAUD, timeout: float | None = 0, **kwargs) -> serial.SerialBase:
    """Open any link (port path, pty path or URL) as a pyserial object with our handlers registered."""
    register_url_handlers()
    return serial.serial_for_url(url, baudrate=baudrate, timeout=timeout, **kwargs)


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
