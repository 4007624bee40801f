"""asyncio API for smuxref: sessions and streams over TCP, TLS or any transport.

    async with smuxref.aio.connect("127.0.0.1", 7000) as session:
        stream = await session.open_stream()
        stream.write(b"hello")
        await stream.drain()

    server = await smuxref.aio.serve(handler, "127.0.0.1", 7000)
    ...
    server.close()
    await server.wait_closed(grace=5)  # handlers get 5 s, then their sessions close

TLS: pass an :class:`ssl.SSLContext` as ``ssl=`` to :func:`connect` (a client
context; ``server_hostname`` defaults to ``host``) or to :func:`serve` (a server
context).  Other transports: implement :class:`Transport` and build a
:class:`Session` on it.  Timeouts are asyncio's own: wrap any call in
``asyncio.timeout()``.  ``engine=`` everywhere picks the sans-IO engine (class or
factory) the session runs.  Log messages go to the ``smuxref.aio`` logger.
"""

from __future__ import annotations

import asyncio
import ssl as ssl_module
from collections.abc import Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any

from ..config import Config
from ..engine import Engine
from ._links import ProtocolLink, StreamsLink
from ._server import Server
from ._session import EngineFactory, Session, Transport
from ._stream import Stream

if TYPE_CHECKING:
    from types import TracebackType

__all__ = [
    "Config",
    "EngineFactory",
    "Server",
    "Session",
    "Stream",
    "Transport",
    "client",
    "connect",
    "serve",
    "server",
]


async def client(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    config: Config | None = None,
    *,
    engine: EngineFactory = Engine,
) -> Session:
    """Run the client side of a session over an already connected stream pair."""
    return _over_streams(reader, writer, config, client=True, engine=engine)


async def server(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    config: Config | None = None,
    *,
    engine: EngineFactory = Engine,
) -> Session:
    """Run the server side of a session over an already connected stream pair."""
    return _over_streams(reader, writer, config, client=False, engine=engine)


def _over_streams(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    config: Config | None,
    *,
    client: bool,
    engine: EngineFactory,
) -> Session:
    link = StreamsLink(reader, writer)
    session = Session(link, config, client=client, engine=engine)
    link.start(session)
    return session


class _Connecting:
    """What :func:`connect` returns: await it for the session, or use it as
    ``async with`` to have the session closed on exit."""

    __slots__ = ("_coro", "_session")

    def __init__(self, coro: Awaitable[Session]) -> None:
        self._coro = coro
        self._session: Session | None = None

    def __await__(self) -> Generator[Any, None, Session]:
        return self._coro.__await__()

    async def __aenter__(self) -> Session:
        self._session = await self._coro
        return self._session

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._session is not None
        await self._session.__aexit__(exc_type, exc, tb)


def connect(
    host: str,
    port: int,
    config: Config | None = None,
    *,
    ssl: ssl_module.SSLContext | None = None,
    server_hostname: str | None = None,
    engine: EngineFactory = Engine,
    **kwargs: Any,
) -> _Connecting:
    """Dial ``host:port`` (over TLS with ``ssl``) and run a client session on it.

    ``await connect(...)`` returns the session; ``async with connect(...) as s``
    also closes it on exit.  Other keyword arguments go to
    :meth:`asyncio.loop.create_connection`.
    """
    if ssl is not None:
        kwargs["ssl"] = ssl
        kwargs["server_hostname"] = host if server_hostname is None else server_hostname
    elif server_hostname is not None:
        raise ValueError("server_hostname is only meaningful with ssl")
    return _Connecting(_connect(host, port, config, engine, kwargs))


async def _connect(
    host: str, port: int, config: Config | None, engine: EngineFactory, kwargs: dict[str, Any]
) -> Session:
    loop = asyncio.get_running_loop()
    sessions: list[Session] = []
    await loop.create_connection(
        lambda: ProtocolLink(config, client=True, on_session=sessions.append, engine=engine),
        host,
        port,
        **kwargs,
    )
    return sessions[0]


async def serve(
    handler: Callable[[Session], Awaitable[None]],
    host: str | None,
    port: int,
    config: Config | None = None,
    *,
    ssl: ssl_module.SSLContext | None = None,
    engine: EngineFactory = Engine,
    **kwargs: Any,
) -> Server:
    """Serve smux on ``host:port`` (over TLS with ``ssl``): one server session per
    connection, handed to ``handler`` in a task of its own.

    The session is closed when the handler returns or fails; a failure is logged
    (``smuxref.aio``), never left in an unretrieved task.  The returned
    :class:`Server` tracks sessions and handlers and shuts them down gracefully.
    Other keyword arguments go to :meth:`asyncio.loop.create_server`.
    """
    if ssl is not None:
        kwargs["ssl"] = ssl
    serving = Server(handler)
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(
        lambda: ProtocolLink(config, client=False, on_session=serving.start, engine=engine),
        host,
        port,
        **kwargs,
    )
    serving.listening(listener)
    return serving
