"""A phase of a case becomes one verdict: its exception, its checks and its connection.

This is the step between the gate (:mod:`smuxref_conformance.plugin.gate`, which sees
pytest's reports) and the expectations (:mod:`smuxref_conformance.judge.expectations`,
which say whether the verdict was expected).  :func:`classify_exception` sorts what a case
raised by the hierarchy of :mod:`smuxref_conformance.errors`; :func:`judge_phase` combines
it with the deviations ``smux_check`` recorded.  The gate then looks at the case's
connection for a fault that another case tests (:mod:`smuxref_conformance.judge.blame`),
which makes a failure inconclusive instead of a second fail for one defect.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import pytest

from smuxref.errors import ProtocolError, StreamClosedError

from ..errors import CheckFailed, HarnessError, NotRun, PeerUnsupported, PreconditionFailed
from .case import SEVERITY, CaseMeta, Verdict
from .checks import SmuxCheck

__all__ = ["classify_exception", "judge_phase", "report_text", "worst"]

#: How much of a report's text a result keeps.
_MESSAGE_LIMIT: Final = 8000


def report_text(report: pytest.TestReport) -> str:
    """What a report says, headed by its one-line summary (for errors and skips)."""
    if isinstance(report.longrepr, tuple):  # a skip: (path, lineno, reason)
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    text = report.longreprtext
    crash = getattr(report.longrepr, "reprcrash", None)
    summary = crash.message.splitlines()[0] if crash is not None and crash.message else ""
    if summary and not text.startswith((summary, summary.removeprefix("Failed: "))):
        text = f"{summary}\n\n{text}"
    return text if len(text) <= _MESSAGE_LIMIT else text[:_MESSAGE_LIMIT] + "\n... (cut)"


def worst(verdicts: Sequence[Verdict]) -> Verdict:
    return max(verdicts, key=SEVERITY.__getitem__)


def classify_exception(exc: BaseException, meta: CaseMeta) -> Verdict:
    """The verdict of a case that raised ``exc`` during its call.

    The peer's doing (a failed check or assertion, a deadline passed waiting for the peer,
    the connection broken by the peer, a protocol violation seen by smuxref) is a fail,
    capped by the level; a failed precondition is inconclusive; ``pytest.skip`` and exit
    127 are unsupported; anything else -
    a HarnessError, a ContractViolation, a bug in the case - is a harness error.
    """
    if isinstance(exc, CheckFailed):
        return Verdict.FAIL
    if isinstance(exc, PreconditionFailed):
        return Verdict.INCONCLUSIVE
    if isinstance(exc, NotRun):
        return Verdict.NOT_RUN
    if isinstance(exc, (pytest.skip.Exception, PeerUnsupported)):
        return Verdict.UNSUPPORTED
    if isinstance(exc, HarnessError):
        return Verdict.ERROR
    peer_caused = (
        AssertionError,
        pytest.fail.Exception,
        ConnectionError,
        TimeoutError,
        ProtocolError,
        StreamClosedError,
    )
    if isinstance(exc, peer_caused):
        return meta.capped("fail")
    return Verdict.ERROR


def judge_phase(
    meta: CaseMeta,
    check: SmuxCheck | None,
    when: str,
    exc: BaseException | None,
    report: pytest.TestReport,
) -> tuple[Verdict | None, str]:
    """The verdict a phase of a ``@case`` contributes (None: this phase decides nothing),
    and the message that goes with it."""
    if when == "setup":
        if isinstance(exc, PreconditionFailed):
            return Verdict.INCONCLUSIVE, str(exc)
        if report.skipped:
            return Verdict.UNSUPPORTED, report_text(report)
        return (Verdict.ERROR, report_text(report)) if report.failed else (None, "")
    if when == "teardown":
        if not report.failed:
            return None, ""
        text = report_text(report)
        if check is not None and check.crashed and "CONTRACT.md rule" in text:
            # The peer crashed during the case (already its fail): its exit status at
            # teardown is the same crash, not a second, harness-side problem.
            report.outcome = "passed"
            report.longrepr = None
            return None, ""
        return Verdict.ERROR, text
    deviations = [d.verdict for d in check.deviations] if check is not None else []
    notes = [d.message for d in check.deviations] if check is not None else []
    if exc is None:
        verdict = check.verdict() if check is not None else meta.capped("pass")
        if verdict is Verdict.PASS and meta.level.value == "info":
            verdict = Verdict.INFO
        return verdict, "\n\n".join(notes)
    verdict = classify_exception(exc, meta)
    if verdict in (Verdict.UNSUPPORTED, Verdict.NOT_RUN):
        return verdict, report_text(report)
    if isinstance(exc, PreconditionFailed):
        return worst([verdict, *deviations]), "\n\n".join([*notes, str(exc)])
    if isinstance(exc, CheckFailed):
        return worst([verdict, *deviations]), "\n\n".join(notes)
    if verdict is Verdict.ERROR and deviations and not isinstance(exc, HarnessError):
        # The case stopped on a deviation it had recorded (e.g. a should-level step
        # failed, then the case gave up): the deviation is the verdict.
        text = f"the case then stopped: {type(exc).__name__}: {exc}"
        return worst(deviations), "\n\n".join([*notes, text])
    if verdict is Verdict.ERROR:
        return verdict, report_text(report)
    text = str(exc) if isinstance(exc, AssertionError) else ""
    text = text or meta.message("the case to complete", f"{type(exc).__name__}: {exc}")
    return worst([verdict, *deviations]), "\n\n".join([*notes, text])
