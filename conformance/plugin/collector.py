"""Results of a run: collected from the reports, written as files, turned into the exit code.

Every ``@case`` phase report carries its verdict record (``report.smux``, set by
:mod:`smuxref_conformance.plugin.gate`).  This plugin object reads them in
``pytest_runtest_logreport``
- in the controller under pytest-xdist, which receives the workers' reports with that
attribute, or in the only process otherwise; workers write nothing - merges the phases
of each item (a teardown error turns a pass into an error), and at the end of the
session writes, into the report directory:

``smux-results.json``
    every result with run metadata (:mod:`smuxref_conformance.report.results`);
``report.html``, ``summary.md``
    rendered from it (:mod:`smuxref_conformance.report`);
``junit.xml``
    pytest's own ``--junitxml`` (pointed here unless the command line chose a path),
    harness errors fixed up to ``<error>``;
``smux-cases.json``
    under ``--collect-only`` (with an explicit ``--smux-report-dir``): the catalog of
    cases, for the expectations lint.

The report directory is ``--smux-report-dir``, or ``reports/`` when the run targets the
shipped cases (``pytest conformance``).  The exit status is set here as a last guard:
non-zero iff a result is unexpected or no case was judged (everything unsupported).
"""

from __future__ import annotations

import datetime
import importlib.util
import json
from collections import Counter
from pathlib import Path
from typing import Any, Final

import pytest

import smuxref

from ..judge.case import case_meta
from ..judge.expectations import Expectations, peer_names
from ..judge.prerequisites import confirm_blames
from ..peers.specs import PeerSpec
from ..report import ResultSet, write_reports
from ..report.junit import mark_errors
from ..report.results import rerun_hint

__all__ = ["CATALOG_NAME", "RESULTS_NAME", "Collector", "report_dir"]

RESULTS_NAME: Final = "smux-results.json"
CATALOG_NAME: Final = "smux-cases.json"
_CONFORMANCE_DIR: Final = Path(__file__).resolve().parents[1]


def report_dir(config: pytest.Config) -> Path | None:
    """``--smux-report-dir``, else ``reports/`` when the run targets the shipped cases
    (``pytest conformance``, or ``pytest --pyargs`` naming the installed package)."""
    base = config.invocation_params.dir
    value = config.getoption("smux_report_dir")
    if value:
        return base / str(value)
    for arg in config.args:
        path = (base / arg.split("::")[0]).resolve()
        if config.option.pyargs and not path.exists():
            path = _module_path(arg.split("::")[0]) or path
        if path == _CONFORMANCE_DIR or _CONFORMANCE_DIR in path.parents:
            return base / "reports"
    return None


