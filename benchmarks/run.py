"""The speed table: medians with their spread, ratios taken within rounds, codec on pyperf.

Run from the repository root (``pip install -e '.[bench]'`` for pyperf and uvloop)::

    python -m benchmarks.run               # under 4 minutes on 2 cores
    python -m benchmarks.run --check       # again, against benchmarks/published.json
    python -m benchmarks.run --publish     # measure, write published.json and the README
    python -m benchmarks.run --render      # the README section from published.json only

What it measures:

* the codec (``benchmarks/codec_perf.py``) on pyperf, in worker processes with
  calibrated loops and warm-ups, and the interpreter's instructions per frame under
  valgrind, a figure machine load does not change;
* pairs of transfers and of round trips (``benchmarks/rounds.py``), ``--rounds`` times,
  each pair back to back, each ratio taken within its round: smuxref against raw
  asyncio TCP in one process, smuxref and Go across processes against Go <-> Go, and
  the ECHO round trip against raw asyncio TCP (and on uvloop, where installed).

Every figure is the median of its samples with their min-max.  The results go to
``--json`` (default ``benchmarks/results.json``) and pyperf's own file
(``benchmarks/results-codec.json``) for ``python -m pyperf compare_to``.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import codec_perf, interop, published, rounds  # noqa: E402
from benchmarks.report import (  # noqa: E402
    INSTRUCTIONS,
    KIB,
    MIB,
    RATE,
    Figure,
    Options,
    Report,
    Target,
    format_table,
    from_json,
    to_json,
)

__all__ = ["Options", "Report", "main", "parse_args", "pin_malloc", "run"]

TARGET_DECODE_SMALL = Target(">=", 1_000_000)
#: Rounds of every pair.  ``--check`` asks whether a new run's median falls within the
#: published run's min-max; with n rounds that fails by chance alone, on a machine whose
#: figures do not drift at all, with probability 2 * C(2n - m, n) / C(2n, n), m = (n + 1)
#: / 2 (the m largest, or smallest, of the 2n values all new): 7.0 % per ratio for 7
#: rounds, so 69 % of checks of 16 ratios would fail; 0.016 % per ratio for 21.
ROUNDS = 21
PYPERF_FILE = ROOT / "benchmarks" / "results-codec.json"
PUBLISHED_PYPERF = ROOT / "benchmarks" / "published-codec.json"

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


# -------------------------------------------------------------------- codec


def measure_codec(opts: Options, pyperf_file: Path) -> list[Figure]:
    """The codec rows from a pyperf run in its own processes (frames/s per value)."""
    import pyperf  # noqa: PLC0415 - extra "bench"

    pyperf_file.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "benchmarks.codec_perf", "--quiet", "-o", str(pyperf_file)]
    if opts.codec_processes:
        argv += ["--processes", str(opts.codec_processes), "--values", str(opts.codec_values)]
        argv += ["--warmups", "1"]
    else:
        argv.append("--debug-single-value")
    subprocess.run(argv, cwd=ROOT, check=True, timeout=1800, stdout=subprocess.DEVNULL)
    figures = []
    for bench in pyperf.BenchmarkSuite.load(str(pyperf_file)).get_benchmarks():
        name = bench.get_name()
        key = next(k for k, (n, _, _) in codec_perf.CASES.items() if n == name)
        per_frame = bench.get_values()  # seconds per frame
        stdev = bench.stdev() * 1e9 if len(per_frame) > 1 else 0.0
        figures.append(
            Figure(
                f"codec_{key}",
                name,
                RATE,
                "frames/s",
                tuple(1 / value for value in per_frame),
                TARGET_DECODE_SMALL if key == "decode_small" else None,
                mean=bench.mean() * 1e9,
                stdev=stdev,
            )
        )
    return figures


def measure_instructions(progress: Progress) -> list[Figure]:
    figures = []
    for case in codec_perf.COUNTED:
        progress(f"callgrind: {case}")
        name = f"{codec_perf.CASES[case][0]}: instructions"
        count = codec_perf.instructions_per_frame(case)
        figures.append(
            Figure(f"instr_{case}", name, INSTRUCTIONS, "instr/frame", (count,), tolerance=0.03)
        )
    return figures


# ---------------------------------------------------------------------- run


class Progress:
    """Progress lines on stderr, with the time since the start."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def __call__(self, what: str) -> None:
        print(f"[{time.perf_counter() - self.start:6.1f} s] {what}", file=sys.stderr, flush=True)


def run(opts: Options, pyperf_file: Path = PYPERF_FILE) -> Report:
    """Measure everything; needs no running event loop (it makes its own)."""
    progress = Progress()
    report = Report(load_before=os.getloadavg())
    report.malloc_pinned = pin_malloc() if opts.pin_malloc else False
    progress("codec on pyperf")
    report.figures += measure_codec(opts, pyperf_file)
    if opts.instructions:
        why = codec_perf.valgrind_missing()
        if why is None:
            report.figures += measure_instructions(progress)
        else:
            report.skipped.append(f"instructions per frame: {why}")
    procs: rounds.Processes | None = None
    uvloop = opts.uvloop
    client_cpus, server_cpus = rounds.placement_cpus(opts.placement)
    if opts.interop:
        go, why = interop.go_binary()
        if go is None:
            report.skipped.append(f"Go rows (Go<->Go, smuxref<->Go): {why}")
        missing = rounds.uvloop_missing() if uvloop else "uvloop rows: --no-uvloop"
        if missing is not None:
            report.skipped.append(missing)
            uvloop = False
        procs = rounds.Processes(go, uvloop, server_cpus)
    else:
        report.skipped.append("cross-process rows (--no-interop)")
    try:
        report.figures += rounds.measure(opts, procs, progress, client_cpus)
    finally:
        if procs is not None:
            procs.close()
    report.load_after = os.getloadavg()
    report.seconds = time.perf_counter() - progress.start
    return report


