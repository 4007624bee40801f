"""The speed table's results, their ratios against targets, and how they are printed.

``Options``, ``Row``, ``Ratio`` and ``Report`` are what ``benchmarks/run.py`` measures
with and produces; ``ratios`` derives the lines compared with the issue's targets,
``format_table`` prints the table and ``to_json`` shapes the results file.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

MIB = 1 << 20
KIB = 1 << 10
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
