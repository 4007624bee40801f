"""SPEC.md 5.1: the stream ids the peer allocates (the ids it receives: test_stream_ids.py).

``OPEN 3 SOURCE 1`` makes the peer open three streams: their SYNs must carry the opener's
parity and new ids, and should name 3, 5, 7 (client) or 2, 4, 6 (server), as Go's do.
Once the suite has opened the id the peer would allocate next (a SYN with the peer's own
parity), the peer must not allocate it again: Go does, up to v1.5.58 (SPEC.md 5.1).
"""

from __future__ import annotations

from typing import Final

import pytest

from smuxref_conformance.deadlines import Deadline
from smuxref_conformance.errors import WireAssertion
from smuxref_conformance.judge.blame import FIN_AFTER_DATA
from smuxref_conformance.judge.case import case
from smuxref_conformance.judge.checks import SmuxCheck
from smuxref_conformance.peers.cmdline import Role
from smuxref_conformance.wire import RawConnection

from ._helpers import (
    PEER_OPENS,
    collect,
    echo_round_trip,
    expect_opened_syn,
    psh,
    syn,
)

_PARITY: Final = "A client MUST open streams with odd ids and a server with even ids."
_SERVER_IDS: Final = (
    "A server SHOULD give its first stream id 2, and each later stream the previous id plus 2."
)
_CLIENT_IDS: Final = (
    "A client SHOULD give its first stream id 3, and each later stream the previous id plus 2."
)
_NO_OPEN_ID: Final = (
    "An opener MUST NOT allocate an id that names a stream still open in the session: the two "
    "streams would share one id, so the peer's frames for it reach only one of them and the "
    "data of the two streams is crossed or lost."
)


# -- 5.1 allocation ------------------------------------------------------------------------
def _check_opened_ids(conn: RawConnection, check: SmuxCheck, want: list[int]) -> None:
    """``OPEN 3 SOURCE 1`` on a fresh session: SYNs, OPENED line and data of 3 streams."""
    control = conn.open_stream(b"OPEN 3 SOURCE 1\n")
    deadline = Deadline(5.0)
    syns: list[int] = []
    try:
        while len(syns) < len(want):
            frame = expect_opened_syn(conn, check, control, deadline)
            syns.append(frame.sid)
            conn.owe_fin(frame.sid, 1)  # SOURCE 1: one byte, then FIN
    except WireAssertion as exc:
        check.expect(False, expected=f"{len(want)} SYNs from the peer", actual=str(exc))
    check.expect(
        sorted(syns) == want,
        expected=f"SYN frames for stream ids {want} (the OPENED line gives their order)",
        actual=f"SYN frames for {syns}",
    )
    expected_line = ("OPENED " + " ".join(map(str, want)) + "\n").encode()
    conn.owe_fin(control, len(expected_line))  # the line, then FIN (CONTRACT.md rule 14)
    line, _ = collect(conn, control, 1 << 16)
    check.expect(line == expected_line, expected=repr(expected_line), actual=repr(line))
    bodies = {sid: collect(conn, sid, 1 << 16) for sid in syns}
    # The FINs are what smux/10.4/fin-after-all-data tests (SOURCE's data, then FIN); a
    # peer that sends none at all is inconclusive here, as it would be at a must level.
    no_fin = None if any(fin_seen for _, fin_seen in bodies.values()) else conn.no_fin_decided()
    check.require(
        no_fin is None,
        prerequisite=FIN_AFTER_DATA,
        what="the FIN after each opened stream's SOURCE byte",
        actual=f"none; {no_fin}",
    )
    check.expect(
        all(body == (b"\x00", True) for body in bodies.values()),
        expected="each opened stream carries SOURCE 1: one byte 0x00, then FIN",
        actual=repr(bodies),
    )


