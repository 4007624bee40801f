"""The speed table (``python -m benchmarks.run``) still runs and still has every row.

A smoke test only: ``--quick`` moves a few MiB, and nothing here asserts a speed, so
the test cannot flake on a slow or busy machine; it exists so the runner cannot rot.
The rows with the Go peer (Go<->Go, smuxref<->Go) need a Go toolchain to build the
go-peer; without one the runner leaves them out and says so, and their test skips.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent

_BULK = [f"v{v}, {s}" for v in (1, 2) for s in ("1 stream", "16 streams")]
_ECHO = [f"v{v}, {s}" for s in ("1 stream", "64 streams") for v in (1, 2)]

#: Rows measured without Go (in-process, or against the smuxref peer process).
PY_ROWS = [
    "raw asyncio TCP (StreamReader/Writer)",
    "raw asyncio TCP (Protocol, count only)",
    "raw asyncio TCP, v2 window (64 KiB)",
    "smuxref v1, 1 stream",
    "smuxref v1, 16 streams",
    "smuxref v2, 1 stream",
    "smuxref v2, 16 streams",
    "smuxref v2, 1 stream, 1 MiB window",
    *(f"smuxref<-smuxref 2 proc {b}" for b in _BULK),
    "echo raw asyncio TCP, 1 stream",
    "echo raw asyncio TCP, 64 streams",
    *(f"echo smuxref->smuxref {e}" for e in _ECHO),
    *(f"idle streams v{v}: {what}/stream (2 ends)" for v in (1, 2) for what in ("RSS", "traced")),
    *(f"peak RSS growth v{v}, recv buf {b} KiB" for v in (1, 2) for b in (4096, 256)),
    "codec encode, 16 B frames",
    "codec decode, 16 B frames",
    "codec encode, 32 KiB frames",
    "codec decode, 32 KiB frames",
]
PY_RATIOS = [
    "smuxref v1, 1 stream / raw TCP (streams)",
    "smuxref v1, 16 streams / raw TCP (streams)",
    "smuxref v2, 1 stream / raw TCP (streams)",
    "smuxref v2, 16 streams / raw TCP (streams)",
    "smuxref v2, 1 stream / raw TCP, v2 window",
    "smuxref v1, 1 stream / raw TCP (Protocol)",
    "smuxref v2, 1 stream / raw TCP (Protocol)",
    "idle v1: RSS per stream end / 2 KiB",
    "idle v2: RSS per stream end / 2 KiB",
    "codec decode, 16 B frames / 1,000,000 frames/s",
]
#: Rows and ratios that need the go-peer.
GO_ROWS = [
    *(f"Go<->Go {b}" for b in _BULK),
    *(f"smuxref<-Go SOURCE {b}" for b in _BULK),
    *(f"smuxref->Go SINK {b}" for b in _BULK),
    *(f"Go<-smuxref SOURCE {b}" for b in _BULK),
    *(f"echo Go<->Go {e}" for e in _ECHO),
    *(f"echo smuxref->Go {e}" for e in _ECHO),
]
GO_RATIOS = [
    *(f"smuxref<-smuxref 2 proc v{v}, 1 stream / Go<->Go v{v}, 1 stream" for v in (1, 2)),
    *(f"smuxref<-Go SOURCE v{v}, 1 stream / Go<->Go v{v}, 1 stream" for v in (1, 2)),
    *(f"p50 echo smuxref->smuxref v{v}, 1 stream / Go<->Go" for v in (1, 2)),
    *(f"p50 echo smuxref->Go v{v}, 1 stream / Go<->Go" for v in (1, 2)),
]


@dataclass
class QuickRun:
    stdout: str
    report: dict[str, Any]

    def has_line(self, name: str) -> bool:
        return any(line.startswith(name) for line in self.stdout.splitlines())


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> QuickRun:
    out = tmp_path_factory.mktemp("bench") / "results.json"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--sha256", "--json", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return QuickRun(proc.stdout, json.loads(out.read_text()))


def test_quick_run_prints_every_row_and_writes_json(quick: QuickRun) -> None:
    for name in PY_ROWS + PY_RATIOS:
        assert quick.has_line(name), f"no {name!r} line in:\n{quick.stdout}"
    report = quick.report
    assert {"date", "cpu_count", "python", "command", "rows", "ratios", "skipped"} <= report.keys()
    assert report["cpu_count"] == os.cpu_count()
    assert "--quick" in report["command"]
    names = [row["name"] for row in report["rows"]]
    assert set(PY_ROWS) <= set(names)
    for row in report["rows"]:
        assert row["value"] > 0 or row["unit"] in ("B", "MiB"), row
    targets = [ratio for ratio in report["ratios"] if ratio["target"] is not None]
    assert targets, "the issue's targets are reported"
    assert all(isinstance(ratio["met"], bool) for ratio in targets)
    assert any("--gate" in why for why in report["skipped"]), "the gate is opt-in and says so"


def test_quick_run_has_the_go_rows(quick: QuickRun) -> None:
    if shutil.which("go") is None:
        assert any("Go rows" in why for why in quick.report["skipped"])
        pytest.skip("no Go toolchain on PATH: the go-peer cannot be built, Go rows are skipped")
    for name in GO_ROWS + GO_RATIOS:
        assert quick.has_line(name), f"no {name!r} line in:\n{quick.stdout}"
    names = {row["name"] for row in quick.report["rows"]}
    assert set(GO_ROWS) <= names
