"""Data transfer through smuxref.anyio over loopback TCP, on anyio's asyncio and Trio
backends: the second adapter over the engine passes the transfer tests that
tests/test_aio_transfer.py runs on smuxref.aio, and talks to smuxref.aio on the wire.

The bulk transfer is 16 streams x ``SMUX_ANYIO_MIB_PER_STREAM`` MiB (default 2, so
32 MiB; set 16 for the full 256 MiB), every stream's SHA-256 checked.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import cast

import pytest

pytest.importorskip("anyio")
pytest.importorskip("trio")

import anyio
import anyio.abc

from smuxref import Config, aio
from smuxref.anyio import Session, Stream
from smuxref.errors import KeepAliveTimeoutError, SessionClosedError

MiB = 1 << 20
SCALE = float(os.environ.get("SMUX_TIMEOUT_SCALE") or "1")
MIB_PER_STREAM = int(os.environ.get("SMUX_ANYIO_MIB_PER_STREAM") or "2")
LOCALHOST = "127.0.0.1"

pytestmark = pytest.mark.parametrize("backend", ["asyncio", "trio"])


def block(seed: int, index: int, size: int = MiB) -> bytes:
    return random.Random(seed * 1_000_003 + index).randbytes(size)


def run(backend: str, main: Callable[[], Awaitable[None]]) -> None:
    anyio.run(main, backend=backend)


@asynccontextmanager
async def session_pair(config: Config) -> AsyncIterator[tuple[Session, Session]]:
    """A client and a server smuxref.anyio session over loopback TCP."""
    async with await anyio.create_tcp_listener(local_host=LOCALHOST) as listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        client_tcp = await anyio.connect_tcp(LOCALHOST, port)
        server_tcp = await cast(anyio.abc.SocketListener, listener.listeners[0]).accept()
        async with (
            Session(client_tcp, config, client=True) as client,
            Session(server_tcp, config, client=False) as server,
        ):
            yield client, server


async def read_all(stream: Stream) -> bytes:
    parts = []
    try:
        while True:
            parts.append(await stream.receive(MiB))
    except anyio.EndOfStream:
        return b"".join(parts)


async def sink_digest(stream: Stream, out: list[tuple[int, str]]) -> None:
    digest = hashlib.sha256()
    count = 0
    try:
        while True:
            chunk = await stream.receive(MiB)
            digest.update(chunk)
            count += len(chunk)
    except anyio.EndOfStream:
        out.append((count, digest.hexdigest()))


async def source_digest(stream: Stream, seed: int, total: int, out: list[tuple[int, str]]) -> None:
    digest = hashlib.sha256()
    for index in range(total // MiB):
        data = block(seed, index)
        digest.update(data)
        await stream.send(data)
    await stream.send_eof()
    out.append((total, digest.hexdigest()))


@pytest.mark.parametrize("version", [1, 2])
def test_100_concurrent_streams_echo(backend: str, version: int) -> None:
    """SPEC.md 2.1: 100 concurrent streams each carry their own data, none mixed up."""
    rng = random.Random(100)
    payloads = [
        f"stream {i}:".encode() + rng.randbytes(rng.randrange(1, 64 * 1024)) for i in range(100)
    ]
    replies: dict[int, bytes] = {}

    async def echo(stream: Stream) -> None:
        async with stream:
            try:
                while True:
                    await stream.send(await stream.receive())
            except anyio.EndOfStream:
                pass

    async def server_side(server: Session) -> None:
        async with anyio.create_task_group() as group:
            for _ in range(100):
                group.start_soon(echo, await server.accept_stream())

    async def client_side(client: Session, index: int) -> None:
        async with await client.open_stream() as stream:
            await stream.send(payloads[index])
            await stream.send_eof()
            replies[index] = await read_all(stream)

    async def main() -> None:
        with anyio.fail_after(30 * SCALE):
            async with (
                session_pair(Config(version=version)) as (client, server),
                anyio.create_task_group() as group,
            ):
                group.start_soon(server_side, server)
                for index in range(100):
                    group.start_soon(client_side, client, index)

    run(backend, main)
    assert [replies[i] for i in range(100)] == payloads


@pytest.mark.parametrize("version", [1, 2])
def test_16_streams_sha256(backend: str, version: int) -> None:
    """SPEC.md 2.1, 8, 9: 16 concurrent streams (256 MiB in the full run), every
    stream's SHA-256 and length intact."""
    per_stream = MIB_PER_STREAM * MiB
    sent: list[tuple[int, str]] = []
    received: list[tuple[int, str]] = []

    async def main() -> None:
        with anyio.fail_after((30 + 4 * MIB_PER_STREAM * 16) * SCALE):
            async with session_pair(Config(version=version)) as (client, server):
                streams = [await client.open_stream() for _ in range(16)]
                accepted = [await server.accept_stream() for _ in range(16)]
                assert [s.id for s in accepted] == [s.id for s in streams]
                started = time.perf_counter()
                async with anyio.create_task_group() as group:
                    for seed, stream in enumerate(streams):
                        group.start_soon(source_digest, stream, seed, per_stream, sent)
                    for stream in accepted:
                        group.start_soon(sink_digest, stream, received)
                elapsed = time.perf_counter() - started
                for s in [*streams, *accepted]:
                    await s.aclose()
        total = 16 * per_stream
        print(f"{total // MiB} MiB over 16 streams (anyio {backend}, v{version}): {elapsed:.2f} s")

    run(backend, main)
    assert sorted(received) == sorted(sent)
    assert sum(count for count, _ in received) == 16 * per_stream
    assert len({digest for _, digest in sent}) == 16


