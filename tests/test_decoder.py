"""FrameDecoder: frames out of any segmentation, errors at the header, bounded memory."""

from __future__ import annotations

import random

import pytest
from strategies import split_at

from smuxref import (
    Cmd,
    Frame,
    FrameDecoder,
    FrameTooLargeError,
    InvalidLengthError,
    InvalidVersionError,
    ProtocolError,
    TruncatedFrameError,
    UnknownCommandError,
    Upd,
    encode_raw,
)

HI = Frame(1, Cmd.PSH, 3, b"hi")
HI_WIRE = bytes.fromhex("0102020003000000 6869")

#: A version 2 session's worth of frames: every command, empty and large payloads.
STREAM_FRAMES = [
    Frame(2, Cmd.SYN, 3),
    Frame(2, Cmd.PSH, 3, b"hello"),
    Frame(2, Cmd.PSH, 3, b""),
    Frame(2, Cmd.UPD, 3, Upd(5, 65536).encode()),
    Frame(2, Cmd.NOP, 0),
    Frame(2, Cmd.PSH, 5, bytes(range(256)) * 3),
    Frame(2, Cmd.SYN, 0xFFFFFFFF),
    Frame(2, Cmd.PSH, 0xFFFFFFFF, b"x"),
    Frame(2, Cmd.FIN, 3),
]
STREAM = b"".join(f.encode() for f in STREAM_FRAMES)
#: Where each frame of STREAM starts, and the end.
BOUNDARIES = [sum(8 + len(f.data) for f in STREAM_FRAMES[:i]) for i in range(len(STREAM_FRAMES))]


def feed_all(decoder: FrameDecoder, pieces: list[bytes]) -> list[Frame]:
    """Feed every piece, close, and return all frames."""
    frames: list[Frame] = []
    for piece in pieces:
        frames += decoder.feed(piece)
    decoder.close()
    return frames


# -- constructor -------------------------------------------------------------------


def test_defaults() -> None:
    """SPEC.md 6.2: by default a decoder takes versions 1 and 2 and any LEN to 65535."""
    decoder = FrameDecoder()
    assert decoder.version is None
    assert decoder.max_frame_size == 65535
    assert decoder.strict is True
    assert decoder.buffered == 0


@pytest.mark.parametrize("version", [0, 3, 255])
def test_rejects_unknown_version(version: int) -> None:
    """SPEC.md 4.1: a decoder can only be pinned to version 1 or 2."""
    with pytest.raises(ValueError, match="version must be 1, 2 or None"):
        FrameDecoder(version)


@pytest.mark.parametrize("limit", [-1, 65536])
def test_rejects_limit_outside_len_range(limit: int) -> None:
    """SPEC.md 6.2: max_frame_size must lie within the LEN range 0..65535."""
    with pytest.raises(ValueError, match=r"max_frame_size must be within 0\.\.65535"):
        FrameDecoder(2, limit)


# -- whole frames, any segmentation ------------------------------------------------


def test_hi_in_one_piece() -> None:
    """SPEC.md 4.1: the "hi" example decodes to its frame."""
    decoder = FrameDecoder(1)
    assert decoder.feed(HI_WIRE) == [HI]
    assert decoder.buffered == 0


@pytest.mark.parametrize("cut", range(len(HI_WIRE) + 1))
def test_hi_split_at_every_offset(cut: int) -> None:
    """SPEC.md 4.1: the "hi" frame comes out once and whole wherever the bytes are cut."""
    decoder = FrameDecoder(1)
    first = decoder.feed(HI_WIRE[:cut])
    assert decoder.buffered == (cut if cut < len(HI_WIRE) else 0)
    second = decoder.feed(HI_WIRE[cut:])
    assert first + second == [HI]
    assert (first, second) == (([HI], []) if cut == len(HI_WIRE) else ([], [HI]))
    assert decoder.buffered == 0
    decoder.close()


def test_stream_in_one_piece() -> None:
    """SPEC.md 4.2: a stream of every command decodes in order."""
    assert FrameDecoder(2).feed(STREAM) == STREAM_FRAMES


