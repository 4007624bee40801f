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
from functools import lru_cache
from typing import Final, NamedTuple, NoReturn

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
    "header_rules",
    "reject_header",
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


#: What a header's VER and CMD bytes decode to, and the LEN range they allow:
#: ``(version, cmd, shortest, longest)``, keyed by ``VER | CMD << 8``.
HeaderRule = tuple[int, int, int, int]


@lru_cache(maxsize=32)
def header_rules(version: int | None, max_frame_size: int = MAX_PAYLOAD) -> dict[int, HeaderRule]:
    """The one definition of a valid header (SPEC.md 4.1-4.3, 6.2), as a table.

    Maps ``VER | CMD << 8`` of every VER/CMD pair a receiver pinned to ``version``
    (None: either version) accepts to the LEN range it allows; a pair that is missing,
    or a LEN outside its range, is a protocol error, which :func:`reject_header` names.
    :func:`check_header` and the decoder's loop both look headers up here.  Cached
    and shared: callers must not change it.
    """
    rules: dict[int, HeaderRule] = {}
    for ver in VERSIONS if version is None else (version,):
        for cmd in CMD_BY_VALUE:
            if cmd == Cmd.UPD and ver == 1:
                continue
            fixed = FIXED_LENGTH[cmd]
            # An empty range (UPD with a limit below 8) fails every header.
            shortest, longest = (0, max_frame_size) if fixed is None else (fixed, fixed)
            rules[ver | cmd << 8] = (ver, cmd, shortest, min(longest, max_frame_size))
    return rules


def reject_header(
    header: bytes, version: int | None, max_frame_size: int = MAX_PAYLOAD
) -> NoReturn:
    """Raise the error that names why ``header`` is not in :func:`header_rules`.

    The checks run in the order the Go receive loop makes them (v1.5.57:session.go:413-496):
    version, then command, then the command's length rule, then the size limit.
    """
    ver, cmd, length, _sid = HEADER.unpack(header)
    if version is None:
        if ver not in VERSIONS:
            raise InvalidVersionError(f"version byte {ver} is neither 1 nor 2", header=header)
    elif ver != version:
        raise InvalidVersionError(
            f"version byte {ver} in a version {version} session", header=header
        )
    rule = header_rules(version, max_frame_size).get(ver | cmd << 8)
    if rule is None:
        if cmd == Cmd.UPD:
            raise UnknownCommandError(
                "UPD (4) is not a command of protocol version 1", header=header
            )
        raise UnknownCommandError(f"unknown command {cmd}", header=header)
    fixed = FIXED_LENGTH[cmd]
    if fixed is not None and length != fixed:
        raise InvalidLengthError(
            f"{CMD_BY_VALUE[cmd].name} must have length {fixed}, got {length}", header=header
        )
    raise FrameTooLargeError(
        f"length {length} exceeds the decoder's max_frame_size {max_frame_size}", header=header
    )


def check_header(
    header: bytes, version: int | None, max_frame_size: int = MAX_PAYLOAD
) -> tuple[int, Cmd, int, int]:
    """Validate one header strictly and return ``(version, cmd, length, sid)``."""
    ver, cmd, length, sid = HEADER.unpack(header)
    rule = header_rules(version, max_frame_size).get(ver | cmd << 8)
    if rule is None or not rule[2] <= length <= rule[3]:
        reject_header(header, version, max_frame_size)
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
