"""Data transfer through smuxref.aio over loopback TCP, both versions and both link types:
many concurrent streams, bulk transfers checked by SHA-256, odd write sizes, frame
splitting (SPEC.md 6.1) and version 2 flow control against a slow reader (SPEC.md 9)."""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from typing import TYPE_CHECKING

import pytest

from smuxref import INITIAL_PEER_WINDOW, Cmd, Frame, FrameDecoder
from smuxref.aio import Session, Stream

if TYPE_CHECKING:
    from conftest import AioPair, Deadline, PairFactory, RawLink

MiB = 1 << 20


def block(seed: int, index: int, size: int = MiB) -> bytes:
    """Deterministic pseudo-random data, distinct for every (seed, index)."""
    return random.Random(seed * 1_000_003 + index).randbytes(size)


async def echo(stream: Stream) -> None:
    """Send back everything until EOF, then close (FIN after the echoed data)."""
    async with stream:
        async for chunk in stream:
            stream.write(chunk)
            await stream.drain()


async def echo_server(session: Session, count: int) -> None:
    async with asyncio.TaskGroup() as group:
        for _ in range(count):
            group.create_task(echo(await session.accept_stream()))


async def read_all(stream: Stream) -> bytes:
    parts = []
    while chunk := await stream.read(MiB):
        parts.append(chunk)
    return b"".join(parts)


async def sink_digest(stream: Stream) -> tuple[int, str]:
    """Read to EOF; return the byte count and SHA-256 of what arrived."""
    digest = hashlib.sha256()
    count = 0
    while chunk := await stream.read(MiB):
        digest.update(chunk)
        count += len(chunk)
    return count, digest.hexdigest()


