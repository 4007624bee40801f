"""The asyncio session: one pump between a transport and the sans-IO engine.

Every entry point ends the same way: hand the engine's events to the streams, send
what the engine queued, and pause or resume reading as the engine asks.  All protocol
decisions, and every stream's state, stay in :class:`~smuxref.engine.Engine`; this
module only maps events to futures and ``loop.time()`` to the engine's ``now``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from ..config import Config
from ..engine import Engine
from ..errors import SessionClosedError
from ..events import (
    DataReceived,
    Event,
    SessionEnded,
    StreamEnded,
    StreamOpened,
    WindowUpdated,
)
from ._host import fresh
from ._stream import Stream

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["EngineFactory", "Session", "Transport"]

logger = logging.getLogger("smuxref.aio")


class Transport(Protocol):
    """What a session needs from the byte stream under it.

    Implement this to run smux over anything that carries bytes in order (a TLS
    object, a pipe, a QUIC stream, another framework's socket).  The transport in
    turn calls the session's :meth:`Session.data_received`,
    :meth:`Session.eof_received` and :meth:`Session.connection_lost`.
    """

    def write(self, data: bytes) -> None:
        """Send ``data`` (buffered; never blocks).  Ignored once the transport closes."""

    def pause_reading(self) -> None:
        """Stop calling ``data_received`` until :meth:`resume_reading`."""

    def resume_reading(self) -> None: ...

    def close(self) -> None:
        """Close the connection; waiters in :meth:`wait_writable` must wake."""

    async def wait_writable(self) -> None:
        """Return once the transport's send buffer is below its high-water mark."""

    async def wait_closed(self) -> None:
        """Return once the connection is closed and the transport has stopped."""


#: How a session makes its engine: ``Engine`` itself, a subclass, or any callable
#: taking the same arguments (the conformance suite injects deliberately broken ones).
EngineFactory = Callable[..., Engine]


class Session:
    """A smux session over one byte-stream connection.

    Mirrors Go's ``*smux.Session``: ``open_stream``/``accept_stream``, ``close``,
    ``num_streams``, ``is_closed``.  Use it as ``async with`` to close it on exit.
    ``engine`` picks the sans-IO engine class (or factory) that runs the protocol.
    """

    def __init__(
        self,
        transport: Transport,
        config: Config | None = None,
        *,
        client: bool,
        engine: EngineFactory = Engine,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._transport = transport
        self.config = config if config is not None else Config()
        self.engine = engine(self.config, client=client, now=self._loop.time())
        self._accept_queue: deque[Stream] = deque()
        self._accept_waiters: deque[asyncio.Future[None]] = deque()
        #: What operations raise once the session has ended, and what ended it.
        self._end_error: SessionClosedError | None = None
        self._error: BaseException | None = None
        self._closed_event = asyncio.Event()
        self._reading_paused = False
        #: Set while _handle dispatches events: sends made meanwhile (streams pushing
        #: data a WindowUpdated let through) are flushed together at its end.
        self._dispatching = False
        self._timer: asyncio.TimerHandle | None = None
        self._rearm_timer()

    def __repr__(self) -> str:
        role = "client" if self.engine.client else "server"
        return (
            f"<smuxref.aio.Session {role} v{self.config.version}"
            f" streams={self.engine.num_streams}{' closed' if self.is_closed else ''}>"
        )

    # ------------------------------------------------------------- public API

    @property
    def transport(self) -> Transport:
        """The transport the session runs on."""
        return self._transport

    @property
    def num_streams(self) -> int:
        """Streams the engine tracks (see :attr:`Engine.num_streams`)."""
        return self.engine.num_streams

    @property
    def is_closed(self) -> bool:
        return self._end_error is not None

    @property
    def error(self) -> BaseException | None:
        """Why the session ended, when it ended on an error: a protocol violation, a
        keepalive timeout, a broken transport.  None while open, and after a clean end
        (the peer closed the connection, or this side closed the session)."""
        return self._error

    async def open_stream(self) -> Stream:
        """Open a stream (SYN goes out at once; no reply is awaited, as in Go)."""
        self._check_open()
        engine = self.engine
        sid = engine.open_stream()
        info = engine.streams[sid]
        stream = Stream(self, info)
        info.handle = stream
        self.sent()
        return stream

    async def accept_stream(self) -> Stream:
        """Wait for the next stream the peer opens.  Several tasks may wait at once,
        as with Go's AcceptStream; each stream goes to one of them."""
        while not self._accept_queue:
            self._check_open()
            waiter = self._loop.create_future()
            self._accept_waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                woken = waiter.done() and not waiter.cancelled()
                waiter.cancel()
                with contextlib.suppress(ValueError):
                    self._accept_waiters.remove(waiter)
                if woken and self._accept_queue:
                    self._wake_accepter()  # cancelled as it was woken: pass it on
                raise
        stream = self._accept_queue.popleft()
        self._handle(self.engine.accept(stream.id))
        if self._accept_queue:
            self._wake_accepter()  # more streams than woken accepters
        return stream

    def _wake_accepter(self) -> None:
        while self._accept_waiters:
            waiter = self._accept_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def close(self) -> None:
        """Close the session: nothing is sent, the transport is closed (SPEC.md 11)."""
        if self._end_error is None:
            views = self._views()
            self.engine.close()
            self._terminate(SessionClosedError("session closed locally"), None, views)

    async def wait_closed(self) -> None:
        await self._closed_event.wait()
        await self._transport.wait_closed()

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

    # ----------------------------------------------- called by the transport

    def data_received(self, data: bytes) -> None:
        """Bytes arrived from the peer."""
        if self._end_error is None:
            self._handle(self.engine.receive_data(data))

    def eof_received(self) -> None:
        """The peer closed its sending side (EOF)."""
        if self._end_error is None:
            self._handle(self.engine.connection_lost())

    def connection_lost(self, exc: BaseException | None) -> None:
        """The connection is gone: ``exc`` is None for a plain close."""
        if self._end_error is not None:
            self._closed_event.set()
            return
        events = self.engine.connection_lost()
        if exc is not None and events and events[-1] == SessionEnded(error=None):
            # The transport broke (a reset, a failed write): what arrived before still
            # counts, but this is no orderly end, and the cause must say so.
            events.pop()
        self._handle(events)
        if self._end_error is None:
            # Frames are still held back for unread streams; once the transport is
            # gone nothing more can arrive, so end now and let readers drain.
            self._terminate(SessionClosedError("connection lost", cause=exc), exc)
        self._closed_event.set()

    # ------------------------------------------------ called by the streams

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    @property
    def end_error(self) -> SessionClosedError | None:
        return self._end_error

    def sent(self) -> None:
        if not self._dispatching:
            self._flush()

    def consumed(self, sid: int, n: int) -> None:
        if self._end_error is None:
            events = self.engine.consumed(sid, n)
            if events:
                self._handle(events)
            else:  # the usual read: perhaps a UPD to send, or reading to resume
                self._flush_and_pace()

    def close_write(self, sid: int) -> None:
        if self._end_error is None:
            self.engine.close_write(sid)
            self._flush()

    def close_stream(self, sid: int) -> None:
        if self._end_error is None:
            self._handle(self.engine.close_stream(sid))

    async def wait_writable(self) -> None:
        self._check_open()
        await self._transport.wait_writable()
        # The transports wake their writers when closed or lost; the data that was
        # waiting for room will never be sent, so that is an error, not room.
        self._check_open()

    # ------------------------------------------------------------------ pump

    def _handle(self, events: list[Event]) -> None:
        streams = self.engine.streams
        nested = self._dispatching  # a stream closing from an event lands here again
        self._dispatching = True
        try:
            for event in events:
                if type(event) is DataReceived:
                    info = streams.get(event.stream_id)
                    if info is not None and info.handle is not None:
                        view: Stream = info.handle  # type: ignore[assignment]
                        view._feed(event.data)
                elif type(event) is WindowUpdated or type(event) is StreamEnded:
                    info = event.info
                    if info is not None and info.handle is not None:
                        view = info.handle  # type: ignore[assignment]
                        if type(event) is StreamEnded:
                            view._wake_reader()
                        else:
                            view._window_updated()
                elif type(event) is StreamOpened:
                    info = streams[event.stream_id]
                    stream = Stream(self, info)
                    info.handle = stream
                    self._accept_queue.append(stream)
                    self._wake_accepter()
                elif type(event) is SessionEnded:
                    error = event.error
                    self._terminate(
                        SessionClosedError("session ended", cause=error)
                        if error is not None
                        else SessionClosedError("peer closed the connection"),
                        error,
                    )
                    return
        finally:
            self._dispatching = nested
        self._flush_and_pace()

    def _flush_and_pace(self) -> None:
        """Send everything the engine queued, in one write, and pause or resume reading
        as the engine now asks."""
        self._flush()
        paused = self.engine.reading_paused
        if paused != self._reading_paused:
            self._reading_paused = paused
            if paused:
                self._transport.pause_reading()
            else:
                self._transport.resume_reading()

    def _flush(self) -> None:
        data = self.engine.data_to_send()
        if data:
            self._transport.write(data)

    def _on_timer(self) -> None:
        self._timer = None
        if self._end_error is None:
            self._handle(self.engine.handle_timer(self._loop.time()))
            self._rearm_timer()

    def _rearm_timer(self) -> None:
        when = self.engine.next_timer()
        if when is not None and self._end_error is None:
            self._timer = self._loop.call_at(when, self._on_timer)

    def _views(self) -> list[Stream]:
        views: list[Stream] = []
        for info in self.engine.streams.values():
            if isinstance(info.handle, Stream):
                views.append(info.handle)
        return views

    def _terminate(
        self,
        end_error: SessionClosedError,
        cause: BaseException | None,
        views: list[Stream] | None = None,
    ) -> None:
        if self._end_error is not None:
            return
        if views is None:
            views = self._views()
        self._flush()
        self._end_error = end_error
        self._error = cause
        if cause is None:
            logger.debug("%r ended: %s", self, end_error)
        else:
            logger.info("%r ended: %s: %s", self, end_error, cause)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for stream in views:
            stream._session_ended()
        while self._accept_waiters:
            waiter = self._accept_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the accepter's loop raises the error
        self._transport.close()

    def _check_open(self) -> None:
        if self._end_error is not None:
            raise fresh(self._end_error)
