"""Preconditions every case shares: the peer's frames are well formed, its server answers.

Some prerequisites are not a step of one case but of all of them.  Every case reads the
peer's frames; if the peer writes a wrong version byte, a UPD in a version 1 session or
a LEN that desynchronises the stream, any case that reads past that frame fails on
garbage, whatever it was checking.  The frame-format cases of SPEC.md 4.1 and 4.2 are
the ones that test this, so a failure in any *other* case whose connection carried such
a frame (or whose smuxref session ended on it) is ``inconclusive``, naming the format
case (:func:`blame_frames`, :func:`blame_session`; applied by
:mod:`smuxref_conformance.plugin.gate`).

Likewise every server-role case relies on the server answering an ``ECHO`` round trip:
a server that prints LISTENING and answers the readiness probe with wrong frames is not
broken as a *contract* (CONTRACT.md rule 5 is about a server that never answers); it
fails the protocol.  It is started anyway (``ServerHandle.unready`` keeps its frames), the cases in
:data:`READINESS_EXEMPT` run against it and carry the failure, and every other case is
inconclusive naming them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from smuxref import Cmd, Frame
from smuxref._streaminfo import StreamInfo
from smuxref.errors import ProtocolError

from ..wire import fin_owed_streams

__all__ = [
    "BLAMED_BY_EVERY_CASE",
    "FORMAT_CASES",
    "READINESS_CASE",
    "READINESS_EXEMPT",
    "blame_frames",
    "blame_session",
    "describe_session_end",
]

VERSION_ON_STREAM_FRAMES: Final = "smux/4.1/version-on-syn-psh-fin"
VERSION_ON_NOP: Final = "smux/4.1/version-on-nop"
VERSION_ON_UPD: Final = "smux/4.1/version-on-upd"
NO_UPD_IN_V1: Final = "smux/4.2/no-upd-sent-in-version-1"
#: The cases that test the format of what the peer sends: never blamed on themselves.
FORMAT_CASES: Final = frozenset(
    {VERSION_ON_STREAM_FRAMES, VERSION_ON_NOP, VERSION_ON_UPD, NO_UPD_IN_V1}
)
#: The case an unready server's other cases name (one ECHO stream, end to end).
READINESS_CASE: Final = "smux/10.1/interop-one-stream"
#: Cases that run against a server whose readiness ECHO failed, to show why.
READINESS_EXEMPT: Final = frozenset({READINESS_CASE, VERSION_ON_STREAM_FRAMES})


def _malformed(frame: Frame, version: int) -> tuple[str, str] | None:
    """The format case a received frame breaks, and how (None: well formed)."""
    found = _bad_header(frame.version, frame.cmd, len(frame.data), version)
    return None if found is None else (found[0], f"{found[1]}: {frame!r}")


def _bad_header(ver: int, cmd: int, length: int, version: int) -> tuple[str, str] | None:
    """The format case a header breaks.

    A header that cannot be right in any session (an unknown command or version byte, a
    LEN its command does not allow) means the byte stream is out of step - the usual
    result of a LEN written wrong - and is blamed on the case that reads the peer's
    stream frames; only a well-formed header with the other version byte, or a UPD in a
    version 1 session, is blamed on the case for that command.
    """
    if cmd > Cmd.UPD or ver not in (1, 2):
        return VERSION_ON_STREAM_FRAMES, "a garbled header (the stream out of step?)"
    if (cmd in (Cmd.SYN, Cmd.FIN, Cmd.NOP) and length) or (cmd == Cmd.UPD and length != 8):
        return VERSION_ON_STREAM_FRAMES, f"a {Cmd(cmd).name} with LEN {length}"
    if ver != version:
        case = {Cmd.NOP: VERSION_ON_NOP, Cmd.UPD: VERSION_ON_UPD}.get(
            Cmd(cmd), VERSION_ON_STREAM_FRAMES
        )
        return case, f"a {Cmd(cmd).name} with version byte {ver} in a v{version} session"
    if cmd == Cmd.UPD and version == 1:
        return NO_UPD_IN_V1, "a UPD in a version 1 session"
    return None


def blame_frames(frames: Iterable[Frame], version: int) -> tuple[str, str] | None:
    """The first malformed frame the peer sent: (format case, what was wrong)."""
    for frame in frames:
        found = _malformed(frame, version)
        if found is not None:
            return found
    return None


def blame_stall(what: str | None) -> tuple[str, str] | None:
    """A byte stream that stopped inside a frame (RawConnection.stalled_mid_frame): the
    frame's LEN disagrees with its bytes, which the stream-frame case sees first."""
    return None if what is None else (VERSION_ON_STREAM_FRAMES, what)