def _module_path(name: str) -> Path | None:
    """Where module or package ``name`` lives (``pytest --pyargs smuxref_conformance``)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    origin = Path(spec.origin).resolve()
    return origin.parent if origin.name == "__init__.py" else origin


#: pytest's status categories that are not outcomes of a test.
_NOT_OUTCOMES: Final = ("", "warnings", "deselected")


def _count_difference(stats: dict[str, list[Any]], results: ResultSet) -> str:
    """How pytest's totals differ from the gate's count of results, if they do: pytest
    counts reports (a call's failure and a teardown error are two), and tests that are
    not conformance cases."""
    counted = Counter(
        report.nodeid
        for category, reports in stats.items()
        if category not in _NOT_OUTCOMES
        for report in reports
        if hasattr(report, "nodeid")
    )
    total = sum(counted.values())
    if total == len(results.rows):
        return "; pytest counts the same"
    ids = {row["nodeid"] for row in results.rows}
    parts = []
    others = sum(n for node, n in counted.items() if node not in ids)
    if others:
        parts.append(f"{others} outcomes of tests that are not cases")
    twice = sum(n - 1 for node, n in counted.items() if node in ids and n > 1)
    if twice:
        parts.append(f"{twice} cases counted twice (an error at teardown after the call)")
    unseen = len(ids - set(counted))
    if unseen:
        parts.append(f"{unseen} results pytest does not count")
    return f"; pytest counts {total} outcomes: " + ", ".join(parts)


class Collector:
    """The results plugin object; one per process, active in the controller only."""

    def __init__(
        self, config: pytest.Config, peers: list[PeerSpec], expectations: Expectations
    ) -> None:
        self.config = config
        self.peers = list(peers)
        self.expectations = expectations
        self.worker = hasattr(config, "workerinput")
        self.collect_only = bool(config.option.collectonly)
        self.report_dir = report_dir(config)
        self.date = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        self.records: dict[str, dict[str, Any]] = {}
        self.peer_info: dict[str, dict[str, Any]] = {}
        self.catalog: dict[str, dict[str, Any]] = {}
        self.results: ResultSet | None = None
        if self.report_dir is not None and not (self.worker or self.collect_only):
            # pytest's own JUnit writer, pointed into the report directory (unless the
            # command line chose a path); harness errors are fixed up afterwards.
            config.option.xmlpath = config.option.xmlpath or str(self.report_dir / "junit.xml")

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            meta = case_meta(item)
            if meta is not None:
                entry = self.catalog.setdefault(meta.id, {**meta.as_dict(), "nodeids": []})
                entry["nodeids"].append(item.nodeid)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        phase = getattr(report, "smux", None)
        if self.worker or not isinstance(phase, dict):
            return
        info = phase.pop("peer_info", None)
        if info is not None:
            peer = self.peer_info.setdefault(str(info["peer"]), {})
            peer.setdefault(str(info["version"]), info["info"])
        record = self.records.get(report.nodeid)
        if record is None:
            record = self.records[report.nodeid] = {**phase, "duration": 0.0}
        record["duration"] = round(record["duration"] + phase["duration"], 4)
        if "actual" not in phase:
            return
        if "actual" in record and phase["phase"] == "teardown":
            previous = record.get("message") or ""
            phase = {**phase, "message": f"{previous}\n\nat teardown: {phase['message']}".strip()}
        keep = record["duration"]
        record.update({k: v for k, v in phase.items() if k != "duration"})
        record["duration"] = keep

    def _result_set(self) -> ResultSet:
        rows = []
        for record in self.records.values():
            if "actual" not in record:
                continue  # interrupted before a verdict
            row = dict(record)
            row.setdefault("message", "")
            row.setdefault("transcript", "")
            row.setdefault("observations", [])
            rows.append(row)
        # An inconclusive result whose named prerequisite passed is a fail (see there).
        confirm_blames(rows, strict=bool(self.config.getoption("smux_strict")))
        peers = {}
        for spec in self.peers:
            peers[spec.id] = {
                "raw": spec.raw,
                "kind": spec.kind,
                "runtime": spec.runtime,
                "names": list(peer_names(spec)),
                "info": self.peer_info.get(spec.id, {}),
                "expectations": [f.describe() for f in self.expectations.files_for(spec)],
            }
        option = self.config.getoption
        run = {
            "suite_version": smuxref.__version__,
            "date": self.date,
            "options": {
                "peers": [s.id for s in self.peers],
                "versions": [int(v) for v in str(option("smux_version")).split(",") if v.strip()],
                "roles": [r.strip() for r in str(option("smux_roles")).split(",") if r.strip()],
                "strict": bool(option("smux_strict")),
                "shard": option("smux_shard"),
                "timeout_scale": float(option("smux_timeout_scale")),
                "expectations": [str(f.path) for f in self.expectations.files],
                "workers": getattr(self.config.option, "numprocesses", None),
                "args": list(self.config.invocation_params.args),
            },
        }
        return ResultSet(rows, [run], peers)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.worker:
            return
        if self.collect_only:
            # Only when asked for explicitly: a plain --collect-only writes nothing.
            if self.config.getoption("smux_report_dir") and self.catalog:
                self._write_catalog()
            return
        if not self.records:
            return
        results = self.results = self._result_set()
        if self.report_dir is not None:
            results.write(self.report_dir / RESULTS_NAME)
            write_reports(results, self.report_dir)
        errors = [r["nodeid"] for r in results.rows if r["actual"] == "error"]
        xmlpath = self.config.option.xmlpath
        if xmlpath and errors:
            prefix = getattr(self.config.option, "junitprefix", None)
            mark_errors(Path(xmlpath), errors, prefix)
        if session.exitstatus == pytest.ExitCode.OK:
            if results.judged() == 0:
                session.exitstatus = pytest.ExitCode.NO_TESTS_COLLECTED
            elif results.unexpected():
                session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _write_catalog(self) -> None:
        assert self.report_dir is not None
        self.report_dir.mkdir(parents=True, exist_ok=True)
        cases = sorted(self.catalog.values(), key=lambda c: c["id"])
        (self.report_dir / CATALOG_NAME).write_text(json.dumps({"cases": cases}, indent=1) + "\n")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        results = self.results
        if self.worker or results is None:
            return
        summary = results.summary()
        counts = ", ".join(f"{n} {v}" for v, n in summary["verdicts"].items() if n)
        gate = "PASS" if results.gate_passed() else "FAIL"
        terminalreporter.write_sep("-", "smux conformance gate")
        terminalreporter.write_line(
            f"gate {gate}: {summary['total']} results ({counts}); "
            f"{summary['unexpected']} unexpected"
            + _count_difference(terminalreporter.stats, results)
        )
        if results.judged() == 0:
            terminalreporter.write_line(
                "no case was judged: nothing ran, or all unsupported or inconclusive"
            )
        for cause in results.root_causes()[:20]:
            terminalreporter.write_line(f"  root cause: {cause.sentence()}")
        for row in results.unexpected()[:20]:
            terminalreporter.write_line(
                f"  unexpected: {row['case']} {row['peer']} v{row['version']} "
                f"{row['role'] or '-'}: expected {row['expected']}, got {row['actual']}"
            )
        if results.unexpected():
            cases = (str(row["case"]) for row in results.unexpected())
            terminalreporter.write_line(f"rerun the unexpected cases alone: {rerun_hint(cases)}")
        if self.report_dir is not None:
            terminalreporter.write_line(
                f"reports: {self.report_dir / 'report.html'}, {self.report_dir / 'summary.md'}, "
                f"{self.report_dir / RESULTS_NAME}"
            )
