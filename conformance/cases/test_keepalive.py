"""SPEC.md 5.3 and 7.1-7.4: keepalive NOPs and the idle timeout.

The peer runs with short, configured values (interval 100 ms, timeout 300-2000 ms), so a
whole case takes a second or two.  Staying idle *is* the behaviour under test here, so
these cases do let time pass; every duration is measured with ``time.monotonic`` from
the moment the connection was made, and every tolerance is stretched by
``--smux-timeout-scale``.

* NOPs come every KeepAliveInterval, with stream id 0 (7.1, 5.3).
* An idle session is closed between KeepAliveTimeout and 2 x KeepAliveTimeout after the
  last traffic (7.2); NOPs or data from the suite keep it open; the rest of a frame's
  payload, trickling in, does not (a frame counts once, by its header).
* A peer that refuses the 100 ms values with exit 127 (a library whose timers count
  whole seconds) is started again with them stretched to whole seconds, and the case
  stretches its intervals and deadlines by the same factor (``keepalive_factor``).
* Keepalive disabled: no NOPs, no close (7.3; Go has the option since v1.5.15, older
  tags exit 127 and the case is unsupported).
* A session whose receive buffer is full and stopped reading is not closed for lack of
  traffic (7.4; Go since v1.5.12).
"""

from __future__ import annotations

import itertools
from typing import Final

import pytest

from smuxref import HEADER_SIZE, Cmd, Frame
from smuxref_conformance.deadlines import Deadline, scaled
from smuxref_conformance.errors import ConnectionNotClosed, WireAssertion
from smuxref_conformance.judge.case import case
from smuxref_conformance.judge.checks import SmuxCheck
from smuxref_conformance.wire import RawConnection

from ._helpers import collect, echo_round_trip, fin, now, payload, psh, read_for, sha256, syn

_NOP_EVERY: Final = (
    "When keepalive is enabled, an implementation MUST send a NOP every KeepAliveInterval."
)
_NOP_SID0: Final = "A sender SHOULD send NOP with stream id 0."
_CLOSE_IDLE: Final = (
    "When keepalive is enabled, an implementation MUST close the session if no traffic "
    "arrives for 2 × KeepAliveTimeout."  # noqa: RUF001 - quoted from SPEC.md 7.2
)
_NOT_BEFORE: Final = (
    "It MUST NOT close the session for lack of traffic before KeepAliveTimeout has passed "
    "without any."
)
_PAYLOAD_ALONE: Final = (
    "A receiver SHOULD count each frame as traffic once, when its header is complete, and "
    "not count reads that bring only more of a payload."
)
_DISABLED: Final = "With keepalive disabled, an implementation MUST NOT send NOPs."
_STALLED: Final = (
    "While an implementation has stopped reading because its receive buffer is full (8.2), "
    "it MUST NOT close the session for lack of traffic."
)
INTERVAL: Final = 0.1  #: seconds: the peer's KeepAliveInterval in these cases
TIMEOUT: Final = 0.5  #: seconds: the peer's KeepAliveTimeout in the timeout cases
#: How long the suite keeps a session busy (3 x TIMEOUT) or idle (7.3).
BUSY: Final = 1.5
#: Timing tolerance (seconds before scaling) for a peer in a container on a busy host.
SLACK: Final = 0.15
FAST_NOPS: Final = pytest.mark.peer_config(keepalive_interval=100, keepalive_timeout=2000)
SHORT_TIMEOUT: Final = pytest.mark.peer_config(keepalive_interval=100, keepalive_timeout=500)
#: seconds: the peer's KeepAliveTimeout in smux/7.2/payload-alone-not-traffic, long enough
#: that one period more than allowed stands out from the slack at --smux-timeout-scale=4.
TICKED: Final = 1.0


#: The case that tests that keepalive NOPs come at all (and at the interval).
NOP_INTERVAL: Final = "smux/7.1/nop-interval"
#: The case that tests that an idle session is closed at all (and in time).
IDLE_CLOSED: Final = "smux/7.2/idle-session-closed"


