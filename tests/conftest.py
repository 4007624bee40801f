"""Shared fixtures for the asyncio tests: scaled deadlines, loopback session pairs over
both link types (``aio.serve``/``aio.connect`` and ``aio.server``/``aio.client`` on
``asyncio`` streams), raw TCP peers, and a leak check at teardown.

Every wait in a test is bounded by ``async with deadline(seconds)``; the seconds are
multiplied by the one knob ``SMUX_TIMEOUT_SCALE`` (environment, default 1) so that a slow
machine can stretch every deadline at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from smuxref import aio
from smuxref.aio._links import ProtocolLink
from smuxref.config import Config
from smuxref_conformance.wire import RawConnection

#: The one scale applied to every deadline and timing slack in the tests.
TIMEOUT_SCALE = float(os.environ.get("SMUX_TIMEOUT_SCALE") or "1")
LOCALHOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class Deadline:
    """``deadline(s)`` is ``asyncio.timeout(s * scale)``; ``deadline.scaled(s)`` is the seconds."""

    scale: float

    def __call__(self, seconds: float) -> asyncio.Timeout:
        return asyncio.timeout(self.scaled(seconds))

    def scaled(self, seconds: float) -> float:
        return seconds * self.scale


@pytest.fixture
async def deadline() -> AsyncIterator[Deadline]:
    """Scaled deadlines; the test runs in asyncio debug mode and must leave no task behind."""
    loop = asyncio.get_running_loop()
    loop.set_debug(True)
    unhandled: list[str] = []
    previous = loop.get_exception_handler()

    def record(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        unhandled.append(f"{context.get('message')}: {context.get('exception')!r}")
        loop.default_exception_handler(context)

    loop.set_exception_handler(record)
    helper = Deadline(TIMEOUT_SCALE)
    yield helper
    current = asyncio.current_task()
    others = [task for task in asyncio.all_tasks() if task is not current]
    if others:
        _, pending = await asyncio.wait(others, timeout=helper.scaled(5))
        if pending:
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=helper.scaled(5))
            pytest.fail(f"tasks still running at teardown: {sorted(map(repr, pending))}")
    # Collect now so that an unclosed transport's ResourceWarning, or a task whose
    # exception nobody retrieved, fails this test.
    gc.collect()
    loop.set_exception_handler(previous)
    if unhandled:
        pytest.fail("unhandled errors in the event loop:\n" + "\n".join(unhandled))


# ----------------------------------------------------------------- session pairs


@dataclass(slots=True)
class AioPair:
    """A connected client and server session over loopback TCP."""

    client: aio.Session
    server: aio.Session
    version: int
    link: str
    #: The server side's raw transport, to simulate a broken connection.
    server_transport: asyncio.Transport

    def abort_server(self) -> None:
        """Reset the connection under the server session (RST, no orderly close)."""
        self.server_transport.abort()


@dataclass(slots=True)
class PairFactory:
    """``await make_pair(**config)``: a session pair of the fixture's version and link.

    Keyword arguments are Config fields for both sides; ``client=``/``server=`` dicts
    add fields for one side only.  Everything made is closed at teardown.
    """

    version: int
    link: str
    deadline: Deadline
    pairs: list[AioPair] = field(default_factory=list)
    servers: list[asyncio.Server | aio.Server] = field(default_factory=list)

    def config(self, fields: dict[str, Any]) -> Config:
        return Config(**{"version": self.version, **fields})

    async def __call__(
        self,
        *,
        client: dict[str, Any] | None = None,
        server: dict[str, Any] | None = None,
        **common: Any,
    ) -> AioPair:
        client_config = self.config({**common, **(client or {})})
        server_config = self.config({**common, **(server or {})})
        async with self.deadline(5):
            if self.link == "protocol":
                pair = await self._over_protocol(client_config, server_config)
            else:
                pair = await self._over_streams(client_config, server_config)
        self.pairs.append(pair)
        return pair

    async def _over_protocol(self, client_config: Config, server_config: Config) -> AioPair:
        accepted: asyncio.Queue[aio.Session] = asyncio.Queue()

        async def handler(session: aio.Session) -> None:
            accepted.put_nowait(session)
            await session.wait_closed()

        listener = await aio.serve(handler, LOCALHOST, 0, server_config)
        self.servers.append(listener)
        port = listener.sockets[0].getsockname()[1]
        client_session = await aio.connect(LOCALHOST, port, client_config)
        server_session = await accepted.get()
        listener.close()
        link = server_session.transport
        assert isinstance(link, ProtocolLink)
        assert link._transport is not None
        return AioPair(client_session, server_session, self.version, self.link, link._transport)

    async def _over_streams(self, client_config: Config, server_config: Config) -> AioPair:
        accepted: asyncio.Queue[tuple[aio.Session, asyncio.StreamWriter]] = asyncio.Queue()

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.put_nowait((await aio.server(reader, writer, server_config), writer))

        listener = await asyncio.start_server(on_connect, LOCALHOST, 0)
        self.servers.append(listener)
        port = listener.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection(LOCALHOST, port)
        client_session = await aio.client(reader, writer, client_config)
        server_session, server_writer = await accepted.get()
        listener.close()
        transport = server_writer.transport
        assert isinstance(transport, asyncio.Transport)
        return AioPair(client_session, server_session, self.version, self.link, transport)

    async def aclose(self) -> None:
        for pair in self.pairs:
            pair.client.close()
            pair.server.close()
        async with self.deadline(5):
            for pair in self.pairs:
                await pair.client.wait_closed()
                await pair.server.wait_closed()
            for listener in self.servers:
                listener.close()
                await listener.wait_closed()
        for pair in self.pairs:
            assert pair.client.is_closed
            assert pair.server.is_closed


@pytest.fixture(params=[1, 2], ids=["v1", "v2"])
def version(request: pytest.FixtureRequest) -> int:
    """The smux protocol version under test."""
    value: int = request.param
    return value


@pytest.fixture(params=["protocol", "streams"])
def link(request: pytest.FixtureRequest) -> str:
    """``protocol``: aio.serve/aio.connect; ``streams``: aio.server/aio.client on asyncio
    StreamReader/StreamWriter pairs."""
    value: str = request.param
    return value


@pytest.fixture
async def make_pair(version: int, link: str, deadline: Deadline) -> AsyncIterator[PairFactory]:
    """Factory of loopback session pairs; every session and listener is closed at teardown."""
    factory = PairFactory(version, link, deadline)
    try:
        yield factory
    finally:
        await factory.aclose()


@pytest.fixture
async def pair(make_pair: PairFactory) -> AioPair:
    """A loopback session pair with the default Config of the version under test."""
    return await make_pair()


# ---------------------------------------------------------------- raw TCP peers


@dataclass(slots=True)
class RawPeer:
    """The far end of a TCP connection that speaks no smux unless the test makes it."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter


