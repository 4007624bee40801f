"""Transport faults under smuxref.aio: a TCP reset mid-transfer from either end, the peer
process killed with SIGKILL mid-run (the reference peer and the Go peer), and the peer
half-closing the connection (shutdown(SHUT_WR)), cleanly or in the middle of a frame.

Whatever the fault, every pending read, drain and accept ends within a deadline with
SessionClosedError, whose ``cause`` says what happened (the transport's error, the
protocol error, or None for an orderly end of the byte stream), open_stream fails the
same way, and nothing is left behind: no task (the ``deadline`` fixture), no descriptor
(/proc/self/fd before and after), no ResourceWarning (warnings are errors, the loop runs
in debug mode).  Each test prints how long each operation took to surface the fault
(``-rP``).

A session that has stopped reading because its receive buffer is full (SPEC.md 8.2)
does not see a reset until it writes: its next keepalive NOP (SPEC.md 7.1) or the
application reading again.  The reset tests therefore run with a short keepalive
interval and report the paused side's time separately.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import socket
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from reliability_support import RawFrames, open_fds, report

from benchmarks.soak import ContractServer, go_binary
from smuxref import Cmd, Config, SessionClosedError, TruncatedFrameError, aio, encode_raw
from smuxref.aio import Session, Stream
from smuxref.aio._links import ProtocolLink, StreamsLink
from smuxref_conformance.errors import HarnessError

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from conftest import Deadline, PairFactory, RawLink

KiB = 1 << 10
#: How long any pending operation may take to learn of a fault (before scaling).
SURFACE = 2.0


@dataclass
class Pending:
    """Operations blocked on a session, each timed from the fault to its end."""

    loop: asyncio.AbstractEventLoop
    ops: dict[str, asyncio.Task[Any]] = field(default_factory=dict)
    ended: dict[str, float] = field(default_factory=dict)

    def add(self, name: str, op: Coroutine[Any, Any, Any] | asyncio.Task[Any]) -> None:
        task = op if isinstance(op, asyncio.Task) else self.loop.create_task(op)
        self.ops[name] = task
        task.add_done_callback(lambda _: self.ended.setdefault(name, self.loop.time()))

    async def check_blocked(self) -> None:
        done, _ = await asyncio.wait(self.ops.values(), timeout=0)
        assert not done, f"not blocked: {[n for n, t in self.ops.items() if t in done]}"

    async def outcomes(self, fault_at: float, deadline: Deadline) -> dict[str, tuple[Any, float]]:
        """Each operation's exception and the seconds it took after ``fault_at``."""
        async with deadline(SURFACE + 10):
            await asyncio.wait(self.ops.values())
        results: dict[str, tuple[Any, float]] = {}
        for name, task in self.ops.items():
            results[name] = (task.exception(), self.ended[name] - fault_at)
        return results


def transport_of(session: Session) -> asyncio.Transport:
    link = session.transport
    if isinstance(link, ProtocolLink):
        assert link._transport is not None
        return link._transport
    assert isinstance(link, StreamsLink)
    transport = link._writer.transport
    assert isinstance(transport, asyncio.Transport)
    return transport


def reset(transport: asyncio.Transport) -> None:
    """Close with SO_LINGER 0: the kernel sends RST instead of FIN."""
    sock = transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def stall_writer(stream: Stream, deadline: Deadline) -> asyncio.Task[None]:
    """Write until a drain stays blocked (the peer stopped reading); return that drain."""
    chunk = bytes(64 * KiB)
    for _ in range(4096):
        stream.write(chunk)
        drain = asyncio.create_task(stream.drain())
        done, _ = await asyncio.wait({drain}, timeout=deadline.scaled(0.3))
        if not done:
            return drain
        drain.result()
    raise AssertionError("the writer never stalled")


def check_surfaced(
    results: dict[str, tuple[Any, float]], causes: dict[str, tuple[type[object], ...]]
) -> dict[str, str]:
    """Every operation ended with SessionClosedError and the expected kind of cause;
    return the figures to report."""
    figures = {}
    for name, (exc, seconds) in results.items():
        assert isinstance(exc, SessionClosedError), f"{name}: {exc!r}"
        expected = causes[name.split(".")[0]]
        cause = exc.cause
        assert isinstance(cause, expected) if expected else cause is None, f"{name}: {cause!r}"
        figures[name] = f"{seconds * 1000:.1f}ms"
    return figures


def assert_no_new_fds(before: set[int]) -> None:
    gc.collect()
    leaked = open_fds() - before
    assert not leaked, f"descriptors leaked: {sorted(leaked)}"


