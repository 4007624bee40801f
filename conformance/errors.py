"""Every exception of the suite, in one hierarchy, because each class decides a verdict.

A conformance verdict is only meaningful if the harness around it worked, and if a
failure of the peer is never mistaken for a failure of the suite (or the other way
round).  What a case ends with depends on which branch of this tree was raised
(:func:`smuxref_conformance.judge.classify.classify_exception`)::

    SuiteError                      everything the suite raises on purpose
    |-- HarnessError                the suite cannot judge: verdict error, never a fail
    |   `-- ContractViolation       the peer broke a rule of CONTRACT.md (cited)
    |-- PeerUnsupported             the peer exited 127: unsupported, a skip (rule 3)
    |-- PreconditionFailed          a step other cases test failed: inconclusive
    |-- ExpectationError            a malformed expectations file (also a ValueError)
    |-- NotReplayable               a recorded session's other side cannot run here
    `-- PeerFailure                 the peer did wrong: an AssertionError, so pytest
        |                           and the gate count it as a failure
        |-- CheckFailed             a fail-graded check of ``smux_check``
        |-- StepFailed              a step already reported through ``smux_check``
        |-- WireAssertion           a raw-connection expectation (with transcript)
        |   |-- FrameTimeout
        |   |-- UnexpectedFrame
        |   `-- ConnectionNotClosed
        |-- ModelViolation          the session model of the stateful machine
        |-- SequenceFailure         a generated sequence made the peer break the model
        |-- DifferentialMismatch    two peers reacted differently to one sequence
        `-- ScenarioError           a recording scenario got a wrong answer

:class:`NotRun` stands apart: it is pytest's skip outcome (a BaseException, so that no
``except Exception`` in a case swallows it), carrying the ``not_run`` verdict.
"""

from __future__ import annotations

from typing import Final

import pytest

__all__ = [
    "RULE_CLIENT_END",
    "RULE_CLIENT_START",
    "RULE_COMMAND_LINE",
    "RULE_SERVER_LIFE",
    "RULE_SERVER_START",
    "RULE_STDOUT",
    "RULE_UNSUPPORTED",
    "CheckFailed",
    "ConnectionNotClosed",
    "ContractViolation",
    "DifferentialMismatch",
    "ExpectationError",
    "FrameTimeout",
    "HarnessError",
    "ModelViolation",
    "NotReplayable",
    "NotRun",
    "PeerFailure",
    "PeerUnsupported",
    "PreconditionFailed",
    "ScenarioError",
    "SequenceFailure",
    "StepFailed",
    "SuiteError",
    "UnexpectedFrame",
    "WireAssertion",
    "format_tail",
    "section_label",
]

# Rule numbers of CONTRACT.md that the harness itself checks.
RULE_COMMAND_LINE: Final = 1
RULE_UNSUPPORTED: Final = 3
RULE_STDOUT: Final = 4
RULE_SERVER_START: Final = 5
RULE_SERVER_LIFE: Final = 6
RULE_CLIENT_START: Final = 7
RULE_CLIENT_END: Final = 8

#: How much of a peer's stderr a message shows: enough for a traceback or a Go panic.
STDERR_TAIL_LINES: Final = 30


def format_tail(stderr: bytes, peer: str) -> str:
    """The last lines of a peer's stderr, indented, or a note that it wrote none."""
    if not stderr.strip():
        return f"({peer} wrote nothing on stderr)"
    lines = stderr.decode("utf-8", "replace").rstrip().splitlines()[-STDERR_TAIL_LINES:]
    return f"stderr of {peer} (last {len(lines)} lines):\n" + "\n".join("    " + ln for ln in lines)


def section_label(section: str) -> str:
    """How a message cites a requirement: ``SPEC.md 8.2``, or a CONTRACT.md rule as given."""
    return section if section.startswith("CONTRACT") else f"SPEC.md {section}"


class SuiteError(Exception):
    """Everything the suite raises on purpose; the subclass decides the verdict."""


