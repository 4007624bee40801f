"""The mutation tooling's own parts (conformance/mutation): the operator it adds, how a
mutated line is mapped to cases, how a survivor is matched with its triage entry."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
from cosmic_ray import work_item as cr
from cosmic_ray.mutating import mutate_code
from cosmic_ray.work_db import WorkDB, use_db

from smuxref_conformance.mutation import report, runner, session, stopper
from smuxref_conformance.mutation.__main__ import main as mutation_main
from smuxref_conformance.mutation.casemap import (
    TARGETS,
    CaseMap,
    non_strict_cases,
    statement_lines,
)
from smuxref_conformance.mutation.operators import ReplaceEnumMember, is_selected
from smuxref_conformance.mutation.runner import changed_lines, cheapest_first


@pytest.mark.parametrize("example", ReplaceEnumMember.examples())
def test_enum_member_operator(example: object) -> None:
    pre, post = example.pre_mutation_code, example.post_mutation_code  # type: ignore[attr-defined]
    assert mutate_code(pre, ReplaceEnumMember(), 0) == post


def test_enum_member_operator_leaves_other_attributes() -> None:
    code = "x = self.OPEN\ny = Other.OPEN\n"
    assert mutate_code(code, ReplaceEnumMember(), 0) is None


def test_selected_operators() -> None:
    assert is_selected("core/ReplaceComparisonOperator_Lt_LtE")
    assert not is_selected("core/ReplaceComparisonOperator_Lt_Gt")
    assert is_selected("smuxref/ReplaceEnumMember")
    assert not is_selected("core/ReplaceBinaryOperator_Add_Pow")


SOURCE = """\
def f(a, b):
    if (a <
            b):
        return (a +
                b)
    return 0
