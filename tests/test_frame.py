"""The frame codec: constants, exact wire bytes, and every header error (SPEC.md 4, 6.2)."""

from __future__ import annotations

import pytest

import smuxref
from smuxref import (
    HEADER_SIZE,
    INITIAL_PEER_WINDOW,
    MAX_PAYLOAD,
    Cmd,
    Frame,
    FrameTooLargeError,
    InvalidLengthError,
    InvalidVersionError,
    ProtocolError,
    SmuxError,
    TruncatedFrameError,
    UnknownCommandError,
    Upd,
    decode_frame,
    encode_raw,
)
from smuxref._frame import UPD_SIZE, VERSIONS, check_header

# The example frames of the protocol, with their exact bytes.
HI = Frame(1, Cmd.PSH, 3, b"hi")
HI_WIRE = bytes.fromhex("0102020003000000 6869")
SYN_V1 = Frame(1, Cmd.SYN, 3)
SYN_V1_WIRE = bytes.fromhex("0100000003000000")
NOP_V1 = Frame(1, Cmd.NOP, 0)
NOP_V1_WIRE = bytes.fromhex("0103000000000000")
UPD_V2 = Frame(2, Cmd.UPD, 3, Upd(4000, 65536).encode())
UPD_V2_WIRE = bytes.fromhex("0204080003000000 a00f0000 00000100")

KNOWN = [
    (HI, HI_WIRE),
    (SYN_V1, SYN_V1_WIRE),
    (NOP_V1, NOP_V1_WIRE),
    (UPD_V2, UPD_V2_WIRE),
    (Frame(2, Cmd.FIN, 0xFFFFFFFF), bytes.fromhex("02010000ffffffff")),
    (Frame(2, Cmd.SYN, 1), bytes.fromhex("0200000001000000")),
    (Frame(2, Cmd.NOP, 0), bytes.fromhex("0203000000000000")),
    (Frame(2, Cmd.PSH, 0x01020304, b""), bytes.fromhex("0202000004030201")),
    (Frame(1, Cmd.FIN, 0x100), bytes.fromhex("0101000000010000")),
]


# -- constants ---------------------------------------------------------------------


def test_header_size_is_eight() -> None:
    """SPEC.md 4.1: the header is 8 bytes, and a UPD payload 8 more."""
    assert HEADER_SIZE == 8
    assert UPD_SIZE == 8
    assert smuxref.HEADER_SIZE == 8


def test_versions_are_one_and_two() -> None:
    """SPEC.md 4.1: the version byte is 1 or 2."""
    assert VERSIONS == (1, 2)


def test_command_values() -> None:
    """SPEC.md 4.2: SYN 0, FIN 1, PSH 2, NOP 3, UPD 4, and no other command."""
    assert [(c.name, c.value) for c in Cmd] == [
        ("SYN", 0),
        ("FIN", 1),
        ("PSH", 2),
        ("NOP", 3),
        ("UPD", 4),
    ]


def test_max_payload_is_u16_max() -> None:
    """SPEC.md 6.2: LEN is a u16, so a receiver must take up to 65535 bytes."""
    assert MAX_PAYLOAD == 65535


def test_initial_peer_window() -> None:
    """SPEC.md 9.1: a version 2 sender starts with a 262144-byte window."""
    assert INITIAL_PEER_WINDOW == 262144


# -- encoding ----------------------------------------------------------------------


@pytest.mark.parametrize(("frame", "wire"), KNOWN)
def test_encode_known_frames(frame: Frame, wire: bytes) -> None:
    """SPEC.md 4.1: VER, CMD, LEN (u16 LE), SID (u32 LE), then the payload."""
    assert frame.encode() == wire


def test_encode_psh_hi() -> None:
    """SPEC.md 4.1: the PSH "hi" example of the specification, byte for byte."""
    assert Frame(1, Cmd.PSH, 3, b"hi").encode() == bytes.fromhex("01020200030000006869")


def test_encode_upd_example() -> None:
    """SPEC.md 4.4: UPD consumed 4000 window 65536 on sid 3, byte for byte."""
    assert UPD_V2.encode() == bytes.fromhex("0204080003000000a00f000000000100")
    assert UPD_V2.data == bytes.fromhex("a00f000000000100")


@pytest.mark.parametrize(("frame", "wire"), KNOWN)
def test_bytes_is_encode(frame: Frame, wire: bytes) -> None:
    """SPEC.md 4.1: bytes(frame) gives the same wire bytes as encode()."""
    assert bytes(frame) == wire


