"""Stream and session lifecycle through smuxref.aio: half-close (SPEC.md 10.2), stream close
(10.4), session close and broken transports (11), keepalive (7), the receive buffer (8),
cancellation and misuse of the asyncio API."""

from __future__ import annotations

import asyncio
import hashlib
import random
from typing import TYPE_CHECKING

import pytest

from smuxref.aio import Session, Stream
from smuxref.errors import SessionClosedError, StreamClosedError

if TYPE_CHECKING:
    from conftest import AioPair, Deadline, PairFactory

KiB = 1 << 10
CHUNK = 256 * KiB


def chunk(index: int) -> bytes:
    return random.Random(index).randbytes(CHUNK)


async def stall_writer(
    stream: Stream, deadline: Deadline, digest: hashlib._Hash | None = None
) -> tuple[int, asyncio.Task[None]]:
    """Write distinct 256 KiB chunks until a drain stays blocked; return the bytes written
    and the blocked drain.  The short wait on each drain is what "stalled" means."""
    written = 0
    for index in range(1024):
        data = chunk(index)
        stream.write(data)
        if digest is not None:
            digest.update(data)
        written += len(data)
        drain = asyncio.create_task(stream.drain())
        done, _ = await asyncio.wait({drain}, timeout=deadline.scaled(0.3))
        if not done:
            return written, drain
        drain.result()
    raise AssertionError("the writer never stalled")


def sides(pair: AioPair, opener: str) -> tuple[Session, Session]:
    return (pair.client, pair.server) if opener == "client" else (pair.server, pair.client)


# ------------------------------------------------------------------ half-close


@pytest.mark.parametrize("opener", ["client", "server"])
@pytest.mark.parametrize("first", ["opener", "acceptor"])
async def test_half_close_other_direction_keeps_flowing(
    pair: AioPair, deadline: Deadline, opener: str, first: str
) -> None:
    """SPEC.md 10.2: after close_write the peer reads EOF and can still write back to us."""
    opening, accepting = sides(pair, opener)
    opened = await opening.open_stream()
    assert opened.id == (3 if opener == "client" else 2)
    opened.write(b"hello")
    await opened.drain()
    async with deadline(10):
        accepted = await accepting.accept_stream()
        assert accepted.id == opened.id
        assert await accepted.readexactly(5) == b"hello"
        closing, other = (opened, accepted) if first == "opener" else (accepted, opened)
        request = random.Random(1).randbytes(300_000)
        closing.write(request)
        closing.close_write()
        with pytest.raises(StreamClosedError):
            closing.write(b"late")
        assert await other.read() == request
        assert other.at_eof()
        assert await other.read(10) == b""
        response = random.Random(2).randbytes(500_000)

        async def respond() -> None:
            other.write(response)
            await other.drain()  # version 2: returns only as the half-closed side reads
            other.close_write()

        _, echoed = await asyncio.gather(respond(), closing.read())
        assert echoed == response
        assert closing.at_eof()
        await closing.drain()
    opened.close()
    accepted.close()
    assert opening.num_streams == 0
    assert accepting.num_streams == 0


# ---------------------------------------------------------------- stream close


async def test_stream_close_discards_unread_data_and_peer_sees_eof(
    pair: AioPair, deadline: Deadline
) -> None:
    """SPEC.md 10.4, 8.1: close discards and returns unread data; the peer reads EOF."""
    full = pair.server.config.max_receive_buffer
    stream = await pair.client.open_stream()
    marker = await pair.client.open_stream()
    stream.write(b"x" * 100_000)
    marker.write(b"sync")
    await marker.drain()
    async with deadline(10):
        accepted = await pair.server.accept_stream()
        barrier = await pair.server.accept_stream()
        # Frames arrive in order: once the marker is read, all 100000 bytes are delivered.
        assert await barrier.readexactly(4) == b"sync"
        assert pair.server.engine.receive_window == full - 100_000
        assert await accepted.readexactly(10) == b"x" * 10
        accepted.close()
        assert pair.server.engine.receive_window == full
        assert pair.server.engine.stream(accepted.id) is None
        with pytest.raises(StreamClosedError):
            await accepted.read(1)
        assert await stream.read() == b""
        assert stream.at_eof()
        # The client may still write; the server drops it without charging its buffer.
        stream.write(b"y" * 50_000)
        marker.write(b"sync")
        await marker.drain()
        assert await barrier.readexactly(4) == b"sync"
        assert pair.server.engine.receive_window == full
    stream.close()
    marker.close()
    barrier.close()