"""


def test_statement_lines_header_and_continuation() -> None:
    assert statement_lines(SOURCE, 3) == range(2, 4)  # the if's header, not its body
    assert statement_lines(SOURCE, 5) == range(4, 6)
    assert statement_lines(SOURCE, 6) == range(6, 7)


def test_cases_for_a_continuation_line_are_those_of_its_statement() -> None:
    casemap = CaseMap({"x.py": {2: ["slow", "fast"], 4: ["other"]}}, {"slow": 2.0, "fast": 0.1}, [])
    assert casemap.cases_for("x.py", SOURCE, [3]) == ["fast", "slow"]
    casemap.failed.append("fast")
    assert casemap.cases_for("x.py", SOURCE, [3]) == ["slow"]


def test_changed_lines(tmp_path: Path) -> None:
    (tmp_path / "pristine").mkdir()
    (tmp_path / "peer" / "smuxref").mkdir(parents=True)
    for name in TARGETS:
        (tmp_path / "pristine" / name).write_text("a\nb\nc\n")
        (tmp_path / "peer" / "smuxref" / name).write_text("a\nb\nc\n")
    (tmp_path / "peer" / "smuxref" / "engine.py").write_text("a\nB\nc\n")
    assert changed_lines(tmp_path) == {"engine.py": [2]}


def test_triage_requires_a_verdict_and_reason(tmp_path: Path) -> None:
    path = tmp_path / "triage.toml"
    path.write_text(
        '[[mutant]]\nfile = "engine.py"\noperator = "core/AddNot"\noriginal = "if x:"\n'
        'mutated = "if not x:"\nverdict = "killed"\nreason = "no"\n'
    )
    with pytest.raises(ValueError, match="verdict must be one of"):
        report.load_triage(path)


def test_committed_triage_loads() -> None:
    entries = [e for es in report.load_triage().values() for e in es]
    assert entries
    assert all(verdict in ("equivalent", "outside-wire", "allowed") for _, verdict, _ in entries)


def test_triage_entry_limited_to_a_function() -> None:
    key = ("engine.py", "core/AddNot", "if st is None:", "if not st is None:")
    triage = {key: [("close_write", "outside-wire", "why")]}
    assert report.judge(triage, key, "close_write") == ("outside-wire", "why")
    assert report.judge(triage, key, "receive_data") is None


def test_seeded_order_extends_the_samples_drawn_before() -> None:
    """A larger sample with the same seed keeps every mutant of a smaller one, and the
    first 50 are the sample of the earlier runs (random.sample's set-based draw)."""
    order = session.seeded_order(823, 20261202)
    assert sorted(order) == list(range(823))
    for k in (4, 50, 85):
        assert order[:k] == random.Random(20261202).sample(range(823), k)
    assert session.seeded_order(823, 7) != order


def test_wilson_interval() -> None:
    low, high = report.wilson(27, 29)
    assert round(low, 4) == 0.7804
    assert round(high, 4) == 0.9809
    assert report.wilson(0, 0) == (0.0, 1.0)
    assert report.wilson(10, 10)[1] == 1.0


def test_cheapest_first_weighs_earlier_kills() -> None:
    durations = {"slow": 10.0, "fast": 1.0, "mid": 3.0}
    assert cheapest_first(["slow", "mid", "fast"], durations, {}) == ["fast", "mid", "slow"]
    assert cheapest_first(["slow", "mid", "fast"], durations, {"mid": 5}) == [
        "mid",
        "fast",
        "slow",
    ]


def test_function_entry_judges_every_mutant_of_the_definition(tmp_path: Path) -> None:
    path = tmp_path / "triage.toml"
    path.write_text(
        '[[function]]\nfile = "_frame.py"\nname = "encode_raw"\n'
        'verdict = "outside-wire"\nreason = "the suite\'s encoder"\n'
    )
    triage = report.load_triage(path)
    key = ("_frame.py", "core/NumberReplacer", "x = 1", "x = 2")
    assert report.judge(triage, key, "encode_raw") == ("outside-wire", "the suite's encoder")
    assert report.judge(triage, key, "encode") is None
    assert report.judge(triage, ("_decoder.py", *key[1:]), "encode_raw") is None


def test_not_covered_counts_against_both_scores() -> None:
    counts = Counter({"killed": 8, "not-covered": 1, "outside-wire": 1, "equivalent": 3})
    assert report.Summary.fraction(counts) == (8, 10)
    assert report.Summary.fraction(counts, wire_only=True) == (8, 9)


def test_survivor_seen_by_should_level_cases() -> None:
    output = (
        "gate PASS: 490 results (476 pass, 8 non_strict, 2 not_run); 0 unexpected\n"
        "  root cause: smux/5.4/syn-own-parity deviates (non_strict); 1 case inconclusive\n"
    )
    assert report._should_level(output) == (
        "seen only by should-level cases: 8 non_strict (smux/5.4/syn-own-parity)"
    )
    assert report._should_level("gate PASS: 9 results (9 pass); 0 unexpected\n") == ""


def test_non_strict_cases_read_from_the_results(tmp_path: Path) -> None:
    results = tmp_path / "smux-results.json"
    verdicts = {"a[ref-v1]": "pass", "b[ref-v1]": "non_strict", "c[ref-v2]": "non_strict"}
    rows = [{"nodeid": n, "actual": v} for n, v in verdicts.items()]
    results.write_text(json.dumps({"results": rows}))
    assert non_strict_cases(results) == {"b[ref-v1]", "c[ref-v2]"}


def _survivor(output: str) -> report.Outcome:
    spec = cr.MutationSpec("x/engine.py", "core/AddNot", 0, (7, 4), (7, 9), definition_name="f")
    result = cr.WorkResult(
        worker_outcome=cr.WorkerOutcome.NORMAL,
        output=output,
        test_outcome=cr.TestOutcome.SURVIVED,
        diff="--- a\n+++ b\n-if x:\n+if not x:",
    )
    return report._classify(cr.WorkItem("j", (spec,)), result, {})


def test_should_level_detection_is_its_own_outcome() -> None:
    """A run the default gate passed, with non_strict results the unmutated peer does not
    give (the runner's mark), is detected at should level: in the scores that count it,
    and apart from the kills in the must-level ones."""
    seen = _survivor('MUTATION SHOULD-LEVEL ["t.py::case[ref-v1]"]\nMUTATION SURVIVED\n')
    assert (seen.outcome, seen.detail) == ("should-level", "non_strict in 1: t.py::case[ref-v1]")
    assert _survivor("MUTATION SURVIVED\n").outcome == "survived"
    counts = Counter({"killed": 6, "should-level": 2, "survived": 1, "outside-wire": 1})
    assert report.Summary.fraction(counts, wire_only=True) == (8, 9)
    assert report.Summary.fraction(counts, wire_only=True, must_only=True) == (6, 9)
    assert report.Summary.fraction(counts) == (8, 10)
    assert report.Summary.fraction(counts, must_only=True) == (6, 10)


def test_forget_makes_a_recorded_mutant_pending_again(tmp_path: Path) -> None:
    """--rerun-survivors' step: the result goes, the mutant itself stays in the session."""
    database = tmp_path / "session.sqlite"
    spec = cr.MutationSpec("x/engine.py", "core/AddNot", 0, (7, 4), (7, 9))
    with use_db(str(database), WorkDB.Mode.create) as db:
        db.add_work_item(cr.WorkItem("a", (spec,)))
        db.add_work_item(cr.WorkItem("b", (spec,)))
        for job in ("a", "b"):
            db.set_result(job, cr.WorkResult(worker_outcome=cr.WorkerOutcome.NORMAL))
    session.forget(database, ["a"])
    with use_db(str(database), WorkDB.Mode.open) as db:
        assert [i.job_id for i in db.pending_work_items] == ["a"]
        assert [job for job, _ in db.results] == ["b"]


def test_rerun_survivors_needs_resume() -> None:
    with pytest.raises(SystemExit):
        mutation_main(["run", "--rerun-survivors"])


def test_allowed_counts_like_outside_wire() -> None:
    """A mutant SPEC.md allows is not detected in the score and left out of the wire
    score, as one outside the wire's view."""
    counts = Counter({"killed": 8, "allowed": 1, "outside-wire": 1, "survived": 1})
    assert report.Summary.fraction(counts) == (8, 11)
    assert report.Summary.fraction(counts, wire_only=True) == (8, 9)


def _row(nodeid: str, case: str, actual: str, blame: str = "") -> dict[str, object]:
    row: dict[str, object] = {
        "nodeid": nodeid,
        "case": case,
        "actual": actual,
        "expected": "pass",
        "peer": "ref",
        "version": 2,
        "role": "server",
    }
    if blame:
        row["blame"] = blame
    return row


def test_inconclusive_claim_refuted_when_the_named_case_passes() -> None:
    """The runner settles a mutant's inconclusive result as the gate does once every
    result is known: the named case passing in the same column makes it a kill."""
    claim = _row("t.py::a[ref-v2-server]", "smux/1/a", "inconclusive", blame="smux/1/b")
    named_passes = _row("t.py::b[ref-v2-server]", "smux/1/b", "pass")
    named_inconclusive = _row("t.py::b[ref-v2-server]", "smux/1/b", "inconclusive", "smux/1/c")
    assert runner._refuted([claim, named_passes]) == "t.py::a[ref-v2-server]"
    assert runner._refuted([claim, named_inconclusive]) == ""
    assert runner._refuted([claim]) == ""
    assert claim["actual"] == "inconclusive"  # the rows themselves are left as they were


class _Session:
    shouldstop: bool | str = False


def test_stopper_stops_at_a_new_inconclusive_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only an inconclusive result with a named case, not given unmutated and not naming
    a case already run, stops the run and says where."""
    stop = tmp_path / "stopped.json"
    settings = {"file": str(stop), "nodes": ["t.py::old"], "blames": ["smux/1/tried"]}
    monkeypatch.setenv(stopper.STOP_ENV, json.dumps(settings))
    session = _Session()
    stopper.pytest_sessionstart(session)  # type: ignore[arg-type]

    def report(nodeid: str, actual: str, blame: str = "") -> None:
        record = {"actual": actual, "blame": blame}
        stopper.pytest_runtest_logreport(SimpleNamespace(nodeid=nodeid, smux=record))  # type: ignore[arg-type]

    report("t.py::a", "pass")
    report("t.py::old", "inconclusive", "smux/1/b")
    report("t.py::c", "inconclusive", "smux/1/tried")
    report("t.py::d", "inconclusive")
    assert not stop.exists()
    assert session.shouldstop is False
    report("t.py::e", "inconclusive", "smux/1/b")
    assert str(session.shouldstop).startswith("inconclusive, relies on smux/1/b")
    assert json.loads(stop.read_text()) == {"nodeid": "t.py::e", "blame": "smux/1/b"}