def test_encode_length_is_payload_size() -> None:
    """SPEC.md 4.3: LEN is the payload's size, little-endian, up to 65535."""
    wire = Frame(2, Cmd.PSH, 7, b"\xab" * 0x1234).encode()
    assert wire[:8] == bytes.fromhex("0202341207000000")
    assert len(wire) == 8 + 0x1234
    full = Frame(2, Cmd.PSH, 7, bytes(65535)).encode()
    assert full[2:4] == b"\xff\xff"
    assert len(full) == 8 + 65535


def test_encode_accepts_bytes_like_payload() -> None:
    """SPEC.md 4.1: a bytearray or memoryview payload encodes like bytes."""
    assert Frame(1, Cmd.PSH, 3, bytearray(b"hi")).encode() == HI_WIRE  # type: ignore[arg-type]
    assert Frame(1, Cmd.PSH, 3, memoryview(b"hi")).encode() == HI_WIRE  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "frame",
    [
        Frame(256, Cmd.PSH, 0),
        Frame(-1, Cmd.PSH, 0),
        Frame(1, 256, 0),
        Frame(1, Cmd.PSH, 1 << 32),
        Frame(1, Cmd.PSH, -1),
        Frame(1, Cmd.PSH, 0, bytes(65536)),
    ],
    ids=["ver256", "ver-1", "cmd256", "sid2^32", "sid-1", "len65536"],
)
def test_encode_rejects_out_of_range_fields(frame: Frame) -> None:
    """SPEC.md 4.1: a field that does not fit its width is a ValueError, not a struct.error."""
    with pytest.raises(ValueError, match="frame field out of range"):
        frame.encode()


def test_frame_defaults_and_length() -> None:
    """SPEC.md 4.3: a frame without payload has LEN 0; length is len(data)."""
    frame = Frame(2, Cmd.SYN, 5)
    assert frame.data == b""
    assert frame.length == 0
    assert HI.length == 2
    assert tuple(HI) == (1, Cmd.PSH, 3, b"hi")


def test_frame_repr() -> None:
    """SPEC.md 4.2: repr names the command, or shows the number of an unknown one."""
    assert repr(HI) == "Frame(v1, PSH, sid=3, len=2, data=b'hi')"
    assert repr(Frame(7, 200, 1)) == "Frame(v7, 200, sid=1, len=0, data=b'')"
    long = Frame(2, Cmd.PSH, 1, bytes(range(20)))
    assert repr(long) == (
        "Frame(v2, PSH, sid=1, len=20, data=b'\\x00\\x01\\x02\\x03\\x04\\x05\\x06\\x07"
        "\\x08\\t\\n\\x0b\\x0c\\r\\x0e\\x0f...')"
    )


# -- encode_raw --------------------------------------------------------------------


def test_encode_raw_writes_any_header() -> None:
    """SPEC.md 4.3: encode_raw writes LEN as given, even when it does not match the payload."""
    assert encode_raw(1, Cmd.SYN, 5, 3, b"abc") == bytes.fromhex("0100050003000000") + b"abc"
    assert encode_raw(9, 200, 0xFFFF, 0xFFFFFFFF) == bytes.fromhex("09c8ffffffffffff")


def test_encode_raw_masks_fields() -> None:
    """SPEC.md 4.1: encode_raw masks each field to its width instead of failing."""
    assert encode_raw(0x102, 0x103, 0x10002, 1 << 32 | 7) == bytes.fromhex("0203020007000000")
    assert encode_raw(-1, -1, -1, -1) == b"\xff" * 8


@pytest.mark.parametrize(("frame", "wire"), KNOWN)
def test_encode_raw_matches_encode(frame: Frame, wire: bytes) -> None:
    """SPEC.md 4.1: with a true LEN, encode_raw gives the bytes encode() gives."""
    assert encode_raw(frame.version, frame.cmd, len(frame.data), frame.sid, frame.data) == wire


# -- UPD payload -------------------------------------------------------------------


def test_upd_encode_decode() -> None:
    """SPEC.md 4.4: the UPD payload is consumed (u32 LE) then window (u32 LE)."""
    assert Upd(4000, 65536).encode() == bytes.fromhex("a00f000000000100")
    assert bytes(Upd(1, 2)) == bytes.fromhex("0100000002000000")
    assert Upd.decode(bytes.fromhex("a00f000000000100")) == Upd(4000, 65536)
    assert Upd.decode(b"\xff" * 8) == Upd(0xFFFFFFFF, 0xFFFFFFFF)


