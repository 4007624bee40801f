"""How a conformance case is declared, what it checks, and the verdict it ends with.

A conformance result must say *which sentence of SPEC.md* a peer broke and *how badly*,
so every case is declared with :func:`case`: a stable id ``smux/<section>/<slug>``
(never renumbered), the SPEC.md section, the sentence it checks, and a level:

``must``
    A deviation is a ``fail``: the gate fails unless an expectations file lists it.
``should``
    A deviation is ``non_strict``: reported, failing only under ``--smux-strict``.
``info``
    The case records behaviour (``info``) and never fails, except on a crash.

Inside a case, :class:`SmuxCheck` (the ``smux_check`` fixture) records checks:
``expect()`` (a condition, graded by the level), ``reaction()`` (the oracle of
:mod:`smuxref_conformance.oracle`, graded by the case's own table of accepted reactions),
``alive()`` and ``info()``.  A fail-graded deviation raises :class:`CheckFailed` at once
(an AssertionError whose message reads ``Requirement / Expected / Actual`` plus the hex
transcript); non_strict and info deviations are recorded and the case goes on.

Every case ends with one :class:`Verdict`: pass, non_strict, fail, info, unsupported
(the peer exited 127), not_run (the run lacks what the case needs, such as a second
peer), inconclusive (a prerequisite the case relies on failed before
the case's own check ran: see below) or error (the harness broke: a HarnessError, a
contract violation, a bug in the case - never mixed up with a failure of the peer).

Preconditions.  A case's check sits on top of steps that other cases test: an echo
round trip, a FIN after the data, a 50 KB write in frames of 32 KiB.  When such a step
fails, the case's own requirement was never tried, and blaming it would put one defect
under dozens of requirements the peer may well meet.  So a case declares the cases it
relies on (``relies_on=("smux/10.4/fin-after-all-data", ...)``) and wraps the steps in
``with smux_check.relying_on(CASE_ID):`` (or checks them with
``smux_check.require(...)``): a peer-caused failure there ends the case
``inconclusive``, naming that prerequisite, whose own case carries the ``fail``.
:mod:`smuxref_conformance.gate` turns verdicts into pytest outcomes and reports.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, Literal, NoReturn, TypeVar, cast

import pytest

from smuxref.aio import Session
from smuxref.errors import SmuxError

from .access import PEER_STDERR
from .deadlines import Deadline
from .errors import HarnessError
from .lifecycle import client_exit_deadline
from .oracle import (
    PROBE,
    REACTION_WAIT,
    ClientLiveness,
    Liveness,
    Observation,
    Reaction,
    ServerLiveness,
    observe,
    probe_session,
)
from .peerinfo import fetch_info
from .wire import RawConnection

__all__ = [
    "CHECK",
    "CaseMeta",
    "CheckFailed",
    "Grade",
    "Level",
    "NotRun",
    "PreconditionFailed",
    "Reaction",
    "SmuxCheck",
    "Verdict",
    "case",
    "case_meta",
    "not_run",
    "smux_check",
]

F = TypeVar("F", bound=Callable[..., Any])

Grade = Literal["pass", "non_strict", "fail"]
GRADES: Final = ("pass", "non_strict", "fail")


class Level(StrEnum):
    """How much a deviation matters (SPEC.md 1.1 keywords: MUST, SHOULD; info: MAY/observed)."""

    MUST = "must"
    SHOULD = "should"
    INFO = "info"


class Verdict(StrEnum):
    """The one result of a case against one peer, version and role."""

    PASS = "pass"
    NON_STRICT = "non_strict"
    FAIL = "fail"
    INFO = "info"
    UNSUPPORTED = "unsupported"
    INCONCLUSIVE = "inconclusive"
    NOT_RUN = "not_run"
    ERROR = "error"


#: Severity order for combining several checks of one case (worst wins): a deviation
#: the case did see outranks its giving up later on a failed prerequisite.
SEVERITY: Final = {
    Verdict.NOT_RUN: 0,
    Verdict.PASS: 0,
    Verdict.INFO: 1,
    Verdict.UNSUPPORTED: 2,
    Verdict.INCONCLUSIVE: 3,
    Verdict.NON_STRICT: 4,
    Verdict.FAIL: 5,
    Verdict.ERROR: 6,
}

#: ``smux/<SPEC.md section>/<slug>``, or ``contract/<CONTRACT.md rule>/<slug>`` for the
#: cases that judge the peer contract itself (rule 8's client exit, rule 15's INFO).
_ID = re.compile(r"(?:smux|contract)/(?P<section>\d+(?:\.\d+)*)/[a-z0-9]+(?:-[a-z0-9]+)*")


@dataclass(frozen=True)
class CaseMeta:
    """What :func:`case` declared; read back from the ``smux_case`` marker."""

    id: str
    title: str
    spec: str
    requirement: str
    level: Level
    versions: tuple[int, ...] = (1, 2)
    #: Ids of the cases testing what this case's setup relies on (see the module doc).
    relies_on: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def capped(self, grade: Grade) -> Verdict:
        """A check's grade, limited by the level: should caps at non_strict, info at info."""
        if grade == "pass":
            return Verdict.PASS
        if self.level is Level.INFO:
            return Verdict.INFO
        if self.level is Level.SHOULD:
            return Verdict.NON_STRICT
        return Verdict(grade)

    @property
    def document(self) -> str:
        """Where the requirement is written: SPEC.md, or CONTRACT.md (its rule number)."""
        return "CONTRACT.md rule" if self.id.startswith("contract/") else "SPEC.md"

    def headline(self) -> str:
        where = f"{self.document} {self.spec}"
        return f"Requirement: {self.requirement} [{where}, {self.level}; {self.id}]"

    def message(self, expected: str, actual: str) -> str:
        """The failure text of reports and JUnit: Requirement / Expected / Actual."""
        return f"{self.headline()}\nExpected: {expected}\nActual: {actual}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "spec": self.spec,
            "requirement": self.requirement,
            "level": self.level.value,
            "versions": list(self.versions),
            "relies_on": list(self.relies_on),
            "document": self.document,
            **{k: v for k, v in self.extra.items() if _jsonable(v)},
        }


