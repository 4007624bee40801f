"""An inconclusive result blames another case; the run checks that the blamed case failed.

Were a blame allowed to name a case that passed, a real defect would hide as
inconclusive and the gate would pass it (issue 12: "a blame can name a case that passed").
"""

from __future__ import annotations

from typing import Any

from smuxref_conformance.judge.prerequisites import REFUTED_KEY, confirm_blames
from smuxref_conformance.report.results import ResultSet

PREREQ = "smux/2.1/interop-one-stream"
CASE = "smux/6.3/zero-length-psh-open-stream"


def _row(
    case: str, actual: str, *, role: str = "server", expected: str = "pass", **extra: Any
) -> dict[str, Any]:
    return {
        "case": case,
        "peer": "p",
        "version": 2,
        "role": role,
        "actual": actual,
        "expected": expected,
        "unexpected": False,
        "message": "why",
        **extra,
    }


def test_blame_of_a_passing_case_becomes_an_unexpected_fail() -> None:
    rows = [_row(PREREQ, "pass"), _row(CASE, "inconclusive", blame=PREREQ)]
    assert confirm_blames(rows, strict=False) == 1
    row = rows[1]
    assert (row["actual"], row["unexpected"], row[REFUTED_KEY]) == ("fail", True, PREREQ)
    assert "blame" not in row
    assert row["message"].startswith(f"Fail: this result was inconclusive, blaming {PREREQ}")
    assert row["message"].endswith("why")


def test_blame_of_a_failing_or_absent_case_stands() -> None:
    failing = [_row(PREREQ, "fail"), _row(CASE, "inconclusive", blame=PREREQ)]
    absent = [_row(CASE, "inconclusive", blame=PREREQ)]
    mixed = [
        _row(PREREQ, "pass", variant="a"),
        _row(PREREQ, "fail", variant="b"),
        _row(CASE, "inconclusive", blame=PREREQ),
    ]
    for rows in (failing, absent, mixed):
        assert confirm_blames(rows, strict=False) == 0
        assert (rows[-1]["actual"], rows[-1]["blame"]) == ("inconclusive", PREREQ)


def test_the_column_is_peer_version_and_role() -> None:
    other_role = [
        _row(PREREQ, "pass", role="client"),
        _row(PREREQ, "fail", role="server"),
        _row(CASE, "inconclusive", blame=PREREQ),
    ]
    assert confirm_blames(other_role, strict=False) == 0
    other_version = [
        {**_row(PREREQ, "pass"), "version": 1},
        _row(CASE, "inconclusive", blame=PREREQ),
    ]
    assert confirm_blames(other_version, strict=False) == 0
    # A named case with no role (it ran once per version) speaks for both roles.
    roleless = [_row(PREREQ, "pass", role=""), _row(CASE, "inconclusive", blame=PREREQ)]
    assert confirm_blames(roleless, strict=False) == 1


def test_an_expected_failure_stays_expected() -> None:
    rows = [_row(PREREQ, "pass"), _row(CASE, "inconclusive", expected="fail", blame=PREREQ)]
    assert confirm_blames(rows, strict=False) == 1
    assert (rows[1]["actual"], rows[1]["unexpected"]) == ("fail", False)


def test_a_refuted_blame_gives_the_case_its_own_level() -> None:
    """A should-level case whose blame is refuted failed a SHOULD: non_strict, which
    breaks the gate only under --smux-strict, never a must-level fail."""
    rows = [_row(PREREQ, "pass"), _row(CASE, "inconclusive", blame=PREREQ, level="should")]
    assert confirm_blames(rows, strict=False) == 1
    assert (rows[1]["actual"], rows[1]["unexpected"]) == ("non_strict", False)
    assert rows[1]["message"].startswith("Fail of a SHOULD: this result was inconclusive")
    strict = [_row(PREREQ, "pass"), _row(CASE, "inconclusive", blame=PREREQ, level="should")]
    assert confirm_blames(strict, strict=True) == 1
    assert (strict[1]["actual"], strict[1]["unexpected"]) == ("non_strict", True)


def test_report_finds_the_blamed_case_where_the_gate_does() -> None:
    """A server-role result blaming a case that ran with no role, or in the other role
    only, points at that case's real verdict, not "not run": the root-cause line and the
    gate's blame check read the same columns."""
    for role in ("", "client"):
        rows = [_row(PREREQ, "fail", role=role), _row(CASE, "inconclusive", blame=PREREQ)]
        (cause,) = ResultSet(rows).root_causes()
        assert (cause.case, cause.verdict, len(cause.own)) == (PREREQ, "fail", 1)
        assert cause.sentence().startswith(f"{PREREQ} fails; 1 case inconclusive")
    same_role_first = [
        _row(PREREQ, "fail", role="client"),
        _row(PREREQ, "pass", role="server"),
        _row(CASE, "inconclusive", blame=PREREQ),
    ]
    (cause,) = ResultSet(same_role_first).root_causes()
    assert [r["role"] for r in cause.own] == ["server"]


def test_root_cause_line_follows_a_chain_to_the_failing_case() -> None:
    """A result inconclusive on a case that is itself inconclusive comes down to the case
    at the end of the chain: one root-cause line names it, with both results under it."""
    fmt, middle = "smux/4.1/version-on-syn-psh-fin", PREREQ
    rows = [
        _row(fmt, "fail"),
        _row(middle, "inconclusive", blame=fmt),
        _row(CASE, "inconclusive", blame=middle),
    ]
    (cause,) = ResultSet(rows).root_causes()
    assert (cause.case, cause.verdict, len(cause.inconclusive)) == (fmt, "fail", 2)
    assert cause.sentence().startswith(f"{fmt} fails; 2 cases inconclusive")
    # a chain that comes back round stays with the case each result names (no hang)
    looped = [_row(middle, "inconclusive", blame=CASE), _row(CASE, "inconclusive", blame=middle)]
    assert {c.case: c.inconclusive[0]["case"] for c in ResultSet(looped).root_causes()} == {
        CASE: middle,
        middle: CASE,
    }
