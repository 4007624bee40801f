"""Deliberate protocol mistakes for the suite's self-test (``--bug NAME``).

A conformance suite that never fails proves nothing: an oracle that is too lenient, or
a case that checks the wrong frame, passes every implementation.  So the reference peer
can be broken on purpose, one realistic mistake per switch (BoGo's ``ProtocolBugs``),
and ``tests/test_gate_catches_bugs.py`` requires that the suite catches every switch
with at least one must-level case while the clean peer passes everything.

Each switch is an :class:`~smuxref.engine.Engine` subclass that overrides one of the
engine's seams - ``table`` (the stream state table), ``_queue`` (every outgoing frame,
through :class:`FrameRewriter`), ``_handle_frame`` (every incoming frame),
``open_stream``, ``_allocate_id`` and the ``_next_id`` seed, ``_emit`` (the window and
frame-size logic), ``consumed`` (UPD generation), ``handle_timer`` (keepalive), ``receive_data`` /
``_stalled`` (reading) - and nothing else, so the mistake stays as small as the bug it
imitates.  :func:`engine_class` stacks the chosen switches into one class (each calls
``super()``, so several can be combined); the suite's build of the reference peer
(``python -m smuxref_conformance.bugs --bug NAME ...``) hands that class to
:func:`smuxref.peer.main`, which passes it to every session it makes.  Nothing in
smuxref is patched, and the shipped package carries none of this.

Most switches keep the contract's readiness probe working (one stream, ``ECHO``, a
16-byte payload): a bug that breaks even that round trip can only be seen by cases
where the peer plays the client, since a server that never answers ``ECHO`` is a
launch failure (CONTRACT.md rule 5), not a protocol verdict.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from smuxref._frame import HEADER, HEADER_SIZE, MAX_PAYLOAD, Cmd, Frame, Upd
from smuxref._state import TRANSITIONS, StreamInput, StreamState
from smuxref._streaminfo import StreamInfo
from smuxref.engine import Engine
from smuxref.events import Event

__all__ = ["BUGS", "Bug", "engine_class"]

_MASK32: Final = 0xFFFFFFFF


# --------------------------------------------------------------------- outgoing frames


class FrameRewriter(Engine):
    """Base of the switches that change outgoing frames: every frame is built by
    :meth:`_frame_bytes`, which they override (and chain with ``super()``)."""

    def _queue(self, cmd: Cmd, sid: int, data: bytes | memoryview = b"") -> None:
        self._out.append(self._frame_bytes(cmd, sid, data))

    def _frame_bytes(self, cmd: Cmd, sid: int, data: bytes | memoryview) -> bytes:
        return HEADER.pack(self.version, cmd, len(data), sid) + data


class LenBigEndian(FrameRewriter):
    """LEN written big-endian (``struct.pack(">H")``), the classic byte-order slip.

    Frames whose LEN reads the same both ways (0, 257, ...) are unaffected, so SYN, FIN
    and NOP look right and every PSH of another length desynchronises the peer.
    """

    def _frame_bytes(self, cmd: Cmd, sid: int, data: bytes | memoryview) -> bytes:
        raw = super()._frame_bytes(cmd, sid, data)
        if len(raw) < HEADER_SIZE:
            return raw
        length = int.from_bytes(raw[2:4], "little")
        return raw[:2] + length.to_bytes(2, "big") + raw[4:]


class FinWrongVersion(FrameRewriter):
    """FIN carries VER 1 whatever the session's version: a FIN builder that kept the
    protocol-1 constant (Go before v1.5.3 wrote the constant 1 into every header).
    Invisible in version 1 sessions, a protocol error for a version 2 receiver."""

    def _frame_bytes(self, cmd: Cmd, sid: int, data: bytes | memoryview) -> bytes:
        raw = super()._frame_bytes(cmd, sid, data)
        if cmd == Cmd.FIN and raw:
            return b"\x01" + raw[1:]
        return raw


class NoKeepalive(FrameRewriter):
    """The NOP is built but never written: keepalive looks enabled (the timeout still
    runs) and the peer's keepalive kills the session (SPEC.md 7.1)."""

    def _frame_bytes(self, cmd: Cmd, sid: int, data: bytes | memoryview) -> bytes:
        return b"" if cmd == Cmd.NOP else super()._frame_bytes(cmd, sid, data)


