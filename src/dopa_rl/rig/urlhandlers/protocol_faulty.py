"""``faulty://<inner url>#<faults>``: wrap any link and inject byte-level faults, reproducibly.

Syntax: everything between ``faulty://`` and the first ``#`` is the inner URL, opened with
``serial.serial_for_url`` (so its own ``?query`` stays intact); the fragment holds ``&``-separated fault
options::

    faulty://dopasim://?speed=10&seed=1#corrupt=0.01&drop=0.01&seed=3
    faulty:///dev/ttyACM0#drop=0.001&dir=rx

Options (all default to no fault):

=================  ==========================================================================
``corrupt=P``      each byte is XOR-ed with a random non-zero mask with probability P
``drop=P``         each byte is lost with probability P
``dup=P``          each byte is sent twice with probability P
``delay=P``        with probability P a byte (and, to keep order, everything behind it) is held
``delay_ms=D``     ... until D ms after it arrived (default 20; delays do not add up)
``stall_at=T``     T s after opening, nothing moves either way for ``stall_ms`` (bytes are kept)
``stall_ms=D``     length of that stall (default 200)
``disconnect_at=T``  T s after opening the link dies: reads and writes raise ``SerialException``,
                   bytes in flight are lost, and ``open()`` fails until ``disconnect_ms`` have passed
``disconnect_ms=D``  length of the outage (default 300)
``dir=both|rx|tx``  which direction the per-byte faults hit (rx = device to host; default both)
``seed=N``         random seed (default 0); each direction has its own generator, so a given byte
                   position always gets the same fate however the reads are chunked
=================  ==========================================================================

Tests can also trigger faults directly: ``port.inject_disconnect(ms)`` and ``port.inject_stall(ms)``.
``port.stats`` counts what was done.  Delayed transmit bytes are released whenever the port is used
(the client's reader polls it continuously).
"""
from __future__ import annotations

import random
import threading
import time
from collections import deque
from urllib.parse import parse_qsl

import serial

__all__ = ["parse_faulty_url", "Serial"]

_FLOAT_OPTS = {"corrupt", "drop", "dup", "delay", "delay_ms", "stall_at", "stall_ms", "disconnect_at",
               "disconnect_ms"}


def parse_faulty_url(url: str) -> tuple[str, dict]:
    """Split ``faulty://<inner>#<options>`` into the inner URL and a dict of typed options."""
    if not url.lower().startswith("faulty://"):
        raise ValueError(f"not a faulty:// URL: {url!r}")
    rest = url[len("faulty://"):]
    inner, _, frag = rest.partition("#")
    if not inner:
        raise ValueError(f"faulty:// URL needs an inner link, e.g. faulty://dopasim://#drop=0.01 (got {url!r})")
    opts: dict = {"corrupt": 0.0, "drop": 0.0, "dup": 0.0, "delay": 0.0, "delay_ms": 20.0,
                  "stall_at": None, "stall_ms": 200.0, "disconnect_at": None, "disconnect_ms": 300.0,
                  "dir": "both", "seed": 0}
    for key, value in parse_qsl(frag, keep_blank_values=True):
        if key in _FLOAT_OPTS:
            try:
                opts[key] = float(value)
            except ValueError:
                raise ValueError(f"faulty:// option {key}={value!r} is not a number") from None
        elif key == "seed":
            opts["seed"] = int(value)
        elif key == "dir":
            if value not in {"both", "rx", "tx"}:
                raise ValueError(f"faulty:// option dir must be both, rx or tx (got {value!r})")
            opts["dir"] = value
        else:
            raise ValueError(f"unknown faulty:// option {key!r}; known: {sorted(_FLOAT_OPTS | {'dir', 'seed'})}")
    for key in ("corrupt", "drop", "dup", "delay"):
        if not 0.0 <= opts[key] <= 1.0:
            raise ValueError(f"faulty:// option {key} must be a probability in [0, 1] (got {opts[key]})")
    return inner, opts


