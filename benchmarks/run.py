"""Side-by-side speed table: raw asyncio TCP, smuxref sessions, and the frame codec.

Run from the repository root::

    python -m benchmarks.run [--size MIB] [--repeat N] [--quick] [--uvloop] [--json PATH]

Everything is measured in this one process on loopback, one case after the other and
round-robin over ``--repeat`` rounds (the best round counts), so the rows compare like
with like on the same machine at the same moment:

* raw asyncio TCP, one connection, without smux: the ceiling for Python.  Two styles:
  ``StreamReader``/``StreamWriter`` (a reader task awaiting ``read(n)``, a writer calling
  ``write`` + ``drain``: the same shape as an application on ``smuxref.aio``) and bare
  ``Protocol`` callbacks that only count bytes (no task, no buffering at all);
* smuxref over ``aio.serve`` + ``aio.connect``, protocol versions 1 and 2, one stream
  and 16 streams sharing the session; the receiver just reads and counts, and the count
  (and with ``--sha256`` the digest) is checked;
* the codec: encode and decode frames/s for 16-byte and 32 KiB payloads (the functions
  of ``benchmarks/codec.py``), decoding fed in 64 KiB pieces as a transport delivers.

Both ends of each connection run in the same event loop, so a throughput figure is
the whole round trip's CPU cost: sender, kernel and receiver.  Every writer sends the
same ``--write-size`` buffer again and again and every reader asks for ``--read-size``
bytes per read, whatever the transport.  The results also go to a JSON file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import datetime as dt
import gc
import hashlib
import importlib
import json
import os
import platform
import struct
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple, cast

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import codec, interop  # noqa: E402
from smuxref import Config, Frame, aio  # noqa: E402

__all__ = ["Options", "Ratio", "Report", "Row", "main", "parse_args", "run"]

MIB = 1 << 20
KIB = 1 << 10
HOST = "127.0.0.1"
#: Targets from the issue's "Speed" section.
TARGET_STREAM_RATIO = 0.70
TARGET_DECODE_SMALL = 1_000_000
#: smuxref <-> smuxref against Go <-> Go, smuxref <-> Go against Go <-> Go (bulk, 1 stream).
TARGET_VS_GO = 0.50
TARGET_INTEROP_VS_GO = 0.60
#: p50 ECHO round trip through smuxref, at most this many times Go <-> Go's.
TARGET_LATENCY_FACTOR = 2.0
#: Resident bytes per idle open stream, and the gate's wall time (seconds).
TARGET_IDLE_STREAM = 2 * 1024
TARGET_GATE = 120.0
#: The row every throughput ratio divides by.
BASELINE = "raw_tcp_streams"
#: Version 2's per-stream window with the default configuration (max_stream_buffer).
V2_WINDOW = Config().max_stream_buffer
#: The raw windowed transfer's acknowledgement: total bytes read so far.
ACK = struct.Struct("<Q")


@dataclass(frozen=True, slots=True)
class Options:
    """What one run measures (see ``parse_args`` for the meaning of each)."""

    size: int = 256 * MIB
    repeat: int = 3
    write_size: int = 64 * KIB
    read_size: int = 64 * KIB
    streams: int = 16
    sha256: bool = False
    uvloop: bool = False
    pin_malloc: bool = True
    codec_small: int = 200_000
    codec_large: int = 2_000
    #: Cross-process rows with the go-peer and the smuxref peer (needs Go for Go rows).
    interop: bool = True
    echo_count: int = 5_000
    echo_size: int = 1 * KIB
    echo_streams: int = 64
    idle_streams: int = 10_000
    peak_size: int = 256 * MIB
    #: Time the conformance gate (minutes): ``pytest conformance --peer=go|ref -n 2``.
    gate: bool = False


@dataclass(frozen=True, slots=True)
class Row:
    """One measured line of the table."""

    key: str
    name: str
    value: float
    unit: str
    seconds: float
    amount: int
    amount_unit: str
    #: Transfers only: the least process CPU time of the rounds (see Timing).
    cpu_seconds: float | None = None
    #: Latency rows: the 99th percentile (``value`` is the 50th), microseconds.
    p99: float | None = None


@dataclass(frozen=True, slots=True)
class Ratio:
    """A derived line: ``value`` = numerator / denominator, or a figure against a target."""

    key: str
    name: str
    value: float
    target: float | None
    met: bool | None
    #: The same ratio of throughput per CPU second, when both sides are transfers:
    #: steadier than ``value`` when other processes compete for the machine.
    cpu_value: float | None = None
    #: The target is an upper bound (latency, memory, time) rather than a lower one.
    at_most: bool = False


@dataclass(frozen=True, slots=True)
class Report:
    rows: list[Row]
    ratios: list[Ratio]
    loop: str
    malloc_pinned: bool
    #: Rows left out, and why (e.g. no Go toolchain for the Go rows).
    skipped: list[str]


# --------------------------------------------------------------- allocator

#: glibc's mallopt parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3


def pin_malloc() -> bool:
    """Keep glibc from serving large buffers with mmap; return whether it was done.

    Every transport read allocates a 256 KiB bytes object.  glibc serves blocks that
    large with mmap (page faults on every byte) until its dynamic threshold happens to
    rise, so the same transfer runs at 300 or at 900 MiB/s depending on the allocator's
    history.  Fixing the thresholds, as a long-running server's allocator settles,
    makes the rows comparable with each other and from run to run.
    """
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)
        ok = libc.mallopt(M_MMAP_THRESHOLD, 64 * MIB) == 1
        return bool(ok and libc.mallopt(M_TRIM_THRESHOLD, 128 * MIB) == 1)
    except (OSError, AttributeError):
        return False


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


class _CountingProtocol(asyncio.Protocol):
    def __init__(self, sink: Sink, done: asyncio.Future[None]) -> None:
        self.sink = sink
        self.done = done
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        self.sink.count += len(data)
        if self.sink.digest is not None:
            self.sink.digest.update(data)

    def eof_received(self) -> bool:
        if not self.done.done():
            self.done.set_result(None)
        return False


class _SendingProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.writable: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def pause_writing(self) -> None:
        self.writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.resume_writing()

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    async def drain(self) -> None:
        if self.writable is not None:
            await self.writable


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


class RawProtocol(Transfer):
    """One TCP connection with bare Protocol callbacks: the receiver only counts."""

    async def once(self) -> Timing:
        opts = self.opts
        loop = asyncio.get_running_loop()
        sink = Sink(opts.sha256)
        done: asyncio.Future[None] = loop.create_future()
        server = await loop.create_server(lambda: _CountingProtocol(sink, done), HOST, 0)
        port = server.sockets[0].getsockname()[1]
        transport, sender = await loop.create_connection(_SendingProtocol, HOST, port)
        try:
            start = clock()
            await write_all(sender.write, sender.drain, self.payload, opts.size)
            transport.write_eof()
            await done
            elapsed = since(start)
        finally:
            transport.close()
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
    by every round: ``(impl, version)`` -> process, impl ``go`` or ``ref``."""

    def __init__(self, go: Path | None) -> None:
        self.go = go
        self._procs: dict[tuple[str, int], interop.ServerProcess] = {}

    def get(self, impl: str, version: int) -> interop.ServerProcess:
        key = (impl, version)
        if key not in self._procs:
            argv = interop.peer_argv(impl, version, self.go, "--no-keepalive")
            self._procs[key] = interop.ServerProcess(argv)
        return self._procs[key]

    def close(self) -> None:
        for proc in self._procs.values():
            proc.close()
        self._procs.clear()


