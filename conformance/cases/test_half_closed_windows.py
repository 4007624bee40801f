"""SPEC.md 10.2 with 9: the windows of half-closed streams, version 2.

A half-close ends one direction only.  The stream the peer half-closed still reads, so
its UPDs are still due (9.2); the stream the suite closed is still written by the peer,
so the suite's UPDs must leave it open for that writing (10.2).  Either mistake stops a
transfer after one window, which only a case moving several windows through such a
stream can see.
"""

from __future__ import annotations

import contextlib
from typing import Final

import pytest

from smuxref import Cmd, Upd
from smuxref_conformance.errors import WireAssertion
from smuxref_conformance.judge.blame import CONSUMED_CASE, FIN_AFTER_DATA
from smuxref_conformance.judge.case import case
from smuxref_conformance.judge.checks import SmuxCheck
from smuxref_conformance.wire import RawConnection

from ._helpers import (
    MULTIPLEX_CASE,
    ask_result,
    fin,
    fin_probe,
    half_closed,
    pattern,
    payload,
    psh,
    result_reply,
    result_text,
    sha256,
    syn,
    upd,
    updates_of,
)

_WINDOW_DUE: Final = (
    "A receiver MUST send a UPD at the latest when the bytes consumed on the stream since its "
    "last UPD reach the WINDOW that UPD advertised."
)
_SEND_AFTER_FIN: Final = (
    "After receiving FIN, an implementation MUST still let its application send data on the stream."
)
#: The peer's MaxStreamBuffer in smux/9.2/upd-on-half-closed-stream.
MAX_STREAM_BUFFER: Final = 65536
#: Bytes sent on a half-closed stream by smux/9.2/upd-on-half-closed-stream: four windows.
HALF_CLOSED_UPLOAD: Final = 4 * MAX_STREAM_BUFFER
#: SOURCE's length in smux/10.2/upd-after-peer-fin-keeps-writing: beyond the initial window.
SOURCE_BYTES: Final = 1_000_000
#: The window the suite's UPDs grant (the initial window, SPEC.md 9.1).
INITIAL_WINDOW: Final = 262144


