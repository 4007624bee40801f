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

from benchmarks import codec  # noqa: E402
from smuxref import Config, Frame, aio  # noqa: E402

__all__ = ["Options", "Ratio", "Report", "Row", "main", "parse_args", "run"]

MIB = 1 << 20
KIB = 1 << 10
HOST = "127.0.0.1"
#: Targets from the issue's "Speed" section.
TARGET_STREAM_RATIO = 0.70
TARGET_DECODE_SMALL = 1_000_000
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


@dataclass(frozen=True, slots=True)
class Report:
    rows: list[Row]
    ratios: list[Ratio]
    loop: str
    malloc_pinned: bool


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
        self, key: str, name: str, opts: Options, payload: bytes, *, version: int, streams: int
    ) -> None:
        super().__init__(key, name, opts, payload)
        self.config = Config(version=version)
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


def transfers(opts: Options) -> list[Transfer]:
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
    return cases


async def measure_transfers(opts: Options) -> list[Row]:
    cases = transfers(opts)
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


def format_table(report: Report, opts: Options) -> str:
    lines = [
        f"smuxref speed: Python {platform.python_version()}, {os.cpu_count()} cores, "
        f"{report.loop} loop, best of {opts.repeat}, {opts.size / MIB:g} MiB per transfer, "
        f"writes {opts.write_size // KIB} KiB, reads {opts.read_size // KIB} KiB"
        + (", SHA-256 checked" if opts.sha256 else ""),
        "glibc malloc: mmap threshold "
        + ("pinned at 64 MiB" if report.malloc_pinned else "left dynamic (noisy)"),
    ]
    header = f"{'benchmark':<40}{'amount':>10}{'best s':>9}{'rate':>22}{'per CPU s':>12}"
    lines += [header, "-" * len(header)]
    for row in report.rows:
        amount = f"{row.amount / MIB:g} MiB" if row.amount_unit == "bytes" else f"{row.amount:,}"
        rate = f"{row.value:,.0f} {row.unit}"
        per_cpu = "" if row.cpu_seconds is None else f"{row.amount / MIB / row.cpu_seconds:,.0f}"
        lines.append(
            f"{row.name:<40}{amount:>10}{row.seconds:>9.3f}{rate:>22}{per_cpu:>12}".rstrip()
        )
    lines.append("-" * len(header))
    lines.append(f"{'ratio':<52}{'wall':>8}{'per CPU s':>12}")
    for ratio in report.ratios:
        per_cpu = "" if ratio.cpu_value is None else f"{ratio.cpu_value:.1%}"
        verdict = ""
        if ratio.target is not None:
            verdict = f"  target >= {ratio.target:.0%}: {'met' if ratio.met else 'MISSED'}"
        lines.append(f"{ratio.name:<52}{ratio.value:>8.1%}{per_cpu:>12}{verdict}")
    return "\n".join(lines)


def run(opts: Options) -> Report:
    """Measure everything; needs no running event loop (it makes its own)."""
    pinned = pin_malloc() if opts.pin_malloc else False
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if opts.uvloop:  # optional: imported only when asked for
        loop_factory = importlib.import_module("uvloop").new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        rows = runner.run(measure_transfers(opts))
    rows += measure_codec(opts)
    return Report(rows, ratios(rows), "uvloop" if opts.uvloop else "asyncio", pinned)


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
