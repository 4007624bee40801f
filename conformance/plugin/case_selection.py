"""``--smux-case ID``: select cases by the ids the reports print.

A report, the gate's summary and an expectations file all name a case by its id
(``smux/10.1/interop-one-stream``), never by the pytest function behind it
(``test_one_stream``), so a user who reads a failure can only rerun it with ``-k`` after
looking the function up.  This option takes the id as printed, a whole section
(``smux/10.1``, which also takes 10.1.x), or a shell pattern (``smux/5.*``,
``*/interop-*``).  A pattern that names no case of the run is a usage error listing
the nearest ids: silently running nothing would end in "no case was judged", and a
typo must not cost a CI run.

The cases a selected case declares it relies on (``relies_on``) run too, and so do the
few that the gate's own rules blame whatever case ran (frame format, readiness, FIN,
window: :data:`..judge.blame.BLAMED_BY_EVERY_CASE`): were one of them to fail, the
selected case's result is inconclusive naming it, and only the named case's own result
says what is wrong (and whether the blame holds: a blamed case that passes turns the
inconclusive into a fail, see :mod:`..judge.prerequisites`).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import Final

import pytest

from ..judge.blame import BLAMED_BY_EVERY_CASE
from ..judge.case import CaseMeta, case_meta

__all__ = ["CASES", "add_option", "matches", "select"]

CASES: Final = pytest.StashKey[tuple[str, ...]]()
_GLOB: Final = frozenset("*?[")


def add_option(group: pytest.OptionGroup) -> None:
    group.addoption(
        "--smux-case",
        action="append",
        dest="smux_cases",
        metavar="ID",
        help="run only this case, repeatable: an id as reports print it "
        "(smux/10.1/interop-one-stream), a section (smux/10.1) or a shell pattern (smux/5.*)",
    )


def matches(case_id: str, pattern: str) -> bool:
    """Whether ``pattern`` (an id, a section or a shell pattern) selects ``case_id``."""
    pattern = pattern.strip().rstrip("/")
    if _GLOB & set(pattern):
        return fnmatchcase(case_id, pattern)
    if case_id == pattern:
        return True
    prefix, _, section = pattern.rpartition("/")
    id_prefix, _, rest = case_id.partition("/")
    id_section = rest.partition("/")[0]
    return prefix == id_prefix and (id_section == section or id_section.startswith(section + "."))


def select(
    patterns: Sequence[str],
    metas: Sequence[CaseMeta | None],
    blamed_by_all: frozenset[str] = BLAMED_BY_EVERY_CASE,
) -> list[bool]:
    """Per item, whether it runs: a pattern selects its case, a selected case relies on
    it, or every case may blame it.  Raises UsageError for a pattern that selects
    nothing, with the ids closest to it."""
    known = sorted({m.id for m in metas if m is not None})
    for pattern in patterns:
        if not any(matches(i, pattern) for i in known):
            near = difflib.get_close_matches(pattern.strip(), known, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(near)}?" if near else ""
            raise pytest.UsageError(
                f"--smux-case={pattern!r} names no case of this run (ids look like "
                f"smux/10.1/interop-one-stream; sections like smux/10.1){hint}"
            )
    chosen = {i for i in known if any(matches(i, p) for p in patterns)}
    chosen |= blamed_by_all & set(known)
    relies = {m.id: set(m.relies_on) for m in metas if m is not None}
    pending = list(chosen)
    while pending:
        for prerequisite in relies.get(pending.pop(), set()) - chosen:
            chosen.add(prerequisite)
            pending.append(prerequisite)
    return [m is not None and m.id in chosen for m in metas]


@pytest.hookimpl(tryfirst=True)  # before -k, so the error sees every collected case
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    patterns = config.stash.get(CASES, ())
    if not patterns:
        return
    chosen = select(patterns, [case_meta(item) for item in items])
    dropped = [item for item, keep in zip(items, chosen, strict=True) if not keep]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = [item for item, keep in zip(items, chosen, strict=True) if keep]
