"""The published figures: ``benchmarks/published.json``, the README section made from it,
and the check of a new run against it.

One source of truth: ``python -m benchmarks.run --publish`` writes the run's results to
``published.json`` and renders the README's table from that file (``--render`` renders
again without measuring).  ``--check`` runs the benchmark again and names every figure
whose new median falls outside the published min-max.  Ratios and instruction counts
are the claims and fail the check; rates and latencies depend on the machine and on
its load, so they are listed but only warn.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.report import INSTRUCTIONS, MIB, RATE, RATIO, Figure, fmt, from_json

ROOT = Path(__file__).resolve().parent.parent
PUBLISHED = ROOT / "benchmarks" / "published.json"
README = ROOT / "README.md"
BEGIN = "<!-- benchmarks:begin"
END = "<!-- benchmarks:end -->"
#: Figure kinds whose falling outside the published range fails ``--check``.
CLAIMS = (RATIO, INSTRUCTIONS)


#: How a run placed the processes of its pairs (``--placement``), in words.
PLACED = {
    "one-cpu": "every process of a pair (and the in-process rows) on one CPU",
    "two-cpus": "the client side on one CPU, the server processes on another",
    "os": "processes placed by the OS",
}

#: The README's tables: title, figure kind, and for rates whether codec rows (or others).
SECTIONS: tuple[tuple[str, str, bool | None], ...] = (
    ("Ratios (each round's pair run back to back)", RATIO, None),
    ("Instructions per frame (callgrind; the same under any load)", INSTRUCTIONS, None),
    ("Codec on pyperf", RATE, True),
    ("Rates and latencies (medians of every round)", RATE, False),
)


def load(path: Path = PUBLISHED) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _row(fig: Figure) -> str:
    target = "" if fig.target is None else f"{fig.target}: {'met' if fig.met else '**missed**'}"
    spread = f"{fmt(fig.low, fig.unit)}-{fmt(fig.high, fig.unit)}"
    if fig.kind == INSTRUCTIONS:
        spread = f"± {fig.tolerance:.0%} (one count)"
    unit = "" if fig.unit == "ratio" else f" {fig.unit}"
    extra = ""
    if fig.mean is not None and fig.stdev is not None:
        extra = f" (pyperf: {fig.mean:,.0f} ± {fig.stdev:,.0f} ns per frame)"
    return f"| {fig.name}{extra} | {fmt(fig.median, fig.unit)}{unit} | {spread} | {target} |"


def render(data: dict[str, Any]) -> str:
    """The README section for a results file (``published.json``)."""
    opts = data["options"]
    figures = from_json(data)
    load_before, load_after = data["load_before"][0], data["load_after"][0]
    lines = [
        f"{BEGIN} (generated from benchmarks/published.json by"
        " `python -m benchmarks.run --render`; do not edit by hand) -->",
        f"Measured {data['date']} on {data['machine']}; load average {load_before:.2f} before"
        f" and {load_after:.2f} after the run, which took {data['seconds'] / 60:.1f} minutes:",
        "",
        f"    {' '.join(data['command'])}",
        "",
        f"{opts['rounds']} rounds; {opts['size'] / MIB:g} MiB per transfer; latency rows are"
        f" the p50 of {opts['echo_count']:,} round trips of {opts['echo_size']:,} bytes;"
        f" {PLACED.get(opts.get('placement', 'os'), 'processes placed by the OS')}.",
        "",
    ]
    for title, kind, codec in SECTIONS:
        chosen = [
            fig
            for fig in figures
            if fig.kind == kind and (codec is None or (fig.unit == "frames/s") == codec)
        ]
        if not chosen:
            continue
        lines += [f"**{title}**", "", "| figure | median | min-max | target |", "|---|---|---|---|"]
        lines += [_row(fig) for fig in chosen]
        lines.append("")
    lines += [f"Skipped: {why}" for why in data.get("skipped", [])]
    lines.append(END)
    return "\n".join(lines)


def update_readme(data: dict[str, Any], readme: Path = README) -> None:
    """Replace the README's generated section (between the markers) with ``render``."""
    text = readme.read_text()
    start = text.find(BEGIN)
    end = text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"{readme}: no '{BEGIN} ... {END}' section to replace")
    readme.write_text(text[:start] + render(data) + text[end + len(END) :])


def differing_options(published: dict[str, Any], now: dict[str, Any]) -> str:
    """The options of this run that differ from the published run's, as ``name: was -> now``
    (a check across different sizes or round counts compares unlike figures)."""
    return ", ".join(
        f"{name}: {published[name]!r} -> {value!r}"
        for name, value in now.items()
        if name in published and published[name] != value
    )


def check(published: Sequence[Figure], fresh: Sequence[Figure]) -> tuple[list[str], bool]:
    """Lines naming each published figure against the new run; and whether every claim
    (ratio, instruction count) fell within its published range."""
    now = {fig.key: fig for fig in fresh}
    lines: list[str] = []
    ok = True
    for pub in published:
        new = now.get(pub.key)
        if new is None:
            lines.append(f"NOT MEASURED  {pub.name} (published {fmt(pub.median, pub.unit)})")
            ok = ok and pub.kind not in CLAIMS
            continue
        inside = pub.low <= new.median <= pub.high
        if inside:
            verdict = "within"
        elif pub.kind in CLAIMS:
            verdict, ok = "OUTSIDE", False
        else:
            verdict = "outside (a rate: warns only)"
        lines.append(
            f"{verdict:<13} {pub.name}: {fmt(new.median, new.unit)}, published"
            f" {fmt(pub.median, pub.unit)} ({fmt(pub.low, pub.unit)}-{fmt(pub.high, pub.unit)})"
        )
    return lines, ok
