"""The asyncio session: one pump between a transport and the sans-IO engine.

Every entry point ends the same way: hand the engine's events to the streams, send
what the engine queued, and pause or resume reading as the engine asks.  All protocol
decisions stay in :class:`~smuxref.engine.Engine`; this module only maps events to
futures and ``loop.time()`` to the engine's ``now``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Protocol

from ..config import Config
from ..engine import Engine
from ..errors import SessionClosedError, SmuxError
from ..events import (
    DataReceived,
    Event,
    SessionEnded,
    StreamEnded,
    StreamOpened,
    WindowUpdated,
)
from ._stream import Stream

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["Link", "Session"]


class Link(Protocol):
    """What a session needs from its transport (see ``_links.py``)."""

    def write(self, data: bytes) -> None: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def close(self) -> None: ...
    async def wait_writable(self) -> None: ...
    async def wait_closed(self) -> None: ...


class Session:
    """A smux session over one byte-stream connection.

    Mirrors Go's ``*smux.Session``: ``open_stream``/``accept_stream``, ``close``,
    ``num_streams``, ``is_closed``.  Use it as ``async with`` to close it on exit.
    """

    def __init__(self, link: Link, config: Config | None, *, client: bool) -> None:
        self._loop = asyncio.get_running_loop()
        self._link = link
        self.config = config if config is not None else Config()
        self.engine = Engine(self.config, client=client, now=self._loop.time())
        self._streams: dict[int, Stream] = {}
        self._accept_queue: deque[Stream] = deque()
        self._accept_waiter: asyncio.Future[None] | None = None
        self._ended: BaseException | None = None
        self._closed_event = asyncio.Event()
        self._reading_paused = False
        #: Set while _handle dispatches events: sends made meanwhile (streams pushing
        #: data a WindowUpdated let through) are flushed together at its end.
        self._dispatching = False
        self._timer: asyncio.TimerHandle | None = None
        self._rearm_timer()

    def __repr__(self) -> str:
        role = "client" if self.engine.client else "server"
        return f"<smuxref.aio.Session {role} v{self.config.version} streams={len(self._streams)}>"

    # ------------------------------------------------------------- public API

    @property
    def num_streams(self) -> int:
        return len(self._streams)

    @property
    def is_closed(self) -> bool:
        return self._ended is not None

    @property
    def error(self) -> BaseException | None:
        """Why the session ended, when it ended on an error (None while open)."""
        if isinstance(self._ended, SessionClosedError) and self._ended.cause is not None:
            return self._ended.cause
        return self._ended

    async def open_stream(self) -> Stream:
        """Open a stream (SYN goes out at once; no reply is awaited, as in Go)."""
        self._check_open()
        sid = self.engine.open_stream()
        stream = Stream(self, sid)
        self._streams[sid] = stream
        self._flush()
        return stream

    async def accept_stream(self) -> Stream:
        """Wait for the next stream the peer opens."""
        while not self._accept_queue:
            self._check_open()
            if self._accept_waiter is not None:
                raise RuntimeError("another task is already accepting")
            self._accept_waiter = self._loop.create_future()
            try:
                await self._accept_waiter
            finally:
                self._accept_waiter = None
        stream = self._accept_queue.popleft()
        self._handle(self.engine.accept(stream.id))
        return stream

    def close(self) -> None:
        """Close the session: nothing is sent, the transport is closed (SPEC.md 11)."""
        if self._ended is None:
            self.engine.close()
            self._terminate(SessionClosedError("session closed locally"))

    async def wait_closed(self) -> None:
        await self._closed_event.wait()
        await self._link.wait_closed()

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
        await self.wait_closed()

    # ------------------------------------------------------- transport input

    def _data_received(self, data: bytes) -> None:
        if self._ended is None:
            self._handle(self.engine.receive_data(data))

    def _eof_received(self) -> None:
        if self._ended is None:
            self._handle(self.engine.connection_lost())

    def _connection_lost(self, exc: BaseException | None) -> None:
        if self._ended is not None:
            self._closed_event.set()
            return
        events = self.engine.connection_lost()
        if exc is not None and events and events[-1] == SessionEnded(error=None):
            # The transport broke (a reset, a failed write): what arrived before still
            # counts, but this is no orderly end, and the cause must say so.
            events.pop()
        self._handle(events)
        if self._ended is None:
            # Frames are still held back for unread streams; once the transport is
            # gone nothing more can arrive, so end now and let readers drain.
            self._terminate(SessionClosedError("connection lost", cause=exc))
        self._closed_event.set()

    # ------------------------------------------------------- stream callbacks

    def _send(self, stream: Stream, data: memoryview) -> int:
        if self._ended is not None:  # _check_open, inlined: this runs once per write
            raise self._ended
        sent = self.engine.send(stream.id, data)
        if not self._dispatching:
            self._flush()
        return sent

    def _consumed(self, stream: Stream, n: int) -> None:
        if self._ended is None:
            self._handle(self.engine.consumed(stream.id, n))

    def _close_write(self, stream: Stream) -> None:
        if self._ended is None:
            self.engine.close_write(stream.id)
            self._flush()

    def _close_stream(self, stream: Stream) -> None:
        self._streams.pop(stream.id, None)
        if self._ended is None:
            self._handle(self.engine.close_stream(stream.id))

    async def _wait_writable(self) -> None:
        self._check_open()
        await self._link.wait_writable()
        # The links wake their writers when the transport is closed or lost; the data
        # that was waiting for room will never be sent, so that is an error, not room.
        self._check_open()

    # ------------------------------------------------------------------ pump

    def _handle(self, events: list[Event]) -> None:
        streams = self._streams
        nested = self._dispatching  # a stream closing from an event lands here again
        self._dispatching = True
        try:
            for event in events:
                if type(event) is DataReceived:
                    stream = streams.get(event.stream_id)
                    if stream is not None:
                        stream._feed(event.data)
                elif type(event) is StreamOpened:
                    stream = Stream(self, event.stream_id)
                    streams[event.stream_id] = stream
                    self._accept_queue.append(stream)
                    waiter = self._accept_waiter
                    if waiter is not None and not waiter.done():
                        waiter.set_result(None)
                elif type(event) is StreamEnded:
                    stream = streams.get(event.stream_id)
                    if stream is not None:
                        stream._feed_eof()
                elif type(event) is WindowUpdated:
                    stream = streams.get(event.stream_id)
                    if stream is not None:
                        stream._window_updated()
                elif type(event) is SessionEnded:
                    error = event.error
                    self._terminate(
                        SessionClosedError("session ended", cause=error)
                        if error is not None
                        else SessionClosedError("peer closed the connection")
                    )
                    return
        finally:
            self._dispatching = nested
        self._flush()  # everything the events caused, in one write
        paused = self.engine.reading_paused
        if paused != self._reading_paused:
            self._reading_paused = paused
            if paused:
                self._link.pause_reading()
            else:
                self._link.resume_reading()

    def _flush(self) -> None:
        data = self.engine.data_to_send()
        if data:
            self._link.write(data)

    def _on_timer(self) -> None:
        self._timer = None
        if self._ended is None:
            self._handle(self.engine.handle_timer(self._loop.time()))
            self._rearm_timer()

    def _rearm_timer(self) -> None:
        when = self.engine.next_timer()
        if when is not None and self._ended is None:
            self._timer = self._loop.call_at(when, self._on_timer)

    def _terminate(self, error: SessionClosedError) -> None:
        if self._ended is not None:
            return
        self._flush()
        self._ended = error
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for stream in list(self._streams.values()):
            stream._session_ended(error)
        waiter = self._accept_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        self._link.close()

    def _check_open(self) -> None:
        if self._ended is not None:
            raise self._ended


def ended_error(session: Session) -> SmuxError | None:
    """The engine-level reason a session ended (for diagnostics)."""
    return session.engine.error
