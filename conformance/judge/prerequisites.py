"""An inconclusive result is a claim about another case, so the whole run checks it.

A case that gives up on a failed prerequisite (``smux_check.require``, a ``relies_on``
step, or a blame rule of :mod:`.blame`) says "this result means nothing, because the
peer already fails the case I name".  That is only true if the named case does fail.
Were it to pass, the inconclusive would hide a real defect behind a prerequisite the
peer meets, and the gate would pass what is broken.  So once every result of the run is
known (at the end of a run, and again when runs are merged), an inconclusive result
whose named case *passed* for the same peer and version (same role, or any role when
the named case has none) becomes the case's own failure (``fail``; ``non_strict`` for a
should-level case, ``info`` for an info one), with a message saying so.  A named case
that did not run keeps the result inconclusive: nothing in the run refutes the claim,
and the report's root-cause line already says the prerequisite was not run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any, Final

from .case import Verdict
from .expectations import is_unexpected

__all__ = ["REFUTED_KEY", "NamedCaseIndex", "confirm_blames"]

#: Set on a result turned into a fail: the case it had wrongly blamed.
REFUTED_KEY: Final = "blame_refuted"
_HELD: Final = frozenset({Verdict.PASS.value, Verdict.INFO.value})
#: A case's failure by its level (judge.case.CaseMeta.capped); must when not recorded.
_OWN_FAILURE: Final = {"should": Verdict.NON_STRICT, "info": Verdict.INFO}
_LABEL: Final = {Verdict.FAIL: "Fail", Verdict.NON_STRICT: "Fail of a SHOULD", Verdict.INFO: "Info"}

Row = dict[str, Any]


class NamedCaseIndex:
    """Where to look for the case an inconclusive result names: its results for the
    same peer and version, in the same role when it ran in that role, else in any role
    (a client-only prerequisite named by a server-role result).  The gate's check below
    and the reports' root-cause lines both use it, so they never disagree about whether
    the prerequisite ran and what it got."""

    def __init__(self, rows: Iterable[Row]) -> None:
        self._by_column: dict[tuple[str, int | None, str, str], list[Row]] = defaultdict(list)
        self._by_case: dict[tuple[str, int | None, str], list[Row]] = defaultdict(list)
        for row in rows:
            peer, version, role = row.get("peer", ""), row.get("version"), row.get("role") or ""
            self._by_column[(peer, version, role, row["case"])].append(row)
            self._by_case[(peer, version, row["case"])].append(row)

    def rows_of(self, row: Row, case: str) -> list[Row]:
        """The named case's results (variants together) in the row's column."""
        peer, version, role = row.get("peer", ""), row.get("version"), row.get("role") or ""
        return self._by_column.get((peer, version, role, case)) or self._by_case.get(
            (peer, version, case), []
        )

    def root_cause(self, row: Row) -> str:
        """The case an inconclusive ``row`` comes down to: the case it names or, when
        every result of that case in the column is itself inconclusive naming one and
        the same case, where that one leads.  A setup step can rely on a case that is
        in turn inconclusive for this peer (a client's ECHO round trip on a peer whose
        frames are garbled), and the report and the precision table should then name
        the case that actually failed."""
        case = str(row.get("blame") or "")
        seen = {str(row["case"])}
        while case and case not in seen:
            named = self.rows_of(row, case)
            onward = {str(r.get("blame") or "") for r in named}
            if not named or any(r["actual"] != Verdict.INCONCLUSIVE.value for r in named):
                break
            if len(onward) != 1 or "" in onward:
                break
            seen.add(case)
            case = onward.pop()
        # A chain that comes back round proves nothing beyond the case named directly.
        return str(row.get("blame") or "") if case in seen else case


def confirm_blames(rows: list[Row], *, strict: bool) -> int:
    """Turn each inconclusive row whose named case passed into the case's own failure
    at its level (in place), and say whether that breaks the gate; return how many rows
    changed."""
    index = NamedCaseIndex(rows)
    changed = 0
    for row in rows:
        blame = row.get("blame")
        if row["actual"] != Verdict.INCONCLUSIVE.value or not blame:
            continue
        named = {str(r["actual"]) for r in index.rows_of(row, blame)}
        if not named or not named <= _HELD:
            continue
        verdict = _OWN_FAILURE.get(str(row.get("level")), Verdict.FAIL)
        row["actual"] = verdict.value
        row["unexpected"] = is_unexpected(verdict, str(row["expected"]), strict=strict)
        row[REFUTED_KEY] = row.pop("blame")
        row["message"] = (
            f"{_LABEL[verdict]}: this result was inconclusive, blaming {blame}, "
            f"but {blame} passed for "
            f"this peer, version and role, so the prerequisite held and the failure is this "
            f"case's own.\n\n{row.get('message') or ''}"
        ).rstrip()
        changed += 1
    return changed
