"""SPEC.md 10.2-10.4 and 11: FIN, half-close, and the end of a session.

* The peer's FIN comes after all the data of its stream, and no data follows it (10.4).
* Data that arrived before the suite's FIN reaches the peer's application before the
  end of stream (10.2); the suite's FIN alone draws no FIN back (10.2); a second FIN is
  ignored (10.2).
* Half-close (10.2, Go since v1.5.54): after the suite's FIN the peer still writes -
  SINK's reply, the rest of a long ECHO - and then sends its own FIN.  Older tags
  differ (SPEC.md 10.2, 13): v1.0.x closes the stream itself when its reader reaches the
  end, and v1.5.28-v1.5.53 refuse writes once the FIN has arrived.
* Half-close keeps unread data (10.2): ``HALFCLOSE`` (CONTRACT.md rule 19) makes the peer
  half-close and read nothing until ``RESULT``; the suite's data and FIN are then both
  waiting when it reads, and the record must count the data.  Go v1.5.54-v1.5.57 drop
  it; a peer without half-close is *unsupported* here.  Closing that stream afterwards
  sends no second FIN (10.4, SHOULD NOT).
* ``EXIT`` while a SOURCE stream is running: the peer closes the transport, and nothing
  arrives after that (11).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import pytest

from smuxref import Cmd
from smuxref_conformance.deadlines import Deadline, scaled
from smuxref_conformance.errors import ConnectionNotClosed
from smuxref_conformance.judge.blame import FIN_AFTER_DATA
from smuxref_conformance.judge.case import case
from smuxref_conformance.judge.checks import SmuxCheck
from smuxref_conformance.wire import RawConnection

from ._helpers import (
    collect,
    fin,
    frames_for,
    half_close,
    half_close_result,
    half_closed,
    hold_abc_fin_then,
    pattern,
    payload,
    psh,
    quiet_for,
    result_text,
    sha256,
    syn,
    upd,
)

_FIN_AFTER_DATA: Final = "The FIN MUST come after all data previously written on the stream."
_DELIVER_FIRST: Final = (
    "A receiver of FIN MUST deliver all data that arrived before the FIN, and then signal end "
    "of stream to its application."
)
_NO_AUTO_FIN: Final = "A receiver MUST NOT send FIN automatically in reply to a FIN."
_SEND_AFTER_FIN: Final = (
    "After receiving FIN, an implementation MUST still let its application send data on the stream."
)
_KEEP_AFTER_BOTH_FINS: Final = (
    "When that happens, the implementation MUST still let its application read data buffered "
    "before the peer's FIN."
)
_SECOND_FIN: Final = "A receiver MUST ignore a second FIN on a stream."
_NO_FRAMES_AFTER_CLOSE: Final = "A session that has been closed MUST NOT send further frames."
SOURCE_BYTES: Final = 100_000


@case(
    "smux/10.4/fin-after-all-data",
    title="SOURCE: every byte, then FIN, then nothing more on the stream",
    spec="10.4",
    requirement=_FIN_AFTER_DATA,
    level="must",
)
def test_fin_after_all_data(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """``SOURCE 100000``: exactly the 100000 pattern bytes before the FIN, and no PSH
    for the stream in the 200 ms after it."""
    sid = raw_conn.open_stream(f"SOURCE {SOURCE_BYTES}\n".encode())
    got, fin_seen = collect(raw_conn, sid, 1 << 30, 10.0)
    smux_check.expect(
        got == pattern(SOURCE_BYTES) and fin_seen,
        expected=f"{SOURCE_BYTES} pattern bytes, then FIN",
        actual=f"{len(got)} bytes{'' if got == pattern(len(got)) else ' (different)'} before "
        f"{'the FIN' if fin_seen else 'no FIN'}",
    )
    late = quiet_for(raw_conn, 0.2, lambda f: f.sid == sid and f.cmd in (Cmd.PSH, Cmd.FIN))
    smux_check.expect(
        not [f for f in late if f.cmd == Cmd.PSH],
        expected="no PSH on the stream after its FIN",
        actual=f"after the FIN: {late}",
    )
    fins = len(frames_for(raw_conn, sid, [Cmd.FIN]))
    if fins > 1:
        smux_check.info(f"{fins} FIN frames on stream {sid} (10.4: SHOULD NOT send a second)")


@case(
    "smux/10.2/data-before-fin-delivered",
    title="Data and FIN in one write: all the data, then end of stream",
    spec="10.2",
    requirement=_DELIVER_FIRST,
    level="must",
)
def test_data_before_fin_delivered(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """SYN, ``ECHO``, 64 KiB in four PSH frames and FIN in one write: the echo must be
    all 64 KiB, then FIN (a reader that saw end of stream first would lose data)."""
    sid = raw_conn.next_sid()
    data = payload(102, 64 * 1024)
    raw_conn.send_raw(
        syn(raw_conn, sid)
        + psh(raw_conn, sid, b"ECHO\n")
        + b"".join(psh(raw_conn, sid, data[i : i + 16384]) for i in range(0, len(data), 16384))
        + fin(raw_conn, sid)
    )
    got, fin_seen = collect(raw_conn, sid, 1 << 30, 10.0)
    smux_check.expect(
        got == data and fin_seen,
        expected=f"the {len(data)} bytes echoed, then FIN",
        actual=f"{len(got)} bytes{'' if got == data[: len(got)] else ' (different)'}, "
        f"{'FIN' if fin_seen else 'no FIN'}",
    )


@case(
    "smux/10.2/no-automatic-fin",
    title="The suite's FIN draws no FIN back while the application has not closed",
    spec="10.2",
    requirement=_NO_AUTO_FIN,
    level="must",
)
def test_no_automatic_fin(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """``HOLD 400`` then FIN at once: during the first half of the hold the application
    does nothing, so no FIN may come; after the hold SINK answers and closes."""
    sid = raw_conn.next_sid()
    hold = scaled(0.4)
    raw_conn.send_raw(
        syn(raw_conn, sid)
        + psh(raw_conn, sid, f"HOLD {round(hold * 1000)}\n".encode())
        + fin(raw_conn, sid)
    )
    early = quiet_for(raw_conn, 0.2, lambda f: f.sid == sid and f.cmd in (Cmd.PSH, Cmd.FIN))
    smux_check.expect(
        not early,
        expected="no frame on the stream while its application holds (no automatic FIN)",
        actual=f"{early}",
    )
    collect(raw_conn, sid, 1 << 16, Deadline(hold + scaled(5.0), already_scaled=True))
    smux_check.info(f"frames on the stream after the hold: {frames_for(raw_conn, sid)}")


@case(
    "smux/10.2/write-after-peer-fin",
    title="SINK writes its reply after the suite's FIN (half-close)",
    spec="10.2",
    requirement=_SEND_AFTER_FIN,
    level="must",
)
def test_write_after_peer_fin(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """``SINK``, 1000 bytes, FIN: the reply is written after the FIN arrived, then FIN."""
    sid = raw_conn.next_sid()
    data = payload(1000, 1000)
    raw_conn.send_raw(
        syn(raw_conn, sid) + psh(raw_conn, sid, b"SINK\n" + data) + fin(raw_conn, sid)
    )
    reply, fin_seen = collect(raw_conn, sid, 1 << 16)
    want = f"{len(data)} {sha256(data)}\n".encode()
    smux_check.expect(
        reply == want and fin_seen,
        expected=f"the SINK reply {want!r} after the suite's FIN, then FIN",
        actual=f"{reply!r}, {'FIN' if fin_seen else 'no FIN'}",
    )


@case(
    "smux/10.2/half-close-echo-continues",
    title="After the suite's FIN the peer goes on writing a long echo, then FINs",
    spec="10.2",
    requirement=_SEND_AFTER_FIN,
    level="must",
)
def test_half_close_echo(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """``ECHO``, 200000 bytes and FIN in one write: the FIN arrives while most of the
    echo is still to be written; all of it must come back, then FIN."""
    sid = raw_conn.next_sid()
    data = payload(200, 200_000)
    raw_conn.send_raw(
        syn(raw_conn, sid)
        + psh(raw_conn, sid, b"ECHO\n")
        + b"".join(psh(raw_conn, sid, data[i : i + 32768]) for i in range(0, len(data), 32768))
        + fin(raw_conn, sid)
    )
    got, fin_seen = collect(raw_conn, sid, 1 << 30, 10.0)
    smux_check.expect(
        got == data and fin_seen,
        expected=f"all {len(data)} bytes echoed after the suite's FIN, then FIN",
        actual=f"{len(got)} bytes{'' if got == data[: len(got)] else ' (different)'}, "
        f"{'FIN' if fin_seen else 'no FIN'}",
    )


@case(
    "smux/10.2/second-fin-ignored",
    title="A second FIN on a stream is ignored",
    spec="10.2",
    requirement=_SECOND_FIN,
    level="must",
)
def test_second_fin_ignored(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """``ECHO``, ``abc``, FIN, FIN: the echo and one FIN come back and the session still
    serves."""
    sid = raw_conn.next_sid()
    raw_conn.send_raw(
        syn(raw_conn, sid)
        + psh(raw_conn, sid, b"ECHO\nabc")
        + fin(raw_conn, sid)
        + fin(raw_conn, sid)
    )
    got, fin_seen = collect(raw_conn, sid, 1 << 16)
    smux_check.expect(
        (got, fin_seen) == (b"abc", True),
        expected="'abc' echoed, then FIN",
        actual=f"{got!r}, {'FIN' if fin_seen else 'no FIN'}",
    )
    smux_check.alive()


@case(
    "smux/10.2/second-fin-after-both-fins",
    title="A second FIN on a stream finished both ways but still holding unread data is ignored",
    spec="10.2",
    requirement=_SECOND_FIN,
    level="must",
    relies_on=(FIN_AFTER_DATA,),
)
def test_second_fin_after_both_fins(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """``HALFCLOSE`` (rule 19: the peer sends FIN and reads nothing until RESULT), then
    ``abc``, FIN, FIN in one write: the second FIN arrives while the peer still tracks a
    stream finished both ways, for its unread ``abc`` (the state smux/10.2/second-fin-ignored
    does not reach).  The session must go on serving.  Go v1.5.54-v1.5.57 drop the stream
    and its data at the first FIN, so their second FIN meets an unknown id."""
    sid, first, fin_seen = half_close(raw_conn, smux_check)
    smux_check.expect(
        (first, fin_seen) == (b"", True),
        expected="the peer's FIN at once, with no data before it (the half-close)",
        actual=f"{first!r}, then {'FIN' if fin_seen else 'no FIN'}",
    )
    raw_conn.send_raw(psh(raw_conn, sid, b"abc") + fin(raw_conn, sid) + fin(raw_conn, sid))
    smux_check.alive()


@case(
    "smux/11/exit-mid-transfer",
    title="EXIT during a SOURCE transfer: the transport closes, nothing follows",
    spec="11",
    requirement=_NO_FRAMES_AFTER_CLOSE,
    level="must",
)
def test_exit_mid_transfer(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """``SOURCE 10000000`` runs (the suite reads its first 100000 bytes), then ``EXIT``
    on a second stream: the peer must close the connection; what it sent up to the close
    must be whole frames of the pattern (an incomplete last frame is reported)."""
    source = raw_conn.open_stream(b"SOURCE 10000000\n")
    first, _ = collect(raw_conn, source, 100_000, 10.0)
    raw_conn.open_stream(b"EXIT\n")
    try:
        raw_conn.expect_closed(5.0)
    except ConnectionNotClosed as exc:
        smux_check.expect(False, expected="the peer closes the connection", actual=str(exc))
        return
    data = first + b"".join(
        f.data for f in raw_conn.pending if f.sid == source and f.cmd == Cmd.PSH
    )
    smux_check.expect(
        data == pattern(len(data)),
        expected="the SOURCE data received before the close is the pattern",
        actual=f"{len(data)} bytes, different from the pattern",
    )
    other = {f.cmd for f in raw_conn.frames if f.sid not in (source, 0)} - {Cmd.SYN}
    smux_check.info(
        f"closed ({raw_conn.closed}) after {len(data)} SOURCE bytes; "
        f"FIN on the SOURCE stream: {bool(frames_for(raw_conn, source, [Cmd.FIN]))}; "
        f"other commands seen: {sorted(c for c in other)}; "
        f"incomplete frame at the end: {raw_conn.trailing.hex(' ') or 'none'}"
    )


# -- 10.2 half-close keeps unread data (CONTRACT.md rule 19) ----------------------------
HALF_CLOSE_BYTES: Final = 1000


@case(
    "smux/10.2/half-close-keeps-unread",
    title="Data unread when both FINs have been exchanged is still delivered",
    spec="10.2",
    requirement=_KEEP_AFTER_BOTH_FINS,
    level="must",
    relies_on=(FIN_AFTER_DATA,),
)
def test_half_close_keeps_unread(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """``HALFCLOSE``: the peer's FIN must come at once and alone.  Then 1000 bytes and
    the suite's FIN on that stream, then ``RESULT id ms`` on a new stream: frames are
    handled in order, so both FINs are through before the peer reads, and the record
    must still count the 1000 bytes (Go v1.5.54-v1.5.57 report 0)."""
    sid, first, fin_seen = half_close(raw_conn, smux_check)
    smux_check.expect(
        (first, fin_seen) == (b"", True),
        expected="the peer's FIN at once, with no data before it (the half-close)",
        actual=f"{first!r}, then {'FIN' if fin_seen else 'no FIN'}",
    )
    data = payload(19, HALF_CLOSE_BYTES)
    raw_conn.send_raw(psh(raw_conn, sid, data) + fin(raw_conn, sid))
    reply = half_close_result(raw_conn, sid, 5.0)
    want = f"{len(data)} {sha256(data)}\n".encode()
    smux_check.expect(
        reply == want,
        expected=f"RESULT {want!r}: the {len(data)} bytes that were buffered when the "
        "suite's FIN closed the half-closed stream were delivered",
        actual=result_text(raw_conn, reply)
        + (" (the unread data was dropped)" if reply.startswith(b"0 ") else ""),
    )


_ZERO_LEN_NO_EVENT: Final = (
    "A zero-length PSH MUST NOT create a stream, wake a reader or produce an event."
)
_UPD_AFTER_FIN: Final = (
    "After receiving FIN, an implementation MUST still let its application send data on the stream."
)


def _half_close_then(
    raw_conn: RawConnection, smux_check: SmuxCheck, frames: Callable[[int], bytes], what: str
) -> None:
    """``HALFCLOSE``, the peer's FIN, then ``frames(sid)`` (ending with the suite's FIN),
    then ``RESULT id ms``: the half-closed stream must have reached its end (``0`` bytes
    and the SHA-256 of nothing), or RESULT says NONE.  No data is sent, so the result
    does not depend on half-close keeping unread data (10.2/half-close-keeps-unread)."""
    sid, first, fin_seen = half_close(raw_conn, smux_check)
    smux_check.expect(
        (first, fin_seen) == (b"", True),
        expected="the peer's FIN at once, with no data before it (the half-close)",
        actual=f"{first!r}, then {'FIN' if fin_seen else 'no FIN'}",
    )
    raw_conn.send_raw(frames(sid))
    reply = half_close_result(raw_conn, sid, 2.0)
    want = f"0 {sha256(b'')}\n".encode()
    smux_check.expect(
        reply == want,
        expected=f"RESULT {want!r}: the suite's FIN after {what} ended the stream",
        actual=result_text(raw_conn, reply)
        + (f" (the FIN after {what} was not taken as the end)" if reply == b"NONE\n" else ""),
    )


@case(
    "smux/6.3/zero-length-psh-half-closed",
    title="A PSH with LEN 0 on a half-closed stream changes nothing: the FIN still ends it",
    spec="6.3",
    requirement=_ZERO_LEN_NO_EVENT,
    level="must",
    relies_on=(FIN_AFTER_DATA,),
)
def test_zero_length_psh_half_closed(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """An empty PSH between the peer's FIN and the suite's: taken as an event that moves
    the stream's state (to "the peer has closed"), it makes the FIN after it look like a
    second FIN, which is ignored, and the stream never ends."""
    _half_close_then(
        raw_conn,
        smux_check,
        lambda sid: psh(raw_conn, sid, b"") + fin(raw_conn, sid),
        "an empty PSH",
    )


@case(
    "smux/6.3/zero-length-psh-after-fin",
    title="A PSH with LEN 0 after the suite's FIN changes nothing: the peer still replies",
    spec="6.3",
    requirement=_ZERO_LEN_NO_EVENT,
    level="must",
    relies_on=("smux/10.2/write-after-peer-fin",),
)
def test_zero_length_psh_after_fin(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """``HOLD 200``, ``abc``, the suite's FIN and an empty PSH in one write: when HOLD
    starts reading, the stream is half-closed by the suite and the empty PSH has been
    processed.  Taken as an event that closes the stream, it leaves SINK unable to
    write its reply, which the peer may still send after the remote's FIN (10.2)."""
    sid = hold_abc_fin_then(raw_conn, b"")
    reply, fin_seen = collect(raw_conn, sid, 1 << 16, 5.0)
    smux_check.require(
        bool(reply) or not fin_seen,
        prerequisite="smux/10.2/write-after-peer-fin",
        what="the peer writes SINK's reply after the suite's FIN",
        actual="no reply, only the peer's FIN",
    )
    want = f"3 {sha256(b'abc')}\n".encode()
    smux_check.expect(
        reply == want,
        expected=f"SINK's reply {want!r} once the hold ends",
        actual=repr(reply)
        if reply
        else f"no reply and no FIN; connection {raw_conn.closed or 'open'}",
    )


