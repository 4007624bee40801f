"""Verdicts: how ``@case`` items end (pass, non_strict, fail, info, unsupported, error),
how the oracle tells CLOSED, IGNORED, SILENT and CRASHED apart, and what pytest's exit
status says about them.

The unit tests check the pieces (the decorator's validation, level capping, exception
classes); the others run a small synthetic case file in a child pytest against the
reference peer (tests/plugin_harness.py) and read its outcome, exit status and results.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from plugin_harness import InnerRun, exec_peer, run_inner

from smuxref.errors import ConfigError, InvalidVersionError, SessionClosedError
from smuxref_conformance.errors import CheckFailed, ContractViolation, HarnessError, PeerUnsupported
from smuxref_conformance.judge.case import CaseMeta, Level, Verdict, case, reaction_table
from smuxref_conformance.judge.classify import classify_exception
from smuxref_conformance.judge.oracle import Reaction

HEADER = """\
import pytest
from smuxref_conformance.errors import HarnessError
from smuxref_conformance.judge.oracle import Reaction
from smuxref_conformance.judge.case import case
from smuxref import Cmd, Frame, encode_raw

REQ = ("A receiver MUST treat a frame whose VER differs from the session's version as a "
       "protocol error.")
ANY = {Reaction.CLOSED: "pass", Reaction.SILENT: "pass", Reaction.IGNORED: "pass"}


def meta(slug, level="must", section="4.1"):
    return case(f"smux/{section}/{slug}", title=slug, spec=section, requirement=REQ, level=level)
"""
ONE = ("--smux-version=1", "--smux-roles=server")


def run_cases(tmp_path: Path, body: str, *args: str, timeout: float = 90) -> InnerRun:
    source = HEADER + textwrap.dedent(body)
    return run_inner(tmp_path, source, "--smux-report-dir=out", *args, timeout=timeout)


def results(tmp_path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((tmp_path / "out" / "smux-results.json").read_text())
    return data


def verdicts(tmp_path: Path) -> dict[str, str]:
    """nodeid (without the file) -> actual verdict."""
    return {r["nodeid"].split("::")[1]: r["actual"] for r in results(tmp_path)["results"]}


def summary_line(run: InnerRun) -> str:
    return run.output.strip().splitlines()[-1]


# -- the decorator and the grading rules -------------------------------------------------
def test_case_adds_markers_and_validates() -> None:
    @case("smux/4.1/x-y", title="t", spec="4.1", requirement="R.", level="should", versions=(2,))
    def test_x() -> None:
        pass

    marks = {m.name: m for m in getattr(test_x, "pytestmark", [])}
    assert marks["smux_case"].args == ("smux/4.1/x-y",)
    assert marks["smux_case"].kwargs["level"] == "should"
    assert marks["versions"].args == (2,)
    bad: list[tuple[dict[str, Any], str]] = [
        ({"case_id": "smux/4.1/Bad_Slug"}, "is not smux/<SPEC section>"),
        ({"case_id": "4.1/x"}, "is not smux/<SPEC section>"),
        ({"spec": "4.2"}, "differs from the id's section"),
        ({"level": "may"}, "is not one of must, should, info"),
        ({"versions": (3,)}, "subset of 1, 2"),
        ({"versions": ()}, "subset of 1, 2"),
        ({"requirement": " "}, "must not be empty"),
    ]
    for change, words in bad:
        kwargs: dict[str, Any] = {
            "case_id": "smux/4.1/x",
            "title": "t",
            "spec": "4.1",
            "requirement": "R.",
            "level": "must",
            **change,
        }
        case_id = kwargs.pop("case_id")
        with pytest.raises(ValueError, match=words):
            case(case_id, **kwargs)


def test_level_caps_the_grade() -> None:
    def meta(level: Level) -> CaseMeta:
        return CaseMeta("smux/4.1/x", "t", "4.1", "R.", level)

    assert meta(Level.MUST).capped("fail") is Verdict.FAIL
    assert meta(Level.MUST).capped("non_strict") is Verdict.NON_STRICT
    assert meta(Level.SHOULD).capped("fail") is Verdict.NON_STRICT
    assert meta(Level.INFO).capped("fail") is Verdict.INFO
    for level in Level:
        assert meta(level).capped("pass") is Verdict.PASS


def test_exceptions_are_classified_peer_or_harness() -> None:
    must = CaseMeta("smux/4.1/x", "t", "4.1", "R.", Level.MUST)
    should = CaseMeta("smux/4.1/x", "t", "4.1", "R.", Level.SHOULD)
    peer_caused = [
        AssertionError("x"),
        ConnectionResetError(),
        BrokenPipeError(),
        TimeoutError(),
        SessionClosedError(),
        InvalidVersionError("VER 0"),
    ]
    for exc in peer_caused:
        assert classify_exception(exc, must) is Verdict.FAIL, exc
        assert classify_exception(exc, should) is Verdict.NON_STRICT, exc
    assert classify_exception(CheckFailed("x"), should) is Verdict.FAIL  # graded already
    harness = [TypeError(), HarnessError("x"), ContractViolation(6, "x"), ConfigError("f", "r", 0)]
    for exc in harness:
        assert classify_exception(exc, must) is Verdict.ERROR, exc
    assert classify_exception(PeerUnsupported("p", [], b""), must) is Verdict.UNSUPPORTED


def test_reaction_tables_are_checked() -> None:
    table = reaction_table("c", {Reaction.CLOSED: "pass", Reaction.SILENT: "non_strict"})
    assert table == {Reaction.CLOSED: "pass", Reaction.SILENT: "non_strict"}
    with pytest.raises(HarnessError, match="a crash is always a fail"):
        reaction_table("c", {Reaction.CRASHED: "pass"})
    with pytest.raises(HarnessError, match="graded 'ok'"):
        reaction_table("c", {Reaction.CLOSED: "ok"})


# -- whole runs against the reference peer ----------------------------------------------
def test_failing_must_case_fails_the_gate(tmp_path: Path) -> None:
    run = run_cases(
        tmp_path,
        """
        @meta("must-x")
        def test_must(raw_conn, smux_check):
            smux_check.expect(False, expected="a FIN on stream 3", actual="nothing")
            raise AssertionError("not reached: a must-level deviation raises at once")
        """,
        *ONE,
    )
    assert run.returncode == 1, run.output
    assert "1 failed" in summary_line(run), run.output
    assert f"Requirement: {REQ_TEXT} [SPEC.md 4.1, must; smux/4.1/must-x]" in run.output
    assert "Expected: a FIN on stream 3\nE       Actual: nothing" in run.output
    assert "not reached" not in run.output
    assert verdicts(tmp_path) == {"test_must[ref-v1-server]": "fail"}


REQ_TEXT = (
    "A receiver MUST treat a frame whose VER differs from the session's version as a "
    "protocol error."
)
SHOULD_CASE = """
@meta("should-x", level="should")
def test_should(raw_conn, smux_check):
    smux_check.expect(False, expected="a NOP within 1 s", actual="no NOP")
    smux_check.info("the case goes on after a should-level deviation")
