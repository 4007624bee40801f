"""Shared pieces of the raw-frame cases: segmentation, canaries, stream collection.

The raw-frame cases (test_version, test_command, test_length, test_id_allocation,
test_stream_ids, test_keepalive, test_buffers, test_flow_control, test_accounting,
test_closing) speak frames directly to the peer through a
:class:`~smuxref_conformance.wire.RawConnection` and judge what comes back.  What they
have in common lives here:

* **Segmentation** (Autobahn's ``chopsize``): a receiver must decode the same frames
  whatever the TCP segmentation.  :data:`SEGMENTED` parametrizes a case three ways -
  every frame in its own write (``whole``), every byte in its own write (``bytewise``;
  the socket has TCP_NODELAY, so each write leaves as its own segment; long payloads
  see :func:`_bytewise`) and everything the case sends at once in one write
  (``coalesced``) - and :func:`send` applies it.
* **Canaries** (SPEC.md 4.6): after an offending header the peer must not process any
  later byte.  A canary is a SYN and an ``ECHO`` command for a new stream, placed right
  after the bad frame in the same write; if the peer ever echoes it, it went on reading.
* **Collection**: the bytes a stream carries, the frames a stream got, SOURCE's pattern.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Final, Literal

import pytest

from smuxref import Cmd, Frame, Upd
from smuxref_conformance.deadlines import Deadline, scaled
from smuxref_conformance.errors import WireAssertion
from smuxref_conformance.judge.blame import FIN_AFTER_DATA
from smuxref_conformance.judge.case import Grade
from smuxref_conformance.judge.checks import SmuxCheck
from smuxref_conformance.judge.oracle import Reaction
from smuxref_conformance.wire import RawConnection

__all__ = [
    "CANARY",
    "MULTIPLEX_CASE",
    "PEER_OPENS",
    "PROTOCOL_ERROR",
    "SEGMENTATIONS",
    "SEGMENTED",
    "Segmentation",
    "ask_result",
    "blame_refused_open",
    "canary",
    "canary_echoed",
    "check_canary",
    "collect",
    "echo_round_trip",
    "expect_opened_syn",
    "fin",
    "fin_probe",
    "frames_for",
    "half_close",
    "half_close_result",
    "half_closed",
    "now",
    "pattern",
    "payload",
    "psh",
    "quiet_for",
    "read_for",
    "result_reply",
    "result_text",
    "send",
    "sha256",
    "syn",
    "upd",
    "updates_of",
]

Segmentation = Literal["whole", "bytewise", "coalesced"]
SEGMENTATIONS: Final[tuple[Segmentation, ...]] = ("whole", "bytewise", "coalesced")
#: Parametrizes a case over the three segmentations (test ids end in -whole etc.).
SEGMENTED: Final = pytest.mark.parametrize("segmentation", SEGMENTATIONS)
#: Grades of the reaction to a protocol error (SPEC.md 4.6): the peer MUST NOT process
#: the offending frame or anything after it (IGNORED fails) and SHOULD close the
#: transport (CLOSED passes; SILENT - stopped reading, connection left open, as the Go
#: library does since v1.2.12 - is non-strict).
PROTOCOL_ERROR: Final[dict[Reaction, Grade]] = {
    Reaction.CLOSED: "pass",
    Reaction.SILENT: "non_strict",
    Reaction.IGNORED: "fail",
}
#: The case that tests that the peer opens a stream when ``OPEN`` asks it to: every case
#: that makes the peer open streams relies on it.
PEER_OPENS: Final = "smux/10.1/peer-opens-streams"
#: The case a step relies on that needs frames of two streams kept apart when they
#: interleave (a setup echo beside another open stream).
MULTIPLEX_CASE: Final = "smux/2.1/interop-100-streams"
#: The payload of a canary stream: echoed back only by a peer that kept reading.
CANARY: Final = b"canary: this must never be echoed"
_PERIOD: Final = bytes(i % 251 for i in range(251))
#: ``bytewise`` sends chunks up to this size one byte per write ...
BYTEWISE_FULL: Final = 4096
#: ... and of longer chunks only this many bytes at each end.
BYTEWISE_EDGE: Final = 512


# -- building frames -------------------------------------------------------------------
def syn(conn: RawConnection, sid: int) -> bytes:
    """A SYN for ``sid`` in the connection's version."""
    return Frame(conn.version, Cmd.SYN, sid).encode()