FIN_AFTER_DATA: Final = "smux/10.4/fin-after-all-data"


def blame_missing_fin(
    frames: Iterable[Frame], sent: Iterable[Frame], owed: Mapping[int, int] | None = None
) -> tuple[str, str] | None:
    """The peer wrote on streams whose FIN it owed - streams the suite had finished (its
    FIN sent), or ones that end on their own once their data has all come (``owed``:
    RawConnection.fin_owed, a SOURCE) - yet sent no FIN on any stream of the
    connection: whatever the case waited for at the end of a stream never came, which
    the FIN-after-data case tests."""
    received = list(frames)
    if any(f.cmd == Cmd.FIN for f in received):
        return None
    answered = fin_owed_streams(received, sent, owed or {})
    if not answered:
        return None
    return FIN_AFTER_DATA, (
        f"the peer wrote on streams {answered[:5]} whose FIN it owed (after the suite's FIN "
        "on them, or after all their data), and sent no FIN on any stream of the connection"
    )


WRITE_AFTER_FIN: Final = "smux/10.2/write-after-peer-fin"
#: Commands that write after the suite's FIN: SINK and HOLD reply then (CONTRACT.md 11, 13).
_REPLY_AFTER_FIN: Final = (b"SINK", b"HOLD")


#: Cases whose own check is the very thing a blame rule detects: they keep their fail.
OWN_CHECK: Final[dict[str, frozenset[str]]] = {
    WRITE_AFTER_FIN: frozenset(
        {
            "smux/10.2/no-automatic-fin",
            "smux/10.2/half-close-echo-continues",
            # Not smux/10.2/data-before-fin-delivered: data that arrives with the FIN
            # is echoed after it, so a peer that refuses every write after a FIN
            # (smux_rust 0.2.1) cannot show whether it delivered that data.  A peer
            # that loses the data but writes after FIN passes the named case, and the
            # gate's blame check (judge.prerequisites) then makes this result a fail.
        }
    ),
}


def _echo_owed(sid: int, sent: list[Frame], received: list[Frame]) -> bytes | None:
    """What an ECHO stream owes when the peer's FIN ends it: every byte the suite sent
    after ``ECHO\n`` and before its own FIN.  Only for a plain life - the suite's one
    SYN, non-empty PSH, its FIN, and no SYN from the peer for the id - since a duplicate
    SYN, an empty PSH or an id the peer took over may rightly cut what is owed (None)."""
    if any(f.cmd == Cmd.SYN and f.sid == sid for f in received):
        return None
    life: list[Frame] = []
    for frame in sent:
        if frame.sid != sid:
            continue
        if frame.cmd == Cmd.FIN:
            break
        life.append(frame)
    syns = [f for f in life if f.cmd == Cmd.SYN]
    if len(syns) != 1 or life[0].cmd != Cmd.SYN:
        return None
    pushed = [f for f in life if f.cmd == Cmd.PSH]
    if any(not f.data for f in pushed):
        return None
    data = b"".join(bytes(f.data) for f in pushed)
    return data.removeprefix(b"ECHO\n") if data.startswith(b"ECHO\n") else None


def _echoed_before_fin(sid: int, received: list[Frame]) -> bytes:
    """The bytes the peer wrote on ``sid`` before its FIN there."""
    out = bytearray()
    for f in received:
        if f.sid == sid and f.cmd == Cmd.FIN:
            break
        if f.sid == sid and f.cmd == Cmd.PSH:
            out += f.data
    return bytes(out)


