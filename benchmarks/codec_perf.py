"""The codec rows of the speed table, on pyperf, and instructions per frame.

pyperf (the tool CPython's own benchmark suite runs on) calibrates the loops, spreads
the values over several worker processes after warm-ups and keeps every value, so a
row is a median with its spread rather than one best run, and two result files
compare with ``python -m pyperf compare_to old.json new.json``::

    python -m benchmarks.codec_perf -o codec.json            # pyperf's own options apply
    python -m benchmarks.codec_perf --count CASE N           # one run of CASE on N frames

``benchmarks.run`` starts the first form as a subprocess.  The second is what
``instructions_per_frame`` runs under valgrind (callgrind): instructions retired do not
depend on the machine's load, so they are the figure to decide an optimisation by on a
busy machine.  Hardware counters (``perf stat -e instructions``) would be cheaper, but
the virtual machines this project runs on do not expose them.

The cases are those of ``benchmarks/codec.py``: 16-byte frames (encode; decode in
64 KiB feeds keeping every frame; decode dropping each feed's frames as a session does)
and 32 KiB frames (decode in 64 KiB feeds); and frames of 0 to 31 bytes in turn, which
the decoder cannot take as runs of equal frames (``FrameDecoder._run``).
"""

from __future__ import annotations

import gc
import operator
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import codec  # noqa: E402

KIB = 1 << 10
#: The payload size of the case whose frames cycle through lengths 0-31.
MIXED = -1
#: case -> (row name, payload bytes, frames per run).  200,000 small frames: the run
#: keeps them all, so the cyclic collector's passes over them count, as they always did.
CASES: dict[str, tuple[str, int, int]] = {
    "encode_small": ("codec encode, 16 B frames", 16, 200_000),
    "decode_small": ("codec decode, 16 B frames", 16, 200_000),
    "decode_small_dropped": ("codec decode, 16 B frames, dropped", 16, 200_000),
    "decode_32k": ("codec decode, 32 KiB frames", 32 * KIB, 2_000),
    # Lengths 0-31 in turn, no two alike in a row: the decoder's runs of equal frames
    # never form, so this row is the frame-by-frame loop alone.
    "decode_mixed": ("codec decode, 0-31 B frames in turn", MIXED, 200_000),
}


def workload(case: str, count: int) -> Callable[[], object]:
    """One run of ``case`` over ``count`` frames, set up and ready to call."""
    _, size, _ = CASES[case]
    if size == MIXED:
        frames = [codec.make_frames(1, i % 32)[0]._replace(sid=1 + 2 * i) for i in range(count)]
    else:
        frames = codec.make_frames(count, size)
    if case == "encode_small":
        return codec.encode_all(frames)
    wire = b"".join(f.encode() for f in frames)
    # The decode runs must not pay for a heap that holds the frames they came from.
    del frames
    if case == "decode_small_dropped":
        return codec.decode_dropping(wire, count)
    return codec.decode_chunked(wire, count)


#: Workloads set up so far in this process: a pyperf worker runs one case and must not
#: pay for setting up the others.
_READY: dict[str, Callable[[], object]] = {}


def _time_runs(loops: int, case: str, count: int) -> float:
    run = _READY.get(case)
    if run is None:
        run = _READY[case] = workload(case, count)
    gc.collect()  # every value starts from the same heap
    start = time.perf_counter()
    for _ in range(loops):
        run()
    return time.perf_counter() - start


def pyperf_main() -> None:
    """The pyperf runner: one benchmark per case, timed per frame (inner loops)."""
    import pyperf  # noqa: PLC0415 - a benchmark dependency (extra "bench"), not the package's

    runner = pyperf.Runner()
    runner.metadata["description"] = "smuxref frame codec (benchmarks/codec_perf.py)"
    for case, (name, _, count) in CASES.items():
        runner.bench_time_func(name, _time_runs, case, count, inner_loops=count)


# ------------------------------------------------------------- instructions

#: Frames of the two runs whose difference is one case's cost (setup and interpreter
#: start cancel out).
COUNT_RUNS = (10_000, 60_000)
#: The cases counted by default (32 KiB frames: the count is mostly memcpy).
COUNTED = ("encode_small", "decode_small", "decode_small_dropped", "decode_mixed")
_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def count_main(case: str, count: int) -> None:
    """Set up, then run ``case`` once through ``operator.call``, the
    function callgrind collects in (nothing else calls it)."""
    run = workload(case, count)
    operator.call(run)


def _instructions(case: str, count: int) -> int:
    argv = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        "--collect-atstart=no",
        "--toggle-collect=_operator_call*",
        sys.executable,
        "-m",
        "benchmarks.codec_perf",
        "--count",
        case,
        str(count),
    ]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    found = _REFS.search(proc.stderr)
    if proc.returncode != 0 or found is None:
        raise RuntimeError(f"callgrind of {case} failed: {proc.stderr.strip()[-500:]}")
    return int(found.group(1).replace(",", ""))


def instructions_per_frame(case: str) -> float:
    """Instructions the interpreter retires per frame of ``case`` (callgrind)."""
    small, large = COUNT_RUNS
    if CASES[case][1] > 16:
        small, large = small // 100, large // 100
    return (_instructions(case, large) - _instructions(case, small)) / (large - small)


def valgrind_missing() -> str | None:
    """Why instructions cannot be counted here, or None."""
    if shutil.which("valgrind") is None:
        return "valgrind is not installed"
    return None


if __name__ == "__main__":
    if sys.argv[1:2] == ["--count"]:
        count_main(sys.argv[2], int(sys.argv[3]))
    else:
        pyperf_main()
