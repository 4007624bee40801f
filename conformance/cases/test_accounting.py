"""SPEC.md 8.1 to the byte: data the application consumed frees exactly its room.

A peer that keeps counting even one byte it handed to its application reaches
MaxReceiveBuffer early and stops reading (8.2) while the suite's bytes are still below
it; if the application waits for a frame behind that stop before it reads, nothing
moves again.  The 64 KiB probe measurement of test_buffers cannot see one byte: its
frames are 8 KiB.
"""

from __future__ import annotations

from typing import Final

import pytest

from smuxref_conformance.deadlines import Deadline, scaled
from smuxref_conformance.judge.case import case
from smuxref_conformance.judge.checks import SmuxCheck
from smuxref_conformance.wire import RawConnection

from ._helpers import MULTIPLEX_CASE, echo_round_trip, payload, psh, syn

_CONSUMED: Final = "Data MUST stop counting as unread once the application has consumed it."
SMALL_BUFFER: Final = 64 * 1024  #: MaxReceiveBuffer of the case
HOLD: Final = 0.8  #: seconds (before scaling) the HOLD stream reads nothing


@case(
    "smux/8.1/consumed-stops-counting-exactly",
    title="Bytes the application read free exactly their room: one byte below the limit, "
    "the peer reads on",
    spec="8.1",
    requirement=_CONSUMED,
    level="must",
    relies_on=(MULTIPLEX_CASE,),
)
@pytest.mark.peer_config(max_receive_buffer=SMALL_BUFFER)
def test_consumed_stops_counting_exactly(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """An ECHO stream and a HOLD stream read their command lines (and ECHO a first
    message); then HOLD gets MaxReceiveBuffer - 1 bytes it leaves unread.  Everything
    read before must be free again, so the peer is one byte below the limit and must
    read a 1-byte probe for the ECHO stream and echo it during the hold.  A peer that
    keeps counting even one byte it handed to the application has reached the limit
    and stops (8.2) until HOLD reads."""
    echo_sid = raw_conn.open_stream(b"ECHO\n")
    hold_sid = raw_conn.next_sid()
    hold = scaled(HOLD)
    raw_conn.send_raw(
        syn(raw_conn, hold_sid) + psh(raw_conn, hold_sid, f"HOLD {round(hold * 1000)}\n".encode())
    )
    first = echo_round_trip(raw_conn, echo_sid, b"both command lines read")
    # Setup: ECHO's data follows HOLD's SYN and line, so a peer that hands a PSH to the
    # wrong stream fails here, before the accounting this case is about.
    smux_check.require(
        first == b"both command lines read",
        prerequisite=MULTIPLEX_CASE,
        what="the ECHO stream works beside the HOLD stream",
        actual=repr(first),
    )
    data = payload(76, SMALL_BUFFER - 1)
    raw_conn.send_raw(
        b"".join(psh(raw_conn, hold_sid, data[i : i + 16384]) for i in range(0, len(data), 16384))
    )
    probe = echo_round_trip(raw_conn, echo_sid, b"p", Deadline(hold / 2, already_scaled=True))
    smux_check.expect(
        probe == b"p",
        expected=f"with {len(data)} bytes unread (MaxReceiveBuffer {SMALL_BUFFER}) the peer "
        "reads on: the probe is echoed during the hold",
        actual=f"{probe!r} echoed within {hold / 2:.3g} s",
    )
