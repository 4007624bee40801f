"""SPEC.md 9: version 2 flow control, on the wire (the receive buffer: test_buffers.py).

**Windows (9.1-9.5, version 2).**  The peer as sender: ``SOURCE 1000000`` with no UPD
from the suite must stop at exactly 262144 bytes, and each UPD must allow exactly what
its CONSUMED and WINDOW say (a UPD replaces the previous one, may shrink the window
below what is in flight).  The peer as receiver: UPD after the first read, then every
MaxStreamBuffer/2 bytes consumed, WINDOW = MaxStreamBuffer, no complaint about data
beyond the window.  A UPD acknowledging more than was sent stops the stream's data.

The windows of half-closed streams (10.2 with 9): test_half_closed_windows.py.
"""

from __future__ import annotations

import contextlib
from typing import Final

import pytest

from smuxref import Cmd, Upd
from smuxref_conformance.errors import WireAssertion
from smuxref_conformance.judge.case import Grade, case
from smuxref_conformance.judge.checks import SmuxCheck
from smuxref_conformance.judge.oracle import Reaction
from smuxref_conformance.wire import RawConnection

from ._helpers import (
    collect,
    echo_round_trip,
    fin,
    fin_probe,
    frames_for,
    pattern,
    payload,
    psh,
    quiet_for,
    sha256,
    syn,
    upd,
    updates_of,
)

_INITIAL: Final = (
    "Before it receives any UPD for a stream, a sender MUST assume a window of 262144 bytes."
)
_IN_FLIGHT: Final = (
    "A sender MUST NOT send PSH payload that would make in-flight data exceed WINDOW."
)
_FIRST_UPD: Final = (
    "A receiver MUST send a UPD for a stream after the first time its application consumes "
    "data from it."
)
_HALF_BUFFER: Final = (
    "A receiver SHOULD send a UPD whenever the bytes consumed on the stream since its last UPD "
    "reach MaxStreamBuffer / 2 (integer division), as Go does: a sender then never waits while "
    "its receiver still has room."
)
_WINDOW_VALUE: Final = "WINDOW SHOULD be the receiver's MaxStreamBuffer, as in Go;"
_OVER_ACK: Final = "A sender MUST NOT send further data on that stream after such a UPD."
_REPORT: Final = "A sender MUST report the violation no later than its next write on that stream."
_NO_EMPTY: Final = (
    "A sender SHOULD NOT send a PSH with LEN 0: every Go tag ignores one (6.3), so it only "
    "wastes 8 bytes."
)
_NO_ENFORCE: Final = (
    "A receiver MUST NOT treat data beyond the window it advertised as a protocol error."
)

KIB: Final = 1024
HOLD: Final = 0.8  #: seconds (before scaling) the HOLD stream reads nothing
INITIAL_WINDOW: Final = 262144
SOURCE_BYTES: Final = 1_000_000
#: How long (before scaling) "exactly N bytes, then nothing" waits for a byte too many.
QUIET: Final = 0.3
MAX_STREAM_BUFFER: Final = 65536


# -- 9.1 / 9.3 the peer as sender ----------------------------------------------------------
#: The case that checks the initial window a waiting writer depends on.
_INITIAL_CASE: Final = "smux/9.1/initial-window"


def _source(conn: RawConnection) -> int:
    sid = conn.open_stream(f"SOURCE {SOURCE_BYTES}\n".encode())
    conn.owe_fin(sid, SOURCE_BYTES)
    return sid


def _take(
    conn: RawConnection,
    check: SmuxCheck,
    sid: int,
    exact: int,
    got: bytearray,
    *,
    prerequisite: str = "",
) -> None:
    """Read PSH of ``sid`` until ``exact`` more bytes arrived, then insist on QUIET
    seconds without another byte (the window is used up).  With ``prerequisite`` (the
    case that tests this window) a miss makes the case inconclusive instead."""
    target = len(got) + exact
    data, fin_seen = collect(conn, sid, exact, 5.0)
    got += data
    late = quiet_for(conn, QUIET, lambda f: f.sid == sid and f.cmd in (Cmd.PSH, Cmd.FIN))
    got += b"".join(f.data for f in late)
    expected = f"exactly {exact} more bytes (total {target}), then nothing for {QUIET:g} s"
    actual = f"total {len(got)} bytes{' and FIN' if fin_seen else ''}"
    ok = len(got) == target and not fin_seen
    if prerequisite:
        check.require(ok, prerequisite=prerequisite, what=expected, actual=actual)
    check.expect(ok, expected=expected, actual=actual)


