"""SPEC.md 10.1: the peer opens streams in either role, ready before their SYN is sent.

``smux/10.1/peer-opens-streams`` asks the peer for one stream (``OPEN 1 SOURCE 10``) and
checks that it comes; every case that makes the peer open streams relies on it, so a
peer that cannot open any (smux_rust 0.2.1's server) fails here and leaves the others
inconclusive.  ``smux/10.1/ready-before-syn`` checks when the opened stream is ready.

Go up to v1.5.57 queues the SYN, waits until its send loop has written it, and only
then puts the stream in its table; frames for the id that arrive in between are dropped
as for an unknown stream.  On an idle connection that gap is microseconds, so the case
makes it as wide as it can be, without relying on the peer's timing:

1. ``SOURCE`` of 256 MiB on one stream that the suite does not read: once the kernel
   buffers between the two ends are full, the peer's send path is blocked.  The suite
   waits until the bytes waiting in its socket have stopped growing for 1.5 s (scaled;
   in version 2 it first grants a window larger than the transfer, so flow control is
   not what stops it).
2. ``OPEN 1 SINK`` (all but its last two bytes sent before step 1, since a version 2
   peer answers its first read with a UPD that must not wait behind the blocked send
   path): the peer opens a stream.  Its SYN is handed to the transport but
   cannot reach the wire, so the suite sends data and FIN for the id the peer must use
   (2 for a server, 3 for a client, SPEC.md 5.1), after a settling time scaled like every
   deadline, in which the peer reads the command and opens the stream.
3. The suite checks that nothing more arrived meanwhile (the send path really was
   blocked the whole time), then reads: the SYN, then a second FIN for the id (so a
   peer that dropped the first one still ends SINK) and SINK's reply.  A peer whose
   stream was ready counts the data; Go v1.5.57 (and v1.0.7) count 0 bytes.
"""

from __future__ import annotations

import contextlib
import fcntl
import socket
import termios
import time
from collections.abc import Callable
from typing import Final

from smuxref import Cmd, Frame
from smuxref_conformance.deadlines import Deadline, scaled
from smuxref_conformance.errors import WireAssertion
from smuxref_conformance.judge.case import case
from smuxref_conformance.judge.checks import SmuxCheck
from smuxref_conformance.peers.cmdline import Role
from smuxref_conformance.wire import RawConnection

from ._helpers import (
    MULTIPLEX_CASE,
    PEER_OPENS,
    blame_refused_open,
    collect,
    fin,
    frames_for,
    pattern,
    payload,
    psh,
    sha256,
    upd,
)

_READY: Final = (
    "An opener MUST be ready to receive frames for a stream (the stream is in its table, so a "
    "PSH, FIN or UPD for the id is delivered, not dropped as unknown under 5.5) before it hands "
    "the stream's SYN to the transport"
)
_EITHER_SIDE: Final = (
    "Either side opens streams: an implementation MUST let its application open streams in the "
    "server role as well as in the client role."
)
_SOURCE_CASE: Final = "smux/10.4/fin-after-all-data"
#: The OPEN line is completed, and the new stream fed, while other streams are open.
_WRITE_AFTER_FIN: Final = "smux/10.2/write-after-peer-fin"
_FIRST_IDS: Final[dict[str, str]] = {
    "server": "smux/5.1/server-first-ids",
    "client": "smux/5.1/client-first-ids",
}
_OPEN: Final = b"OPEN 1 SINK\n"
SOURCE_BYTES: Final = 256 << 20
PROBE_BYTES: Final = 1000
#: The socket counts as full once its unread bytes stop growing for this long.  The
#: suite's socket fills first; buffers further up the path (the peer's send buffer,
#: docker-proxy's two sockets for a containerized server: tens of MiB) fill after it,
#: unseen, so the wait must cover them too (0.5 s once let v1.5.57 through in five runs).
STEADY: Final = 1.5
#: Time for the peer to read ``OPEN 1 SINK`` and open the stream (before scaling).
SETTLE: Final = 1.0


