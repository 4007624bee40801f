"""Which conformance cases run which line of the reference peer: one instrumented run.

The cases run in pytest's process but the code under test runs in the reference peer's
processes, and pooled servers serve many cases.  So the instrumented run (this module
is also the pytest plugin of that run, ``-p smuxref_conformance.mutation.casemap``) gives every
case fresh peers: before a case it puts the case's node id and coverage.py's
``COVERAGE_PROCESS_START`` in the environment that peers inherit, and after it stops
the pooled servers.  Each peer then measures itself (coverage.py's own subprocess
start-up hook, its ``.pth`` file) with the node id as its static context, and the
combined data answers "which cases ran line N of engine.py" for every line.

A mutated line is mapped to the statement that holds it (:func:`statement_lines`), so a
mutant inside a multi-line expression is matched with the lines coverage.py reports for
that statement.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pytest

from smuxref_conformance.peers.pool import PeerPool
from smuxref_conformance.peers.specs import REF_SOURCE_ENV

__all__ = [
    "RESULTS_NAME",
    "TARGETS",
    "CaseMap",
    "build",
    "fingerprint",
    "nodes_with",
    "non_strict_cases",
    "prepare_sources",
    "statement_lines",
]

#: The modules whose mutants measure the gate: codec, decoder, state table, engine, and
#: the two pieces split out of the engine since the issue named its four files (the
#: per-stream accounting and window, the keepalive clock), so the scope stays the same code.
TARGETS: Final = (
    "_frame.py",
    "_decoder.py",
    "_state.py",
    "engine.py",
    "_streaminfo.py",
    "_keepalive.py",
)
REPO: Final = Path(__file__).resolve().parents[2]
#: The machine-readable results the suite writes into ``--smux-report-dir``.
RESULTS_NAME: Final = "smux-results.json"
_CASE_ENV: Final = "SMUXREF_MUTATION_CASE"
_RC_ENV: Final = "SMUXREF_MUTATION_COVERAGE_RC"


# -- the plugin of the instrumented run ---------------------------------------------------
@pytest.fixture(autouse=True)
def _smux_mutation_case(request: pytest.FixtureRequest, smux_pool: PeerPool) -> Iterator[None]:
    """Peers started during this case measure under its node id, and die with it."""
    rc = os.environ.get(_RC_ENV)
    if rc:
        os.environ[_CASE_ENV] = request.node.nodeid
        os.environ["COVERAGE_PROCESS_START"] = rc
    yield
    if rc:
        smux_pool.close()  # rule-6 findings at stop are the case's, already judged


# -- building the map ---------------------------------------------------------------------
def prepare_sources(work: Path) -> None:
    """``work/peer/smuxref``: the copy the peer imports and Cosmic Ray mutates in place;
    ``work/pristine``: the four originals, to tell which lines a mutant changed."""
    source = REPO / "smuxref"
    peer = work / "peer" / "smuxref"
    shutil.rmtree(work / "peer", ignore_errors=True)
    shutil.rmtree(work / "pristine", ignore_errors=True)
    shutil.copytree(source, peer, ignore=shutil.ignore_patterns("__pycache__"))
    (work / "pristine").mkdir(parents=True)
    for name in TARGETS:
        shutil.copy2(source / name, work / "pristine" / name)


def non_strict_cases(results: Path) -> set[str]:
    """The node ids with a ``non_strict`` verdict in a run's ``smux-results.json``: the
    cases of should level (SPEC.md SHOULD, or a Go-compatible choice) the peer deviated
    from.  The default gate passes them; ``--smux-strict`` fails them."""
    return nodes_with(results, "non_strict")


def nodes_with(results: Path, verdict: str) -> set[str]:
    """The node ids with this verdict in a run's ``smux-results.json``."""
    data = json.loads(results.read_text())
    return {r["nodeid"] for r in data.get("results", []) if r.get("actual") == verdict}


def fingerprint(pytest_args: list[str]) -> str:
    """What the map depends on: smuxref, the suite (not this package), its options."""
    digest = hashlib.sha256(json.dumps(pytest_args).encode())
    for root in (REPO / "smuxref", REPO / "conformance"):
        for path in sorted(root.rglob("*.py")):
            if "mutation" not in path.relative_to(REPO).parts:
                digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@dataclass