class NoFin(FrameRewriter):
    """Closing a stream, fully or half, sends no FIN (SPEC.md 10.4): the peer's reader
    never sees the end of the stream."""

    def _frame_bytes(self, cmd: Cmd, sid: int, data: bytes | memoryview) -> bytes:
        return b"" if cmd == Cmd.FIN else super()._frame_bytes(cmd, sid, data)


class UpdConsumedHeaders(FrameRewriter):
    """UPD's CONSUMED counts wire bytes, 8 header bytes per received PSH included,
    instead of payload bytes consumed (SPEC.md 9.2): the peer's window grows too fast
    and, once everything is read, CONSUMED exceeds what it sent."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._frames_in: dict[int, int] = {}

    def _handle_frame(self, frame: Frame, events: list[Event]) -> None:
        if frame.cmd == Cmd.PSH and frame.data and frame.sid in self._streams:
            self._frames_in[frame.sid] = self._frames_in.get(frame.sid, 0) + 1
        super()._handle_frame(frame, events)

    def _frame_bytes(self, cmd: Cmd, sid: int, data: bytes | memoryview) -> bytes:
        if cmd == Cmd.UPD and len(data) == 8:
            upd = Upd.decode(bytes(data))
            extra = HEADER_SIZE * self._frames_in.get(sid, 0)
            data = Upd((upd.consumed + extra) & _MASK32, upd.window).encode()
        return super()._frame_bytes(cmd, sid, data)


# ------------------------------------------------------------------------ sending


class IgnorePeerWindow(Engine):
    """Version 2 sender that never looks at the peer's window (SPEC.md 9.3): every
    write goes out at once, past the initial 262144 bytes and past any UPD."""

    def _emit(self, st: StreamInfo, view: memoryview) -> int:
        if self.version == 2:
            st.peer_window = 1 << 31  # larger than anything in flight, always
        return super()._emit(st, view)


class IgnoreMaxFrameSize(Engine):
    """Writes are cut at the largest LEN the header allows (65535) instead of the
    configured MaxFrameSize (SPEC.md 6.1)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config = dataclasses.replace(self.config, max_frame_size=MAX_PAYLOAD)


class UpdInV1(Engine):
    """Window updates sent whatever the version: a version 1 session gets UPD frames,
    which a version 1 receiver must treat as a protocol error (SPEC.md 4.2)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._v1_read: dict[int, int] = {}

    def consumed(self, sid: int, n: int) -> list[Event]:
        known = sid in self._streams
        events = super().consumed(sid, n)
        if self.version == 1 and known and n > 0 and not self.is_closed:
            total = self._v1_read[sid] = (self._v1_read.get(sid, 0) + n) & _MASK32
            self._queue(Cmd.UPD, sid, Upd(total, self.config.max_stream_buffer).encode())
        return events


# ---------------------------------------------------------------------- stream ids


class FirstSidOneOrZero(Engine):
    """The first stream id is the counter's seed (client 1, server 0), as the upstream
    README's "start from 1 / start from 0" reads if taken literally (SPEC.md 5.1)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._next_id -= 2


class SidStepOne(Engine):
    """Stream ids after the first one grow by 1, not 2 (SPEC.md 5.1): the second stream
    gets the peer's parity and can collide with a stream the peer opens."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._allocated = False

    def _allocate_id(self) -> int:
        if self._allocated:
            self._next_id -= 1
        sid = super()._allocate_id()
        self._allocated = True
        return sid


class ReuseOpenId(Engine):
    """The next id is allocated without looking at the stream table, as Go does up to
    v1.5.58 (SPEC.md 5.1): after the peer opened a stream with this side's parity, the
    next open takes over that id and the peer's stream is orphaned."""

    def _allocate_id(self) -> int:
        if self._go_away or self._next_id + 2 > _MASK32:
            return super()._allocate_id()  # the clean path raises GoAwayError
        self._next_id += 2
        return self._next_id


# ---------------------------------------------------------------- incoming frames


