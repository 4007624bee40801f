"""Pairwise interop (smuxref_conformance.pairwise): the frame judge names the side that broke
a rule.

Unit checks feed the judge hand-made transcripts, each breaking one rule on one side; the
run checks put smuxref's own peer on both sides (it must pass, every exchange checked by
SHA-256) and then a server with a deliberate bug (it must fail, blaming the server, with
the frame that shows it).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from smuxref import Cmd, Frame, Upd
from smuxref_conformance.deadlines import set_scale
from smuxref_conformance.pairwise.exchanges import check_exchanges
from smuxref_conformance.pairwise.judge import judge_frames
from smuxref_conformance.pairwise.runner import _early_ends, run_pair
from smuxref_conformance.peers.pool import PeerPool
from smuxref_conformance.peers.run_context import RunContext
from smuxref_conformance.peers.specs import parse_peer
from smuxref_conformance.recording.transcript import Transcript

SCALE = float(os.environ.get("SMUX_TIMEOUT_SCALE") or "1")


def _transcript(*frames: tuple[str, Frame]) -> Transcript:
    """Each frame one read of its direction, in the given global order."""
    t = Transcript()
    for i, (direction, frame) in enumerate(frames):
        t.add(direction, i / 1000, frame.encode())  # type: ignore[arg-type]
    return t


def _sections(t: Transcript, version: int) -> list[tuple[str, str]]:
    findings, _ = judge_frames(t, version)
    return [(f.side, f.section) for f in findings]


def test_clean_exchange_has_no_findings() -> None:
    t = _transcript(
        ("c2s", Frame(2, Cmd.SYN, 3)),
        ("c2s", Frame(2, Cmd.PSH, 3, b"ECHO\nab")),
        ("s2c", Frame(2, Cmd.UPD, 3, Upd(7, 65536).encode())),
        ("s2c", Frame(2, Cmd.PSH, 3, b"ab")),
        ("c2s", Frame(2, Cmd.FIN, 3)),
        ("s2c", Frame(2, Cmd.FIN, 3)),
    )
    assert _sections(t, 2) == []


def test_wrong_version_byte_blames_its_sender() -> None:
    t = _transcript(
        ("c2s", Frame(2, Cmd.SYN, 3)),
        ("s2c", Frame(1, Cmd.PSH, 3, b"x")),
        ("s2c", Frame(1, Cmd.PSH, 3, b"y")),
    )
    findings, _ = judge_frames(t, 2)
    assert [(f.side, f.section, f.repeats) for f in findings] == [("server", "4.1", 1)]


def test_data_before_syn_and_after_fin() -> None:
    t = _transcript(
        ("s2c", Frame(1, Cmd.PSH, 5, b"early")),
        ("c2s", Frame(1, Cmd.SYN, 3)),
        ("c2s", Frame(1, Cmd.FIN, 3)),
        ("c2s", Frame(1, Cmd.PSH, 3, b"late")),
    )
    assert _sections(t, 1) == [("server", "10.1"), ("client", "10.3")]


def test_syn_parity_and_upd_in_v1() -> None:
    t = _transcript(
        ("s2c", Frame(1, Cmd.SYN, 3)),
        ("c2s", Frame(1, Cmd.UPD, 3, Upd(0, 1).encode())),
    )
    assert _sections(t, 1) == [("server", "5.1"), ("client", "4.2")]


def test_window_counts_only_updates_forwarded_before_the_data() -> None:
    """262144 bytes fit the initial window; one more byte does not, unless an UPD came first."""
    big = b"\0" * 65535
    frames: list[tuple[str, Frame]] = [("c2s", Frame(2, Cmd.SYN, 3))]
    frames += [("c2s", Frame(2, Cmd.PSH, 3, big))] * 4 + [("c2s", Frame(2, Cmd.PSH, 3, b"1234"))]
    assert _sections(_transcript(*frames), 2) == []
    over = [*frames, ("c2s", Frame(2, Cmd.PSH, 3, b"5"))]
    assert _sections(_transcript(*over), 2) == [("client", "9.3")]
    opened = [*frames, ("s2c", Frame(2, Cmd.UPD, 3, Upd(1000, 262144).encode()))]
    opened += [("c2s", Frame(2, Cmd.PSH, 3, b"5"))]
    assert _sections(_transcript(*opened), 2) == []


def test_upd_acknowledging_unsent_bytes() -> None:
    t = _transcript(
        ("c2s", Frame(2, Cmd.SYN, 3)),
        ("c2s", Frame(2, Cmd.PSH, 3, b"abc")),
        ("s2c", Frame(2, Cmd.UPD, 3, Upd(4, 65536).encode())),
    )
    assert _sections(t, 2) == [("server", "9.4")]


def test_exchange_reply_is_checked_by_content() -> None:
    """A SINK whose reply names the wrong hash blames the server, not the client."""
    request = b"SINK\n" + bytes(range(10))
    t = _transcript(
        ("c2s", Frame(1, Cmd.SYN, 1)),
        ("c2s", Frame(1, Cmd.PSH, 1, request)),
        ("c2s", Frame(1, Cmd.FIN, 1)),
        ("s2c", Frame(1, Cmd.PSH, 1, b"10 " + b"0" * 64 + b"\n")),
        ("s2c", Frame(1, Cmd.FIN, 1)),
    )
    _, frames = judge_frames(t, 1)
    findings, ok = check_exchanges(frames, ["10:SINK"], ["RAN 1 67 x"], 1)
    assert ok == 0
    assert [(f.side, f.section) for f in findings] == [("server", "rules 10-13")]


@pytest.fixture
def pool() -> Iterator[PeerPool]:
    set_scale(SCALE)
    run = RunContext.create(None)
    pool = PeerPool(run)
    yield pool
    pool.close()
    run.remove()


def test_ref_against_ref_passes(pool: PeerPool, tmp_path: Path) -> None:
    for version in (1, 2):
        result = run_pair(pool, parse_peer("ref"), parse_peer("ref"), version, tmp_path)
        assert result.verdict == "pass", result.to_json()
        assert result.exchanges_ok == result.exchanges == 5
        assert (tmp_path / result.pcap).stat().st_size > 0
        assert "RAN" in (tmp_path / result.transcript).read_text()


def test_buggy_server_is_named_with_its_frame(pool: PeerPool, tmp_path: Path) -> None:
    buggy = parse_peer(f"exec:{sys.executable} -m smuxref_conformance.bugs --bug fin-wrong-version")
    result = run_pair(pool, parse_peer("ref"), buggy, 2, tmp_path)
    assert result.verdict == "fail"
    assert result.at_fault == "server"
    first = result.findings[0]
    assert (first.side, first.section) == ("server", "4.1")
    assert first.frames[-1].frame.cmd == Cmd.FIN
    assert first.frames[-1].frame.version == 1


def test_a_silent_side_is_blamed_for_the_keepalive_close() -> None:
    """A client that closes after 30 s without a frame from the server did its job (7.2)."""
    t = Transcript()
    t.add("c2s", 0.0, Frame(1, Cmd.SYN, 3).encode())
    t.add("s2c", 0.1, Frame(1, Cmd.NOP, 0).encode())
    t.end("c2s", 31.0)
    t.end("s2c", 31.1)
    _, frames = judge_frames(t, 1)
    findings = _early_ends(t, frames, ("c2s", "s2c"))
    assert [(f.side, f.section) for f in findings] == [("server", "7.1")]
    quick = Transcript()
    quick.add("c2s", 0.0, Frame(1, Cmd.SYN, 3).encode())
    quick.add("s2c", 0.1, Frame(1, Cmd.NOP, 0).encode())
    quick.end("s2c", 0.2, "rst")
    quick.end("c2s", 0.3)
    _, frames = judge_frames(quick, 1)
    found = _early_ends(quick, frames, ("c2s", "s2c"))
    assert [(f.side, f.section) for f in found] == [("server", "11")]