class GoLoadgen(Transfer):
    """The Go loadgen (bulk, ``SOURCE`` download) against a contract server in ``impl``."""

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
    ) -> None:
        super().__init__(key, name, opts, payload)
        self.servers, self.impl, self.version, self.streams = servers, impl, version, streams

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


class AioClient(Transfer):
    """A smuxref aio client in this process against a contract server in ``impl``:
    ``SOURCE`` (download) or ``SINK`` (upload)."""

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
        direction: str,
    ) -> None:
        super().__init__(key, name, opts, payload)
        self.servers, self.impl, self.version, self.streams = servers, impl, version, streams
        self.direction = direction

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


def transfers(opts: Options, servers: Servers | None = None) -> list[Transfer]:
    payload = os.urandom(opts.write_size)
    n = opts.streams
    cases: list[Transfer] = [
        RawStreams(BASELINE, "raw asyncio TCP (StreamReader/Writer)", opts, payload),
        RawProtocol("raw_tcp_protocol", "raw asyncio TCP (Protocol, count only)", opts, payload),
        RawWindowed(
            "raw_tcp_window",
            f"raw asyncio TCP, v2 window ({V2_WINDOW // KIB} KiB)",
            opts,
            payload,
            V2_WINDOW,
        ),
    ]
    for version in (1, 2):
        for streams in (1, n):
            label = "1 stream" if streams == 1 else f"{streams} streams"
            cases.append(
                Smux(
                    f"smux_v{version}_{streams}",
                    f"smuxref v{version}, {label}",
                    opts,
                    payload,
                    version=version,
                    streams=streams,
                )
            )
    cases.append(
        Smux(
            "smux_v2_1_window1m",
            "smuxref v2, 1 stream, 1 MiB window",
            opts,
            payload,
            version=2,
            streams=1,
            config=Config(version=2, max_stream_buffer=1 * MIB),
        )
    )
    if servers is None:
        return cases
    for version in (1, 2):
        for streams in (1, n):
            label = f"v{version}, " + ("1 stream" if streams == 1 else f"{streams} streams")
            at: dict[str, Any] = {"servers": servers, "version": version, "streams": streams}
            if servers.go is not None:
                cases += [
                    GoLoadgen(
                        f"go_go_v{version}_{streams}",
                        f"Go<->Go {label}",
                        opts,
                        payload,
                        impl="go",
                        **at,
                    ),
                    AioClient(
                        f"ref_go_down_v{version}_{streams}",
                        f"smuxref<-Go SOURCE {label}",
                        opts,
                        payload,
                        impl="go",
                        direction="download",
                        **at,
                    ),
                    AioClient(
                        f"ref_go_up_v{version}_{streams}",
                        f"smuxref->Go SINK {label}",
                        opts,
                        payload,
                        impl="go",
                        direction="upload",
                        **at,
                    ),
                    GoLoadgen(
                        f"go_ref_v{version}_{streams}",
                        f"Go<-smuxref SOURCE {label}",
                        opts,
                        payload,
                        impl="ref",
                        **at,
                    ),
                ]
            cases.append(
                AioClient(
                    f"ref_ref_v{version}_{streams}",
                    f"smuxref<-smuxref 2 proc {label}",
                    opts,
                    payload,
                    impl="ref",
                    direction="download",
                    **at,
                )
            )
    return cases


