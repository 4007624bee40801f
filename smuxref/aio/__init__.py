"""asyncio API for smuxref: sessions and streams over TCP (or any asyncio stream).

    async with await smuxref.aio.connect("127.0.0.1", 7000) as session:
        stream = await session.open_stream()
        stream.write(b"hello")
        await stream.drain()

Timeouts are asyncio's own: wrap any call in ``asyncio.timeout()``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from ..config import Config
from ._links import ProtocolLink, StreamsLink
from ._session import Session
from ._stream import Stream

__all__ = ["Config", "Session", "Stream", "client", "connect", "serve", "server"]


async def client(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, config: Config | None = None
) -> Session:
    """Run the client side of a session over an already connected stream pair."""
    return _over_streams(reader, writer, config, client=True)


async def server(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, config: Config | None = None
) -> Session:
    """Run the server side of a session over an already connected stream pair."""
    return _over_streams(reader, writer, config, client=False)


def _over_streams(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    config: Config | None,
    *,
    client: bool,
) -> Session:
    link = StreamsLink(reader, writer)
    session = Session(link, config, client=client)
    link.start(session)
    return session


async def connect(host: str, port: int, config: Config | None = None, **kwargs: Any) -> Session:
    """Dial ``host:port`` and run a client session on the connection."""
    loop = asyncio.get_running_loop()
    sessions: list[Session] = []
    await loop.create_connection(
        lambda: ProtocolLink(config, client=True, on_session=sessions.append), host, port, **kwargs
    )
    return sessions[0]


async def serve(
    handler: Callable[[Session], Awaitable[None]],
    host: str | None,
    port: int,
    config: Config | None = None,
    **kwargs: Any,
) -> asyncio.Server:
    """Serve smux on ``host:port``: one server session per connection, handed to
    ``handler``; the session is closed when the handler returns or fails."""
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()

    async def run(session: Session) -> None:
        try:
            await handler(session)
        finally:
            session.close()

    def on_session(session: Session) -> None:
        task = loop.create_task(run(session))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    return await loop.create_server(
        lambda: ProtocolLink(config, client=False, on_session=on_session), host, port, **kwargs
    )