@case(
    "smux/10.1/peer-opens-streams",
    title="The peer opens a stream when asked, in either role",
    spec="10.1",
    requirement=_EITHER_SIDE,
    level="must",
)
def test_peer_opens_streams(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """``OPEN 1 SOURCE 10``: a SYN from the peer, SOURCE's 10 bytes on that stream, and
    ``OPENED`` naming it on the command's stream."""
    control = raw_conn.open_stream(b"OPEN 1 SOURCE 10\n")
    try:
        opened = raw_conn.expect_frame(lambda f: f.cmd == Cmd.SYN, 5.0, what="the peer's SYN")
    except WireAssertion as exc:
        on_control = [f for f in frames_for(raw_conn, control) if f.cmd in (Cmd.PSH, Cmd.FIN)]
        smux_check.expect(
            False,
            expected="a SYN: the peer opens the stream OPEN 1 asks for",
            actual=f"{exc}; on OPEN's stream {control}: {on_control or 'nothing'}",
        )
        return
    body, _ = collect(raw_conn, opened.sid, 10)
    smux_check.expect(
        body == pattern(10),
        expected=f"SOURCE 10's pattern bytes on the new stream {opened.sid}",
        actual=repr(body),
    )
    line, _ = collect(raw_conn, control, 1 << 16)
    want = f"OPENED {opened.sid}\n".encode()
    smux_check.expect(line == want, expected=repr(want), actual=repr(line))


def _pause(seconds: float) -> None:
    """Let the peer run for ``seconds`` (scaled) without reading its socket: reading is
    what would unblock its send path, so there is no event to wait on here."""
    time.sleep(scaled(seconds))


def _unread(sock: socket.socket) -> int:
    """Bytes waiting in the socket's receive queue (FIONREAD)."""
    buf = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
    return int.from_bytes(buf, "little")


def _wait_full(conn: RawConnection, deadline: Deadline) -> int:
    """Wait until the unread bytes stop growing for STEADY seconds; return their count."""
    last, steady = _unread(conn.sock), Deadline(STEADY)
    while not deadline.expired:
        _pause(0.05)
        now = _unread(conn.sock)
        if now != last:
            last, steady = now, Deadline(STEADY)
        elif steady.expired:
            return now
    return -1


def _next_skipping(  # noqa: PLR0917 - the wait's parts
    conn: RawConnection,
    skip: int,
    pred: Callable[[Frame], bool],
    deadline: Deadline,
    what: str,
    fin_of: int | None = None,
) -> Frame:
    """The next frame matching ``pred``, reading in order and discarding frames of the
    SOURCE stream ``skip`` as they come (so they never pile up as pending); ``fin_of``:
    the wait is for that stream's FIN (RawConnection.expect_frame)."""
    while True:
        frame = conn.expect_frame(None, deadline, control=True, what=what, fin_of=fin_of)
        if frame.sid != skip and pred(frame):
            return frame


@case(
    "smux/10.1/ready-before-syn",
    title="A stream the peer opens receives frames sent before its SYN reached the wire",
    spec="10.1",
    requirement=_READY,
    level="must",
    relies_on=(
        _SOURCE_CASE,
        _WRITE_AFTER_FIN,
        MULTIPLEX_CASE,
        PEER_OPENS,
        *_FIRST_IDS.values(),
    ),
)
def test_ready_before_syn(raw_conn: RawConnection, smux_check: SmuxCheck, role: Role) -> None:
    """Blocked send path, ``OPEN 1 SINK``, data and FIN for the predicted id, then the
    SINK reply must count the data (see the module docstring)."""
    # The command line's first bytes go first, while the send path is free: a version 2
    # peer acknowledges its first read with a UPD (SPEC.md 9.2), which would otherwise
    # wait behind the blocked send path and hold the command back.
    command = raw_conn.open_stream(_OPEN[:-2])
    if raw_conn.version == 2:
        with contextlib.suppress(WireAssertion):
            raw_conn.expect_frame(
                lambda f: f.sid == command and f.cmd == Cmd.UPD, 2.0, control=True
            )
    source = raw_conn.open_stream(f"SOURCE {SOURCE_BYTES}\n".encode())
    if raw_conn.version == 2:
        raw_conn.send_raw(upd(raw_conn, source, 0, 0x7FFFFFFF))
    full = _wait_full(raw_conn, Deadline(30.0))
    smux_check.require(
        full > 0,
        prerequisite=_SOURCE_CASE,
        what="the peer's SOURCE fills the connection",
        actual=f"unread bytes never settled (or none): {full}",
    )
    predicted = 2 if role == "server" else 3
    raw_conn.send_raw(psh(raw_conn, command, _OPEN[-2:]))
    _pause(SETTLE)
    data = payload(23, PROBE_BYTES)
    raw_conn.send_raw(psh(raw_conn, predicted, data) + fin(raw_conn, predicted))
    _pause(0.2)
    still = _unread(raw_conn.sock)
    smux_check.require(
        still == full,
        prerequisite=_SOURCE_CASE,
        what="the peer's send path stays blocked while the suite does not read",
        actual=f"{full} unread bytes when OPEN was completed, {still} after the probe",
    )
    deadline = Deadline(30.0)
    first = len(raw_conn.frames)
    # OPEN's last bytes went out on the command stream after SOURCE's SYN: a peer that
    # hands PSH to the wrong stream never reads the whole line and opens nothing.
    with smux_check.relying_on(MULTIPLEX_CASE, "OPEN's line, completed on its own stream"):
        try:
            while True:
                opened = _next_skipping(
                    raw_conn,
                    source,
                    lambda f: f.cmd == Cmd.SYN or (f.cmd == Cmd.FIN and f.sid == command),
                    deadline,
                    "the peer's SYN",
                )
                if opened.cmd == Cmd.SYN:
                    break
                if not frames_for(raw_conn, command, [Cmd.PSH]):
                    raise WireAssertion(f"no SYN: the peer ended OPEN's stream {command}")
        except WireAssertion as exc:
            blame_refused_open(raw_conn, smux_check, command, exc)
            raise
    smux_check.require(
        opened.sid == predicted,
        prerequisite="smux/5.1/server-first-ids"
        if role == "server"
        else "smux/5.1/client-first-ids",
        what=f"the peer opens stream {predicted}",
        actual=f"SYN for {opened.sid}",
    )
    smux_check.info(
        f"{full} bytes were waiting when OPEN was sent, {still} after the probe; the SYN came "
        f"after {sum(len(f.data) for f in raw_conn.frames[first:])} more bytes"
    )
    raw_conn.send_raw(fin(raw_conn, predicted))
    reply = bytearray()
    try:
        while True:
            frame = _next_skipping(
                raw_conn,
                source,
                lambda f: f.sid == predicted and f.cmd in (Cmd.PSH, Cmd.FIN),
                deadline,
                f"SINK's reply on stream {predicted}",
                fin_of=predicted,
            )
            if frame.cmd == Cmd.FIN:
                break
            reply += frame.data
    except WireAssertion as exc:
        raw_conn.read_to_frame_boundary()
        smux_check.expect(False, expected="SINK's reply, then FIN", actual=str(exc))
        return
    raw_conn.read_to_frame_boundary()  # the SOURCE goes on: stop on a whole frame
    smux_check.require(
        bool(reply),
        prerequisite=_WRITE_AFTER_FIN,
        what="SINK's reply written after the suite's FIN",
        actual="the peer's FIN with no reply before it",
    )
    want = f"{len(data)} {sha256(data)}\n".encode()
    smux_check.expect(
        bytes(reply) == want,
        expected=f"SINK reply {want!r}: the {len(data)} bytes sent while the peer's SYN "
        "was still waiting for the transport were received",
        actual=repr(bytes(reply))
        + (" (the data before the SYN reached the wire was dropped)" if reply[:2] == b"0 " else ""),
    )