def _nops(
    conn: RawConnection, check: SmuxCheck, count: int, factor: int = 1
) -> list[tuple[float, Frame]]:
    """The next ``count`` NOPs with their arrival times (``factor``: keepalive_factor)."""
    seen: list[tuple[float, Frame]] = []
    deadline = Deadline(count * INTERVAL * factor * 2 + 2.0)
    try:
        while len(seen) < count:
            frame = conn.expect_frame(
                lambda f: f.cmd == Cmd.NOP, deadline, control=True, what="a keepalive NOP"
            )
            seen.append((now(), frame))
    except WireAssertion as exc:
        interval = INTERVAL * factor
        check.expect(False, expected=f"{count} NOPs at a {interval:g} s interval", actual=str(exc))
    return seen


@case(
    NOP_INTERVAL,
    title="NOPs arrive every KeepAliveInterval (100 ms)",
    spec="7.1",
    requirement=_NOP_EVERY,
    level="must",
)
@FAST_NOPS
def test_nop_interval(
    raw_conn: RawConnection, smux_check: SmuxCheck, keepalive_factor: int
) -> None:
    """Six NOPs: the mean of the five gaps between them must be within [50 ms, 200 ms +
    slack] (times keepalive_factor).  Single gaps jitter on a loaded host (two NOPs can
    even arrive in one TCP segment), so they are only reported."""
    times = [t for t, _ in _nops(raw_conn, smux_check, 6, keepalive_factor)]
    gaps = [round(b - a, 4) for a, b in itertools.pairwise(times)]
    mean = (times[-1] - times[0]) / len(gaps)
    interval = INTERVAL * keepalive_factor
    low, high = interval * 0.5, interval * 2 + scaled(SLACK)
    smux_check.expect(
        low <= mean <= high,
        expected=f"a mean gap between NOPs within [{low:.3g} s, {high:.3g} s]",
        actual=f"mean gap {mean:.4f} s (gaps {gaps} s)",
    )
    smux_check.info(f"NOP gaps {gaps} s, mean {mean:.4f} s")


#: Gaps measured by smux/7.1/nop-rate: 2 s at 100 ms, and 4 at stretched whole seconds.
RATE_GAPS: Final = 20
RATE_GAPS_STRETCHED: Final = 4


@case(
    "smux/7.1/nop-rate",
    title="Over 20 intervals, NOPs keep to KeepAliveInterval, not to a multiple of it",
    spec="7.1",
    requirement=_NOP_EVERY,
    level="must",
    relies_on=(NOP_INTERVAL,),
)
# The suite stays silent: a timeout of 10 s keeps the peer's session open for 21 NOPs.
@pytest.mark.peer_config(keepalive_interval=100, keepalive_timeout=10000)
def test_nop_rate(raw_conn: RawConnection, smux_check: SmuxCheck, keepalive_factor: int) -> None:
    """21 NOPs (5 with whole-second timers): the span from the first to the last must be
    at most 1.5 intervals per gap, plus slack.  A sender on a fixed grid, as Go's ticker
    and smuxref are, spans exactly one interval per gap plus the difference between
    how late its last and its first NOP are, so lateness does not add up over the gaps;
    one that sends every other tick spans two intervals per gap at least, late or not.
    smux/7.1/nop-interval, over 5 gaps, allows twice the interval plus slack: a NOP every
    other interval passes there."""
    gaps = RATE_GAPS if keepalive_factor == 1 else RATE_GAPS_STRETCHED
    interval = INTERVAL * keepalive_factor
    times: list[float] = []
    deadline = Deadline(gaps * interval * 2 + 2.0)
    with smux_check.relying_on(NOP_INTERVAL, f"{gaps + 1} keepalive NOPs"):
        while len(times) <= gaps:
            raw_conn.expect_frame(
                lambda f: f.cmd == Cmd.NOP, deadline, control=True, what="a keepalive NOP"
            )
            times.append(now())
    span = times[-1] - times[0]
    high = gaps * interval * 1.5 + scaled(SLACK)
    smux_check.expect(
        span <= high,
        expected=f"{gaps + 1} NOPs within {high:.3g} s ({gaps} gaps of {interval:g} s, with slack)",
        actual=f"{span:.3f} s from the first to the last: a mean gap of {span / gaps:.4f} s",
    )
    smux_check.info(f"{gaps} NOP gaps in {span:.3f} s")


