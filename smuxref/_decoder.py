"""Incremental frame decoding: bytes arrive in any split, frames come out whole.

Each call to :meth:`FrameDecoder.feed` ends in one of three ways, as a reader must:
frames (possibly none, when only part of a frame is here yet), or a
:class:`~smuxref.errors.ProtocolError` for the first bad header.  A bad header is
reported as soon as its 8 bytes are present, before any of its payload is waited for,
so a hostile LEN never makes the decoder buffer data it will reject.
"""

from __future__ import annotations

from typing import Final

from ._frame import (
    CMD_BY_VALUE,
    FIXED_LENGTH,
    HEADER,
    HEADER_SIZE,
    MAX_PAYLOAD,
    VERSIONS,
    Frame,
    check_header,
)
from .errors import ProtocolError, TruncatedFrameError

__all__ = ["FrameDecoder"]

_unpack_from: Final = HEADER.unpack_from
# Frame is a NamedTuple; building it through tuple.__new__ skips the generated Python
# __new__ and roughly halves the cost of each decoded frame.
_new_tuple: Final = tuple.__new__


def _length_rules(version: int | None) -> dict[int, int]:
    """Map ``version << 8 | cmd`` to the required LEN (-1: any) for every legal pair."""
    rules: dict[int, int] = {}
    for ver in VERSIONS if version is None else (version,):
        for cmd in CMD_BY_VALUE:
            if cmd == 4 and ver == 1:
                continue
            fixed = FIXED_LENGTH[cmd]
            rules[ver << 8 | cmd] = -1 if fixed is None else fixed
    return rules


class FrameDecoder:
    """Turn a byte stream into frames, whatever the segmentation.

    ``version`` pins the session's protocol version (``None`` accepts 1 and 2 frame by
    frame).  ``max_frame_size`` is the largest LEN accepted; smux receivers accept up
    to 65535 whatever they send themselves (SPEC.md 6.2).  With ``strict=False`` every
    header is accepted as it is, so a test can see exactly what a peer sent.

    Memory: beyond the frames it returns, the decoder keeps at most one header and one
    payload of the frame in progress.
    """

    __slots__ = ("_buf", "_error", "_need", "_rules", "max_frame_size", "strict", "version")

    def __init__(
        self, version: int | None = None, max_frame_size: int = MAX_PAYLOAD, *, strict: bool = True
    ) -> None:
        if version is not None and version not in VERSIONS:
            raise ValueError(f"version must be 1, 2 or None, not {version!r}")
        if not 0 <= max_frame_size <= MAX_PAYLOAD:
            raise ValueError(f"max_frame_size must be within 0..{MAX_PAYLOAD}")
        self.version = version
        self.max_frame_size = max_frame_size
        self.strict = strict
        self._rules = _length_rules(version)
        # Bytes of an incomplete frame, and how many bytes that frame needs in all: small
        # pieces are appended in O(1) and parsing resumes only once the frame is whole.
        self._buf = bytearray()
        self._need = HEADER_SIZE
        self._error: ProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held for a frame that has not arrived whole yet."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """Add bytes; return every frame they complete.

        A bad header raises its :class:`ProtocolError` with ``exc.frames`` set to the
        good frames decoded before it in this call, so nothing is lost; the decoder
        then stays failed and raises the same error again.
        """
        if self._error is not None:
            raise self._error
        if self._buf:
            self._buf += data
            if len(self._buf) < self._need:
                return []
            buf = bytes(self._buf)
            self._buf = bytearray()
        else:
            buf = data if type(data) is bytes else bytes(data)
        frames: list[Frame] = []
        append = frames.append
        end = len(buf)
        pos = 0
        rules = self._rules
        strict = self.strict
        limit = self.max_frame_size
        while end - pos >= HEADER_SIZE:
            ver, cmd, length, sid = _unpack_from(buf, pos)
            if strict:
                rule = rules.get(ver << 8 | cmd)
                if rule is None or (rule >= 0 and length != rule) or length > limit:
                    self._fail(buf[pos : pos + HEADER_SIZE], frames)
                cmd = CMD_BY_VALUE[cmd]
            elif cmd < 5:
                cmd = CMD_BY_VALUE[cmd]
            start = pos + HEADER_SIZE
            stop = start + length
            if stop > end:
                self._buf = bytearray(buf[pos:])
                self._need = HEADER_SIZE + length
                return frames
            append(_new_tuple(Frame, (ver, cmd, sid, buf[start:stop])))
            pos = stop
        if pos < end:
            self._buf = bytearray(buf[pos:])
            self._need = HEADER_SIZE
        return frames

    def _fail(self, header: bytes, frames: list[Frame]) -> None:
        try:
            check_header(header, self.version, self.max_frame_size)
        except ProtocolError as exc:
            exc.frames = frames  # type: ignore[attr-defined]
            self._error = exc
            raise
        raise AssertionError(f"header {header.hex()} failed the fast check only")  # pragma: no cover

    def close(self) -> None:
        """Declare the end of the byte stream; a frame cut short raises TruncatedFrameError."""
        if self._error is not None:
            raise self._error
        if self._buf:
            buf, self._buf = bytes(self._buf), bytearray()
            if len(buf) < HEADER_SIZE:
                raise TruncatedFrameError(
                    f"connection ended {len(buf)} bytes into a header", header=buf, field="header"
                )
            length = HEADER.unpack_from(buf)[2]
            raise TruncatedFrameError(
                f"connection ended {len(buf) - HEADER_SIZE} bytes into a {length}-byte payload",
                header=buf[:HEADER_SIZE],
            )
