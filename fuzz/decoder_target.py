"""The decoder fuzz target: ``FrameDecoder.feed`` on any bytes, any split, any settings.

:func:`decoder_one_input` takes one ``bytes`` input and returns normally or raises.  Its
first bytes pick the pinned version, strict or lenient, ``max_frame_size`` and how the
rest is split.  Oracles: the result does not depend on how the bytes are split; it
equals a straightforward reference decoder built on ``check_header`` (and, without a
lower limit, a ``decode_frame`` loop); strict frames re-encode to exactly the bytes they
came from; a failed decoder stays failed with the same error; only
:class:`~smuxref.errors.ProtocolError` subclasses ever escape (fuzz/shared.py).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from fuzz.shared import FuzzInput, HarnessBug, require
from smuxref import Frame, FrameDecoder, ProtocolError, TruncatedFrameError, decode_frame
from smuxref._frame import CMD_BY_VALUE, HEADER, HEADER_SIZE, MAX_PAYLOAD, check_header

__all__ = ["MAX_FRAME_SIZES", "decoder_one_input"]

#: Decoder limits worth trying: around a header, around the default and the maximum.
MAX_FRAME_SIZES: Final = (0, 1, 7, 8, 9, 100, 32768, 65534, MAX_PAYLOAD)


@dataclass
class _Decoded:
    frames: list[Frame]
    error: type[ProtocolError] | None
    header: bytes
    #: Bytes held for an incomplete frame at the end (after an error: not compared).
    buffered: int


def _reference_decode(wire: bytes, version: int | None, limit: int, strict: bool) -> _Decoded:
    """What any decoder must make of ``wire``: one header at a time, no cleverness."""
    frames: list[Frame] = []
    pos = 0
    while len(wire) - pos >= HEADER_SIZE:
        header = wire[pos : pos + HEADER_SIZE]
        if strict:
            try:
                check_header(header, version, limit)
            except ProtocolError as exc:
                return _Decoded(frames, type(exc), header, -1)
        ver, cmd, length, sid = HEADER.unpack(header)
        end = pos + HEADER_SIZE + length
        if end > len(wire):
            break
        command: int = CMD_BY_VALUE[cmd] if cmd < len(CMD_BY_VALUE) else cmd
        frames.append(Frame(ver, command, sid, wire[pos + HEADER_SIZE : end]))
        pos = end
    return _Decoded(frames, None, b"", len(wire) - pos)


def _split(wire: bytes, rng: random.Random) -> list[bytes | bytearray | memoryview]:
    """Cut ``wire`` into pieces of random sizes (empty ones included) and buffer types."""
    pieces: list[bytes | bytearray | memoryview] = []
    pos = 0
    while pos < len(wire):
        size = rng.choice((0, 1, 1, 2, 3, 7, 8, 9, 16, rng.randrange(1, 70000)))
        piece = wire[pos : pos + size]
        pos += len(piece)
        kind = rng.randrange(4)
        if kind == 1:
            pieces.append(bytearray(piece))
        elif kind == 2:
            pieces.append(memoryview(piece))
        elif kind == 3:
            # A strided view: the decoder must copy it, not read it as flat memory.
            doubled = bytearray(2 * len(piece))
            doubled[::2] = piece
            pieces.append(memoryview(bytes(doubled))[::2])
        else:
            pieces.append(piece)
    return pieces


def _decode_pieces(
    pieces: Sequence[bytes | bytearray | memoryview],
    version: int | None,
    limit: int,
    strict: bool,
) -> _Decoded:
    decoder = FrameDecoder(version, limit, strict=strict)
    frames: list[Frame] = []
    # In strict mode a frame in progress is at most one header and an allowed payload;
    # a lenient decoder takes any LEN.
    bound = HEADER_SIZE + (limit if strict else MAX_PAYLOAD)
    for piece in pieces:
        try:
            frames += decoder.feed(piece)
        except ProtocolError as exc:
            frames += getattr(exc, "frames", [])
            require(len(exc.header) == HEADER_SIZE, f"error without its header: {exc!r}")
            _check_sticky(decoder, exc)
            return _Decoded(frames, type(exc), exc.header, -1)
        require(decoder.buffered <= bound, f"decoder holds {decoder.buffered} > {bound} bytes")
    buffered = decoder.buffered
    try:
        decoder.close()
    except TruncatedFrameError:
        require(buffered > 0, "close() reported a truncated frame with nothing buffered")
    else:
        require(buffered == 0, f"close() accepted {buffered} bytes of an unfinished frame")
    return _Decoded(frames, None, b"", buffered)


def _check_sticky(decoder: FrameDecoder, first: ProtocolError) -> None:
    """A failed decoder keeps failing with the same error, on feed and on close."""
    for call in (lambda: decoder.feed(b"\x01"), decoder.close):
        try:
            call()
        except ProtocolError as again:
            require(
                type(again) is type(first) and again.header == first.header,
                f"a failed decoder raised {again!r} after {first!r}",
            )
        else:
            raise HarnessBug(f"a failed decoder accepted more input after {first!r}")


def _decode_frame_loop(wire: bytes, version: int | None, strict: bool) -> _Decoded:
    """``decode_frame`` over a whole buffer: the one-shot decoder must agree too."""
    frames: list[Frame] = []
    pos = 0
    while pos < len(wire):
        try:
            frame, used = decode_frame(wire, pos, version=version, strict=strict)
        except TruncatedFrameError as exc:
            if len(exc.header) == HEADER_SIZE and strict:
                # A complete header: decode_frame checked it before finding the cut.
                return _Decoded(frames, None, b"", len(wire) - pos)
            return _Decoded(frames, None, b"", len(wire) - pos)
        except ProtocolError as exc:
            return _Decoded(frames, type(exc), exc.header, -1)
        frames.append(frame)
        pos += used
    return _Decoded(frames, None, b"", 0)


def decoder_one_input(data: bytes) -> None:
    """One run of the decoder target (see the module docstring)."""
    inp = FuzzInput(data)
    mode = inp.byte()
    version = (None, 1, 2)[mode % 3]
    strict = not mode & 0x80
    limit = inp.pick(MAX_FRAME_SIZES)
    rng = random.Random(inp.byte())
    wire = inp.rest()

    whole = _decode_pieces([wire], version, limit, strict)
    reference = _reference_decode(wire, version, limit, strict)
    require(
        whole == reference,
        f"FrameDecoder {whole} differs from the reference decoder {reference}",
    )
    chunked = _decode_pieces(_split(wire, rng), version, limit, strict)
    require(chunked == whole, f"split input decoded to {chunked}, whole input to {whole}")
    if limit == MAX_PAYLOAD:
        oneshot = _decode_frame_loop(wire, version, strict)
        require(oneshot == whole, f"decode_frame gave {oneshot}, FrameDecoder {whole}")
    encoded = b"".join(frame.encode() for frame in whole.frames)
    require(wire.startswith(encoded), "decoded frames do not re-encode to the input bytes")
    if strict:
        lenient = _decode_pieces([wire], version, limit, strict=False)
        require(lenient.error is None, f"a lenient decoder raised {lenient.error}")
        require(
            lenient.frames[: len(whole.frames)] == whole.frames,
            "strict frames are not a prefix of the lenient decoder's frames",
        )
