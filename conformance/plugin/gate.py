"""The gate: verdicts become pytest outcomes, results become reports, the run an exit code.

For every ``@case`` item, each phase report gets a verdict
(:mod:`smuxref_conformance.judge.classify`) and the expectation in force
(:mod:`smuxref_conformance.judge.expectations`), and its pytest outcome is set so that
pytest's own exit status *is* the gate:

==========================================  ==========================================
verdict / expectation                       pytest outcome
==========================================  ==========================================
pass, info (expected pass)                  passed (``.``, or ``I`` for info)
non_strict, not under --smux-strict         passed, shown as ``N`` / "non_strict"
a deviation the expectations list           xfailed (``x``), does not fail the run
fail, or non_strict under --smux-strict     failed
a pass where a deviation was expected       failed, "[XPASS(strict)]" (unexpected pass)
unsupported (exit 127, skip)                skipped
not_run (no second peer, ``not_run()``)     skipped, shown as ``-`` / "not run"
inconclusive (a prerequisite failed)        skipped, shown as ``C`` / "inconclusive"
error (harness), in any phase               error (JUnit ``<error>``)
==========================================  ==========================================

The verdict and its expectation travel on the report (``report.smux``, plain JSON), so
under pytest-xdist the controller receives them with the worker's reports;
:mod:`smuxref_conformance.plugin.collector` turns them into the results file, the reports and
the exit status (non-zero iff a result is unexpected, an error happened, or no case was
judged at all).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Generator
from typing import Any, Final

import pytest

from smuxref import HEADER_SIZE
from smuxref.aio import Session

from ..errors import (
    CheckFailed,
    ExpectationError,
    HarnessError,
    PreconditionFailed,
)
from ..judge.blame import (
    OWN_CHECK,
    blame_early_fin,
    blame_frames,
    blame_missing_fin,
    blame_over_ack,
    blame_session,
    blame_stall,
)
from ..judge.case import CaseMeta, Verdict, case_meta
from ..judge.checks import CHECK, SmuxCheck
from ..judge.classify import judge_phase
from ..judge.expectations import Expectations, is_expected_deviation, is_unexpected, peer_names
from ..peers.info import PEER_INFO
from ..peers.specs import PeerSpec
from ..wire import RawConnection
from .collector import Collector, report_dir
from .smux_session import let_session_read

__all__ = ["Gate", "install"]

#: Where a failing case's connection is written as a pcap, under the report directory.
PCAP_DIR: Final = "pcaps"


def install(config: pytest.Config, peers: list[PeerSpec]) -> None:
    """Register the gate (called from the plugin's ``pytest_configure``)."""
    try:
        expectations = Expectations.from_paths(config.getoption("smux_expectations"))
    except ExpectationError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.pluginmanager.register(Gate(config, expectations), "smux-gate")
    config.pluginmanager.register(Collector(config, peers, expectations), "smux-results")


def _empty_parameter_set(item: pytest.Item) -> bool:
    """Whether ``item`` is pytest's placeholder for a parametrization that selected
    nothing (a version 2 case under ``--smux-version=1``): its parameters are sentinels,
    not a peer, version and role, so it is no result of the suite."""
    mark = item.get_closest_marker("skip")
    reason = str(mark.kwargs.get("reason", "")) if mark is not None else ""
    return reason.startswith("got empty parameter set")


def _params(item: pytest.Item) -> dict[str, Any]:
    callspec = getattr(item, "callspec", None)
    return dict(callspec.params) if callspec is not None else {}


def item_path(report: pytest.TestReport) -> str:
    """The file of a report's test, for a skip's ``(path, lineno, reason)`` form."""
    return report.location[0]


def _malformed_input(
    item: pytest.Item, meta: CaseMeta, *, format_only: bool = False
) -> tuple[str, str] | None:
    """The case to blame when this case's connection shows a fault that every case
    relies on (see smuxref_conformance.judge.blame): a malformed frame, a stream stalled mid-frame,
    the suite's session ended on one, or (unless ``format_only``) no FIN at all or a FIN
    that cut a reply short."""
    funcargs = getattr(item, "funcargs", {})
    conn = funcargs.get("raw_conn")
    session = funcargs.get("smux_session")
    found = None
    if isinstance(conn, RawConnection):
        found = blame_frames(conn.frames, conn.version) or blame_stall(conn.stalled_mid_frame())
        if found is None and not format_only:
            with contextlib.suppress(OSError):
                conn.take_in()  # a FIN the case did not wait for may be in the socket
            sent = conn.sent_frames(while_open=True)
            found = blame_missing_fin(conn.frames, sent, conn.fin_owed) or blame_early_fin(
                conn.frames, sent
            )
    elif isinstance(session, Session):
        engine = session.engine
        found = blame_session(session.error, engine.version) or blame_over_ack(
            engine.streams.values(), engine.version
        )
        held = engine.partial_input
        if found is None and held >= HEADER_SIZE:
            # The case may have ended with the rest of the frame on its way: let the
            # session read for a moment; a frame that stays incomplete while the
            # session reads is the stall (and garbage may turn into a protocol error).
            let_session_read(session)
            found = blame_session(session.error, engine.version)
        if (
            found is None
            and held >= HEADER_SIZE
            and engine.partial_input == held
            and not engine.reading_paused
        ):
            what = (
                f"the suite's own smuxref session holds {session.engine.partial_input} bytes "
                "of a frame the peer never completed"
            )
            found = blame_stall(what)
    # A case whose own check is what the rule detects carries the failure itself.
    if found is None or found[0] == meta.id or meta.id in OWN_CHECK.get(found[0], ()):
        return None
    return found


class Gate:
    """The plugin object; one per process (controller and each xdist worker)."""

    def __init__(self, config: pytest.Config, expectations: Expectations) -> None:
        self.expectations = expectations
        self.report_dir = report_dir(config)
        self.strict = bool(config.getoption("smux_strict"))
        self.duplicates: dict[str, str] = {}

    # -- collection ------------------------------------------------------------------
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """Case ids must be unique: one id, one function (variants share it)."""
        owner: dict[str, str] = {}
        for item in items:
            meta = case_meta(item)
            if meta is None:
                continue
            function = item.nodeid.split("[", 1)[0]
            first = owner.setdefault(meta.id, function)
            if first != function:
                self.duplicates[item.nodeid] = f"case id {meta.id} is also used by {first}"

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        if item.nodeid in self.duplicates:
            raise HarnessError(self.duplicates[item.nodeid])

    # -- verdicts ----------------------------------------------------------------------
    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        meta = case_meta(item)
        if meta is None or _empty_parameter_set(item):
            return (yield)
        exc = call.excinfo.value if call.excinfo is not None else None
        if (
            call.when == "call"
            and isinstance(exc, AssertionError)
            and not isinstance(exc, CheckFailed)
        ):
            # The case's own assert: give it the Requirement/Expected/Actual form.
            exc.args = (meta.message("the case's assertion to hold", str(exc)),)
        check = item.stash.get(CHECK, None)
        if call.when == "call" and check is not None:
            check.after_call(exc)
        report: pytest.TestReport = yield
        verdict, message = judge_phase(meta, check, call.when, exc, report)
        record = self._record(item, meta, check, call.when, report)
        blame = exc.prerequisite if isinstance(exc, PreconditionFailed) else None
        if (
            verdict in (Verdict.FAIL, Verdict.NON_STRICT, Verdict.INCONCLUSIVE)
            and call.when == "call"
            and not (check and check.crashed)
        ):
            # A malformed frame outranks even an explicit precondition's blame: it is
            # the more basic fault.  A should-level case is blamed like a must-level one:
            # its setup relies on the same frames, FINs and replies.
            found = _malformed_input(item, meta, format_only=verdict is Verdict.INCONCLUSIVE)
            if found is not None:
                blame, what = found
                verdict = Verdict.INCONCLUSIVE
                message = (
                    f"Inconclusive: {meta.id} relies on what {blame} tests, and {what}."
                    f"\n\nThe case then reported:\n{message}"
                )
        if blame is not None and verdict is Verdict.INCONCLUSIVE:
            record["blame"] = blame
        if verdict is not None:
            resolved = self.expectations.resolve(
                meta.id, record["names"], record["version"], record["role"], record["variant"]
            )
            unexpected = is_unexpected(verdict, resolved.expect, strict=self.strict)
            record.update(
                actual=verdict.value,
                expected=resolved.expect,
                reason=resolved.reason,
                expectation=resolved.source,
                unexpected=unexpected,
                message=message,
            )
            if call.when == "call" or verdict is Verdict.INCONCLUSIVE:
                self._set_outcome(report, meta, verdict, resolved.expect, resolved.reason, record)
            if verdict in (Verdict.FAIL, Verdict.NON_STRICT, Verdict.ERROR, Verdict.INCONCLUSIVE):
                conn = item.funcargs.get("raw_conn") if hasattr(item, "funcargs") else None
                if isinstance(conn, RawConnection) and conn.transcript:
                    record["transcript"] = conn.format_transcript()
                    if self.report_dir is not None and verdict is not Verdict.INCONCLUSIVE:
                        record["pcap"] = self._write_pcap(item.nodeid, conn)
        del record["names"]
        report.smux = record  # type: ignore[attr-defined]
        return report

    def _write_pcap(self, nodeid: str, conn: RawConnection) -> str:
        """The case's connection as ``pcaps/<test id>.pcap`` in the report directory;
        the path relative to it, for the results and the reports' links."""
        assert self.report_dir is not None
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", nodeid.split("::", 1)[-1]).strip("_")[:150]
        path = self.report_dir / PCAP_DIR / f"{name}.pcap"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(conn.pcap())
        return f"{PCAP_DIR}/{path.name}"

    def _set_outcome(  # noqa: PLR0917 - one phase's facts
        self,
        report: pytest.TestReport,
        meta: CaseMeta,
        verdict: Verdict,
        expect: str,
        reason: str,
        record: dict[str, Any],
    ) -> None:
        unexpected = record["unexpected"]
        if verdict in (Verdict.PASS, Verdict.INFO):
            if unexpected:
                report.outcome = "failed"
                report.longrepr = (
                    f"[XPASS(strict)] {meta.id}: expected {expect} ({record['expectation']}: "
                    f"{reason}), but the case passed: the expectation is stale"
                )
            else:  # an info-level case whose own assertion failed only records it
                report.outcome = "passed"
                report.longrepr = None
        elif verdict in (Verdict.FAIL, Verdict.NON_STRICT):
            if unexpected:
                report.outcome = "failed"
                if report.longrepr is None:
                    report.longrepr = record["message"] or meta.headline()
            elif is_expected_deviation(verdict, expect):
                report.outcome = "skipped"
                report.wasxfail = f"expected {verdict.value} ({record['expectation']}): {reason}"
            else:
                report.outcome = "passed"
                report.longrepr = None
        elif verdict is Verdict.INCONCLUSIVE:
            # Not judged: the prerequisite's own case carries the failure.
            report.outcome = "skipped"
            lineno = report.location[1] or 0
            report.longrepr = (
                item_path(report),
                lineno,
                f"inconclusive: relies on {record.get('blame', '?')}",
            )
        elif verdict is Verdict.ERROR:
            report.outcome = "failed"

    def _record(
        self,
        item: pytest.Item,
        meta: CaseMeta,
        check: SmuxCheck | None,
        when: str,
        report: pytest.TestReport,
    ) -> dict[str, Any]:
        params = _params(item)
        spec = params.get("peer")
        role = params.get("role")
        if role is None and "peer_server" in getattr(item, "fixturenames", ()):
            role = "server"
        variant = ",".join(
            f"{k}={str(v)[:40]}"
            for k, v in params.items()
            if k not in ("peer", "smux_version", "role")
        )
        record: dict[str, Any] = {
            "case": meta.id,
            "title": meta.title,
            "spec": meta.spec,
            "document": meta.document,
            "level": meta.level.value,
            "requirement": meta.requirement,
            "peer": spec.id if isinstance(spec, PeerSpec) else "-",
            "version": params.get("smux_version"),
            "role": role,
            "variant": variant,
            "nodeid": item.nodeid,
            "phase": when,
            "duration": round(report.duration, 4),
            "names": peer_names(spec) if isinstance(spec, PeerSpec) else ("-",),
        }
        if check is not None and when == "call":
            record["observations"] = list(check.observations)
            if check.reactions:
                record["reaction"] = check.reactions[-1].reaction.value
        info = item.stash.get(PEER_INFO, None)
        if info is not None and when == "setup":
            record["peer_info"] = {"peer": info[0], "version": info[1], "info": info[2]}
        return record

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(self, report: pytest.TestReport) -> tuple[str, str, str] | None:
        record = getattr(report, "smux", None)
        if not isinstance(record, dict) or report.when != "call":
            return None
        actual = record.get("actual")
        if actual == "error" and report.failed:
            return "error", "E", "ERROR"
        if report.passed and actual in ("non_strict", "info"):
            return actual, actual[0].upper(), actual.upper()
        if actual == "inconclusive" and report.skipped:
            return "inconclusive", "C", "INCONCLUSIVE"
        if actual == "not_run" and report.skipped:
            return "not run", "-", "NOT RUN"
        return None
