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
  of ``benchmarks/codec.py``), decoding fed in 64 KiB pieces as a transport delivers,
  keeping every frame, and again handling (counting) each piece's frames and dropping
  them, as a session does.

Both ends of each connection run in the same event loop, so a throughput figure is
the whole round trip's CPU cost: sender, kernel and receiver.  Every writer sends the
same ``--write-size`` buffer again and again and every reader asks for ``--read-size``
bytes per read, whatever the transport.  The results also go to a JSON file.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import importlib
import json
import platform
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import codec, interop  # noqa: E402
from benchmarks.report import (  # noqa: E402
    KIB,
    MIB,
    Options,
    Ratio,
    Report,
    Row,
    format_table,
    ratios,
    to_json,
)
from benchmarks.throughput import Servers, measure_transfers  # noqa: E402
from smuxref import Config, Frame  # noqa: E402

__all__ = ["Options", "Ratio", "Report", "Row", "main", "parse_args", "run"]

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

    def row(key: str, name: str, count: int, seconds: float) -> Row:
        return Row(key, name, count / seconds, "frames/s", seconds, count, "frames")

    for size, count, label in (
        (16, opts.codec_small, "16 B"),
        (32 * KIB, opts.codec_large, "32 KiB"),
    ):
        frames: list[Frame] = codec.make_frames(count, size)
        wire = b"".join(f.encode() for f in frames)
        key = "small" if size == 16 else "32k"
        seconds = codec.best_of(opts.repeat, codec.encode_all(frames), gc_enabled=True)
        rows.append(row(f"codec_encode_{key}", f"codec encode, {label} frames", count, seconds))
        # The decode runs must not pay for a heap that holds the frames they came from:
        # every full gc pass would walk them.
        del frames
        seconds = codec.best_of(opts.repeat, codec.decode_chunked(wire, count), gc_enabled=True)
        rows.append(row(f"codec_decode_{key}", f"codec decode, {label} frames", count, seconds))
        seconds = codec.best_of(opts.repeat, codec.decode_dropping(wire, count), gc_enabled=True)
        name = f"codec decode, {label} frames, dropped"
        rows.append(row(f"codec_decode_{key}_dropped", name, count, seconds))
    return rows


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
