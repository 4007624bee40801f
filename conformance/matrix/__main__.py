"""``python -m smuxref_conformance.matrix``: run the interop matrix, or merge and render its JSON.

    python -m smuxref_conformance.matrix run [--impl ref --impl go ...] [--out reports/matrix]
    python -m smuxref_conformance.matrix merge A/matrix.json B/matrix.json --out DIR
    python -m smuxref_conformance.matrix render DIR/matrix.json        (index.html + Markdown)

``run`` runs the conformance suite against every implementation (one pytest run each,
``-n 2``), then every implementation's client against every implementation's server
(:mod:`smuxref_conformance.pairwise`) for both protocol versions, and writes ``matrix.json``,
``index.html``, the suite's reports under ``conformance/`` and the pairs' transcripts and
pcaps under ``pairs/``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..deadlines import set_scale
from ..pairwise.runner import run_pair
from ..peers.pool import PeerPool
from ..peers.run_context import RunContext
from ..peers.specs import parse_peer
from .data import UNSERVABLE, conformance_summary, empty, load, merge
from .page import render_html, render_markdown

DEFAULT_IMPLS = ("ref", "go", "go@v1.0.7", "rust-smux")


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-.@" else "_" for c in name)


def _conformance(impl: str, out: Path, scale: float, extra: list[str]) -> dict[str, Any]:
    report_dir = out / "conformance" / _safe(impl)
    argv = [
        sys.executable, "-m", "pytest", "conformance", "-q", "-p", "no:cacheprovider",
        "-n", "2", f"--peer={impl}", f"--smux-report-dir={report_dir}",
        f"--smux-timeout-scale={scale}", *extra,
    ]  # fmt: skip
    print(f"[matrix] conformance {impl}: {shlex.join(argv[2:])}", flush=True)
    started = time.monotonic()
    subprocess.run(argv, check=False, stdout=subprocess.DEVNULL)
    results = report_dir / "smux-results.json"
    if not results.is_file():
        return {"report": "", "cells": {}, "error": "the suite wrote no results", "total": 0}
    summary = conformance_summary(results, f"conformance/{_safe(impl)}/report.html")
    summary["seconds"] = round(time.monotonic() - started, 1)
    print(f"[matrix]   {summary['total']} results, {summary['unexpected']} unexpected", flush=True)
    return summary


def _pairwise(impls: list[str], versions: list[int], out: Path) -> list[dict[str, Any]]:
    run = RunContext.create(None)
    pool = PeerPool(run)
    results = []
    try:
        for version in versions:
            for client in impls:
                for server in impls:
                    r = run_pair(pool, parse_peer(client), parse_peer(server), version, out)
                    print(f"[matrix] v{version} {client} -> {server}: {r.summary}", flush=True)
                    results.append(r.to_json())
    finally:
        pool.close()
        run.remove()
    return results


def _write(doc: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "matrix.json").write_text(json.dumps(doc, indent=1) + "\n")
    (out / "index.html").write_text(render_html(doc))
    (out / "matrix.md").write_text(render_markdown(doc))


def cmd_run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    out = Path(args.out)
    impls = args.impl or list(DEFAULT_IMPLS)
    set_scale(args.timeout_scale)
    doc = empty()
    doc["unservable"] = dict(UNSERVABLE)
    extra = ["-k", args.k] if args.k else []
    for impl in impls:
        if not args.skip_conformance:
            doc["conformance"][impl] = _conformance(impl, out, args.timeout_scale, extra)
            continue
        kept = out / "conformance" / _safe(impl) / "smux-results.json"
        if kept.is_file():  # an earlier run's report in the same folder
            rel = f"conformance/{_safe(impl)}/report.html"
            doc["conformance"][impl] = conformance_summary(kept, rel)
    if not args.skip_pairwise:
        versions = [int(v) for v in args.versions.split(",")]
        doc["pairwise"] = _pairwise(impls, versions, out)
    doc["runs"].append(
        {
            "command": "python -m smuxref_conformance.matrix " + shlex.join(sys.argv[1:]),
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "wall_seconds": round(time.monotonic() - started),
            "cores": os.cpu_count(),
        }
    )
    _write(doc, out)
    print(render_markdown(doc))
    print(f"[matrix] wrote {out / 'index.html'} and {out / 'matrix.json'}")
    return 0


def _rebase(doc: dict[str, Any], base: Path, out: Path) -> dict[str, Any]:
    """Make a document's relative links point from ``out`` instead of from ``base``."""

    def rel(link: str) -> str:
        return os.path.relpath(base / link, out) if link else link

    for summary in doc.get("conformance", {}).values():
        summary["report"] = rel(summary.get("report", ""))
    for entry in doc.get("pairwise", []):
        entry["transcript"] = rel(entry.get("transcript", ""))
        entry["pcap"] = rel(entry.get("pcap", ""))
    return doc


def cmd_merge(args: argparse.Namespace) -> int:
    out = Path(args.out)
    docs = [_rebase(load(Path(p)), Path(p).resolve().parent, out.resolve()) for p in args.files]
    _write(merge(docs), out)
    print(f"[matrix] merged {len(docs)} documents into {out / 'matrix.json'}")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    path = Path(args.file)
    doc = load(path)
    (path.parent / "index.html").write_text(render_html(doc))
    print(render_markdown(doc))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m smuxref_conformance.matrix")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run conformance and pairwise for every implementation")
    run.add_argument("--impl", action="append", help=f"a --peer value (default {DEFAULT_IMPLS})")
    run.add_argument("--out", default="reports/matrix")
    run.add_argument("--versions", default="1,2")
    run.add_argument("--timeout-scale", type=float, default=1.0)
    run.add_argument("-k", help="pytest -k for the conformance runs (a subset, for trials)")
    run.add_argument(
        "--skip-conformance",
        action="store_true",
        help="run no conformance; reuse the reports an earlier run left in OUT/conformance/",
    )
    run.add_argument("--skip-pairwise", action="store_true")
    run.set_defaults(func=cmd_run)
    mrg = sub.add_parser("merge", help="merge matrix.json documents (later ones win)")
    mrg.add_argument("files", nargs="+")
    mrg.add_argument("--out", required=True)
    mrg.set_defaults(func=cmd_merge)
    ren = sub.add_parser("render", help="rewrite index.html from matrix.json; print Markdown")
    ren.add_argument("file")
    ren.set_defaults(func=cmd_render)
    args = p.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