def test_upd_encode_wraps_consumed() -> None:
    """SPEC.md 4.4: consumed is a u32 counter that wraps, so encode masks it to 32 bits."""
    assert Upd(1 << 32 | 5, 7).encode() == bytes.fromhex("0500000007000000")
    assert Upd(-1, 0).encode() == bytes.fromhex("ffffffff00000000")


def test_frame_upd() -> None:
    """SPEC.md 4.4: Frame.upd() parses the payload of a UPD frame."""
    assert UPD_V2.upd() == Upd(4000, 65536)
    assert UPD_V2.upd().consumed == 4000
    assert UPD_V2.upd().window == 65536


@pytest.mark.parametrize("size", [0, 7, 9])
def test_frame_upd_wrong_size(size: int) -> None:
    """SPEC.md 4.4: a UPD payload that is not 8 bytes is an InvalidLengthError naming LEN."""
    frame = Frame(2, Cmd.UPD, 3, bytes(size))
    with pytest.raises(InvalidLengthError, match="UPD payload must be 8 bytes") as info:
        frame.upd()
    assert info.value.field == "length"
    assert info.value.header == bytes([2, 4, size, 0, 3, 0, 0, 0])


@pytest.mark.parametrize("size", [0, 3, 7, 9, 16])
def test_upd_decode_wrong_size(size: int) -> None:
    """SPEC.md 4.4: Upd.decode of a payload that is not 8 bytes is an InvalidLengthError."""
    with pytest.raises(InvalidLengthError, match=f"got {size}") as info:
        Upd.decode(bytes(size))
    assert info.value.field == "length"


# -- decode_frame: good frames -----------------------------------------------------


@pytest.mark.parametrize(("frame", "wire"), KNOWN)
def test_decode_known_frames(frame: Frame, wire: bytes) -> None:
    """SPEC.md 4.1: decoding the known bytes gives the frame and its size."""
    decoded, used = decode_frame(wire)
    assert decoded == frame
    assert used == len(wire)
    assert type(decoded.cmd) is Cmd
    assert type(decoded.data) is bytes


def test_decode_psh_hi_fields() -> None:
    """SPEC.md 4.1: each field of the "hi" example comes back."""
    frame, used = decode_frame(HI_WIRE)
    assert (frame.version, frame.cmd, frame.sid, frame.data, used) == (1, Cmd.PSH, 3, b"hi", 10)


def test_decode_at_offset_leaves_the_rest() -> None:
    """SPEC.md 4.1: decode_frame reads one frame at offset and reports the bytes it took."""
    buf = SYN_V1_WIRE + HI_WIRE + NOP_V1_WIRE
    first, used1 = decode_frame(buf)
    second, used2 = decode_frame(buf, used1)
    third, used3 = decode_frame(buf, used1 + used2)
    assert [first, second, third] == [SYN_V1, HI, NOP_V1]
    assert (used1, used2, used3) == (8, 10, 8)


@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_decode_bytes_like(kind: type[bytearray] | type[memoryview]) -> None:
    """SPEC.md 4.1: decode_frame takes any bytes-like buffer and returns bytes payloads."""
    frame, used = decode_frame(kind(b"xx" + HI_WIRE), 2)
    assert frame == HI
    assert type(frame.data) is bytes
    assert used == 10


def test_decode_version_pinned() -> None:
    """SPEC.md 4.1: with version given, only that version byte is accepted."""
    assert decode_frame(HI_WIRE, version=1) == (HI, 10)
    with pytest.raises(InvalidVersionError, match="version byte 1 in a version 2 session") as info:
        decode_frame(HI_WIRE, version=2)
    assert info.value.header == HI_WIRE[:8]
    assert info.value.field == "version"


def test_decode_max_length_psh() -> None:
    """SPEC.md 6.2: a PSH of LEN 65535 decodes whole."""
    wire = encode_raw(2, Cmd.PSH, 65535, 9, bytes(range(256)) * 255 + bytes(255))
    frame, used = decode_frame(wire)
    assert used == 8 + 65535
    assert frame.data == wire[8:]


def test_decode_negative_offset_is_rejected() -> None:
    """SPEC.md 4.5: a negative offset is a usage error, not a frame read from the end."""
    with pytest.raises(ValueError, match="offset must not be negative"):
        decode_frame(HI_WIRE, -10)