# ------------------------------------------------------------------------ TCP reset


@pytest.mark.parametrize("resetter", ["client", "server"])
async def test_tcp_reset_mid_transfer(
    make_pair: PairFactory, deadline: Deadline, resetter: str
) -> None:
    """SPEC.md 11: a reset (SO_LINGER 0) from either end, while the client's writer is
    stalled by the server's full receive buffer, ends every pending operation on both
    sessions: the resetting side at once (cause None: it closed its own transport), the
    other with the transport's ConnectionError."""
    loop = asyncio.get_running_loop()
    before = open_fds()
    small = {"max_receive_buffer": 64 * KiB, "max_stream_buffer": 64 * KiB}
    interval = deadline.scaled(0.2)
    pair = await make_pair(
        server=small, keepalive_interval=interval, keepalive_timeout=deadline.scaled(30)
    )
    pending = Pending(loop)
    async with deadline(30):
        reading = await pair.client.open_stream()
        writing = await pair.client.open_stream()
        server_reading = await pair.server.accept_stream()
        await pair.server.accept_stream()  # never read: the server's buffer fills
        pending.add("client.read", reading.read(10))
        pending.add("client.drain", await stall_writer(writing, deadline))
        pending.add("client.accept", pair.client.accept_stream())
        pending.add("server.read", server_reading.read(10))
        pending.add("server.accept", pair.server.accept_stream())
        await pending.check_blocked()
    assert pair.server.engine.reading_paused
    victim = pair.client if resetter == "client" else pair.server
    reset(transport_of(victim))
    fault_at = loop.time()
    results = await pending.outcomes(fault_at, deadline)
    other = "server" if resetter == "client" else "client"
    figures = check_surfaced(results, {resetter: (), other: (ConnectionError,)})
    for name, (_, seconds) in results.items():
        # The paused server learns of a reset by the client at its next NOP.
        late = resetter == "client" and name.startswith("server")
        limit = deadline.scaled(SURFACE) + (interval if late else 0)
        assert seconds <= limit, f"{name} took {seconds:.3f} s"
    for session in (pair.client, pair.server):
        with pytest.raises(SessionClosedError):
            await session.open_stream()
    async with deadline(10):
        await pair.client.wait_closed()
        await pair.server.wait_closed()
    await make_pair.aclose()  # closes the listeners too (teardown's aclose is then a no-op)
    assert_no_new_fds(before)
    report(
        "fault_reset",
        resetter=resetter,
        version=pair.version,
        link=pair.link,
        keepalive_interval=round(interval, 3),
        **figures,
    )


@pytest.mark.parametrize("paused_before", [False, True], ids=["fresh", "paused-before"])
@pytest.mark.parametrize("version", [1])
async def test_write_loop_ends_after_a_reset(
    raw_link: RawLink, deadline: Deadline, paused_before: bool
) -> None:
    """A ``write(); await drain()`` loop on a transport that has failed must end with
    SessionClosedError.  The failed transport drops writes and schedules connection_lost;
    drain must yield so that it runs (it once returned at once: the loop spun forever,
    first on any reset, then only after the transport had once paused and resumed)."""
    session, raw = await raw_link(keepalive_disabled=True)
    stream = await session.open_stream()
    if paused_before:
        # What asyncio does when its write buffer crosses the high-water mark and then
        # drains: the link is left holding a completed "writable" future.
        link = session.transport
        if not isinstance(link, asyncio.Protocol):
            pytest.skip("the StreamReader/StreamWriter link has no pause callbacks")
        link.pause_writing()
        link.resume_writing()
    # The session must learn of the reset from a failed write, not by reading it: stop
    # its reads, and let the reset land (abort closes the socket on the next loop pass).
    transport_of(session).pause_reading()
    reset(raw.writer.transport)  # type: ignore[arg-type]
    async with deadline(5):
        await raw.writer.wait_closed()

    # No await until the loop: whatever ends it must come from drain itself.
    async def write_loop() -> tuple[int, SessionClosedError]:
        for iterations in range(1, 100_001):
            try:
                stream.write(bytes(1024))
                await stream.drain()
            except SessionClosedError as exc:
                return iterations, exc
        raise AssertionError("100,000 writes after a reset and no SessionClosedError")

    iterations, error = await write_loop()
    assert isinstance(error.cause, ConnectionError), error.cause
    report("fault_write_loop", link=raw_link.link, iterations_after_reset=iterations)


# ------------------------------------------------------------------ SIGKILL of the peer


