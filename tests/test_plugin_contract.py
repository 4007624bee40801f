"""The plugin judges peers by CONTRACT.md before trusting them, and never hangs on one.

Each test runs a child pytest against a deliberately broken peer (tests/peers/) and
checks that the run ends within a deadline, as an error that cites the broken rule of
CONTRACT.md (never a pass, a protocol failure or a hang), and that no peer process of
that run is left behind.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from plugin_harness import exec_peer, peer_processes, run_inner, scaled
from reliability_support import report

CASE = """\
import pytest

@pytest.mark.roles({role!r})
@pytest.mark.versions(1)
def test_case(raw_conn):
    pass
"""

ECHO_CASE = """\
from smuxref import Cmd, Frame

def test_echo(raw_conn):
    sid = raw_conn.open_stream(b"ECHO\\nping")
    raw_conn.send_frame(Frame(raw_conn.version, Cmd.FIN, sid))
    assert raw_conn.read_stream(sid) == b"ping"
"""

#: Broken peer, the role it is run in, the rule it breaks, and words the error must use.
BROKEN = [
    ("silent.py", "server", 5, "no `LISTENING HOST:PORT` line on stdout within"),
    ("garbage.py", "server", 5, "must be `LISTENING HOST:PORT`, got 'hello world'"),
    ("exit0.py", "server", 5, "exited with status 0 before printing"),
    ("crash.py", "server", 5, "boom: the peer crashed at start"),
    ("flood.py", "server", 4, "bytes on stdout without a newline"),
    ("ignore_sigterm.py", "server", 6, "the server ignored SIGTERM"),
    ("chatty.py", "server", 4, "more bytes on stdout after the first line"),
    ("silent.py", "client", 7, "no connection within"),
    ("exit0.py", "client", 7, "exited with status 0 without connecting"),
]


@pytest.mark.parametrize(
    ("script", "role", "rule", "words"), BROKEN, ids=[f"{b[0][:-3]}-{b[1]}" for b in BROKEN]
)
def test_broken_peer_is_a_clear_error(
    tmp_path: Path, script: str, role: str, rule: int, words: str
) -> None:
    run = run_inner(tmp_path, CASE.format(role=role), exec_peer(script))
    assert run.returncode == 1, run.output
    assert f"CONTRACT.md rule {rule}: " in run.output, run.output
    assert words in run.output, run.output
    assert "1 error" in run.output.splitlines()[-1], run.output
    assert run.seconds < scaled(30), f"took {run.seconds:.1f} s"
    assert peer_processes(run.pid) == []
    report("broken_peer", peer=script[:-3], role=role, rule=rule, seconds=round(run.seconds, 1))


@pytest.mark.parametrize(
    ("script", "what"),
    [("no127_exit2.py", "it exited with status 2"), ("no127_ignores.py", "it was still running")],
)
def test_peer_without_exit_127_is_refused_once(tmp_path: Path, script: str, what: str) -> None:
    log = tmp_path / "starts.log"
    run = run_inner(
        tmp_path,
        ECHO_CASE,
        exec_peer(script),
        "--smux-roles=server",
        SMUXREF_TEST_PEER_LOG=str(log),
    )
    assert run.returncode == 1, run.output
    expected = f"CONTRACT.md rule 3: refusing peer exec:{script}: given the made-up option"
    # Both versions, one message each. Count in the error reports only: whether the short
    # summary repeats the message whole depends on the terminal width of the run.
    reports = run.output.split("short test summary info")[0]
    assert reports.count(expected) == 2, run.output
    assert what in run.output, run.output
    assert "must exit with status 127 at once" in run.output
    starts = log.read_text().splitlines() if log.exists() else []
    if script == "no127_exit2.py":  # the other one does not log
        assert len(starts) == 1, starts
        assert "--smux-made-up-option-" in starts[0]
    assert peer_processes(run.pid) == []


def test_exit_127_is_unsupported_not_failed(tmp_path: Path) -> None:
    run = run_inner(tmp_path, ECHO_CASE, exec_peer("v1_only.py"))
    assert run.returncode == 0, run.output
    assert "2 passed, 2 skipped" in run.output, run.output
    assert "unsupported: exec:v1_only.py does not support" in run.output
    assert "implements protocol version 1 only" in run.output
    assert peer_processes(run.pid) == []


def test_compliance_check_runs_once_per_run_under_xdist(tmp_path: Path) -> None:
    pytest.importorskip("xdist")
    log = tmp_path / "starts.log"
    cases = ECHO_CASE + "".join(
        textwrap.dedent(f"""

        def test_echo_{i}(raw_conn):
            test_echo(raw_conn)
        """)
        for i in range(3)
    )
    run = run_inner(
        tmp_path,
        cases,
        exec_peer("v1_only.py"),
        "--smux-version=1",
        "-n",
        "2",
        SMUXREF_TEST_PEER_LOG=str(log),
    )
    assert run.returncode == 0, run.output
    assert "8 passed" in run.output, run.output
    checks = [line for line in log.read_text().splitlines() if "--smux-made-up-option-" in line]
    assert len(checks) == 1, checks
    assert peer_processes(run.pid) == []


def test_passing_run_leaves_no_process(tmp_path: Path) -> None:
    run = run_inner(tmp_path, ECHO_CASE, "--peer=ref")
    assert run.returncode == 0, run.output
    assert "4 passed" in run.output, run.output
    assert peer_processes(run.pid) == []


def test_bad_peer_value_is_a_usage_error(tmp_path: Path) -> None:
    run = run_inner(tmp_path, ECHO_CASE, "--peer=nonsense")
    assert run.returncode == 4, run.output
    assert (
        "--peer='nonsense' is not one of: ref, go[@TAG], go-native[@TAG], rust-smux[@VERSION], "
        "async-smux[@VERSION]" in run.output
    )


LINGERING = """\
import pytest
from smuxref_conformance.cases.test_contract import test_client_exits
from smuxref_conformance.judge.case import case