async def measure_transfers(opts: Options, servers: Servers | None = None) -> list[Row]:
    cases = transfers(opts, servers)
    wall = {case.key: float("inf") for case in cases}
    cpu = dict(wall)
    for _ in range(opts.repeat):
        for case in cases:  # round-robin, so drift in machine load hits every case alike
            gc.collect()
            taken = await case.once()
            wall[case.key] = min(wall[case.key], taken.wall)
            cpu[case.key] = min(cpu[case.key], taken.cpu)
    return [
        Row(
            case.key,
            case.name,
            opts.size / wall[case.key] / MIB,
            "MiB/s",
            wall[case.key],
            opts.size,
            "bytes",
            cpu[case.key],
        )
        for case in cases
    ]


# ------------------------------------------------------------------ latency


async def measure_latency(opts: Options, servers: Servers) -> list[Row]:
    """p50/p99 of an ``echo_size`` ECHO round trip, 1 stream and ``echo_streams`` streams.

    Round-robin over ``repeat`` rounds like the transfers; per row the round with the
    lowest p50 counts (with its own p99)."""
    size, count = opts.echo_size, opts.echo_count
    echo = interop.ServerProcess(interop.echo_server_argv())
    try:
        cases: list[tuple[str, str, Callable[[], Awaitable[tuple[float, float, float]]]]] = []

        def ours(impl: str, version: int, streams: int) -> Callable[[], Awaitable[Any]]:
            async def run() -> tuple[float, float, float]:
                server = servers.get(impl, version)
                t0 = time.perf_counter()
                lat = await interop.aio_echo_latency(
                    server.host, server.port, version, streams, count=count, size=size
                )
                wall = time.perf_counter() - t0
                return interop.percentile(lat, 0.5), interop.percentile(lat, 0.99), wall

            return run

        def go_go(version: int, streams: int) -> Callable[[], Awaitable[Any]]:
            async def run() -> tuple[float, float, float]:
                assert servers.go is not None
                res = await interop.loadgen(
                    servers.go,
                    servers.get("go", version).address,
                    version,
                    "--mode",
                    "echo-latency",
                    "--size",
                    str(size),
                    "--count",
                    str(count),
                    "--streams",
                    str(streams),
                )
                return float(res["p50_us"]), float(res["p99_us"]), float(res["seconds"])

            return run

        def raw(streams: int) -> Callable[[], Awaitable[Any]]:
            async def run() -> tuple[float, float, float]:
                t0 = time.perf_counter()
                lat = await interop.raw_echo_latency(echo.host, echo.port, streams, count, size)
                wall = time.perf_counter() - t0
                return interop.percentile(lat, 0.5), interop.percentile(lat, 0.99), wall

            return run

        for streams in (1, opts.echo_streams):
            label = "1 stream" if streams == 1 else f"{streams} streams"
            cases.append((f"lat_raw_{streams}", f"echo raw asyncio TCP, {label}", raw(streams)))
            for version in (1, 2):
                tag = f"v{version}, {label}"
                if servers.go is not None:
                    cases.append(
                        (
                            f"lat_go_go_v{version}_{streams}",
                            f"echo Go<->Go {tag}",
                            go_go(version, streams),
                        )
                    )
                    cases.append(
                        (
                            f"lat_ref_go_v{version}_{streams}",
                            f"echo smuxref->Go {tag}",
                            ours("go", version, streams),
                        )
                    )
                cases.append(
                    (
                        f"lat_ref_ref_v{version}_{streams}",
                        f"echo smuxref->smuxref {tag}",
                        ours("ref", version, streams),
                    )
                )
        best: dict[str, tuple[float, float, float]] = {}
        for _ in range(opts.repeat):
            for key, _name, fn in cases:
                got = await fn()
                if key not in best or got[0] < best[key][0]:
                    best[key] = got
    finally:
        echo.close()
    return [
        Row(key, name, best[key][0], "us p50", best[key][2], count, "round trips", p99=best[key][1])
        for key, name, _ in cases
    ]


