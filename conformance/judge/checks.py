"""What a case checks, and how its checks are graded into one verdict.

Inside a case declared with :func:`~smuxref_conformance.judge.case.case`,
:class:`SmuxCheck` (the ``smux_check`` fixture) records checks: ``expect()`` (a
condition, graded by the level), ``reaction()`` (the oracle of
:mod:`smuxref_conformance.judge.oracle`, graded by the case's own table of accepted
reactions), ``alive()`` and ``info()``.  A fail-graded deviation raises
:class:`~smuxref_conformance.errors.CheckFailed` at once (an AssertionError whose message
reads ``Requirement / Expected / Actual`` plus the hex transcript); non_strict and info
deviations are recorded and the case goes on.

Preconditions.  A case's check sits on top of steps that other cases test: an echo
round trip, a FIN after the data, a 50 KB write in frames of 32 KiB.  When such a step
fails, the case's own requirement was never tried, and blaming it would put one defect
under dozens of requirements the peer may well meet.  So a case declares the cases it
relies on (``relies_on=("smux/10.4/fin-after-all-data", ...)``) and wraps the steps in
``with smux_check.relying_on(CASE_ID):`` (or checks them with
``smux_check.require(...)``): a peer-caused failure there ends the case
``inconclusive``, naming that prerequisite, whose own case carries the ``fail``.
:mod:`smuxref_conformance.plugin.gate` turns verdicts into pytest outcomes and reports.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, NoReturn

import pytest

from smuxref.aio import Session
from smuxref.errors import SmuxError

from ..deadlines import Deadline
from ..errors import CheckFailed, HarnessError, NotRun, PreconditionFailed
from ..peers.lifecycle import client_exit_deadline
from ..peers.specs import RunningPeer
from ..wire import RawConnection
from .blame import BLAMED_BY_EVERY_CASE
from .case import SEVERITY, CaseMeta, Level, Verdict, reaction_table
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

__all__ = [
    "CHECK",
    "OWN_STDERR",
    "PEER_CAUSED",
    "PEER_STDERR",
    "Deviation",
    "SmuxCheck",
    "not_run",
]

#: Peers a case talks to, with the stderr mark at its start: a failing case's report
#: gets what each peer wrote on stderr during the case (smuxref_conformance.plugin's
#: pytest_runtest_makereport); the checks read it to tell which peers the case started.
PEER_STDERR: Final = pytest.StashKey[list[tuple[str, RunningPeer, int]]]()
#: Names of the peers in PEER_STDERR that served this case alone (a client, a fresh
#: server): their stderr is the case's own, not shared with other sessions.
OWN_STDERR: Final = pytest.StashKey[set[str]]()


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
        # The gate may blame the cases of judge.blame for any case: no need to declare them.
        if prerequisite not in self.case.relies_on and prerequisite not in BLAMED_BY_EVERY_CASE:
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
        table = reaction_table(self.case.id, accepts)
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

    def session(self) -> Session | None:
        """The case's smuxref session with the peer (cases on ``smux_session``)."""
        session = self._request.node.funcargs.get("smux_session")
        return session if isinstance(session, Session) else None

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
        """How to probe the peer process of this case (see smuxref_conformance.judge.oracle); with
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