@pytest.fixture(scope="session")
def go_peer_built() -> None:
    try:
        go_binary()
    except HarnessError as exc:
        pytest.skip(f"no go-peer: {exc}")


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("peer", ["ref", "go"])
async def test_peer_killed_mid_run(
    peer: str, version: int, deadline: Deadline, request: pytest.FixtureRequest
) -> None:
    """The peer process dies (SIGKILL) mid-transfer: the kernel closes its socket (RST
    when it held unread data, else FIN), and every pending operation of the smuxref
    client ends with SessionClosedError."""
    if peer == "go":
        request.getfixturevalue("go_peer_built")
    loop = asyncio.get_running_loop()
    before = open_fds()
    server = await ContractServer.start(peer, version, startup=deadline.scaled(30))
    session = await aio.connect(server.host, server.port, Config(version=version))
    pending = Pending(loop)
    sent = 0
    flowing = asyncio.Event()

    async def upload(stream: Stream) -> None:
        nonlocal sent
        stream.write(b"SINK\n")
        chunk = bytes(16 * KiB)
        while True:
            stream.write(chunk)
            await stream.drain()
            sent += len(chunk)
            if sent >= 1 << 20:
                flowing.set()

    try:
        async with deadline(30):
            sink = await session.open_stream()
            echo = await session.open_stream()
            echo.write(b"ECHO\nping")
            assert await echo.readexactly(4) == b"ping"  # the peer is serving
            pending.add("client.upload", upload(sink))
            pending.add("client.read", echo.read(10))
            pending.add("client.accept", session.accept_stream())
            await flowing.wait()  # mid-transfer: a MiB went through, more is coming
            await pending.check_blocked()
        fault_at = loop.time()
        code = await server.kill()
        results = await pending.outcomes(fault_at, deadline)
    finally:
        session.close()
        await server.kill()
    assert code == -signal.SIGKILL
    # RST if the peer died with unread bytes (ConnectionResetError), FIN otherwise (None).
    figures = check_surfaced(results, {"client": (ConnectionError, type(None))})
    for name, (_, seconds) in results.items():
        assert seconds <= deadline.scaled(SURFACE), f"{name} took {seconds:.3f} s"
    with pytest.raises(SessionClosedError):
        await session.open_stream()
    async with deadline(10):
        await session.wait_closed()
    assert_no_new_fds(before)
    cause = results["client.read"][0].cause
    report(
        "fault_sigkill",
        peer=peer,
        version=version,
        bytes_sent=sent,
        cause=type(cause).__name__ if cause else "EOF",
        **figures,
    )


# --------------------------------------------------------------------- half-close


@pytest.mark.parametrize("where", ["clean", "mid-frame"])
async def test_peer_half_closes_the_transport(
    raw_link: RawLink, deadline: Deadline, where: str
) -> None:
    """SPEC.md 11, 4.5: the peer shuts down its sending side (SHUT_WR) while smuxref has
    a read, a stalled drain and an accept pending: all end with SessionClosedError - cause
    None for an end between frames, TruncatedFrameError for an end inside a header."""
    loop = asyncio.get_running_loop()
    before = open_fds()
    session, raw = await raw_link(keepalive_disabled=True)
    version = session.config.version
    peer = RawFrames(raw.reader, raw.writer, version)
    pending = Pending(loop)
    async with deadline(30):
        peer.send(peer.frame(Cmd.SYN, 2))
        accepted = await session.accept_stream()
        writing = await session.open_stream()
        pending.add("client.read", accepted.read(10))
        pending.add("client.drain", await stall_writer(writing, deadline))  # never read
        pending.add("client.accept", session.accept_stream())
        await pending.check_blocked()
    if where == "mid-frame":
        raw.writer.write(encode_raw(version, Cmd.PSH, 100, 2)[:3])
    raw.writer.write_eof()
    fault_at = loop.time()
    results = await pending.outcomes(fault_at, deadline)
    cause = (TruncatedFrameError,) if where == "mid-frame" else ()
    figures = check_surfaced(results, {"client": cause})
    for name, (_, seconds) in results.items():
        assert seconds <= deadline.scaled(SURFACE), f"{name} took {seconds:.3f} s"
    with pytest.raises(SessionClosedError):
        await session.open_stream()
    raw.writer.close()  # the peer goes; smuxref's transport can drop what it held
    async with deadline(10):
        await session.wait_closed()
        await raw_link.aclose()  # teardown's aclose is then a no-op
    assert_no_new_fds(before)
    report("fault_half_close", where=where, version=version, link=raw_link.link, **figures)