def _finish(conn: RawConnection, check: SmuxCheck, sid: int, got: bytearray) -> None:
    """Open the window wide; the rest of SOURCE and FIN must follow; all is the pattern."""
    conn.send_raw(upd(conn, sid, len(got), SOURCE_BYTES))
    rest, fin_seen = collect(conn, sid, SOURCE_BYTES, 10.0)
    got += rest
    check.expect(
        bytes(got) == pattern(SOURCE_BYTES) and fin_seen,
        expected=f"{SOURCE_BYTES} pattern bytes in all, then FIN",
        actual=f"{len(got)} bytes{'' if got == pattern(len(got)) else ' (different)'}, "
        f"{'FIN' if fin_seen else 'no FIN'}",
    )


@case(
    "smux/9.1/initial-window",
    title="Without any UPD the peer sends exactly 262144 bytes on a stream",
    spec="9.1",
    requirement=_INITIAL,
    level="must",
    versions=(2,),
)
def test_initial_window(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """``SOURCE 1000000``, no UPD: 262144 bytes then silence; a UPD then releases the rest."""
    sid = _source(raw_conn)
    got = bytearray()
    _take(raw_conn, smux_check, sid, INITIAL_WINDOW, got)
    _finish(raw_conn, smux_check, sid, got)


@case(
    "smux/9.3/window-from-upd",
    title="Each UPD allows exactly CONSUMED + WINDOW - sent more bytes",
    spec="9.3",
    requirement=_IN_FLIGHT,
    level="must",
    versions=(2,),
)
def test_window_from_upd(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """``SOURCE 1000000``: 262144 bytes; UPD(262144, 65536) -> exactly 65536 more;
    UPD(0, 100000), a window below what is in flight -> nothing; UPD(300000, 100000) ->
    exactly 72320 more (replacing, not adding to, the previous values); then the rest."""
    sid = _source(raw_conn)
    got = bytearray()
    _take(raw_conn, smux_check, sid, INITIAL_WINDOW, got)
    steps = [(INITIAL_WINDOW, 65536, 65536), (0, 100000, 0), (300000, 100000, 72320)]
    for consumed, window, more in steps:
        raw_conn.send_raw(upd(raw_conn, sid, consumed, window))
        _take(raw_conn, smux_check, sid, more, got)
    _finish(raw_conn, smux_check, sid, got)


@case(
    "smux/6.1/no-empty-psh-at-zero-window",
    title="A UPD that leaves the window exactly full brings no PSH, not even an empty one",
    spec="6.1",
    requirement=_NO_EMPTY,
    level="should",
    versions=(2,),
    relies_on=(_INITIAL_CASE,),
)
def test_no_empty_psh_at_zero_window(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """``SOURCE 1000000``: 262144 bytes, then UPD(0, 262144), which leaves exactly no
    room (9.3): the waiting writer wakes and must send nothing, not a PSH with LEN 0
    (Go's writer sends only while the window is positive, ``v1.5.58:stream.go:665-667``).
    Then the window opens and the rest follows; no PSH of the stream may be empty."""
    sid = _source(raw_conn)
    got = bytearray()
    _take(raw_conn, smux_check, sid, INITIAL_WINDOW, got, prerequisite=_INITIAL_CASE)
    raw_conn.send_raw(upd(raw_conn, sid, 0, INITIAL_WINDOW))
    quiet_for(raw_conn, QUIET, lambda f: f.sid == sid and f.cmd in (Cmd.PSH, Cmd.FIN))
    raw_conn.send_raw(upd(raw_conn, sid, len(got), SOURCE_BYTES))
    collect(raw_conn, sid, SOURCE_BYTES, 10.0)
    empty = [f for f in frames_for(raw_conn, sid, [Cmd.PSH]) if not f.data]
    smux_check.expect(
        not empty,
        expected="no PSH with LEN 0 on the stream",
        actual=f"{len(empty)} empty PSH frames",
    )


# -- 9.2 / 9.5 the peer as receiver --------------------------------------------------------
def _sink_upload(
    conn: RawConnection, check: SmuxCheck, size: int, frame_size: int = 16384
) -> tuple[int, int]:
    """SINK, ``size`` bytes in ``frame_size`` frames and FIN in one write; the reply must
    match.  Returns the stream id and the bytes consumed in all (command line included)."""
    sid = conn.next_sid()
    data = payload(size, size)
    conn.send_raw(
        syn(conn, sid)
        + psh(conn, sid, b"SINK\n")
        + b"".join(psh(conn, sid, data[i : i + frame_size]) for i in range(0, size, frame_size))
        + fin(conn, sid),
        timeout=10.0,
    )
    reply, fin_seen = collect(conn, sid, 1 << 16, 10.0)
    if not fin_seen:
        collect(conn, sid, 1 << 16, 5.0)
    want = f"{size} {sha256(data)}\n".encode()
    check.expect(reply == want, expected=f"SINK reply {want!r}", actual=repr(reply))
    return sid, len(b"SINK\n") + size


@case(
    "smux/9.2/upd-after-first-read",
    title="The peer sends a UPD once its application first reads a stream",
    spec="9.2",
    requirement=_FIRST_UPD,
    level="must",
    versions=(2,),
)
def test_upd_after_first_read(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """An ``ECHO`` stream with just its command line: the peer reads the line (5 bytes)
    and must acknowledge what it read with a UPD, CONSUMED between 1 and 5."""
    sid = raw_conn.open_stream(b"ECHO\n")
    try:
        frame = raw_conn.expect_frame(
            lambda f: f.sid == sid and f.cmd == Cmd.UPD, control=True, what="a UPD"
        )
    except WireAssertion as exc:
        smux_check.expect(False, expected="a UPD after the command line is read", actual=str(exc))
        return
    update = Upd.decode(frame.data)
    smux_check.expect(
        1 <= update.consumed <= 5,
        expected="UPD with CONSUMED between 1 and 5 (part or all of 'ECHO\\n')",
        actual=f"{update}",
    )


@case(
    "smux/9.2/upd-every-half-buffer",
    title="The peer sends a UPD whenever MaxStreamBuffer/2 more bytes were consumed",
    spec="9.2",
    requirement=_HALF_BUFFER,
    level="should",
    versions=(2,),
)
@pytest.mark.peer_config(max_stream_buffer=MAX_STREAM_BUFFER)
def test_upd_every_half_buffer(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """200000 bytes to SINK (MaxStreamBuffer 65536): CONSUMED never decreases nor exceeds
    what was sent, and the last UPD is less than 32768 bytes behind the total consumed.

    The bytes go in 16-byte frames, so that a CONSUMED counting anything per frame (its
    8 header bytes, say) outgrows the payload by half: the last UPD, due once more than
    200005 - 32768 bytes were consumed, then claims more than the 200005 sent."""
    sid, total = _sink_upload(raw_conn, smux_check, 200_000, frame_size=16)
    values = [u.consumed for u in updates_of(raw_conn, sid)]
    threshold = MAX_STREAM_BUFFER // 2
    smux_check.expect(
        bool(values)
        and values == sorted(values)
        and values[-1] <= total
        and total - values[-1] < threshold,
        expected=f"non-decreasing CONSUMED values up to {total}, the last within "
        f"{threshold} bytes of {total}",
        actual=f"CONSUMED values {values}",
    )
    smux_check.info(f"UPD CONSUMED values: {values}")


@case(
    "smux/9.2/upd-at-exactly-half-buffer",
    title="Exactly MaxStreamBuffer/2 bytes consumed since the last UPD bring a UPD",
    spec="9.2",
    requirement=_HALF_BUFFER,
    level="should",
    versions=(2,),
    relies_on=("smux/9.2/upd-after-first-read",),
)
@pytest.mark.peer_config(max_stream_buffer=MAX_STREAM_BUFFER)
def test_upd_at_exactly_half_buffer(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """SINK alone, and its first UPD (the first read, 9.2, CONSUMED ``start``: all of
    ``SINK\\n`` or, for a peer that reads its command line a byte at a time as the Go
    peer does, less); then as many bytes as make the stream's total exactly ``start`` +
    32768 (MaxStreamBuffer/2), in two frames, and nothing else.  SINK reads them all,
    however the reads cut them, so the bytes consumed since that UPD reach the threshold
    exactly and a UPD with CONSUMED ``start`` + 32768 must follow.
    smux/9.2/upd-every-half-buffer checks only the last UPD of a long upload, which a
    receiver acknowledging every MaxStreamBuffer, or one byte after the threshold, can
    still pass."""
    sid = raw_conn.open_stream(b"SINK\n")
    first = "smux/9.2/upd-after-first-read"
    with smux_check.relying_on(first, "the UPD after SINK's first read"):
        frame = raw_conn.expect_frame(
            lambda f: f.sid == sid and f.cmd == Cmd.UPD, control=True, what="a UPD"
        )
    start = Upd.decode(frame.data).consumed
    threshold = MAX_STREAM_BUFFER // 2
    want = start + threshold
    rest = payload(47, want - len(b"SINK\n"))
    raw_conn.send_raw(psh(raw_conn, sid, rest[:16384]) + psh(raw_conn, sid, rest[16384:]))
    with contextlib.suppress(WireAssertion):
        raw_conn.expect_frame(
            lambda f: f.sid == sid and f.cmd == Cmd.UPD and Upd.decode(f.data).consumed >= want,
            2.0,
            control=True,
            what=f"a UPD with CONSUMED {want}",
        )
    values = [u.consumed for u in updates_of(raw_conn, sid)]
    # Whether CONSUMED counts right is upd-every-half-buffer's and 9.2's other cases' to
    # say: here only that the UPD comes (CONSUMED at least the bytes sent).
    smux_check.expect(
        max(values, default=0) >= want,
        expected=f"a UPD with CONSUMED {want}: {threshold} bytes consumed since the UPD "
        f"with CONSUMED {start}",
        actual=f"CONSUMED values {values}",
    )
    raw_conn.send_raw(fin(raw_conn, sid))
    collect(raw_conn, sid, 1 << 16)


@case(
    "smux/9.2/upd-window-is-max-stream-buffer",
    title="Every UPD the peer sends has WINDOW = its MaxStreamBuffer",
    spec="9.2",
    requirement=_WINDOW_VALUE,
    level="should",
    versions=(2,),
)
@pytest.mark.parametrize(
    "buffer",
    [
        pytest.param(MAX_STREAM_BUFFER, marks=pytest.mark.peer_config(max_stream_buffer=65536)),
        pytest.param(65537, marks=pytest.mark.peer_config(max_stream_buffer=65537)),
    ],
    ids=["65536", "odd-65537"],
)
def test_upd_window_value(raw_conn: RawConnection, smux_check: SmuxCheck, buffer: int) -> None:
    """The UPDs of a 200000-byte upload all carry WINDOW = MaxStreamBuffer, 65536 and an
    odd 65537 (a WINDOW that loses its low bit is seen only with an odd one)."""
    sid, _ = _sink_upload(raw_conn, smux_check, 200_000)
    windows = {u.window for u in updates_of(raw_conn, sid)}
    smux_check.expect(
        windows == {buffer},
        expected=f"WINDOW {buffer} in every UPD",
        actual=f"WINDOW values {sorted(windows)}",
    )


@case(
    "smux/9.5/data-beyond-window",
    title="Data beyond the advertised window is accepted",
    spec="9.5",
    requirement=_NO_ENFORCE,
    level="must",
    versions=(2,),
)
def test_data_beyond_window(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """400000 bytes to SINK in one write, far beyond both the initial 262144 and the
    window of any UPD; the peer must take them all (SINK reply) and go on serving."""
    _sink_upload(raw_conn, smux_check, 400_000)
    smux_check.alive()


# -- 9.4 over-acknowledgement --------------------------------------------------------------
#: After a UPD acknowledging too much the stream must carry no more data; whether the peer
#: also fails the session (MAY, 4.6) or goes on is up to it.
ANY_REACTION: Final[dict[Reaction, Grade]] = {
    Reaction.CLOSED: "pass",
    Reaction.SILENT: "pass",
    Reaction.IGNORED: "pass",
}


@case(
    "smux/9.4/upd-consumed-beyond-sent",
    title="After a UPD acknowledging more than was sent, no more data on that stream",
    spec="9.4",
    requirement=_OVER_ACK,
    level="must",
    versions=(2,),
)
@pytest.mark.parametrize("excess", [999, 1], ids=["by-999", "by-1"])
def test_upd_consumed_beyond_sent(
    raw_conn: RawConnection, smux_check: SmuxCheck, excess: int
) -> None:
    """ECHO echoes ``a`` (the peer sent 1 byte); UPD(consumed 1 + ``excess``, window
    65536); then ``b`` and FIN: the echo of ``b`` must not come (Go's Write fails with
    ErrConsumed and the stream is closed).  ``by-1`` is the boundary: CONSUMED one byte
    ahead of SENT is over-acknowledgement already (9.4: the difference read as a signed
    value is negative), which a sender testing ``inflight < -1`` misses."""
    sid = raw_conn.open_stream(b"ECHO\n")
    first = echo_round_trip(raw_conn, sid, b"a")
    smux_check.expect(first == b"a", expected="the ECHO stream works first", actual=repr(first))
    raw_conn.send_raw(upd(raw_conn, sid, 1 + excess, 65536) + psh(raw_conn, sid, b"b"))
    raw_conn.send_raw(fin(raw_conn, sid))
    after, fin_seen = collect(raw_conn, sid, 1 << 16, 1.0)
    smux_check.expect(
        after == b"",
        expected="no data on the stream after the over-acknowledging UPD",
        actual=f"{after!r} echoed{', then FIN' if fin_seen else ''}",
    )
    smux_check.info(f"stream after the UPD: {'FIN' if fin_seen else 'no FIN within 1 s'}")
    smux_check.reaction(ANY_REACTION)


@case(
    "smux/9.4/over-ack-while-writer-waits",
    title="A writer waiting for window learns of a UPD acknowledging more than was sent",
    spec="9.4",
    requirement=_REPORT,
    level="must",
    versions=(2,),
    relies_on=(_INITIAL_CASE,),
)
def test_over_ack_while_writer_waits(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """``SOURCE 1000000`` with no UPD: 262144 bytes, then the peer's writer waits with
    the rest held.  A UPD acknowledging 1000000 bytes (more than were sent) must reach
    that waiting write: no more data, and SOURCE ends, so the stream gets its FIN
    (rule 12).  A writer never told waits for a window that never comes and the FIN
    never follows (Go's waiting Write wakes on every UPD and fails with ErrConsumed,
    ``v1.5.57:stream.go:638-639``, ``:581-584``).  Failing the session instead (4.6) passes."""
    sid = _source(raw_conn)
    got = bytearray()
    # The writer waits only if the peer keeps to the initial window (9.1's case).
    _take(raw_conn, smux_check, sid, INITIAL_WINDOW, got, prerequisite=_INITIAL_CASE)
    # The writer's end shows only as SOURCE's FIN: the FIN probe tells a peer that sends
    # no FIN at all (the gate blames the FIN case) from one whose writer was never told.
    raw_conn.send_raw(upd(raw_conn, sid, SOURCE_BYTES, MAX_STREAM_BUFFER) + fin_probe(raw_conn))
    after, fin_seen = collect(raw_conn, sid, SOURCE_BYTES, 5.0)
    ended = "FIN" if fin_seen else f"session ended ({raw_conn.closed})" if raw_conn.closed else ""
    smux_check.expect(
        after == b"" and bool(ended),
        expected="no data after the over-acknowledging UPD, then the stream's FIN "
        "(or the session failed)",
        actual=f"{len(after)} more bytes; {ended or 'no FIN within 5 s'}",
    )
