"""The engine target's model of an adapter and an application around one Engine.

:class:`EngineModel` makes only the calls smuxref's API allows, the way a correct
adapter and application would (the input may make the adapter feed while reading is
paused, which the engine must survive), and remembers what it asked for: the SYNs the
engine owes, the bytes ``send`` took per stream, the unread bytes per stream.  Every
batch of events and every byte the engine emits is checked against that record, so
an exception it does not expect, or output nobody asked for, is a bug.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Final

from fuzz.shared import FuzzInput, HarnessBug, require
from smuxref import (
    Cmd,
    Config,
    DataReceived,
    Engine,
    Event,
    Frame,
    FrameDecoder,
    GoAwayError,
    KeepAliveTimeoutError,
    PingReceived,
    ProtocolError,
    SessionClosedError,
    SessionEnded,
    StreamClosedError,
    StreamEnded,
    StreamOpened,
    StreamState,
    Upd,
    UsageError,
    WindowUpdated,
)
from smuxref.engine import StreamInfo

__all__ = ["PAYLOAD", "EngineModel", "stream_info"]

MASK32: Final = 0xFFFFFFFF
PAYLOAD: Final = bytes(range(256)) * 257  # 65792 bytes: any payload is a slice of this


def stream_info(engine: Engine, sid: int) -> StreamInfo:
    """The stream ``sid``, which the caller knows is in the engine's table."""
    st = engine.stream(sid)
    assert st is not None
    return st


