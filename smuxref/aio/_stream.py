"""The asyncio stream: a byte pipe in each direction over one smux stream.

Reading follows :class:`asyncio.StreamReader` (``read``, ``readexactly``, EOF as
``b""``); writing follows :class:`asyncio.StreamWriter` (``write`` buffers, ``drain``
waits).  A :class:`Stream` is a view of the engine's record of the stream
(:class:`~smuxref.engine.StreamInfo`): state, end of stream, read accounting and the
data waiting for the peer's window all live there.  The view holds only the received
bytes not read yet and the futures its reader and writer wait on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from ..errors import SessionClosedError, StreamClosedError
from ._host import StreamHost, fresh

if TYPE_CHECKING:
    from types import TracebackType

    from ..engine import StreamInfo

__all__ = ["Stream"]

#: ``Stream._chunks`` once the application closed the stream: its unread data is
#: discarded and nothing is kept from then on.  Never appended to.
_RELEASED: deque[bytes] = deque(maxlen=0)


class Stream:
    """One smux stream of a :class:`~smuxref.aio.Session`."""

    __slots__ = ("_chunks", "_host", "_info", "_read_waiter", "_write_waiter", "id")

    def __init__(self, host: StreamHost, info: StreamInfo) -> None:
        self._host = host
        self._info = info
        #: The smux stream id.
        self.id = info.sid
        #: Received bytes not read yet (None until some arrive: a stream costs little
        #: while idle); _RELEASED once the application closed the stream.
        self._chunks: deque[bytes] | None = None
        self._read_waiter: asyncio.Future[None] | None = None
        self._write_waiter: asyncio.Future[None] | None = None

    def __repr__(self) -> str:
        info = self._info
        unread = sum(map(len, self._chunks)) if self._chunks else 0
        return f"<smuxref.aio.Stream id={self.id} {info.state.value} unread={unread}>"

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
        while not self._chunks:
            if self._at_end():
                return b""
            await self._wait_readable()
        return self._take(n)

    def _at_end(self) -> bool:
        """With nothing buffered: True at EOF; raises if no data can come any more."""
        if self._info.eof:
            return True
        error = self._host.end_error
        if error is not None:
            raise fresh(error)
        if self._chunks is _RELEASED:
            raise StreamClosedError(f"stream {self.id} is closed")
        return False

    async def readexactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes, or :class:`asyncio.IncompleteReadError` at EOF."""
        if n <= 0:
            return b""
        first = await self.read(n)  # nothing taken yet: a cancel here loses nothing
        if len(first) == n:
            return first  # the usual case, whole in one piece: no list, no join
        if not first:
            raise asyncio.IncompleteReadError(b"", n)
        parts = [first]
        got = len(first)
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
                while not self._chunks:
                    if self._at_end():
                        return b"".join(parts)
                    await self._wait_readable()
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
        return self._info.eof and not self._chunks

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
        waiter = self._read_waiter = self._host.loop.create_future()
        return waiter

    def _take(self, n: int) -> bytes:
        chunks = self._chunks
        assert chunks
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
        self._host.consumed(self.id, len(data))
        return data

    def _unread(self, parts: list[bytes]) -> None:
        """Put back bytes a failed readexactly/readline took; the engine already counted
        them read, and is told not to count them again."""
        data = b"".join(parts)
        if not data or self._chunks is _RELEASED:
            return
        if self._chunks is None:
            self._chunks = deque()
        self._chunks.appendleft(data)
        self._host.engine.unread(self.id, len(data))

    # -- called by the session

    def _feed(self, data: bytes) -> None:
        chunks = self._chunks
        if chunks is None:
            chunks = self._chunks = deque()
        chunks.append(data)  # a no-op on _RELEASED (maxlen 0)
        self._wake_reader()

    def _wake_reader(self) -> None:
        waiter = self._read_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake_writer(self) -> None:
        waiter = self._write_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _window_updated(self) -> None:
        if not self._info.queued:
            self._wake_writer()

    def _session_ended(self) -> None:
        self._wake_reader()
        self._wake_writer()

    # ---------------------------------------------------------------- writing

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue ``data``; it goes out as the peer's window allows.  Await :meth:`drain`."""
        host = self._host
        error = host.end_error
        if error is not None:
            raise fresh(error)
        host.engine.write(self.id, data)
        host.sent()

    async def drain(self) -> None:
        """Wait until written data is within the peer's window and the transport has room."""
        info = self._info
        if info.queued:
            await self._wait_sent()
        if info.send_error is not None:
            raise fresh(info.send_error)
        await self._host.wait_writable()

    async def _wait_sent(self) -> None:
        """Wait until the engine holds none of this stream's written data."""
        info = self._info
        while info.queued:
            error = self._host.end_error
            if error is not None:
                raise fresh(error)
            if self._write_waiter is not None:
                raise RuntimeError(f"stream {self.id}: another task is already draining")
            self._write_waiter = self._host.loop.create_future()
            try:
                await self._write_waiter
            finally:
                self._write_waiter = None

    # ---------------------------------------------------------------- closing

    def close_write(self) -> None:
        """Send FIN after the data already written; reading goes on (half-close).
        Does nothing when writing is already closed."""
        with contextlib.suppress(StreamClosedError):
            self._host.close_write(self.id)

    def close(self) -> None:
        """Close for good: FIN after the data already written, unread data dropped."""
        if self._chunks is _RELEASED:
            return
        self._chunks = _RELEASED
        self._wake_reader()  # a read waiting in another task ends with StreamClosedError
        self._host.close_stream(self.id)

    async def wait_closed(self) -> None:
        """Wait until data written before :meth:`close` has been handed to the transport."""
        if self._host.end_error is None and self._info.send_error is None:
            await self._wait_sent()
        await self._host.wait_writable()

    @property
    def is_closed(self) -> bool:
        """Closed by the application, and everything written before went out."""
        info = self._info
        return self._chunks is _RELEASED and not info.queued and not info.fin_queued

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
