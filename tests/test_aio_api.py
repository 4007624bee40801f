"""The asyncio API as a production user meets it: how a session reports its end, how
errors are raised again, concurrent accepters, the server object, logging, TLS, the
``connect`` context manager and the public transport interface."""

from __future__ import annotations

import asyncio
import inspect
import logging
import ssl
import subprocess
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from memory_transport import memory_pair

from smuxref import Config, aio
from smuxref.errors import InvalidVersionError, SessionClosedError, StreamClosedError

if TYPE_CHECKING:
    from conftest import AioPair, Deadline, RawLink

LOCALHOST = "127.0.0.1"


# ----------------------------------------------------------------- Session.error


async def test_error_is_none_after_local_and_clean_close(pair: AioPair, deadline: Deadline) -> None:
    """Session.error reports an error end only: a local close and the peer's orderly
    close (EOF) leave it None, as the engine's own error is."""
    assert pair.client.error is None
    pair.client.close()
    async with deadline(5):
        await pair.client.wait_closed()
        with pytest.raises(SessionClosedError):
            await pair.server.accept_stream()
    assert pair.client.is_closed
    assert pair.client.error is None
    assert pair.server.is_closed
    assert pair.server.error is None
    assert pair.server.engine.error is None


async def test_error_names_the_protocol_violation(raw_link: RawLink, deadline: Deadline) -> None:
    """SPEC.md 4.1: a session ended by a bad header reports that error."""
    session, peer = await raw_link(keepalive_disabled=True)
    peer.writer.write(bytes([9, 0, 0, 0, 3, 0, 0, 0]))
    async with deadline(5):
        with pytest.raises(SessionClosedError):
            await session.accept_stream()
    assert isinstance(session.error, InvalidVersionError)


# ------------------------------------------------------------ fresh exceptions


def _depth(exc: BaseException) -> int:
    return len(traceback.extract_tb(exc.__traceback__))


async def test_stored_errors_are_raised_as_fresh_exceptions(
    pair: AioPair, deadline: Deadline
) -> None:
    """Every raise of a stored error is a new instance: raising one instance again
    would chain each raise onto its traceback, which then grows without bound."""
    stream = await pair.client.open_stream()
    pair.client.close()
    raised: list[BaseException] = []
    for _ in range(5):
        for operation in (pair.client.open_stream, pair.client.accept_stream, stream.read):
            try:
                await operation()
            except SessionClosedError as exc:
                raised.append(exc)
    assert len(raised) == 15
    assert len({id(exc) for exc in raised}) == 15
    assert len({_depth(exc) for exc in raised[::3]}) == 1, "the traceback grew"
    with pytest.raises(SessionClosedError):
        stream.write(b"x")


# ------------------------------------------------------------ concurrent accept


async def test_concurrent_accepters_each_get_a_stream(pair: AioPair, deadline: Deadline) -> None:
    """Go allows concurrent AcceptStream calls; each stream goes to exactly one."""
    async with deadline(10):
        accepters = [asyncio.create_task(pair.server.accept_stream()) for _ in range(3)]
        await asyncio.sleep(0)
        opened = [await pair.client.open_stream() for _ in range(3)]
        accepted = await asyncio.gather(*accepters)
    assert sorted(s.id for s in accepted) == sorted(s.id for s in opened)


async def test_cancelled_accepter_does_not_lose_a_stream(pair: AioPair, deadline: Deadline) -> None:
    """An accepter cancelled while waiting leaves the next stream to the others."""
    async with deadline(10):
        first = asyncio.create_task(pair.server.accept_stream())
        second = asyncio.create_task(pair.server.accept_stream())
        await asyncio.sleep(0)
        first.cancel()
        opened = await pair.client.open_stream()
        accepted = await second
        with pytest.raises(asyncio.CancelledError):
            await first
    assert accepted.id == opened.id


# ------------------------------------------------------------------- serve()