@pytest.mark.parametrize("how", ["read", "readexactly", "readline"])
async def test_stream_close_ends_a_pending_read(
    pair: AioPair, deadline: Deadline, how: str
) -> None:
    """SPEC.md 10.4: close ends a read pending in another task with StreamClosedError."""
    stream = await pair.client.open_stream()
    stream.write(b"partial")
    async with deadline(5):
        accepted = await pair.server.accept_stream()
        assert await accepted.readexactly(1) == b"p"
        if how == "read":
            assert await accepted.read(100) == b"artial"
            pending = asyncio.create_task(accepted.read(100))
        elif how == "readexactly":
            pending = asyncio.create_task(accepted.readexactly(100))
        else:
            pending = asyncio.create_task(accepted.readline())
        done, _ = await asyncio.wait({pending}, timeout=0)
        assert not done
        accepted.close()
        with pytest.raises(StreamClosedError):
            await pending
        assert await stream.read() == b""
    assert pair.server.engine.receive_window == pair.server.config.max_receive_buffer
    stream.close()


# --------------------------------------------------------------- session close


@pytest.mark.parametrize("victim_role", ["client", "server"])
@pytest.mark.parametrize("closer", ["victim", "peer"])
async def test_session_close_ends_pending_operations(
    make_pair: PairFactory, deadline: Deadline, victim_role: str, closer: str
) -> None:
    """SPEC.md 11, 8.2: session close ends pending read/drain/accept with SessionClosedError."""
    small = {"max_receive_buffer": 64 * KiB, "max_stream_buffer": 64 * KiB}
    peer_role = "server" if victim_role == "client" else "client"
    # The peer's small receive buffer fills, so it stops reading and the victim's drain stalls.
    pair = await make_pair(**{peer_role: small})
    victim, peer = sides(pair, victim_role)
    reading = await victim.open_stream()
    writing = await victim.open_stream()
    async with deadline(30):
        peer_reading = await peer.accept_stream()
        peer_writing = await peer.accept_stream()
        _, drain = await stall_writer(writing, deadline)
        assert peer.engine.reading_paused
        victim_tasks = [
            asyncio.create_task(reading.read(10)),
            drain,
            asyncio.create_task(victim.accept_stream()),
        ]
        peer_tasks = [
            asyncio.create_task(peer_reading.read(10)),
            asyncio.create_task(peer.accept_stream()),
        ]
        done, _ = await asyncio.wait([*victim_tasks, *peer_tasks], timeout=0)
        assert not done
        (victim if closer == "victim" else peer).close()
    closing_tasks, other_tasks = (
        (victim_tasks, peer_tasks) if closer == "victim" else (peer_tasks, victim_tasks)
    )
    async with deadline(2):
        for task in closing_tasks:
            with pytest.raises(SessionClosedError):
                await task
    if closer == "victim":
        # The peer stopped reading the transport (SPEC.md 8.2): it learns of the close only
        # once its application reads the stalled stream and it reads the transport again.

        async def read_until_error() -> None:
            while await peer_writing.read(64 * KiB):
                pass

        async with deadline(10):
            with pytest.raises(SessionClosedError):
                await read_until_error()
    async with deadline(2):
        for task in other_tasks:
            with pytest.raises(SessionClosedError):
                await task
        await victim.wait_closed()
        await peer.wait_closed()
    assert victim.is_closed
    assert peer.is_closed
    with pytest.raises(SessionClosedError):
        await peer_reading.read(1)
    with pytest.raises(SessionClosedError):
        writing.write(b"x")
    for stream in (reading, writing, peer_reading, peer_writing):
        stream.close()


async def test_transport_reset_ends_pending_operations(
    make_pair: PairFactory, deadline: Deadline
) -> None:
    """SPEC.md 11: a connection reset ends pending read/drain/accept on both ends."""
    pair = await make_pair(server={"max_receive_buffer": 64 * KiB, "max_stream_buffer": 64 * KiB})
    reading = await pair.client.open_stream()
    writing = await pair.client.open_stream()
    async with deadline(30):
        server_reading = await pair.server.accept_stream()
        await pair.server.accept_stream()
        _, drain = await stall_writer(writing, deadline)
        tasks = [
            asyncio.create_task(reading.read(10)),
            drain,
            asyncio.create_task(pair.client.accept_stream()),
            asyncio.create_task(server_reading.read(10)),
            asyncio.create_task(pair.server.accept_stream()),
        ]
        done, _ = await asyncio.wait(tasks, timeout=0)
        assert not done
        pair.abort_server()
    async with deadline(2):
        for task in tasks:
            with pytest.raises(SessionClosedError):
                await task
    assert pair.client.is_closed
    assert pair.server.is_closed
    with pytest.raises(SessionClosedError):
        writing.write(b"x")
    with pytest.raises(SessionClosedError):
        await pair.client.open_stream()