@case(
    "smux/9.2/upd-on-half-closed-stream",
    title="A stream the peer half-closed still returns window: reading it brings UPDs",
    spec="9.2",
    requirement=_WINDOW_DUE,
    level="must",
    versions=(2,),
    relies_on=(
        CONSUMED_CASE,
        FIN_AFTER_DATA,
        "smux/10.2/half-close-keeps-unread",
        MULTIPLEX_CASE,
    ),
)
@pytest.mark.peer_config(max_stream_buffer=MAX_STREAM_BUFFER)
def test_upd_on_half_closed_stream(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """``HALFCLOSE``: the peer reads its command line (a UPD, 9.2), sends FIN and reads
    nothing more until ``RESULT``, which the suite sends next.  Then 262144 bytes on the
    half-closed stream, never more than the last UPD allows in flight: whenever the
    window is full the suite waits for the next UPD.  Once the peer has consumed a whole
    WINDOW since its last UPD a new one is due (a MUST), though the peer's own sending
    direction is closed (10.2: the stream still reads), so a conforming peer lets the
    upload through; one that treats a half-closed stream as done with flow control, or
    fails its read there, leaves the suite waiting with the window full.  Then the
    suite's FIN, and RESULT must count every byte (bytes still unread at that FIN and
    then lost are what smux/10.2/half-close-keeps-unread tests).  RESULT's stream is open
    beside the upload: a peer stuck with a record of 0 bytes read none of the upload on
    its own stream, which is smux/2.1/interop-100-streams' matter."""
    keeps_unread = "smux/10.2/half-close-keeps-unread"
    sid = half_closed(raw_conn, smux_check, keeps_unread)
    if not updates_of(raw_conn, sid):
        with smux_check.relying_on(CONSUMED_CASE, "the UPD after HALFCLOSE's first read"):
            raw_conn.expect_frame(
                lambda f: f.sid == sid and f.cmd == Cmd.UPD, control=True, what="a UPD"
            )
    control = ask_result(raw_conn, sid, 20.0)
    data = payload(53, HALF_CLOSED_UPLOAD)
    sent = 0  # of data; the command line's bytes come first in every CONSUMED
    while sent < len(data):
        last = max(updates_of(raw_conn, sid), key=lambda u: u.consumed)
        room = last.consumed + last.window - (len(b"HALFCLOSE\n") + sent)
        if room > 0:
            chunk = data[sent : sent + room]
            raw_conn.send_raw(
                b"".join(psh(raw_conn, sid, chunk[i : i + 16384]) for i in range(0, room, 16384)),
                timeout=10.0,
            )
            sent += len(chunk)
        elif not _next_upd(raw_conn, sid, last.consumed):
            break
    raw_conn.send_raw(fin(raw_conn, sid))
    reply = result_reply(raw_conn, control)
    count = reply.split(b" ", 1)[0]
    smux_check.require(
        sent == len(data) or count != b"0",
        prerequisite=MULTIPLEX_CASE,
        what=f"the bytes sent on stream {sid} reach that stream, not RESULT's stream "
        f"{control}, opened after it",
        actual=f"stuck after {sent} bytes, and the half-closed stream read none of them: "
        + result_text(raw_conn, reply),
    )
    smux_check.expect(
        sent == len(data),
        expected=f"UPDs that let all {len(data)} bytes through the half-closed stream's "
        "windows once RESULT let it read",
        actual=f"stuck after {sent} bytes: last UPD CONSUMED {last.consumed} WINDOW "
        f"{last.window}, so the window was full; then {result_text(raw_conn, reply)}",
    )
    smux_check.require(
        not count.isdigit() or int(count) >= len(data),
        prerequisite=keeps_unread,
        what="the bytes still unread at the suite's FIN are kept",
        actual=result_text(raw_conn, reply),
    )
    record = f"{len(data)} {sha256(data)}\n".encode()
    smux_check.expect(
        reply == record, expected=f"RESULT {record!r}", actual=result_text(raw_conn, reply)
    )


@case(
    "smux/10.2/upd-after-peer-fin-keeps-writing",
    title="UPDs for a stream the suite has closed let the peer go on writing it",
    spec="10.2",
    requirement=_SEND_AFTER_FIN,
    level="must",
    versions=(2,),
    relies_on=("smux/10.2/write-after-peer-fin",),
)
def test_upd_after_peer_fin(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """``SOURCE 1000000`` and the suite's FIN in one write: the peer writes after the
    remote's FIN (10.2), and needs the suite's UPDs beyond the initial 262144 bytes, so
    the suite acknowledges every 65536 bytes it reads.  A UPD must leave the stream as
    it was, open for the peer's writing: taken as the end of the stream, it stops the
    peer's SOURCE after the first window.  A :func:`fin_probe` in the same write shows
    that the peer sends FINs at all."""
    sid = raw_conn.next_sid()
    raw_conn.send_raw(
        syn(raw_conn, sid)
        + psh(raw_conn, sid, f"SOURCE {SOURCE_BYTES}\n".encode())
        + fin(raw_conn, sid)
        + fin_probe(raw_conn)
    )
    raw_conn.owe_fin(sid, SOURCE_BYTES)
    got, acked, fin_seen = bytearray(), 0, False
    with contextlib.suppress(WireAssertion):
        while not fin_seen:  # a peer stuck for 5 s (scaled) has stopped writing
            frame = raw_conn.expect_frame(
                lambda f: f.sid == sid and f.cmd in (Cmd.PSH, Cmd.FIN),
                5.0,
                what=f"more of SOURCE's {SOURCE_BYTES} bytes, or FIN, on stream {sid}",
            )
            fin_seen = frame.cmd == Cmd.FIN
            got += frame.data
            if len(got) - acked >= 65536 or (fin_seen and len(got) > acked):
                acked = len(got)
                raw_conn.send_raw(upd(raw_conn, sid, acked, INITIAL_WINDOW))
    smux_check.require(
        bool(got) or not fin_seen,
        prerequisite="smux/10.2/write-after-peer-fin",
        what="the peer writes after the suite's FIN",
        actual="its FIN with no data",
    )
    smux_check.expect(
        got == pattern(SOURCE_BYTES) and fin_seen,
        expected=f"all {SOURCE_BYTES} bytes of SOURCE's pattern, then FIN, while the suite "
        "acknowledged them with UPDs after its own FIN",
        actual=f"{len(got)} bytes{' (not the pattern)' if got != pattern(len(got)) else ''}, "
        f"{'then FIN' if fin_seen else 'no FIN'}; UPD sent up to CONSUMED {acked}",
    )


def _next_upd(conn: RawConnection, sid: int, seen: int) -> bool:
    """Wait (5 s, scaled) for a UPD on ``sid`` with CONSUMED beyond ``seen``."""
    try:
        conn.expect_frame(
            lambda f: f.sid == sid and f.cmd == Cmd.UPD and Upd.decode(f.data).consumed > seen,
            5.0,
            control=True,
            what=f"a UPD after CONSUMED {seen}",
        )
    except WireAssertion:
        return False
    return True