@dataclass(slots=True)
class RawLink:
    """A smux session dialled (by ``link`` type) to a plain TCP listener."""

    version: int
    link: str
    deadline: Deadline
    sessions: list[aio.Session] = field(default_factory=list)
    peers: list[RawPeer] = field(default_factory=list)
    servers: list[asyncio.Server] = field(default_factory=list)

    async def __call__(self, **fields: Any) -> tuple[aio.Session, RawPeer]:
        """A client session with Config(version, **fields) and the raw peer it talks to."""
        config = Config(**{"version": self.version, **fields})
        accepted: asyncio.Queue[RawPeer] = asyncio.Queue()

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.put_nowait(RawPeer(reader, writer))

        async with self.deadline(5):
            listener = await asyncio.start_server(on_connect, LOCALHOST, 0)
            self.servers.append(listener)
            port = listener.sockets[0].getsockname()[1]
            if self.link == "protocol":
                session = await aio.connect(LOCALHOST, port, config)
            else:
                reader, writer = await asyncio.open_connection(LOCALHOST, port)
                session = await aio.client(reader, writer, config)
            self.sessions.append(session)
            peer = await accepted.get()
            self.peers.append(peer)
            listener.close()
        return session, peer

    async def aclose(self) -> None:
        for session in self.sessions:
            session.close()
        for peer in self.peers:
            peer.writer.close()
        async with self.deadline(5):
            for session in self.sessions:
                await session.wait_closed()
            for peer in self.peers:
                with contextlib.suppress(ConnectionError, OSError):
                    await peer.writer.wait_closed()
            for listener in self.servers:
                listener.close()
                await listener.wait_closed()


@pytest.fixture
async def raw_link(version: int, link: str, deadline: Deadline) -> AsyncIterator[RawLink]:
    """Factory of (client session, raw TCP peer); all closed at teardown."""
    factory = RawLink(version, link, deadline)
    try:
        yield factory
    finally:
        await factory.aclose()


@pytest.fixture
def wire() -> Iterator[tuple[RawConnection, socket.socket]]:
    """A raw connection whose "peer" is the other end of a socket pair, driven by the test
    (the suite's wire-level rules tested without a peer process)."""
    ours, theirs = socket.socketpair()
    conn = RawConnection(ours, 2, peer="fake", peer_role="server")
    yield conn, theirs
    conn.close()
    theirs.close()