def psh(conn: RawConnection, sid: int, data: bytes) -> bytes:
    """A PSH for ``sid`` carrying ``data`` (LEN = len(data))."""
    return Frame(conn.version, Cmd.PSH, sid, data).encode()


def fin(conn: RawConnection, sid: int) -> bytes:
    """A FIN for ``sid``."""
    return Frame(conn.version, Cmd.FIN, sid).encode()


def upd(conn: RawConnection, sid: int, consumed: int, window: int) -> bytes:
    """A UPD for ``sid`` (version 2 framing whatever the session's version)."""
    return Frame(conn.version, Cmd.UPD, sid, Upd(consumed, window).encode()).encode()


def updates_of(conn: RawConnection, sid: int) -> list[Upd]:
    """The UPDs the peer has sent for ``sid`` so far, in order (well-formed ones only)."""
    return [Upd.decode(f.data) for f in frames_for(conn, sid, [Cmd.UPD]) if len(f.data) == 8]


def payload(seed: int, n: int) -> bytes:
    """``n`` seeded pseudo-random bytes: the same on every run."""
    return random.Random(seed).randbytes(n)


def pattern(n: int, offset: int = 0) -> bytes:
    """Bytes ``offset .. offset + n`` of the SOURCE pattern byte[i] = i % 251."""
    start = offset % 251
    reps = (start + n) // 251 + 1
    return (_PERIOD * reps)[start : start + n]


def hold_abc_fin_then(conn: RawConnection, after_fin: bytes | Callable[[int], bytes]) -> int:
    """Open a ``HOLD 200`` (scaled) stream and send ``abc``, the suite's FIN and then
    ``after_fin`` (a PSH of those bytes, or the frames the callable builds for the stream
    id), all in one write: everything waits in the peer's buffer while HOLD reads
    nothing, then SINK reads what is there.  Returns the stream id."""
    sid = conn.next_sid()
    hold = f"HOLD {round(scaled(0.2) * 1000)}\n".encode()
    tail = after_fin(sid) if callable(after_fin) else psh(conn, sid, after_fin)
    conn.send_raw(
        syn(conn, sid) + psh(conn, sid, hold) + psh(conn, sid, b"abc") + fin(conn, sid) + tail
    )
    return sid


def sha256(data: bytes) -> str:
    """The SHA-256 of ``data`` in lowercase hex, as SINK reports it."""
    return hashlib.sha256(data).hexdigest()


# -- sending ---------------------------------------------------------------------------
def send(
    conn: RawConnection,
    chunks: Sequence[bytes],
    segmentation: Segmentation,
    *,
    until_closed: bool = False,
) -> bool:
    """Send ``chunks`` (usually one frame each) split as ``segmentation`` says.

    ``until_closed``: the bytes are adversarial and the peer may rightly close the
    connection before it has them all; a send refused because the peer closed or reset
    the connection then just stops (the oracle sees the close).  Returns whether every
    byte was handed to the socket.
    """
    if segmentation == "coalesced":
        writes: Iterable[bytes] = [b"".join(chunks)]
    elif segmentation == "whole":
        writes = chunks
    else:
        writes = (piece for chunk in chunks for piece in _bytewise(chunk))
    try:
        for data in writes:
            conn.send_raw(data)
    except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
        if not until_closed:
            raise
        return False
    return True


