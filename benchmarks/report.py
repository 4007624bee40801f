"""The speed table's figures: medians with their spread, targets, the table and the JSON.

A :class:`Figure` is every sample of one row: the rounds of a transfer or a latency
(``benchmarks/rounds.py``), the values of a pyperf benchmark, one instruction count.
Its median is what the table shows, its min-max the spread; a ratio is a figure of
its own, computed round by round from two cases run back to back, never from two
medians taken at different moments.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MIB = 1 << 20
KIB = 1 << 10


@dataclass(frozen=True, slots=True)
class Options:
    """What one run measures (see ``benchmarks.run.parse_args`` for each option)."""

    size: int = 128 * MIB
    rounds: int = 21
    write_size: int = 64 * KIB
    read_size: int = 64 * KIB
    sha256: bool = False
    pin_malloc: bool = True
    interop: bool = True
    echo_count: int = 2_000
    echo_size: int = 1 * KIB
    #: pyperf worker processes and values per process for the codec rows; 0: no pyperf
    #: (``--quick``: one value, for a smoke run).
    codec_processes: int = 6
    codec_values: int = 3
    #: Count instructions per frame under valgrind (callgrind) when it is installed.
    instructions: bool = True
    uvloop: bool = True
    #: Where the processes of a pair run: ``benchmarks.rounds.PLACEMENTS``.
    placement: str = "one-cpu"


@dataclass(frozen=True, slots=True)
class Target:
    """A bound from the issues: ``op`` is ``>=`` or ``<=``."""

    op: str
    value: float

    def met(self, figure: float) -> bool:
        return figure >= self.value if self.op == ">=" else figure <= self.value

    def __str__(self) -> str:
        value = f"{self.value:.0%}" if self.value < 100 else f"{self.value:,.0f}"
        return f"{self.op} {value}"


#: Figure kinds.  Ratios and instruction counts are what a run elsewhere reproduces;
#: rates depend on the machine and on what else runs on it.
RATIO, RATE, INSTRUCTIONS = "ratio", "rate", "instructions"


@dataclass(frozen=True, slots=True)
class Figure:
    key: str
    name: str
    kind: str
    unit: str
    values: tuple[float, ...]
    target: Target | None = None
    #: pyperf rows: mean and standard deviation as pyperf reports them.
    mean: float | None = None
    stdev: float | None = None
    #: Relative half-width of the range a one-value figure claims (instruction counts).
    tolerance: float = 0.0

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values) * (1 - self.tolerance)

    @property
    def high(self) -> float:
        return max(self.values) * (1 + self.tolerance)

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.target.met(self.median)


@dataclass(slots=True)
class Report:
    figures: list[Figure] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    malloc_pinned: bool = False
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    seconds: float = 0.0

    def by_key(self) -> dict[str, Figure]:
        return {figure.key: figure for figure in self.figures}


def fmt(value: float, unit: str) -> str:
    if unit == "ratio":
        return f"{value:.0%}" if value < 10 else f"{value:.1f}x"
    if unit in ("MiB/s", "frames/s", "instr/frame", "us"):
        return f"{value:,.0f}"
    return f"{value:,.3g}"


def format_table(report: Report, opts: Options) -> str:
    lines = [
        f"smuxref speed: {machine()}; {opts.rounds} rounds, {opts.size / MIB:g} MiB per "
        f"transfer, {opts.echo_count:,} round trips of {opts.echo_size:,} B per latency row",
        f"load average {report.load_before[0]:.2f} before, {report.load_after[0]:.2f} after; "
        f"{report.seconds:.0f} s; glibc mmap threshold "
        + ("pinned" if report.malloc_pinned else "dynamic")
        + f"; placement {opts.placement}",
    ]
    header = f"{'figure':<58}{'unit':>12}{'median':>10}{'min':>10}{'max':>10}  target"
    lines += [header, "-" * len(header)]
    for fig in report.figures:
        verdict = ""
        if fig.target is not None:
            verdict = f"{fig.target}: {'met' if fig.met else 'MISSED'}"
        spread = f"{fmt(fig.low, fig.unit):>10}{fmt(fig.high, fig.unit):>10}"
        lines.append(
            f"{fig.name:<58}{fig.unit:>12}{fmt(fig.median, fig.unit):>10}{spread}  {verdict}"
        )
    lines += [f"skipped: {why}" for why in report.skipped]
    return "\n".join(line.rstrip() for line in lines)


def machine() -> str:
    """Cores, CPU model and Python: what a reader needs to place the figures."""
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = " ".join(line.split(":", 1)[1].split())
                break
    return (
        f"{os.cpu_count()} cores{' ' + model if model else ''}, {platform.system()}, "
        f"{platform.python_implementation()} {platform.python_version()}"
    )


def to_json(report: Report, opts: Options, argv: Sequence[str]) -> dict[str, Any]:
    figures = []
    for fig in report.figures:
        entry = asdict(fig)
        entry["target"] = None if fig.target is None else asdict(fig.target)
        entry["values"] = list(fig.values)
        entry.update(median=fig.median, low=fig.low, high=fig.high, met=fig.met)
        figures.append(entry)
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "python": platform.python_version(),
        "load_before": list(report.load_before),
        "load_after": list(report.load_after),
        "seconds": report.seconds,
        "malloc_pinned": report.malloc_pinned,
        "command": ["python", *argv],
        "options": asdict(opts),
        "figures": figures,
        "skipped": report.skipped,
    }


def from_json(data: dict[str, Any]) -> list[Figure]:
    """The figures of a results file (or of ``benchmarks/published.json``)."""
    out = []
    for entry in data["figures"]:
        target = entry.get("target")
        out.append(
            Figure(
                entry["key"],
                entry["name"],
                entry["kind"],
                entry["unit"],
                tuple(entry["values"]),
                None if target is None else Target(target["op"], target["value"]),
                entry.get("mean"),
                entry.get("stdev"),
                entry.get("tolerance", 0.0),
            )
        )
    return out