_DUPLICATE_SYN: Final = (
    "A duplicate SYN MUST NOT create a second stream, MUST NOT reset the existing one, and is "
    "not a protocol error."
)


@case(
    "smux/5.4/duplicate-syn-half-closed-ignored",
    title="A duplicate SYN on a stream the peer half-closed changes nothing: the FIN still ends it",
    spec="5.4",
    requirement=_DUPLICATE_SYN,
    level="must",
    relies_on=(FIN_AFTER_DATA,),
)
def test_duplicate_syn_half_closed(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """A SYN for the HALFCLOSE stream between the peer's FIN and the suite's: the stream
    must stay as it is, so the suite's FIN ends it and RESULT reports it (the state
    smux/5.4/duplicate-syn-ignored and -after-fin-ignored do not reach: there the peer
    has not sent its FIN).  A receiver that resets or replaces the stream, or fails on
    the SYN, gives NONE or no RESULT at all."""
    _half_close_then(
        raw_conn,
        smux_check,
        lambda sid: syn(raw_conn, sid) + fin(raw_conn, sid),
        "a duplicate SYN",
    )


@case(
    "smux/10.2/upd-half-closed",
    title="A UPD on a stream the peer half-closed changes nothing: the FIN still ends it",
    spec="10.2",
    requirement=_UPD_AFTER_FIN,
    level="must",
    versions=(2,),
    relies_on=(FIN_AFTER_DATA,),
)
def test_upd_half_closed(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """A UPD (the window the suite grants) between the peer's FIN and the suite's: the
    half-closed stream must still take the suite's FIN as its end."""
    _half_close_then(
        raw_conn,
        smux_check,
        lambda sid: upd(raw_conn, sid, 0, 262144) + fin(raw_conn, sid),
        "a UPD",
    )


_NO_SECOND_FIN: Final = "An implementation SHOULD NOT send a second FIN on a stream."


@case(
    "smux/10.4/no-second-fin-after-half-close",
    title="Closing a stream after both FINs sends no second FIN",
    spec="10.4",
    requirement=_NO_SECOND_FIN,
    level="should",
    relies_on=(
        FIN_AFTER_DATA,
        "smux/6.3/zero-length-psh-half-closed",
    ),
)
def test_no_second_fin_after_half_close(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """``HALFCLOSE``, the peer's FIN, the suite's FIN, then ``RESULT``: the peer has read
    to the end and closes the stream (rule 19), which has already sent its FIN, so
    nothing more may come on it; a late FIN is waited for 200 ms after RESULT's reply.
    Go sends a second FIN only when Close comes before the remote's FIN
    (v1.5.58:stream.go:750-781, SPEC.md 10.4); here the FIN after CloseWrite has closed
    the stream's ``die`` (v1.5.58:stream.go:903-918, v1.5.57:stream.go:816-831), so its
    Close returns early with no FIN (v1.5.58:stream.go:753-765, v1.5.57:stream.go:673-681)."""
    prerequisite = "smux/6.3/zero-length-psh-half-closed"
    sid = half_closed(raw_conn, smux_check, prerequisite)
    raw_conn.send_raw(fin(raw_conn, sid))
    reply = half_close_result(raw_conn, sid, 2.0)
    smux_check.require(
        reply == f"0 {sha256(b'')}\n".encode(),
        prerequisite=prerequisite,
        what="RESULT's record: the half-closed stream ended at the suite's FIN, so the peer "
        "has closed it",
        actual=result_text(raw_conn, reply),
    )
    quiet_for(raw_conn, 0.2, lambda f: f.sid == sid and f.cmd == Cmd.FIN)
    fins = frames_for(raw_conn, sid, [Cmd.FIN])
    smux_check.expect(
        len(fins) == 1,
        expected=f"one FIN on stream {sid}: the half-close's, none when the stream is closed",
        actual=f"{len(fins)} FIN frames on stream {sid}",
    )


@case(
    "smux/10.4/no-second-fin-after-duplicate-syn",
    title="A second FIN and a duplicate SYN do not reopen a stream finished both ways: "
    "closing it sends no second FIN",
    spec="10.4",
    requirement=_NO_SECOND_FIN,
    level="should",
    relies_on=(
        FIN_AFTER_DATA,
        "smux/10.2/half-close-keeps-unread",
        "smux/5.4/duplicate-syn-after-fin-ignored",
    ),
)
@pytest.mark.parametrize("between", ["second-fin", "empty-psh"])
def test_no_second_fin_after_duplicate_syn(
    raw_conn: RawConnection, smux_check: SmuxCheck, between: str
) -> None:
    """``HALFCLOSE``, the peer's FIN, then ``abc``, the suite's FIN, a second FIN and a
    duplicate SYN in one write, then ``RESULT``: the stream is finished both ways but
    still tracked for its unread ``abc`` when the second FIN and the SYN arrive, and
    both must leave it as it is (5.4, 10.2), so when the peer has read ``abc`` and
    closes it there is no FIN left to send.  A receiver that let the second FIN move the
    stream to "no stream" takes the SYN as opening it again, and its close then sends a
    FIN; a late one is waited for 200 ms after RESULT's reply.  ``empty-psh`` sends an
    empty PSH in place of the second FIN (6.3: it changes nothing either).

    A first HALFCLOSE stream with ``abc`` and one FIN checks what
    smux/10.2/half-close-keeps-unread checks, so that a peer that drops unread data at
    the FIN (Go v1.5.54-v1.5.57) is inconclusive here naming that case, not blamed on
    the duplicate SYN.  Go v1.5.58 keeps the stream in its table until its data is read
    (v1.5.58:stream.go:919-928), closes the fin event once whatever the number of FINs
    (v1.5.58:stream.go:895-899), ignores a SYN for an id in its table
    (v1.5.58:session.go:476-483), and closes with no FIN, as in
    smux/10.4/no-second-fin-after-half-close."""
    want = f"3 {sha256(b'abc')}\n".encode()
    keeps = "smux/10.2/half-close-keeps-unread"
    plain = half_closed(raw_conn, smux_check, keeps)
    raw_conn.send_raw(psh(raw_conn, plain, b"abc") + fin(raw_conn, plain))
    reply = half_close_result(raw_conn, plain, 2.0)
    smux_check.require(
        reply == want,
        prerequisite=keeps,
        what="RESULT of a first HALFCLOSE stream: 'abc', kept when the suite's FIN came",
        actual=result_text(raw_conn, reply),
    )
    sid = half_closed(raw_conn, smux_check, keeps)
    raw_conn.send_raw(
        psh(raw_conn, sid, b"abc")
        + fin(raw_conn, sid)
        + (fin(raw_conn, sid) if between == "second-fin" else psh(raw_conn, sid, b""))
        + syn(raw_conn, sid)
    )
    reply = half_close_result(raw_conn, sid, 2.0)
    smux_check.require(
        reply == want,
        prerequisite="smux/5.4/duplicate-syn-after-fin-ignored",
        what="RESULT: 'abc', still there after the second FIN and the duplicate SYN, so the "
        "peer has read the stream to its end and closed it",
        actual=result_text(raw_conn, reply),
    )
    quiet_for(raw_conn, 0.2, lambda f: f.sid == sid and f.cmd == Cmd.FIN)
    fins = frames_for(raw_conn, sid, [Cmd.FIN])
    smux_check.expect(
        len(fins) == 1,
        expected=f"one FIN on stream {sid}: the half-close's; the second FIN and the "
        "duplicate SYN did not reopen the stream",
        actual=f"{len(fins)} FIN frames on stream {sid}",
    )
