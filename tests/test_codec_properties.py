"""Properties of the codec over generated frames, segmentations and garbage (Hypothesis).

Deadlines are off: a loaded CI machine may take longer than Hypothesis' 200 ms for one
example, and a slow example is not a failure here.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from strategies import chunkings, damaged_streams, frame_streams, frames, raw_headers, split_at

from smuxref import (
    Frame,
    FrameDecoder,
    ProtocolError,
    TruncatedFrameError,
    decode_frame,
)
from smuxref._frame import check_header


def encode_all(items: list[Frame]) -> bytes:
    return b"".join(f.encode() for f in items)


@given(frames())
@settings(deadline=None)
def test_decode_frame_inverts_encode(frame: Frame) -> None:
    """SPEC.md 4.1: decode_frame(encode(f)) gives f back and takes all its bytes."""
    wire = frame.encode()
    assert len(wire) == 8 + len(frame.data)
    assert decode_frame(wire, version=frame.version) == (frame, len(wire))
    assert decode_frame(wire) == (frame, len(wire))


@given(frames(max_payload=65535))
@settings(max_examples=30, deadline=None)
def test_decoder_inverts_encode_up_to_max_len(frame: Frame) -> None:
    """SPEC.md 6.2: any frame up to LEN 65535 comes back from the decoder unchanged."""
    assert FrameDecoder(frame.version).feed(frame.encode()) == [frame]


@given(frames())
@settings(deadline=None)
def test_encode_of_decoded_is_identity(frame: Frame) -> None:
    """SPEC.md 4.1: re-encoding a decoded frame gives the same bytes."""
    wire = frame.encode()
    assert decode_frame(wire)[0].encode() == wire


@given(st.data(), frame_streams(min_size=1))
@settings(deadline=None)
def test_any_chunking_gives_the_same_frames(data: st.DataObject, stream: list[Frame]) -> None:
    """SPEC.md 4.1: however the bytes are cut into reads, the same frames come out."""
    wire = encode_all(stream)
    pieces = data.draw(chunkings(wire))
    assert b"".join(pieces) == wire
    decoder = FrameDecoder(stream[0].version)
    out: list[Frame] = []
    for piece in pieces:
        out += decoder.feed(piece)
    assert out == stream
    assert decoder.buffered == 0
    decoder.close()


@given(frame_streams(min_size=1))
@settings(deadline=None)
def test_byte_by_byte_gives_the_same_frames(stream: list[Frame]) -> None:
    """SPEC.md 4.1: one byte per read gives the same frames as one read."""
    wire = encode_all(stream)
    decoder = FrameDecoder()
    out: list[Frame] = []
    for i in range(len(wire)):
        out += decoder.feed(wire[i : i + 1])
    assert out == stream == FrameDecoder().feed(wire)


@given(st.data(), frame_streams(min_size=1))
@settings(deadline=None)
def test_buffered_is_the_frame_in_progress(data: st.DataObject, stream: list[Frame]) -> None:
    """SPEC.md 6.2: after any read, the decoder holds exactly the incomplete frame's bytes."""
    wire = encode_all(stream)
    starts = [0]
    for frame in stream:
        starts.append(starts[-1] + 8 + len(frame.data))
    decoder = FrameDecoder(stream[0].version)
    fed = 0
    done = 0
    for piece in data.draw(chunkings(wire)):
        done += len(decoder.feed(piece))
        fed += len(piece)
        in_progress = max(s for s in starts if s <= fed)
        assert decoder.buffered == fed - in_progress
        assert done == starts.index(in_progress)


@given(damaged_streams())
@settings(deadline=None)
@example(bytes.fromhex("01ff"))
@example(bytes.fromhex("0102ffff03000000"))
@example(bytes.fromhex("02040400030000000000"))
def test_strict_decoder_raises_only_protocol_errors(garbage: bytes) -> None:
    """SPEC.md 4.6: any bytes into a strict decoder give frames or a ProtocolError, nothing else."""
    for version in (None, 1, 2):
        decoder = FrameDecoder(version, 100)
        try:
            decoder.feed(garbage)
            decoder.close()
        except ProtocolError:
            pass


