"""``python -m smuxref_conformance.report RESULTS.json... -o DIR``: rebuild the reports.

Merges one or several ``smux-results.json`` files (a later file's result replaces an
earlier one for the same case, variant, peer, version and role) and writes
``report.html`` and ``summary.md`` into DIR; ``--json NAME`` also writes the merged
results.  Exit status: 0 when the merged results pass the gate, 1 when they do not,
2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import load_results, write_reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m smuxref_conformance.report",
        description="Build report.html and summary.md from smux-results.json files.",
    )
    parser.add_argument("results", nargs="+", type=Path, help="smux-results.json files")
    parser.add_argument("-o", "--output", type=Path, default=Path("reports"), help="directory")
    parser.add_argument("--json", metavar="NAME", help="also write the merged results as NAME")
    args = parser.parse_args(argv)
    try:
        results = load_results(args.results)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    html_path, md_path = write_reports(results, args.output)
    written = [html_path, md_path]
    if args.json:
        json_path = args.output / args.json
        results.write(json_path)
        written.append(json_path)
    summary = results.summary()
    print(
        f"{summary['total']} results, {summary['unexpected']} unexpected, gate "
        f"{summary['gate']}: " + ", ".join(str(p) for p in written)
    )
    return 0 if results.gate_passed() else 1


if __name__ == "__main__":
    raise SystemExit(main())