class _Lane:
    """Per-direction fault pipeline: bytes go in, come out (maybe altered) at a release time."""

    def __init__(self, opts: dict, seed: int, active: bool, stats: dict, prefix: str) -> None:
        self.opts, self.active, self.stats, self.prefix = opts, active, stats, prefix
        self.rng = random.Random(seed)
        self.queue: deque[tuple[float, bytes]] = deque()
        self.hold_until = 0.0

    def push(self, data: bytes, now: float) -> None:
        if not data:
            return
        if not self.active:
            self.queue.append((max(now, self.hold_until), bytes(data)))
            return
        o, rng, st = self.opts, self.rng, self.stats
        out = bytearray()
        for b in data:
            r_drop, r_corrupt, r_dup, r_delay = rng.random(), rng.random(), rng.random(), rng.random()
            if r_delay < o["delay"]:
                if out:
                    self.queue.append((max(now, self.hold_until), bytes(out)))
                    out = bytearray()
                self.hold_until = max(self.hold_until, now + o["delay_ms"] / 1000.0)
                st[self.prefix + "delayed"] += 1
            if r_drop < o["drop"]:
                st[self.prefix + "dropped"] += 1
                continue
            if r_corrupt < o["corrupt"]:
                b ^= rng.randrange(1, 256)
                st[self.prefix + "corrupted"] += 1
            out.append(b)
            if r_dup < o["dup"]:
                out.append(b)
                st[self.prefix + "duplicated"] += 1
        if out:
            self.queue.append((max(now, self.hold_until), bytes(out)))

    def pop_ready(self, now: float, limit: int | None = None) -> bytes:
        out = bytearray()
        while self.queue and self.queue[0][0] <= now and (limit is None or len(out) < limit):
            t, chunk = self.queue.popleft()
            if limit is not None and len(out) + len(chunk) > limit:
                take = limit - len(out)
                out += chunk[:take]
                self.queue.appendleft((t, chunk[take:]))
                break
            out += chunk
        return bytes(out)

    def ready_count(self, now: float) -> int:
        return sum(len(c) for t, c in self.queue if t <= now)

    def clear(self) -> None:
        self.queue.clear()


