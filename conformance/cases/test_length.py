"""SPEC.md 4.3, 4.5, 6.1-6.3: the LEN field, frame sizes and frames cut off by the end.

Every case here runs three ways (``segmentation``): each frame in its own write, every
byte in its own write, and everything the case sends at once in one write.  A receiver
must decode the same frames in all three; one that assumes a header arrives in one
``recv`` fails ``bytewise``, one that forgets bytes left over after a frame fails
``coalesced``.

* LEN 0 on a PSH is ignored (6.3): it neither ends the stream nor creates one.
* A receiver accepts any LEN up to 65535 whatever its own MaxFrameSize (6.2); the peer
  runs with MaxFrameSize 4096 and gets 8192 and 65535 bytes in one PSH.
* A sender never exceeds its own MaxFrameSize (6.1): MaxFrameSize 1000, SOURCE 100000.
* SYN, FIN and NOP must have LEN 0 and UPD LEN 8 (4.3); anything else is a protocol error
  (graded like every protocol error: closed or silent, never ignored; 4.6).
* A frame cut off by the end of the connection (the suite half-closes its socket inside
  a header, right after a header, inside a payload) must not deliver any of its payload,
  and ends the session (4.5).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Final

import pytest

from smuxref import Cmd, Upd, encode_raw
from smuxref_conformance.judge.case import Grade, case
from smuxref_conformance.judge.checks import SmuxCheck
from smuxref_conformance.judge.oracle import Reaction
from smuxref_conformance.wire import RawConnection

from ._helpers import (
    PROTOCOL_ERROR,
    SEGMENTED,
    Segmentation,
    canary,
    check_canary,
    collect,
    fin,
    frames_for,
    pattern,
    payload,
    psh,
    quiet_for,
    send,
    syn,
)

_ZERO_LEN: Final = "A receiver MUST ignore a PSH with LEN 0, whatever its stream id."
_ZERO_LEN_NO_STREAM: Final = (
    "A zero-length PSH MUST NOT create a stream, wake a reader or produce an event."
)
_ANY_LEN: Final = (
    "A receiver MUST accept a PSH with any LEN from 0 to 65535, whatever its own MaxFrameSize."
)
_SEND_MAX: Final = "A sender MUST NOT send a PSH whose LEN exceeds its own MaxFrameSize."
_ZERO_RULE: Final = (
    "A receiver MUST treat a SYN, FIN or NOP with LEN other than 0 as a protocol error."
)
_UPD_RULE: Final = "A receiver MUST treat a UPD with LEN other than 8 as a protocol error."
_NO_PARTIAL: Final = "A receiver MUST NOT deliver any part of the payload of a truncated frame."
_ENDED: Final = "A receiver MUST treat the session as ended in both cases (section 11)."
#: After the suite ended the transport: closing is what SPEC.md 11 asks (SHOULD); keeping
#: the connection open is non-strict.  IGNORED cannot happen (nothing can be sent).
TRANSPORT_ENDED: Final[dict[Reaction, Grade]] = {
    Reaction.CLOSED: "pass",
    Reaction.SILENT: "non_strict",
}
#: The peer's MaxFrameSize in the 6.2 cases: every PSH the suite sends is larger.
SMALL_FRAMES: Final = 4096


def _echo_stream(conn: RawConnection) -> tuple[int, list[bytes]]:
    sid = conn.next_sid()
    return sid, [syn(conn, sid), psh(conn, sid, b"ECHO\n")]


# -- 6.3 zero-length PSH -------------------------------------------------------------------
@case(
    "smux/6.3/zero-length-psh-open-stream",
    title="A PSH with LEN 0 on an open stream is ignored (no end of stream)",
    spec="6.3",
    requirement=_ZERO_LEN,
    level="must",
)
@SEGMENTED
def test_zero_length_psh_open_stream(
    raw_conn: RawConnection, smux_check: SmuxCheck, segmentation: Segmentation
) -> None:
    """ECHO stream: empty PSH and ``abc`` (echoed); then, while the application waits
    for data, an empty PSH alone: nothing may happen for 200 ms (a reader that took it
    for end of stream closes the stream: FIN); then ``def`` and an empty PSH: the echo
    must go on with ``def``; then an empty PSH and FIN: FIN comes back."""
    sid, chunks = _echo_stream(raw_conn)
    empty = psh(raw_conn, sid, b"")
    send(raw_conn, [*chunks, empty, psh(raw_conn, sid, b"abc")], segmentation)
    first, _ = collect(raw_conn, sid, 3)
    send(raw_conn, [empty], segmentation)
    woken = quiet_for(raw_conn, 0.2, lambda f: f.sid == sid and f.cmd in (Cmd.PSH, Cmd.FIN))
    smux_check.expect(
        first == b"abc" and not woken,
        expected="'abc' echoed, then nothing on the stream after an empty PSH",
        actual=f"{first!r} echoed; after the empty PSH: {woken}",
    )
    # 'def' is echoed before the suite's FIN goes out: an echo written after the peer
    # received a FIN is what smux/10.2/write-after-peer-fin tests, not this case.
    send(raw_conn, [psh(raw_conn, sid, b"def"), empty], segmentation)
    echoed, fin_seen = collect(raw_conn, sid, 3)
    if not fin_seen:
        send(raw_conn, [empty, fin(raw_conn, sid)], segmentation)
        rest, fin_seen = collect(raw_conn, sid, 1 << 20)
        echoed += rest
    got = b"".join(f.data for f in woken) + echoed
    smux_check.expect(
        (got, fin_seen) == (b"def", True),
        expected="the echo 'def' after the empty PSH, then FIN",
        actual=f"{got!r}, then {'FIN' if fin_seen else 'no FIN'}",
    )


@case(
    "smux/6.3/zero-length-psh-unknown-stream",
    title="A PSH with LEN 0 for an unknown id creates no stream",
    spec="6.3",
    requirement=_ZERO_LEN_NO_STREAM,
    level="must",
)
@SEGMENTED
def test_zero_length_psh_unknown_stream(
    raw_conn: RawConnection, smux_check: SmuxCheck, segmentation: Segmentation
) -> None:
    """Empty PSH then FIN for a never-opened id.  Had the PSH created a stream, the FIN
    would end it before any command line and the peer would close it (FIN back)."""
    sid = raw_conn.next_sid()
    send(raw_conn, [psh(raw_conn, sid, b""), fin(raw_conn, sid)], segmentation)
    smux_check.alive()
    late = quiet_for(raw_conn, 0.2, lambda f: f.sid == sid)
    smux_check.expect(
        not frames_for(raw_conn, sid) and not late,
        expected=f"no frame on stream {sid}: the empty PSH did not create it",
        actual=f"{frames_for(raw_conn, sid)}",
    )


# -- 6.2 any LEN up to 65535 ---------------------------------------------------------------
def _big_psh(conn: RawConnection, check: SmuxCheck, segmentation: Segmentation, size: int) -> None:
    sid, chunks = _echo_stream(conn)
    data = payload(size, size)
    send(conn, [*chunks, psh(conn, sid, data), fin(conn, sid)], segmentation)
    got, fin_seen = collect(conn, sid, 1 << 20, 10.0)
    check.expect(
        got == data and fin_seen,
        expected=f"the {size} bytes of one PSH echoed back unchanged, then FIN (the peer's "
        f"MaxFrameSize is {SMALL_FRAMES})",
        actual=f"{len(got)} bytes{'' if got == data[: len(got)] else ' (different)'}, "
        f"{'FIN' if fin_seen else 'no FIN'}; closed: {conn.closed}",
    )


@case(
    "smux/6.2/psh-above-own-max-frame-size",
    title="A PSH larger than the receiver's MaxFrameSize (8192 > 4096) is accepted",
    spec="6.2",
    requirement=_ANY_LEN,
    level="must",
)
@pytest.mark.peer_config(max_frame_size=SMALL_FRAMES)
@SEGMENTED
def test_psh_above_max_frame_size(
    raw_conn: RawConnection, smux_check: SmuxCheck, segmentation: Segmentation
) -> None:
    """ECHO stream, one PSH of 8192 bytes, FIN; the echo must be the same bytes."""
    _big_psh(raw_conn, smux_check, segmentation, 8192)


@case(
    "smux/6.2/psh-len-65535",
    title="A PSH with LEN 65535 is accepted by a receiver whose MaxFrameSize is 4096",
    spec="6.2",
    requirement=_ANY_LEN,
    level="must",
)
@pytest.mark.peer_config(max_frame_size=SMALL_FRAMES)
@SEGMENTED
def test_psh_len_65535(
    raw_conn: RawConnection, smux_check: SmuxCheck, segmentation: Segmentation
) -> None:
    """ECHO stream, one PSH of 65535 bytes (the largest LEN), FIN; the echo must match."""
    _big_psh(raw_conn, smux_check, segmentation, 65535)


# -- 6.1 the sender's MaxFrameSize ---------------------------------------------------------
@case(
    "smux/6.1/sent-psh-within-max-frame-size",
    title="Every PSH the peer sends is at most its MaxFrameSize (1000)",
    spec="6.1",
    requirement=_SEND_MAX,
    level="must",
)
@pytest.mark.peer_config(max_frame_size=1000)
@SEGMENTED
def test_sent_psh_within_max_frame_size(
    raw_conn: RawConnection, smux_check: SmuxCheck, segmentation: Segmentation
) -> None:
    """``SOURCE 100000`` with MaxFrameSize 1000: 100 or more PSH frames, each of 1 to 1000
    bytes, carrying the pattern, then FIN."""
    sid = raw_conn.next_sid()
    send(raw_conn, [syn(raw_conn, sid), psh(raw_conn, sid, b"SOURCE 100000\n")], segmentation)
    raw_conn.owe_fin(sid, 100000)
    got, fin_seen = collect(raw_conn, sid, 1 << 20, 10.0)
    sizes = [len(f.data) for f in frames_for(raw_conn, sid, [Cmd.PSH])]
    smux_check.expect(
        bool(sizes) and max(sizes) <= 1000,
        expected="every PSH carries at most 1000 bytes",
        actual=f"{len(sizes)} PSH frames, largest {max(sizes, default=0)}",
    )
    smux_check.expect(
        bool(sizes) and min(sizes) > 0,
        expected="no PSH with LEN 0 (6.1: a sender MUST NOT send one)",
        actual=f"{sizes.count(0)} empty PSH frames",
    )
    smux_check.expect(
        (got, fin_seen) == (pattern(100000), True),
        expected="100000 pattern bytes, then FIN",
        actual=f"{len(got)} bytes{'' if got == pattern(len(got)) else ' (different)'}, "
        f"{'FIN' if fin_seen else 'no FIN'}",
    )


# -- 4.3 fixed lengths ---------------------------------------------------------------------
def _bad_length(
    conn: RawConnection,
    check: SmuxCheck,
    segmentation: Segmentation,
    cmd: Cmd,
    make: Callable[[RawConnection, int], bytes],
) -> None:
    """Open an ECHO stream, check it works, then send the frame ``make(conn, sid)`` and a
    canary, and grade the reaction like any protocol error."""
    sid, chunks = _echo_stream(conn)
    send(conn, [*chunks, psh(conn, sid, b"hello")], segmentation)
    got, _ = collect(conn, sid, 5)
    check.expect(got == b"hello", expected="the ECHO stream works first", actual=repr(got))
    canary_sid, canary_bytes = canary(conn)
    send(conn, [make(conn, sid), canary_bytes], segmentation, until_closed=True)
    check.reaction(PROTOCOL_ERROR)
    check_canary(check, conn, canary_sid)
    check.info(f"{cmd.name} with a wrong LEN; reaction {check.reactions[-1].reaction}")


@case(
    "smux/4.3/syn-nonzero-len",
    title="A SYN with LEN 4 (and 4 payload bytes) is a protocol error",
    spec="4.3",
    requirement=_ZERO_RULE,
    level="must",
)
@SEGMENTED
def test_syn_nonzero_len(
    raw_conn: RawConnection, smux_check: SmuxCheck, segmentation: Segmentation
) -> None:
    """SYN for a new id with LEN 4 and 4 bytes of payload, then a canary."""
    new = raw_conn.next_sid()

    def make(conn: RawConnection, sid: int) -> bytes:
        del sid
        return encode_raw(conn.version, Cmd.SYN, 4, new, b"ECHO")

    _bad_length(raw_conn, smux_check, segmentation, Cmd.SYN, make)


@case(
    "smux/4.3/fin-nonzero-len",
    title="A FIN with LEN 4 on an open stream is a protocol error",
    spec="4.3",
    requirement=_ZERO_RULE,
    level="must",
)
@SEGMENTED
def test_fin_nonzero_len(
    raw_conn: RawConnection, smux_check: SmuxCheck, segmentation: Segmentation
) -> None:
    """FIN with LEN 4 and 4 bytes of payload for the open ECHO stream, then a canary."""

    def make(conn: RawConnection, sid: int) -> bytes:
        return encode_raw(conn.version, Cmd.FIN, 4, sid, b"\x01\x02\x03\x04")

    _bad_length(raw_conn, smux_check, segmentation, Cmd.FIN, make)


@case(
    "smux/4.3/nop-nonzero-len",
    title="A NOP with LEN 8 is a protocol error",
    spec="4.3",
    requirement=_ZERO_RULE,
    level="must",
)
@SEGMENTED
def test_nop_nonzero_len(
    raw_conn: RawConnection, smux_check: SmuxCheck, segmentation: Segmentation
) -> None:
    """NOP (id 0) with LEN 8 and 8 payload bytes, then a canary."""

    def make(conn: RawConnection, sid: int) -> bytes:
        del sid
        return encode_raw(conn.version, Cmd.NOP, 8, 0, bytes(8))

    _bad_length(raw_conn, smux_check, segmentation, Cmd.NOP, make)


@case(
    "smux/4.3/upd-len-not-8",
    title="A UPD whose LEN is not 8 is a protocol error",
    spec="4.3",
    requirement=_UPD_RULE,
    level="must",
    versions=(2,),
)
@pytest.mark.parametrize("length", [0, 4, 16])
@SEGMENTED
def test_upd_len_not_8(
    raw_conn: RawConnection, smux_check: SmuxCheck, segmentation: Segmentation, length: int
) -> None:
    """UPD for the open ECHO stream with LEN ``length`` and that many payload bytes (a
    valid UPD body, cut or zero-padded), then a canary."""
    body = (Upd(5, 65536).encode() + bytes(16))[:length]

    def make(conn: RawConnection, sid: int) -> bytes:
        return encode_raw(conn.version, Cmd.UPD, length, sid, body)

    _bad_length(raw_conn, smux_check, segmentation, Cmd.UPD, make)


# -- 4.5 truncation ------------------------------------------------------------------------
def _truncated(
    conn: RawConnection,
    check: SmuxCheck,
    segmentation: Segmentation,
    cut: Callable[[RawConnection, int], bytes],
) -> None:
    """ECHO stream with ``hello``; then the cut-off frame ``cut(conn, sid)`` and the end of
    the suite's sending side.  The echo may only ever contain ``hello``; the peer must
    end the session (close the connection; keeping it open is non-strict) and survive."""
    sid, chunks = _echo_stream(conn)
    chunks.append(psh(conn, sid, b"hello"))
    if segmentation != "coalesced":
        send(conn, chunks, segmentation)
        got, _ = collect(conn, sid, 5)
        check.expect(got == b"hello", expected="the ECHO stream works first", actual=repr(got))
        chunks = []
    if send(conn, [*chunks, cut(conn, sid)], segmentation, until_closed=True):
        conn.sock.shutdown(socket.SHUT_WR)
    check.reaction(TRANSPORT_ENDED)
    echoed = b"".join(f.data for f in frames_for(conn, sid, [Cmd.PSH]))
    check.expect(
        b"hello".startswith(echoed),
        expected="only 'hello' (or a part of it) is echoed: no byte of the truncated frame "
        "is delivered",
        actual=f"stream {sid} echoed {echoed!r}",
    )


@case(
    "smux/4.5/truncated-header",
    title="The connection ends inside a frame header: the session ends",
    spec="4.5",
    requirement=_ENDED,
    level="must",
)
@SEGMENTED
def test_truncated_header(
    raw_conn: RawConnection, smux_check: SmuxCheck, segmentation: Segmentation
) -> None:
    """The first 5 bytes of a PSH header, then the suite half-closes its socket."""

    def cut(conn: RawConnection, sid: int) -> bytes:
        return psh(conn, sid, b"PARTIAL123")[:5]

    _truncated(raw_conn, smux_check, segmentation, cut)


@case(
    "smux/4.5/truncated-after-header",
    title="The connection ends right after a PSH header announcing 10 bytes",
    spec="4.5",
    requirement=_NO_PARTIAL,
    level="must",
)
@SEGMENTED
def test_truncated_after_header(
    raw_conn: RawConnection, smux_check: SmuxCheck, segmentation: Segmentation
) -> None:
    """A complete PSH header with LEN 10 and no payload, then the half-close."""

    def cut(conn: RawConnection, sid: int) -> bytes:
        return psh(conn, sid, b"PARTIAL123")[:8]

    _truncated(raw_conn, smux_check, segmentation, cut)


@case(
    "smux/4.5/truncated-payload",
    title="The connection ends inside a PSH payload: none of it is delivered",
    spec="4.5",
    requirement=_NO_PARTIAL,
    level="must",
)
@SEGMENTED
def test_truncated_payload(
    raw_conn: RawConnection, smux_check: SmuxCheck, segmentation: Segmentation
) -> None:
    """A PSH header with LEN 10 and 7 of its bytes (``PARTIAL``), then the half-close."""

    def cut(conn: RawConnection, sid: int) -> bytes:
        return psh(conn, sid, b"PARTIAL123")[:15]

    _truncated(raw_conn, smux_check, segmentation, cut)