def _jsonable(value: object) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def case(
    case_id: str,
    /,
    *,
    title: str,
    spec: str,
    requirement: str,
    level: str,
    versions: Iterable[int] = (1, 2),
    relies_on: Iterable[str] = (),
    **meta: Any,
) -> Callable[[F], F]:
    """Declare a conformance case (adds the ``smux_case`` and ``versions`` markers).

    Raises ValueError at import time for a malformed id, a section that does not match
    the id, an unknown level or version: a case with bad metadata never runs.
    """
    match = _ID.fullmatch(case_id)
    if match is None:
        raise ValueError(
            f"case id {case_id!r} is not smux/<SPEC section>/<lowercase-slug> "
            "(or contract/<CONTRACT rule>/<lowercase-slug>)"
        )
    if match["section"] != spec:
        raise ValueError(f"case {case_id}: spec={spec!r} differs from the id's section")
    if level not in Level.__members__.values():
        raise ValueError(f"case {case_id}: level {level!r} is not one of must, should, info")
    chosen = tuple(versions)
    if not chosen or any(v not in (1, 2) for v in chosen):
        raise ValueError(f"case {case_id}: versions {chosen!r} must be a non-empty subset of 1, 2")
    if not title.strip() or not requirement.strip():
        raise ValueError(f"case {case_id}: title and requirement must not be empty")
    prerequisites = tuple(relies_on)
    for prerequisite in prerequisites:
        if _ID.fullmatch(prerequisite) is None or prerequisite == case_id:
            raise ValueError(
                f"case {case_id}: relies_on {prerequisite!r} must be another case's id"
            )
    marks = (
        pytest.mark.smux_case(
            case_id,
            title=title,
            spec=spec,
            requirement=requirement,
            level=level,
            versions=chosen,
            relies_on=prerequisites,
            **meta,
        ),
        pytest.mark.versions(*chosen),
    )

    def decorate(func: F) -> F:
        for mark in marks:
            func = mark(func)
        if inspect.iscoroutinefunction(func):
            # Marked explicitly, so the case runs under any asyncio_mode: the suite must
            # not depend on the configuration of the project whose pytest runs it.
            func = pytest.mark.asyncio(loop_scope="function")(func)
        return func

    return decorate


