"""Why the speed table pins every pair to one CPU: CPU sleeps counted per round trip.

Run from the repository root::

    python -m benchmarks.placement                 # 3 samples of each case, 32 MiB
    python -m benchmarks.placement --samples 5 --size 128

For each placement of ``benchmarks.run --placement`` (``one-cpu``, ``two-cpus``) it runs
a few of the speed table's cases and counts, from the kernel's idle statistics
(``/sys/devices/system/cpu/cpuN/cpuidle/state*/usage``), how often each CPU went to
sleep per unit of work: per round trip for the echo rows, per 64 KiB (one version 2
window) for the transfers.  A CPU that sleeps has to be woken for the next message; on
a virtual machine that wake-up goes through the hypervisor, whose cost the guest
neither sees nor controls.  Sleeps near one per unit on two CPUs, near zero on one,
with the figure doubling between them, say that the two-CPU figure measures mostly
those wake-ups.  The counts include whatever else runs on the machine meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import interop, rounds  # noqa: E402
from benchmarks.report import KIB, MIB, Options  # noqa: E402

CPUIDLE = Path("/sys/devices/system/cpu")
#: The cases counted, by the speed table's keys; Go's only where Go is available.
CASES = ("lat_raw_asyncio", "lat_ref_ref_v1_asyncio", "ref_ref_v2", "go_go_v2")


def sleeps(cpus: Sequence[int]) -> list[int]:
    """Times each CPU entered an idle state that is not polling, since boot."""
    out = []
    for cpu in cpus:
        total = 0
        for state in sorted((CPUIDLE / f"cpu{cpu}" / "cpuidle").glob("state*")):
            if (state / "name").read_text().strip() != "POLL":
                total += int((state / "usage").read_text())
        out.append(total)
    return out


def cpuidle_missing() -> str | None:
    if not (CPUIDLE / "cpu0" / "cpuidle").is_dir():
        return f"no {CPUIDLE}/cpu0/cpuidle: the kernel does not report idle states here"
    if len(os.sched_getaffinity(0)) < 2:
        return "one CPU available: there is no second placement to compare"
    return None


async def _count(case: rounds.Case, units: float, cpus: Sequence[int]) -> tuple[float, list[float]]:
    before = sleeps(cpus)
    value = await case.run()
    after = sleeps(cpus)
    return value, [(b - a) / units for a, b in zip(before, after, strict=True)]


def measure(placement: str, opts: Options, samples: int) -> list[str]:
    client, server = rounds.placement_cpus(placement)
    cpus = sorted(os.sched_getaffinity(0))
    go, _ = interop.go_binary()
    procs = rounds.Processes(go, uvloop=False, cpus=server)
    lines = []
    try:
        cases: dict[str, rounds.Case] = {}
        for pair in rounds.pairs(opts, procs):
            cases.setdefault(pair.numerator.key, pair.numerator)
            cases.setdefault(pair.denominator.key, pair.denominator)

        async def run_all() -> None:
            for key in CASES:
                case = cases.get(key)
                if case is None:
                    continue
                units = opts.echo_count if case.unit == "us" else opts.size / (64 * KIB)
                per = "round trip" if case.unit == "us" else "64 KiB"
                for _ in range(samples):
                    value, counts = await _count(case, units, cpus)
                    shown = ", ".join(f"cpu{c} {n:.2f}" for c, n in zip(cpus, counts, strict=True))
                    lines.append(
                        f"{placement:<9} {case.name:<44} {value:8,.0f} {case.unit:<6}"
                        f" sleeps per {per}: {shown}"
                    )

        with interop.on_cpus(client):
            asyncio.run(run_all())
    finally:
        procs.close()
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--samples", type=int, default=3, help="runs of each case (3)")
    parser.add_argument("--size", type=float, default=32, help="MiB per transfer (32)")
    parser.add_argument("--echo-count", type=int, default=2_000, help="round trips (2,000)")
    args = parser.parse_args(argv)
    why = cpuidle_missing()
    if why is not None:
        print(f"cannot count: {why}", file=sys.stderr)
        return 2
    opts = Options(size=max(1, int(args.size * MIB)), echo_count=max(1, args.echo_count))
    print(f"load average {os.getloadavg()[0]:.2f}")
    for placement in ("one-cpu", "two-cpus"):
        print("\n".join(measure(placement, opts, max(1, args.samples))), flush=True)
    print(f"load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
