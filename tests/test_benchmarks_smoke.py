"""The speed table (``python -m benchmarks.run``) still runs and still has every row.

A smoke test only: ``--quick`` moves a few MiB, and nothing here asserts a speed, so
the test cannot flake on a slow or busy machine; it exists so the runner cannot rot.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Every line the table must have, measured rows first, then the ratios.
ROWS = [
    "raw asyncio TCP (StreamReader/Writer)",
    "raw asyncio TCP (Protocol, count only)",
    "raw asyncio TCP, v2 window (64 KiB)",
    "smuxref v1, 1 stream",
    "smuxref v1, 16 streams",
    "smuxref v2, 1 stream",
    "smuxref v2, 16 streams",
    "codec encode, 16 B frames",
    "codec decode, 16 B frames",
    "codec encode, 32 KiB frames",
    "codec decode, 32 KiB frames",
]
RATIOS = [
    "smuxref v1, 1 stream / raw TCP (streams)",
    "smuxref v1, 16 streams / raw TCP (streams)",
    "smuxref v2, 1 stream / raw TCP (streams)",
    "smuxref v2, 16 streams / raw TCP (streams)",
    "smuxref v2, 1 stream / raw TCP, v2 window",
    "smuxref v1, 1 stream / raw TCP (Protocol)",
    "smuxref v2, 1 stream / raw TCP (Protocol)",
    "codec decode, 16 B frames / 1,000,000 frames/s",
]


def test_quick_run_prints_every_row_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
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
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    for name in ROWS + RATIOS:
        assert any(line.startswith(name) for line in lines), f"no {name!r} line in:\n{proc.stdout}"

    report = json.loads(out.read_text())
    assert {"date", "cpu_count", "python", "command", "rows", "ratios"} <= report.keys()
    assert report["cpu_count"] == os.cpu_count()
    assert "--quick" in report["command"]
    assert [row["name"] for row in report["rows"]] == ROWS
    assert [ratio["name"] for ratio in report["ratios"]] == RATIOS
    for row in report["rows"]:
        assert row["value"] > 0, row
    targets = [ratio for ratio in report["ratios"] if ratio["target"] is not None]
    assert targets, "the issue's targets are reported"
    assert all(isinstance(ratio["met"], bool) for ratio in targets)