"""


def test_should_case_is_non_strict_unless_strict(tmp_path: Path) -> None:
    run = run_cases(tmp_path, SHOULD_CASE, *ONE)
    assert run.returncode == 0, run.output
    assert "1 non_strict" in summary_line(run), run.output
    assert verdicts(tmp_path) == {"test_should[ref-v1-server]": "non_strict"}
    row = results(tmp_path)["results"][0]
    assert row["unexpected"] is False
    assert "Actual: no NOP" in row["message"]
    assert row["observations"] == ["the case goes on after a should-level deviation"]

    strict = run_cases(tmp_path, SHOULD_CASE, *ONE, "--smux-strict")
    assert strict.returncode == 1, strict.output
    assert "1 failed" in summary_line(strict), strict.output
    assert "Expected: a NOP within 1 s" in strict.output
    assert results(tmp_path)["results"][0]["unexpected"] is True


def test_info_case_records_and_never_fails(tmp_path: Path) -> None:
    run = run_cases(
        tmp_path,
        """
        @meta("info-x", level="info")
        def test_info(raw_conn, smux_check):
            smux_check.expect(False, expected="a NOP", actual="none")
            smux_check.info("Go closes here; the reference stops reading")
            smux_check.alive()
            assert False, "even a plain assert is only recorded"
        """,
        *ONE,
    )
    assert run.returncode == 0, run.output
    assert "1 info" in summary_line(run), run.output
    row = results(tmp_path)["results"][0]
    assert row["actual"] == "info"
    assert "Go closes here; the reference stops reading" in row["observations"]
    assert any("a fresh connection got an ECHO round trip" in o for o in row["observations"])


def test_harness_errors_are_errors_not_failures(tmp_path: Path) -> None:
    run = run_cases(
        tmp_path,
        """
        @meta("bug-x")
        def test_bug(raw_conn, smux_check):
            {}["a bug in the case"]

        @meta("harness-x")
        def test_harness(raw_conn, smux_check):
            raise HarnessError("the harness broke on purpose")

        @meta("no-raw-conn")
        def test_reaction_needs_raw_conn(peer_server, smux_check):
            smux_check.reaction(ANY)

        def test_check_outside_case(smux_check):
            pass
        """,
        *ONE,
    )
    assert run.returncode == 1, run.output
    assert "4 errors" in summary_line(run), run.output
    assert "failed" not in summary_line(run), run.output
    got = verdicts(tmp_path)
    assert got["test_bug[ref-v1-server]"] == "error"
    assert got["test_harness[ref-v1-server]"] == "error"
    assert got["test_reaction_needs_raw_conn[ref-v1]"] == "error"
    assert "smux_check.reaction() needs the raw_conn fixture" in run.output
    assert "smux_check is for functions declared @case" in run.output
    junit = (tmp_path / "out" / "junit.xml").read_text()
    assert "<failure" not in junit, junit
    assert junit.count("<error") >= 4


def test_case_ending_on_a_recorded_deviation(tmp_path: Path) -> None:
    run = run_cases(
        tmp_path,
        """
        class StepFailed(Exception):
            pass

        @meta("stops-x", level="should")
        def test_stops(raw_conn, smux_check):
            smux_check.expect(False, expected="the step", actual="timeout")
            raise StepFailed("already reported through smux_check")
        """,
        *ONE,
    )
    assert run.returncode == 0, run.output
    row = results(tmp_path)["results"][0]
    assert row["actual"] == "non_strict"
    assert "the case then stopped: StepFailed" in row["message"]


def test_plain_assert_reads_requirement_expected_actual(tmp_path: Path) -> None:
    run = run_cases(
        tmp_path,
        """
        @meta("plain-x")
        def test_plain(raw_conn):
            frame = Frame(raw_conn.version, Cmd.NOP, 0)
            assert frame.cmd == Cmd.FIN
        """,
        *ONE,
    )
    assert run.returncode == 1, run.output
    assert "AssertionError: Requirement: " in run.output
    assert "Expected: the case's assertion to hold" in run.output
    assert "Actual: assert <Cmd.NOP: 3> == <Cmd.FIN: 1>" in run.output


REACTIONS = """
@meta("closed")
def test_closed(raw_conn, smux_check):
    raw_conn.send_raw(encode_raw(0, Cmd.SYN, 0, raw_conn.next_sid()))
    assert smux_check.reaction(ANY) is Reaction.CLOSED