async def test_serve_tracks_sessions_and_shuts_down_within_its_grace(deadline: Deadline) -> None:
    """serve() returns a Server that knows its sessions and handlers; wait_closed gives
    the handlers their grace period, then closes their sessions and cancels them."""
    started = asyncio.Event()
    finished: list[bool] = []

    async def handler(session: aio.Session) -> None:
        started.set()
        try:
            await asyncio.Event().wait()  # a handler that never returns on its own
        finally:
            finished.append(session.is_closed)

    async with deadline(10):
        server = await aio.serve(handler, LOCALHOST, 0, Config(keepalive_disabled=True))
        assert isinstance(server, aio.Server)
        port = server.sockets[0].getsockname()[1]
        client = await aio.connect(LOCALHOST, port, Config(keepalive_disabled=True))
        await started.wait()
        assert len(server.sessions) == 1
        assert len(server.handlers) == 1
        server.close()
        loop = asyncio.get_running_loop()
        before = loop.time()
        await server.wait_closed(grace=0.2)
        assert loop.time() - before >= 0.2
        assert server.sessions == frozenset()
        assert server.handlers == frozenset()
        assert finished == [True]  # its session was closed, then it was cancelled
        with pytest.raises(SessionClosedError):
            await client.accept_stream()
        await client.wait_closed()


class _Seen(logging.Handler):
    """Records log records and lets a test wait for one."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.changed = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.changed.set()

    async def wait_for(self, match: Callable[[logging.LogRecord], bool]) -> None:
        while not any(map(match, self.records)):
            self.changed.clear()
            await self.changed.wait()


async def test_serve_logs_handler_failures_instead_of_leaving_them_unretrieved(
    deadline: Deadline, caplog: pytest.LogCaptureFixture
) -> None:
    """A handler failing because its client went away, or for any other reason, is
    logged by the ``smuxref`` logger; nothing is left as "Task exception was never
    retrieved" (the ``deadline`` fixture fails the test on any such report)."""
    ended = asyncio.Event()
    count = 0
    logged = _Seen()
    logging.getLogger("smuxref").addHandler(logged)

    async def handler(session: aio.Session) -> None:
        nonlocal count
        count += 1
        try:
            if count == 1:
                await session.accept_stream()  # raises once the client disconnects
            else:
                raise ValueError("the handler's own bug")
        finally:
            if count == 2:
                ended.set()

    caplog.set_level(logging.INFO, logger="smuxref")
    async with deadline(10):
        server = await aio.serve(handler, LOCALHOST, 0, Config(keepalive_disabled=True))
        port = server.sockets[0].getsockname()[1]
        async with aio.connect(LOCALHOST, port, Config(keepalive_disabled=True)):
            pass
        await logged.wait_for(lambda r: "ended with its session" in r.getMessage())
        async with aio.connect(LOCALHOST, port, Config(keepalive_disabled=True)):
            await ended.wait()
        await logged.wait_for(lambda r: r.levelno == logging.ERROR)
        server.close()
        await server.wait_closed(grace=1)
    logging.getLogger("smuxref").removeHandler(logged)
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failures) == 1
    assert failures[0].name.startswith("smuxref")
    assert failures[0].exc_info is not None
    assert isinstance(failures[0].exc_info[1], ValueError)


async def test_server_as_context_manager_closes_everything(deadline: Deadline) -> None:
    """``async with server:`` stops listening and ends every session on exit."""
    opened = asyncio.Event()

    async def handler(session: aio.Session) -> None:
        stream = await session.accept_stream()
        opened.set()
        await stream.read()

    async with deadline(10):
        server = await aio.serve(handler, LOCALHOST, 0)
        port = server.sockets[0].getsockname()[1]
        async with server, aio.connect(LOCALHOST, port) as client:
            stream = await client.open_stream()
            stream.write(b"x")
            await opened.wait()
        assert not server.is_serving()
        assert server.sessions == frozenset()