@case(
    "smux/5.3/nop-sid-zero",
    title="The peer sends NOP with stream id 0",
    spec="5.3",
    requirement=_NOP_SID0,
    level="should",
    relies_on=(NOP_INTERVAL,),
)
@FAST_NOPS
def test_nop_sid_zero(
    raw_conn: RawConnection, smux_check: SmuxCheck, keepalive_factor: int
) -> None:
    """Two keepalive NOPs; both must name stream 0.  NOPs that do not come at all are
    what smux/7.1/nop-interval tests: then the case is inconclusive naming it."""
    nops: list[Frame] = []
    deadline = Deadline(2 * INTERVAL * keepalive_factor * 2 + 2.0)
    with smux_check.relying_on(NOP_INTERVAL, "two keepalive NOPs"):
        while len(nops) < 2:
            nops.append(
                raw_conn.expect_frame(
                    lambda f: f.cmd == Cmd.NOP, deadline, control=True, what="a keepalive NOP"
                )
            )
    smux_check.expect(
        bool(nops) and all(f.sid == 0 for f in nops),
        expected="NOP frames with stream id 0",
        actual=f"{nops}",
    )


@case(
    IDLE_CLOSED,
    title="An idle session is closed between KeepAliveTimeout and twice that",
    spec="7.2",
    requirement=_CLOSE_IDLE,
    level="must",
)
@SHORT_TIMEOUT
def test_idle_session_closed(
    raw_conn: RawConnection, smux_check: SmuxCheck, keepalive_factor: int
) -> None:
    """The suite sends nothing at all; with KeepAliveTimeout 500 ms the peer must close
    the connection between 0.5 s and 1.0 s (+ slack) after the session began (times
    keepalive_factor)."""
    timeout = TIMEOUT * keepalive_factor
    high = 2 * timeout + scaled(SLACK)
    try:
        raw_conn.expect_closed(high + 1.0)
    except ConnectionNotClosed as exc:
        smux_check.expect(False, expected=f"the peer closes within {high:.3g} s", actual=str(exc))
        return
    closed_at = now()
    # Late: measured from when the connection was made; the peer's session may have
    # begun a little after that, which the slack in ``high`` absorbs.
    elapsed = closed_at - raw_conn.started_at
    # Early: measured from a time before the connection existed (the peer's session
    # cannot be older), so a loaded host that accepts late never makes a correct peer
    # look early.
    longest = closed_at - raw_conn.not_before
    smux_check.expect(
        longest >= timeout and elapsed <= high,
        expected=f"the idle session closed within [{timeout:.3g} s, {high:.3g} s]",
        actual=f"closed ({raw_conn.closed}) {elapsed:.3f} s after the connection was made "
        f"({longest:.3f} s after it was first possible)",
    )
    smux_check.info(f"idle session closed after {elapsed:.3f} s")