@meta("ignored")
def test_ignored(raw_conn, smux_check):
    raw_conn.send_frame(Frame(raw_conn.version, Cmd.NOP, 0))
    assert smux_check.reaction(ANY) is Reaction.IGNORED

@meta("silent")
def test_silent(raw_conn, smux_check):
    # A PSH header announcing 100 bytes that never come: the probe becomes its payload.
    raw_conn.send_raw(encode_raw(raw_conn.version, Cmd.PSH, 100, raw_conn.next_sid()))
    assert smux_check.reaction(ANY) is Reaction.SILENT

@meta("graded")
def test_graded(raw_conn, smux_check):
    raw_conn.send_frame(Frame(raw_conn.version, Cmd.NOP, 0))
    smux_check.reaction({Reaction.CLOSED: "pass", Reaction.SILENT: "non_strict"})

@meta("non-strict-reaction")
def test_non_strict_reaction(raw_conn, smux_check):
    raw_conn.send_frame(Frame(raw_conn.version, Cmd.NOP, 0))
    smux_check.reaction({Reaction.CLOSED: "pass", Reaction.IGNORED: "non_strict"})
"""


@pytest.mark.parametrize("role", ["server", "client"])
def test_oracle_tells_reactions_apart(tmp_path: Path, role: str) -> None:
    run = run_cases(tmp_path, REACTIONS, "--smux-version=1", f"--smux-roles={role}")
    assert run.returncode == 1, run.output
    got = verdicts(tmp_path)
    suffix = f"[ref-v1-{role}]"
    assert got == {
        f"test_closed{suffix}": "pass",
        f"test_ignored{suffix}": "pass",
        f"test_silent{suffix}": "pass",
        f"test_graded{suffix}": "fail",
        f"test_non_strict_reaction{suffix}": "non_strict",
    }, run.output
    assert "Expected: one of the reactions closed (pass), silent (non_strict)" in run.output
    assert "Actual: ignored: the same session still served a new stream" in run.output
    rows = {r["case"]: r for r in results(tmp_path)["results"]}
    assert rows["smux/4.1/silent"]["reaction"] == "silent"
    transcript = rows["smux/4.1/graded"]["transcript"]
    assert transcript.startswith("frames ("), transcript  # decoded first, hex below
    assert "\ntranscript (" in transcript, transcript


CRASH = """
@meta("crash", level="should")
def test_crash(raw_conn, smux_check):
    raw_conn.send_raw(b"CRASH-NOW")
    smux_check.reaction(ANY)