def blame_early_fin(frames: Iterable[Frame], sent: Iterable[Frame]) -> tuple[str, str] | None:
    """The peer ended a SINK, HOLD or ECHO stream (FIN) after the suite's FIN without
    writing all it owed, so its writes after a FIN are lost, which the write-after-FIN
    case tests.

    Not when an ECHO stream echoed bytes the suite never sent on it: the data went to
    the wrong stream (a short echo elsewhere follows from that, not from the FIN), and
    the case's own check of each stream's bytes is the verdict."""
    received = list(frames)
    sent = list(sent)
    first_psh: dict[int, bytes] = {}
    finished: set[int] = set()
    for frame in sent:
        if frame.cmd == Cmd.PSH:
            first_psh.setdefault(frame.sid, bytes(frame.data))
        elif frame.cmd == Cmd.FIN:
            finished.add(frame.sid)
    ended = sorted(
        sid for sid in finished if any(f.cmd == Cmd.FIN and f.sid == sid for f in received)
    )
    owed_by_sid = {sid: _echo_owed(sid, sent, received) for sid in ended}
    echoed_by_sid = {sid: _echoed_before_fin(sid, received) for sid in ended}
    for sid, owed in owed_by_sid.items():
        if owed is not None and not owed.startswith(echoed_by_sid[sid]):
            return None  # crossed, not cut short
    for sid in ended:
        line, _, _ = first_psh.get(sid, b"").partition(b"\n")
        command = line.split(b" ", 1)[0]
        echoed = sum(len(f.data) for f in received if f.cmd == Cmd.PSH and f.sid == sid)
        # SINK and HOLD reply only after the FIN; an ECHO owes what the suite sent, but
        # only on a stream with a plain history (a reset stream owes nothing).
        if command in _REPLY_AFTER_FIN and echoed == 0:
            return WRITE_AFTER_FIN, (
                f"the peer ended stream {sid} ({command.decode(errors='replace')}) with FIN "
                f"after the suite's FIN without writing what it owed ({echoed} bytes written)"
            )
        owed = owed_by_sid[sid]
        if owed is not None and len(echoed_by_sid[sid]) < len(owed):
            return WRITE_AFTER_FIN, (
                f"the peer ended ECHO stream {sid} with FIN after the suite's FIN, having "
                f"echoed {len(echoed_by_sid[sid])} of the {len(owed)} bytes sent before that FIN"
            )
    return None


CONSUMED_CASE: Final = "smux/9.2/upd-after-first-read"


def blame_over_ack(streams: Iterable[StreamInfo], version: int) -> tuple[str, str] | None:
    """A version 2 peer whose UPD acknowledged more of a stream than the suite sent: its
    CONSUMED counts something else than payload read, so the suite's sender must stop
    (SPEC.md 9.4) and any transfer on the stream stalls, whatever the case checks.  The
    first-read UPD case checks CONSUMED's value."""
    if version != 2:
        return None
    for st in streams:
        if st.inflight() < 0:
            return CONSUMED_CASE, (
                f"the peer's UPD acknowledged {st.peer_consumed} bytes of stream {st.sid}, "
                f"of which the suite had sent {st.num_written}"
            )
    return None


def blame_session(error: BaseException | None, version: int) -> tuple[str, str] | None:
    """Why the suite's own smuxref session ended, as a format case, when the peer's
    frames ended it (a protocol error of the suite's decoder)."""
    cause = error
    while cause is not None and not isinstance(cause, ProtocolError):
        cause = getattr(cause, "cause", None) or cause.__cause__
    if cause is None:
        return None
    header = bytes(getattr(cause, "header", b"") or b"")
    what = f"the peer sent {header.hex(' ') or 'a bad header'}: {type(cause).__name__}: {cause}"
    if len(header) >= 4:
        found = _bad_header(header[0], header[1], int.from_bytes(header[2:4], "little"), version)
        if found is not None:
            return found[0], f"{found[1]}; {what}"
    return None  # not the header's fault (a truncated frame, a flow-control error)


#: Every case the rules of this module can blame, whatever case ran: a run of a few
#: cases includes them, so that its inconclusive results point at a verdict.
BLAMED_BY_EVERY_CASE: Final = frozenset(
    {*FORMAT_CASES, READINESS_CASE, FIN_AFTER_DATA, WRITE_AFTER_FIN, CONSUMED_CASE}
)


def describe_session_end(error: BaseException | None) -> str:
    """ "the suite's own smuxref session ended: ..." with the cause, for messages that
    would otherwise read only "SessionClosedError: session ended"."""
    cause = getattr(error, "cause", None)
    if cause is None:
        return "the suite's own smuxref session ended (the peer closed the connection)"
    return f"the suite's own smuxref session ended because of {type(cause).__name__}: {cause}"