# ------------------------------------------------------------------- memory


async def measure_memory(opts: Options) -> list[Row]:
    rows: list[Row] = []
    n = opts.idle_streams
    for version in (1, 2):
        plain = interop.idle_streams(n, version, trace=False)
        traced = interop.idle_streams(n, version, trace=True)
        rows.append(
            Row(
                f"idle_rss_v{version}",
                f"idle streams v{version}: RSS/stream (2 ends)",
                plain["rss_per_stream"],
                "B",
                0.0,
                n,
                "streams",
            )
        )
        rows.append(
            Row(
                f"idle_traced_v{version}",
                f"idle streams v{version}: traced/stream (2 ends)",
                traced["traced_per_stream"],
                "B",
                0.0,
                n,
                "streams",
            )
        )
    default = Config().max_receive_buffer
    for version in (1, 2):
        for bound in (default, 256 * KIB):
            t0 = time.perf_counter()
            got = await interop.peak_rss_upload(version, opts.peak_size, bound)
            rows.append(
                Row(
                    f"peak_rss_v{version}_{bound // KIB}k",
                    f"peak RSS growth v{version}, recv buf {bound // KIB} KiB",
                    got["growth"] / MIB,
                    "MiB",
                    time.perf_counter() - t0,
                    opts.peak_size,
                    "bytes",
                )
            )
    return rows