@meta("crash-unchecked", level="info")
def test_crash_unchecked(raw_conn, smux_check):
    raw_conn.send_raw(b"CRASH-NOW")
    raw_conn.expect_closed()  # the case itself is content: the connection ended

@meta("after-crash")
def test_after_crash(raw_conn, smux_check):
    smux_check.alive()
"""


def test_a_crash_is_always_a_fail(tmp_path: Path) -> None:
    """Even in a should-level case accepting every reaction, or an info-level case that
    never asks the oracle; the crashed client's exit status is not reported a second time
    as a teardown error, and the next case gets a new server instead of an error about
    the dead one."""
    run = run_cases(tmp_path, CRASH, "--smux-version=1", exec_peer("crash_on_marker.py"))
    assert run.returncode == 1, run.output
    got = verdicts(tmp_path)
    assert got == {
        "test_crash[exec:crash_on_marker.py-v1-server]": "fail",
        "test_crash[exec:crash_on_marker.py-v1-client]": "fail",
        "test_crash_unchecked[exec:crash_on_marker.py-v1-server]": "fail",
        "test_crash_unchecked[exec:crash_on_marker.py-v1-client]": "fail",
        "test_after_crash[exec:crash_on_marker.py-v1-server]": "pass",
        "test_after_crash[exec:crash_on_marker.py-v1-client]": "pass",
    }, run.output
    assert "error" not in summary_line(run), run.output
    assert "the server process exited with status 3" in run.output
    assert "the client process exited with status 3 when its session ended" in run.output
    rows = results(tmp_path)["results"]
    assert all(r["reaction"] == "crashed" for r in rows[:2])
    unchecked = [r["message"] for r in rows if r["case"] == "smux/4.1/crash-unchecked"]
    assert "Expected: the peer process keeps running through the case" in unchecked[0]
    assert "Actual: the server process exited with status 3" in unchecked[0]
    assert "Actual: the client process exited with status 3 when its session ended" in unchecked[1]


def test_unsupported_is_a_skip_and_nothing_judged_fails(tmp_path: Path) -> None:
    run = run_cases(
        tmp_path,
        """
        @meta("v2-only", section="9.1")
        def test_v2(raw_conn, smux_check):
            smux_check.alive()
        """,
        "--smux-version=2",
        exec_peer("v1_only.py"),
    )
    assert run.returncode == 5, run.output  # pytest's "no tests ran"
    assert "2 skipped" in summary_line(run), run.output
    assert "no case was judged" in run.output
    assert set(verdicts(tmp_path).values()) == {"unsupported"}
    assert results(tmp_path)["summary"]["gate"] == "fail"


def test_duplicate_case_ids_are_errors(tmp_path: Path) -> None:
    run = run_cases(
        tmp_path,
        """
        @meta("same")
        def test_one(raw_conn, smux_check):
            pass

        @meta("same")
        def test_two(raw_conn, smux_check):
            pass
        """,
        *ONE,
    )
    assert run.returncode == 1, run.output
    assert "case id smux/4.1/same is also used by test_case.py::test_one" in run.output


# -- preconditions: inconclusive, root causes, not run ------------------------------------
PRECONDITION_CASES = """
ECHO_ID = "smux/4.1/echo-works"


@case(ECHO_ID, title="echo", spec="4.1", requirement=REQ, level="must")
def test_prerequisite(raw_conn, smux_check):
    smux_check.expect(False, expected="an echo", actual="none (made up)")


def relying(slug):
    return case(f"smux/4.1/{slug}", title=slug, spec="4.1", requirement=REQ, level="must",
                relies_on=(ECHO_ID,))


@relying("wire-step")
def test_wire_step(raw_conn, smux_check):
    with smux_check.relying_on(ECHO_ID, "an ECHO round trip"):
        raw_conn.open_stream(b"SINK\\n")
        raw_conn.expect_frame(lambda f: False, 0.2, what="an echo that never comes")
    smux_check.expect(False, expected="never reached", actual="reached")


@relying("required-step")
def test_required_step(raw_conn, smux_check):
    smux_check.require(False, prerequisite=ECHO_ID, what="the echo", actual="no echo")


@relying("own-check-inside")
def test_own_check_inside(raw_conn, smux_check):
    with smux_check.relying_on(ECHO_ID):
        smux_check.expect(False, expected="the case's own check", actual="failed")


