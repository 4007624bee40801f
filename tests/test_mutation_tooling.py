"""The mutation tooling's own parts (conformance/mutation): the operator it adds, how a
mutated line is mapped to cases, how a survivor is matched with its triage entry, and
mutants run side by side (``run --workers``)."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
from cosmic_ray import work_item as cr
from cosmic_ray.mutating import mutate_code
from cosmic_ray.work_db import WorkDB, use_db

from smuxref_conformance.mutation import report, runner, session, stopper, workers
from smuxref_conformance.mutation.__main__ import main as mutation_main
from smuxref_conformance.mutation.casemap import (
    REPO,
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
    assert changed_lines(tmp_path, tmp_path) == {"engine.py": [2]}
    slot = tmp_path / "slots" / "1"
    shutil.copytree(tmp_path / "pristine", slot / "peer" / "smuxref")
    (slot / "peer" / "smuxref" / "_state.py").write_text("a\nb\nC\n")
    assert changed_lines(tmp_path, slot) == {"_state.py": [3]}


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


def test_projection_charges_only_the_mutants_a_new_run_would_run() -> None:
    """A full run's time is projected from the sample: mutants the triage settles, and
    those no case covers, cost nothing in a new run, however long they took when
    measured; the rest are charged their mean time, scaled to every mutant."""

    def made(outcome: str, seconds: float | None) -> report.Outcome:
        return report.Outcome("engine.py", 1, "op", "a", "b", outcome, "", seconds=seconds)

    summary = report.Summary(
        outcomes=[
            made("killed", 20.0),
            made("should-level", 220.0),
            made("outside-wire", 200.0),
            made("equivalent", None),
            made("not-covered", None),
        ],
        sampled_out=14,
        pending=1,
        skipped=40,  # 14 of them out of the sample, the rest of operators not selected
    )
    # 2 of 5 sampled need a run, mean 120 s: 20 mutants x 2/5 x 120 s = 960 s.
    assert summary.projected_hours(workers=1) == (
        "a run of all 20 mutants now: about 0.3 h of pytest on 1 worker (2 of the 5"
        " sampled need a run, mean 120 s; the rest the triage settles)"
    )
    assert "0.1 h" in summary.projected_hours(workers=2)
    assert report.Summary().projected_hours() == "no sample to project from"


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


def test_refuted_should_level_claim_is_detected_at_should_level() -> None:
    """An inconclusive result of a should-level case whose named case passed is the
    case's own non_strict, as the gate judges it: the runner counts it at should level."""
    claim = _row("t.py::a[ref-v2-server]", "smux/1/a", "inconclusive", blame="smux/1/b")
    claim["level"] = "should"
    named_passes = _row("t.py::b[ref-v2-server]", "smux/1/b", "pass")
    other = _row("t.py::c[ref-v2-server]", "smux/1/c", "non_strict")
    assert runner._should_level([claim, named_passes, other]) == {
        "t.py::a[ref-v2-server]",
        "t.py::c[ref-v2-server]",
    }
    assert runner._should_level([claim]) == set()
    assert claim["actual"] == "inconclusive"


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


SCALE = float(os.environ.get("SMUX_TIMEOUT_SCALE") or "1")


def test_pool_runs_workers_side_by_side_each_in_its_own_slot() -> None:
    """Two workers run two mutants at the same time (each pair meets at a barrier, which
    a pool running one at a time never reaches), never two in one slot, each mutant
    once, handed out in the seeded order."""
    spec = cr.MutationSpec("x/engine.py", "core/AddNot", 0, (7, 4), (7, 9))
    items = [cr.WorkItem(str(n), (spec,)) for n in range(4)]
    together = threading.Barrier(2)
    busy: set[int] = set()
    lock = threading.Lock()
    started: list[str] = []
    ran: list[tuple[str, int]] = []

    def job(item: cr.WorkItem, slot: int, records: workers.Records) -> None:
        with lock:
            assert slot not in busy, f"slot {slot} used by two mutants at once"
            busy.add(slot)
            started.append(item.job_id)
        together.wait(timeout=10 * SCALE)
        with lock:
            busy.discard(slot)
        with records.open() as recording:
            assert recording
            ran.append((item.job_id, slot))

    workers.run_pool(items, 2, job)
    assert sorted(j for j, _ in ran) == ["0", "1", "2", "3"]
    assert {s for _, s in ran} == {0, 1}
    assert started[:2] in (["0", "1"], ["1", "0"])
    assert started[2:] in (["2", "3"], ["3", "2"])


