"""SPEC.md 8: the session-wide receive buffer, on the wire.

Version 2 flow control (SPEC.md 9) is in test_flow_control.py.

**Receive buffer (8.2, 8.3).**  How far the peer reads is measured with *probes* rather
than with the suite's socket buffer: a ``HOLD`` stream (its application reads nothing
for a while) and an ``ECHO`` stream are opened, then 8 KiB data frames for the HOLD
stream alternate with 1-byte probe frames (1, 2, 3, ...) for the ECHO stream, all in
one write.  The peer echoes a probe as soon as its receive loop has read it, so the
probes echoed before the hold ends say exactly how many data frames the peer took off
the wire.  With MaxReceiveBuffer 64 KiB the peer must read 8 data frames and stop
before the 8th probe's header (7 probes echoed); with 16 MiB all 12 come back at once
(the control: the stop is the limit's doing, not the kernel's).  When the hold ends the
peer must read on (the remaining probes, then SINK's count and digest).  Kernel buffers
never enter the measurement: only frames the peer *processed* are counted.

**Closing returns unread data (8.1).**  Streams whose ``CLOSE`` line arrives in one PSH
with 16 KiB more: the peer closes each with those bytes unread, twice MaxReceiveBuffer
in all.  Only if closing stops counting them can an ``ECHO`` stream opened afterwards
answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

import pytest

from smuxref import Cmd
from smuxref_conformance.deadlines import Deadline, scaled
from smuxref_conformance.errors import WireAssertion
from smuxref_conformance.judge.case import case
from smuxref_conformance.judge.checks import SmuxCheck
from smuxref_conformance.wire import RawConnection

from ._helpers import (
    MULTIPLEX_CASE,
    collect,
    echo_round_trip,
    fin,
    now,
    payload,
    psh,
    sha256,
    syn,
)

_STOP: Final = (
    "A receiver MUST NOT start reading a frame header while its unread data is "
    "MaxReceiveBuffer or more."
)
_CLOSED_UNREAD: Final = (
    "A stream's unread data MUST stop counting when the stream is closed and the data "
    "discarded (10.4)."
)
_RESUME: Final = (
    "A receiver MUST resume reading as soon as its unread data falls below MaxReceiveBuffer."
)

KIB: Final = 1024
SMALL_BUFFER: Final = 64 * KIB
LARGE_BUFFER: Final = 16 * KIB * KIB
FRAME: Final = 8 * KIB  #: data frame size of the probe measurement
FRAMES: Final = 12  #: data frames (and probes) sent: 96 KiB, 1.5 x the small buffer
HOLD: Final = 0.8  #: seconds (before scaling) the HOLD stream reads nothing


# -- 8.2 / 8.3 receive buffer --------------------------------------------------------------
@dataclass
class ProbeRun:
    """What a HOLD + probes exchange showed."""

    hold_sid: int
    data: bytes
    sent_at: float
    hold: float  #: seconds (scaled)
    echoes: list[tuple[float, bytes]] = field(default_factory=list)

    def before_hold_end(self) -> bytes:
        """Probe bytes echoed in the first half of the hold (while the peer stalls)."""
        cut = self.sent_at + self.hold / 2
        return b"".join(data for t, data in self.echoes if t < cut)

    def all_probes(self) -> bytes:
        return b"".join(data for _, data in self.echoes)


def _probe_run(conn: RawConnection, until: float) -> ProbeRun:
    """Send HOLD + ECHO + 12 x (8 KiB data, 1-byte probe) + FINs; collect probe echoes
    until ``until`` seconds (a fraction of the hold, 1.0 = the hold and 5 s more)."""
    hold_sid, echo_sid = conn.next_sid(), conn.next_sid()
    hold = scaled(HOLD)
    data = payload(82, FRAMES * FRAME)
    frames = [
        syn(conn, hold_sid),
        psh(conn, hold_sid, f"HOLD {round(hold * 1000)}\n".encode()),
        syn(conn, echo_sid),
        psh(conn, echo_sid, b"ECHO\n"),
    ]
    for k in range(FRAMES):
        frames.append(psh(conn, hold_sid, data[k * FRAME : (k + 1) * FRAME]))
        frames.append(psh(conn, echo_sid, bytes([k + 1])))
    frames += [fin(conn, hold_sid), fin(conn, echo_sid)]
    run = ProbeRun(hold_sid, data, now(), hold)
    conn.send_raw(b"".join(frames))
    end = run.sent_at + (hold / 2 if until < 1 else hold + scaled(5.0))
    got = 0
    while got < FRAMES and now() < end:
        try:
            frame = conn.expect_frame(
                lambda f: f.sid == echo_sid and f.cmd in (Cmd.PSH, Cmd.FIN),
                Deadline(end - now(), already_scaled=True),
                what="probe echoes",
                patient=True,  # the window is what the probe measures
            )
        except WireAssertion:
            break
        if frame.cmd == Cmd.FIN:
            break
        run.echoes.append((now(), frame.data))
        got += len(frame.data)
    return run


#: The case that tests that interleaved streams keep their own data (SPEC.md 2.1): the
#: probe measurement sends HOLD's data and ECHO's probes interleaved on two streams.


def _require_own_streams(check: SmuxCheck, run: ProbeRun) -> None:
    """The ECHO stream returned probe bytes only: HOLD's 8 KiB frames echoed back mean
    the peer delivered one stream's PSH to another, which the probes cannot measure."""
    probes = run.all_probes()
    check.require(
        len(probes) <= FRAMES and set(probes) <= set(range(1, FRAMES + 1)),
        prerequisite=MULTIPLEX_CASE,
        what="each PSH delivered to the stream its id names (HOLD's data never echoed)",
        actual=f"the ECHO stream returned {len(probes)} bytes, not only 1-byte probes",
    )


