"""How a conformance case is declared, and the verdicts a case can end with.

A conformance result must say *which sentence of SPEC.md* a peer broke and *how badly*,
so every case is declared with :func:`case`: a stable id ``smux/<section>/<slug>``
(never renumbered), the SPEC.md section, the sentence it checks, and a level:

``must``
    A deviation is a ``fail``: the gate fails unless an expectations file lists it.
``should``
    A deviation is ``non_strict``: reported, failing only under ``--smux-strict``.
``info``
    The case records behaviour (``info``) and never fails, except on a crash.

Every case ends with one :class:`Verdict`: pass, non_strict, fail, info, unsupported
(the peer exited 127), not_run (the run lacks what the case needs, such as a second
peer), inconclusive (a prerequisite the case relies on failed before
the case's own check ran: see :mod:`smuxref_conformance.judge.checks`) or error (the
harness broke: a HarnessError, a contract violation, a bug in the case - never mixed up
with a failure of the peer).  How a case's checks are graded is
:mod:`smuxref_conformance.judge.checks`; how verdicts become pytest outcomes is
:mod:`smuxref_conformance.plugin.gate`.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, Literal, TypeVar, cast

import pytest

from ..errors import HarnessError
from .oracle import Reaction

__all__ = [
    "GRADES",
    "SEVERITY",
    "CaseMeta",
    "Grade",
    "Level",
    "Verdict",
    "case",
    "case_meta",
    "reaction_table",
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


def reaction_table(case_id: str, accepts: Mapping[Reaction, str]) -> dict[Reaction, Grade]:
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
