"""Raw-bytes log of a rig link: every byte in both directions, timestamped, re-decodable afterwards.

The host client writes one beside the session journal, so whatever the decoder or the client made of the
link, the exact bytes can be decoded again later (``python -m dopa_rl.rig.rawlog FILE`` prints them).

File format (little-endian)::

    header:  b"DOPARAW1"  wall_time_at_open:f64  monotonic_at_open:f64
    record:  t_monotonic:f64  direction:u8 (0 = device to host, 1 = host to device)  n:u32  n bytes

Each record is written with one unbuffered ``write`` as it happens, so after a crash (even ``kill -9``)
the file holds everything up to the last record, at worst with a truncated last record, which the
reader reports and skips.
"""
from __future__ import annotations

import os
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from dopa_rl.errors import InputError

__all__ = ["MAGIC", "RawRecord", "RawLogWriter", "read_rawlog", "DecodedFrame", "decode_rawlog", "main"]

MAGIC = b"DOPARAW1"
_HEADER = struct.Struct("<8sdd")
_RECORD = struct.Struct("<dBI")
RX, TX = 0, 1  # device to host, host to device


class RawRecord(NamedTuple):
    """One chunk of bytes: host monotonic time (s), wall-clock time (s since epoch), direction, bytes."""

    t_monotonic: float
    t_wall: float
    direction: int
    data: bytes


class RawLogWriter:
    """Append-only writer; thread-safe; ``close()`` is idempotent."""

    def __init__(self, path: str | os.PathLike[str], time_fn=time.monotonic) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._time = time_fn
        self._lock = threading.Lock()
        self._fh = open(self.path, "wb", buffering=0)
        self._fh.write(_HEADER.pack(MAGIC, time.time(), time_fn()))
        self.bytes_logged = 0

    def write(self, direction: int, data: bytes, t: float | None = None) -> None:
        """Log ``data`` that went in ``direction`` (RX or TX) at host time ``t`` (default: now)."""
        if not data:
            return
        rec = _RECORD.pack(self._time() if t is None else t, direction, len(data)) + bytes(data)
        with self._lock:
            if self._fh is not None:
                self._fh.write(rec)
                self.bytes_logged += len(data)

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None

    def __enter__(self) -> RawLogWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_rawlog(path: str | os.PathLike[str]) -> Iterator[RawRecord]:
    """Yield the records of a raw log in order; a truncated last record (crash) is skipped.

    Raises :class:`InputError` if the file is not a dopa_rl raw log.
    """
    with open(path, "rb") as fh:
        head = fh.read(_HEADER.size)
        if len(head) < _HEADER.size or not head.startswith(MAGIC):
            raise InputError(f"{path}: not a dopa_rl raw link log (no {MAGIC.decode()} header)")
        _, wall0, mono0 = _HEADER.unpack(head)
        while True:
            rh = fh.read(_RECORD.size)
            if len(rh) < _RECORD.size:
                return
            t, direction, n = _RECORD.unpack(rh)
            data = fh.read(n)
            if len(data) < n:
                return
            yield RawRecord(t, wall0 + (t - mono0), direction, data)


class DecodedFrame(NamedTuple):
    """A frame re-decoded from a raw log: time of the chunk that completed it, direction, and either the
    :class:`~dopa_rl.protocol.codec.Received` (``error`` None) or the :class:`~dopa_rl.protocol.codec.FrameError`."""

    t_monotonic: float
    direction: int
    received: object
    error: object


def decode_rawlog(path: str | os.PathLike[str]) -> Iterator[DecodedFrame]:
    """Re-decode both directions of a raw log into frames (bad frames are yielded with ``error`` set)."""
    from dopa_rl.protocol.codec import FrameDecoder

    errors: list = []
    decoders = {RX: FrameDecoder(on_error=errors.append), TX: FrameDecoder(on_error=errors.append)}
    for rec in read_rawlog(path):
        for r in decoders[rec.direction].feed(rec.data):
            yield DecodedFrame(rec.t_monotonic, rec.direction, r, None)
        while errors:
            yield DecodedFrame(rec.t_monotonic, rec.direction, None, errors.pop(0))


def main(argv: list[str] | None = None) -> int:
    """``python -m dopa_rl.rig.rawlog FILE``: print every decoded frame, one per line."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m dopa_rl.rig.rawlog FILE", file=sys.stderr)
        return 2
    t0 = None
    for f in decode_rawlog(args[0]):
        t0 = f.t_monotonic if t0 is None else t0
        arrow = "<-" if f.direction == RX else "->"
        what = f"seq={f.received.seq} {f.received.msg}" if f.error is None else f"BAD {f.error}"
        print(f"{f.t_monotonic - t0:12.6f} {arrow} {what}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