def _bytewise(chunk: bytes) -> Iterator[bytes]:
    """One byte per write; in a chunk longer than :data:`BYTEWISE_FULL`, only its first
    and last :data:`BYTEWISE_EDGE` bytes (headers, the start and end of the payload) go
    one by one and the middle in one write, so a 65535-byte PSH costs 1025 writes, not
    65543."""
    if len(chunk) <= BYTEWISE_FULL:
        yield from (chunk[i : i + 1] for i in range(len(chunk)))
        return
    yield from (chunk[i : i + 1] for i in range(BYTEWISE_EDGE))
    yield chunk[BYTEWISE_EDGE:-BYTEWISE_EDGE]
    yield from (chunk[i : i + 1] for i in range(len(chunk) - BYTEWISE_EDGE, len(chunk)))


def canary(conn: RawConnection) -> tuple[int, bytes]:
    """A fresh stream id and the bytes that open it as an ``ECHO`` stream with
    :data:`CANARY` as data: put them right after an offending frame."""
    sid = conn.next_sid()
    return sid, syn(conn, sid) + psh(conn, sid, b"ECHO\n" + CANARY)


def canary_echoed(conn: RawConnection, sid: int) -> bool:
    """Whether the peer has sent anything on the canary stream ``sid`` so far."""
    return any(f.sid == sid and f.cmd in (Cmd.PSH, Cmd.FIN) for f in conn.frames)


def check_canary(check: SmuxCheck, conn: RawConnection, sid: int) -> None:
    """The canary stream ``sid``, sent right after an offending frame, got no answer."""
    check.expect(
        not canary_echoed(conn, sid),
        expected="no byte after the offending header is processed: the canary stream "
        f"{sid}, opened right after it, gets no answer",
        actual=f"frames on stream {sid}: {frames_for(conn, sid)}",
    )


# -- receiving -------------------------------------------------------------------------
def frames_for(conn: RawConnection, sid: int, cmds: Iterable[int] | None = None) -> list[Frame]:
    """Every frame received so far on ``sid`` (of the commands ``cmds``, if given)."""
    wanted = None if cmds is None else set(cmds)
    return [f for f in conn.frames if f.sid == sid and (wanted is None or f.cmd in wanted)]


def collect(
    conn: RawConnection, sid: int, nbytes: int, timeout: float | Deadline = 5.0
) -> tuple[bytes, bool]:
    """PSH payload of ``sid`` until ``nbytes`` arrived, a FIN on ``sid``, the end of the
    connection or the deadline; returns the bytes and whether a FIN came."""
    deadline = timeout if isinstance(timeout, Deadline) else Deadline(timeout)
    data = bytearray()
    while len(data) < nbytes:
        try:
            frame = conn.expect_frame(
                lambda f: f.sid == sid and f.cmd in (Cmd.PSH, Cmd.FIN),
                deadline,
                what=f"PSH/FIN on stream {sid}",
                fin_of=sid,
            )
        except WireAssertion:
            return bytes(data), False
        if frame.cmd == Cmd.FIN:
            return bytes(data), True
        data += frame.data
    return bytes(data), False


#: What the FIN probe sends on its ECHO stream, with the suite's FIN.
FIN_PROBE: Final = b"ECHO\nfin probe"


def fin_probe(conn: RawConnection) -> bytes:
    """A short ECHO stream and the suite's FIN on it, for a case that waits for a FIN no
    FIN of the suite precedes (HALFCLOSE's, SOURCE's after a UPD): a correct peer
    answers it with the echo and a FIN; a peer that sends no FIN at all echoes it and
    falls quiet, which is the gate's no-FIN rule (RawConnection.no_fin_decided), so the
    case's wait ends after FIN_GIVE_UP (scaled) of quiet and its failure is blamed on
    the FIN case.  Without it nothing on the connection would tell that peer from one
    that fails only the case's own step (a fail, since the probe gets its FIN)."""
    probe = conn.next_sid()
    return syn(conn, probe) + psh(conn, probe, FIN_PROBE) + fin(conn, probe)


