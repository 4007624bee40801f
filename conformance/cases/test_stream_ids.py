"""SPEC.md 5.4, 5.5, 8.3 and 10.3: stream ids as the peer receives them.

The ids the peer allocates (5.1) are in test_id_allocation.py.

* Receiving SYN (5.4): a duplicate SYN is ignored and leaves the stream working; SYNs
  with the peer's parity up to the highest id are accepted (MUST), with the receiver's
  own parity or id 0 too (SHOULD); an id is reusable once its stream is gone; a thousand
  SYNs in one write all open streams, and 1100 held open do not stop the reading (8.3).
* Frames for unknown ids (5.5) - never opened, or closed by both FINs - are dropped
  without an answer, and a discarded PSH does not use up the receive buffer.
* Data after FIN (10.3) is not a protocol error, and should reach the application.
"""

from __future__ import annotations

from typing import Final

import pytest

from smuxref import Cmd
from smuxref_conformance.deadlines import Deadline
from smuxref_conformance.errors import WireAssertion
from smuxref_conformance.judge.blame import FIN_AFTER_DATA
from smuxref_conformance.judge.case import case
from smuxref_conformance.judge.checks import SmuxCheck
from smuxref_conformance.peers.cmdline import Role
from smuxref_conformance.wire import RawConnection

from ._helpers import (
    MULTIPLEX_CASE,
    collect,
    echo_round_trip,
    fin,
    frames_for,
    half_close,
    hold_abc_fin_then,
    payload,
    psh,
    quiet_for,
    sha256,
    syn,
    upd,
)

_DUPLICATE: Final = (
    "A duplicate SYN MUST NOT create a second stream, MUST NOT reset the existing one, and is "
    "not a protocol error."
)
_PEER_PARITY: Final = "A receiver MUST accept a SYN whose id has the peer's parity."
_OWN_PARITY: Final = (
    "A receiver SHOULD accept a SYN whose id has its own parity, and a SYN for id 0."
)
_REUSE: Final = (
    "A SYN for an id whose stream was closed and removed creates a new stream with that id."
)
_NEW_STREAM: Final = (
    "A SYN for an id that has no stream in the session creates a stream with that id."
)
_UNKNOWN_PSH: Final = "A receiver MUST read and discard the payload of a PSH for an unknown id."
_UNKNOWN_FIN: Final = "A receiver MUST ignore a FIN for an unknown id."
_UNKNOWN_UPD: Final = "A receiver MUST read and ignore a UPD for an unknown id."
_NOT_COUNTED: Final = (
    "Discarded PSH payload MUST NOT count against the session-wide receive buffer (8.1)."
)
_AFTER_FIN_OK: Final = (
    "A receiver MUST NOT treat a PSH that arrives after the peer's FIN as a protocol error."
)
_AFTER_FIN_DELIVERED: Final = "A receiver SHOULD deliver such data to the application, as Go does."


