"""``smux-conformance``: exit codes, expectations from the caller's repository, shards, merge.

The command runs in a child process from an empty directory, as another project's CI
would run it; each documented exit code is produced by a real run of the kind it names.
The sharding test runs one selection unsharded and in four shards, merges the shards
and requires the same results, the same gate and the same report matrix.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, cast

import pytest
from plugin_harness import PEERS, SCALE, inner_env, scaled

from smuxref_conformance.cli import (
    EXIT_HARNESS,
    EXIT_PASS,
    EXIT_UNEXPECTED,
    EXIT_USAGE,
    verdict_code,
)
from smuxref_conformance.judge.blame import BLAMED_BY_EVERY_CASE
from smuxref_conformance.plugin.shard import parse_shard, split
from smuxref_conformance.report import ResultSet, load_results
from smuxref_conformance.report.merge import junit_xml, missing_shards

#: A small selection with raw-frame and asyncio cases, both versions and roles.
SELECTION = ("-k", "test_version or test_one_stream or test_half_close")


def gate(
    cwd: Path, *args: str, timeout: float = 180, **env: str
) -> subprocess.CompletedProcess[str]:
    """``smux-conformance ARGS`` in ``cwd`` (``merge`` as the first argument: the merge)."""
    cwd.mkdir(parents=True, exist_ok=True)
    scale = [] if args[:1] == ("merge",) else [f"--smux-timeout-scale={SCALE}"]
    return subprocess.run(
        [sys.executable, "-m", "smuxref_conformance.cli", *scale, *args],
        cwd=cwd,
        env=inner_env(**env),
        capture_output=True,
        text=True,
        timeout=scaled(timeout),
        check=False,
    )


def results_of(directory: Path) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    rows = load_results([directory / "smux-results.json"]).rows
    return {
        (r["case"], r["variant"], r["peer"], r["version"], r["role"]): (
            r["actual"],
            r["expected"],
            r["unexpected"],
        )
        for r in rows
    }


# -- exit codes ---------------------------------------------------------------------------
def test_pass_prints_where_the_reports_are(tmp_path: Path) -> None:
    proc = gate(tmp_path, "--peer=ref", "--smux-version=1", "-k", "test_version")
    assert proc.returncode == EXIT_PASS, proc.stdout + proc.stderr
    reports = tmp_path / "smux-reports"
    assert f"reports in {reports}" in proc.stdout
    for name in ("report.html", "summary.md", "smux-results.json", "junit.xml"):
        assert (reports / name).is_file(), name


def test_expectations_from_the_callers_repository_make_results_unexpected(tmp_path: Path) -> None:
    """An expectations file of the caller's own says a passing case fails: that pass
    is unexpected (exit 1), so the command really reads the caller's file."""
    own = tmp_path / "project" / "smux-expectations.json"
    own.parent.mkdir()
    entry = {"cases": "smux/4.1/wrong-version-*", "expect": "fail", "reason": "SPEC.md 4.1: test"}
    own.write_text(json.dumps({"implementation": "mine", "expectations": [entry]}))
    proc = gate(
        tmp_path / "project",
        "--peer=ref",
        "--smux-version=1",
        "--smux-expectations=smux-expectations.json",
        "-k",
        "test_version",
    )
    assert proc.returncode == EXIT_UNEXPECTED, proc.stdout + proc.stderr
    data = json.loads((tmp_path / "project" / "smux-reports" / "smux-results.json").read_text())
    assert data["options"]["expectations"] == ["smux-expectations.json"]
    flagged = [r for r in data["results"] if r["unexpected"]]
    assert flagged
    assert all(r["case"].startswith("smux/4.1/wrong-version-") for r in flagged)
    assert "rerun the unexpected cases alone: --smux-case=smux/4.1/wrong-version-" in proc.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("--peer=nonsense",),
        ("--smux-version=3",),
        ("--smux-shard=5/4",),
        ("--smux-expectations=missing.json",),
        ("--no-such-option",),
        ("-k", "no_case_has_this_name"),
        ("--smux-case=smux/10.1/interop-one-strem",),
    ],
)
def test_usage_errors(tmp_path: Path, args: tuple[str, ...]) -> None:
    proc = gate(tmp_path, *args, timeout=60)
    assert proc.returncode == EXIT_USAGE, proc.stdout + proc.stderr