class CaseMap:
    """Per target file and line, the node ids of the cases whose peer ran it."""

    lines: dict[str, dict[int, list[str]]]
    durations: dict[str, float]  #: seconds per case in the instrumented run
    failed: list[str]  #: cases that did not pass on the unmutated peer (never selected)
    fingerprint: str = ""
    scale: float = 1.0  #: the --smux-timeout-scale the durations were measured at
    #: Cases already ``non_strict`` on the unmutated peer: a mutant's run that shows them
    #: has not detected anything at should level by that.
    non_strict: list[str] = field(default_factory=list)
    #: Cases already ``inconclusive`` on the unmutated peer: they do not stop a mutant's run.
    inconclusive: list[str] = field(default_factory=list)

    def save(self, path: Path) -> None:
        data = {
            "lines": {f: {str(n): c for n, c in ls.items()} for f, ls in self.lines.items()},
            "durations": self.durations,
            "failed": self.failed,
            "fingerprint": self.fingerprint,
            "scale": self.scale,
            "non_strict": self.non_strict,
            "inconclusive": self.inconclusive,
        }
        path.write_text(json.dumps(data, indent=0, sort_keys=True))

    @classmethod
    def load(cls, path: Path) -> CaseMap:
        data = json.loads(path.read_text())
        lines = {f: {int(n): c for n, c in ls.items()} for f, ls in data["lines"].items()}
        return cls(
            lines,
            data["durations"],
            data["failed"],
            data.get("fingerprint", ""),
            data.get("scale", 1.0),
            data.get("non_strict", []),
            data.get("inconclusive", []),
        )

    def cases_for(self, name: str, source: str, changed: list[int]) -> list[str]:
        """Cases covering the statements holding ``changed`` lines, fastest first."""
        covered = self.lines.get(name, {})
        found: set[str] = set()
        for line in changed:
            for n in statement_lines(source, line):
                found.update(covered.get(n, ()))
        found.difference_update(self.failed)
        return sorted(found, key=lambda c: (self.durations.get(c, 0.0), c))


def statement_lines(source: str, line: int) -> range:
    """The lines of the innermost statement holding ``line``; for a compound statement
    only its header (``if cond:``), not its body."""
    best: range | None = None
    for span in _statement_spans(source):
        if line in span and (best is None or len(span) < len(best)):
            best = span
    return best or range(line, line + 1)


@functools.cache
def _statement_spans(source: str) -> tuple[range, ...]:
    spans = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.stmt):
            end = node.end_lineno or node.lineno
            body = getattr(node, "body", None)
            if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
                end = body[0].lineno - 1
            spans.append(range(node.lineno, end + 1))
    return tuple(spans)


def _coverage_rc(work: Path) -> Path:
    rc = work / "coverage" / "rc"
    rc.write_text(
        "[run]\n"
        f"data_file = {work / 'coverage' / 'data'}\n"
        "parallel = true\n"
        f"context = ${{{_CASE_ENV}}}\n"
        f"include = {work / 'peer' / 'smuxref'}/*\n"
        "disable_warnings = no-data-collected, module-not-measured\n"
    )
    return rc


def _junit(path: Path) -> tuple[dict[str, float], list[str]]:
    durations: dict[str, float] = {}
    failed: list[str] = []
    for case in ET.parse(path).iter("testcase"):
        module = case.get("classname", "").replace(".", "/")
        nodeid = f"{module}.py::{case.get('name')}"
        durations[nodeid] = float(case.get("time", "0"))
        if any(case.find(tag) is not None for tag in ("failure", "error")):
            failed.append(nodeid)
    return durations, failed


def build(work: Path, *, scale: float, workers: int, pytest_args: list[str]) -> CaseMap:
    """Run the suite (``pytest_args``: its paths and options) once against the
    unmutated peer copy, instrumented."""
    import coverage  # noqa: PLC0415 - only the mutation extra has it

    shutil.rmtree(work / "coverage", ignore_errors=True)
    (work / "coverage").mkdir(parents=True)
    rc = _coverage_rc(work)
    junit = work / "coverage" / "junit.xml"
    command = [
        sys.executable,
        "-m",
        "pytest",
        *pytest_args,
        "--peer=ref",
        "-p",
        "smuxref_conformance.mutation.casemap",
        "-p",
        "no:cacheprovider",
        "-q",
        f"--smux-timeout-scale={scale}",
        f"--smux-report-dir={work / 'reports'}",
        f"--junitxml={junit}",
        *(["-n", str(workers)] if workers > 1 else []),
    ]
    env = {
        **os.environ,
        REF_SOURCE_ENV: str(work / "peer"),
        _RC_ENV: str(rc),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    results = work / "reports" / RESULTS_NAME
    results.unlink(missing_ok=True)
    # Its own session, ended with its xdist workers (and so their peers) if the run is.
    pytest_run = subprocess.Popen(command, cwd=REPO, env=env, start_new_session=True)
    try:
        pytest_run.wait()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pytest_run.pid, signal.SIGKILL)
        pytest_run.wait()
        raise
    durations, failed = _junit(junit)
    baseline = sorted(non_strict_cases(results)) if results.exists() else []
    unsettled = sorted(nodes_with(results, "inconclusive")) if results.exists() else []
    cov = coverage.Coverage(config_file=str(rc))
    cov.combine()
    data = cov.get_data()
    peer = (work / "peer" / "smuxref").resolve()
    lines: dict[str, dict[int, list[str]]] = {}
    for measured in data.measured_files():
        path = Path(measured).resolve()
        if path.parent == peer and path.name in TARGETS:
            by_line = data.contexts_by_lineno(measured)
            lines[path.name] = {n: sorted(c for c in cs if c) for n, cs in by_line.items()}
    casemap = CaseMap(
        lines, durations, failed, fingerprint(pytest_args), scale, baseline, unsettled
    )
    casemap.save(work / "casemap.json")
    return casemap