# -- decode_frame: header errors ---------------------------------------------------

BAD_HEADERS: list[tuple[str, bytes, int | None, type[ProtocolError], str, str]] = [
    # (id, wire, version, error, field, spec)
    ("version0", encode_raw(0, Cmd.PSH, 0, 1), None, InvalidVersionError, "version", "4.1"),
    ("version3", encode_raw(3, Cmd.SYN, 0, 1), None, InvalidVersionError, "version", "4.1"),
    ("version255", encode_raw(255, Cmd.NOP, 0, 0), None, InvalidVersionError, "version", "4.1"),
    ("v2-in-v1", encode_raw(2, Cmd.PSH, 0, 1), 1, InvalidVersionError, "version", "4.1"),
    ("v1-in-v2", encode_raw(1, Cmd.PSH, 0, 1), 2, InvalidVersionError, "version", "4.1"),
    ("cmd5", encode_raw(2, 5, 0, 1), None, UnknownCommandError, "cmd", "4.2"),
    ("cmd200", encode_raw(1, 200, 0, 1), None, UnknownCommandError, "cmd", "4.2"),
    ("cmd255", encode_raw(2, 255, 0, 1), 2, UnknownCommandError, "cmd", "4.2"),
    ("upd-in-v1", encode_raw(1, Cmd.UPD, 8, 1, bytes(8)), None, UnknownCommandError, "cmd", "4.2"),
    ("upd-v1-pin", encode_raw(1, Cmd.UPD, 8, 1, bytes(8)), 1, UnknownCommandError, "cmd", "4.2"),
    ("syn-len1", encode_raw(1, Cmd.SYN, 1, 1, b"x"), None, InvalidLengthError, "length", "4.3"),
    ("fin-len2", encode_raw(2, Cmd.FIN, 2, 1, b"xy"), None, InvalidLengthError, "length", "4.3"),
    ("nop-len8", encode_raw(1, Cmd.NOP, 8, 0, bytes(8)), None, InvalidLengthError, "length", "4.3"),
    ("upd-len0", encode_raw(2, Cmd.UPD, 0, 1), None, InvalidLengthError, "length", "4.3"),
    ("upd-len7", encode_raw(2, Cmd.UPD, 7, 1, bytes(7)), None, InvalidLengthError, "length", "4.3"),
    ("upd-len9", encode_raw(2, Cmd.UPD, 9, 1, bytes(9)), 2, InvalidLengthError, "length", "4.3"),
]


@pytest.mark.parametrize(
    ("wire", "version", "error", "field", "spec"),
    [case[1:] for case in BAD_HEADERS],
    ids=[case[0] for case in BAD_HEADERS],
)
def test_decode_bad_header(
    wire: bytes, version: int | None, error: type[ProtocolError], field: str, spec: str
) -> None:
    """SPEC.md 4.1-4.3: each bad header raises its own class, naming the field and header."""
    with pytest.raises(error) as info:
        decode_frame(wire, version=version)
    assert type(info.value) is error
    assert info.value.field == field
    assert info.value.spec == spec
    assert info.value.header == wire[:8]
    assert wire[:8].hex(" ") in str(info.value)


def test_upd_in_v1_message() -> None:
    """SPEC.md 4.2: UPD is not a command of version 1."""
    with pytest.raises(UnknownCommandError, match=r"UPD \(4\) is not a command of protocol"):
        decode_frame(encode_raw(1, Cmd.UPD, 8, 1, bytes(8)))


def test_upd_in_v2_is_accepted() -> None:
    """SPEC.md 4.2: UPD is a command of version 2."""
    assert decode_frame(UPD_V2_WIRE, version=2) == (UPD_V2, 16)


def test_version_checked_before_command() -> None:
    """SPEC.md 4.1: a header wrong in every field is reported for its version byte."""
    with pytest.raises(InvalidVersionError):
        decode_frame(encode_raw(9, 9, 9, 9, bytes(9)))


def test_command_checked_before_length() -> None:
    """SPEC.md 4.2: an unknown command is reported before its LEN is looked at."""
    with pytest.raises(UnknownCommandError):
        decode_frame(encode_raw(2, 9, 0xFFFF, 9))