class HarnessError(SuiteError):
    """The suite cannot run: its environment or a peer is unusable.  Never a verdict."""


class ContractViolation(HarnessError):
    """The peer broke rule ``rule`` of CONTRACT.md; the message starts with the citation."""

    def __init__(self, rule: int, message: str, *, peer: str = "", stderr: bytes | None = None):
        text = f"CONTRACT.md rule {rule}: {message}"
        if stderr is not None:
            text += "\n" + format_tail(stderr, peer or "the peer")
        super().__init__(text)
        self.rule = rule


class PeerUnsupported(SuiteError):
    """The peer exited 127 for this command line: the case is unsupported, not failed."""

    def __init__(self, peer: str, argv: list[str], stderr: bytes) -> None:
        reason = stderr.decode("utf-8", "replace").strip().splitlines()
        why = reason[-1] if reason else "no reason given on stderr"
        super().__init__(f"{peer} does not support {' '.join(argv)!r} (exit 127: {why})")
        self.peer = peer
        #: All of it: a case that fails a peer for its 127 shows more than the last line.
        self.stderr = stderr


class PreconditionFailed(SuiteError):
    """A step the case relies on failed before its own check: the case is inconclusive.

    Not an AssertionError, so nothing that grades a peer's failure mistakes it for one.
    ``prerequisite`` is the id of the case that tests the step.
    """

    def __init__(self, case_id: str, prerequisite: str, what: str, actual: str) -> None:
        self.prerequisite = prerequisite
        self.what = what
        self.actual = actual
        super().__init__(
            f"Inconclusive: {case_id} could not run its own check, because {what} "
            f"failed (tested by {prerequisite}).\nActual: {actual}"
        )


class ExpectationError(SuiteError, ValueError):
    """An expectations file is malformed; the message names the file and the entry."""


class NotReplayable(SuiteError):
    """The session's other side is not a program this machine can run."""


class PeerFailure(SuiteError, AssertionError):
    """The peer did something a conforming peer does not: the case fails."""


class CheckFailed(PeerFailure):
    """A fail-graded check of a case; the message is Requirement / Expected / Actual."""


class StepFailed(PeerFailure):
    """A step of a case did not happen; already reported through ``smux_check``."""


class WireAssertion(PeerFailure):
    """A raw-connection expectation failed; the message includes the transcript."""


class FrameTimeout(WireAssertion):
    """No matching frame arrived in time (or the connection ended first)."""


class UnexpectedFrame(WireAssertion):
    """A frame (or the end of the connection) arrived during an expected silence."""


class ConnectionNotClosed(WireAssertion):
    """The peer kept the connection open past the deadline."""


class ModelViolation(PeerFailure):
    """The peer did something no conforming ECHO peer may do (the session model)."""

    def __init__(self, section: str, requirement: str, expected: str, actual: str) -> None:
        self.section = section
        self.requirement = requirement
        self.expected = expected
        self.actual = actual
        super().__init__(self.text())

    def text(self) -> str:
        where = section_label(self.section)
        return (
            f"Requirement ({where}): {self.requirement}\n"
            f"Expected: {self.expected}\nActual: {self.actual}"
        )


class SequenceFailure(PeerFailure):
    """A generated sequence made a peer break the model (the case's failure text)."""

    def __init__(self, violation: ModelViolation, details: str) -> None:
        self.violation = violation
        self.details = details  #: who, the transcript, the promote command
        super().__init__(f"{violation.text()}\n{details}")


class DifferentialMismatch(PeerFailure):
    """The reference peer and the peer under test reacted differently to one sequence."""


class ScenarioError(PeerFailure):
    """The peer answered something other than the contract says."""


class NotRun(pytest.skip.Exception):  # type: ignore[misc,name-defined]
    """The case cannot run in this session's setup (a differential case without a
    second peer): ``not_run``, which says nothing about the peer (unlike unsupported,
    which CONTRACT.md reserves for exit 127)."""
