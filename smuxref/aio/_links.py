"""Transports under a session: an asyncio Protocol (fast path) and a StreamReader/
StreamWriter pair (for connections the application already holds)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import cast

from ..config import Config
from ._session import EngineFactory, Session

__all__ = ["ProtocolLink", "StreamsLink"]

#: Bytes asked of the StreamReader per read: large enough to amortise the pump's
#: per-call work, small enough to bound what is held while the engine is paused.
READ_SIZE = 256 * 1024


class ProtocolLink(asyncio.Protocol):
    """An asyncio Protocol owning one session; used by ``connect`` and ``serve``."""

    def __init__(
        self,
        config: Config | None,
        *,
        client: bool,
        on_session: Callable[[Session], None],
        engine: EngineFactory,
    ) -> None:
        self._config = config
        self._client = client
        self._engine = engine
        self._on_session = on_session
        self._transport: asyncio.Transport | None = None
        self._session: Session | None = None
        self._writable: asyncio.Future[None] | None = None
        self._closed: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport, though not necessarily an asyncio.Transport subclass
        # (uvloop's are not), so no isinstance check.
        self._transport = cast(asyncio.Transport, transport)
        self._closed = asyncio.get_running_loop().create_future()
        self._session = Session(self, self._config, client=self._client, engine=self._engine)
        self._on_session(self._session)

    def data_received(self, data: bytes) -> None:
        assert self._session is not None
        self._session.data_received(data)

    def eof_received(self) -> bool:
        assert self._session is not None
        self._session.eof_received()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)
        if self._session is not None:
            self._session.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._writable is None or self._writable.done():
            self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    # -- Transport

    def write(self, data: bytes) -> None:
        assert self._transport is not None
        if not self._transport.is_closing():
            self._transport.write(data)

    def pause_reading(self) -> None:
        assert self._transport is not None
        if not self._transport.is_closing():
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        assert self._transport is not None
        if not self._transport.is_closing():
            self._transport.resume_reading()

    def close(self) -> None:
        assert self._transport is not None
        self._transport.close()
        # The transport still flushes what it holds, which takes as long as the peer
        # likes; writers waiting for room are woken now (the session has ended).
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    async def wait_writable(self) -> None:
        writable = self._writable
        if writable is not None and not writable.done():
            await writable
        elif self._transport is not None and self._transport.is_closing():
            # The transport failed (a reset, the peer killed) and drops writes; its
            # connection_lost is scheduled but only runs if the writer yields, or a
            # write/drain loop would spin forever (asyncio's drain does the same).
            # Checked whenever no pause is pending: a future left done by an earlier
            # resume_writing must not hide the failure.
            await asyncio.sleep(0)

    async def wait_closed(self) -> None:
        if self._closed is not None:
            await self._closed


class StreamsLink:
    """Drive a session from an existing ``(StreamReader, StreamWriter)`` pair."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._resume = asyncio.Event()
        self._resume.set()
        self._task: asyncio.Task[None] | None = None
        self._session: Session | None = None
        self._closing = asyncio.get_running_loop().create_future()
        self._lost: asyncio.Task[None] | None = None

    def start(self, session: Session) -> None:
        self._session = session
        self._task = asyncio.get_running_loop().create_task(self._pump())

    async def _pump(self) -> None:
        session = self._session
        assert session is not None
        error: BaseException | None = None
        try:
            while not session.is_closed:
                if not self._resume.is_set():
                    await self._wait_resumed()
                data = await self._reader.read(READ_SIZE)
                if not data:
                    session.eof_received()
                    break
                session.data_received(data)
        except (ConnectionError, OSError) as exc:
            error = exc
        finally:
            session.connection_lost(error)

    async def _wait_resumed(self) -> None:
        """Wait for resume_reading, or for the connection to be lost meanwhile: a paused
        session must still learn that its transport is gone (closed or aborted)."""
        if self._lost is None:
            # One watcher for the link's life; never cancelled, since cancelling it would
            # cancel the protocol's own close future.
            self._lost = asyncio.ensure_future(self._connection_lost())
        resume = asyncio.ensure_future(self._resume.wait())
        try:
            await asyncio.wait((resume, self._lost), return_when=asyncio.FIRST_COMPLETED)
        finally:
            resume.cancel()

    async def _connection_lost(self) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()  # the read that follows reports the error

    # -- Transport

    def write(self, data: bytes) -> None:
        if not self._writer.is_closing():
            self._writer.write(data)

    def pause_reading(self) -> None:
        self._resume.clear()

    def resume_reading(self) -> None:
        self._resume.set()

    def close(self) -> None:
        self._writer.close()
        self._resume.set()
        if not self._closing.done():
            self._closing.set_result(None)

    async def wait_writable(self) -> None:
        transport = self._writer.transport
        if self._closing.done():
            return
        try:
            if transport.get_write_buffer_size() <= transport.get_write_buffer_limits()[0]:
                await self._writer.drain()  # below the low-water mark: never blocks
                return
            # It may block until the peer reads; close() must wake it (the transport
            # flushes on close, which takes as long as the peer likes).
            drain = asyncio.ensure_future(self._writer.drain())
            try:
                await asyncio.wait((drain, self._closing), return_when=asyncio.FIRST_COMPLETED)
            except BaseException:
                drain.cancel()
                raise
            if drain.done():
                drain.result()
            else:
                drain.cancel()
        except ConnectionError:
            # The connection is lost: StreamWriter.drain raises at once from now on.
            # Yield so that the pump reads the error and ends the session, or a
            # write/drain loop would spin without ever letting it run.
            await asyncio.sleep(0)

    async def wait_closed(self) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()
        if self._task is not None and self._task is not asyncio.current_task():
            await asyncio.gather(self._task, return_exceptions=True)