def measure_gate() -> list[Row]:
    rows = []
    for peer in ("go", "ref"):
        wall = interop.gate(peer)
        rows.append(
            Row(
                f"gate_{peer}",
                f"gate: pytest conformance --peer={peer} -n 2",
                wall,
                "s",
                wall,
                1,
                "runs",
            )
        )
    return rows


# -------------------------------------------------------------------- codec


def measure_codec(opts: Options) -> list[Row]:
    rows: list[Row] = []
    for size, count, label in (
        (16, opts.codec_small, "16 B"),
        (32 * KIB, opts.codec_large, "32 KiB"),
    ):
        frames: list[Frame] = codec.make_frames(count, size)
        wire = b"".join(f.encode() for f in frames)
        key = "small" if size == 16 else "32k"
        for what, run in (
            ("encode", codec.encode_all(frames)),
            ("decode", codec.decode_chunked(wire, count)),
        ):
            seconds = codec.best_of(opts.repeat, run, gc_enabled=True)
            rows.append(
                Row(
                    f"codec_{what}_{key}",
                    f"codec {what}, {label} frames",
                    count / seconds,
                    "frames/s",
                    seconds,
                    count,
                    "frames",
                )
            )
    return rows


# ------------------------------------------------------------------- report


def _cpu_ratio(row: Row, base: Row) -> float | None:
    if row.cpu_seconds is None or base.cpu_seconds is None:
        return None
    return base.cpu_seconds / row.cpu_seconds  # same bytes: the CPU times' inverse ratio


def ratios(rows: Sequence[Row]) -> list[Ratio]:
    by_key = {row.key: row for row in rows}
    base = by_key[BASELINE]
    ceiling = by_key["raw_tcp_protocol"]
    out: list[Ratio] = []
    for row in rows:
        if row.key.startswith("smux_"):
            single = row.key.endswith("_1")
            target = TARGET_STREAM_RATIO if single else None
            value = row.value / base.value
            out.append(
                Ratio(
                    f"{row.key}/{BASELINE}",
                    f"{row.name} / raw TCP (streams)",
                    value,
                    target,
                    None if target is None else value >= target,
                    _cpu_ratio(row, base),
                )
            )
    window = by_key["raw_tcp_window"]
    out.append(
        Ratio(
            "smux_v2_1/raw_tcp_window",
            f"{by_key['smux_v2_1'].name} / raw TCP, v2 window",
            by_key["smux_v2_1"].value / window.value,
            None,
            None,
            _cpu_ratio(by_key["smux_v2_1"], window),
        )
    )
    for key in ("smux_v1_1", "smux_v2_1"):
        row = by_key[key]
        out.append(
            Ratio(
                f"{key}/raw_tcp_protocol",
                f"{row.name} / raw TCP (Protocol)",
                row.value / ceiling.value,
                None,
                None,
                _cpu_ratio(row, ceiling),
            )
        )
    out += _interop_ratios(by_key)
    decode = by_key["codec_decode_small"].value
    out.append(
        Ratio(
            "codec_decode_small/target",
            "codec decode, 16 B frames / 1,000,000 frames/s",
            decode / TARGET_DECODE_SMALL,
            1.0,
            decode >= TARGET_DECODE_SMALL,
        )
    )
    return out


