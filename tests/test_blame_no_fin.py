"""The waits for a FIN that end early once the gate's no-FIN rule decides the outcome.

A peer that sends no FIN at all used to make every case waiting for one wait out its
deadline (a full precision run of the reference peer's ``no-fin`` switch did not finish
in 45 minutes).  The rule (``judge.blame.blame_missing_fin``): the peer wrote on streams
whose FIN it owed - streams the suite finished, or ones that end on their own once their
data has all come (SOURCE, OPEN's line) - and sent no FIN on any stream; the gate then
blames any failure of the case on ``smux/10.4/fin-after-all-data``.  Each test here checks
one early end *and* that it stays out of the way of a peer that does send its FIN, late
or not: the rule must not fire without its evidence.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from smuxref import Cmd, Frame
from smuxref_conformance.deadlines import Deadline, scaled
from smuxref_conformance.errors import FrameTimeout
from smuxref_conformance.judge.blame import FIN_AFTER_DATA, blame_missing_fin
from smuxref_conformance.stateful.model import EchoSessionModel
from smuxref_conformance.stateful.peer_io import Side, wait_sides
from smuxref_conformance.wire import FIN_GIVE_UP, RawConnection

QUIET = max(scaled(FIN_GIVE_UP), FIN_GIVE_UP)
#: Seconds (before scaling) of a deadline a little beyond the quiet time: a wait that
#: must not end early runs to it and says "timeout".
SHORT = 1.5 * QUIET / scaled(1.0)


def _psh(sid: int, data: bytes) -> bytes:
    return Frame(2, Cmd.PSH, sid, data).encode()


def _fin(sid: int) -> bytes:
    return Frame(2, Cmd.FIN, sid).encode()


def _gives_up(conn: RawConnection, sid: int, fin_of: int | set[int]) -> float:
    """Wait (deadline 600 s) for the FIN of ``sid``; it must stop early saying why."""
    start = time.monotonic()
    with pytest.raises(FrameTimeout, match=r"stopped waiting: .* no FIN on any stream"):
        conn.expect_frame(lambda f: f.sid == sid and f.cmd == Cmd.FIN, 600, fin_of=fin_of)
    took = time.monotonic() - start
    assert QUIET <= took < QUIET + scaled(5.0)
    return took


def _runs_to_deadline(conn: RawConnection, sid: int, fin_of: int | set[int]) -> None:
    start = time.monotonic()
    with pytest.raises(FrameTimeout, match="timeout"):
        conn.expect_frame(lambda f: f.sid == sid and f.cmd == Cmd.FIN, SHORT, fin_of=fin_of)
    assert time.monotonic() - start >= 1.5 * QUIET


def test_source_fin_gives_up_only_once_all_its_data_came(
    wire: tuple[RawConnection, socket.socket],
) -> None:
    """A SOURCE stream ends on its own after its data: with 3 of its 5 bytes the peer may
    still be writing (a window, a slow writer), so the wait runs on; with all 5 and no
    FIN anywhere the wait ends after the quiet time, and the gate's rule agrees."""
    conn, peer = wire
    sid = conn.open_stream(b"SOURCE 5\n")
    conn.owe_fin(sid, 5)
    peer.sendall(_psh(sid, b"\x00\x01\x02"))
    _runs_to_deadline(conn, sid, sid)
    assert blame_missing_fin(conn.frames, conn.sent_frames(), conn.fin_owed) is None
    peer.sendall(_psh(sid, b"\x03\x04"))
    _gives_up(conn, sid, sid)
    found = blame_missing_fin(conn.frames, conn.sent_frames(), conn.fin_owed)
    assert found is not None
    assert found[0] == FIN_AFTER_DATA
    assert blame_missing_fin(conn.frames, conn.sent_frames()) is None  # needs fin_owed


def test_half_close_fin_gives_up_on_the_probe_evidence(
    wire: tuple[RawConnection, socket.socket],
) -> None:
    """HALFCLOSE's FIN comes without the suite's FIN and after no data: alone it is no
    evidence, so the wait runs on; once the FIN probe (an ECHO stream the suite
    finished) is echoed without FIN, the wait ends after the quiet time."""
    conn, peer = wire
    half = conn.open_stream(b"HALFCLOSE\n")
    conn.owe_fin(half)
    _runs_to_deadline(conn, half, half)
    probe = conn.open_stream(b"ECHO\nfin probe")
    conn.send_raw(_fin(probe))
    peer.sendall(_psh(probe, b"fin probe"))
    _gives_up(conn, half, half)


