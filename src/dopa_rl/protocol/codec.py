"""Pure wire codec of the rig protocol (no I/O): COBS, CRC-16/CCITT-FALSE, frames, typed messages.

A frame before COBS is ``type:u8 | seq:u16 LE | body | crc:u16 LE`` (at most ``MAX_FRAME`` bytes), the CRC
covering ``type|seq|body``; on the wire it is COBS-encoded and followed by one 0x00.  Messages are the
NamedTuple classes of :mod:`dopa_rl.protocol.messages` (``Hello(protocol_version=1)``, ``Ack(...)`` ...).

- :func:`encode` (message, seq) -> wire bytes; :func:`decode` wire bytes of one frame -> :class:`Received`.
- :class:`FrameDecoder` takes arbitrary byte chunks and returns the messages they complete; it never
  raises on bad input: each bad frame is counted by :class:`DecodeError` kind in ``errors`` and reported to
  an optional ``on_error`` callback as a :class:`FrameError` (with the header when it was readable), and
  decoding resumes at the next 0x00.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from dopa_rl.protocol import messages as P
from dopa_rl.protocol.messages import DecodeError

__all__ = ["crc16", "cobs_encode", "cobs_decode", "encode", "encode_body", "decode_body", "build_frame",
           "parse_frame", "decode", "with_enums", "ENUM_FIELDS", "Received", "FrameError", "FrameDecoder", "DecodeError", "message"]


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        c = i << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) if c & 0x8000 else (c << 1)
        table.append(c & 0xFFFF)
    return table


_CRC_TABLE = _crc_table()


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor); check("123456789") = 0x29B1."""
    t = _CRC_TABLE
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ t[(crc >> 8) ^ b]
    return crc


def cobs_encode(data: bytes) -> bytes:
    """COBS-encode ``data`` (the result holds no 0x00; the 0x00 delimiter is not appended)."""
    out = bytearray()
    code_pos = 0
    out.append(0)
    code = 1
    for b in data:
        if b == 0:
            out[code_pos] = code
            code_pos = len(out)
            out.append(0)
            code = 1
        else:
            out.append(b)
            code += 1
            if code == 0xFF:
                out[code_pos] = code
                code_pos = len(out)
                out.append(0)
                code = 1
    out[code_pos] = code
    return bytes(out)


class FrameError(Exception):
    """A frame that could not be decoded: its kind, and type/seq when the header was readable."""

    def __init__(self, kind: DecodeError, detail: str = "", msg_type: int | None = None,
                 seq: int | None = None) -> None:
        super().__init__(f"{kind.name}: {detail}" if detail else kind.name)
        self.kind = kind
        self.msg_type = msg_type
        self.seq = seq


def cobs_decode(data: bytes) -> bytes:
    """Decode one COBS block (without the 0x00 delimiter); raises FrameError(BAD_COBS) if malformed."""
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        code = data[i]
        if code == 0:
            raise FrameError(DecodeError.BAD_COBS, "zero byte inside a frame")
        end = i + code
        if end > n:
            raise FrameError(DecodeError.BAD_COBS, "block runs past the end of the frame")
        out += data[i + 1:end]
        if code != 0xFF and end < n:
            out.append(0)
        i = end
    return bytes(out)


class Received(NamedTuple):
    """One decoded frame: its sequence number and the typed message."""

    seq: int
    msg: Any

    @property
    def type(self) -> int:
        return P.SPEC_BY_CLASS[type(self.msg)].id


def message(name_or_id: str | int, **fields: Any) -> Any:
    """Build a message by name or id from keyword fields (missing fields are 0, arrays all zero)."""
    spec = P.SPEC_BY_NAME[name_or_id] if isinstance(name_or_id, str) else P.SPEC_BY_ID[name_or_id]
    values = []
    for fname, _t, count in spec.fields:
        v = fields.pop(fname, 0 if count == 1 else (0,) * count)
        values.append(tuple(v) if count > 1 else v)
    if fields:
        raise TypeError(f"{spec.name} has no field(s) {sorted(fields)}")
    return spec.cls(*values)


def encode_body(msg: Any) -> bytes:
    """Pack the body of a message (raises ValueError if a value does not fit its field)."""
    spec = P.SPEC_BY_CLASS[type(msg)]
    flat: list[int] = []
    for (fname, _t, count), v in zip(spec.fields, msg):
        if count > 1:
            if len(v) != count:
                raise ValueError(f"{spec.name}.{fname} needs {count} values, got {len(v)}")
            flat.extend(v)
        else:
            flat.append(v)
    try:
        return spec.struct.pack(*flat)
    except Exception as exc:  # struct.error for out-of-range values
        raise ValueError(f"{spec.name}: {exc}") from exc


# Event fields that hold a protocol enum: decoded events carry the IntEnum (``TripReason.MIN_GAP``, still
# equal to 2) instead of a bare number; a value the enum does not know stays a plain int.
ENUM_FIELDS: dict[type, dict[str, type]] = {
    P.Ack: {"cmd_type": P.MsgId},
    P.Nack: {"cmd_type": P.MsgId, "reason": P.NackReason},
    P.HelloReply: {"board": P.Board, "reset_cause": P.ResetCause},
    P.ValveClosed: {"cause": P.CloseCause},
    P.SafetyTrip: {"reason": P.TripReason},
    P.Error: {"code": P.ErrorCode},
}