def _interop_ratios(by_key: dict[str, Row]) -> list[Ratio]:
    """The issue's targets against Go <-> Go, memory and the gate (rows that exist)."""
    out: list[Ratio] = []

    def tput(num: str, den: str, target: float | None) -> None:
        if num in by_key and den in by_key:
            a, b = by_key[num], by_key[den]
            value = a.value / b.value
            out.append(
                Ratio(
                    f"{num}/{den}",
                    f"{a.name} / {b.name}",
                    value,
                    target,
                    None if target is None else value >= target,
                    _cpu_ratio(a, b),
                )
            )

    for v in (1, 2):
        go = f"go_go_v{v}_1"
        tput(f"ref_ref_v{v}_1", go, TARGET_VS_GO)
        tput(f"smux_v{v}_1", go, None)
        for key in (f"ref_go_down_v{v}_1", f"ref_go_up_v{v}_1", f"go_ref_v{v}_1"):
            tput(key, go, TARGET_INTEROP_VS_GO)
    tput("smux_v2_1_window1m", "go_go_v2_1", None)
    for streams in sorted({int(k.rsplit("_", 1)[1]) for k in by_key if k.startswith("lat_go")}):
        for v in (1, 2):
            base = by_key.get(f"lat_go_go_v{v}_{streams}")
            for who in ("ref_ref", "ref_go"):
                row = by_key.get(f"lat_{who}_v{v}_{streams}")
                if base is None or row is None:
                    continue
                value = row.value / base.value
                target = TARGET_LATENCY_FACTOR if streams == 1 else None
                out.append(
                    Ratio(
                        f"lat_{who}_v{v}_{streams}/go",
                        f"p50 {row.name} / Go<->Go",
                        value,
                        target,
                        None if target is None else value <= target,
                        at_most=True,
                    )
                )
    for v in (1, 2):
        row = by_key.get(f"idle_rss_v{v}")
        if row is not None:
            value = row.value / 2 / TARGET_IDLE_STREAM  # two ends per stream in the process
            out.append(
                Ratio(
                    f"idle_rss_v{v}/target",
                    f"idle v{v}: RSS per stream end / 2 KiB",
                    value,
                    1.0,
                    value <= 1.0,
                    at_most=True,
                )
            )
    for peer in ("go", "ref"):
        row = by_key.get(f"gate_{peer}")
        if row is not None:
            value = row.value / TARGET_GATE
            out.append(
                Ratio(
                    f"gate_{peer}/target",
                    f"gate --peer={peer} / 120 s",
                    value,
                    1.0 if peer == "go" else None,
                    (value <= 1.0) if peer == "go" else None,
                    at_most=True,
                )
            )
    return out


def _rate(row: Row) -> str:
    if row.p99 is not None:
        return f"p50 {row.value:,.0f} p99 {row.p99:,.0f} us"
    if row.unit in ("B", "MiB", "s"):
        return f"{row.value:,.1f} {row.unit}"
    return f"{row.value:,.0f} {row.unit}"


def format_table(report: Report, opts: Options) -> str:
    lines = [
        f"smuxref speed: Python {platform.python_version()}, {os.cpu_count()} cores, "
        f"{report.loop} loop, best of {opts.repeat}, {opts.size / MIB:g} MiB per transfer, "
        f"writes {opts.write_size // KIB} KiB, reads {opts.read_size // KIB} KiB"
        + (", SHA-256 checked" if opts.sha256 else ""),
        "glibc malloc: mmap threshold "
        + ("pinned at 64 MiB" if report.malloc_pinned else "left dynamic (noisy)"),
    ]
    header = f"{'benchmark':<46}{'amount':>10}{'best s':>9}{'rate':>26}{'MiB/CPU s':>12}"
    lines += [header, "-" * len(header)]
    for row in report.rows:
        amount = f"{row.amount / MIB:g} MiB" if row.amount_unit == "bytes" else f"{row.amount:,}"
        per_cpu = "" if row.cpu_seconds is None else f"{row.amount / MIB / row.cpu_seconds:,.0f}"
        lines.append(
            f"{row.name:<46}{amount:>10}{row.seconds:>9.3f}{_rate(row):>26}{per_cpu:>12}".rstrip()
        )
    lines.append("-" * len(header))
    lines.append(f"{'ratio':<72}{'wall':>8}{'per CPU s':>12}")
    for ratio in report.ratios:
        per_cpu = "" if ratio.cpu_value is None else f"{ratio.cpu_value:.1%}"
        verdict = ""
        if ratio.target is not None:
            op = "<=" if ratio.at_most else ">="
            verdict = f"  target {op} {ratio.target:.0%}: {'met' if ratio.met else 'MISSED'}"
        lines.append(f"{ratio.name:<72}{ratio.value:>8.1%}{per_cpu:>12}{verdict}")
    lines += [f"skipped: {why}" for why in report.skipped]
    return "\n".join(lines)