def test_a_late_fin_still_arrives_when_the_rule_does_not_hold(
    wire: tuple[RawConnection, socket.socket],
) -> None:
    """The probe answered with its FIN: the peer does send FINs, so a half-close FIN that
    comes after more than the quiet time, within the deadline, is still received; and a
    FIN that follows the echo within the quiet time is received on the no-FIN path too."""
    conn, peer = wire
    half = conn.open_stream(b"HALFCLOSE\n")
    conn.owe_fin(half)
    probe = conn.open_stream(b"ECHO\nfin probe")
    conn.send_raw(_fin(probe))
    peer.sendall(_psh(probe, b"fin probe") + _fin(probe))
    late = threading.Timer(1.5 * QUIET, peer.sendall, [_fin(half)])
    late.start()
    try:
        frame = conn.expect_frame(lambda f: f.sid == half and f.cmd == Cmd.FIN, 600, fin_of=half)
    finally:
        late.join()
    assert frame == Frame(2, Cmd.FIN, half)
    assert conn.gave_up is None
    echo = conn.open_stream(b"ECHO\nabc")
    conn.send_raw(_fin(echo))
    peer.sendall(_psh(echo, b"abc"))
    soon = threading.Timer(QUIET / 2, peer.sendall, [_fin(echo)])
    soon.start()
    try:
        assert conn.read_stream(echo, 600) == b"abc"
    finally:
        soon.join()


def test_fin_of_many_streams(wire: tuple[RawConnection, socket.socket]) -> None:
    """A wait for the FINs of many finished streams (the thousand-stream echo) ends early
    like one for a single stream; a wait for the FIN of a stream the peer does not owe
    one on yet (the suite has not finished it) does not."""
    conn, peer = wire
    sids = {conn.open_stream(b"ECHO\nx") for _ in range(3)}
    conn.send_raw(b"".join(_fin(s) for s in sorted(sids)))
    peer.sendall(b"".join(_psh(s, b"x") for s in sorted(sids)))
    open_echo = conn.open_stream(b"ECHO\n")
    _gives_up(conn, max(sids), sids)
    _runs_to_deadline(conn, open_echo, open_echo)


class _Target:
    """A stand-in for the pooled server (wait_sides never calls it)."""

    label = "fake"


def _side(conn: RawConnection, sids: list[int]) -> Side:
    """A side whose model has ECHO streams ``sids``, each sent ``hi`` and FIN."""
    model = EchoSessionModel(2)
    for sid in sids:
        model.sent_open(sid, b"ECHO\n")
        model.sent_data(sid, b"hi")
        model.sent_fin(sid)
        conn.send_raw(Frame(2, Cmd.SYN, sid).encode() + _psh(sid, b"ECHO\nhi") + _fin(sid))
    return Side(_Target(), conn, model)  # type: ignore[arg-type]


def _complete(side: Side) -> bool:
    return side.settled or all(s.complete for s in side.model.streams.values())


def test_wait_sides_for_fin(wire: tuple[RawConnection, socket.socket]) -> None:
    """The session model's last wait, for every stream's echo and FIN: a side that echoed
    without any FIN ends it after the quiet time (its missing FIN is then the model's
    violation), not at its deadline; without ``for_fin`` the wait runs to its deadline."""
    conn, peer = wire
    side = _side(conn, [1])
    peer.sendall(_psh(1, b"hi"))
    start = time.monotonic()
    wait_sides([side], _complete, Deadline(600), for_fin=True)
    assert QUIET <= time.monotonic() - start < QUIET + scaled(5.0)
    assert not _complete(side)
    assert side.model.streams[1].received == b"hi"
    start = time.monotonic()
    wait_sides([side], _complete, Deadline(SHORT))
    assert time.monotonic() - start >= 1.5 * QUIET


def test_wait_sides_for_fin_keeps_waiting_for_a_late_fin() -> None:
    """A side that sent a FIN on one stream does send FINs: its FIN on the other stream,
    later than the quiet time but within the deadline, completes the model."""
    ours, theirs = socket.socketpair()
    conn = RawConnection(ours, 2, peer="fake", peer_role="server")
    try:
        side = _side(conn, [1, 3])
        theirs.sendall(_psh(1, b"hi") + _fin(1) + _psh(3, b"hi"))
        late = threading.Timer(1.5 * QUIET, theirs.sendall, [_fin(3)])
        late.start()
        try:
            wait_sides([side], _complete, Deadline(600), for_fin=True)
        finally:
            late.join()
        assert _complete(side)
        assert not side.violations
    finally:
        conn.close()
        theirs.close()