def with_enums(msg: Any) -> Any:
    """``msg`` with its enum fields (:data:`ENUM_FIELDS`) as IntEnum members where the value is known."""
    fields = ENUM_FIELDS.get(type(msg))
    if not fields:
        return msg
    repl = {}
    for name, enum in fields.items():
        v = getattr(msg, name)
        if v in enum._value2member_map_:
            repl[name] = enum(v)
    return msg._replace(**repl)


def decode_body(msg_type: int, body: bytes) -> Any:
    """Unpack a body into its NamedTuple; FrameError UNKNOWN_TYPE / BAD_LENGTH if impossible."""
    spec = P.SPEC_BY_ID.get(msg_type)
    if spec is None:
        raise FrameError(DecodeError.UNKNOWN_TYPE, f"type 0x{msg_type:02X}")
    if len(body) != spec.size:
        raise FrameError(DecodeError.BAD_LENGTH, f"{spec.name} body {len(body)} bytes, expected {spec.size}")
    flat = spec.struct.unpack(body)
    if len(flat) == len(spec.fields):
        return with_enums(spec.cls(*flat))
    values, i = [], 0
    for _f, _t, count in spec.fields:
        values.append(tuple(flat[i:i + count]) if count > 1 else flat[i])
        i += count
    return spec.cls(*values)


def build_frame(msg_type: int, seq: int, body: bytes) -> bytes:
    """Unencoded frame ``type|seq|body|crc``."""
    head = bytes((msg_type & 0xFF, seq & 0xFF, (seq >> 8) & 0xFF)) + body
    if len(head) + P.CRC_SIZE > P.MAX_FRAME:
        raise ValueError(f"frame of {len(head) + P.CRC_SIZE} bytes exceeds {P.MAX_FRAME}")
    c = crc16(head)
    return head + bytes((c & 0xFF, c >> 8))


def encode(msg: Any, seq: int) -> bytes:
    """Wire bytes of one message: COBS(frame) + 0x00."""
    spec = P.SPEC_BY_CLASS[type(msg)]
    return cobs_encode(build_frame(spec.id, seq, encode_body(msg))) + b"\x00"


def parse_frame(raw: bytes) -> Received:
    """Check length and CRC of an unencoded frame and decode its message; raises FrameError."""
    if len(raw) > P.MAX_FRAME:
        raise FrameError(DecodeError.TOO_LONG, f"{len(raw)} bytes")
    if len(raw) < P.HEADER_SIZE + P.CRC_SIZE:
        raise FrameError(DecodeError.BAD_LENGTH, f"{len(raw)} bytes is shorter than header + crc")
    msg_type, seq = raw[0], raw[1] | (raw[2] << 8)
    if crc16(raw[:-2]) != (raw[-2] | (raw[-1] << 8)):
        raise FrameError(DecodeError.BAD_CRC, "", msg_type, seq)
    try:
        return Received(seq, decode_body(msg_type, raw[P.HEADER_SIZE:-P.CRC_SIZE]))
    except FrameError as exc:
        exc.msg_type, exc.seq = msg_type, seq
        raise


def decode(wire: bytes) -> Received:
    """Decode the wire bytes of exactly one frame (the trailing 0x00 is optional); raises FrameError."""
    if wire.endswith(b"\x00"):
        wire = wire[:-1]
    if len(wire) > P.MAX_ENCODED - 1:
        raise FrameError(DecodeError.TOO_LONG, f"{len(wire)} encoded bytes")
    return parse_frame(cobs_decode(wire))


class FrameDecoder:
    """Streaming decoder: ``feed(chunk)`` returns the messages completed by the chunk, never raises.

    Bad frames are counted in ``errors`` (a dict DecodeError -> count) and passed to ``on_error``; an
    over-long run of bytes without 0x00 is counted once as TOO_LONG and skipped up to the next 0x00.
    Empty frames (consecutive 0x00, used to flush a link) are ignored.  ``frames_ok`` counts good frames.
    """

    def __init__(self, on_error: Callable[[FrameError], None] | None = None) -> None:
        self._buf = bytearray()
        self._skipping = False
        self.on_error = on_error
        self.errors: dict[DecodeError, int] = {k: 0 for k in DecodeError if k != DecodeError.OK}
        self.frames_ok = 0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def _error(self, exc: FrameError) -> None:
        self.errors[exc.kind] += 1
        if self.on_error is not None:
            self.on_error(exc)

    def reset(self) -> None:
        """Forget any partial frame (counters are kept)."""
        self._buf.clear()
        self._skipping = False

    def feed(self, chunk: bytes) -> list[Received]:
        out: list[Received] = []
        limit = P.MAX_ENCODED - 1
        start, n = 0, len(chunk)
        while start < n:
            z = chunk.find(0, start)
            part = chunk[start:n if z < 0 else z]
            if not self._skipping:
                self._buf += part
                if len(self._buf) > limit:
                    self._error(FrameError(DecodeError.TOO_LONG, f"more than {limit} bytes without a delimiter"))
                    self._buf.clear()
                    self._skipping = True
            if z < 0:
                break
            if not self._skipping and self._buf:
                try:
                    out.append(parse_frame(cobs_decode(bytes(self._buf))))
                    self.frames_ok += 1
                except FrameError as exc:
                    self._error(exc)
            self._buf.clear()
            self._skipping = False
            start = z + 1
        return out