# -- 5.4 receiving SYN ---------------------------------------------------------------------
@case(
    "smux/5.4/duplicate-syn-ignored",
    title="A second SYN for an open stream is ignored; the stream keeps working",
    spec="5.4",
    requirement=_DUPLICATE,
    level="must",
)
def test_duplicate_syn(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """ECHO stream echoes ``one``; a SYN for the same id, then ``two``: the same stream
    must echo ``two`` (a new stream would take ``two`` as its command line)."""
    sid = raw_conn.open_stream(b"ECHO\n")
    first = echo_round_trip(raw_conn, sid, b"one")
    raw_conn.send_raw(syn(raw_conn, sid))
    second = echo_round_trip(raw_conn, sid, b"two")
    raw_conn.send_raw(fin(raw_conn, sid))
    rest, fin_seen = collect(raw_conn, sid, 1 << 16)
    smux_check.expect(
        (first, second, rest, fin_seen) == (b"one", b"two", b"", True),
        expected="'one' and 'two' echoed on the same stream, then one FIN",
        actual=f"{first!r}, {second!r}, then {rest!r} and {'FIN' if fin_seen else 'no FIN'}",
    )
    fins = frames_for(raw_conn, sid, [Cmd.FIN])
    smux_check.expect(
        len(fins) == 1,
        expected="a single FIN: the duplicate SYN did not reset or replace the stream",
        actual=f"{len(fins)} FIN frames on stream {sid}",
    )


@case(
    "smux/5.4/duplicate-syn-after-fin-ignored",
    title="A second SYN after the remote's FIN leaves the half-closed stream working",
    spec="5.4",
    requirement=_DUPLICATE,
    level="must",
)
def test_duplicate_syn_after_fin(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """HOLD 200 ms, ``abc``, the suite's FIN and a second SYN for the stream, in one write:
    the SYN meets a stream the remote has finished but the peer has not (it still owes
    SINK's reply).  Ignored, it leaves that stream as it was, and the reply counts
    ``abc``; a SYN that closed or replaced the stream would lose the reply."""
    sid = hold_abc_fin_then(raw_conn, lambda sid: syn(raw_conn, sid))
    reply, fin_seen = collect(raw_conn, sid, 1 << 16)
    want = f"3 {sha256(b'abc')}\n".encode()
    smux_check.expect(
        (reply, fin_seen) == (want, True),
        expected=f"SINK reply {want!r}, then FIN: the second SYN changed nothing",
        actual=(repr(reply) if reply else "no reply")
        + f", {'FIN' if fin_seen else 'no FIN'}; connection closed: {raw_conn.closed}",
    )
    fins = frames_for(raw_conn, sid, [Cmd.FIN])
    smux_check.expect(
        len(fins) == 1,
        expected="a single FIN: the second SYN did not open another stream on the id",
        actual=f"{len(fins)} FIN frames on stream {sid}",
    )


def _echo_on(conn: RawConnection, check: SmuxCheck, sid: int, what: str) -> None:
    """Open ``sid`` as an ECHO stream, expect ``ping`` back and a FIN after ours."""
    conn.send_raw(syn(conn, sid) + psh(conn, sid, b"ECHO\nping") + fin(conn, sid))
    got, fin_seen = collect(conn, sid, 1 << 16)
    no_fin = None if fin_seen or got != b"ping" else conn.no_fin_decided()
    check.require(
        no_fin is None,
        prerequisite=FIN_AFTER_DATA,
        what="the peer's FIN after the echo",
        actual=f"none; {no_fin}",
    )
    check.expect(
        (got, fin_seen) == (b"ping", True),
        expected=f"a stream opened with {what} ({sid:#x}) echoes 'ping', then FIN",
        actual=f"{got!r}, {'FIN' if fin_seen else 'no FIN'}; connection closed: {conn.closed}",
    )


def _peer_parity_top(role: Role) -> int:
    """The highest id with the *suite's* parity (the peer's peer)."""
    return 0xFFFFFFFF if role == "server" else 0xFFFFFFFE


@case(
    "smux/5.4/syn-highest-id",
    title="A SYN for the highest id of the opener's parity opens a stream",
    spec="5.4",
    requirement=_PEER_PARITY,
    level="must",
)
def test_syn_highest_id(raw_conn: RawConnection, smux_check: SmuxCheck, role: Role) -> None:
    """SYN 0xFFFFFFFF (the suite is the client) or 0xFFFFFFFE (the suite is the server)."""
    _echo_on(raw_conn, smux_check, _peer_parity_top(role), "the highest id of our parity")


@case(
    "smux/5.4/syn-own-parity",
    title="A SYN with the receiver's own parity is accepted",
    spec="5.4",
    requirement=_OWN_PARITY,
    level="should",
)
def test_syn_own_parity(raw_conn: RawConnection, smux_check: SmuxCheck, role: Role) -> None:
    """SYN 1000 to a server peer, 1001 to a client peer: ids the peer itself would open."""
    _echo_on(raw_conn, smux_check, 1000 if role == "server" else 1001, "the peer's own parity")


@case(
    "smux/5.4/syn-id-0",
    title="A SYN for id 0 is accepted",
    spec="5.4",
    requirement=_OWN_PARITY,
    level="should",
)
def test_syn_id_0(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """SYN 0, an ECHO round trip, FIN."""
    _echo_on(raw_conn, smux_check, 0, "id 0")


@case(
    "smux/5.4/syn-reuses-closed-id",
    title="An id is usable again once its stream was closed by both sides",
    spec="5.4",
    requirement=_REUSE,
    level="must",
)
def test_syn_reuses_closed_id(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """An ECHO stream runs to both FINs; after a round trip on another stream (the peer
    has certainly removed it by then) the same id opens a new ECHO stream."""
    sid = raw_conn.next_sid()
    _echo_on(raw_conn, smux_check, sid, "a fresh id")
    other = raw_conn.open_stream(b"ECHO\n")
    echo_round_trip(raw_conn, other, b"barrier")
    _echo_on(raw_conn, smux_check, sid, "the id of the closed stream")


@case(
    "smux/5.4/thousand-streams",
    title="A thousand SYNs and ECHO commands in one write open a thousand streams",
    spec="5.4",
    requirement=_NEW_STREAM,
    level="must",
)
def test_thousand_streams(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """1000 SYNs, then each stream's ``ECHO`` and 16 own bytes in reverse order, then
    1000 FINs, coalesced into one write (below the 1024-stream accept backlog); every
    stream must echo exactly its bytes, then FIN.

    The PSHs come after all the SYNs, last stream first, so a receiver that routes data by
    anything but the frame's id (the most recent SYN, say) crosses the streams."""
    sids = [raw_conn.next_sid() for _ in range(1000)]
    data = {sid: payload(sid, 16) for sid in sids}
    raw_conn.send_raw(
        b"".join(syn(raw_conn, s) for s in sids)
        + b"".join(psh(raw_conn, s, b"ECHO\n" + data[s]) for s in reversed(sids))
        + b"".join(fin(raw_conn, s) for s in sids),
        timeout=20.0,
    )
    got: dict[int, bytes] = dict.fromkeys(sids, b"")
    open_sids = set(sids)
    deadline = Deadline(20.0)
    try:
        while open_sids:
            frame = raw_conn.expect_frame(
                lambda f: f.sid in open_sids and f.cmd in (Cmd.PSH, Cmd.FIN),
                deadline,
                what="echoes of the 1000 streams",
                fin_of=open_sids,
            )
            if frame.cmd == Cmd.FIN:
                open_sids.discard(frame.sid)
            else:
                got[frame.sid] += frame.data
    except WireAssertion:
        pass
    wrong = [s for s in sids if got[s] != data[s] or s in open_sids]
    # Data crossed between streams shows as one stream echoing far more than its own.
    most = max(sids, key=lambda s: len(got[s]))
    smux_check.expect(
        not wrong,
        expected="each of the 1000 streams echoes its own 16 bytes, then FIN",
        actual=f"{len(wrong)} streams differ or did not end, e.g. "
        + ", ".join(f"{s}: {got[s]!r}{' (no FIN)' if s in open_sids else ''}" for s in wrong[:5])
        + (f"; stream {most} echoed {len(got[most])} bytes" if len(got[most]) > 16 else ""),
    )


_RESUME: Final = (
    "A receiver MUST resume reading as soon as its unread data falls below MaxReceiveBuffer."
)
#: Streams held open at once by smux/8.3/many-open-streams-keep-reading: more than Go's
#: and smuxref's accept backlog of 1024, all accepted.
HELD_OPEN: Final = 1100


@case(
    "smux/8.3/many-open-streams-keep-reading",
    title="1100 accepted streams held open do not stop the session's reading",
    spec="8.3",
    requirement=_RESUME,
    level="must",
    relies_on=(MULTIPLEX_CASE,),
)
def test_many_open_streams_keep_reading(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """1100 ECHO streams opened in one write and left open (no FIN), each echoing one
    byte, then a new ECHO stream: it must echo.  Every stream has been accepted and has
    no unread data, so neither the receive buffer (8.2) nor a full accept queue (5.4,
    3.3: Go's and smuxref's backlog of 1024) lets the peer stop reading; one that counts
    open streams as waiting for accept stops at the 1025th and never reads again."""
    sids = [raw_conn.next_sid() for _ in range(HELD_OPEN)]
    raw_conn.send_raw(
        b"".join(syn(raw_conn, s) + psh(raw_conn, s, b"ECHO\nx") for s in sids), timeout=20.0
    )
    echoed: set[int] = set()
    pending = set(sids)
    deadline = Deadline(20.0)
    with smux_check.relying_on(MULTIPLEX_CASE, f"{HELD_OPEN} echo streams"):
        while len(echoed) < 1024:
            frame = raw_conn.expect_frame(
                lambda f: f.sid in pending and f.cmd == Cmd.PSH,
                deadline,
                what=f"the echoes of {HELD_OPEN} streams",
            )
            echoed.add(frame.sid)
            pending.discard(frame.sid)
    probe = raw_conn.open_stream(b"ECHO\n")
    got = echo_round_trip(raw_conn, probe, b"ping", 10.0)
    smux_check.expect(
        got == b"ping",
        expected=f"a new ECHO stream echoes 'ping' while {HELD_OPEN} accepted streams are open",
        actual=f"{got!r}; {len(echoed)} of the {HELD_OPEN} held streams had echoed; "
        f"connection closed: {raw_conn.closed}",
    )


# -- 5.5 frames for unknown ids ------------------------------------------------------------
def _unknown_id(conn: RawConnection, check: SmuxCheck, target: str) -> int:
    """An id with no stream: never opened, or an ECHO stream closed by both FINs."""
    sid = conn.next_sid()
    if target == "closed":
        _echo_on(conn, check, sid, "a fresh id")
    return sid


def _check_dropped(conn: RawConnection, check: SmuxCheck, sid: int, frames_before: int) -> None:
    """The session still serves, and nothing came back on ``sid`` after the frame."""
    check.alive()
    quiet_for(conn, 0.1, lambda f: f.sid == sid)
    answers = [f for f in conn.frames[frames_before:] if f.sid == sid]
    check.expect(
        not answers,
        expected=f"no frame answers the frame for unknown stream {sid} (5.5)",
        actual=f"{answers}",
    )


TARGETS: Final = ("never-opened", "closed")


@case(
    "smux/5.5/psh-unknown-id",
    title="A PSH for an unknown id is read and dropped",
    spec="5.5",
    requirement=_UNKNOWN_PSH,
    level="must",
)
@pytest.mark.parametrize("target", TARGETS)
def test_psh_unknown_id(raw_conn: RawConnection, smux_check: SmuxCheck, target: str) -> None:
    """PSH with 1000 bytes for an id with no stream; the next frames still parse."""
    sid = _unknown_id(raw_conn, smux_check, target)
    before = len(raw_conn.frames)
    raw_conn.send_raw(psh(raw_conn, sid, b"ECHO\n" + payload(55, 995)))
    _check_dropped(raw_conn, smux_check, sid, before)


@case(
    "smux/5.5/fin-unknown-id",
    title="A FIN for an unknown id is ignored",
    spec="5.5",
    requirement=_UNKNOWN_FIN,
    level="must",
)
@pytest.mark.parametrize("target", TARGETS)
def test_fin_unknown_id(raw_conn: RawConnection, smux_check: SmuxCheck, target: str) -> None:
    """FIN for an id with no stream."""
    sid = _unknown_id(raw_conn, smux_check, target)
    before = len(raw_conn.frames)
    raw_conn.send_raw(fin(raw_conn, sid))
    _check_dropped(raw_conn, smux_check, sid, before)


@case(
    "smux/5.5/upd-unknown-id",
    title="A UPD for an unknown id is read and ignored",
    spec="5.5",
    requirement=_UNKNOWN_UPD,
    level="must",
    versions=(2,),
)
@pytest.mark.parametrize("target", TARGETS)
def test_upd_unknown_id(raw_conn: RawConnection, smux_check: SmuxCheck, target: str) -> None:
    """UPD (consumed 0, window 65536) for an id with no stream."""
    sid = _unknown_id(raw_conn, smux_check, target)
    before = len(raw_conn.frames)
    raw_conn.send_raw(upd(raw_conn, sid, 0, 65536))
    _check_dropped(raw_conn, smux_check, sid, before)


@case(
    "smux/5.5/unknown-psh-not-counted",
    title="PSH dropped for unknown ids does not fill the receive buffer",
    spec="5.5",
    requirement=_NOT_COUNTED,
    level="must",
)
@pytest.mark.peer_config(max_receive_buffer=65536)
def test_unknown_psh_not_counted(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """MaxReceiveBuffer 65536; five PSH of 60000 bytes for an unknown id (more than four
    times the buffer); had they been counted, the peer would stop reading and the probe
    would fail.  (60000, not 65535: v1.0.7 crashes on frames above 65527 bytes, and this
    case is about the accounting.)"""
    sid = raw_conn.next_sid()
    before = len(raw_conn.frames)
    raw_conn.send_raw(b"".join(psh(raw_conn, sid, payload(i, 60000)) for i in range(5)))
    _check_dropped(raw_conn, smux_check, sid, before)


# -- 10.3 data after FIN -------------------------------------------------------------------
def _data_after_fin(conn: RawConnection) -> int:
    """``HOLD``, ``abc``, FIN, ``def`` in one write: all of it waits in the peer's buffer
    while HOLD reads nothing, then SINK reads what is there."""
    return hold_abc_fin_then(conn, b"def")


@case(
    "smux/10.3/data-after-fin-not-error",
    title="A PSH after the FIN of its stream is not a protocol error",
    spec="10.3",
    requirement=_AFTER_FIN_OK,
    level="must",
)
def test_data_after_fin_not_error(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """Data after FIN on a HOLD stream; the session must go on serving."""
    _data_after_fin(raw_conn)
    smux_check.alive()


@case(
    "smux/10.3/data-after-both-fins-not-error",
    title="PSH frames after both FINs of a stream that still holds unread data are no error",
    spec="10.3",
    requirement=_AFTER_FIN_OK,
    level="must",
    relies_on=(FIN_AFTER_DATA,),
)
def test_data_after_both_fins_not_error(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """``HALFCLOSE`` (rule 19: the peer sends FIN and reads nothing until RESULT), then
    ``abc``, FIN, an empty PSH, ``def`` and in version 2 a UPD: both FINs are exchanged
    while ``abc`` is still unread, so the peer still tracks a stream finished both ways
    when the last frames arrive (the state smux/10.3/data-after-fin-not-error does not
    reach).  The session must go on serving."""
    sid, first, fin_seen = half_close(raw_conn, smux_check)
    smux_check.expect(
        (first, fin_seen) == (b"", True),
        expected="the peer's FIN at once, with no data before it (the half-close)",
        actual=f"{first!r}, then {'FIN' if fin_seen else 'no FIN'}",
    )
    raw_conn.send_raw(
        psh(raw_conn, sid, b"abc")
        + fin(raw_conn, sid)
        + psh(raw_conn, sid, b"")
        + psh(raw_conn, sid, b"def")
        + (upd(raw_conn, sid, 0, 262144) if raw_conn.version == 2 else b"")
    )
    smux_check.alive()


@case(
    "smux/10.3/data-after-fin-delivered",
    title="Data after FIN reaches the application",
    spec="10.3",
    requirement=_AFTER_FIN_DELIVERED,
    level="should",
)
def test_data_after_fin_delivered(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """HOLD 200 ms, ``abc``, FIN, ``def``: when SINK reads, all six bytes are buffered;
    the reply should count ``abcdef``."""
    sid = _data_after_fin(raw_conn)
    reply, _ = collect(raw_conn, sid, 1 << 16)
    want = f"6 {sha256(b'abcdef')}\n".encode()
    smux_check.expect(
        reply == want,
        expected=f"SINK reply {want!r} (the data after FIN was delivered)",
        actual=repr(reply) if reply else f"no reply; connection closed: {raw_conn.closed}",
    )