@case(
    "smux/7.2/nops-keep-session-open",
    title="NOPs from the suite every 100 ms keep the session open (timeout 500 ms)",
    spec="7.2",
    requirement=_NOT_BEFORE,
    level="must",
)
@SHORT_TIMEOUT
def test_nops_keep_session_open(
    raw_conn: RawConnection, smux_check: SmuxCheck, keepalive_factor: int
) -> None:
    """For 1.5 s (three timeouts) the suite sends a NOP every 100 ms and nothing else; the
    connection must stay open and the session serve a new stream afterwards (times
    keepalive_factor)."""
    nop = Frame(raw_conn.version, Cmd.NOP, 0).encode()
    interval = INTERVAL * keepalive_factor
    end = now() + scaled(BUSY * keepalive_factor)
    while now() < end and raw_conn.closed is None:
        raw_conn.send_raw(nop)
        read_for(raw_conn, interval)
    smux_check.expect(
        raw_conn.closed is None,
        expected=f"the connection stays open while NOPs arrive every {interval:g} s",
        actual=f"closed ({raw_conn.closed}) after {now() - raw_conn.started_at:.3f} s",
    )
    smux_check.alive()


@case(
    "smux/7.2/data-keeps-session-open",
    title="Data every 100 ms keeps the session open (timeout 500 ms)",
    spec="7.2",
    requirement=_NOT_BEFORE,
    level="must",
)
@SHORT_TIMEOUT
def test_data_keeps_session_open(
    raw_conn: RawConnection, smux_check: SmuxCheck, keepalive_factor: int
) -> None:
    """For 1.5 s the suite sends 4 bytes on an ECHO stream every 100 ms (reading each
    echo); the connection must stay open and every echo arrive (times keepalive_factor)."""
    sid = raw_conn.open_stream(b"ECHO\n")
    end = now() + scaled(BUSY * keepalive_factor)
    sent = got = b""
    while now() < end and raw_conn.closed is None:
        tick = f"{len(sent) // 4:04d}".encode()[-4:]
        sent += tick
        got += echo_round_trip(raw_conn, sid, tick)
        read_for(raw_conn, INTERVAL * keepalive_factor)
    smux_check.expect(
        raw_conn.closed is None and got == sent,
        expected=f"the connection stays open and echoes every tick ({len(sent)} bytes)",
        actual=f"connection {raw_conn.closed or 'open'}; {len(got)} of {len(sent)} bytes echoed",
    )


@case(
    "smux/7.2/split-frames-keep-session-open",
    title="Frames whose payload follows their header in a later read keep the session open",
    spec="7.2",
    requirement=_NOT_BEFORE,
    level="must",
)
@SHORT_TIMEOUT
def test_split_frames_keep_session_open(
    raw_conn: RawConnection, smux_check: SmuxCheck, keepalive_factor: int
) -> None:
    """As data-keeps-session-open, but each 4-byte PSH goes out in two writes 100 ms
    apart: its header, then its payload.  A complete header is traffic however its
    frame arrives (7.2; Go marks the session active as soon as it has read a header,
    ``v1.5.57:session.go:403-410``, before it reads the payload), so with a header every
    200 ms the session must stay open and echo every tick.  An implementation that
    counts frames only when one read brings a whole frame sees no traffic at all."""
    sid = raw_conn.open_stream(b"ECHO\n")
    end = now() + scaled(BUSY * keepalive_factor)
    sent = got = b""
    while now() < end and raw_conn.closed is None:
        tick = f"{len(sent) // 4:04d}".encode()[-4:]
        frame = psh(raw_conn, sid, tick)
        raw_conn.send_raw(frame[:HEADER_SIZE])
        read_for(raw_conn, INTERVAL * keepalive_factor)
        raw_conn.send_raw(frame[HEADER_SIZE:])
        sent += tick
        got += collect(raw_conn, sid, len(tick), 5.0)[0]
        read_for(raw_conn, INTERVAL * keepalive_factor)
    smux_check.expect(
        raw_conn.closed is None and got == sent,
        expected=f"the connection stays open and echoes every tick ({len(sent)} bytes)",
        actual=f"connection {raw_conn.closed or 'open'}; {len(got)} of {len(sent)} bytes echoed",
    )


