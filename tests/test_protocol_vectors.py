"""Golden vectors (protocol/vectors.json) decode and encode exactly; COBS and CRC against known values."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from dopa_rl.protocol import messages as P
from dopa_rl.protocol import codec

VECTORS = json.loads((Path(__file__).resolve().parents[1] / "protocol" / "vectors.json").read_text())["vectors"]


def test_crc_check_value() -> None:
    assert codec.crc16(b"123456789") == 0x29B1  # catalogue check value of CRC-16/CCITT-FALSE
    assert codec.crc16(b"") == 0xFFFF


@pytest.mark.parametrize("raw,enc", [
    (b"", b"\x01"), (b"\x00", b"\x01\x01"), (b"\x00\x00", b"\x01\x01\x01"),
    (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"), (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
    (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
    (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255)) + b"\x01"),
])
def test_cobs_known_examples(raw: bytes, enc: bytes) -> None:
    assert codec.cobs_encode(raw) == enc
    assert codec.cobs_decode(enc) == raw


def test_every_message_type_has_a_vector() -> None:
    named = {v["type"] for v in VECTORS if v["error"] == "OK"}
    assert named == {s.id for s in P.MESSAGES}
    assert {v["error"] for v in VECTORS} == {k.name for k in P.DecodeError}


@pytest.mark.parametrize("vec", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector(vec: dict) -> None:
    wire = bytes.fromhex(vec["wire"])
    assert wire.endswith(b"\x00") and b"\x00" not in wire[:-1]
    errors: list[codec.FrameError] = []
    dec = codec.FrameDecoder(on_error=errors.append)
    got = dec.feed(wire)
    if vec["error"] == "OK":
        assert errors == [] and len(got) == 1
        rec = got[0]
        assert rec.seq == vec["seq"] and rec.type == vec["type"]
        expected = {k: (tuple(v) if isinstance(v, list) else v) for k, v in vec["fields"].items()}
        assert rec.msg._asdict() == expected
        assert codec.cobs_decode(wire[:-1]) == bytes.fromhex(vec["raw"])
        # encoding the decoded fields gives exactly the same bytes
        assert codec.encode(codec.message(vec["type"], **vec["fields"]), vec["seq"]) == wire
    else:
        assert got == [] and len(errors) == 1
        assert errors[0].kind.name == vec["error"]
        assert dec.errors[P.DecodeError[vec["error"]]] == 1
        if "seq" in vec:  # header readable: a device answers NACK with this seq
            assert (errors[0].msg_type, errors[0].seq) == (vec["type"], vec["seq"])
        with pytest.raises(codec.FrameError):
            codec.decode(wire)


def test_little_endian_layout_by_hand() -> None:
    ack = P.Ack(t_us=0x04030201, cmd_seq=0x0605, cmd_type=0x10, value=-2)
    raw = codec.build_frame(P.MsgId.ACK, 0x0201, codec.encode_body(ack))
    assert raw[:-2] == bytes([0x80, 0x01, 0x02, 1, 2, 3, 4, 5, 6, 0x10, 0xFE, 0xFF, 0xFF, 0xFF])
    assert raw[-2:] == codec.crc16(raw[:-2]).to_bytes(2, "little")


def test_encode_rejects_out_of_range() -> None:
    with pytest.raises(ValueError):
        codec.encode(P.ValvePulse(ms=70000), 1)
    with pytest.raises(ValueError):
        codec.encode(P.AnalogBatch(t_us=0, rate_hz=1, n=1, samples=(1, 2)), 1)
