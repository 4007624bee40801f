"""Peers that hang on connect, judged by the plugin: what test_plugin_contract.py leaves out.

A server that prints LISTENING and then never accepts (its listen backlog fills and
connects hang) or accepts and never answers, and a client that connects and then never
prints CONNECTED: each case that needs such a peer must end as an error naming the
CONTRACT.md rule, within the startup deadline; the run must go on with the next case
(the reference peer's cases, in the same run, pass); and no peer process may be left
running afterwards.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from plugin_harness import INNER_SCALE, exec_peer, peer_processes, run_inner, scaled
from reliability_support import report

from smuxref_conformance.deadlines import STARTUP

CASES = """\
import pytest

@pytest.mark.roles({role!r})
@pytest.mark.versions(1)
def test_first(raw_conn):
    pass

@pytest.mark.roles({role!r})
@pytest.mark.versions(1)
def test_second(raw_conn):
    pass
"""

HANGS = [
    ("listen_never_accept.py", "server", 5, "printed LISTENING, but no ECHO round trip on"),
    ("accept_never_answer.py", "server", 5, "printed LISTENING, but no ECHO round trip on"),
    ("connect_never_say.py", "client", 7, "no `CONNECTED` line on stdout within"),
]


@pytest.mark.parametrize(
    ("script", "role", "rule", "words"), HANGS, ids=[f"{h[0][:-3]}-{h[1]}" for h in HANGS]
)
def test_peer_hanging_on_connect_is_a_clear_error(
    tmp_path: Path, script: str, role: str, rule: int, words: str
) -> None:
    run = run_inner(
        tmp_path,
        CASES.format(role=role),
        exec_peer(script),
        "--peer=ref",
        "--smux-version=1",
        f"--smux-roles={role}",
        timeout=120,
    )
    summary = run.output.splitlines()[-1]
    assert run.returncode == 1, run.output
    # Each case of the hanging peer is an error citing the rule, not a failure or a hang.
    assert run.output.count(f"CONTRACT.md rule {rule}: ") >= 2, run.output
    assert words in run.output, run.output
    assert "2 errors" in summary, run.output
    assert "failed" not in summary, run.output
    # The run went on: the reference peer's cases ran and passed.
    assert "2 passed" in summary, run.output
    # Two startup deadlines (one per case) and the passing cases, with room to spare.
    assert run.seconds < 2 * STARTUP * INNER_SCALE + scaled(30), f"took {run.seconds:.1f} s"
    assert peer_processes(run.pid) == []
    report("hanging_peer", peer=script[:-3], role=role, rule=rule, seconds=round(run.seconds, 1))
