"""``smux-conformance merge RESULTS.json... -o DIR``: many runs, one gate.

A CI that shards the suite, or runs it per tag, per implementation or per machine,
ends with one job that downloads every ``smux-results.json`` and merges them into one
results file, one ``report.html``, one ``summary.md`` and one ``junit.xml``, with the
gate's verdict over the whole (the exit codes of :mod:`smuxref_conformance.cli`).

A merge must not pass because a part is missing: runs made with ``--smux-shard I/N``
name their shard, and when some shard of a group (same peers, versions, roles, N) did
not come back the merge is a harness error (3), whatever the other shards say.

Nothing here knows the verdict names beyond ``unsupported`` (not judged) and ``error``
(the harness could not judge): a row counts by its ``unexpected`` flag, so results
files with verdicts this version does not know still merge and gate correctly.
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..cli import EXIT_HARNESS, EXIT_NAMES, EXIT_USAGE, verdict_code
from ..judge.prerequisites import confirm_blames
from . import ResultSet, load_results, write_reports
from .results import headline

__all__ = ["junit_xml", "main", "missing_shards"]


def missing_shards(results: ResultSet) -> list[str]:
    """``"2/4 of peers go; versions 1,2"`` for every shard a sharded group lacks."""
    groups: dict[tuple[Any, ...], set[int]] = defaultdict(set)
    for run in results.runs:
        options = run.get("options") or {}
        shard = options.get("shard")
        if not shard:
            continue
        index, _, count = str(shard).partition("/")
        key = (
            tuple(options.get("peers") or ()),
            tuple(options.get("versions") or ()),
            tuple(options.get("roles") or ()),
            int(count),
        )
        groups[key].add(int(index))
    missing = []
    for (peers, versions, _roles, count), seen in groups.items():
        for number in range(1, count + 1):
            if number not in seen:
                where = f"peers {', '.join(peers)}; versions {','.join(map(str, versions))}"
                missing.append(f"{number}/{count} of {where}")
    return missing


def _testcase_name(row: dict[str, Any]) -> tuple[str, str]:
    column = f"{row['peer']}.v{row.get('version') or '-'}.{row.get('role') or '-'}"
    variant = f"[{row['variant']}]" if row.get("variant") else ""
    return column, f"{row['case']}{variant}"


def junit_xml(results: ResultSet) -> ET.ElementTree:
    """JUnit XML of merged results: one testcase per result, classname peer.version.role.

    An unexpected error is an ``<error>``, any other unexpected result a ``<failure>``;
    a result that is expected but not a pass (unsupported, a listed deviation) is
    ``<skipped>`` with its verdict and reason, so CI dashboards count it apart.
    """
    suite = ET.Element("testsuite", name="smux-conformance")
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    time = 0.0
    for row in results.rows:
        classname, name = _testcase_name(row)
        duration = float(row.get("duration") or 0.0)
        time += duration
        case = ET.SubElement(
            suite, "testcase", classname=classname, name=name, time=f"{duration:.3f}"
        )
        counts["tests"] += 1
        actual, expected = str(row.get("actual")), str(row.get("expected", "pass"))
        summary = f"{row['case']}: expected {expected}, got {actual}"
        if row.get("unexpected"):
            tag = "error" if actual == "error" else "failure"
            element = ET.SubElement(case, tag, message=f"{summary}: {headline(row)}".strip(": "))
            element.text = str(row.get("message") or "")
            counts["errors" if tag == "error" else "failures"] += 1
        elif actual not in ("pass", "info"):
            reason = row.get("reason") or ""
            message = f"{summary}" + (f" ({reason})" if reason else "")
            ET.SubElement(case, "skipped", message=message)
            counts["skipped"] += 1
    for key, value in counts.items():
        suite.set(key, str(value))
    suite.set("time", f"{time:.3f}")
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return ET.ElementTree(root)


def main(argv: Sequence[str] | None = None, prog: str = "smux-conformance merge") -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Merge smux-results.json files of several runs (shards, tags, "
        "implementations, machines) into one results file and one HTML, Markdown and JUnit "
        "report; the exit status is the gate over the whole (0 pass, 1 unexpected results, "
        "2 usage error, 3 harness error: an error result, nothing judged, a missing shard). "
        "A later file's result replaces an earlier one for the same case, variant, peer, "
        "version and role.",
    )
    parser.add_argument(
        "results",
        nargs="+",
        type=Path,
        help="smux-results.json files, or directories holding one (downloaded artifacts)",
    )
    parser.add_argument("-o", "--output", type=Path, default=Path("smux-reports"), help="directory")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return 0 if exc.code == 0 else EXIT_USAGE
    files = [p / "smux-results.json" if p.is_dir() else p for p in args.results]
    try:
        results = load_results(files)
    except ValueError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    # A shard's inconclusive result may name a case that passed in another shard.
    strict = any(run.get("options", {}).get("strict") for run in results.runs)
    confirm_blames(results.rows, strict=strict)
    out: Path = args.output
    out.mkdir(parents=True, exist_ok=True)
    results.write(out / "smux-results.json")
    html_path, md_path = write_reports(results, out)
    junit_path = out / "junit.xml"
    junit_xml(results).write(junit_path, encoding="utf-8", xml_declaration=True)
    code = verdict_code(0, results.to_json())
    missing = missing_shards(results)
    for shard in missing:
        print(f"{prog}: shard {shard} is missing: the gate cannot pass", file=sys.stderr)
    if missing:
        code = EXIT_HARNESS
    summary = results.summary()
    print(
        f"{prog}: {len(args.results)} files, {summary['total']} results, "
        f"{summary['unexpected']} unexpected: exit {code} ({EXIT_NAMES[code]})"
    )
    written = [out / "smux-results.json", html_path, md_path, junit_path]
    print(f"{prog}: reports in {out}: {', '.join(map(str, written))}")
    return code