@pytest.mark.roles("client")
@pytest.mark.versions(1)
@pytest.mark.parametrize("n", range(4))
@case("smux/10.1/x", title="x", spec="10.1", requirement="R.", level="must")
def test_case(raw_conn, smux_check, n):
    pass
"""


def test_client_that_never_exits_costs_one_result(tmp_path: Path) -> None:
    """Rule 8 is its own result (contract/8/...), judged once; the other client-role
    cases keep their verdicts and, once it is known, give the client a fraction of a
    second instead of the 5 s of the rule."""
    run = run_inner(
        tmp_path,
        LINGERING,
        exec_peer("lingering_client.py"),
        "--smux-version=1",
        "--smux-report-dir=out",
        "--durations=0",
    )
    assert run.returncode == 1, run.output
    rows = json.loads((tmp_path / "out" / "smux-results.json").read_text())["results"]
    verdicts = {r["case"] + r["variant"]: r["actual"] for r in rows}
    assert verdicts.pop("contract/8/client-exits-when-session-ends") == "fail", run.output
    assert set(verdicts.values()) == {"pass"}, run.output
    rule8 = next(r for r in rows if r["case"].startswith("contract/8/"))
    assert "CONTRACT.md rule 8" in rule8["message"], rule8["message"]
    assert "the client was still running" in rule8["message"], rule8["message"]
    durations = sorted(r["duration"] for r in rows if r["case"] == "smux/10.1/x")
    # The first client case may wait the whole rule-8 time; once the rule-8 case (or
    # that first wait) has judged the peer, each later one costs well under a second.
    assert durations[-2] < scaled(1.0), durations
    assert peer_processes(run.pid) == []


def test_keepalive_cases_retry_at_whole_seconds(tmp_path: Path) -> None:
    """A peer that refuses 100 ms keepalive values with 127 is tested at whole seconds,
    with the case's deadlines stretched alike, instead of being unsupported."""
    source = "from smuxref_conformance.cases.test_keepalive import test_nop_interval\n"
    run = run_inner(
        tmp_path,
        source,
        exec_peer("whole_seconds_ref.py"),
        "--smux-version=1",
        "--smux-roles=server",
        "--smux-report-dir=out",
    )
    assert run.returncode == 0, run.output
    row = json.loads((tmp_path / "out" / "smux-results.json").read_text())["results"][0]
    assert row["actual"] == "pass", row
    assert any("mean 0.9" in o or "mean 1.0" in o for o in row["observations"]), row