def test_cases_are_selected_by_the_ids_reports_print(tmp_path: Path) -> None:
    """``--smux-case`` takes an id as printed and a section; the run holds those cases,
    the ones the gate's own rules may blame for any case, what those rely on, and no
    other."""
    proc = gate(
        tmp_path,
        "--peer=ref",
        "--smux-version=1",
        "--smux-case=smux/10.2/interop-half-close",
        "--smux-case=smux/6.3",
    )
    assert proc.returncode == EXIT_PASS, proc.stdout + proc.stderr
    data = json.loads((tmp_path / "smux-reports" / "smux-results.json").read_text())
    cases = {r["case"] for r in data["results"]}
    section = {c for c in cases if c.startswith("smux/6.3/")}
    assert section
    # smux/4.1/version-on-nop (gate-wide) relies on smux/7.1/nop-interval, and
    # smux/4.1/version-on-syn-psh-fin (gate-wide) on smux/10.1/peer-opens-streams.
    assert cases - section - BLAMED_BY_EVERY_CASE == {
        "smux/10.2/interop-half-close",
        "smux/7.1/nop-interval",
        "smux/10.1/peer-opens-streams",
    }
    v2_only = {"smux/9.2/upd-after-first-read", "smux/4.1/version-on-upd"}
    assert cases >= BLAMED_BY_EVERY_CASE - v2_only


def test_a_peer_that_breaks_the_contract_is_a_harness_error(tmp_path: Path) -> None:
    peer = f"--peer=exec:{sys.executable} {PEERS / 'exit0.py'}"
    proc = gate(tmp_path, peer, "--smux-version=1", "-k", "test_version", timeout=120)
    assert proc.returncode == EXIT_HARNESS, proc.stdout + proc.stderr
    assert "CONTRACT.md rule 5" in proc.stdout


def test_no_engine_for_a_containerized_peer_is_a_harness_error(tmp_path: Path) -> None:
    dead = tmp_path / "no-such-docker.sock"
    proc = gate(tmp_path, "--peer=go", timeout=60, DOCKER_HOST=f"unix://{dead}")
    assert proc.returncode == EXIT_HARNESS, proc.stdout + proc.stderr
    assert f"no Docker engine reachable at unix://{dead}" in proc.stderr


def test_verdict_code_table() -> None:
    def results(*rows: tuple[str, bool]) -> dict[str, Any]:
        return {"results": [{"actual": a, "unexpected": u} for a, u in rows]}

    assert verdict_code(0, results(("pass", False), ("unsupported", False))) == EXIT_PASS
    assert verdict_code(1, results(("pass", False), ("fail", True))) == EXIT_UNEXPECTED
    assert verdict_code(1, results(("a_new_verdict", True))) == EXIT_UNEXPECTED  # any name
    assert verdict_code(1, results(("fail", True), ("error", True))) == EXIT_HARNESS
    assert verdict_code(5, results(("unsupported", False))) == EXIT_HARNESS  # none judged
    assert verdict_code(0, results(("inconclusive", False))) == EXIT_HARNESS
    assert verdict_code(2, results(("pass", False))) == EXIT_HARNESS  # interrupted
    assert verdict_code(1, results(("pass", False))) == EXIT_HARNESS  # failed outside cases
    assert verdict_code(4, None) == EXIT_USAGE
    assert verdict_code(5, None) == EXIT_USAGE  # the selection matched nothing
    assert verdict_code(3, None) == EXIT_HARNESS


# -- shards ---------------------------------------------------------------------------------
class _Item:
    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid


def test_shards_partition_the_items_the_same_way_wherever_the_cases_live() -> None:
    ids = [f"test_{c}.py::test_{n}[ref-v{v}]" for c in "abc" for n in range(7) for v in (1, 2)]
    checkout = [cast(pytest.Item, _Item(f"conformance/cases/{i}")) for i in ids]
    wheel = [cast(pytest.Item, _Item(f"smuxref_conformance/cases/{i}")) for i in reversed(ids)]
    seen: list[str] = []
    for index in range(1, 5):
        kept, _ = split(checkout, index, 4)
        mine = sorted(checkout[i].nodeid.rsplit("/", 1)[1] for i in kept)
        elsewhere = sorted(wheel[i].nodeid.rsplit("/", 1)[1] for i in split(wheel, index, 4)[0])
        assert mine == elsewhere
        assert len(mine) in (len(ids) // 4, len(ids) // 4 + 1)
        seen += mine
    assert sorted(seen) == sorted(ids)
    assert parse_shard("2/4") == (2, 4)
    for bad in ("0/4", "5/4", "2", "a/b", "2/0"):
        with pytest.raises(ValueError, match="--smux-shard"):
            parse_shard(bad)


def test_four_shards_merge_into_the_unsharded_run(tmp_path: Path) -> None:
    args = ("--peer=ref", *SELECTION)
    whole = gate(tmp_path / "whole", *args)
    assert whole.returncode == EXIT_PASS, whole.stdout + whole.stderr
    shard_files = []
    for index in range(1, 5):
        proc = gate(tmp_path / f"shard{index}", *args, f"--smux-shard={index}/4")
        assert proc.returncode == EXIT_PASS, proc.stdout + proc.stderr
        shard_files.append(tmp_path / f"shard{index}" / "smux-reports" / "smux-results.json")
    sizes = [len(load_results([f]).rows) for f in shard_files]
    assert min(sizes) > 0
    assert max(sizes) - min(sizes) <= 1
    merged = gate(tmp_path, "merge", *map(str, shard_files), "-o", str(tmp_path / "merged"))
    assert merged.returncode == EXIT_PASS, merged.stdout + merged.stderr
    expected = results_of(tmp_path / "whole" / "smux-reports")
    assert results_of(tmp_path / "merged") == expected
    assert sum(sizes) == len(expected)
    whole_results = load_results([tmp_path / "whole" / "smux-reports" / "smux-results.json"])
    merged_results = load_results([tmp_path / "merged" / "smux-results.json"])
    assert merged_results.summary() == whole_results.summary()
    assert _matrix(tmp_path / "merged") == _matrix(tmp_path / "whole" / "smux-reports")
    suite = ET.parse(tmp_path / "merged" / "junit.xml").getroot()[0]
    assert suite.get("tests") == str(len(expected))
    assert suite.get("failures") == suite.get("errors") == "0"
    # Without shard 3 the merge must not pass, whatever the other shards say.
    partial = [f.parent for i, f in enumerate(shard_files) if i != 2]  # directories too
    proc = gate(tmp_path, "merge", *map(str, partial), "-o", str(tmp_path / "partial"))
    assert proc.returncode == EXIT_HARNESS, proc.stdout + proc.stderr
    assert "shard 3/4 of peers ref; versions 1,2 is missing" in proc.stderr


def _matrix(directory: Path) -> list[str]:
    """The summary's case matrix (everything from the totals on; the run lines differ)."""
    text = (directory / "summary.md").read_text()
    return text[text.index("## Totals") :].splitlines()


def test_merge_junit_and_missing_shards_units() -> None:
    def row(case: str, actual: str, unexpected: bool, expected: str = "pass") -> dict[str, Any]:
        return {
            "case": case,
            "peer": "p",
            "version": 1,
            "role": "server",
            "variant": "",
            "actual": actual,
            "expected": expected,
            "unexpected": unexpected,
            "message": "Actual: x",
        }

    rows = [
        row("smux/1/a", "pass", False),
        row("smux/1/b", "fail", True),
        row("smux/1/c", "error", True),
        row("smux/1/d", "fail", False, "fail"),
        row("smux/1/e", "unsupported", False),
    ]
    root = junit_xml(ResultSet(rows, [{}], {})).getroot()
    assert root is not None
    suite = root[0]
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("5", "1", "1")
    assert suite.get("skipped") == "2"
    tags = {c.get("name"): [e.tag for e in c] for c in suite}
    assert tags == {
        "smux/1/a": [],
        "smux/1/b": ["failure"],
        "smux/1/c": ["error"],
        "smux/1/d": ["skipped"],
        "smux/1/e": ["skipped"],
    }
    runs = [{"options": {"peers": ["go"], "versions": [1], "shard": f"{i}/3"}} for i in (1, 3)]
    assert missing_shards(ResultSet([], runs, {})) == ["2/3 of peers go; versions 1"]
    assert missing_shards(ResultSet([], [{"options": {"peers": ["go"]}}], {})) == []


#: Runs the command as a bare ``pip install smuxref`` would, with pytest not importable.
_WITHOUT_PYTEST = (
    "import sys; sys.modules['pytest'] = None\n"
    "from smuxref_conformance.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


@pytest.mark.parametrize("args", [("--peer=ref",), ("merge", "x.json", "-o", "out")])
def test_without_the_gate_extra_a_clear_error(tmp_path: Path, args: tuple[str, ...]) -> None:
    """Without the ``gate`` extra the command names what is missing and how to install
    it, with the harness code: importing the command must not import pytest first."""
    proc = subprocess.run(
        [sys.executable, "-c", _WITHOUT_PYTEST, *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == EXIT_HARNESS, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "pytest not installed" in proc.stderr
    assert "python -m pip install 'smuxref[gate]'" in proc.stderr