# -------------------------------------------------------------------- logging


async def test_session_end_is_logged(
    raw_link: RawLink, deadline: Deadline, caplog: pytest.LogCaptureFixture
) -> None:
    """The ``smuxref.aio`` logger says why a session ended on an error."""
    caplog.set_level(logging.DEBUG, logger="smuxref")
    session, peer = await raw_link(keepalive_disabled=True)
    peer.writer.write(bytes([9, 0, 0, 0, 3, 0, 0, 0]))
    async with deadline(5):
        with pytest.raises(SessionClosedError):
            await session.accept_stream()
    records = [r for r in caplog.records if r.name == "smuxref.aio"]
    assert records, "nothing logged"
    assert "version byte 9" in records[-1].getMessage()
    assert records[-1].levelno == logging.INFO


# ------------------------------------------------------------------------ TLS


def _certificate(directory: Path) -> tuple[Path, Path]:
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return key, cert


async def test_tls_through_the_documented_ssl_parameter(tmp_path: Path, deadline: Deadline) -> None:
    """``ssl=`` is a documented parameter of connect and serve, and runs smux over TLS
    (the server name defaults to the host dialled)."""
    assert "ssl" in inspect.signature(aio.connect).parameters
    assert "ssl" in inspect.signature(aio.serve).parameters
    assert "ssl=" in (aio.__doc__ or "")
    key, cert = _certificate(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    client_context = ssl.create_default_context(cafile=str(cert))

    async def echo(session: aio.Session) -> None:
        stream = await session.accept_stream()
        stream.write(await stream.readexactly(5))
        await stream.drain()
        await stream.read()

    async with deadline(20):
        server = await aio.serve(echo, "localhost", 0, ssl=server_context)
        port = server.sockets[0].getsockname()[1]
        async with server, aio.connect("localhost", port, ssl=client_context) as session:
            stream = await session.open_stream()
            stream.write(b"hello")
            assert await stream.readexactly(5) == b"hello"
            stream.close()


# ------------------------------------------------------------------- connect()


async def test_connect_is_an_async_context_manager(deadline: Deadline) -> None:
    """``async with aio.connect(...) as session`` closes the session on exit, and
    ``await aio.connect(...)`` still returns the session."""
    accepted: asyncio.Queue[aio.Session] = asyncio.Queue()

    async def handler(session: aio.Session) -> None:
        accepted.put_nowait(session)
        await session.wait_closed()

    async with deadline(10):
        server = await aio.serve(handler, LOCALHOST, 0)
        port = server.sockets[0].getsockname()[1]
        async with aio.connect(LOCALHOST, port) as session:
            assert isinstance(session, aio.Session)
            open_inside = not session.is_closed
        assert open_inside
        assert session.is_closed
        awaited = await aio.connect(LOCALHOST, port)
        assert isinstance(awaited, aio.Session)
        awaited.close()
        await awaited.wait_closed()
        server.close()
        await server.wait_closed(grace=1)


# --------------------------------------------------------- transport interface


async def test_session_over_a_transport_written_outside_smuxref(deadline: Deadline) -> None:
    """``aio.Transport`` is public: a session runs over an in-memory pipe that only
    implements it (tests/memory_transport.py), data and half-close included."""
    assert "Transport" in aio.__all__
    client, server = memory_pair(Config(version=2, keepalive_disabled=True))
    async with deadline(10):
        stream = await client.open_stream()
        payload = bytes(range(256)) * 4096  # 1 MiB: past the initial v2 window
        stream.write(payload)
        stream.close_write()
        accepted = await server.accept_stream()
        assert await accepted.read() == payload
        with pytest.raises(StreamClosedError):
            stream.write(b"after FIN")
        await stream.drain()
        client.close()
        await client.wait_closed()
        await server.wait_closed()
    assert client.num_streams == client.engine.num_streams
