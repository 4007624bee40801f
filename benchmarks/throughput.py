"""Bulk transfers: raw asyncio TCP, smuxref in one process, and across processes.

Each ``Transfer`` sets up, times one transfer of ``Options.size`` bytes and tears down;
``benchmarks/rounds.py`` pairs them and runs the pairs in rounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import struct
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import NamedTuple

from benchmarks import interop
from benchmarks.report import KIB, Options
from smuxref import Config, aio

HOST = "127.0.0.1"
#: Version 2's per-stream window with the default configuration (max_stream_buffer).
V2_WINDOW = Config().max_stream_buffer
#: The raw windowed transfer's acknowledgement: total bytes read so far.
ACK = struct.Struct("<Q")


# --------------------------------------------------------------- throughput


class Sink:
    """What one reader received: a byte count and, with ``--sha256``, a digest."""

    __slots__ = ("count", "digest")

    def __init__(self, sha256: bool) -> None:
        self.count = 0
        self.digest = hashlib.sha256() if sha256 else None


async def read_all(read: Callable[[int], Awaitable[bytes]], size: int, sink: Sink) -> None:
    """Read until EOF, counting (and hashing) every byte."""
    digest = sink.digest
    count = 0
    while chunk := await read(size):
        count += len(chunk)
        if digest is not None:
            digest.update(chunk)
    sink.count = count


async def write_all(
    write: Callable[[bytes], None],
    drain: Callable[[], Awaitable[None]],
    payload: bytes,
    total: int,
) -> None:
    """Write ``total`` bytes as repeats of ``payload`` (the last one cut), draining after each."""
    step = len(payload)
    full, rest = divmod(total, step)
    for _ in range(full):
        write(payload)
        await drain()
    if rest:
        write(payload[:rest])
        await drain()


def expected_digest(payload: bytes, total: int) -> str:
    digest = hashlib.sha256()
    full, rest = divmod(total, len(payload))
    for _ in range(full):
        digest.update(payload)
    digest.update(payload[:rest])
    return digest.hexdigest()


def check_sinks(name: str, sinks: Sequence[Sink], per_reader: int, digest: str | None) -> None:
    for sink in sinks:
        if sink.count != per_reader:
            raise AssertionError(f"{name}: a reader got {sink.count} bytes, {per_reader} were sent")
        if digest is not None and sink.digest is not None and sink.digest.hexdigest() != digest:
            raise AssertionError(f"{name}: SHA-256 of the received bytes differs")


class Timing(NamedTuple):
    """Seconds taken: on the wall clock, and of this process's CPU (user + system).

    Both ends run in this one thread, so ``cpu`` is the whole transfer's cost; it is
    also what changes least when other processes compete for the machine."""

    wall: float
    cpu: float


def clock() -> Timing:
    return Timing(time.perf_counter(), time.process_time())


def since(start: Timing) -> Timing:
    return Timing(time.perf_counter() - start.wall, time.process_time() - start.cpu)


class Transfer:
    """One kind of bulk transfer; ``once`` sets everything up, times the transfer only,
    tears down, and returns the time taken."""

    def __init__(self, key: str, name: str, opts: Options, payload: bytes) -> None:
        self.key = key
        self.name = name
        self.opts = opts
        self.payload = payload

    async def once(self) -> Timing:
        raise NotImplementedError


class RawStreams(Transfer):
    """One TCP connection through asyncio's StreamReader/StreamWriter."""

    async def once(self) -> Timing:
        opts = self.opts
        sink = Sink(opts.sha256)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await read_all(reader.read, opts.read_size, sink)
                done.set_result(None)
            except Exception as exc:  # pragma: no cover - reported by the awaiting side
                done.set_exception(exc)
            finally:
                writer.close()

        # The StreamReader buffers up to twice its limit before pausing the socket; give
        # it the read size so a read can be served whole.
        limit = max(opts.read_size, 64 * KIB)
        server = await asyncio.start_server(handle, HOST, 0, limit=limit)
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection(HOST, port, limit=limit)
        try:
            start = clock()
            await write_all(writer.write, writer.drain, self.payload, opts.size)
            writer.write_eof()
            await done
            elapsed = since(start)
        finally:
            writer.close()
            await writer.wait_closed()
            server.close()
            await server.wait_closed()
        check_sinks(self.name, [sink], opts.size, _digest(opts, self.payload, opts.size))
        return elapsed