@pytest.mark.parametrize("cut", range(len(STREAM) + 1))
def test_stream_every_two_way_split(cut: int) -> None:
    """SPEC.md 4.1: every two-way split of a stream gives the same frames."""
    decoder = FrameDecoder(2)
    first = decoder.feed(STREAM[:cut])
    complete = [
        i for i, start in enumerate(BOUNDARIES) if start + 8 + len(STREAM_FRAMES[i].data) <= cut
    ]
    assert first == STREAM_FRAMES[: len(complete)]
    assert first + decoder.feed(STREAM[cut:]) == STREAM_FRAMES
    decoder.close()


def test_stream_byte_by_byte() -> None:
    """SPEC.md 4.1: one byte at a time, each frame comes out with its last byte."""
    decoder = FrameDecoder(2)
    ends = {start + 8 + len(f.data): f for start, f in zip(BOUNDARIES, STREAM_FRAMES, strict=True)}
    frames: list[Frame] = []
    for i in range(len(STREAM)):
        out = decoder.feed(STREAM[i : i + 1])
        assert out == ([ends[i + 1]] if i + 1 in ends else [])
        frames += out
    assert frames == STREAM_FRAMES
    decoder.close()


def test_stream_coalesced_with_itself() -> None:
    """SPEC.md 4.1: several streams' worth in one read decode as one long stream."""
    assert FrameDecoder(2).feed(STREAM * 3) == STREAM_FRAMES * 3


@pytest.mark.parametrize("seed", range(50))
def test_stream_random_splits(seed: int) -> None:
    """SPEC.md 4.1: random cuts, empty pieces included, give the same frames."""
    rng = random.Random(seed)
    data = STREAM * 2
    cuts = [rng.randrange(len(data) + 1) for _ in range(rng.randrange(1, 40))]
    assert feed_all(FrameDecoder(2), split_at(data, cuts)) == STREAM_FRAMES * 2


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_feed_bytes_like(kind: type[bytes] | type[bytearray] | type[memoryview]) -> None:
    """SPEC.md 4.1: feed takes any bytes-like object; payloads come out as bytes."""
    decoder = FrameDecoder(2)
    frames = decoder.feed(kind(STREAM[:20])) + decoder.feed(kind(STREAM[20:]))
    assert frames == STREAM_FRAMES
    assert all(type(f.data) is bytes for f in frames)
    assert all(type(f.cmd) is Cmd for f in frames)


def test_feed_non_byte_memoryview() -> None:
    """SPEC.md 4.1: a memoryview of wider items is fed as its raw bytes."""
    view = memoryview(HI_WIRE + b"\x00\x00").cast("H")
    decoder = FrameDecoder(1)
    assert decoder.feed(view) == [HI]
    assert decoder.buffered == 2


def test_feed_rejects_non_buffer() -> None:
    """SPEC.md 4.1: an int is not a byte string (not 5 zero bytes)."""
    with pytest.raises(TypeError):
        FrameDecoder().feed(5)  # type: ignore[arg-type]


def test_feed_empty() -> None:
    """SPEC.md 4.5: an empty read adds nothing and keeps what is buffered."""
    decoder = FrameDecoder(1)
    assert decoder.feed(b"") == []
    assert decoder.feed(HI_WIRE[:5]) == []
    assert decoder.feed(b"") == []
    assert decoder.buffered == 5
    assert decoder.feed(HI_WIRE[5:]) == [HI]


def test_payload_is_a_copy() -> None:
    """SPEC.md 4.1: a decoded payload does not change when the fed buffer does."""
    buf = bytearray(HI_WIRE)
    (frame,) = FrameDecoder(1).feed(buf)
    buf[8:10] = b"XX"
    assert frame.data == b"hi"


def test_both_versions_when_unpinned() -> None:
    """SPEC.md 4.1: an unpinned decoder takes version 1 and 2 frames alike."""
    wire = HI_WIRE + encode_raw(2, Cmd.UPD, 8, 1, bytes(8)) + encode_raw(1, Cmd.NOP, 0, 0)
    assert FrameDecoder().feed(wire) == [HI, Frame(2, Cmd.UPD, 1, bytes(8)), Frame(1, Cmd.NOP, 0)]