def _expected_probes(limit: int) -> int:
    """Probes a conforming peer processes before it stops: it reads data frames while
    unread < limit, so it stops after frame ceil(limit / FRAME), before that probe."""
    return min(FRAMES, math.ceil(limit / FRAME) - 1) if limit < FRAMES * FRAME else FRAMES


@case(
    "smux/8.2/stop-reading-at-limit",
    title="The peer stops reading frames once MaxReceiveBuffer bytes are unread",
    spec="8.2",
    requirement=_STOP,
    level="must",
    relies_on=(MULTIPLEX_CASE,),
)
@pytest.mark.parametrize(
    "limit",
    [
        pytest.param(SMALL_BUFFER, marks=pytest.mark.peer_config(max_receive_buffer=SMALL_BUFFER)),
        pytest.param(LARGE_BUFFER, marks=pytest.mark.peer_config(max_receive_buffer=LARGE_BUFFER)),
    ],
    ids=["64KiB", "16MiB-control"],
)
def test_stop_reading_at_limit(raw_conn: RawConnection, smux_check: SmuxCheck, limit: int) -> None:
    """Probes echoed while the HOLD stream reads nothing: exactly 7 with a 64 KiB limit
    (8 data frames read, the 8th probe not), all 12 with 16 MiB."""
    run = _probe_run(raw_conn, until=0.5)
    _require_own_streams(smux_check, run)
    seen = run.before_hold_end()
    want = _expected_probes(limit)
    smux_check.expect(
        seen == bytes(range(1, want + 1)),
        expected=f"while the HOLD stream holds {FRAMES} x {FRAME} bytes unread, the peer "
        f"processes probes 1..{want} (MaxReceiveBuffer {limit}) and no later frame",
        actual=f"probes echoed during the hold: {list(seen)}",
    )
    smux_check.info(f"limit {limit}: {len(seen)} probes processed while the stream held data")


@case(
    "smux/8.3/resume-below-limit",
    title="Once the held data is read, the peer reads the rest of the connection",
    spec="8.3",
    requirement=_RESUME,
    level="must",
    relies_on=(MULTIPLEX_CASE,),
)
@pytest.mark.peer_config(max_receive_buffer=SMALL_BUFFER)
def test_resume_below_limit(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """After the hold, the remaining probes come back in order, and the HOLD stream's
    SINK reply counts all 96 KiB with the right digest."""
    run = _probe_run(raw_conn, until=1.0)
    _require_own_streams(smux_check, run)
    probes = run.all_probes()
    smux_check.expect(
        probes == bytes(range(1, FRAMES + 1)),
        expected=f"all {FRAMES} probes echoed in order once the hold ended",
        actual=f"{list(probes)}",
    )
    reply, _ = collect(raw_conn, run.hold_sid, 1 << 16, 5.0)
    want = f"{len(run.data)} {sha256(run.data)}\n".encode()
    smux_check.expect(
        reply == want,
        expected=f"the HOLD stream's SINK reply {want!r}",
        actual=repr(reply) if reply else f"no reply; connection {raw_conn.closed or 'open'}",
    )


CLOSED_STREAMS: Final = 8  #: x CLOSED_UNREAD bytes = 2 x SMALL_BUFFER
CLOSED_UNREAD: Final = 16 * KIB


@case(
    "smux/8.1/close-returns-unread",
    title="Data a stream never read stops counting against MaxReceiveBuffer when it is closed",
    spec="8.1",
    requirement=_CLOSED_UNREAD,
    level="must",
)
@pytest.mark.peer_config(max_receive_buffer=SMALL_BUFFER)
def test_close_returns_unread(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """Eight streams, each one PSH of ``CLOSE\\n`` and 16 KiB more (MaxReceiveBuffer
    64 KiB): the peer reads the line and closes the stream with the rest unread
    (CONTRACT.md rule 16).  A peer that kept counting those bytes would hold 128 KiB of
    unread data that no read can ever return, and stop reading for good after the fourth
    stream (Go returns them, ``v1.0.7:session.go:192-201``,
    ``v1.5.57:session.go:358-374``).  An ``ECHO`` stream sent after them must answer."""
    frames = []
    for k in range(CLOSED_STREAMS):
        sid = raw_conn.next_sid()
        frames += [syn(raw_conn, sid), psh(raw_conn, sid, b"CLOSE\n" + payload(k, CLOSED_UNREAD))]
    raw_conn.send_raw(b"".join(frames))
    echo_sid = raw_conn.open_stream(b"ECHO\n")
    probe = b"after the closed streams"
    got = echo_round_trip(raw_conn, echo_sid, probe, 5.0)
    closed = {f.sid for f in raw_conn.frames if f.cmd == Cmd.FIN and f.sid != echo_sid}
    smux_check.expect(
        got == probe,
        expected=f"the ECHO stream answers after {CLOSED_STREAMS} streams were closed with "
        f"{CLOSED_UNREAD} bytes unread each (MaxReceiveBuffer {SMALL_BUFFER})",
        actual=f"echoed {got!r}; FIN came on {len(closed)} of the {CLOSED_STREAMS} streams",
    )