@relying("undeclared")
def test_undeclared(raw_conn, smux_check):
    smux_check.require(False, prerequisite="smux/4.1/other", what="x", actual="y")
"""


def test_failed_precondition_is_inconclusive_naming_the_prerequisite(tmp_path: Path) -> None:
    run = run_cases(tmp_path, PRECONDITION_CASES, *ONE)
    got = verdicts(tmp_path)
    assert got == {
        "test_prerequisite[ref-v1-server]": "fail",
        "test_wire_step[ref-v1-server]": "inconclusive",
        "test_required_step[ref-v1-server]": "inconclusive",
        "test_own_check_inside[ref-v1-server]": "fail",
        "test_undeclared[ref-v1-server]": "error",
    }, run.output
    rows = {r["case"]: r for r in results(tmp_path)["results"]}
    wire = rows["smux/4.1/wire-step"]
    assert wire["blame"] == "smux/4.1/echo-works"
    assert wire["unexpected"] is False
    assert "because an ECHO round trip failed (tested by smux/4.1/echo-works)" in wire["message"]
    assert "FrameTimeout" in wire["message"]
    assert wire["transcript"], "an inconclusive result keeps the transcript of its setup"
    assert "is not among the cases it relies_on" in rows["smux/4.1/undeclared"]["message"]
    # pytest's own totals carry the new verdict; the gate fails on the real fail only.
    assert "2 inconclusive" in summary_line(run), run.output
    assert run.returncode == 1
    assert "smux/4.1/echo-works fails; 2 cases inconclusive because of it" in run.output
    causes = results(tmp_path)["summary"]["root_causes"]
    assert causes == [
        {
            "case": "smux/4.1/echo-works",
            "verdict": "fail",
            "inconclusive": ["smux/4.1/required-step", "smux/4.1/wire-step"],
            "results": 2,
        }
    ]
    for name in ("summary.md", "report.html"):
        text = (tmp_path / "out" / name).read_text()
        assert "Root causes" in text, name
        assert "inconclusive because of it" in text, name


def test_relies_on_must_name_other_cases() -> None:
    for bad in ("echo", "smux/4.1/x"):
        with pytest.raises(ValueError, match="must be another case's id"):
            case(
                "smux/4.1/x", title="t", spec="4.1", requirement="R.", level="must", relies_on=[bad]
            )


def test_not_run_is_neither_unsupported_nor_judged(tmp_path: Path) -> None:
    run = run_cases(
        tmp_path,
        """
        from smuxref_conformance.judge.checks import not_run

        @meta("needs-two")
        def test_needs_two(raw_conn, smux_check):
            not_run("needs a second peer")

        @meta("runs")
        def test_runs(raw_conn, smux_check):
            pass
        """,
        *ONE,
    )
    assert run.returncode == 0, run.output
    assert verdicts(tmp_path) == {
        "test_needs_two[ref-v1-server]": "not_run",
        "test_runs[ref-v1-server]": "pass",
    }
    assert "1 not run" in summary_line(run), run.output


BLAMED_CASES = """
def _echo_then_fin(raw_conn, smux_check):
    sid = raw_conn.open_stream(b"ECHO\\nhi")
    raw_conn.send_raw(Frame(2, Cmd.FIN, sid).encode())
    raw_conn.expect_frame(lambda f: f.cmd == Cmd.FIN and f.sid == sid, 5, what="the FIN")
    smux_check.expect(False, expected="this case's own check", actual="failed (made up)")


@meta("must-on-bad-fin")
def test_must(raw_conn, smux_check):
    _echo_then_fin(raw_conn, smux_check)


@meta("should-on-bad-fin", level="should")
def test_should(raw_conn, smux_check):
    _echo_then_fin(raw_conn, smux_check)
"""


def test_a_should_case_is_blamed_like_a_must_case(tmp_path: Path) -> None:
    """A version 2 peer whose FIN carries version 1: a case whose own check fails on
    such a connection is inconclusive naming the frame-format case, at should level as
    at must level (a non_strict there would pin one defect on a requirement the peer
    meets)."""
    peer = f"--peer=exec:{sys.executable} -m smuxref_conformance.bugs --bug fin-wrong-version"
    run = run_cases(tmp_path, BLAMED_CASES, "--smux-version=2", "--smux-roles=server", peer)
    assert set(verdicts(tmp_path).values()) == {"inconclusive"}, run.output
    blames = {r["blame"] for r in results(tmp_path)["results"]}
    assert blames == {"smux/4.1/version-on-syn-psh-fin"}, run.output