@pytest.mark.parametrize("version", [1, 2])
def test_keepalive_timeout_against_silent_peer(backend: str, version: int) -> None:
    """SPEC.md 7.2: a peer that never sends ends the session with KeepAliveTimeoutError."""

    async def main() -> None:
        config = Config(version=version, keepalive_interval=0.05, keepalive_timeout=0.2)
        with anyio.fail_after(10 * SCALE):
            async with await anyio.create_tcp_listener(local_host=LOCALHOST) as listener:
                port = listener.extra(anyio.abc.SocketAttribute.local_port)
                tcp = await anyio.connect_tcp(LOCALHOST, port)
                silent = await cast(anyio.abc.SocketListener, listener.listeners[0]).accept()
                async with Session(tcp, config, client=True) as session:
                    with pytest.raises(SessionClosedError):
                        await session.accept_stream()
                    assert isinstance(session.error, KeepAliveTimeoutError)
                await silent.aclose()

    run(backend, main)


@pytest.mark.parametrize("version", [1, 2])
def test_talks_to_smuxref_aio(backend: str, version: int) -> None:
    """The anyio client against a smuxref.aio server (the wire is the same smux); on
    Trio the server runs in asyncio... so this runs on the asyncio backend only."""
    if backend != "asyncio":
        pytest.skip("smuxref.aio needs an asyncio loop")
    payload = block(9, 0, 3 * MiB // 2)

    async def echo(session: aio.Session) -> None:
        stream = await session.accept_stream()
        async with stream:
            async for chunk in stream:
                stream.write(chunk)
                await stream.drain()

    async def main() -> None:
        with anyio.fail_after(30 * SCALE):
            server = await aio.serve(echo, LOCALHOST, 0, Config(version=version))
            port = server.sockets[0].getsockname()[1]
            tcp = await anyio.connect_tcp(LOCALHOST, port)
            async with Session(tcp, Config(version=version), client=True) as session:
                stream = await session.open_stream()
                async with anyio.create_task_group() as group:

                    async def write() -> None:
                        await stream.send(payload)
                        await stream.send_eof()

                    group.start_soon(write)
                    assert await read_all(stream) == payload
            server.close()
            await server.wait_closed(grace=5)

    run(backend, main)
