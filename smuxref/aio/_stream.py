"""The asyncio stream: a byte pipe in each direction over one smux stream.

Reading follows :class:`asyncio.StreamReader` (``read``, ``readexactly``, EOF as
``b""``); writing follows :class:`asyncio.StreamWriter` (``write`` buffers, ``drain``
waits).  Every read reports the bytes to the engine, which is what refills the
session's receive buffer and, in version 2, sends UPD frames.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from ..errors import SessionClosedError, SmuxError, StreamClosedError

if TYPE_CHECKING:
    from types import TracebackType

    from ._session import Session

__all__ = ["Stream"]


class Stream:
    """One smux stream of a :class:`~smuxref.aio.Session`."""

    __slots__ = (
        "_chunks",
        "_eof",
        "_error",
        "_fin_pending",
        "_pending",
        "_read_waiter",
        "_readable",
        "_reported",
        "_session",
        "_state",
        "_write_waiter",
        "id",
    )

    def __init__(self, session: Session, stream_id: int) -> None:
        self._session = session
        #: The smux stream id.
        self.id = stream_id
        self._chunks: deque[bytes] | None = None
        self._readable = 0
        #: Bytes at the front of ``_chunks`` already reported consumed to the engine (put
        #: back by a cancelled readexactly/readline).
        self._reported = 0
        self._eof = False
        #: Error to raise once buffered data is gone (session ended without our FIN).
        self._error: BaseException | None = None
        self._read_waiter: asyncio.Future[None] | None = None
        self._write_waiter: asyncio.Future[None] | None = None
        #: Version 2: bytes written but not yet within the peer's window.
        self._pending: deque[memoryview] | None = None
        self._fin_pending = False
        #: "open", "write_closed" (close_write called) or "closed" (close called).
        self._state = "open"

    def __repr__(self) -> str:
        return f"<smuxref.aio.Stream id={self.id} {self._state} readable={self._readable}>"

    # ---------------------------------------------------------------- reading

    async def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all until EOF when ``n`` < 0); ``b""`` at EOF."""
        if n == 0:
            return b""
        if n < 0:
            parts = []
            while chunk := await self.read(1 << 20):
                parts.append(chunk)
            return b"".join(parts)
        while not self._readable:
            if self._eof:
                return b""
            if self._error is not None:
                raise self._error
            if self._state in ("closed", "closing"):
                raise StreamClosedError(f"stream {self.id} is closed")
            await self._wait_readable()
        return self._take(n)

    async def readexactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes, or :class:`asyncio.IncompleteReadError` at EOF."""
        parts: list[bytes] = []
        got = 0
        try:
            while got < n:
                chunk = await self.read(n - got)
                if not chunk:
                    raise asyncio.IncompleteReadError(b"".join(parts), n)
                parts.append(chunk)
                got += len(chunk)
        except asyncio.IncompleteReadError:
            raise
        except BaseException:
            self._unread(parts)  # cancelled or failed: the next read gets these bytes
            raise
        return b"".join(parts)

    async def readline(self, limit: int = -1) -> bytes:
        """One line including ``\\n``, what is left at EOF, or at most ``limit`` bytes
        when no newline came within them (the caller sees no ``\\n`` at the end)."""
        parts: list[bytes] = []
        got = 0
        try:
            while True:
                if 0 <= limit <= got:
                    return b"".join(parts)
                while not self._readable:
                    if self._eof:
                        return b"".join(parts)
                    if self._error is not None:
                        raise self._error
                    if self._state in ("closed", "closing"):
                        raise StreamClosedError(f"stream {self.id} is closed")
                    await self._wait_readable()
                assert self._chunks is not None
                head = self._chunks[0]
                room = len(head) if limit < 0 else min(len(head), limit - got)
                cut = head.find(b"\n", 0, room)
                if cut >= 0:
                    parts.append(self._take(cut + 1))
                    return b"".join(parts)
                parts.append(self._take(room))
                got += room
        except BaseException:
            self._unread(parts)  # cancelled or failed: the next read gets these bytes
            raise

    def at_eof(self) -> bool:
        """The peer sent FIN and every byte before it has been read."""
        return self._eof and not self._readable

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        while chunk := await self.read(1 << 16):
            yield chunk

    def _wait_readable(self) -> asyncio.Future[None]:
        """The future the next data, EOF or error resolves; the caller awaits it.

        A plain future rather than a coroutine: a reader that waits is resumed straight
        from it, with no extra frame to pass through.  A waiter that is done (resolved,
        or cancelled with its reader) no longer counts as a reader.
        """
        waiter = self._read_waiter
        if waiter is not None and not waiter.done():
            raise RuntimeError(f"stream {self.id}: another task is already reading")
        waiter = self._read_waiter = self._session._loop.create_future()
        return waiter

    def _take(self, n: int) -> bytes:
        chunks = self._chunks
        assert chunks is not None
        head = chunks[0]
        if len(head) <= n:
            chunks.popleft()
            data = head
            if len(head) < n and chunks:
                parts = [head]
                got = len(head)
                while chunks and got + len(chunks[0]) <= n:
                    part = chunks.popleft()
                    parts.append(part)
                    got += len(part)
                data = b"".join(parts)
        else:
            data = head[:n]
            chunks[0] = head[n:]
        self._readable -= len(data)
        if self._reported:
            skip = min(self._reported, len(data))
            self._reported -= skip
            if skip < len(data):
                self._session._consumed(self, len(data) - skip)
            return data
        self._session._consumed(self, len(data))
        return data

    def _unread(self, parts: list[bytes]) -> None:
        """Put back bytes a failed readexactly/readline took; they stay reported consumed."""
        data = b"".join(parts)
        if not data or self._state in ("closed", "closing"):
            return
        if self._chunks is None:
            self._chunks = deque()
        self._chunks.appendleft(data)
        self._readable += len(data)
        self._reported += len(data)

    # -- called by the session

    def _feed(self, data: bytes) -> None:
        if self._chunks is None:
            self._chunks = deque()
        self._chunks.append(data)
        self._readable += len(data)
        self._wake_reader()

    def _feed_eof(self) -> None:
        self._eof = True
        self._wake_reader()

    def _wake_reader(self) -> None:
        waiter = self._read_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _session_ended(self, error: BaseException) -> None:
        if not self._eof:
            self._error = error
        self._pending = None
        self._wake_reader()
        self._wake_writer(error)

    # ---------------------------------------------------------------- writing

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue ``data``; it goes out as the peer's window allows.  Await :meth:`drain`."""
        if self._state != "open" or self._fin_pending:
            raise StreamClosedError(f"stream {self.id} is closed for writing")
        if self._error is not None:
            raise self._error
        if not data:
            return
        session = self._session
        view = memoryview(data if isinstance(data, bytes) else bytes(data))
        if self._pending:
            self._pending.append(view)
            return
        sent = session._send(self, view)
        if sent < len(view):
            if self._pending is None:
                self._pending = deque()
            self._pending.append(view[sent:])

    async def drain(self) -> None:
        """Wait until written data is within the peer's window and the transport has room."""
        while self._pending:
            if self._error is not None:
                raise self._error
            if self._write_waiter is not None:
                raise RuntimeError(f"stream {self.id}: another task is already draining")
            self._write_waiter = self._session._loop.create_future()
            try:
                await self._write_waiter
            finally:
                self._write_waiter = None
        if self._error is not None and not self._eof:
            raise self._error
        await self._session._wait_writable()

    def _window_updated(self) -> None:
        """The peer's window moved: push what was waiting for it."""
        pending = self._pending
        session = self._session
        try:
            while pending:
                head = pending[0]
                sent = session._send(self, head)
                if sent == len(head):
                    pending.popleft()
                else:
                    pending[0] = head[sent:]
                    return
        except SmuxError as exc:
            self._error = exc
            self._pending = None
            self._wake_writer(exc)
            return
        self._wake_writer(None)
        if self._fin_pending:
            self._fin_pending = False
            self._finish_write_side()

    def _wake_writer(self, error: BaseException | None) -> None:
        waiter = self._write_waiter
        if waiter is not None and not waiter.done():
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)

    # ---------------------------------------------------------------- closing

    def close_write(self) -> None:
        """Send FIN after the data already written; reading goes on (half-close)."""
        if self._state != "open" or self._fin_pending:
            return
        if self._pending:
            self._fin_pending = True
            return
        self._finish_write_side()

    def _finish_write_side(self) -> None:
        if self._state == "open":
            self._state = "write_closed"
            self._session._close_write(self)
        elif self._state == "closing":
            self._state = "closed"
            self._session._close_stream(self)

    def close(self) -> None:
        """Close for good: FIN after the data already written, unread data dropped."""
        if self._state in ("closed", "closing"):
            return
        self._chunks = None
        if self._readable > self._reported:
            self._session._consumed(self, self._readable - self._reported)
        self._readable = 0
        self._reported = 0
        self._wake_reader()  # a read waiting in another task ends with StreamClosedError
        if self._pending and self._error is None:
            self._state = "closing"
            self._fin_pending = True
            return
        self._state = "closed"
        self._session._close_stream(self)

    async def wait_closed(self) -> None:
        """Wait until data written before :meth:`close` has been handed to the transport."""
        while self._state == "closing" and self._pending and self._error is None:
            self._write_waiter = self._session._loop.create_future()
            try:
                await self._write_waiter
            finally:
                self._write_waiter = None
        await self._session._wait_writable()

    @property
    def is_closed(self) -> bool:
        return self._state == "closed"

    async def __aenter__(self) -> Stream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
        if exc is None:
            with contextlib.suppress(SessionClosedError):
                await self.wait_closed()