def half_close(conn: RawConnection, check: SmuxCheck) -> tuple[int, bytes, bool]:
    """``HALFCLOSE`` on a new stream (CONTRACT.md rule 19: the peer sends FIN at once and
    reads nothing until RESULT), then its data up to the peer's FIN: ``(sid, data, FIN
    seen)``.  Skipped (unsupported) for a peer that cannot half-close.

    A :func:`fin_probe` goes in the same write: a peer that sends no FIN at all is then
    inconclusive here naming the FIN case, after FIN_GIVE_UP (scaled) rather than the
    deadline; one that sends no FIN only when it half-closes fails."""
    sid = conn.next_sid()
    conn.send_raw(syn(conn, sid) + psh(conn, sid, b"HALFCLOSE\n") + fin_probe(conn))
    conn.owe_fin(sid)
    first, fin_seen = collect(conn, sid, 1 << 16)
    if first == b"UNSUPPORTED\n":
        pytest.skip("CONTRACT.md rule 19: the peer cannot half-close (HALFCLOSE: UNSUPPORTED)")
    no_fin = None if fin_seen or first else conn.no_fin_decided()
    check.require(
        no_fin is None,
        prerequisite=FIN_AFTER_DATA,
        what="the peer's FIN on the half-closed stream",
        actual=f"none; {no_fin}",
    )
    return sid, first, fin_seen


def half_closed(conn: RawConnection, check: SmuxCheck, prerequisite: str) -> int:
    """A :func:`half_close` stream whose FIN came at once with no data before it, for a
    case that builds on the half-close: anything else is inconclusive naming
    ``prerequisite`` (the case that tests what went wrong)."""
    sid, first, fin_seen = half_close(conn, check)
    check.require(
        (first, fin_seen) == (b"", True),
        prerequisite=prerequisite,
        what="the peer's FIN at once, with no data before it (the half-close)",
        actual=f"{first!r}, then {'FIN' if fin_seen else 'no FIN'}",
    )
    return sid


def half_close_result(raw_conn: RawConnection, sid: int, seconds: float) -> bytes:
    """Ask for what the peer recorded on a HALFCLOSE stream (CONTRACT.md rule 19) and
    wait for the reply: :func:`ask_result`, then :func:`result_reply`."""
    return result_reply(raw_conn, ask_result(raw_conn, sid, seconds))


def ask_result(raw_conn: RawConnection, sid: int, seconds: float) -> int:
    """Send ``RESULT id ms`` for the HALFCLOSE stream ``sid`` on a new stream, and return
    that stream: the peer starts reading ``sid`` now and replies within ``seconds``
    (scaled).  A case that acts while the peer reads does so before :func:`result_reply`."""
    limit = round(scaled(seconds) * 1000)
    return raw_conn.open_stream(f"RESULT {sid} {limit}\n".encode())


def result_reply(raw_conn: RawConnection, control: int) -> bytes:
    """RESULT's reply on its stream ``control``.

    A peer written before rule 19 answers RESULT with nothing and goes on serving: that
    is no verdict on half-close, so the case is skipped (unsupported) rather than failed.
    A peer that closed the connection instead gives ``b""``: its session died on what the
    case sent, which is the caller's verdict (see :func:`result_text`).
    """
    reply, _ = collect(raw_conn, control, 1 << 16, 10.0)
    if not reply and not raw_conn.closed:
        pytest.skip(
            "CONTRACT.md rule 19: RESULT got no line (a peer written before rule 19); "
            f"connection closed: {raw_conn.closed}"
        )
    return reply


def result_text(raw_conn: RawConnection, reply: bytes) -> str:
    """RESULT's reply as a verdict's ``actual``, or why there was none."""
    return f"RESULT {reply!r}" if reply else f"no RESULT; connection closed: {raw_conn.closed}"


