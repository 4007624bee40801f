"""Blame precision (smuxref_conformance.precision): each bug switch fails only its own cases.

The whole table (README.md) takes a suite run per switch; here the judging is checked,
the switch list is kept in step with smuxref_conformance.bugs, and one switch runs through a
bounded selection of cases in both roles.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

import pytest

from smuxref_conformance.bugs import BUGS
from smuxref_conformance.precision import TARGETS, bug_peer, judge, measure, run_suite, table


def test_every_switch_has_targets() -> None:
    assert set(TARGETS) == set(BUGS)


def test_judge_sorts_catches_strays_and_blame() -> None:
    def row(
        case: str, actual: str, blame: str | None = None, role: str = "server"
    ) -> dict[str, object]:
        return {"case": case, "actual": actual, "version": 1, "role": role, "blame": blame}

    fin_case = "smux/10.4/fin-after-all-data"
    rows = [
        row(fin_case, "fail"),
        row(fin_case, "pass", role="client"),
        row("smux/10.2/write-after-peer-fin", "inconclusive", fin_case),
        row("smux/5.4/duplicate-syn-ignored", "inconclusive", "smux/4.1/version-on-nop"),
        # names a targeted case, but one that passed for the client: the blame hides
        row("smux/10.2/interop-sink", "inconclusive", fin_case, role="client"),
        row("smux/10.3/data-after-fin-delivered", "fail"),
        # a failed SHOULD outside the targets misleads like a failed MUST
        row("smux/9.2/upd-every-half-buffer", "non_strict"),
        row("smux/11/interop-exit", "pass"),
    ]
    line = judge("no-fin", rows)
    assert line.caught == ["smux/10.4/fin-after-all-data v1 server: fail"]
    assert line.stray == [
        "smux/10.3/data-after-fin-delivered v1 server: fail",
        "smux/9.2/upd-every-half-buffer v1 server: non_strict",
    ]
    assert line.inconclusive == 3
    assert len(line.misblamed) == 2
    assert "which did not fail" in line.misblamed[1]
    assert not line.ok


def test_judge_follows_a_chain_of_inconclusive_prerequisites() -> None:
    """A client's setup echo relies on interop-one-stream, which is itself inconclusive
    naming the frame-format case that failed: the blame is right, through the chain;
    a chain that ends at a passing case is not."""

    def row(case: str, actual: str, blame: str | None = None) -> dict[str, object]:
        return {"case": case, "actual": actual, "version": 1, "role": "client", "blame": blame}

    fmt, echo = "smux/4.1/version-on-syn-psh-fin", "smux/10.1/interop-one-stream"
    exits = "contract/8/client-exits-after-exit-with-new-stream"
    chain = [row(fmt, "fail"), row(echo, "inconclusive", fmt), row(exits, "inconclusive", echo)]
    assert judge("len-big-endian", chain).misblamed == []
    to_a_pass = [row(fmt, "pass"), *chain[1:]]
    assert len(judge("len-big-endian", to_a_pass).misblamed) == 2
    loop = [row(echo, "inconclusive", exits), row(exits, "inconclusive", echo)]
    assert len(judge("len-big-endian", loop).misblamed) == 2


#: A bounded piece of the README's table, run on every CI run: the switch that breaks
#: the most cases at once (a LEN in the wrong byte order desynchronises every frame
#: after the first PSH), on the cases that read the peer's frames in most ways.
BOUNDED: Final = (
    "len-big-endian",
    "version_on_stream or fin_after_all_data or (test_sink and 65535B) or test_one_stream",
)


def test_one_defect_fails_only_its_cases() -> None:
    bug, selection = BOUNDED
    scale = os.environ.get("SMUX_TIMEOUT_SCALE") or "1"
    (line,) = measure(
        [bug],
        ["-k", selection, "--smux-version=1", f"--smux-timeout-scale={scale}", "-p", "no:xdist"],
    )
    assert line.caught, line
    assert not line.stray, line
    assert not line.misblamed, line
    assert line.inconclusive > 0, line
    print(table([line]))


#: switch -> (test functions, each case's verdict and blame in v1, server role): where a
#: case relied on what another case tests without saying so.
BLAME_NAMED: Final = {
    # PSH routed by the latest SYN: the thousand streams (their PSHs all follow their
    # SYNs) catch it; the 4.6 case's probe goes to an ECHO stream while a later HOLD
    # stream is open.  (The multiplexing case itself takes its full deadline here.)
    "psh-current-stream": (
        "test_thousand_streams or test_frames_before_error",
        {
            "smux/5.4/thousand-streams": ("fail", None),
            "smux/4.6/frames-before-error-processed": (
                "inconclusive",
                "smux/2.1/interop-100-streams",
            ),
        },
    ),
    # No receive limit: the bad header is read at once and the probe's echo is lost.
    "no-receive-buffer-limit": (
        "test_frames_before_error",
        {
            "smux/4.6/frames-before-error-processed": (
                "inconclusive",
                "smux/8.2/stop-reading-at-limit",
            )
        },
    ),
    # No NOP at all: the stream id of NOPs cannot be judged.
    "no-keepalive": (
        "test_nop_sid_zero",
        {"smux/5.3/nop-sid-zero": ("inconclusive", "smux/7.1/nop-interval")},
    ),
}


@pytest.mark.parametrize("bug", sorted(BLAME_NAMED))
def test_a_case_names_what_it_relies_on(bug: str, tmp_path: Path) -> None:
    """A should-level case whose setup a switch breaks is inconclusive naming the case
    that tests the setup, instead of failing a SHOULD the peer meets."""
    selection, expected = BLAME_NAMED[bug]
    scale = os.environ.get("SMUX_TIMEOUT_SCALE") or "1"
    args = ["-k", selection, "--smux-version=1", "--smux-roles=server"]
    run = run_suite(
        bug_peer(bug), [*args, f"--smux-timeout-scale={scale}", "-p", "no:xdist"], tmp_path
    )
    got = {r["case"]: (r["actual"], r.get("blame")) for r in run.results}
    assert got == expected, run.describe()