def parse_args(argv: Sequence[str] | None = None) -> tuple[Options, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size", type=float, default=None, help="MiB per transfer (128)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds of every pair (21)")
    parser.add_argument("--quick", action="store_true", help="small sizes, 2 rounds (smoke)")
    parser.add_argument("--echo-count", type=int, default=None, help="round trips (2,000)")
    parser.add_argument("--write-size", type=int, default=64, help="KiB per write (64)")
    parser.add_argument("--read-size", type=int, default=64, help="KiB asked per read (64)")
    parser.add_argument("--sha256", action="store_true", help="also hash what is received")
    parser.add_argument("--no-uvloop", action="store_true", help="leave out the uvloop rows")
    parser.add_argument(
        "--no-instructions", action="store_true", help="do not count instructions (valgrind)"
    )
    parser.add_argument(
        "--malloc-default",
        action="store_true",
        help="leave glibc's mmap threshold dynamic (noisier; see pin_malloc)",
    )
    parser.add_argument(
        "--placement",
        choices=rounds.PLACEMENTS,
        default="one-cpu",
        help="every process of a pair on one CPU (one-cpu, the default), the servers on"
        " another CPU than the client side (two-cpus), or where the OS puts them (os)",
    )
    parser.add_argument(
        "--no-interop", action="store_true", help="in-process rows only (no Go, no peer processes)"
    )
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks" / "results.json", help="results file"
    )
    parser.add_argument("--pyperf-json", type=Path, default=PYPERF_FILE, help="pyperf's file")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--check",
        action="store_true",
        help="exit 1 if a published ratio or instruction count is outside its range",
    )
    mode.add_argument(
        "--publish", action="store_true", help="write --published and the README section"
    )
    mode.add_argument(
        "--render", action="store_true", help="only render the README section from --published"
    )
    parser.add_argument("--published", type=Path, default=published.PUBLISHED)
    parser.add_argument("--readme", type=Path, default=published.README)
    args = parser.parse_args(argv)
    quick = bool(args.quick)
    size_mib = args.size if args.size is not None else (4 if quick else 128)
    echo_count = args.echo_count if args.echo_count is not None else (200 if quick else 2_000)
    opts = Options(
        size=max(1, int(size_mib * MIB)),
        rounds=max(1, args.rounds if args.rounds is not None else (2 if quick else ROUNDS)),
        write_size=args.write_size * KIB,
        read_size=args.read_size * KIB,
        sha256=args.sha256,
        pin_malloc=not args.malloc_default,
        interop=not args.no_interop,
        echo_count=max(1, echo_count),
        codec_processes=0 if quick else 6,
        instructions=not (quick or args.no_instructions),
        uvloop=not args.no_uvloop,
        placement=args.placement,
    )
    return opts, args


#: Options that say where results go or what to do with them, not what is measured:
#: left out of the command a results file records.
_OUTPUT_OPTIONS = {"--json": 1, "--pyperf-json": 1, "--published": 1, "--readme": 1}
_OUTPUT_FLAGS = {"--check", "--publish", "--render"}


def measuring_options(argv: Sequence[str]) -> list[str]:
    out: list[str] = []
    skip = 0
    for arg in argv:
        name = arg.split("=", 1)[0]
        if skip:
            skip -= 1
        elif name in _OUTPUT_FLAGS:
            continue
        elif name in _OUTPUT_OPTIONS:
            skip = 0 if "=" in arg else _OUTPUT_OPTIONS[name]
        else:
            out.append(arg)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    opts, args = parse_args(argv)
    if args.render:
        published.update_readme(published.load(args.published), args.readme)
        print(f"{args.readme}: section rendered from {args.published}")
        return 0
    report = run(opts, args.pyperf_json)
    print(format_table(report, opts))
    data = to_json(report, opts, ["-m", "benchmarks.run", *measuring_options(argv)])
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(data, indent=2) + "\n")
    print(f"results written to {args.json} and {args.pyperf_json}")
    if args.publish:
        args.published.write_text(json.dumps(data, indent=2) + "\n")
        PUBLISHED_PYPERF.write_bytes(args.pyperf_json.read_bytes())
        published.update_readme(data, args.readme)
        print(f"published to {args.published}, {PUBLISHED_PYPERF.name} and {args.readme}")
    if args.check:
        reference = published.load(args.published)
        lines, ok = published.check(from_json(reference), report.figures)
        print(f"check against {args.published}:")
        differ = published.differing_options(reference.get("options", {}), asdict(opts))
        if differ:
            print(f"note: measured with other options than the published run: {differ}")
        print("\n".join(lines))
        print("every published claim reproduced" if ok else "CHECK FAILED: see OUTSIDE lines")
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