@dataclass
class EngineModel:
    """The harness's side of the session: what was asked of the engine and what it did."""

    engine: Engine
    config: Config
    client: bool
    respect_pause: bool
    now: float = 0.0
    #: Bytes from the peer the adapter has not fed yet (it stops while reading is paused).
    backlog: bytearray = field(default_factory=bytearray)
    #: Data send() took and the wire has not carried yet, per stream id: every PSH must
    #: carry the next bytes of it, in order.
    unsent: dict[int, bytearray] = field(default_factory=dict)
    fins: dict[int, int] = field(default_factory=dict)
    #: How many times each id was opened (by either side): FINs per id are bounded by it.
    incarnations: dict[int, int] = field(default_factory=dict)
    #: SYNs the engine owes the wire, in order.
    syns: deque[int] = field(default_factory=deque)
    #: The last id this side allocated (Go's seed, 1 or 0, before the first).
    last_id: int = 0
    go_away: bool = False
    #: Delivered and not yet consumed, per stream, as the events tell it.
    unread: dict[int, int] = field(default_factory=dict)
    ended: bool = False
    #: Bytes queued before the end may still be flushed once; nothing after that.
    flushed_after_end: bool = False
    #: The engine legitimately dropped queued output (local close, keepalive death).
    output_dropped: bool = False
    out: FrameDecoder = field(init=False)

    def __post_init__(self) -> None:
        self.out = FrameDecoder(self.config.version)

    # ------------------------------------------------------------- the peer's side

    def deliver(self, data: bytes) -> None:
        self.backlog += data
        self.pump()

    def pump(self) -> None:
        engine = self.engine
        if not self.backlog or (self.respect_pause and engine.reading_paused):
            return
        if engine.is_closed:
            self._expect_closed(lambda: engine.receive_data(b"\x00"), "receive_data")
            self.backlog.clear()
            return
        data = bytes(self.backlog)
        self.backlog.clear()
        self.call(lambda: engine.receive_data(data))

    def events(self, events: list[Event], before: set[int]) -> None:
        """Check a batch of events; ``before`` holds the stream ids before the call."""
        opened: set[int] = set()
        for index, event in enumerate(events):
            require(not self.ended, f"event {event!r} after SessionEnded")
            if isinstance(event, StreamOpened):
                # The same id may open again once its stream was removed (SPEC.md 5.4),
                # which a FIN or the application can do within one call.
                sid = event.stream_id
                opened.add(sid)
                self.unread[sid] = 0
                self.incarnations[sid] = self.incarnations.get(sid, 0) + 1
            elif isinstance(event, DataReceived):
                sid = event.stream_id
                require(bool(event.data), f"empty DataReceived on {sid}")
                require(sid in before or sid in opened, f"data for stream {sid} never opened")
                self.unread[sid] = self.unread.get(sid, 0) + len(event.data)
            elif isinstance(event, StreamEnded | WindowUpdated):
                sid = event.stream_id
                require(sid in before or sid in opened, f"{event!r} for a stream never opened")
                if isinstance(event, WindowUpdated):
                    require(self.config.version == 2, "WindowUpdated in a version 1 session")
            elif isinstance(event, SessionEnded):
                require(index == len(events) - 1, "SessionEnded is not the last event")
                error = event.error
                require(
                    error is None or isinstance(error, ProtocolError | KeepAliveTimeoutError),
                    f"SessionEnded with {error!r}",
                )
                self.ended = True
                require(self.engine.is_closed, "SessionEnded but the engine is not closed")
                if isinstance(error, KeepAliveTimeoutError):
                    self.output_dropped = True
            else:
                require(isinstance(event, PingReceived), f"unknown event {event!r}")

    def call(self, method: Callable[[], list[Event]]) -> list[Event]:
        """Run an engine call that returns events, check them and return them."""
        before = set(self.engine.stream_ids)
        events = method()
        self.events(events, before)
        return events

    def frame(self, inp: FuzzInput) -> bytes:
        """A well-formed frame of the session's version, mostly about known streams."""
        kind = inp.byte()
        cmd = (Cmd.SYN, Cmd.FIN, Cmd.PSH, Cmd.PSH, Cmd.NOP, Cmd.UPD)[kind % 6]
        if cmd == Cmd.UPD and self.config.version == 1:
            cmd = Cmd.PSH
        sid = self._sid(inp)
        if cmd == Cmd.PSH:
            size = inp.u16() if kind & 0x80 else inp.byte()
            payload = PAYLOAD[sid & 0xFF : (sid & 0xFF) + size]
        elif cmd == Cmd.UPD:
            payload = Upd(inp.u32(), inp.u32()).encode()
        else:
            payload = b""
        return Frame(self.config.version, cmd, sid, payload).encode()

    def _sid(self, inp: FuzzInput) -> int:
        choice = inp.byte()
        known = sorted(self.engine.stream_ids)
        if choice < 128 and known:
            return known[choice % len(known)]
        if choice < 200:
            # The peer's own ids: even from a client's peer, odd from a server's.
            return (2 if self.client else 1) + 2 * (choice % 16)
        special = (0, 1, 2, 3, 0xFFFFFFFE, 0xFFFFFFFF)
        return special[choice % 7] if choice % 7 < len(special) else inp.u32()

    # ------------------------------------------------------- the application's side

    def pick_stream(self, inp: FuzzInput) -> int | None:
        known = sorted(self.engine.stream_ids)
        choice = inp.byte()
        if not known or choice == 255:
            return inp.u32() if choice == 255 else None
        return known[choice % len(known)]

    def open(self) -> None:
        engine = self.engine
        if engine.is_closed:
            self._expect_closed(engine.open_stream, "open_stream")
            return
        # The next id of this side's sequence that names no stream: the peer may have
        # opened ids of this side's parity, which are skipped (SPEC.md 5.1, 5.4).
        in_use = set(engine.stream_ids)
        step = self.last_id + 2
        while step in in_use:
            step += 2
        try:
            sid = engine.open_stream()
        except GoAwayError:
            require(self.go_away or step > MASK32, f"GoAwayError with id {step} left")
            self.go_away = True
            return
        require(not self.go_away, f"stream {sid} opened after GoAwayError")
        require(step <= MASK32, f"stream {sid} opened past the last id")
        require(sid == step, f"stream {sid} opened after {self.last_id} (SPEC.md 5.1)")
        self.last_id = sid
        self.syns.append(sid)
        self.unread[sid] = 0
        self.incarnations[sid] = self.incarnations.get(sid, 0) + 1

    def send(self, inp: FuzzInput) -> None:
        engine = self.engine
        sid = self.pick_stream(inp)
        size = inp.u16() if inp.byte() & 1 else inp.byte()
        # Tiny frames make huge writes slow to check and teach nothing new.
        size = min(size, 64 * self.config.max_frame_size)
        kind = inp.byte() % 3
        data: bytes | bytearray | memoryview = PAYLOAD[kind : kind + size]
        if kind == 1:
            data = bytearray(data)
        elif kind == 2:
            data = memoryview(data)
        if sid is None:
            return
        st = engine.stream(sid)
        if engine.is_closed:
            self._expect_closed(lambda: engine.send(sid, data), "send")
            return
        if st is None or st.state in (StreamState.LOCAL_CLOSED, StreamState.CLOSED):
            try:
                engine.send(sid, data)
            except StreamClosedError:
                return
            raise HarnessBug(f"send on stream {sid} ({st and st.state}) was not refused")
        window = engine.send_window(sid)
        over_acked = self.config.version == 2 and st.inflight() < 0
        try:
            taken = engine.send(sid, data)
        except ProtocolError as exc:
            require(over_acked, f"send raised {exc!r} without an over-acknowledging UPD")
            return
        require(not over_acked or size == 0, "send went on after an over-acknowledging UPD")
        expected = size if window is None else min(size, window)
        require(taken == expected, f"send took {taken} of {size} bytes, window {window}")
        if taken and self.config.version == 2:
            require(st.inflight() <= st.peer_window, "send overran the peer's window")
        self.unsent.setdefault(sid, bytearray()).extend(data[:taken])
        if isinstance(data, bytearray):
            data[:] = bytes(len(data))  # the engine must have copied what it keeps

    def consumed(self, inp: FuzzInput) -> None:
        sid = self.pick_stream(inp)
        if sid is None:
            return
        engine = self.engine
        st = engine.stream(sid)
        buffered = st.buffered if st is not None else 0
        how = inp.byte()
        if how & 2 and st is not None:
            try:
                engine.consumed(sid, buffered + 1)
            except UsageError:
                pass
            else:
                raise HarnessBug(f"consumed more than the {buffered} bytes delivered on {sid}")
        n = min(buffered, inp.u16() if how & 1 else buffered)
        if st is not None:
            self.unread[sid] = self.unread.get(sid, 0) - n
        self.call(lambda: engine.consumed(sid, n))
        self.pump()

    def accept(self, inp: FuzzInput) -> None:
        engine = self.engine
        waiting = [sid for sid in engine.stream_ids if not stream_info(engine, sid).accepted]
        choice = inp.byte()
        sid = waiting[choice % len(waiting)] if waiting and choice < 250 else inp.u32()
        self.call(lambda: engine.accept(sid))
        self.pump()

    def app(self) -> None:
        """The application accepts every stream and reads everything delivered."""
        engine = self.engine
        for sid in sorted(engine.stream_ids):
            st = engine.stream(sid)
            if st is None:
                continue
            if not st.accepted:
                self.call(partial(engine.accept, sid))
            st = engine.stream(sid)
            if st is not None and st.buffered:
                self.unread[sid] = self.unread.get(sid, 0) - st.buffered
                self.call(partial(engine.consumed, sid, st.buffered))
        self.pump()

    def close_write(self, inp: FuzzInput) -> None:
        engine = self.engine
        sid = self.pick_stream(inp)
        if sid is None:
            return
        if engine.is_closed:
            self._expect_closed(lambda: engine.close_write(sid), "close_write")
            return
        st = engine.stream(sid)
        refused = st is None or st.state in (StreamState.LOCAL_CLOSED, StreamState.CLOSED)
        try:
            engine.close_write(sid)
        except StreamClosedError:
            require(refused, f"close_write on stream {sid} ({st and st.state}) refused")
            return
        require(not refused, f"close_write on stream {sid} was not refused")

    def close_stream(self, inp: FuzzInput) -> None:
        sid = self.pick_stream(inp)
        if sid is None:
            return
        engine = self.engine
        self.unread.pop(sid, None)  # discarded (SPEC.md 10.4)
        events = self.call(lambda: engine.close_stream(sid))
        # Held-back frames may run now, and a SYN among them may reuse the id (5.4).
        reopened = StreamOpened(stream_id=sid) in events
        require(reopened or engine.stream(sid) is None, f"stream {sid} kept after close_stream")
        self.pump()

    def timer(self, inp: FuzzInput) -> None:
        engine = self.engine
        self.now += inp.u16() / 1000
        due = engine.next_timer()
        before = set(engine.stream_ids)
        events = engine.handle_timer(self.now)
        if due is None or self.now < due:
            require(not events, f"handle_timer before its time gave {events!r}")
        self.events(events, before)
        after = engine.next_timer()
        require(after is None or after > self.now, f"timer stuck at {after} (now {self.now})")

    def connection_lost(self) -> None:
        engine = self.engine
        self.pump()
        self.backlog.clear()  # a paused adapter loses what it held: the connection is gone
        self.call(engine.connection_lost)

    def close(self) -> None:
        self.engine.close()
        self.output_dropped = True
        self.unread.clear()
        require(self.engine.is_closed, "close() left the engine open")
        require(self.engine.num_streams == 0, "close() left streams behind")
        require(self.engine.data_to_send() == b"", "close() left bytes to send")

    def _expect_closed(self, call: object, what: str) -> None:
        assert callable(call)
        try:
            call()
        except SessionClosedError:
            return
        raise HarnessBug(f"{what} on a closed engine did not raise SessionClosedError")

    # --------------------------------------------------------------- the wire out

    def flush(self) -> None:
        """Decode what the engine emits and check it against what it was asked to do."""
        data = self.engine.data_to_send()
        if self.ended:
            if self.flushed_after_end:
                require(data == b"", f"{len(data)} bytes sent after the session ended")
            self.flushed_after_end = True
        if self.engine.is_closed and self.output_dropped:
            require(data == b"", f"{len(data)} bytes sent after a local close or timeout")
        try:
            frames = self.out.feed(data)
        except ProtocolError as exc:
            raise HarnessBug(f"the engine emitted a malformed frame: {exc}") from exc
        require(self.out.buffered == 0, "data_to_send ended inside a frame")
        config = self.config
        for frame in frames:
            cmd, sid = frame.cmd, frame.sid
            # Plain ifs, not require(): these run per frame, and the messages are costly.
            if cmd == Cmd.PSH:
                size = len(frame.data)
                if not 0 < size <= config.max_frame_size:
                    raise HarnessBug(f"PSH of {size} bytes, max_frame_size {config.max_frame_size}")
                if not self.output_dropped:
                    unsent = self.unsent.get(sid, bytearray())
                    if not unsent.startswith(frame.data):
                        raise HarnessBug(f"PSH on {sid} carries bytes send() never took")
                    del unsent[:size]
            elif cmd == Cmd.SYN:
                if not self.syns or self.syns[0] != sid:
                    raise HarnessBug(f"SYN {sid}; the SYNs owed are {list(self.syns)}")
                self.syns.popleft()
            elif cmd == Cmd.FIN:
                self.fins[sid] = self.fins.get(sid, 0) + 1
                if self.fins[sid] > self.incarnations.get(sid, 0):
                    raise HarnessBug(f"FIN {self.fins[sid]} times on stream {sid}")
            elif cmd == Cmd.NOP:
                require(sid == 0, f"NOP with stream id {sid}")
                require(not config.keepalive_disabled, "NOP with keepalive disabled")
            else:
                require(config.version == 2, "UPD in a version 1 session")
                window = frame.upd().window
                require(window == config.max_stream_buffer, f"UPD window {window}")
        if not self.output_dropped:
            require(not self.syns, f"SYNs never sent: {list(self.syns)}")
            for sid, unsent in self.unsent.items():
                if unsent:
                    raise HarnessBug(f"stream {sid}: {len(unsent)} bytes taken, never sent")
