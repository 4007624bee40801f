"""Incremental frame decoding: bytes arrive in any split, frames come out whole.

Each call to :meth:`FrameDecoder.feed` ends in one of three ways, as a reader must:
frames (possibly none, when only part of a frame is here yet), or a
:class:`~smuxref.errors.ProtocolError` for the first bad header.  A bad header is
reported as soon as its 8 bytes are present, before any of its payload is waited for,
so a hostile LEN never makes the decoder buffer data it will reject.

Speed: decoding is one loop over the buffer (:meth:`FrameDecoder._parse`) that costs a
header unpack, one comparison (a PSH of the session's version) or one dict lookup (any
other header), a payload slice and one tuple per frame; runs of PSH frames of one
length are split in C (:meth:`FrameDecoder._run`).  ``benchmarks/codec_perf.py``
measures both.
"""

from __future__ import annotations

import struct
from functools import lru_cache
from typing import Final, NoReturn

from ._frame import (
    CMD_BY_VALUE,
    HEADER,
    HEADER_SIZE,
    MAX_PAYLOAD,
    VERSIONS,
    Cmd,
    Frame,
    HeaderRule,
    header_rules,
    reject_header,
)
from .errors import ProtocolError, TruncatedFrameError

__all__ = ["FrameDecoder"]

#: The header read as ``(VER | CMD << 8, LEN, SID)``: VER and CMD in one int make the
#: legality of the pair a single dict lookup.
_unpack_head: Final = struct.Struct("<HHI").unpack_from
# Frame is a NamedTuple; building it through tuple.__new__ skips the generated Python
# __new__ and roughly halves the cost of each decoded frame.
_new_tuple: Final = tuple.__new__

_Rule = HeaderRule


class _AnyHeader(dict[int, _Rule]):
    """Lenient rules: every VER/CMD pair is accepted with any LEN.

    Only the pairs of real commands are stored; any other pair is computed on lookup
    and not kept, so hostile input cannot grow the table.
    """

    def __missing__(self, key: int) -> _Rule:
        cmd = key >> 8
        return (key & 0xFF, CMD_BY_VALUE[cmd] if cmd < len(CMD_BY_VALUE) else cmd, 0, MAX_PAYLOAD)


_LENIENT: Final = _AnyHeader(
    {ver | cmd << 8: (ver, cmd, 0, MAX_PAYLOAD) for ver in range(256) for cmd in CMD_BY_VALUE}
)


@lru_cache(maxsize=32)
def _header_table(
    version: int | None, strict: bool, max_frame_size: int
) -> tuple[dict[int, _Rule], int, int]:
    """What the decode loop needs to check headers: ``(rules, psh_key, psh_limit)``.

    ``rules`` is :func:`~smuxref._frame.header_rules`, the one definition of a valid
    header (in strict mode; lenient mode accepts everything); a header it refuses is
    named by :func:`~smuxref._frame.reject_header`.  ``psh_key`` and ``psh_limit``
    describe the common case, a PSH of the pinned version, which the loop tests before
    it looks anything up (-1: no pinned version).
    """
    psh_key = -1 if version is None else version | Cmd.PSH << 8
    if not strict:
        return _LENIENT, psh_key, MAX_PAYLOAD
    return header_rules(version, max_frame_size), psh_key, max_frame_size


@lru_cache(maxsize=64)
def _run_layout(length: int) -> struct.Struct:
    """A frame with a ``length``-byte payload, as ``(SID, DATA)`` (see FrameDecoder._run)."""
    return struct.Struct(f"<4xI{length}s")


