"""Hypothesis properties of the codec: round trip, robustness to garbage, resynchronisation."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dopa_rl.protocol import messages as P
from dopa_rl.protocol import codec

RANGES = {"u8": (0, 0xFF), "u16": (0, 0xFFFF), "u32": (0, 0xFFFFFFFF), "i32": (-(2**31), 2**31 - 1)}
FAST = settings(max_examples=200, deadline=None)


def _field(typ: str, count: int) -> st.SearchStrategy:
    ints = st.integers(*RANGES[typ])
    return st.tuples(*[ints] * count) if count > 1 else ints


def _message(spec: P.MessageSpec) -> st.SearchStrategy:
    return st.builds(spec.cls, *[_field(t, c) for _n, t, c in spec.fields]) if spec.fields else st.just(spec.cls())


messages = st.sampled_from(P.MESSAGES).flatmap(_message)
seqs = st.integers(0, 0xFFFF)


@FAST
@given(messages, seqs)
def test_round_trip_every_message(msg, seq) -> None:
    wire = codec.encode(msg, seq)
    assert b"\x00" not in wire[:-1] and len(wire) <= P.MAX_ENCODED
    assert codec.decode(wire) == codec.Received(seq, msg)
    dec = codec.FrameDecoder()
    # byte-by-byte feeding gives the same result
    out = [r for b in wire for r in dec.feed(bytes([b]))]
    assert out == [codec.Received(seq, msg)] and dec.error_count == 0


@FAST
@given(st.binary(max_size=400), st.lists(st.integers(1, 50), max_size=20))
def test_garbage_never_crashes(data, cuts) -> None:
    dec = codec.FrameDecoder()
    pos = 0
    out = []
    for c in cuts:
        out += dec.feed(data[pos:pos + c])
        pos += c
    out += dec.feed(data[pos:])
    # everything returned is a well-typed message; every other non-empty frame is a counted error
    for r in out:
        assert type(r.msg) in P.SPEC_BY_CLASS
    assert dec.frames_ok == len(out)
    assert dec.error_count <= data.count(0) + 1 + len(data) // (P.MAX_ENCODED - 1)


@FAST
@given(st.lists(st.tuples(messages, seqs), min_size=2, max_size=6), st.data())
def test_resync_after_corruption(frames, data) -> None:
    wires = [codec.encode(m, s) for m, s in frames]
    stream = bytearray(b"".join(wires))
    k = data.draw(st.integers(0, len(wires) - 1), label="corrupted frame")
    start = sum(len(w) for w in wires[:k])
    i = data.draw(st.integers(start, start + len(wires[k]) - 1), label="byte")
    mode = data.draw(st.sampled_from(["flip", "drop", "insert"]), label="mode")
    if mode == "flip":
        stream[i] ^= data.draw(st.integers(1, 255))
    elif mode == "drop":
        del stream[i]
    else:
        stream.insert(i, data.draw(st.integers(0, 255)))
    dec = codec.FrameDecoder()
    out = dec.feed(bytes(stream))
    # resync point: the first 0x00 at or after the corruption; hitting frame k's own delimiter (flip or
    # drop) merges frames k and k+1, so the first frame guaranteed intact is then k+2
    hits_delimiter = i == start + len(wires[k]) - 1 and mode in ("flip", "drop")
    first_intact = k + 2 if hits_delimiter else k + 1
    expected_after = [codec.Received(s, m) for m, s in frames[first_intact:]]
    # every frame after the corrupted one is decoded intact and in order
    assert out[len(out) - len(expected_after):] == expected_after
    # frames before it are intact too
    assert out[:k] == [codec.Received(s, m) for m, s in frames[:k]]
    # the corrupted region yields at most two messages' worth of surprises (a split frame), never a crash
    assert len(out) <= len(frames) + 1