def test_length_error_before_payload() -> None:
    """SPEC.md 4.3: a bad LEN is reported from the header alone, with no payload present."""
    with pytest.raises(InvalidLengthError, match="SYN must have length 0, got 65535"):
        decode_frame(encode_raw(1, Cmd.SYN, 0xFFFF, 1))


# -- check_header and FrameTooLargeError --------------------------------------------


def test_check_header_returns_fields() -> None:
    """SPEC.md 4.1: check_header returns (version, cmd, length, sid) of a good header."""
    assert check_header(HI_WIRE[:8], None) == (1, Cmd.PSH, 2, 3)
    assert type(check_header(UPD_V2_WIRE[:8], 2)[1]) is Cmd


def test_check_header_frame_too_large() -> None:
    """SPEC.md 6.2: LEN above the receiver's limit is a FrameTooLargeError on LEN."""
    header = encode_raw(2, Cmd.PSH, 101, 1)
    assert check_header(encode_raw(2, Cmd.PSH, 100, 1), 2, 100) == (2, Cmd.PSH, 100, 1)
    with pytest.raises(FrameTooLargeError, match="length 101 exceeds") as info:
        check_header(header, 2, 100)
    assert info.value.field == "length"
    assert info.value.spec == "6.2"
    assert info.value.header == header


def test_check_header_upd_above_small_limit() -> None:
    """SPEC.md 6.2: a UPD is too large for a limit below 8, though its LEN is right."""
    with pytest.raises(FrameTooLargeError):
        check_header(encode_raw(2, Cmd.UPD, 8, 1), 2, 7)


def test_check_header_length_rule_before_limit() -> None:
    """SPEC.md 4.3: a SYN with LEN above the limit is reported for its length rule."""
    with pytest.raises(InvalidLengthError):
        check_header(encode_raw(1, Cmd.SYN, 500, 1), 1, 100)


# -- truncation --------------------------------------------------------------------


@pytest.mark.parametrize("size", range(8))
def test_decode_truncated_header(size: int) -> None:
    """SPEC.md 4.5: fewer than 8 bytes is a TruncatedFrameError on the header."""
    with pytest.raises(TruncatedFrameError, match=f"{size} bytes cannot hold") as info:
        decode_frame(HI_WIRE[:size])
    assert info.value.field == "header"
    assert info.value.header == HI_WIRE[:size]
    assert info.value.spec == "4.5"


def test_decode_truncated_header_at_offset() -> None:
    """SPEC.md 4.5: an offset at or past the end leaves no header to read."""
    with pytest.raises(TruncatedFrameError) as info:
        decode_frame(HI_WIRE, 10)
    assert info.value.header == b""
    with pytest.raises(TruncatedFrameError):
        decode_frame(HI_WIRE, 50)


@pytest.mark.parametrize("missing", [1, 2])
def test_decode_truncated_payload(missing: int) -> None:
    """SPEC.md 4.5: a payload shorter than LEN is a TruncatedFrameError on LEN."""
    with pytest.raises(TruncatedFrameError, match="payload of 2 bytes announced") as info:
        decode_frame(HI_WIRE[: len(HI_WIRE) - missing])
    assert info.value.field == "length"
    assert info.value.header == HI_WIRE[:8]


# -- lenient decoding --------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (encode_raw(1, 200, 0, 5), Frame(1, 200, 5)),
        (encode_raw(7, Cmd.PSH, 3, 5, b"abc"), Frame(7, Cmd.PSH, 5, b"abc")),
        (encode_raw(0, Cmd.SYN, 2, 5, b"zz"), Frame(0, Cmd.SYN, 5, b"zz")),
        (encode_raw(1, Cmd.UPD, 3, 5, b"abc"), Frame(1, Cmd.UPD, 5, b"abc")),
        (encode_raw(2, Cmd.NOP, 1, 0, b"!"), Frame(2, Cmd.NOP, 0, b"!")),
        (encode_raw(255, 255, 0, 0xFFFFFFFF), Frame(255, 255, 0xFFFFFFFF)),
    ],
    ids=["cmd200", "version7", "syn-payload", "upd-v1", "nop-payload", "all-ff"],
)
def test_lenient_decode_keeps_any_field(wire: bytes, expected: Frame) -> None:
    """SPEC.md 4.2: a lenient decode returns what was sent, known command or not."""
    frame, used = decode_frame(wire, strict=False, version=2)
    assert frame == expected
    assert used == len(wire)
    assert type(frame.cmd) is (Cmd if expected.cmd < 5 else int)