@given(st.data(), damaged_streams(2))
@settings(deadline=None)
def test_strict_decoder_agrees_with_decode_frame(data: st.DataObject, wire: bytes) -> None:
    """SPEC.md 4.5: the decoder, fed in pieces, sees what decode_frame sees frame by frame."""
    expected: list[Frame] = []
    expected_error: type[ProtocolError] | None = None
    offset = 0
    while offset < len(wire):
        try:
            frame, used = decode_frame(wire, offset, version=2)
        except ProtocolError as exc:
            expected_error = type(exc)
            break
        expected.append(frame)
        offset += used
    decoder = FrameDecoder(2)
    out: list[Frame] = []
    error: type[ProtocolError] | None = None
    try:
        for piece in data.draw(chunkings(wire)):
            try:
                out += decoder.feed(piece)
            except ProtocolError as exc:
                out += exc.frames  # type: ignore[attr-defined]
                raise
        decoder.close()
    except ProtocolError as exc:
        error = type(exc)
    assert out == expected
    assert error is expected_error


@given(damaged_streams(2))
@settings(deadline=None)
def test_strict_decoder_error_frames(wire: bytes) -> None:
    """SPEC.md 4.6: exc.frames re-encode to exactly the bytes before the bad header."""
    decoder = FrameDecoder(2)
    error: ProtocolError | None = None
    try:
        good = decoder.feed(wire)
    except ProtocolError as exc:
        error = exc
        good = exc.frames  # type: ignore[attr-defined]
    prefix = encode_all(good)
    assert wire.startswith(prefix)
    if error is not None:
        assert error.header == wire[len(prefix) : len(prefix) + 8]
        assert len(error.header) == 8


@given(damaged_streams())
@settings(deadline=None)
@example(bytes.fromhex("00000000000000"))
def test_decode_frame_raises_only_protocol_errors(garbage: bytes) -> None:
    """SPEC.md 4.5: decode_frame on any bytes gives a frame or a ProtocolError, nothing else."""
    for strict in (True, False):
        try:
            frame, used = decode_frame(garbage, strict=strict)
        except ProtocolError:
            continue
        assert used == 8 + len(frame.data) <= len(garbage)


@given(raw_headers())
@settings(deadline=None)
def test_check_header_raises_only_protocol_errors(header: bytes) -> None:
    """SPEC.md 4.1: check_header accepts a header or names its fault, never struct.error."""
    for version in (None, 1, 2):
        error: ProtocolError | None = None
        try:
            fields = check_header(header, version, 100)
        except ProtocolError as exc:
            error = exc
        if error is None:
            assert fields == struct.unpack("<BBHI", header)
        else:
            assert error.header == header
            assert error.field in {"version", "cmd", "length"}


@given(st.data(), damaged_streams())
@settings(deadline=None)
def test_lenient_decoder_never_raises_before_close(data: st.DataObject, garbage: bytes) -> None:
    """SPEC.md 4.2: strict=False takes any bytes; its frames plus the rest rebuild them."""
    decoder = FrameDecoder(2, 10, strict=False)
    out: list[Frame] = []
    for piece in data.draw(chunkings(garbage)):
        out += decoder.feed(piece)
    prefix = encode_all(out)
    assert garbage.startswith(prefix)
    assert decoder.buffered == len(garbage) - len(prefix)
    if decoder.buffered:
        with pytest.raises(TruncatedFrameError) as info:
            decoder.close()
        assert info.value.header == garbage[len(prefix) : len(prefix) + 8]
    else:
        decoder.close()


@given(raw_headers(), st.binary(max_size=20))
@settings(deadline=None)
def test_lenient_decoder_header_fields(header: bytes, payload: bytes) -> None:
    """SPEC.md 4.1: a lenient decoder reports every header field as sent."""
    ver, cmd, length, sid = struct.unpack("<BBHI", header)
    decoder = FrameDecoder(strict=False)
    out = decoder.feed(header + payload)
    if length <= len(payload):
        assert out == [Frame(ver, cmd, sid, payload[:length]), *out[1:]]
    else:
        assert out == []
        assert decoder.buffered == 8 + len(payload)


@given(st.data(), frame_streams(min_size=1), raw_headers())
@settings(deadline=None)
def test_split_at_is_a_partition(data: st.DataObject, stream: list[Frame], header: bytes) -> None:
    """SPEC.md 4.1: the chunkings helper only ever cuts, never drops or adds bytes."""
    wire = encode_all(stream) + header
    cuts = data.draw(st.lists(st.integers(0, len(wire))))
    pieces = split_at(wire, cuts)
    assert b"".join(pieces) == wire
    assert len(pieces) == len(cuts) + 1