@case(
    "smux/5.1/opened-ids-parity",
    title="The streams a peer opens have its parity and new ids",
    spec="5.1",
    requirement=_PARITY,
    level="must",
    relies_on=(PEER_OPENS,),
)
def test_opened_ids_parity(raw_conn: RawConnection, smux_check: SmuxCheck, role: Role) -> None:
    """``OPEN 3 SOURCE 1``: three SYNs with the opener's parity (odd for a client, even for
    a server), each id new.  Which ids exactly is Go's choice (5.1, a SHOULD)."""
    control = raw_conn.open_stream(b"OPEN 3 SOURCE 1\n")
    deadline = Deadline(5.0)
    syns: list[int] = []
    try:
        while len(syns) < 3:
            frame = expect_opened_syn(raw_conn, smux_check, control, deadline)
            syns.append(frame.sid)
            raw_conn.owe_fin(frame.sid, 1)  # SOURCE 1: one byte, then FIN
    except WireAssertion as exc:
        smux_check.expect(False, expected="3 SYNs from the peer", actual=str(exc))
    parity = 0 if role == "server" else 1
    smux_check.expect(
        len(set(syns)) == len(syns) and all(sid % 2 == parity for sid in syns),
        expected=f"new {'even' if parity == 0 else 'odd'} ids (a {role} opens them)",
        actual=f"SYN frames for {syns}",
    )
    raw_conn.owe_fin(control, len(f"OPENED {' '.join(map(str, syns))}\n"))
    collect(raw_conn, control, 1 << 16)


@case(
    "smux/5.1/server-first-ids",
    title="A server peer's streams are 2, 4, 6",
    spec="5.1",
    requirement=_SERVER_IDS,
    level="should",
    relies_on=(FIN_AFTER_DATA, PEER_OPENS),
)
@pytest.mark.roles("server")
def test_server_first_ids(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """``OPEN 3 SOURCE 1`` on a new session to a server peer: SYNs for 2, 4, 6."""
    _check_opened_ids(raw_conn, smux_check, [2, 4, 6])


@case(
    "smux/5.1/client-first-ids",
    title="A client peer's streams are 3, 5, 7",
    spec="5.1",
    requirement=_CLIENT_IDS,
    level="should",
    relies_on=(FIN_AFTER_DATA, PEER_OPENS),
)
@pytest.mark.roles("client")
def test_client_first_ids(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """``OPEN 3 SOURCE 1`` on a client peer's session: SYNs for 3, 5, 7."""
    _check_opened_ids(raw_conn, smux_check, [3, 5, 7])


@case(
    "smux/5.1/no-id-of-open-stream",
    title="The peer does not allocate an id the suite opened with the peer's parity",
    spec="5.1",
    requirement=_NO_OPEN_ID,
    level="must",
    relies_on=("smux/5.4/syn-own-parity", PEER_OPENS),
)
def test_no_id_of_open_stream(raw_conn: RawConnection, smux_check: SmuxCheck, role: Role) -> None:
    """The suite opens an ECHO stream on the id the peer would allocate first (2 for a
    server peer, 3 for a client peer) and checks it echoes; then ``OPEN 1 SOURCE 1``
    makes the peer open a stream.  Its SYN must name another id, and the suite's stream
    must still echo afterwards (Go reuses the id and the echo stream is orphaned)."""
    taken = 2 if role == "server" else 3
    raw_conn.send_raw(syn(raw_conn, taken) + psh(raw_conn, taken, b"ECHO\n"))
    before = echo_round_trip(raw_conn, taken, b"before")
    smux_check.require(
        before == b"before",
        prerequisite="smux/5.4/syn-own-parity",
        what=f"the peer serves a stream the suite opened with the peer's parity (id {taken})",
        actual=f"{before!r}; connection closed: {raw_conn.closed}",
    )
    control = raw_conn.open_stream(b"OPEN 1 SOURCE 1\n")
    try:
        opened = expect_opened_syn(raw_conn, smux_check, control)
    except WireAssertion as exc:
        smux_check.expect(False, expected="a SYN for the stream OPEN 1 opens", actual=str(exc))
        return
    smux_check.expect(
        opened.sid != taken,
        expected=f"the peer's SYN names an id other than {taken}, which the suite's ECHO "
        "stream still holds",
        actual=f"SYN for stream {opened.sid}",
    )
    after = echo_round_trip(raw_conn, taken, b"after")
    smux_check.expect(
        after == b"after",
        expected=f"the suite's ECHO stream {taken} still echoes 'after'",
        actual=f"{after!r} on stream {taken}",
    )
