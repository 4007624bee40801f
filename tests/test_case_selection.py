"""``--smux-case``: which ids a pattern selects, and the error for one that selects none."""

from __future__ import annotations

import pytest

from smuxref_conformance.plugin.case_selection import matches, rerun_hint, select

IDS = [
    "smux/10.1/interop-one-stream",
    "smux/10.1.2/ready-later",
    "smux/10.10/other",
    "smux/5.1/client-first-ids",
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
    assert select([pattern], IDS) == selected


def test_a_name_is_not_a_section() -> None:
    """Only the section component takes prefixes: ``smux/10.1/interop`` is no id."""
    assert not matches("smux/10.1/interop-one-stream", "smux/10.1/interop")
    assert not matches("smux/10.1/interop-one-stream", "smux/1")


def test_a_pattern_that_selects_nothing_names_the_nearest_ids() -> None:
    with pytest.raises(pytest.UsageError, match=r"did you mean smux/10\.1/interop-one-stream"):
        select(["smux/10.1/interop-one-strem"], IDS)
    with pytest.raises(pytest.UsageError, match="names no case of this run"):
        select(["smux/10.1/interop-one-stream", "smux/99"], IDS)


def test_rerun_hint_lists_each_case_once() -> None:
    hint = rerun_hint(["a/1/x", "a/1/x", "a/2/y"])
    assert hint == "--smux-case=a/1/x --smux-case=a/2/y"
    assert rerun_hint([f"a/1/{n}" for n in range(10)], limit=2).endswith("(and 8 more)")