def test_slots_get_their_own_copy_and_mutation_paths(tmp_path: Path) -> None:
    (tmp_path / "pristine").mkdir()
    (tmp_path / "peer" / "smuxref").mkdir(parents=True)
    for name in TARGETS:
        (tmp_path / "pristine" / name).write_text(f"# {name}\n")
        (tmp_path / "peer" / "smuxref" / name).write_text(f"# {name}\n")
    slots = workers.prepare_slots(tmp_path, 2)
    assert slots == [tmp_path / "slots" / "0", tmp_path / "slots" / "1"]
    spec = cr.MutationSpec(".mutation/peer/smuxref/engine.py", "core/AddNot", 3, (7, 4), (7, 9))
    (moved,) = workers.in_slot(cr.WorkItem("j", (spec,)), slots[1])
    assert moved.module_path == slots[1] / "peer" / "smuxref" / "engine.py"
    assert (moved.operator_name, moved.occurrence) == (spec.operator_name, spec.occurrence)
    assert moved.module_path.read_text() == "# engine.py\n"
    (tmp_path / "peer" / "smuxref" / "_frame.py").write_text("x = 2\n")  # a mutant left there
    with pytest.raises(RuntimeError, match="differs from"):
        workers.prepare_slots(tmp_path, 2)


def _processes_of(work: Path) -> list[str]:
    """Command lines of the processes whose command line or environment names ``work``
    (test commands, their pytest, the peers: SMUXREF_REF_PEER_SOURCE is in the slot)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if str(work).encode() in cmdline + environ:
            found.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
    return found


def _outcomes(work: Path) -> dict[tuple[str, int, str, str], str]:
    summary = report.summarise(work / "session.sqlite")
    assert summary.pending == 0
    assert not summary.beyond_prefix
    return {(o.file, o.line, o.operator, o.mutated): o.outcome for o in summary.outcomes}


def _slots_used(work: Path) -> set[str]:
    """The slot directories the recorded runs mutated (Cosmic Ray's diff names the file)."""
    with use_db(str(work / "session.sqlite"), WorkDB.Mode.open) as db:
        diffs = [r.diff or "" for _, r in db.results]
    return {part for d in diffs for part in ("slots/0/", "slots/1/") if part in d}


#: The mutation command with its arguments, SIGINT delivered as Ctrl-C would (a child of
#: a non-interactive shell or of an xdist worker may inherit it ignored or blocked).
_MUTATION = [
    sys.executable,
    "-c",
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler);"
    " signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT]);"
    " sys.argv[0] = 'mutation'; runpy.run_module('smuxref_conformance.mutation',"
    " run_name='__main__')",
]


def test_two_workers_interrupted_and_resumed_give_the_outcomes_of_one(tmp_path: Path) -> None:
    """``run --workers 2``, interrupted (Ctrl-C) while both slots run a mutant and then
    resumed, records per mutant what one worker records: the interruption leaves no
    process and no record of the mutants it stopped, and both slots were used.  Bounded:
    six codec mutants of the seeded order judged by the length cases on protocol 1 (one
    case map, copied to the second session)."""
    common = ["--scale", str(max(SCALE, 1.0)), "--files", "_frame.py,_decoder.py"]
    common += ["--cases", "conformance/cases/test_length.py", "--smux-version", "1"]
    common += ["--seed", "20261202", "--sample", "6"]
    one, two = tmp_path / "one", tmp_path / "two"
    deadline = 600 * SCALE

    def mutation(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*_MUTATION, *args],
            check=False,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=deadline,
        )

    serial = mutation("run", "--work", str(one), *common)
    assert serial.returncode == 0, serial.stdout[-3000:] + serial.stderr[-3000:]
    expected = _outcomes(one)
    assert {"killed", "survived"} <= set(expected.values())
    assert _slots_used(one) == {"slots/0/"}

    two.mkdir()
    for part in ("casemap.json", "peer", "pristine"):  # the same map: no second build
        copy = shutil.copytree if (one / part).is_dir() else shutil.copy2
        copy(one / part, two / part)
    with (tmp_path / "interrupted.log").open("w+") as log:
        run = subprocess.Popen(
            [*_MUTATION, "run", "--work", str(two), "--workers", "2", *common],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            started = time.monotonic()
            while not all(any(f"--slot {k}" in p for p in _processes_of(two)) for k in (0, 1)):
                assert run.poll() is None, "the run ended before both slots ran a mutant"
                assert time.monotonic() - started < deadline, "both slots never ran at once"
                time.sleep(0.05)
            run.send_signal(signal.SIGINT)
            assert run.wait(timeout=60 * SCALE) == 130
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()
        log.seek(0)
        assert "interrupted" in log.read()
    # The peers get their SIGKILL as their pytest dies: give the kernel a moment to end them.
    left, until = _processes_of(two), time.monotonic() + 10 * SCALE
    while left and time.monotonic() < until:
        time.sleep(0.05)
        left = _processes_of(two)
    assert left == []
    halted = report.summarise(two / "session.sqlite")
    assert halted.pending >= 1  # the mutants it stopped are not recorded
    assert not [o for o in halted.outcomes if o.outcome == "error"]

    resumed = mutation("run", "--resume", "--work", str(two), "--workers", "2")
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert _outcomes(two) == expected
    assert _slots_used(two) == {"slots/0/", "slots/1/"}