def case_meta(node: pytest.Item) -> CaseMeta | None:
    """The metadata of a ``@case`` item, or None for any other test."""
    marker = node.get_closest_marker("smux_case")
    if marker is None or not marker.args:
        return None
    kwargs = dict(marker.kwargs)
    known = {k: kwargs.pop(k, "") for k in ("title", "spec", "requirement", "level")}
    versions = tuple(kwargs.pop("versions", (1, 2)))
    relies_on = tuple(kwargs.pop("relies_on", ()))
    return CaseMeta(
        id=str(marker.args[0]),
        title=str(known["title"]),
        spec=str(known["spec"]),
        requirement=str(known["requirement"]),
        level=Level(known["level"] or "must"),
        versions=versions,
        relies_on=relies_on,
        extra=kwargs,
    )


def _reaction_table(case_id: str, accepts: Mapping[Reaction, str]) -> dict[Reaction, Grade]:
    """Validate a case's reaction grades (a typo must be an error, not a silent fail)."""
    table: dict[Reaction, Grade] = {}
    for key, grade in accepts.items():
        reaction = Reaction(key)  # ValueError for anything else
        if grade not in GRADES:
            raise HarnessError(f"{case_id}: {reaction} graded {grade!r}, not one of {GRADES}")
        if reaction is Reaction.CRASHED and grade != "fail":
            raise HarnessError(f"{case_id}: a crash is always a fail, not {grade!r}")
        table[reaction] = cast(Grade, grade)
    return table


class CheckFailed(AssertionError):
    """A fail-graded check of a case; the message is Requirement / Expected / Actual."""


class PreconditionFailed(Exception):
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


class NotRun(pytest.skip.Exception):  # type: ignore[misc,name-defined]
    """The case cannot run in this session's setup (a differential case without a
    second peer): ``not_run``, which says nothing about the peer (unlike unsupported,
    which CONTRACT.md reserves for exit 127)."""


def not_run(reason: str) -> NoReturn:
    """End the case as ``not_run`` with ``reason``."""
    __tracebackhide__ = True
    raise NotRun(msg=f"not run: {reason}")


#: What a step that the peer makes fail raises: a wire expectation or assertion, a
#: deadline, a broken connection, smuxref's protocol, stream and session errors.
PEER_CAUSED: Final = (AssertionError, TimeoutError, ConnectionError, SmuxError)


@dataclass(frozen=True)
class Deviation:
    """One check that did not hold, graded (fail, non_strict or info)."""

    verdict: Verdict
    message: str


#: Where the ``smux_check`` of an item is kept for the report hooks.
CHECK: Final = pytest.StashKey["SmuxCheck"]()