def test_lenient_decode_still_needs_the_whole_frame() -> None:
    """SPEC.md 4.5: lenient decoding still reports a cut-off payload."""
    with pytest.raises(TruncatedFrameError):
        decode_frame(encode_raw(7, 200, 3, 1, b"ab"), strict=False)


# -- the error hierarchy -----------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "field", "spec"),
    [
        (InvalidVersionError, "version", "4.1"),
        (UnknownCommandError, "cmd", "4.2"),
        (InvalidLengthError, "length", "4.3"),
        (TruncatedFrameError, "length", "4.5"),
        (FrameTooLargeError, "length", "6.2"),
    ],
)
def test_error_classes(error: type[ProtocolError], field: str, spec: str) -> None:
    """SPEC.md 4.1-4.5: every header error is a ProtocolError naming its field and section."""
    assert issubclass(error, ProtocolError)
    assert issubclass(error, SmuxError)
    exc = error("bad", header=b"\x01\x02")
    assert (exc.field, exc.spec, exc.header) == (field, spec, b"\x01\x02")
    assert str(exc) == "bad [header 01 02]"
    assert error("bad", field="sid").field == "sid"
    assert str(error("bad")) == "bad"


# -- SPEC.md Appendix A ------------------------------------------------------------

APPENDIX_FRAMES = [
    (Frame(1, Cmd.SYN, 3), "01 00 00 00 03 00 00 00"),
    (Frame(2, Cmd.SYN, 2), "02 00 00 00 02 00 00 00"),
    (Frame(1, Cmd.PSH, 3, b"hi"), "01 02 02 00 03 00 00 00 68 69"),
    (Frame(1, Cmd.PSH, 0xFFFFFFFF, b"hello"), "01 02 05 00 ff ff ff ff 68 65 6c 6c 6f"),
    (Frame(1, Cmd.FIN, 3), "01 01 00 00 03 00 00 00"),
    (Frame(1, Cmd.NOP, 0), "01 03 00 00 00 00 00 00"),
    (Frame(2, Cmd.NOP, 0), "02 03 00 00 00 00 00 00"),
    (
        Frame(2, Cmd.UPD, 3, Upd(4000, 65536).encode()),
        "02 04 08 00 03 00 00 00 a0 0f 00 00 00 00 01 00",
    ),
    (
        Frame(2, Cmd.UPD, 5, Upd(0xFFFFFFF0, 65536).encode()),
        "02 04 08 00 05 00 00 00 f0 ff ff ff 00 00 01 00",
    ),
    (Frame(1, Cmd.PSH, 7), "01 02 00 00 07 00 00 00"),
    (
        Frame(2, Cmd.UPD, 3, Upd(5, 65536).encode()),
        "02 04 08 00 03 00 00 00 05 00 00 00 00 00 01 00",
    ),
]


@pytest.mark.parametrize(("frame", "hexbytes"), APPENDIX_FRAMES)
def test_appendix_a_example_frames(frame: Frame, hexbytes: str) -> None:
    """SPEC.md 4.1: every example frame of Appendix A encodes and decodes byte for byte."""
    wire = bytes.fromhex(hexbytes)
    assert frame.encode() == wire
    assert decode_frame(wire, version=frame.version) == (frame, len(wire))


APPENDIX_REJECTED: list[tuple[str, int, type[ProtocolError]]] = [
    ("02 00 00 00 03 00 00 00", 1, InvalidVersionError),
    ("01 05 00 00 03 00 00 00", 1, UnknownCommandError),
    ("01 04 08 00 03 00 00 00 00 00 00 00 00 00 00 00", 1, UnknownCommandError),
    ("01 00 01 00 03 00 00 00 78", 1, InvalidLengthError),
    ("02 04 04 00 03 00 00 00 00 00 00 00", 2, InvalidLengthError),
    ("02 02 0a 00 03 00 00 00 61 62 63", 2, TruncatedFrameError),
]


@pytest.mark.parametrize(("hexbytes", "version", "error"), APPENDIX_REJECTED)
def test_appendix_a_rejected_frames(
    hexbytes: str, version: int, error: type[ProtocolError]
) -> None:
    """SPEC.md 4.5: every rejected frame of Appendix A raises the class the table names."""
    wire = bytes.fromhex(hexbytes)
    with pytest.raises(error) as info:
        decode_frame(wire, version=version)
    assert type(info.value) is error
    assert info.value.header == wire[:8]
