"""An in-memory byte pipe for smuxref.aio sessions, and an event loop whose clock only
moves when nothing else can happen.

The pipe is written against the public :class:`smuxref.aio.Transport` interface and
nothing else: it is the proof that a session runs on a transport smuxref does not
ship.  With no sockets under it, a session's only waits are its keepalive timers, so
:class:`VirtualClockLoop` can jump its clock to the next timer at once: tests of
keepalive timing run in microseconds and measure time exactly, on the loop's clock.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from smuxref import aio
from smuxref.config import Config

__all__ = ["MemoryTransport", "VirtualClockLoop", "lone_session", "memory_pair", "run_virtual"]

_T = TypeVar("_T")


class MemoryTransport:
    """One end of an in-memory pipe.  Bytes written reach the other end's session on the
    next loop iteration; ``written`` keeps everything this end wrote.  With no other
    end it is a peer that reads everything and says nothing."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.other: MemoryTransport | None = None
        self.session: aio.Session | None = None
        self.written = bytearray()
        self._inbox: list[bytes] = []
        self._paused = False
        self._eof = False
        self._closing = False
        self._closed = self._loop.create_future()

    def write(self, data: bytes) -> None:
        if self._closing:
            return
        self.written += data
        if self.other is not None:
            self._loop.call_soon(self.other._arrive, bytes(data))

    def pause_reading(self) -> None:
        self._paused = True

    def resume_reading(self) -> None:
        self._paused = False
        self._loop.call_soon(self._pump)

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        if self.other is not None:
            self._loop.call_soon(self.other._arrive_eof)
        self._loop.call_soon(self._lost)

    async def wait_writable(self) -> None:
        return None

    async def wait_closed(self) -> None:
        await self._closed

    def _arrive(self, data: bytes) -> None:
        self._inbox.append(data)
        self._pump()

    def _arrive_eof(self) -> None:
        self._eof = True
        self._pump()

    def _pump(self) -> None:
        session = self.session
        assert session is not None
        while self._inbox and not self._paused and not self._closing:
            session.data_received(self._inbox.pop(0))
        if self._eof and not self._inbox and not self._closing:
            session.eof_received()

    def _lost(self) -> None:
        if self.session is not None:
            self.session.connection_lost(None)
        if not self._closed.done():
            self._closed.set_result(None)


def memory_pair(config: Config | None = None, **engine: Any) -> tuple[aio.Session, aio.Session]:
    """A client and a server session joined by an in-memory pipe."""
    ends = MemoryTransport(), MemoryTransport()
    ends[0].other, ends[1].other = ends[1], ends[0]
    client = aio.Session(ends[0], config, client=True, **engine)
    server = aio.Session(ends[1], config, client=False, **engine)
    ends[0].session, ends[1].session = client, server
    return client, server


def lone_session(config: Config) -> tuple[aio.Session, MemoryTransport]:
    """A client session whose peer reads everything and never sends."""
    end = MemoryTransport()
    session = aio.Session(end, config, client=True)
    end.session = session
    return session, end


class _JumpingSelector(selectors.DefaultSelector):
    """A selector that, when it would sleep, advances a virtual clock instead."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = 0.0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        events: list[tuple[selectors.SelectorKey, int]] = super().select(0)
        if events or timeout == 0:
            return events
        if timeout is None:
            # Nothing scheduled and nothing ready: only real I/O could wake the loop.
            events = super().select(5.0)
            if not events:
                raise RuntimeError("virtual clock: deadlock (no timer, no I/O)")
            return events
        self.clock += timeout
        return []


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An asyncio loop on a virtual clock that jumps to the next timer when idle."""

    def __init__(self) -> None:
        self._jumping = _JumpingSelector()
        super().__init__(self._jumping)

    def time(self) -> float:
        return self._jumping.clock


def run_virtual(main: Callable[[], Awaitable[_T]]) -> _T:
    """Run ``main()`` to completion on a fresh :class:`VirtualClockLoop`."""
    loop = VirtualClockLoop()
    try:
        return loop.run_until_complete(main())
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
