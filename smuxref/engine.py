"""The sans-IO smux session engine: bytes in, events out, bytes to send, time injected.

The engine never touches a socket or reads a clock.  An adapter (``smuxref.aio`` or a
test) feeds it what the transport delivered, calls the application-side methods, sends
whatever ``data_to_send()`` returns, and calls ``handle_timer(now)`` when
``next_timer()`` comes due.

Receive buffering follows Go's token bucket (SPEC.md 8): delivered data charges the
bucket until the application reports it read via ``consumed``; while the bucket is
empty, or once a SYN arrives beyond ``accept_backlog`` un-accepted streams, frames are held
back unprocessed and ``reading_paused`` tells the adapter to stop reading the transport.
Memory held for a peer is thus bounded by the configuration, not by the peer.

Sending has two forms.  ``send`` takes only what the peer's window allows now and says
how much; ``write`` takes everything and holds what does not fit in the stream's
output queue, which UPD frames then release (as aioquic's stream sender holds data
until the peer's credit allows).  The queue is bounded by what the application writes
before it waits for ``queued`` to fall, as ``smuxref.aio``'s ``drain`` does.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import ClassVar, Final

from ._decoder import FrameDecoder
from ._frame import HEADER, HEADER_SIZE, MAX_PAYLOAD, Cmd, Frame, Upd
from ._keepalive import KeepaliveClock
from ._state import TRANSITIONS, Effect, StreamInput, StreamState
from ._streaminfo import StreamInfo, byte_view
from .config import Config
from .errors import (
    FlowControlError,
    GoAwayError,
    KeepAliveTimeoutError,
    ProtocolError,
    SessionClosedError,
    SmuxError,
    StreamClosedError,
    StreamIdError,
    UsageError,
)
from .events import (
    Event,
    PingReceived,
    SessionEnded,
    StreamEnded,
    StreamOpened,
    WindowUpdated,
    data_received,
)

__all__ = ["Engine", "StreamInfo"]

_MASK32: Final = 0xFFFFFFFF
_pack_header: Final = HEADER.pack

# Enum members the per-frame paths use, looked up once: reading a member off its Enum
# class costs about as much as the table lookup it feeds.
_SYN, _FIN, _PSH, _NOP, _UPD = Cmd.SYN, Cmd.FIN, Cmd.PSH, Cmd.NOP, Cmd.UPD
_In = StreamInput
_SEND_SYN, _RECV_SYN, _SEND_PSH, _RECV_PSH = _In.SEND_SYN, _In.RECV_SYN, _In.SEND_PSH, _In.RECV_PSH
_RECV_EMPTY_PSH, _SEND_FIN, _RECV_FIN = _In.RECV_EMPTY_PSH, _In.SEND_FIN, _In.RECV_FIN
_SEND_UPD, _RECV_UPD, _CLOSE = _In.SEND_UPD, _In.RECV_UPD, _In.CLOSE
_UNKNOWN, _CLOSED = StreamState.UNKNOWN, StreamState.CLOSED
_SEND, _REFUSE, _ACCEPT, _DELIVER = Effect.SEND, Effect.REFUSE, Effect.ACCEPT, Effect.DELIVER
_END, _WINDOW, _DISCARD = Effect.END, Effect.WINDOW, Effect.DISCARD
_FIN_AND_DISCARD = Effect.FIN_AND_DISCARD

_Table = Mapping[tuple[StreamState, StreamInput], tuple[Effect, StreamState]]


class Engine:
    """One smux session, client or server side, without I/O.

    Every stream's state lives here: its row of the state table, its read accounting
    and the data written beyond the peer's window.  Adapters keep views of the
    :class:`StreamInfo` records, never copies.

    Seams for variants (the suite's deliberate-bug engines override these and nothing
    else): ``table`` (the state table), ``_queue`` (every outgoing frame),
    ``_handle_frame`` (every incoming frame), ``_allocate_id``, ``_emit`` (how much of
    a write goes out now), ``consumed``, ``handle_timer``, ``receive_data`` and
    ``_stalled``.  The plain engine pays nothing for them.
    """

    #: The stream state table this engine follows (SPEC.md 10.5).
    table: ClassVar[_Table] = TRANSITIONS

    def __init__(
        self,
        config: Config | None = None,
        *,
        client: bool,
        now: float = 0.0,
        next_stream_id: int | None = None,
    ) -> None:
        self.config = config if config is not None else Config()
        self.client = client
        self.version = self.config.version
        self._table = self.table
        self._decoder = FrameDecoder(self.version, MAX_PAYLOAD)
        self._streams: dict[int, StreamInfo] = {}
        self._out: list[bytes | memoryview] = []
        self._pending: deque[Frame] = deque()
        self._pending_error: ProtocolError | None = None
        self._eof = False
        # Go seeds the counter at 1 (client) or 0 (server) and adds 2 before each use,
        # so the first ids are 3 and 2 (SPEC.md 5.1).
        self._next_id = (1 if client else 0) if next_stream_id is None else next_stream_id - 2
        self._go_away = False
        self._bucket = self.config.max_receive_buffer
        self._unaccepted = 0
        self._ended: SmuxError | None = None
        self._ended_reported = False
        self._closed = False
        self._keepalive = KeepaliveClock(self.config, now)
        self._received = 0

    # ------------------------------------------------------------------ state

    @property
    def is_closed(self) -> bool:
        """True once the session ended, for whatever reason."""
        return self._closed or self._ended_reported

    @property
    def error(self) -> SmuxError | None:
        """Why the session ended, when it ended on an error (None while open, after a
        clean end of the transport and after a local close)."""
        return self._ended

    @property
    def num_streams(self) -> int:
        """Streams the session tracks: open ones, and finished ones whose unread data
        or queued output is still held."""
        return len(self._streams)

    @property
    def stream_ids(self) -> list[int]:
        return list(self._streams)

    @property
    def streams(self) -> Mapping[int, StreamInfo]:
        """The tracked streams by id (read-only; the engine changes it as frames arrive)."""
        return self._streams

    def stream(self, sid: int) -> StreamInfo | None:
        return self._streams.get(sid)

    def stream_state(self, sid: int) -> StreamState:
        """The state-table row ``sid`` is in (UNKNOWN for an id with no stream)."""
        st = self._streams.get(sid)
        return _UNKNOWN if st is None else st.state

    @property
    def receive_window(self) -> int:
        """Tokens left in the session-wide receive buffer (may be negative)."""
        return self._bucket

    @property
    def partial_input(self) -> int:
        """Bytes received that do not make a whole frame yet (a frame in transit; one
        that stays incomplete while the peer is idle says its LEN and bytes disagree)."""
        return self._decoder.buffered

    @property
    def bytes_received(self) -> int:
        """Bytes fed so far: an unchanged count tells a quiet peer from a slow one."""
        return self._received

    @property
    def reading_paused(self) -> bool:
        """The adapter should stop reading the transport until this turns False."""
        return bool(self._pending) or self._stalled()

    def _stalled(self) -> bool:
        # Go's accept channel holds 1024 streams; the SYN after that is processed and
        # then the receive loop blocks until the application accepts (SPEC.md 3.3).
        return self._bucket <= 0 or self._unaccepted > self.config.accept_backlog

    # --------------------------------------------------------------- receiving

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Feed bytes from the transport; return what they caused.

        A protocol violation does not raise here: the frames before it are processed
        and the list ends with ``SessionEnded(error=...)``.  Feeding a session that has
        ended raises :class:`SessionClosedError`.
        """
        self._check_open()
        self._received += len(data)
        decoder = self._decoder
        # The decoder holds at most one incomplete frame; its header is whole once it
        # holds HEADER_SIZE bytes.  Go marks traffic per header read (SPEC.md 7.2).
        # Once marked, the mark stays until the next keepalive tick: no need to count.
        marked = self._keepalive.heard
        header_before = marked or decoder.buffered >= HEADER_SIZE
        try:
            frames = decoder.feed(data)
        except ProtocolError as exc:
            frames = getattr(exc, "frames", [])
            self._pending_error = exc
            self._keepalive.heard = True  # Go marks activity before checking the header
        # Headers completed by this call: every frame returned, plus a frame still
        # waiting for payload, minus the one whose header an earlier call completed.
        if not marked and len(frames) + (decoder.buffered >= HEADER_SIZE) > header_before:
            self._keepalive.heard = True
        if frames:
            self._pending.extend(frames)
        return self._process()

    def connection_lost(self) -> list[Event]:
        """The transport reached EOF (or broke).  Held-back frames are still delivered
        first; the session then ends, with TruncatedFrameError if a frame was cut off."""
        if self._closed or self._ended_reported or self._eof:
            return []
        self._eof = True
        try:
            self._decoder.close()
        except ProtocolError as exc:
            if self._pending_error is None:
                self._pending_error = exc
        return self._process()

    def _process(self) -> list[Event]:
        events: list[Event] = []
        pending = self._pending
        while pending and not self._stalled() and not self._ended_reported:
            self._handle_frame(pending.popleft(), events)
        if not pending and not self._ended_reported:
            if self._pending_error is not None:
                self._end(self._pending_error, events)
            elif self._eof:
                self._end(None, events)
        return events

    def _handle_frame(self, frame: Frame, events: list[Event]) -> None:
        """Classify one frame as a table input and perform its row's effect."""
        cmd = frame.cmd
        sid = frame.sid
        if cmd == _PSH:
            what = _RECV_PSH if frame.data else _RECV_EMPTY_PSH
        elif cmd == _NOP:
            events.append(PingReceived(stream_id=sid))  # session-wide: no stream row
            return
        elif cmd == _SYN:
            what = _RECV_SYN
        elif cmd == _FIN:
            what = _RECV_FIN
        else:  # UPD; the decoder already refused it in version 1 sessions
            what = _RECV_UPD
        st = self._streams.get(sid)
        if st is None:
            if self._table[_UNKNOWN, what][0] is _ACCEPT:
                self._accept_syn(sid, events)
            return  # every other row for an unknown id drops the frame
        effect, st.state = self._table[st.state, what]
        if effect is _DELIVER:
            data = frame.data
            n = len(data)
            st.buffered += n
            self._bucket -= n
            events.append(data_received(sid, data))
        elif effect is _END:
            st.eof = True
            events.append(StreamEnded(stream_id=sid, info=st))
            self._maybe_forget(st)
        elif effect is _WINDOW:
            upd = Upd.decode(frame.data)
            st.peer_consumed = upd.consumed
            st.peer_window = upd.window
            if st.queued:
                self._release(st)
            events.append(
                WindowUpdated(stream_id=sid, consumed=upd.consumed, window=upd.window, info=st)
            )

    def _accept_syn(self, sid: int, events: list[Event]) -> None:
        # This side opens odd ids as client and even ids as server (SPEC.md 5.1).
        if self.config.reject_own_parity_syn and (sid == 0 or sid % 2 == (1 if self.client else 0)):
            self._pending_error = StreamIdError(
                f"peer opened stream {sid}, an id of this side's parity",
                header=_pack_header(self.version, Cmd.SYN, 0, sid),
            )
            self._pending.clear()
            return
        st = self._streams[sid] = StreamInfo(sid, accepted=False)
        st.state = self._table[_UNKNOWN, _RECV_SYN][1]
        self._unaccepted += 1
        events.append(StreamOpened(stream_id=sid))

    def _end(self, error: SmuxError | None, events: list[Event]) -> None:
        self._ended = error
        self._ended_reported = True
        self._pending.clear()
        events.append(SessionEnded(error=error))

    # ------------------------------------------------------------- application

    def open_stream(self) -> int:
        """Allocate the next stream id and queue its SYN (SPEC.md 5.1, 10.1)."""
        self._check_open()
        sid = self._allocate_id()
        effect, state = self._table[_UNKNOWN, _SEND_SYN]
        if effect is not _SEND:  # pragma: no cover - a table without opening
            raise StreamClosedError(f"stream {sid} cannot be opened")
        st = self._streams[sid] = StreamInfo(sid, accepted=True)
        st.state = state
        self._queue(_SYN, sid)
        return sid

    def _allocate_id(self) -> int:
        while True:
            if self._go_away or self._next_id + 2 > _MASK32:
                self._go_away = True
                raise GoAwayError("stream ids exhausted; open a new connection (SPEC.md 5.2)")
            self._next_id += 2
            # An id the peer already opened (with this side's parity, SPEC.md 5.4) is
            # skipped (5.1 SHOULD NOT): taking it over would lose that stream's unread
            # bytes from the receive buffer and its place in the accept backlog.
            if self._next_id not in self._streams:
                return self._next_id

    def accept(self, sid: int) -> list[Event]:
        """The application took the peer-opened stream ``sid``; may resume processing."""
        st = self._streams.get(sid)
        if st is not None and not st.accepted:
            st.accepted = True
            self._unaccepted -= 1
        return self._process()

    def send(self, sid: int, data: bytes | bytearray | memoryview) -> int:
        """Queue as much of ``data`` as the protocol allows now; return how much.

        Version 1 takes everything.  Version 2 takes at most the peer's window minus
        what is in flight (SPEC.md 9.3); 0 means "wait for WindowUpdated" (and so does
        any data still held by ``write``, which goes first).  Data is cut into PSH
        frames of at most ``max_frame_size`` bytes (SPEC.md 6.1).
        """
        st = self._writable(sid)
        if st.queued:
            return 0
        return self._emit(st, byte_view(data))

    def write(self, sid: int, data: bytes | bytearray | memoryview) -> int:
        """Take all of ``data``: send what the peer's window allows and hold the rest
        until UPD frames open it.  Returns the bytes of the stream still held.

        Refused (StreamClosedError) in the states where sending is; version 1 never
        holds anything.
        """
        st = self._writable(sid)
        view = byte_view(data)
        if not view:
            return st.queued
        if st.queued:
            assert st.outbox is not None
            st.outbox.append(view)
            st.queued += len(view)
            return st.queued
        sent = self._emit(st, view)
        if sent < len(view):
            if st.outbox is None:
                st.outbox = deque()
            st.outbox.append(view[sent:])
            st.queued = len(view) - sent
        return st.queued

    def _writable(self, sid: int) -> StreamInfo:
        """The stream ``sid``, if the table lets the application send on it now."""
        self._check_open()
        st = self._streams.get(sid)
        state = _UNKNOWN if st is None else st.state
        if self._table[state, _SEND_PSH][0] is _REFUSE or st is None:
            if st is None:
                raise StreamClosedError(f"no open stream {sid}")
            raise StreamClosedError(f"stream {sid} is closed for writing ({state.value})")
        return st

    def _emit(self, st: StreamInfo, view: memoryview) -> int:
        """Frame as much of ``view`` as the window allows now; return how much."""
        total = len(view)
        if total == 0:
            return 0  # Go never sends a zero-length PSH (SPEC.md 6.3)
        if self.version == 2:
            total = min(total, st.window_left())  # FlowControlError when over-acknowledged
            if total <= 0:
                return 0
            st.num_written = (st.num_written + total) & _MASK32
            view = view[:total]  # the last frame must not run past the window
        step = self.config.max_frame_size
        if total <= step:  # one frame: a message, a small write
            self._queue(_PSH, st.sid, view)
            return total
        queue = self._queue
        sid = st.sid
        for start in range(0, total, step):
            queue(_PSH, sid, view[start : start + step])
        return total

    def _release(self, st: StreamInfo) -> None:
        """The peer's window moved: send what the stream's output queue holds, in order,
        then the FIN queued behind it.  An over-acknowledging peer (SPEC.md 9.4) makes
        the held data unsendable: it is dropped and ``send_error`` says why."""
        outbox = st.outbox
        assert outbox is not None
        try:
            while outbox:
                head = outbox[0]
                sent = self._emit(st, head)
                st.queued -= sent
                if sent < len(head):
                    outbox[0] = head[sent:]
                    return
                outbox.popleft()
        except FlowControlError as exc:
            st.send_error = exc
            outbox.clear()
            st.queued = 0
        if st.fin_queued:
            st.fin_queued = False
            self._queue(_FIN, st.sid)
        self._maybe_forget(st)

    def send_window(self, sid: int) -> int | None:
        """Version 2: bytes ``send`` would take now (None in version 1: unlimited)."""
        if self.version == 1:
            return None
        st = self._require(sid)
        try:
            return max(0, st.window_left())
        except FlowControlError:
            return 0  # over-acknowledged: no window at all (SPEC.md 9.4)

    def close_write(self, sid: int) -> None:
        """Half-close: FIN after the data already written, keep reading (Go's
        CloseWrite, SPEC.md 10.2)."""
        self._check_open()
        st = self._streams.get(sid)
        effect, state = self._table[_UNKNOWN if st is None else st.state, _SEND_FIN]
        if effect is _REFUSE or st is None:
            if st is None:
                raise StreamClosedError(f"no open stream {sid}")
            raise StreamClosedError(f"stream {sid} is already closed for writing")
        st.state = state
        self._send_fin(st)
        self._maybe_forget(st)

    def _send_fin(self, st: StreamInfo) -> None:
        if st.queued:
            st.fin_queued = True
        else:
            self._queue(_FIN, st.sid)

    def close_stream(self, sid: int) -> list[Event]:
        """Close for good: FIN unless already sent (after the data already written),
        unread data discarded (SPEC.md 10.4).

        Returns events because returning the discarded bytes to the receive buffer may
        let held-back frames through.  Closing an unknown or finished stream is a no-op.
        """
        st = self._streams.get(sid)
        if st is None:
            return []
        effect, st.state = self._table[st.state, _CLOSE]
        if effect is _FIN_AND_DISCARD and not self.is_closed:
            self._send_fin(st)
        if effect is _FIN_AND_DISCARD or effect is _DISCARD:
            self._bucket += st.buffered
            st.buffered = 0
            st.prepaid = 0
        if self.is_closed:
            self._forget(st)
            return []
        self._maybe_forget(st)
        return self._process()

    def consumed(self, sid: int, n: int) -> list[Event]:
        """The application read ``n`` bytes of stream ``sid``.

        Returns the tokens to the receive buffer (SPEC.md 8.3) and, in version 2, queues
        a UPD on the first read and whenever max_stream_buffer/2 more bytes were read
        since the last one (SPEC.md 9.2).  Bytes put back with :meth:`unread` are not
        counted twice.
        """
        if n < 0:
            raise UsageError(f"consumed({sid}, {n}): n must not be negative")
        st = self._streams.get(sid)
        if st is None or n == 0:
            return []
        if st.prepaid:
            n = st.unpaid(n)
            if n == 0:
                return []
        if n > st.buffered:
            raise UsageError(f"consumed({sid}, {n}) but only {st.buffered} bytes were delivered")
        st.buffered -= n
        self._bucket += n
        window = self.config.max_stream_buffer
        upd_due = self.version == 2 and not self.is_closed and st.count_read(n, window // 2)
        if upd_due and self._table[st.state, _SEND_UPD][0] is _SEND:
            self._queue(_UPD, sid, Upd(st.num_read, window).encode())
        if st.state is _CLOSED:
            self._maybe_forget(st)
        if self._pending or self._pending_error is not None or self._eof:
            # The tokens returned may let held-back frames through (SPEC.md 8.3).
            return self._process() if not self.is_closed else []
        return []

    def unread(self, sid: int, n: int) -> None:
        """The application put back ``n`` bytes it had reported read (a read that was
        cancelled after taking them); reading them again returns no tokens."""
        if n < 0:
            raise UsageError(f"unread({sid}, {n}): n must not be negative")
        st = self._streams.get(sid)
        if st is not None:
            st.prepaid += n

    def close(self) -> None:
        """Close the session locally.  Nothing is sent (SPEC.md 11): the adapter closes
        the transport, which is how the peer learns of it."""
        self._closed = True
        self._pending.clear()
        self._out.clear()
        for st in list(self._streams.values()):
            st.state = _CLOSED
            self._forget(st)

    # ------------------------------------------------------------------ timers

    def next_timer(self) -> float | None:
        """When ``handle_timer`` must next be called (None: never)."""
        return None if self.is_closed else self._keepalive.next_due()

    def handle_timer(self, now: float) -> list[Event]:
        """Run the keepalive clocks up to ``now`` (SPEC.md 7).

        A NOP goes out every interval, whatever else is sent.  At every timeout tick
        the session dies if no frame arrived since the previous tick, unless the
        receive buffer is exhausted (Go v1.5.12 and later).
        """
        events: list[Event] = []
        if self.is_closed:
            return events
        ping, silent = self._keepalive.advance(now)
        if ping:
            self._queue(_NOP, 0)
        if silent and self._bucket > 0:
            self._out.clear()  # closing on timeout sends nothing (SPEC.md 7.2, 11)
            timeout = self._keepalive.timeout
            self._end(KeepAliveTimeoutError(f"no frame arrived for {timeout:g} s"), events)
        return events

    # ------------------------------------------------------------------ output

    def data_to_send(self) -> bytes:
        """Everything queued for the transport since the last call."""
        if not self._out:
            return b""
        out = b"".join(self._out)
        self._out.clear()
        return out

    def _queue(self, cmd: Cmd, sid: int, data: bytes | memoryview = b"") -> None:
        # Header and payload stay separate pieces (the payload a slice of what the
        # application passed to send), so data_to_send's join is the only copy.
        self._out += (_pack_header(self.version, cmd, len(data), sid), data)

    # ----------------------------------------------------------------- helpers

    def _check_open(self) -> None:
        if self._closed:
            raise SessionClosedError("session closed locally")
        if self._ended_reported:
            raise SessionClosedError("session ended", cause=self._ended)

    def _require(self, sid: int) -> StreamInfo:
        st = self._streams.get(sid)
        if st is None:
            raise StreamClosedError(f"no open stream {sid}")
        return st

    def _maybe_forget(self, st: StreamInfo) -> None:
        """Drop a finished stream once the application has read all it was given and
        its output (data and FIN) has gone out."""
        if st.state is _CLOSED and st.buffered == 0 and not st.queued and not st.fin_queued:
            self._forget(st)

    def _forget(self, st: StreamInfo) -> None:
        self._bucket += st.buffered
        st.buffered = 0
        st.prepaid = 0
        if st.outbox:
            st.outbox.clear()
        st.queued = 0
        st.fin_queued = False
        if not st.accepted:
            st.accepted = True
            self._unaccepted -= 1
        self._streams.pop(st.sid, None)