class Serial(serial.SerialBase):
    """pyserial handler for ``faulty://`` (see the module docstring)."""

    inner: serial.SerialBase | None = None

    def open(self) -> None:
        if self._port is None:
            raise serial.SerialException("faulty://: port must be set before open()")
        if self.is_open:
            raise serial.SerialException("faulty://: port already open")
        now = time.monotonic()
        if getattr(self, "_down_until", 0.0) > now:
            raise serial.SerialException("faulty://: device disconnected (simulated outage)")
        if self.inner is None:
            try:
                inner_url, self._opts = parse_faulty_url(self.portstr)
            except ValueError as exc:
                raise serial.SerialException(str(exc)) from None
            self.inner = serial.serial_for_url(inner_url, baudrate=self._baudrate, timeout=0.002)
            self._lock = threading.RLock()
            self.stats: dict[str, int] = {f"{d}_{k}": 0 for d in ("rx", "tx")
                                          for k in ("dropped", "corrupted", "duplicated", "delayed")}
            self.stats["disconnects"] = 0
            self.stats["stalls"] = 0
            d = self._opts["dir"]
            seed = self._opts["seed"]
            self._rx = _Lane(self._opts, seed * 2 + 1, d in ("both", "rx"), self.stats, "rx_")
            self._tx = _Lane(self._opts, seed * 2 + 2, d in ("both", "tx"), self.stats, "tx_")
            self._opened_at = now
            self._down_until = 0.0
            self._stall_until = 0.0
            o = self._opts
            self._pending_stall = None if o["stall_at"] is None else now + o["stall_at"]
            self._pending_disc = None if o["disconnect_at"] is None else now + o["disconnect_at"]
        elif not self.inner.is_open:
            self.inner.open()
        self.is_open = True

    def close(self) -> None:
        """Close this end (the inner link stays open across a simulated outage; see :meth:`shutdown`)."""
        self.is_open = False
        if self.inner is not None and not self._in_outage():
            self.shutdown()

    def shutdown(self) -> None:
        """Close the inner link too (idempotent)."""
        self.is_open = False
        if self.inner is not None:
            try:
                self.inner.close()
            finally:
                self.inner = None

    def _in_outage(self) -> bool:
        return time.monotonic() < getattr(self, "_down_until", 0.0)

    def _reconfigure_port(self, *args, **kwargs) -> None:
        pass

    # -- fault triggers -------------------------------------------------------------------------------
    def set_faults(self, **rates: float) -> None:
        """Change per-byte fault rates now, e.g. ``set_faults(corrupt=0, drop=0)`` to end the noise."""
        unknown = set(rates) - {"corrupt", "drop", "dup", "delay", "delay_ms"}
        if unknown:
            raise ValueError(f"unknown fault rate(s) {sorted(unknown)}")
        with self._lock:
            self._opts.update({k: float(v) for k, v in rates.items()})

    def inject_disconnect(self, ms: float | None = None) -> None:
        """Kill the link now for ``ms`` (default ``disconnect_ms``): I/O raises, bytes in flight are lost."""
        with self._lock:
            self._down_until = time.monotonic() + (self._opts["disconnect_ms"] if ms is None else ms) / 1000.0
            self._rx.clear()
            self._tx.clear()
            self.stats["disconnects"] += 1

    def inject_stall(self, ms: float | None = None) -> None:
        """Freeze the link now for ``ms`` (default ``stall_ms``); bytes are kept and delivered afterwards."""
        with self._lock:
            until = time.monotonic() + (self._opts["stall_ms"] if ms is None else ms) / 1000.0
            self._stall_until = max(self._stall_until, until)
            self._rx.hold_until = max(self._rx.hold_until, until)
            self._tx.hold_until = max(self._tx.hold_until, until)
            self.stats["stalls"] += 1

    # -- data path ------------------------------------------------------------------------------------
    def _pump(self) -> float:
        """Move bytes between the inner link and the lanes; raise if the link is down."""
        if not self.is_open:
            raise serial.PortNotOpenError()
        now = time.monotonic()
        if self._pending_disc is not None and now >= self._pending_disc:
            self._pending_disc = None
            self.inject_disconnect()
        if self._pending_stall is not None and now >= self._pending_stall:
            self._pending_stall = None
            self.inject_stall()
        inner = self.inner
        if now < self._down_until:
            # The far side keeps talking into the void while the cable is out.
            if inner is not None and inner.in_waiting:
                inner.read(inner.in_waiting)
            self.is_open = False
            raise serial.SerialException("faulty://: device disconnected (simulated outage)")
        n = inner.in_waiting
        if n:
            self._rx.push(inner.read(n), now)
        if now >= self._stall_until:
            data = self._tx.pop_ready(now)
            if data:
                inner.write(data)
        return now

    @property
    def in_waiting(self) -> int:
        with self._lock:
            now = self._pump()
            return self._rx.ready_count(now) if now >= self._stall_until else 0

    @property
    def out_waiting(self) -> int:
        return 0

    def read(self, size: int = 1) -> bytes:
        out = bytearray()
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        while len(out) < size:
            with self._lock:
                now = self._pump()
                if now >= self._stall_until:
                    out += self._rx.pop_ready(now, size - len(out))
            if len(out) >= size or (deadline is not None and time.monotonic() >= deadline):
                break
            if not out:
                # Block briefly on the inner link (its timeout is small) instead of spinning.
                inner = self.inner
                if inner is not None and not self._rx.queue:
                    with self._lock:
                        chunk = inner.read(1) if self.is_open and now >= self._down_until else b""
                        if chunk:
                            self._rx.push(chunk, time.monotonic())
                else:
                    time.sleep(0.0005)
            else:
                break
        return bytes(out)

    def write(self, data: bytes) -> int:
        data = bytes(data)
        with self._lock:
            now = self._pump()
            self._tx.push(data, now)
            self._pump()
        return len(data)

    def flush(self) -> None:
        pass

    def reset_input_buffer(self) -> None:
        with self._lock:
            self._rx.clear()

    def reset_output_buffer(self) -> None:
        with self._lock:
            self._tx.clear()
