"""Micro-benchmark of the frame codec: encode and decode, small and 32 KiB frames.

Run from the repository root::

    python benchmarks/codec.py [--small N] [--large N] [--repeat R]

Every line is the best of R runs (time.perf_counter), measured once with the cyclic
garbage collector enabled, as an application runs, and once with it disabled, which
shows how much of the cost is gc passes triggered by the many Frame tuples a decode
allocates.  "64 KiB feeds" keeps every decoded frame, so each gc pass walks more of
them (a ``Cmd`` member keeps a frame tuple tracked by the collector); "frames dropped"
handles each feed's frames and lets them go, as a session does.  No third-party
packages are needed.

The 32 KiB lines mostly measure the kernel: each run allocates about 64 MB of payloads,
and glibc hands that memory back to the system when the run frees it, so the next run
faults every page in again.  With ``MALLOC_TRIM_THRESHOLD_=1000000000
MALLOC_TOP_PAD_=100000000`` in the environment the pages stay mapped and the lines show
the copying cost instead (about five times the rate).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from smuxref import Cmd, Frame, FrameDecoder

CHUNK = 64 * 1024


def best_of(repeat: int, run: Callable[[], object], *, gc_enabled: bool) -> float:
    """Seconds taken by the fastest of ``repeat`` calls of ``run``."""
    best = float("inf")
    was_enabled = gc.isenabled()
    try:
        for _ in range(repeat):
            gc.collect()
            if gc_enabled:
                gc.enable()
            else:
                gc.disable()
            start = time.perf_counter()
            run()
            elapsed = time.perf_counter() - start
            best = min(best, elapsed)
    finally:
        if was_enabled:
            gc.enable()
        else:
            gc.disable()
    return best


def make_frames(count: int, size: int) -> list[Frame]:
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    return [Frame(2, Cmd.PSH, 1 + 2 * (i % 64), payload) for i in range(count)]


def encode_all(frames: list[Frame]) -> Callable[[], object]:
    def run() -> object:
        return [f.encode() for f in frames]

    return run


def decode_whole(wire: bytes, expected: int) -> Callable[[], object]:
    def run() -> object:
        frames = FrameDecoder(2).feed(wire)
        assert len(frames) == expected
        return frames

    return run


def decode_dropping(wire: bytes, expected: int) -> Callable[[], object]:
    """The "frames dropped" lines: decode_chunked without keeping the frames."""
    return decode_chunked(wire, expected, keep=False)


def decode_chunked(wire: bytes, expected: int, *, keep: bool = True) -> Callable[[], object]:
    """Decode in 64 KiB feeds, as a transport delivers; with ``keep`` False each feed's
    frames are only counted and then dropped, as a session handles them."""
    chunks = [wire[i : i + CHUNK] for i in range(0, len(wire), CHUNK)]

    def run() -> object:
        decoder = FrameDecoder(2)
        feed = decoder.feed
        frames: list[Frame] = []
        n = 0
        for chunk in chunks:
            got = feed(chunk)
            n += len(got)
            if keep:
                frames += got
        decoder.close()
        assert n == expected
        return frames

    return run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--small", type=int, default=200_000, help="16-byte frames per run")
    parser.add_argument("--large", type=int, default=2_000, help="32 KiB frames per run")
    parser.add_argument("--repeat", type=int, default=7, help="runs per line; the best counts")
    args = parser.parse_args(argv)

    cases: list[tuple[str, int, int, Callable[[list[Frame], bytes, int], Callable[[], object]]]] = [
        ("encode", 16, args.small, lambda fs, w, n: encode_all(fs)),
        ("decode, one feed()", 16, args.small, lambda fs, w, n: decode_whole(w, n)),
        ("decode, 64 KiB feeds", 16, args.small, lambda fs, w, n: decode_chunked(w, n)),
        ("decode, frames dropped", 16, args.small, lambda fs, w, n: decode_dropping(w, n)),
        ("encode", 32768, args.large, lambda fs, w, n: encode_all(fs)),
        ("decode, one feed()", 32768, args.large, lambda fs, w, n: decode_whole(w, n)),
        ("decode, 64 KiB feeds", 32768, args.large, lambda fs, w, n: decode_chunked(w, n)),
        ("decode, frames dropped", 32768, args.large, lambda fs, w, n: decode_dropping(w, n)),
    ]
    print(f"Python {sys.version.split()[0]}, best of {args.repeat}")
    header = f"{'benchmark':<24}{'payload':>8}{'frames':>9}{'gc on':>14}{'gc off':>14}{'MB/s':>9}"
    print(header)
    print("-" * len(header))
    for name, size, count, factory in cases:
        frames = make_frames(count, size)
        wire = b"".join(f.encode() for f in frames)
        run = factory(frames, wire, count)
        nbytes = len(wire)
        # The decode runs must not pay for a heap that holds the frames they came from:
        # every full gc pass would walk them.
        del frames, wire
        on = best_of(args.repeat, run, gc_enabled=True)
        off = best_of(args.repeat, run, gc_enabled=False)
        mbps = nbytes / on / 1e6
        rates = f"{count / on:>12,.0f}/s{count / off:>12,.0f}/s"
        print(f"{name:<24}{size:>8}{count:>9}{rates}{mbps:>9,.0f}")


if __name__ == "__main__":
    main()
