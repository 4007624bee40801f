"""The interop matrix page (smuxref_conformance.matrix): documents merge, the page renders
in Chromium.

The documents here are made by hand (no peer runs): what is tested is that a later run
replaces what it shares with an earlier one, that links are rebased when documents from
two folders merge, and that a real browser shows both sections with one cell per result.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_reports import NO_CHROMIUM, chromium, run_chromium

from smuxref_conformance.matrix.__main__ import main as matrix_main
from smuxref_conformance.matrix.data import SCHEMA, UNSERVABLE, conformance_summary, merge
from smuxref_conformance.matrix.page import render_html, render_markdown


def _pair(client: str, server: str, version: int, verdict: str, fault: str | None = None) -> Any:
    return {
        "client": client,
        "server": server,
        "version": version,
        "verdict": verdict,
        "at_fault": fault,
        "summary": f"{fault} at fault: SPEC 4.1: version byte 1" if fault else "ok",
        "exchanges_ok": 5 if verdict == "pass" else 0,
        "exchanges": 5,
        "transcript": f"pairs/{client}__{server}__v{version}.txt",
        "pcap": f"pairs/{client}__{server}__v{version}.pcap",
        "findings": [],
    }


def _doc() -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "runs": [
            {"command": "python -m smuxref_conformance.matrix run", "date": "d", "wall_seconds": 1}
        ],
        "conformance": {
            "ref": {"report": "conformance/ref/report.html", "cells": {"v1-server": {"pass": 9}}},
            "rust-smux": {
                "report": "conformance/rust-smux/report.html",
                "cells": {
                    "v1-server": {"pass": 5, "fail": 4, "expected_fail": 4},
                    "v2-client": {"pass": 1, "fail": 2, "unexpected": 2},
                },
            },
        },
        "pairwise": [
            _pair("ref", "ref", 2, "pass"),
            _pair("ref", "rust-smux", 2, "fail", "server"),
            _pair("rust-smux", "ref", 2, "fail", "client"),
            _pair("rust-smux", "rust-smux", 2, "fail", "client"),
        ],
        "unservable": dict(UNSERVABLE),
    }


def test_merge_later_run_wins() -> None:
    first = _doc()
    second = {"schema": SCHEMA, "pairwise": [_pair("ref", "rust-smux", 2, "pass")]}
    merged = merge([first, second])
    pairs = {(p["client"], p["server"]): p["verdict"] for p in merged["pairwise"]}
    assert pairs[("ref", "rust-smux")] == "pass"
    assert pairs[("rust-smux", "ref")] == "fail"
    assert len(merged["pairwise"]) == 4


def test_merge_command_rebases_links(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "matrix.json").write_text(json.dumps(_doc()))
    out = tmp_path / "merged"
    assert matrix_main(["merge", str(tmp_path / "a/matrix.json"), str(tmp_path / "b/matrix.json"),
                        "--out", str(out)]) == 0  # fmt: skip
    doc = json.loads((out / "matrix.json").read_text())
    assert doc["pairwise"][0]["transcript"].startswith("../b/pairs/")
    assert (out / "index.html").read_text().count("data-pair=") == 4


def test_conformance_summary_counts_per_version_and_role(tmp_path: Path) -> None:
    results = [
        {"version": 1, "role": "server", "actual": "pass", "expected": "pass"},
        {"version": 1, "role": "server", "actual": "fail", "expected": "fail"},
        {"version": 2, "role": "client", "actual": "fail", "expected": "pass", "unexpected": True},
    ]
    path = tmp_path / "smux-results.json"
    path.write_text(json.dumps({"results": results, "summary": {"total": 3, "unexpected": 1}}))
    cells = conformance_summary(path, "r.html")["cells"]
    assert cells["v1-server"] == {"pass": 1, "fail": 1, "expected_fail": 1}
    assert cells["v2-client"] == {"fail": 1, "unexpected": 1}


def test_markdown_names_the_side_at_fault() -> None:
    text = render_markdown(_doc())
    assert "| `ref` | pass | fail (server) |" in text
    assert "5/9 pass, 4 known" in text


@pytest.mark.skipif(chromium() is None, reason=NO_CHROMIUM)
def test_chromium_renders_the_matrix_page(tmp_path: Path) -> None:
    page = tmp_path / "index.html"
    page.write_text(render_html(_doc()))
    dom = run_chromium("--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr
    html = dom.stdout
    assert html.count('<table class="grid" data-version="2">') == 1
    assert html.count("data-pair=") == 4
    assert html.count('class="c fail"') == 3 + 1  # three pairs, one conformance cell
    assert "fail: server" in html
    assert "fail: client" in html
    assert html.count(">transcript</a>") == 4
    assert html.count(">pcap</a>") == 4
    assert "no peer:" in html
    shot = tmp_path / "matrix.png"
    proc = run_chromium("--window-size=1200,900", f"--screenshot={shot}", page.as_uri())
    assert proc.returncode == 0, proc.stderr
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 10_000