async def source_digest(stream: Stream, seed: int, total: int) -> tuple[int, str]:
    """Write ``total`` bytes of the seed's data in 1 MiB blocks, then half-close."""
    digest = hashlib.sha256()
    for index in range(total // MiB):
        data = block(seed, index)
        digest.update(data)
        stream.write(data)
        await stream.drain()
    stream.close_write()
    return total, digest.hexdigest()


async def test_100_concurrent_streams_echo(pair: AioPair, deadline: Deadline) -> None:
    """SPEC.md 2.1: 100 concurrent streams each carry their own data, none mixed up."""
    rng = random.Random(100)
    payloads = [
        f"stream {i}:".encode() + rng.randbytes(rng.randrange(1, 64 * 1024)) for i in range(100)
    ]
    assert len(set(payloads)) == 100

    async def client_side(payload: bytes) -> bytes:
        stream = await pair.client.open_stream()
        async with stream:
            stream.write(payload)
            await stream.drain()
            stream.close_write()
            return await read_all(stream)

    async with deadline(30), asyncio.TaskGroup() as group:
        server = group.create_task(echo_server(pair.server, 100))
        replies = await asyncio.gather(*(client_side(p) for p in payloads))
        await server
    assert replies == payloads


async def test_64_mib_one_stream_sha256(pair: AioPair, deadline: Deadline) -> None:
    """SPEC.md 6.1, 8, 9: 64 MiB through one stream arrive intact (SHA-256 and length)."""
    total = 64 * MiB
    stream = await pair.client.open_stream()
    async with deadline(60):
        accepted = await pair.server.accept_stream()
        sent, received = await asyncio.gather(
            source_digest(stream, 64, total), sink_digest(accepted)
        )
    assert received == sent
    assert received[0] == total
    stream.close()
    accepted.close()


async def test_256_mib_16_streams_sha256(pair: AioPair, deadline: Deadline) -> None:
    """SPEC.md 2.1, 8, 9: 256 MiB over 16 concurrent streams, every stream's SHA-256 intact."""
    per_stream = 16 * MiB
    started = time.perf_counter()
    async with deadline(120):
        streams = [await pair.client.open_stream() for _ in range(16)]
        accepted = [await pair.server.accept_stream() for _ in range(16)]
        assert [s.id for s in accepted] == [s.id for s in streams]
        results = await asyncio.gather(
            *(source_digest(s, seed, per_stream) for seed, s in enumerate(streams)),
            *(sink_digest(s) for s in accepted),
        )
    elapsed = time.perf_counter() - started
    sent, received = results[:16], results[16:]
    assert received == sent
    assert sum(count for count, _ in received) == 256 * MiB
    assert len({digest for _, digest in sent}) == 16
    for s in [*streams, *accepted]:
        s.close()
    print(f"256 MiB over 16 streams ({pair.link}, v{pair.version}): {elapsed:.2f} s")


async def test_random_write_and_read_sizes(pair: AioPair, deadline: Deadline) -> None:
    """SPEC.md 6.1: any sequence of write sizes arrives as the same byte string."""
    rng = random.Random(7)
    sizes = [rng.choice([0, 1, 2, 99, 4096, 32767, 32768, 32769, 65535, 65536, 200_000])]
    sizes += [rng.randrange(0, 150_000) for _ in range(120)]
    data = rng.randbytes(sum(sizes))
    stream = await pair.client.open_stream()

    async def writer() -> None:
        offset = 0
        for size in sizes:
            stream.write(data[offset : offset + size])
            offset += size
            if rng.random() < 0.5:
                await stream.drain()
        await stream.drain()
        stream.close_write()

    async def reader(accepted: Stream) -> bytes:
        parts: list[bytes] = []
        while True:
            how = rng.randrange(3)
            if how == 0:
                chunk = await accepted.read(rng.randrange(1, 100_000))
            elif how == 1:
                try:
                    chunk = await accepted.readexactly(rng.randrange(1, 100_000))
                except asyncio.IncompleteReadError as exc:
                    chunk = exc.partial
            else:
                chunk = await accepted.read(1)
            if not chunk:
                return b"".join(parts)
            parts.append(chunk)

    async with deadline(30):
        accepted = await pair.server.accept_stream()
        _, received = await asyncio.gather(writer(), reader(accepted))
    assert len(received) == len(data)
    assert received == data
    assert accepted.at_eof()
    stream.close()
    accepted.close()


async def test_zero_length_writes_carry_nothing(pair: AioPair, deadline: Deadline) -> None:
    """SPEC.md 6.3: an empty write sends nothing and is not an EOF; data around it is intact."""
    stream = await pair.client.open_stream()
    stream.write(b"")
    stream.write(b"abc")
    stream.write(bytearray())
    stream.write(memoryview(b""))
    stream.write(b"def")
    stream.write(b"")
    await stream.drain()
    async with deadline(5):
        accepted = await pair.server.accept_stream()
        assert await accepted.readexactly(6) == b"abcdef"
        stream.write(b"")
        await stream.drain()
        stream.write(b"g")
        assert await accepted.read(100) == b"g"
        stream.close_write()
        assert await accepted.read(100) == b""
    stream.close()
    accepted.close()


async def test_zero_length_write_puts_no_frame_on_the_wire(
    raw_link: RawLink, deadline: Deadline
) -> None:
    """SPEC.md 6.3: Go never sends a zero-length PSH; neither does smuxref.aio."""
    session, peer = await raw_link(keepalive_disabled=True)
    stream = await session.open_stream()
    stream.write(b"")
    stream.write(b"x")
    stream.write(bytearray())
    stream.close_write()
    await stream.drain()
    version = session.config.version
    async with deadline(5):
        wire = await peer.reader.readexactly(8 + 9 + 8)
    assert FrameDecoder(version).feed(wire) == [
        Frame(version, Cmd.SYN, stream.id),
        Frame(version, Cmd.PSH, stream.id, b"x"),
        Frame(version, Cmd.FIN, stream.id),
    ]
    stream.close()


async def test_writes_larger_than_max_frame_size_are_split(
    raw_link: RawLink, deadline: Deadline
) -> None:
    """SPEC.md 6.1: max_frame_size=100 cuts each write into 100-byte PSH frames plus a remainder."""
    session, peer = await raw_link(keepalive_disabled=True, max_frame_size=100)
    version = session.config.version
    sizes = [1, 100, 101, 250, 1000, 99, 12345]
    data = random.Random(100).randbytes(sum(sizes))
    stream = await session.open_stream()
    offset = 0
    for size in sizes:
        stream.write(data[offset : offset + size])
        offset += size
    stream.close_write()
    await stream.drain()
    expected_lengths = []
    for size in sizes:
        expected_lengths += [100] * (size // 100) + ([size % 100] if size % 100 else [])
    wire_size = 8 * (2 + len(expected_lengths)) + len(data)
    async with deadline(5):
        wire = await peer.reader.readexactly(wire_size)
    frames = FrameDecoder(version).feed(wire)
    assert frames[0] == Frame(version, Cmd.SYN, stream.id)
    assert frames[-1] == Frame(version, Cmd.FIN, stream.id)
    pushes = frames[1:-1]
    assert {(f.cmd, f.sid) for f in pushes} == {(Cmd.PSH, stream.id)}
    assert [len(f.data) for f in pushes] == expected_lengths
    assert b"".join(f.data for f in pushes) == data
    stream.close()


async def test_small_max_frame_size_round_trip(make_pair: PairFactory, deadline: Deadline) -> None:
    """SPEC.md 6.1: data cut into 100-byte frames is reassembled intact both ways."""
    pair = await make_pair(max_frame_size=100)
    data = random.Random(5).randbytes(300_001)
    stream = await pair.client.open_stream()
    stream.write(data)
    stream.close_write()
    async with deadline(30):
        accepted = await pair.server.accept_stream()
        echoed, _ = await asyncio.gather(read_all(stream), echo(accepted))
        await stream.drain()
    assert echoed == data
    stream.close()


@pytest.mark.parametrize("version", [2])
async def test_v2_slow_reader_blocks_writer_without_loss(
    make_pair: PairFactory, deadline: Deadline
) -> None:
    """SPEC.md 9.1-9.3: a slow reader's window blocks the writer in drain; nothing is lost."""
    window = 4096
    pair = await make_pair(server={"max_stream_buffer": window})
    data = random.Random(9).randbytes(MiB)
    stream = await pair.client.open_stream()
    stream.write(data)
    # Version 2: only the initial window went out; the rest waits for UPDs.
    assert pair.client.engine.send_window(stream.id) == 0

    async def writer() -> None:
        await stream.drain()
        stream.close_write()

    async with deadline(60):
        accepted = await pair.server.accept_stream()
        writing = asyncio.create_task(writer())
        # Nothing is read: the writer must stay blocked in drain (the wait is the test).
        done, _ = await asyncio.wait({writing}, timeout=deadline.scaled(0.3))
        assert not done
        info = pair.server.engine.stream(accepted.id)
        assert info is not None
        assert info.buffered == INITIAL_PEER_WINDOW
        received = bytearray()
        while chunk := await accepted.read(1000):
            received += chunk
            info = pair.server.engine.stream(accepted.id)
            unread = 0 if info is None else info.buffered
            # In flight: the initial window, then never more than one window past the
            # bytes read when the last UPD was sent.
            assert len(received) + unread <= max(INITIAL_PEER_WINDOW, len(received) + window)
        await writing
    assert bytes(received) == data
    stream.close()
    accepted.close()