def echo_round_trip(
    conn: RawConnection, sid: int, data: bytes, timeout: float | Deadline = 5.0
) -> bytes:
    """Send ``data`` on the ``ECHO`` stream ``sid`` and collect as many bytes back."""
    conn.send_raw(psh(conn, sid, data))
    got, _ = collect(conn, sid, len(data), timeout)
    return got


def expect_opened_syn(
    conn: RawConnection,
    check: SmuxCheck,
    control: int,
    timeout: float | Deadline = 5.0,
) -> Frame:
    """The next SYN from the peer, after ``OPEN`` on stream ``control``.

    When none comes and the peer has already ended ``control`` (FIN) without writing a
    byte on it and without any SYN, it refused to open the stream at all (CONTRACT.md
    rule 14 writes OPENED only after the streams are open): the case is inconclusive,
    naming :data:`PEER_OPENS`, which the case must declare in ``relies_on``; that FIN
    ends the wait at once.  Any other failure to see the SYN is raised as it is, for the
    case to judge.
    """
    deadline = timeout if isinstance(timeout, Deadline) else Deadline(timeout)
    try:
        while True:
            frame = conn.expect_frame(
                lambda f: f.cmd == Cmd.SYN or (f.cmd == Cmd.FIN and f.sid == control),
                deadline,
                what="the peer's SYN",
            )
            if frame.cmd == Cmd.SYN:
                return frame
            if not frames_for(conn, control, [Cmd.PSH]):
                raise WireAssertion(f"no SYN: the peer ended OPEN's stream {control}")
            # OPENED and its FIN overtook the SYNs (a shaper may reorder streams): wait on.
    except WireAssertion as exc:
        blame_refused_open(conn, check, control, exc)
        raise


def blame_refused_open(
    conn: RawConnection, check: SmuxCheck, control: int, exc: WireAssertion
) -> None:
    """Inconclusive, naming :data:`PEER_OPENS`, if the peer ended ``OPEN``'s stream
    ``control`` (FIN) without a byte on it and sent no SYN: it refused to open."""
    refused = (
        any(f.cmd == Cmd.FIN and f.sid == control for f in conn.frames)
        and not frames_for(conn, control, [Cmd.PSH])
        and not any(f.cmd == Cmd.SYN for f in conn.frames)
    )
    check.require(
        not refused,
        prerequisite=PEER_OPENS,
        what="the peer opens the stream OPEN asks for",
        actual=f"{exc}; OPEN's stream {control} ended with FIN and no OPENED line",
    )


def quiet_for(
    conn: RawConnection, seconds: float, pred: Callable[[Frame], bool] | None = None
) -> list[Frame]:
    """Read for ``seconds`` (before scaling), or until the peer closes the connection or a
    frame matching ``pred`` arrives (any non-control frame if None); return the matching
    frames that arrived meanwhile (empty: the peer kept quiet)."""
    match = pred if pred is not None else (lambda f: f.cmd not in (Cmd.NOP, Cmd.UPD))
    first = len(conn.frames)
    # Frames already pending are alive (so their ids cannot be reused): a frame whose
    # id is not among them arrived during the wait.
    old = {id(f) for f in conn.pending}

    def arrived_now(frame: Frame) -> bool:
        return id(frame) not in old and match(frame)

    with contextlib.suppress(WireAssertion):
        conn.expect_frame(
            arrived_now, Deadline(seconds), control=True, what="nothing", patient=True
        )
    return [f for f in conn.frames[first:] if match(f)]


def read_for(conn: RawConnection, seconds: float) -> None:
    """Take in whatever arrives for ``seconds`` of real time (not scaled: a pacing
    interval of the behaviour under test), noticing a close; frames stay pending."""
    with contextlib.suppress(WireAssertion):
        conn.expect_frame(
            lambda f: False,
            Deadline(seconds, already_scaled=True),
            control=True,
            patient=True,
        )


def now() -> float:
    """``time.monotonic()``: every duration a case measures uses this clock."""
    return time.monotonic()