def run(opts: Options) -> Report:
    """Measure everything; needs no running event loop (it makes its own)."""
    pinned = pin_malloc() if opts.pin_malloc else False
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if opts.uvloop:  # optional: imported only when asked for
        loop_factory = importlib.import_module("uvloop").new_event_loop
    skipped: list[str] = []
    servers: Servers | None = None
    if opts.interop:
        go, why = interop.go_binary()
        if go is None:
            skipped.append(f"Go rows (Go<->Go, smuxref<->Go): {why}")
        servers = Servers(go)
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            rows = runner.run(measure_transfers(opts, servers))
            if servers is not None:
                rows += runner.run(measure_latency(opts, servers))
                rows += runner.run(measure_memory(opts))
    finally:
        if servers is not None:
            servers.close()
    rows += measure_codec(opts)
    if opts.gate:
        rows += measure_gate()
    else:
        skipped.append("conformance gate timing (opt-in: --gate, takes minutes)")
    return Report(rows, ratios(rows), "uvloop" if opts.uvloop else "asyncio", pinned, skipped)


def parse_args(argv: Sequence[str] | None = None) -> tuple[Options, Path]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size", type=float, default=None, help="MiB per transfer (256)")
    parser.add_argument("--repeat", type=int, default=None, help="rounds; the best counts (3)")
    parser.add_argument("--quick", action="store_true", help="small sizes, one round (CI smoke)")
    parser.add_argument("--write-size", type=int, default=64, help="KiB per write (64)")
    parser.add_argument("--read-size", type=int, default=64, help="KiB asked per read (64)")
    parser.add_argument("--streams", type=int, default=16, help="streams of the multi-stream rows")
    parser.add_argument("--sha256", action="store_true", help="also hash what is received")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop (must be installed)")
    parser.add_argument(
        "--malloc-default",
        action="store_true",
        help="leave glibc's mmap threshold dynamic (noisier; see pin_malloc)",
    )
    parser.add_argument(
        "--no-interop", action="store_true", help="in-process rows only (no Go, no peer processes)"
    )
    parser.add_argument("--gate", action="store_true", help="also time the conformance gate")
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks" / "results.json", help="results file"
    )
    args = parser.parse_args(argv)
    quick = bool(args.quick)
    size_mib = args.size if args.size is not None else (8 if quick else 256)
    opts = Options(
        size=max(1, int(size_mib * MIB)),
        repeat=max(1, args.repeat if args.repeat is not None else (1 if quick else 3)),
        write_size=args.write_size * KIB,
        read_size=args.read_size * KIB,
        streams=args.streams,
        sha256=args.sha256,
        uvloop=args.uvloop,
        pin_malloc=not args.malloc_default,
        codec_small=20_000 if quick else 200_000,
        codec_large=200 if quick else 2_000,
        interop=not args.no_interop,
        echo_count=320 if quick else 5_000,
        idle_streams=1_000 if quick else 10_000,
        peak_size=max(1, int(size_mib * MIB)),
        gate=args.gate,
    )
    return opts, args.json


def to_json(report: Report, opts: Options, argv: Sequence[str]) -> dict[str, Any]:
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "event_loop": report.loop,
        "malloc_pinned": report.malloc_pinned,
        "command": [sys.executable, *argv],
        "options": asdict(opts),
        "rows": [asdict(row) for row in report.rows],
        "ratios": [asdict(ratio) for ratio in report.ratios],
        "skipped": report.skipped,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv if argv is None else ["benchmarks/run.py", *argv])
    opts, json_path = parse_args(args[1:])
    report = run(opts)
    print(format_table(report, opts))
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(to_json(report, opts, args), indent=2) + "\n")
    print(f"results written to {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