@case(
    "smux/7.2/payload-alone-not-traffic",
    title="A payload trickling in after its header does not keep the session open",
    spec="7.2",
    requirement=_PAYLOAD_ALONE,
    level="should",
    relies_on=(IDLE_CLOSED,),
)
@pytest.mark.peer_config(keepalive_interval=100, keepalive_timeout=round(TICKED * 1000))
def test_payload_alone_not_traffic(
    raw_conn: RawConnection, smux_check: SmuxCheck, keepalive_factor: int
) -> None:
    """The header of a PSH with LEN 64 for a stream never opened, then one payload byte
    every 100 ms and no other header: the last traffic is that header, so the peer must
    close between 1 s and 2 s (+ slack) after it (KeepAliveTimeout 1 s, times
    keepalive_factor), as Go does (it marks the session active after reading a header
    and then waits in the payload read, ``v1.5.58:session.go:447-454``, ``:517``).  The
    trickle goes on for twice that, so a peer that counts every read of payload as
    traffic is still open.

    The first payload byte waits until 1.5 KeepAliveTimeouts after the connection: Go
    and smuxref check for traffic at every KeepAliveTimeout from the session's start
    (the ticker ``v1.5.58:session.go:573``, started with the session at ``:165``), so
    the byte arrives after the check that clears the header's mark and before the one
    that closes.  A peer that counts only the first read after a header (it compares a
    header left whole by the previous read with ``>`` where ``>=`` is meant) is then
    open one period longer, past the bound.  The bound itself assumes no phase, so a
    peer with other check times is judged the same way."""
    timeout = TICKED * keepalive_factor
    high = 2 * timeout + scaled(SLACK)
    frame = psh(raw_conn, raw_conn.next_sid(), payload(75, 64))
    raw_conn.send_raw(frame[:HEADER_SIZE])
    header_at = now()
    read_for(raw_conn, max(0.0, raw_conn.started_at + 1.5 * timeout - now()))
    for byte in itertools.islice(frame[HEADER_SIZE:], round(2 * high / INTERVAL)):
        read_for(raw_conn, INTERVAL * keepalive_factor)
        if raw_conn.closed is not None or now() - header_at > 2 * high:
            break
        try:
            raw_conn.send_raw(bytes([byte]))
        except OSError:
            break  # the peer closed meanwhile; read_for will have seen it
    if raw_conn.closed is None:
        read_for(raw_conn, max(0.0, header_at + 2 * high - now()))
    if raw_conn.closed is None:
        # Open through the whole trickle: the payload counted as traffic, or the peer
        # never closes an idle session at all.  Now nothing arrives, so a peer of the
        # first kind closes within ``high``; one that stays open fails the idle case.
        quiet_from = now()
        read_for(raw_conn, high)
        smux_check.require(
            raw_conn.closed is not None,
            prerequisite=IDLE_CLOSED,
            what="the peer closes the session once nothing at all arrives",
            actual=f"still open {now() - quiet_from:.3f} s after the last payload byte",
        )
    ends = [e.time for e in raw_conn.transcript if e.direction == raw_conn.closed]
    closed_at = ends[0] if ends else now()
    smux_check.expect(
        raw_conn.closed is not None and closed_at - header_at <= high,
        expected=f"the peer closes within {high:.3g} s of the last header, whatever payload "
        "bytes follow it",
        actual=f"connection {raw_conn.closed or 'open'} "
        f"{closed_at - header_at:.3f} s after the header",
    )


