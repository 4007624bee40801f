"""The speed table (``python -m benchmarks.run``) runs, and ``--check``/``--render`` work.

Smoke tests only: ``--quick`` moves a few MiB in two rounds and takes one pyperf value,
and nothing here asserts a speed, so the tests cannot flake on a slow or busy machine.
``--check`` is run against a published file made up here, with one range no run can
miss and one no run can reach, so its verdicts are known in advance.  The rows with
the Go peer need a Go toolchain to build the go-peer; without one the runner leaves
them out and says so.
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

from benchmarks import interop, placement, published, rounds
from benchmarks.report import RATE, RATIO, Figure, Target

ROOT = Path(__file__).resolve().parent.parent

pytest.importorskip("pyperf", reason="the codec rows run on pyperf (extra 'bench')")

#: Figures measured without Go (in one process, or against the smuxref peer process).
PY_FIGURES = [
    "codec encode, 16 B frames",
    "codec decode, 16 B frames",
    "codec decode, 16 B frames, dropped",
    "codec decode, 32 KiB frames",
    "raw asyncio TCP",
    "smuxref v1, 1 stream, one process",
    "smuxref v2, 1 stream, one process",
    "smuxref v1, 1 stream, one process / raw asyncio TCP",
    "smuxref v2, 1 stream, one process / raw asyncio TCP",
    "echo raw asyncio TCP",
    "echo smuxref->smuxref v1",
    "echo smuxref->smuxref v1 / echo raw asyncio TCP",
    "echo smuxref->smuxref v2 / echo raw asyncio TCP",
]
GO_FIGURES = [
    "smuxref<-smuxref v1, 1 stream, 2 processes / Go<->Go v1, 1 stream",
    "smuxref<-Go SOURCE v2, 1 stream / Go<->Go v2, 1 stream",
    "smuxref->Go SINK v1, 1 stream / Go<->Go v1, 1 stream",
    "Go<-smuxref SOURCE v1, 1 stream / Go<->Go v1, 1 stream",
    "echo Go<->Go v1 / echo raw asyncio TCP",
]


def _as_dict(fig: Figure) -> dict[str, Any]:
    return {
        "key": fig.key,
        "name": fig.name,
        "kind": fig.kind,
        "unit": fig.unit,
        "values": list(fig.values),
        "target": None,
    }


def made_up_published(path: Path) -> None:
    """A published file whose verdicts are known: the in-process v1 ratio's range
    holds any value, the v2 ratio's none, and the raw rate's none (a rate: warns)."""
    data = json.loads((ROOT / "benchmarks" / "published.json").read_text())
    data["figures"] = [
        _as_dict(Figure("smux_v1/raw_tcp", "v1 ratio", RATIO, "ratio", (0.0, 1e9))),
        _as_dict(Figure("smux_v2/raw_tcp", "v2 ratio", RATIO, "ratio", (1e8, 1e9))),
        _as_dict(Figure("raw_tcp", "raw rate", RATE, "MiB/s", (1e8, 1e9))),
    ]
    path.write_text(json.dumps(data))


@dataclass
class QuickRun:
    returncode: int
    stdout: str
    report: dict[str, Any]

    def has_line(self, name: str) -> bool:
        return any(line.startswith(name) for line in self.stdout.splitlines())


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> QuickRun:
    tmp = tmp_path_factory.mktemp("bench")
    made_up_published(tmp / "published.json")
    argv = ["--quick", "--sha256", "--json", str(tmp / "results.json")]
    argv += ["--pyperf-json", str(tmp / "codec.json"), "--check"]
    argv += ["--published", str(tmp / "published.json")]
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    return QuickRun(proc.returncode, proc.stdout, json.loads((tmp / "results.json").read_text()))


def test_quick_run_prints_every_figure_with_its_spread(quick: QuickRun) -> None:
    for name in PY_FIGURES:
        assert quick.has_line(name), f"no {name!r} line in:\n{quick.stdout}"
    report = quick.report
    assert {"date", "machine", "load_before", "command", "figures", "skipped"} <= report.keys()
    assert "--quick" in report["command"]
    rounds = report["options"]["rounds"]
    for fig in report["figures"]:
        assert fig["low"] <= fig["median"] <= fig["high"], fig
        if fig["kind"] == RATIO:
            assert len(fig["values"]) == rounds, fig  # one ratio per round
    targets = [fig for fig in report["figures"] if fig["target"] is not None]
    assert targets, "the issues' targets are reported"
    assert all(isinstance(fig["met"], bool) for fig in targets)


def test_check_names_the_figures_outside_their_published_range(quick: QuickRun) -> None:
    lines = quick.stdout.splitlines()
    assert quick.returncode == 1, "a ratio outside its published range fails the check"
    assert any(line.startswith("within") and "v1 ratio" in line for line in lines)
    assert any(line.startswith("OUTSIDE") and "v2 ratio" in line for line in lines)
    assert any("raw rate" in line and "warns only" in line for line in lines)
    assert "CHECK FAILED" in quick.stdout
    assert "note: measured with other options than the published run: size:" in quick.stdout


def test_quick_run_has_the_go_rows(quick: QuickRun) -> None:
    if shutil.which("go") is None:
        assert any("Go rows" in why for why in quick.report["skipped"])
        pytest.skip("no Go toolchain on PATH: the go-peer cannot be built, Go rows are skipped")
    for name in GO_FIGURES:
        assert quick.has_line(name), f"no {name!r} line in:\n{quick.stdout}"


def test_check_passes_when_every_claim_is_within_range() -> None:
    pub = [Figure("a/b", "a over b", RATIO, "ratio", (0.8, 1.0, 1.2), Target(">=", 0.5))]
    lines, ok = published.check(pub, [Figure("a/b", "a over b", RATIO, "ratio", (1.1,))])
    assert ok, lines
    lines, ok = published.check(pub, [Figure("a/b", "a over b", RATIO, "ratio", (1.3,))])
    assert not ok
    assert lines[0].startswith("OUTSIDE"), lines
    lines, ok = published.check(pub, [])
    assert not ok
    assert lines[0].startswith("NOT MEASURED"), lines


def test_render_replaces_only_the_generated_section(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{published.BEGIN} old -->\nold table\n{published.END}\nafter\n")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--render", "--readme", str(readme)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = readme.read_text()
    assert text.startswith("before\n")
    assert text.endswith(f"{published.END}\nafter\n")
    assert "old table" not in text
    data = published.load()
    assert " ".join(data["command"]) in text, "the section names the command that made it"
    for fig in data["figures"]:
        assert fig["name"] in text, f"{fig['name']!r} not rendered"


def test_placement_puts_servers_and_this_process_on_their_cpus() -> None:
    """A server started for a pair runs on the CPUs the placement gives it, Go sees as
    many CPUs as it has, and this process gets its own CPUs and environment back."""
    before, gomaxprocs = os.sched_getaffinity(0), os.environ.get("GOMAXPROCS")
    cpus = sorted(before)
    assert rounds.placement_cpus("os") == (None, None)
    client, server = rounds.placement_cpus("one-cpu")
    assert client == server == frozenset(cpus[-1:])
    client, server = rounds.placement_cpus("two-cpus")
    assert client is not None
    assert server is not None
    assert len(client) == len(server) == 1
    assert (client & server) == set() or len(cpus) == 1
    with interop.on_cpus(client):
        assert os.sched_getaffinity(0) == client
        echo = interop.ServerProcess(interop.echo_server_argv(), server)
        try:
            assert os.sched_getaffinity(echo.proc.pid) == server
            environ = Path(f"/proc/{echo.proc.pid}/environ").read_bytes().split(b"\0")
            assert b"GOMAXPROCS=1" in environ
        finally:
            echo.close()
        assert os.sched_getaffinity(0) == client, "the server's CPUs leaked into the parent"
    assert os.sched_getaffinity(0) == before
    assert os.environ.get("GOMAXPROCS") == gomaxprocs


def test_placement_counts_sleeps_in_both_placements(capsys: pytest.CaptureFixture[str]) -> None:
    why = placement.cpuidle_missing()
    if why is not None:
        pytest.skip(why)
    assert placement.main(["--samples", "1", "--size", "1", "--echo-count", "50"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for where in ("one-cpu", "two-cpus"):
        mine = [line for line in lines if line.startswith(where)]
        assert any("echo raw asyncio TCP" in line for line in mine), lines
        assert all("sleeps per" in line and "cpu" in line for line in mine), mine