class SmuxCheck:
    """The checks and observations of one case run; the ``smux_check`` fixture."""

    def __init__(self, request: pytest.FixtureRequest, meta: CaseMeta) -> None:
        self.case = meta
        self._request = request
        self.deviations: list[Deviation] = []
        self.observations: list[str] = []
        self.reactions: list[Observation] = []
        self.crashed = False
        #: The failed precondition that ended the case, if one did.
        self.blamed: PreconditionFailed | None = None

    # -- what the case calls ----------------------------------------------------------
    def expect(self, condition: bool, *, expected: str, actual: str) -> bool:
        """Record a check; if it fails it is graded by the level (must: raise at once)."""
        __tracebackhide__ = True
        if not condition:
            self._deviate(self.case.capped("fail"), expected, actual)
        return bool(condition)

    def info(self, text: str) -> None:
        """An observation for the report (what an info-level case is for)."""
        self.observations.append(text)

    def require(self, condition: bool, *, prerequisite: str, what: str, actual: str) -> None:
        """A step this case relies on must hold, else the case is inconclusive.

        ``prerequisite`` is one of the case's ``relies_on`` ids (the case that tests the
        step); ``what`` names the step ("the peer's FIN after SOURCE's data").
        """
        __tracebackhide__ = True
        if not condition:
            self._precondition_failed(prerequisite, what, actual)

    @contextlib.contextmanager
    def relying_on(self, prerequisite: str, what: str = "") -> Iterator[None]:
        """Steps that ``prerequisite`` tests: a peer-caused failure inside them (a wire
        expectation, a deadline, a broken connection, a smuxref session or stream error)
        makes the case inconclusive instead of failing it.  A fail-graded ``expect``
        inside stays a fail: it is this case's own check."""
        __tracebackhide__ = True
        self._known_prerequisite(prerequisite)
        try:
            yield
        except CheckFailed:
            raise
        except PEER_CAUSED as exc:
            first = str(exc).strip().splitlines()
            detail = first[0] if first else ""
            actual = f"{type(exc).__name__}: {detail}".rstrip(": ")
            self._precondition_failed(prerequisite, what or f"a step {prerequisite} tests", actual)

    def _known_prerequisite(self, prerequisite: str) -> None:
        if prerequisite not in self.case.relies_on:
            raise HarnessError(
                f"{self.case.id}: {prerequisite} is not among the cases it relies_on "
                f"{self.case.relies_on}: declare it in @case"
            )

    def _precondition_failed(self, prerequisite: str, what: str, actual: str) -> None:
        __tracebackhide__ = True
        self._known_prerequisite(prerequisite)
        self.blamed = PreconditionFailed(self.case.id, prerequisite, what, actual)
        raise self.blamed

    def reaction(
        self,
        accepts: Mapping[Reaction, str],
        *,
        wait: float = REACTION_WAIT,
        probe: float = PROBE,
    ) -> Reaction:
        """Observe the peer's reaction to the input just sent on ``raw_conn``; grade it.

        ``accepts`` maps reactions to grades; an unlisted reaction is a fail, CRASHED is
        always a fail.  ``wait``: seconds to wait for a close before probing; ``probe``:
        seconds an ECHO round trip may take.  Returns the observed reaction.
        """
        __tracebackhide__ = True
        table = _reaction_table(self.case.id, accepts)
        conn = self._conn()
        if conn is None:
            raise HarnessError(f"{self.case.id}: smux_check.reaction() needs the raw_conn fixture")
        seen = observe(conn, wait=wait, probe=probe, liveness=self._liveness())
        self.reactions.append(seen)
        self.observations.append(f"reaction {seen.describe()}")
        listed = ", ".join(f"{r.value} ({g})" for r, g in table.items()) or "nothing"
        expected = f"one of the reactions {listed}"
        if seen.reaction is Reaction.CRASHED:
            self.crashed = True
            self._deviate(Verdict.FAIL, expected, seen.describe())
        else:
            grade = table.get(seen.reaction, "fail")
            if grade != "pass":
                self._deviate(self.case.capped(grade), expected, seen.describe())
        return seen.reaction

    def alive(self) -> None:
        """Liveness: a new stream on the same session (if the case has a raw
        connection) and the peer process (fresh connection / still running)."""
        __tracebackhide__ = True
        conn = self._conn()
        problems: list[str] = []
        if conn is not None:
            if conn.closed is not None:
                problems.append(f"the connection is closed ({conn.closed})")
            else:
                reaction, detail, _ = probe_session(conn, Deadline(PROBE))
                self.observations.append(f"alive: {detail}")
                if reaction is not Reaction.IGNORED:
                    problems.append(detail)
        liveness = self._liveness()
        if liveness is not None:
            ok, what = liveness.probe(session_closed=self._session_closed(conn))
            self.observations.append(f"alive: {what}")
            if not ok:
                self.crashed = True
                self._deviate(Verdict.FAIL, "the peer process keeps serving", what)
        if problems:
            expected = "the same session serves a new stream (ECHO round trip)"
            self._deviate(self.case.capped("fail"), expected, "; ".join(problems))

    def after_call(self, exc: BaseException | None) -> None:
        """Whatever the case checked: did the peer process die while it ran?  A crash
        is this case's fail (and a dead pooled server is replaced, not inherited by the
        next case).  ``exc``: what the case raised; a broken connection means the
        session ended even if the reset was never read."""
        liveness = self._liveness(start=False)
        if liveness is None or self.crashed:
            return
        closed = self._session_closed(self._conn()) or isinstance(exc, ConnectionError)
        if closed or exc is not None:  # a crash may be under way: the full probe
            ok, what = liveness.probe(session_closed=closed)
            why = None if ok else what
        else:  # the cheap look: has the process already gone?
            why = liveness.exited(session_closed=False)
        if why is not None:
            self.crashed = True
            message = self.case.message("the peer process keeps running through the case", why)
            self.deviations.append(Deviation(Verdict.FAIL, message))

    # -- reporting ----------------------------------------------------------------------
    def verdict(self) -> Verdict:
        """The verdict of the checks alone (the case ran to its end)."""
        worst = max((d.verdict for d in self.deviations), key=SEVERITY.__getitem__, default=None)
        if worst is not None and worst is not Verdict.INFO:
            return worst
        return Verdict.INFO if self.case.level is Level.INFO else Verdict.PASS

    def transcript(self) -> str:
        conn = self._conn()
        return conn.format_transcript() if conn is not None and conn.transcript else ""

    def _deviate(self, verdict: Verdict, expected: str, actual: str) -> None:
        __tracebackhide__ = True
        message = self.case.message(expected, actual)
        self.deviations.append(Deviation(verdict, message))
        if verdict is Verdict.FAIL:
            transcript = self.transcript()
            raise CheckFailed(message + ("\n" + transcript if transcript else ""))

    # -- what the checks look at --------------------------------------------------------
    def _conn(self) -> RawConnection | None:
        conn = self._request.node.funcargs.get("raw_conn")
        return conn if isinstance(conn, RawConnection) else None

    def _session_closed(self, conn: RawConnection | None) -> bool:
        """Whether the case's session with the peer has ended: its raw connection is
        closed, or (cases on ``smux_session``) the smuxref session is."""
        if conn is not None:
            return conn.closed is not None
        session = self._request.node.funcargs.get("smux_session")
        return isinstance(session, Session) and session.is_closed

    def _param(self, name: str) -> Any:
        callspec = getattr(self._request.node, "callspec", None)
        return callspec.params.get(name) if callspec is not None else None

    def _liveness(self, *, start: bool = True) -> Liveness | None:
        """How to probe the peer process of this case (see smuxref_conformance.oracle); with
        ``start`` False only a server the case already has is looked at."""
        request = self._request
        if self._param("role") == "client":
            started = request.node.stash.get(PEER_STDERR, [])
            if not started:
                return None
            spec, version = self._param("peer"), self._param("smux_version")
            return ClientLiveness(started[-1][1], lambda: client_exit_deadline(spec, int(version)))
        wanted = "peer_server" if not start else "peer"
        if wanted not in request.fixturenames:
            return None
        server = request.getfixturevalue("peer_server")
        pool = request.getfixturevalue("smux_pool")
        pooled = request.node.get_closest_marker("fresh_peer") is None
        handle = server.handle
        return ServerLiveness(
            server.connect,
            handle.peer,
            on_crash=(lambda: pool.discard(handle)) if pooled else None,
        )


@pytest.fixture
def smux_check(request: pytest.FixtureRequest) -> SmuxCheck:
    """Record and grade the checks of a ``@case``; see :class:`SmuxCheck`."""
    meta = case_meta(request.node)
    if meta is None:
        raise HarnessError(f"{request.node.nodeid}: smux_check is for functions declared @case")
    fetch_info(request)
    check = SmuxCheck(request, meta)
    request.node.stash[CHECK] = check
    return check