async def test_open_and_accept_after_close_raise(pair: AioPair, deadline: Deadline) -> None:
    """SPEC.md 11: a closed session refuses open_stream and accept_stream, on both ends."""
    pair.client.close()
    assert pair.client.is_closed
    with pytest.raises(SessionClosedError):
        await pair.client.open_stream()
    with pytest.raises(SessionClosedError):
        await pair.client.accept_stream()
    async with deadline(5):
        with pytest.raises(SessionClosedError):
            await pair.server.accept_stream()
    assert pair.server.is_closed
    assert pair.server.error is None or isinstance(pair.server.error, ConnectionError)
    with pytest.raises(SessionClosedError):
        await pair.server.open_stream()


# ------------------------------------------------------------------- keepalive


# Keepalive timing runs on the event loop's clock: tests/test_aio_clock.py.


# ------------------------------------------------------ cancellation and misuse


async def test_cancelled_read_leaves_data_for_next_read(pair: AioPair, deadline: Deadline) -> None:
    """Contract: a read cancelled by asyncio.timeout takes nothing; the next read gets it all."""
    stream = await pair.client.open_stream()
    async with deadline(5):
        accepted = await pair.server.accept_stream()
    for _ in range(3):
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.02):
                await accepted.read(100)
    stream.write(b"0123456789")
    async with deadline(5):
        assert await accepted.readexactly(10) == b"0123456789"
    stream.close()
    accepted.close()


async def test_cancelled_readexactly_and_readline_keep_partial_data(
    pair: AioPair, deadline: Deadline
) -> None:
    """Contract: cancelled readexactly/readline keep partial data for the next call."""
    stream = await pair.client.open_stream()
    stream.write(b"abc")
    async with deadline(5):
        accepted = await pair.server.accept_stream()
        assert await accepted.readexactly(1) == b"a"
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await accepted.readexactly(5)
    stream.write(b"def\nrest")
    async with deadline(5):
        assert await accepted.readexactly(5) == b"bcdef"
        assert await accepted.readline() == b"\n"
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await accepted.readline()
    stream.write(b" of line\n")
    async with deadline(5):
        assert await accepted.readline() == b"rest of line\n"
    # Nothing was reported consumed twice: the receive buffer is whole again.
    assert pair.server.engine.receive_window == pair.server.config.max_receive_buffer
    stream.close()
    accepted.close()


async def test_two_concurrent_readers_raise(pair: AioPair, deadline: Deadline) -> None:
    """Contract: a second concurrent reader of a stream raises RuntimeError."""
    stream = await pair.client.open_stream()
    async with deadline(5):
        accepted = await pair.server.accept_stream()
        first = asyncio.create_task(accepted.read(100))
        second = asyncio.create_task(accepted.read(100))
        done, _ = await asyncio.wait({first, second}, return_when=asyncio.FIRST_COMPLETED)
        assert done == {second}
        with pytest.raises(RuntimeError, match="another task is already reading"):
            second.result()
        stream.write(b"data")
        assert await first == b"data"
    stream.close()
    accepted.close()


# -------------------------------------------------------------- receive buffer


async def test_receive_buffer_bounds_unread_data_and_stalls_writer(
    make_pair: PairFactory, deadline: Deadline
) -> None:
    """SPEC.md 8.1-8.3: unread data stays within the buffer; the writer stalls, then resumes."""
    limit = 64 * KiB
    pair = await make_pair(server={"max_receive_buffer": limit, "max_stream_buffer": limit})
    stream = await pair.client.open_stream()
    sent = hashlib.sha256()
    async with deadline(60):
        accepted = await pair.server.accept_stream()
        written, drain = await stall_writer(stream, deadline, sent)
        engine = pair.server.engine
        delivered = limit - engine.receive_window
        info = engine.stream(accepted.id)
        assert info is not None
        assert info.buffered == delivered
        assert limit <= delivered <= limit - 1 + 65535
        assert engine.reading_paused
        assert not drain.done()

        received = hashlib.sha256()
        count = 0

        async def finish() -> None:
            await drain
            stream.close_write()

        finishing = asyncio.create_task(finish())
        while data := await accepted.read(64 * KiB):
            received.update(data)
            count += len(data)
            assert limit - engine.receive_window <= limit - 1 + 65535
        await finishing
    assert count == written
    assert received.hexdigest() == sent.hexdigest()
    stream.close()
    accepted.close()