class SynBeforeRegister(Engine):
    """A stream this side opens joins the stream table only after the next chunk of
    input has been processed, as Go up to v1.5.57 registers a stream only once its send
    loop reports the SYN written (SPEC.md 10.1): the peer's frames for the id in that
    chunk are dropped as for an unknown stream."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._unregistered: set[int] = set()  # opened since the last input chunk
        self._dropping: set[int] = set()  # opened before this chunk: still unknown

    def open_stream(self) -> int:
        sid = super().open_stream()
        self._unregistered.add(sid)
        return sid

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event]:
        waiting, self._unregistered = self._unregistered, set()
        self._dropping = waiting
        try:
            return super().receive_data(data)
        finally:
            self._dropping = set()

    def _handle_frame(self, frame: Frame, events: list[Event]) -> None:
        if frame.sid in self._dropping and frame.cmd in (Cmd.PSH, Cmd.FIN, Cmd.UPD):
            return
        super()._handle_frame(frame, events)


class HalfCloseDropsUnread(Engine):
    """A half-closed stream is removed with the data its application has not read yet
    when the peer's FIN arrives, as in Go v1.5.54-v1.5.57 (SPEC.md 10.2).

    The application of a sans-IO engine reads between calls, so "not read yet" is data
    that came in the same input chunk as the FIN: data for a half-closed stream is
    handed out at the end of each ``receive_data`` call, and a FIN before that end
    discards it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._held: dict[int, list[Frame]] = {}

    def _handle_frame(self, frame: Frame, events: list[Event]) -> None:
        st = self._streams.get(frame.sid)
        if st is not None and st.state is StreamState.LOCAL_CLOSED:
            if frame.cmd == Cmd.PSH and frame.data:
                self._held.setdefault(frame.sid, []).append(frame)
                return
            if frame.cmd == Cmd.FIN:
                self._held.pop(frame.sid, None)
        super()._handle_frame(frame, events)

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event]:
        events = super().receive_data(data)
        held, self._held = self._held, {}
        for frames in held.values():
            for frame in frames:
                super()._handle_frame(frame, events)
        return events


class ZeroPshEof(Engine):
    """A zero-length PSH is taken for end of stream, as a reader that maps "read
    returned 0 bytes" to EOF would (SPEC.md 6.3): the stream ends and is closed.

    A state table whose empty-PSH rows are copies of the FIN rows."""

    table = MappingProxyType(
        {
            **TRANSITIONS,
            **{
                (state, StreamInput.RECV_EMPTY_PSH): TRANSITIONS[state, StreamInput.RECV_FIN]
                for state in StreamState
            },
        }
    )


class PshCurrentStream(Engine):
    """PSH payload goes to the stream most recently opened by the peer, not to the
    frame's id: a "current stream" cache that only a SYN updates.  With one stream
    nothing shows; with two interleaved streams data lands on the wrong one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._current: int | None = None

    def _handle_frame(self, frame: Frame, events: list[Event]) -> None:
        if frame.cmd == Cmd.SYN and frame.sid not in self._streams:
            super()._handle_frame(frame, events)
            if frame.sid in self._streams:
                self._current = frame.sid
            return
        current = self._current
        if (
            frame.cmd == Cmd.PSH
            and frame.sid in self._streams
            and current is not None
            and current in self._streams
        ):
            frame = frame._replace(sid=current)
        super()._handle_frame(frame, events)


class CloseOnNop(Engine):
    """A NOP is taken for "peer is going away" and ends the session (SPEC.md 7.3 says
    a receiver must accept NOPs): every keepalive of the peer kills the connection."""

    def _handle_frame(self, frame: Frame, events: list[Event]) -> None:
        if frame.cmd == Cmd.NOP:
            self._end(None, events)
            return
        super()._handle_frame(frame, events)


class DupSynResets(Engine):
    """A SYN for a stream that exists replaces it with a fresh one, dropping what was
    buffered and orphaning the application's stream (SPEC.md 5.4 forbids both)."""

    def _handle_frame(self, frame: Frame, events: list[Event]) -> None:
        if frame.cmd == Cmd.SYN:
            st = self._streams.get(frame.sid)
            if st is not None:
                self._forget(st)
        super()._handle_frame(frame, events)


class FinRepliesFin(Engine):
    """A FIN is answered at once with a FIN (Go v1.0.x closed a stream whose reader hit
    EOF), so data the application still writes after the peer's FIN is refused and
    lost (SPEC.md 10.2: a receiver must not answer FIN automatically)."""

    def _handle_frame(self, frame: Frame, events: list[Event]) -> None:
        st = self._streams.get(frame.sid) if frame.cmd == Cmd.FIN else None
        was_open = st is not None and st.state is StreamState.OPEN
        super()._handle_frame(frame, events)
        if was_open and st is not None and st.state is StreamState.REMOTE_CLOSED:
            self.close_write(frame.sid)


