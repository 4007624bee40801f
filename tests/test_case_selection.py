"""``--smux-case``: which ids a pattern selects, and the error for one that selects none."""

from __future__ import annotations

import pytest

from smuxref_conformance.judge import blame
from smuxref_conformance.judge.blame import BLAMED_BY_EVERY_CASE
from smuxref_conformance.judge.case import CaseMeta, Level
from smuxref_conformance.plugin.case_selection import matches, select
from smuxref_conformance.report.results import rerun_hint


def meta(case_id: str, *relies_on: str) -> CaseMeta:
    return CaseMeta(case_id, "", "", "", Level.MUST, (1, 2), relies_on)


IDS = [
    meta("smux/10.1/interop-one-stream"),
    meta("smux/10.1.2/ready-later"),
    meta("smux/10.10/other"),
    meta("smux/5.1/client-first-ids"),
    None,  # an item that is not a case
]


@pytest.mark.parametrize(
    ("pattern", "selected"),
    [
        ("smux/10.1/interop-one-stream", [True, False, False, False, False]),
        ("smux/10.1", [True, True, False, False, False]),  # the section and its subsections
        ("smux/10.1/", [True, True, False, False, False]),
        ("smux/10", [True, True, True, False, False]),
        ("smux/10.*", [True, True, True, False, False]),
        ("*/client-*", [False, False, False, True, False]),
    ],
)
def test_id_section_and_pattern(pattern: str, selected: list[bool]) -> None:
    assert select([pattern], IDS, frozenset()) == selected


def test_a_name_is_not_a_section() -> None:
    """Only the section component takes prefixes: ``smux/10.1/interop`` is no id."""
    assert not matches("smux/10.1/interop-one-stream", "smux/10.1/interop")
    assert not matches("smux/10.1/interop-one-stream", "smux/1")


def test_a_pattern_that_selects_nothing_names_the_nearest_ids() -> None:
    with pytest.raises(pytest.UsageError, match=r"did you mean smux/10\.1/interop-one-stream"):
        select(["smux/10.1/interop-one-strem"], IDS)
    with pytest.raises(pytest.UsageError, match="names no case of this run"):
        select(["smux/10.1/interop-one-stream", "smux/99"], IDS)


def test_prerequisites_run_with_the_cases_that_rely_on_them() -> None:
    """Transitively, and only those: the rerun of one case shows its blame's cause."""
    metas = [
        meta("smux/8.2/stop", "smux/2.1/multiplex"),
        meta("smux/2.1/multiplex", "smux/10.4/fin"),
        meta("smux/10.4/fin"),
        meta("smux/10.4/fin"),  # a second variant of the same case
        meta("smux/6.1/other"),
    ]
    assert select(["smux/8.2/stop"], metas, frozenset()) == [True, True, True, True, False]
    assert select(["smux/10.4/fin"], metas, frozenset()) == [False, False, True, True, False]
    # The cases the gate's rules blame for any case run with any selection.
    gate_wide = frozenset({"smux/6.1/other", "smux/9.9/not-in-this-run"})
    assert select(["smux/10.4/fin"], metas, gate_wide) == [False, False, True, True, True]


def test_every_case_the_gate_wide_rules_name_runs_with_a_selection() -> None:
    """BLAMED_BY_EVERY_CASE holds every case id judge.blame can name."""
    named = {
        value
        for value in vars(blame).values()
        if isinstance(value, str) and value.startswith("smux/")
    }
    assert named
    assert named <= BLAMED_BY_EVERY_CASE


def test_rerun_hint_lists_each_case_once() -> None:
    hint = rerun_hint(["a/1/x", "a/1/x", "a/2/y"])
    assert hint == "--smux-case=a/1/x --smux-case=a/2/y"
    assert rerun_hint([f"a/1/{n}" for n in range(10)], limit=2).endswith("(and 8 more)")