class FrameDecoder:
    """Turn a byte stream into frames, whatever the segmentation.

    ``version`` pins the session's protocol version (``None`` accepts 1 and 2 frame by
    frame).  ``max_frame_size`` is the largest LEN accepted; smux receivers accept up
    to 65535 whatever they send themselves (SPEC.md 6.2).  With ``strict=False`` every
    header is accepted as it is, so a test can see exactly what a peer sent.

    Memory: beyond the frames it returns, the decoder keeps at most one header and one
    payload of the frame in progress.
    """

    __slots__ = ("_buf", "_error", "_head", "_need", "max_frame_size", "strict", "version")

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
        # The start of an incomplete frame, and how many bytes it needs in all: a header
        # (8) while the header is incomplete, then header and payload.  Small pieces
        # are appended in O(1) and parsing resumes only once the frame is whole.
        self._buf = bytearray()
        self._need = HEADER_SIZE
        # (version, cmd, sid) of the frame in ``_buf`` once its header was checked and
        # only payload is missing, so completing it costs one copy of the payload.
        self._head: tuple[int, int, int] | None = None
        self._error: ProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held for a frame that has not arrived whole yet."""
        return len(self._buf)

    @property
    def missing(self) -> int:
        """Bytes the frame in progress still lacks (0 between frames; while its header
        is incomplete, only the rest of the header): how much a reader that wants to stop
        on a frame boundary must take next, and no more."""
        return self._need - len(self._buf) if self._buf else 0

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """Add bytes; return every frame they complete.

        A bad header raises its :class:`ProtocolError` with ``exc.frames`` set to the
        good frames decoded before it in this call, so nothing is lost; the decoder
        then stays failed and raises the same error again.
        """
        if self._error is not None:
            # A fresh traceback each time, or every call would lengthen the stored one.
            raise self._error.with_traceback(None)
        if type(data) is not bytes:
            data = bytes(memoryview(data))
        frames: list[Frame] = []
        pos = 0
        # First finish the frame earlier calls began, taking from data only the bytes it
        # lacks: a completed header is checked, and then its payload is waited for.
        while self._buf:
            pending = self._buf
            take = self._need - len(pending)
            if len(data) - pos < take:
                pending += memoryview(data)[pos:]
                return frames
            pending += memoryview(data)[pos : pos + take]
            pos += take
            self._buf = bytearray()
            head = self._head
            if head is None:  # a header, just completed: check it (and perhaps wait)
                self._parse(bytes(pending), 0, frames)
            else:
                self._head = None
                frames.append(_new_tuple(Frame, (*head, bytes(memoryview(pending)[HEADER_SIZE:]))))
        self._parse(data, pos, frames)
        return frames

    def _parse(self, buf: bytes, pos: int, frames: list[Frame]) -> None:
        """Append the frames of ``buf[pos:]`` to ``frames`` and keep a trailing partial frame."""
        rules, psh_key, psh_limit = _header_table(self.version, self.strict, self.max_frame_size)
        psh_ver = psh_key & 0xFF
        # Locals, not globals or attributes: this loop runs once per frame.
        unpack = _unpack_head
        new_tuple = _new_tuple
        frame_type = Frame
        psh: int = Cmd.PSH
        append = frames.append
        end = len(buf)
        last = end - HEADER_SIZE  # the last offset at which a whole header fits
        previous = -1  # LEN of the last frame when it was a PSH of the pinned version
        runs = psh_key >= 0  # look for runs (see _run) until one attempt fails
        while pos <= last:
            vc, length, sid = unpack(buf, pos)
            start = pos + HEADER_SIZE
            pos = start + length
            if vc == psh_key and length <= psh_limit and pos <= end:  # the common frame
                append(new_tuple(frame_type, (psh_ver, psh, sid, buf[start:pos])))
                if length != previous:
                    previous = length
                elif runs:
                    found = self._run(buf, pos, length, psh_ver, frames)
                    runs = found > pos
                    pos = found
                    previous = -1
                continue
            previous = -1
            if vc == psh_key and length <= psh_limit:
                ver, cmd = psh_ver, psh
            else:
                try:
                    ver, cmd, shortest, longest = rules[vc]
                except KeyError:
                    self._fail(buf, start - HEADER_SIZE, frames)
                if not shortest <= length <= longest:
                    self._fail(buf, start - HEADER_SIZE, frames)
            if pos > end:
                self._buf = bytearray(memoryview(buf)[start - HEADER_SIZE :])
                self._need = HEADER_SIZE + length
                self._head = (ver, cmd, sid)
                return
            append(new_tuple(frame_type, (ver, cmd, sid, buf[start:pos])))
        if pos < end:
            self._buf = bytearray(memoryview(buf)[pos:])
            self._need = HEADER_SIZE

    def _run(self, buf: bytes, pos: int, length: int, ver: int, frames: list[Frame]) -> int:
        """Decode at once the whole frames at ``buf[pos:]`` that repeat the header just
        decoded but for SID (same VER, CMD and LEN: a PSH of the pinned version, which
        passed the checks); return where they end, or ``pos`` if they do not all repeat it.

        Senders cut a transfer into equal frames, so after two PSH of one length the
        next ones usually have it too; ``struct.iter_unpack`` then splits them in C
        with about 40 % fewer interpreter instructions per frame than the loop
        (``benchmarks/codec_perf.py`` counts both).  The check is four strided slices
        compared in C.  After a failed attempt the caller stops trying for the rest of
        the buffer, so input made to defeat it costs one pass, not one per frame.
        """
        stride = HEADER_SIZE + length
        count = (len(buf) - pos) // stride
        if count < 2:
            return pos
        stop = pos + count * stride
        head = pos - stride  # the header just decoded
        for i in range(4):  # VER, CMD, LEN (2 bytes): everything but SID
            if buf[pos + i : stop : stride] != buf[head + i : head + i + 1] * count:
                return pos
        psh = Cmd.PSH
        new_tuple = _new_tuple
        frames += [
            new_tuple(Frame, (ver, psh, sid, data))
            for sid, data in _run_layout(length).iter_unpack(memoryview(buf)[pos:stop])
        ]
        return stop

    def _fail(self, buf: bytes, pos: int, frames: list[Frame]) -> NoReturn:
        """Raise the error of the bad header at ``buf[pos:]`` and stay failed."""
        header = buf[pos : pos + HEADER_SIZE]
        try:
            reject_header(header, self.version, self.max_frame_size)
        except ProtocolError as exc:
            exc.frames = frames  # type: ignore[attr-defined]
            self._error = exc
            raise

    def close(self) -> None:
        """Declare the end of the byte stream; a frame cut short raises TruncatedFrameError."""
        if self._error is not None:
            # A fresh traceback each time, or every call would lengthen the stored one.
            raise self._error.with_traceback(None)
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