def test_version_1_stream() -> None:
    """SPEC.md 4.2: a version 1 decoder takes SYN, FIN, PSH and NOP."""
    frames = [Frame(1, Cmd.SYN, 3), HI, Frame(1, Cmd.NOP, 0), Frame(1, Cmd.FIN, 3)]
    assert FrameDecoder(1).feed(b"".join(f.encode() for f in frames)) == frames


# -- lengths and the receive limit ------------------------------------------------


def test_len_65535_accepted() -> None:
    """SPEC.md 6.2: a PSH of LEN 65535 is accepted whole."""
    frame = Frame(2, Cmd.PSH, 1, bytes(range(255)) * 257)
    assert len(frame.data) == 65535
    decoder = FrameDecoder(2)
    assert decoder.feed(frame.encode()[:30000]) == []
    assert decoder.feed(frame.encode()[30000:]) == [frame]


@pytest.mark.parametrize("version", [None, 1, 2])
def test_limit_is_inclusive(version: int | None) -> None:
    """SPEC.md 6.2: LEN equal to max_frame_size passes, one more is FrameTooLargeError."""
    ver = version or 1
    assert FrameDecoder(version, 100).feed(encode_raw(ver, Cmd.PSH, 100, 1, bytes(100))) == [
        Frame(ver, Cmd.PSH, 1, bytes(100))
    ]
    header = encode_raw(ver, Cmd.PSH, 101, 1)
    with pytest.raises(FrameTooLargeError, match="length 101 exceeds") as info:
        FrameDecoder(version, 100).feed(header)
    assert info.value.header == header
    assert info.value.field == "length"


def test_limit_zero_takes_empty_frames() -> None:
    """SPEC.md 6.2: with limit 0 only frames without payload pass."""
    decoder = FrameDecoder(2, 0)
    assert decoder.feed(encode_raw(2, Cmd.PSH, 0, 1) + encode_raw(2, Cmd.SYN, 0, 3)) == [
        Frame(2, Cmd.PSH, 1),
        Frame(2, Cmd.SYN, 3),
    ]
    with pytest.raises(FrameTooLargeError):
        decoder.feed(encode_raw(2, Cmd.PSH, 1, 1, b"x"))


def test_upd_above_small_limit() -> None:
    """SPEC.md 6.2: a limit below 8 rejects even a well-formed UPD."""
    with pytest.raises(FrameTooLargeError):
        FrameDecoder(2, 7).feed(encode_raw(2, Cmd.UPD, 8, 1, bytes(8)))
    assert FrameDecoder(2, 8).feed(encode_raw(2, Cmd.UPD, 8, 1, bytes(8))) == [
        Frame(2, Cmd.UPD, 1, bytes(8))
    ]


def test_limit_change_takes_effect() -> None:
    """SPEC.md 6.2: max_frame_size set after construction applies to the next header."""
    decoder = FrameDecoder(2)
    assert len(decoder.feed(encode_raw(2, Cmd.PSH, 50, 1, bytes(50)))) == 1
    decoder.max_frame_size = 10
    with pytest.raises(FrameTooLargeError):
        decoder.feed(encode_raw(2, Cmd.PSH, 50, 1, bytes(50)))


# -- header errors -----------------------------------------------------------------

