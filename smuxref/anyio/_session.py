"""The anyio session and stream (see the package docstring)."""

from __future__ import annotations

import logging
import math
from collections import deque
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from .._streaminfo import StreamInfo
from ..config import Config
from ..engine import Engine
from ..errors import SessionClosedError, StreamClosedError
from ..events import (
    DataReceived,
    Event,
    SessionEnded,
    StreamEnded,
    StreamOpened,
    WindowUpdated,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

__all__ = ["Session", "Stream"]

logger = logging.getLogger("smuxref.anyio")

#: Bytes asked of the transport per receive.
READ_SIZE = 256 * 1024


class Stream(anyio.abc.ByteStream):
    """One smux stream: a view of the engine's :class:`StreamInfo` plus the bytes
    received and not read yet."""

    def __init__(self, session: Session, info: StreamInfo) -> None:
        self._session = session
        self._info = info
        #: The smux stream id.
        self.id = info.sid
        self._chunks: deque[bytes] = deque()
        self._released = False
        # One event per direction: a reader and a writer in two tasks wait at once.
        self._readable = anyio.Event()
        self._sendable = anyio.Event()

    def __repr__(self) -> str:
        return f"<smuxref.anyio.Stream id={self.id} {self._info.state.value}>"

    def _wake(self) -> None:
        self._readable.set()
        self._sendable.set()

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """Up to ``max_bytes``; :class:`anyio.EndOfStream` after the peer's FIN."""
        while not self._chunks:
            if self._info.eof:
                raise anyio.EndOfStream
            self._session._check_open()
            if self._released:
                raise anyio.ClosedResourceError
            self._readable = anyio.Event()
            await self._readable.wait()
        head = self._chunks[0]
        if len(head) <= max_bytes:
            data = self._chunks.popleft()
        else:
            data, self._chunks[0] = head[:max_bytes], head[max_bytes:]
        await self._session._run(self._session.engine.consumed, self.id, len(data))
        return data

    async def send(self, item: bytes) -> None:
        """Write ``item`` and wait until the peer's window took it and it is sent."""
        session = self._session
        session._check_open()
        try:
            session.engine.write(self.id, item)
        except StreamClosedError:
            raise anyio.ClosedResourceError from None
        await session._flush()
        while self._info.queued:
            session._check_open()
            self._sendable = anyio.Event()
            await self._sendable.wait()
        if self._info.send_error is not None:
            raise anyio.BrokenResourceError from self._info.send_error

    async def send_eof(self) -> None:
        """Half-close: FIN after the data already sent; receiving goes on."""
        session = self._session
        if session.end_error is None:
            try:
                session.engine.close_write(self.id)
            except StreamClosedError:
                return
            await session._flush()

    async def aclose(self) -> None:
        """Close for good: FIN unless already sent, unread data dropped."""
        if self._released:
            return
        self._released = True
        self._chunks.clear()
        self._wake()
        session = self._session
        if session.end_error is None:
            await session._run(session.engine.close_stream, self.id)


class Session:
    """A smux session over an anyio byte stream; use it as ``async with``.

    Entering starts the receive loop and the keepalive clock in a task group; leaving
    closes the session (nothing is sent, SPEC.md 11) and the transport.
    """

    def __init__(
        self,
        transport: anyio.abc.ByteStream,
        config: Config | None = None,
        *,
        client: bool,
        engine: Callable[..., Engine] = Engine,
    ) -> None:
        self._transport = transport
        self.config = config if config is not None else Config()
        self.engine = engine(self.config, client=client, now=anyio.current_time())
        self._send_lock = anyio.Lock()
        self._accepted_in, self._accepted_out = anyio.create_memory_object_stream[Stream](math.inf)
        self._resume = anyio.Event()
        self._timer_changed = anyio.Event()
        self._end_error: SessionClosedError | None = None
        self._error: BaseException | None = None
        self._group: anyio.abc.TaskGroup | None = None

    # ------------------------------------------------------------- public API

    @property
    def is_closed(self) -> bool:
        return self._end_error is not None

    @property
    def error(self) -> BaseException | None:
        """Why the session ended, when it ended on an error (None otherwise)."""
        return self._error

    @property
    def end_error(self) -> SessionClosedError | None:
        return self._end_error

    @property
    def num_streams(self) -> int:
        return self.engine.num_streams

    async def open_stream(self) -> Stream:
        self._check_open()
        sid = self.engine.open_stream()
        info = self.engine.streams[sid]
        stream = Stream(self, info)
        info.handle = stream
        await self._flush()
        return stream

    async def accept_stream(self) -> Stream:
        """The next stream the peer opens (several tasks may wait at once)."""
        try:
            stream = await self._accepted_out.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            self._check_open()
            raise
        await self._run(self.engine.accept, stream.id)
        return stream

    async def aclose(self) -> None:
        """Close the session: nothing is sent, the transport is closed (SPEC.md 11);
        the receive loop and the keepalive clock end with it."""
        if self._end_error is None:
            views = self._views()
            self.engine.close()
            self._terminate(SessionClosedError("session closed locally"), None, views)
        self._accepted_out.close()
        await self._transport.aclose()

    async def __aenter__(self) -> Session:
        self._group = anyio.create_task_group()
        await self._group.__aenter__()
        self._group.start_soon(self._receive_loop)
        self._group.start_soon(self._timer_loop)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._group is not None
        await self.aclose()
        return await self._group.__aexit__(exc_type, exc, tb)

    # ------------------------------------------------------------------ pump

    def _ended(self) -> bool:
        return self._end_error is not None

    async def _receive_loop(self) -> None:
        engine = self.engine
        try:
            while not self._ended():
                if engine.reading_paused:
                    self._resume = anyio.Event()
                    await self._resume.wait()
                    continue
                try:
                    data = await self._transport.receive(READ_SIZE)
                except anyio.EndOfStream:
                    await self._run(engine.connection_lost)
                    break
                await self._run(engine.receive_data, data)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            events = engine.connection_lost()
            if events and events[-1] == SessionEnded(error=None):
                events.pop()  # a broken transport is no orderly end
            self._dispatch(events)
            self._terminate(SessionClosedError("connection lost", cause=exc), exc)
        self._terminate(SessionClosedError("connection lost"), None)  # no-op if ended
        await self._transport.aclose()

    async def _timer_loop(self) -> None:
        while not self._ended():
            when = self.engine.next_timer()
            self._timer_changed = anyio.Event()
            if when is None:
                await self._timer_changed.wait()
                continue
            with anyio.move_on_after(max(0.0, when - anyio.current_time())):
                await self._timer_changed.wait()
            if not self._ended() and anyio.current_time() >= when:
                try:
                    await self._run(self.engine.handle_timer, anyio.current_time())
                except SessionClosedError:
                    return  # the transport failed; the session has ended

    async def _run(self, call: Callable[..., list[Event]], *args: object) -> None:
        """Call the engine, hand out what it caused, send what it queued."""
        if self._end_error is not None:
            return
        self._dispatch(call(*args))
        await self._flush()

    def _dispatch(self, events: list[Event]) -> None:
        streams = self.engine.streams
        for event in events:
            if type(event) is DataReceived:
                info = streams.get(event.stream_id)
                if info is not None and isinstance(info.handle, Stream):
                    info.handle._chunks.append(event.data)
                    info.handle._wake()
            elif type(event) is StreamEnded or type(event) is WindowUpdated:
                if event.info is not None and isinstance(event.info.handle, Stream):
                    event.info.handle._wake()
            elif type(event) is StreamOpened:
                info = streams[event.stream_id]
                stream = Stream(self, info)
                info.handle = stream
                self._accepted_in.send_nowait(stream)
            elif type(event) is SessionEnded:
                error = event.error
                reason = "session ended" if error is not None else "peer closed the connection"
                self._terminate(SessionClosedError(reason, cause=error), error)
                return
        if not self.engine.reading_paused:
            self._resume.set()
        self._timer_changed.set()

    async def _flush(self) -> None:
        async with self._send_lock:
            data = self.engine.data_to_send()
            if data and self._end_error is None:
                try:
                    await self._transport.send(data)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                    self._terminate(SessionClosedError("connection lost", cause=exc), exc)
                    raise self._fresh_end() from exc

    def _views(self) -> list[Stream]:
        return [i.handle for i in self.engine.streams.values() if isinstance(i.handle, Stream)]

    def _terminate(
        self,
        end_error: SessionClosedError,
        cause: BaseException | None,
        views: list[Stream] | None = None,
    ) -> None:
        if self._end_error is not None:
            return
        views = self._views() if views is None else views
        self._end_error = end_error
        self._error = cause
        (logger.debug if cause is None else logger.info)("%r ended: %s", self, end_error)
        for stream in views:
            stream._wake()
        self._accepted_in.close()
        self._resume.set()
        self._timer_changed.set()

    def _fresh_end(self) -> SessionClosedError:
        assert self._end_error is not None
        return SessionClosedError(str(self._end_error), cause=self._end_error.cause)

    def _check_open(self) -> None:
        if self._end_error is not None:
            raise self._fresh_end()

    def __repr__(self) -> str:
        role = "client" if self.engine.client else "server"
        return f"<smuxref.anyio.Session {role} v{self.config.version}>"