class NoVersionCheck(Engine):
    """The version byte of received frames is never looked at (SPEC.md 4.1): a frame of
    any version is processed as one of the session's version.

    Implemented in front of the engine's strict decoder: the first byte of every header
    is overwritten with the session's version, the headers found by following LEN, so
    every other check (command, length) still runs.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header = bytearray()  # the header being received, when cut by a segment
        self._skip = 0  # payload bytes of the current frame still to come

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event]:
        buf = bytearray(data)
        pos, end = 0, len(buf)
        while pos < end:
            if self._skip:
                step = min(self._skip, end - pos)
                self._skip -= step
                pos += step
                continue
            if not self._header:
                buf[pos] = self.version  # the VER byte of a new header
            step = min(HEADER_SIZE - len(self._header), end - pos)
            self._header += buf[pos : pos + step]
            pos += step
            if len(self._header) == HEADER_SIZE:
                self._skip = int.from_bytes(self._header[2:4], "little")
                self._header.clear()
        return super().receive_data(bytes(buf))


# ------------------------------------------------------------------------- reading


class NoReceiveBufferLimit(Engine):
    """Reading never stops at MaxReceiveBuffer (SPEC.md 8.2): a stream nobody reads
    grows without bound instead of pausing the session."""

    def _stalled(self) -> bool:
        return self._unaccepted > self.config.accept_backlog


class KeepaliveNeverTimesOut(Engine):
    """Every timeout tick believes traffic arrived: a dead peer is never detected
    (SPEC.md 7.2).  NOPs are still sent."""

    def handle_timer(self, now: float) -> list[Event]:
        self._keepalive.heard = True
        return super().handle_timer(now)


class KeepaliveTimeoutEarly(Engine):
    """The first timeout tick comes after half of KeepAliveTimeout, so an idle session
    is closed too early (SPEC.md 7.2)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self._keepalive.next_check is not None:
            self._keepalive.next_check -= self.config.keepalive_timeout / 2


# ----------------------------------------------------------------------- catalogue


@dataclass(frozen=True)
class Bug:
    """One switch: its engine subclass, the SPEC section it breaks, what it does."""

    name: str
    engine: type[Engine]
    spec: str

    @property
    def summary(self) -> str:
        doc = self.engine.__doc__ or ""
        return " ".join(doc.split("\n\n")[0].split())


#: name -> switch.  Names are stable: the gate test and reports refer to them.
BUGS: Final[dict[str, Bug]] = {
    bug.name: bug
    for bug in (
        Bug("len-big-endian", LenBigEndian, "4.1"),
        Bug("fin-wrong-version", FinWrongVersion, "4.1"),
        Bug("no-keepalive", NoKeepalive, "7.1"),
        Bug("ignore-peer-window", IgnorePeerWindow, "9.3"),
        Bug("first-sid-1-or-0", FirstSidOneOrZero, "5.1"),
        Bug("zero-psh-eof", ZeroPshEof, "6.3"),
        Bug("psh-current-stream", PshCurrentStream, "2.1"),
        Bug("no-fin", NoFin, "10.4"),
        Bug("close-on-nop", CloseOnNop, "7.3"),
        Bug("no-version-check", NoVersionCheck, "4.1"),
        Bug("ignore-max-frame-size", IgnoreMaxFrameSize, "6.1"),
        Bug("upd-in-v1", UpdInV1, "4.2"),
        Bug("sid-step-1", SidStepOne, "5.1"),
        Bug("upd-consumed-headers", UpdConsumedHeaders, "9.2"),
        Bug("no-receive-buffer-limit", NoReceiveBufferLimit, "8.2"),
        Bug("keepalive-never-times-out", KeepaliveNeverTimesOut, "7.2"),
        Bug("keepalive-timeout-early", KeepaliveTimeoutEarly, "7.2"),
        Bug("dup-syn-resets", DupSynResets, "5.4"),
        Bug("fin-replies-fin", FinRepliesFin, "10.2"),
        Bug("reuse-open-id", ReuseOpenId, "5.1"),
        Bug("syn-before-register", SynBeforeRegister, "10.1"),
        Bug("half-close-drops-unread", HalfCloseDropsUnread, "10.2"),
    )
}


def engine_class(names: Iterable[str]) -> type[Engine]:
    """The engine class with every named switch applied (the plain ``Engine`` for none).

    Unknown names raise ``KeyError``.  Switches are stacked in the order given; each
    calls ``super()``, so they compose.
    """
    chosen = [BUGS[name].engine for name in dict.fromkeys(names)]
    if not chosen:
        return Engine
    if len(chosen) == 1:
        return chosen[0]
    return type("BuggyEngine", (*chosen,), {"__doc__": "; ".join(c.__name__ for c in chosen)})