BAD: list[tuple[str, int | None, bytes, type[ProtocolError], str]] = [
    ("v2-in-v1", 1, encode_raw(2, Cmd.SYN, 0, 3), InvalidVersionError, "version"),
    ("v1-in-v2", 2, encode_raw(1, Cmd.PSH, 0, 3), InvalidVersionError, "version"),
    ("v0-unpinned", None, encode_raw(0, Cmd.PSH, 0, 3), InvalidVersionError, "version"),
    ("v3-unpinned", None, encode_raw(3, Cmd.PSH, 0, 3), InvalidVersionError, "version"),
    ("cmd5", 1, encode_raw(1, 5, 0, 3), UnknownCommandError, "cmd"),
    ("cmd200", 2, encode_raw(2, 200, 0, 3), UnknownCommandError, "cmd"),
    ("upd-v1", 1, encode_raw(1, Cmd.UPD, 8, 3), UnknownCommandError, "cmd"),
    ("upd-v1-unpinned", None, encode_raw(1, Cmd.UPD, 8, 3), UnknownCommandError, "cmd"),
    ("syn-len1", 1, encode_raw(1, Cmd.SYN, 1, 3), InvalidLengthError, "length"),
    ("fin-len65535", 2, encode_raw(2, Cmd.FIN, 0xFFFF, 3), InvalidLengthError, "length"),
    ("nop-len8", None, encode_raw(2, Cmd.NOP, 8, 0), InvalidLengthError, "length"),
    ("upd-len4", 2, encode_raw(2, Cmd.UPD, 4, 3), InvalidLengthError, "length"),
    ("upd-len0", 2, encode_raw(2, Cmd.UPD, 0, 3), InvalidLengthError, "length"),
]


