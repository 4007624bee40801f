"""Frame codec: the 8-byte smux header and its payload (SPEC.md section 4).

Wire layout, little-endian, as ``rawHeader`` in the Go library (v1.5.57:frame.go:85-91)::

    0        1        2                 4                                 8
    +--------+--------+-----------------+---------------------------------+
    |  VER   |  CMD   |  LEN (u16 LE)   |          SID (u32 LE)           |
    +--------+--------+-----------------+---------------------------------+
    |                    DATA (exactly LEN bytes)                         |

Everything here is pure: no configuration and no state.  The rules that depend on the
session (which version, how large a frame may be) live in the decoder and the engine.
``Frame`` is a NamedTuple rather than a frozen dataclass because decoding creates one
per frame and tuple construction is several times cheaper.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import Final, NamedTuple

from .errors import (
    FrameTooLargeError,
    InvalidLengthError,
    InvalidVersionError,
    TruncatedFrameError,
    UnknownCommandError,
)

__all__ = [
    "HEADER",
    "HEADER_SIZE",
    "INITIAL_PEER_WINDOW",
    "MAX_PAYLOAD",
    "UPD_SIZE",
    "VERSIONS",
    "Cmd",
    "Frame",
    "Upd",
    "check_header",
    "decode_frame",
    "encode_raw",
]

HEADER: Final = struct.Struct("<BBHI")
UPD_STRUCT: Final = struct.Struct("<II")
_pack_header: Final = HEADER.pack
HEADER_SIZE: Final = 8
UPD_SIZE: Final = 8
MAX_PAYLOAD: Final = 0xFFFF
VERSIONS: Final = (1, 2)
#: A version 2 sender may have this many bytes in flight before the first UPD
#: (v1.5.57:frame.go:48-51), whatever the receiver's MaxStreamBuffer is.
INITIAL_PEER_WINDOW: Final = 262144


class Cmd(IntEnum):
    """Frame commands (SPEC.md 4.2)."""

    SYN = 0  #: open a stream; no payload
    FIN = 1  #: no more data from the sender on this stream; no payload
    PSH = 2  #: stream data
    NOP = 3  #: keepalive; no payload, Go sends it with sid 0
    UPD = 4  #: version 2 only: window update, 8-byte payload (consumed, window)


#: Index by command byte; cheaper than calling Cmd(value) once per decoded frame.
CMD_BY_VALUE: Final[tuple[Cmd, ...]] = tuple(Cmd)
#: Required payload length per command; PSH (None) may carry 0..65535 bytes.
FIXED_LENGTH: Final[tuple[int | None, ...]] = (0, 0, None, 0, UPD_SIZE)


class Frame(NamedTuple):
    """One smux frame.  ``cmd`` is a :class:`Cmd` unless a lenient decoder met an unknown byte."""

    version: int
    cmd: int
    sid: int
    data: bytes = b""

    def encode(self) -> bytes:
        """Serialize with LEN taken from ``len(data)``; fields are range-checked by struct."""
        version, cmd, sid, data = self
        try:
            return _pack_header(version, cmd, len(data), sid) + data
        except struct.error as exc:
            raise ValueError(f"frame field out of range: {self!r}: {exc}") from None

    def __bytes__(self) -> bytes:
        return self.encode()

    @property
    def length(self) -> int:
        return len(self.data)

    def upd(self) -> Upd:
        """The UPD payload of this frame (:class:`InvalidLengthError` unless it is 8 bytes)."""
        if len(self.data) != UPD_SIZE:
            raise InvalidLengthError(
                f"UPD payload must be {UPD_SIZE} bytes, got {len(self.data)}",
                header=HEADER.pack(self.version, self.cmd, len(self.data), self.sid),
            )
        return Upd.decode(self.data)

    def __repr__(self) -> str:
        name = self.cmd.name if isinstance(self.cmd, Cmd) else str(self.cmd)
        data = self.data if len(self.data) <= 16 else self.data[:16] + b"..."
        return (
            f"Frame(v{self.version}, {name}, sid={self.sid}, len={len(self.data)}, data={data!r})"
        )


class Upd(NamedTuple):
    """The UPD payload: bytes the receiver has consumed so far, and its window (SPEC.md 4.4)."""

    consumed: int
    window: int

    def encode(self) -> bytes:
        return UPD_STRUCT.pack(self.consumed & 0xFFFFFFFF, self.window & 0xFFFFFFFF)

    def __bytes__(self) -> bytes:
        return self.encode()

    @classmethod
    def decode(cls, data: bytes) -> Upd:
        """Parse an 8-byte UPD payload (any other size raises :class:`InvalidLengthError`)."""
        if len(data) != UPD_SIZE:
            raise InvalidLengthError(f"UPD payload must be {UPD_SIZE} bytes, got {len(data)}")
        consumed, window = UPD_STRUCT.unpack(data)
        return cls(consumed, window)


def encode_raw(version: int, cmd: int, length: int, sid: int, data: bytes = b"") -> bytes:
    """Build any header, including ones whose LEN does not match ``data``.

    This is the adversarial encoder: fields are only masked to their widths, so the
    suite can send exactly the bytes a broken peer would.
    """
    return HEADER.pack(version & 0xFF, cmd & 0xFF, length & 0xFFFF, sid & 0xFFFFFFFF) + bytes(data)


def check_header(
    header: bytes, version: int | None, max_frame_size: int = MAX_PAYLOAD
) -> tuple[int, Cmd, int, int]:
    """Validate one header strictly and return ``(version, cmd, length, sid)``.

    The checks run in the order the Go receive loop makes them (v1.5.57:session.go:413-496):
    version, then command, then the command's length rule.
    """
    ver, cmd, length, sid = HEADER.unpack(header)
    if version is None:
        if ver not in VERSIONS:
            raise InvalidVersionError(f"version byte {ver} is neither 1 nor 2", header=header)
    elif ver != version:
        raise InvalidVersionError(
            f"version byte {ver} in a version {version} session", header=header
        )
    if cmd > Cmd.UPD:
        raise UnknownCommandError(f"unknown command {cmd}", header=header)
    if cmd == Cmd.UPD and ver == 1:
        raise UnknownCommandError("UPD (4) is not a command of protocol version 1", header=header)
    fixed = FIXED_LENGTH[cmd]
    if fixed is not None and length != fixed:
        raise InvalidLengthError(
            f"{CMD_BY_VALUE[cmd].name} must have length {fixed}, got {length}", header=header
        )
    if length > max_frame_size:
        raise FrameTooLargeError(
            f"length {length} exceeds the decoder's max_frame_size {max_frame_size}", header=header
        )
    return ver, CMD_BY_VALUE[cmd], length, sid


def decode_frame(
    buf: bytes | bytearray | memoryview,
    offset: int = 0,
    *,
    version: int | None = None,
    strict: bool = True,
) -> tuple[Frame, int]:
    """Decode the frame at ``buf[offset:]``; return it and the number of bytes it took.

    A buffer that ends inside the frame raises :class:`TruncatedFrameError`: this
    function sees a complete buffer, so missing bytes mean the sender stopped short.
    For a byte stream that arrives in pieces use :class:`FrameDecoder`.
    """
    if offset < 0:
        raise ValueError(f"offset must not be negative, got {offset}")
    end = len(buf)
    if end - offset < HEADER_SIZE:
        raise TruncatedFrameError(
            f"{end - offset} bytes cannot hold an {HEADER_SIZE}-byte header",
            header=bytes(buf[offset:end]),
            field="header",
        )
    header = bytes(buf[offset : offset + HEADER_SIZE])
    if strict:
        ver, cmd, length, sid = check_header(header, version)
        command: int = cmd
    else:
        ver, command, length, sid = HEADER.unpack(header)
        if command < len(CMD_BY_VALUE):
            command = CMD_BY_VALUE[command]
    start = offset + HEADER_SIZE
    if end - start < length:
        raise TruncatedFrameError(
            f"payload of {length} bytes announced, {end - start} present", header=header
        )
    return Frame(ver, command, sid, bytes(buf[start : start + length])), HEADER_SIZE + length