class RawWindowed(Transfer):
    """StreamReader/Writer with smux version 2's flow control and nothing else: at most
    ``window`` bytes unacknowledged, and the reader acknowledges (8 bytes back) after a
    read that brings what it read since the last acknowledgement to ``window / 2``, as
    a version 2 receiver sends UPD.  With the default window this is the ceiling of a
    single version 2 stream on one event loop, whatever the framing costs."""

    def __init__(self, key: str, name: str, opts: Options, payload: bytes, window: int) -> None:
        super().__init__(key, name, opts, payload)
        self.window = window

    async def once(self) -> Timing:
        opts = self.opts
        window = self.window
        sink = Sink(opts.sha256)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            digest = sink.digest
            total = unacked = 0
            try:
                while chunk := await reader.read(opts.read_size):
                    total += len(chunk)
                    unacked += len(chunk)
                    if digest is not None:
                        digest.update(chunk)
                    if unacked >= window // 2:
                        unacked = 0
                        writer.write(ACK.pack(total))
                sink.count = total
                done.set_result(None)
            except Exception as exc:  # pragma: no cover - reported by the awaiting side
                done.set_exception(exc)
            finally:
                writer.close()

        server = await asyncio.start_server(handle, HOST, 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection(HOST, port)
        acked = 0
        room = asyncio.Event()

        async def read_acks() -> None:
            nonlocal acked
            with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
                while True:
                    acked = ACK.unpack(await reader.readexactly(ACK.size))[0]
                    room.set()

        acks = asyncio.create_task(read_acks())
        view = memoryview(self.payload)
        try:
            start = clock()
            sent = 0
            while sent < opts.size:
                at = sent % len(view)  # the bytes are repeats of the payload, as elsewhere
                allowed = min(window - (sent - acked), len(view) - at, opts.size - sent)
                if allowed <= 0:
                    room.clear()
                    await room.wait()
                    continue
                writer.write(view[at : at + allowed])
                sent += allowed
                await writer.drain()
            writer.write_eof()
            await done
            elapsed = since(start)
        finally:
            acks.cancel()
            writer.close()
            await writer.wait_closed()
            server.close()
            await server.wait_closed()
        check_sinks(self.name, [sink], opts.size, _digest(opts, self.payload, opts.size))
        return elapsed


class Smux(Transfer):
    """``streams`` smuxref streams on one session, each carrying size/streams bytes."""

    def __init__(
        self,
        key: str,
        name: str,
        opts: Options,
        payload: bytes,
        *,
        version: int,
        streams: int,
        config: Config | None = None,
    ) -> None:
        super().__init__(key, name, opts, payload)
        self.config = config or Config(version=version)
        self.streams = streams

    async def once(self) -> Timing:
        opts = self.opts
        count = self.streams
        # Stream i carries sizes[i] bytes; streams are accepted in the order they opened.
        sizes = [opts.size // count + (i < opts.size % count) for i in range(count)]
        sinks = [Sink(opts.sha256) for _ in range(count)]
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def handler(session: aio.Session) -> None:
            try:
                readers = []
                for sink in sinks:
                    stream = await session.accept_stream()
                    readers.append(asyncio.create_task(read_all(stream.read, opts.read_size, sink)))
                await asyncio.gather(*readers)
                done.set_result(None)
            except Exception as exc:  # pragma: no cover - reported by the awaiting side
                if not done.done():
                    done.set_exception(exc)

        async def send(stream: aio.Stream, size: int) -> None:
            await write_all(stream.write, stream.drain, self.payload, size)
            stream.close_write()
            await stream.drain()

        server = await aio.serve(handler, HOST, 0, self.config)
        port = server.sockets[0].getsockname()[1]
        session = await aio.connect(HOST, port, self.config)
        try:
            streams = [await session.open_stream() for _ in range(count)]
            start = clock()
            await asyncio.gather(*map(send, streams, sizes), done)
            elapsed = since(start)
        finally:
            session.close()
            await session.wait_closed()
            server.close()
            await server.wait_closed()
        for sink, size in zip(sinks, sizes, strict=True):
            check_sinks(self.name, [sink], size, _digest(opts, self.payload, size))
        return elapsed


def _digest(opts: Options, payload: bytes, total: int) -> str | None:
    return expected_digest(payload, total) if opts.sha256 else None


class Servers:
    """The contract servers of the cross-process rows, started once per run and shared
    by every round: ``(impl, version)`` -> process, impl ``go`` or ``ref``, each on
    ``cpus`` (None: wherever the OS puts it)."""

    def __init__(self, go: Path | None, cpus: frozenset[int] | None = None) -> None:
        self.go = go
        self.cpus = cpus
        self._procs: dict[tuple[str, int], interop.ServerProcess] = {}

    def get(self, impl: str, version: int) -> interop.ServerProcess:
        key = (impl, version)
        if key not in self._procs:
            argv = interop.peer_argv(impl, version, self.go, "--no-keepalive")
            self._procs[key] = interop.ServerProcess(argv, self.cpus)
        return self._procs[key]

    def close(self) -> None:
        for proc in self._procs.values():
            proc.close()
        self._procs.clear()


class ServerTransfer(Transfer):
    """A transfer against a contract server process of ``impl`` (one of ``servers``):
    ``direction`` is ``"download"`` (``SOURCE``) or ``"upload"`` (``SINK``)."""

    def __init__(
        self,
        key: str,
        name: str,
        opts: Options,
        payload: bytes,
        *,
        servers: Servers,
        impl: str,
        version: int,
        streams: int,
        direction: str = "download",
    ) -> None:
        super().__init__(key, name, opts, payload)
        self.servers, self.impl, self.version, self.streams = servers, impl, version, streams
        self.direction = direction


class GoLoadgen(ServerTransfer):
    """The Go loadgen (bulk, ``SOURCE`` download) against the server."""

    async def once(self) -> Timing:
        assert self.servers.go is not None
        server = self.servers.get(self.impl, self.version)
        sample = await interop.timed_loadgen(
            self.servers.go,
            server,
            self.version,
            "--mode",
            "bulk",
            "--direction",
            "download",
            "--streams",
            str(self.streams),
            "--bytes",
            str(self.opts.size),
        )
        return Timing(sample.wall, sample.cpu)


class AioClient(ServerTransfer):
    """A smuxref aio client in this process against the server."""

    async def once(self) -> Timing:
        server = self.servers.get(self.impl, self.version)
        size, version, streams = self.opts.size, self.version, self.streams

        async def go() -> None:
            if self.direction == "download":
                await interop.aio_download(server.host, server.port, version, streams, size)
            else:
                await interop.aio_upload(
                    server.host, server.port, version, streams, size=size, payload=self.payload
                )

        sample = await interop.timed_aio(server, go)
        return Timing(sample.wall, sample.cpu)