@pytest.mark.parametrize(
    ("version", "header", "error", "field"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_header(
    version: int | None, header: bytes, error: type[ProtocolError], field: str
) -> None:
    """SPEC.md 4.1-4.3: a bad header raises its class as soon as its 8 bytes are in."""
    decoder = FrameDecoder(version)
    assert decoder.feed(header[:7]) == []
    with pytest.raises(error) as info:
        decoder.feed(header[7:])
    assert type(info.value) is error
    assert info.value.field == field
    assert info.value.header == header
    assert info.value.frames == []  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("version", "header", "error", "field"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_header_after_good_frames(
    version: int | None, header: bytes, error: type[ProtocolError], field: str
) -> None:
    """SPEC.md 4.6: exc.frames holds the good frames of the call, nothing after the bad header."""
    ver = version or 2
    good = [Frame(ver, Cmd.SYN, 7), Frame(ver, Cmd.PSH, 7, b"data")]
    decoder = FrameDecoder(version)
    assert decoder.feed(Frame(ver, Cmd.NOP, 0).encode()) == [Frame(ver, Cmd.NOP, 0)]
    wire = b"".join(f.encode() for f in good) + header + bytes(64) + HI_WIRE
    with pytest.raises(error) as info:
        decoder.feed(wire)
    assert info.value.frames == good  # type: ignore[attr-defined]
    assert info.value.header == header
    assert info.value.field == field


def test_bad_header_after_buffered_partial_frame() -> None:
    """SPEC.md 4.6: a frame completed from earlier bytes counts among exc.frames."""
    decoder = FrameDecoder(2)
    wire = Frame(2, Cmd.PSH, 1, b"abc").encode()
    assert decoder.feed(wire[:4]) == []
    with pytest.raises(InvalidVersionError) as info:
        decoder.feed(wire[4:] + encode_raw(1, Cmd.PSH, 0, 1))
    assert info.value.frames == [Frame(2, Cmd.PSH, 1, b"abc")]  # type: ignore[attr-defined]


def test_bad_header_split_across_feeds() -> None:
    """SPEC.md 4.1: a bad header cut in two is reported once its 8th byte arrives."""
    decoder = FrameDecoder(1)
    header = encode_raw(1, 9, 0, 3)
    for i in range(7):
        assert decoder.feed(header[i : i + 1]) == []
    with pytest.raises(UnknownCommandError):
        decoder.feed(header[7:])


def test_stays_failed() -> None:
    """SPEC.md 4.6: after an error the decoder takes no more bytes and repeats the error."""
    decoder = FrameDecoder(2)
    with pytest.raises(InvalidVersionError) as first:
        decoder.feed(HI_WIRE)
    with pytest.raises(InvalidVersionError) as again:
        decoder.feed(Frame(2, Cmd.NOP, 0).encode())
    assert again.value is first.value
    with pytest.raises(InvalidVersionError) as empty:
        decoder.feed(b"")
    assert empty.value is first.value
    with pytest.raises(InvalidVersionError) as closing:
        decoder.close()
    assert closing.value is first.value


def test_repeated_error_does_not_grow_traceback() -> None:
    """SPEC.md 4.6: raising the stored error again does not pile up tracebacks."""
    decoder = FrameDecoder(2)
    depths = []
    for _ in range(5):
        with pytest.raises(InvalidVersionError) as info:
            decoder.feed(HI_WIRE)
        depth, tb = 0, info.value.__traceback__
        while tb is not None:
            depth, tb = depth + 1, tb.tb_next
        depths.append(depth)
    assert depths[1:] == [depths[1]] * 4


def test_hostile_length_rejected_before_payload() -> None:
    """SPEC.md 6.2: LEN 65535 above a limit of 100 fails with the header, nothing buffered."""
    decoder = FrameDecoder(2, 100)
    header = encode_raw(2, Cmd.PSH, 0xFFFF, 1)
    with pytest.raises(FrameTooLargeError) as info:
        decoder.feed(header)
    assert info.value.header == header
    assert decoder.buffered == 0


def test_bad_length_rejected_before_payload() -> None:
    """SPEC.md 4.3: a SYN announcing 65535 bytes fails at once, nothing buffered."""
    decoder = FrameDecoder(1)
    with pytest.raises(InvalidLengthError):
        decoder.feed(encode_raw(1, Cmd.SYN, 0xFFFF, 3) + b"abc")
    assert decoder.buffered == 0


# -- memory bound ------------------------------------------------------------------


def test_buffers_only_the_frame_in_progress() -> None:
    """SPEC.md 6.2: after whole frames and part of one, only that part is held."""
    decoder = FrameDecoder(2)
    frame = Frame(2, Cmd.PSH, 1, bytes(1000))
    wire = STREAM + frame.encode()
    assert decoder.feed(wire[: len(STREAM) + 500]) == STREAM_FRAMES
    assert decoder.buffered == 500
    assert decoder.feed(wire[len(STREAM) + 500 :]) == [frame]
    assert decoder.buffered == 0


def test_buffer_never_exceeds_one_frame() -> None:
    """SPEC.md 6.2: fed byte by byte, a 65535-byte frame never holds more than 8 + 65535."""
    frame = Frame(2, Cmd.PSH, 1, bytes(65535))
    wire = frame.encode() + HI_WIRE[:3]
    decoder = FrameDecoder()
    most = 0
    for i in range(0, len(wire), 97):
        out = decoder.feed(wire[i : i + 97])
        most = max(most, decoder.buffered)
        assert decoder.buffered <= 8 + 65535
        if out:
            assert out == [frame]
            assert decoder.buffered == len(wire) - (8 + 65535)
    assert most <= 8 + 65535
    assert decoder.buffered == 3


def test_buffered_counts_exactly() -> None:
    """SPEC.md 4.5: buffered is the number of bytes of the incomplete frame."""
    decoder = FrameDecoder(2)
    for i, byte in enumerate(STREAM[: BOUNDARIES[6]]):
        decoder.feed(bytes([byte]))
        started = max(b for b in [*BOUNDARIES, BOUNDARIES[-1]] if b <= i + 1)
        assert decoder.buffered == i + 1 - started


# -- close and truncation ----------------------------------------------------------


def test_close_at_boundary() -> None:
    """SPEC.md 4.5: an end at a frame boundary is an orderly end."""
    decoder = FrameDecoder(1)
    decoder.close()
    assert decoder.feed(HI_WIRE) == [HI]
    decoder.close()


@pytest.mark.parametrize("size", range(1, 8))
def test_close_mid_header(size: int) -> None:
    """SPEC.md 4.5: an end inside a header is a TruncatedFrameError on the header."""
    decoder = FrameDecoder(1)
    decoder.feed(HI_WIRE + HI_WIRE[:size])
    with pytest.raises(TruncatedFrameError, match=f"ended {size} bytes into a header") as info:
        decoder.close()
    assert info.value.field == "header"
    assert info.value.header == HI_WIRE[:size]
    assert decoder.buffered == 0


@pytest.mark.parametrize("size", [8, 9])
def test_close_mid_payload(size: int) -> None:
    """SPEC.md 4.5: an end inside a payload is a TruncatedFrameError on LEN, with the header."""
    decoder = FrameDecoder(1)
    assert decoder.feed(HI_WIRE[:size]) == []
    with pytest.raises(
        TruncatedFrameError, match=f"ended {size - 8} bytes into a 2-byte payload"
    ) as info:
        decoder.close()
    assert info.value.field == "length"
    assert info.value.header == HI_WIRE[:8]


def test_close_appendix_truncated_example() -> None:
    """SPEC.md 4.5: 3 of 10 payload bytes, then the end, is a truncated frame."""
    decoder = FrameDecoder(2)
    assert decoder.feed(bytes.fromhex("02020a0003000000616263")) == []
    with pytest.raises(TruncatedFrameError):
        decoder.close()


# -- lenient mode ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "frame"),
    [
        (encode_raw(1, 200, 0, 5), Frame(1, 200, 5)),
        (encode_raw(7, Cmd.PSH, 3, 5, b"abc"), Frame(7, Cmd.PSH, 5, b"abc")),
        (encode_raw(1, Cmd.SYN, 2, 5, b"zz"), Frame(1, Cmd.SYN, 5, b"zz")),
        (encode_raw(1, Cmd.UPD, 1, 5, b"u"), Frame(1, Cmd.UPD, 5, b"u")),
        (encode_raw(2, Cmd.PSH, 500, 5, bytes(500)), Frame(2, Cmd.PSH, 5, bytes(500))),
        (encode_raw(0, 5, 0xFFFF, 0, bytes(0xFFFF)), Frame(0, 5, 0, bytes(0xFFFF))),
    ],
    ids=["cmd200", "version7", "syn-payload", "upd-v1", "above-limit", "all-odd"],
)
@pytest.mark.parametrize("version", [None, 1, 2])
def test_lenient_returns_what_was_sent(wire: bytes, frame: Frame, version: int | None) -> None:
    """SPEC.md 4.2: strict=False hands back every field, whatever the version or limit."""
    decoder = FrameDecoder(version, 100, strict=False)
    out = decoder.feed(wire[:5]) + decoder.feed(wire[5:])
    assert out == [frame]
    assert type(out[0].cmd) is (Cmd if frame.cmd < 5 else int)
    decoder.close()


def test_lenient_still_reports_truncation() -> None:
    """SPEC.md 4.5: a lenient decoder still reports a frame cut off at close."""
    decoder = FrameDecoder(strict=False)
    decoder.feed(encode_raw(9, 9, 10, 9, b"abc"))
    with pytest.raises(TruncatedFrameError):
        decoder.close()


def test_lenient_pinned_psh_of_other_version() -> None:
    """SPEC.md 4.1: a lenient decoder pinned to 2 still returns a version 1 PSH as sent."""
    decoder = FrameDecoder(2, strict=False)
    assert decoder.feed(HI_WIRE + Frame(2, Cmd.PSH, 3, b"v2").encode()) == [
        HI,
        Frame(2, Cmd.PSH, 3, b"v2"),
    ]


def test_missing_counts_what_the_frame_in_progress_lacks() -> None:
    """``missing``: the rest of the header while it is incomplete, then the rest of the
    frame; 0 on a frame boundary (what RawConnection.read_to_frame_boundary relies on)."""
    wire = Frame(1, Cmd.PSH, 3, b"0123456789").encode()
    decoder = FrameDecoder()
    assert decoder.missing == 0
    decoder.feed(wire[:3])
    assert decoder.missing == 5
    decoder.feed(wire[3:12])
    assert decoder.missing == len(wire) - 12
    assert decoder.feed(wire[12:]) == [Frame(1, Cmd.PSH, 3, b"0123456789")]
    assert decoder.missing == 0