@case(
    "smux/7.3/keepalive-disabled",
    title="With keepalive disabled the peer sends no NOP and does not close",
    spec="7.3",
    requirement=_DISABLED,
    level="must",
)
@pytest.mark.peer_config(keepalive=False)
def test_keepalive_disabled(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """1.5 s of silence from both sides: no frame at all (NOP included), no close; then
    the session still serves."""
    try:
        raw_conn.expect_silence(BUSY, control=True)
    except WireAssertion as exc:
        smux_check.expect(False, expected=f"{BUSY:g} s without any frame or close", actual=str(exc))
    smux_check.alive()


@case(
    "smux/7.2/idle-closed-one-token-left",
    title="A silent session is closed even with all but one byte of its receive buffer unread",
    spec="7.2",
    requirement=_CLOSE_IDLE,
    level="must",
    relies_on=(IDLE_CLOSED,),
)
@pytest.mark.peer_config(keepalive_interval=100, keepalive_timeout=300, max_receive_buffer=65536)
def test_idle_closed_one_token_left(
    raw_conn: RawConnection, smux_check: SmuxCheck, keepalive_factor: int
) -> None:
    """KeepAliveTimeout 300 ms, MaxReceiveBuffer 64 KiB.  ``HOLD`` (10 s) and 65535 bytes
    that it leaves unread, then silence: one token is left, so the peer still reads
    (8.2) and only a stopped reader is spared the timeout (7.4, Go tests ``bucket > 0``,
    v1.5.57:session.go:530-537); the peer must close within 2 x KeepAliveTimeout (+
    slack) of the suite's last frame, long before the hold ends.  A peer that spares a
    session with one token left stays open until HOLD reads."""
    sid = raw_conn.next_sid()
    data = payload(75, 65535)
    hold_ms = round(scaled(10.0) * keepalive_factor * 1000)
    raw_conn.send_raw(
        syn(raw_conn, sid)
        + psh(raw_conn, sid, f"HOLD {hold_ms}\n".encode())
        + psh(raw_conn, sid, data[:32768])
        + psh(raw_conn, sid, data[32768:])
    )
    last_sent = now()
    high = 2 * 0.3 * keepalive_factor + scaled(SLACK)  # 2 x the KeepAliveTimeout above
    try:
        raw_conn.expect_closed(high + 1.0)
    except ConnectionNotClosed as exc:
        smux_check.require(
            False,
            prerequisite=IDLE_CLOSED,
            what="the peer closes a silent session at all",
            actual=str(exc),
        )
        return
    elapsed = now() - last_sent
    smux_check.expect(
        elapsed <= high,
        expected=f"the silent session closed within {high:.3g} s of the suite's last frame, "
        "one token of its receive buffer left",
        actual=f"closed ({raw_conn.closed}) {elapsed:.3f} s after it",
    )


@case(
    "smux/7.4/no-timeout-while-stalled",
    title="A session stalled on a full receive buffer is not closed for silence",
    spec="7.4",
    requirement=_STALLED,
    level="must",
)
@pytest.mark.peer_config(keepalive_interval=100, keepalive_timeout=300, max_receive_buffer=65536)
def test_no_timeout_while_stalled(
    raw_conn: RawConnection, smux_check: SmuxCheck, keepalive_factor: int
) -> None:
    """KeepAliveTimeout 300 ms, MaxReceiveBuffer 64 KiB.  ``HOLD 1000`` and 96 KiB plus
    FIN in one write: the peer stops reading after 64 KiB and the suite then sends
    nothing; after the hold the SINK reply must come (over three timeouts later)."""
    sid = raw_conn.next_sid()
    data = payload(74, 12 * 8192)
    hold_ms = round(scaled(1.0) * keepalive_factor * 1000)
    raw_conn.send_raw(
        syn(raw_conn, sid)
        + psh(raw_conn, sid, f"HOLD {hold_ms}\n".encode())
        + b"".join(psh(raw_conn, sid, data[i : i + 8192]) for i in range(0, len(data), 8192))
        + fin(raw_conn, sid)
    )
    reply, _ = collect(raw_conn, sid, 1 << 16, 1.0 * keepalive_factor + 5.0)
    want = f"{len(data)} {sha256(data)}\n".encode()
    smux_check.expect(
        reply == want,
        expected=f"the SINK reply {want!r} after the hold, the session still open",
        actual=f"{reply!r}; connection {raw_conn.closed or 'open'} after "
        f"{now() - raw_conn.started_at:.3f} s",
    )
