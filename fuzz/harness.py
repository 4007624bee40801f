"""Fuzz targets for the codec and the sans-IO engine, with their oracles, in plain Python.

Two targets, each a function of one ``bytes`` input that returns normally or raises:

* :func:`decoder_one_input` - ``FrameDecoder.feed`` on any byte string, any split, any
  decoder settings.  Oracles: the result does not depend on how the bytes are split;
  it equals a straightforward reference decoder built on ``check_header``; strict frames
  re-encode to exactly the bytes they came from; a failed decoder stays failed with the
  same error; only :class:`~smuxref.errors.ProtocolError` subclasses ever escape.
* :func:`engine_one_input` - an :class:`~smuxref.engine.Engine` with a configuration
  taken from the input, driven by a sequence of operations taken from the input: bytes
  and well-formed frames from the peer, ``accept``, ``consumed``, ``open_stream``,
  ``send``, ``close_write``, ``close_stream``, ``handle_timer``, ``data_to_send``,
  ``connection_lost`` and ``close``.  The harness plays an adapter (it stops feeding
  while ``reading_paused`` unless the input says to misbehave) and an application that
  only makes calls the API allows, so every exception it does not expect is a bug.
  After every operation the engine's invariants are checked (:func:`check_engine`) and
  every byte the engine emits is decoded and checked against what was asked of it.

Any failed oracle raises :class:`HarnessBug` (an ``AssertionError``); any other exception
is a crash as it stands.  Inputs are consumed front to back by :class:`FuzzInput`,
which reads zeros past the end, so every byte string is a valid input and a crash
replays from its bytes alone, without atheris (tests/test_fuzz_regressions.py).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Final, TypeVar

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
    TruncatedFrameError,
    Upd,
    UsageError,
    WindowUpdated,
    decode_frame,
)
from smuxref._frame import CMD_BY_VALUE, HEADER, HEADER_SIZE, MAX_PAYLOAD, check_header
from smuxref.engine import StreamInfo

__all__ = [
    "ENGINE_OPS",
    "HarnessBug",
    "check_engine",
    "decoder_one_input",
    "engine_config_bytes",
    "engine_one_input",
    "engine_seed",
]

T = TypeVar("T")
_MASK32: Final = 0xFFFFFFFF


class HarnessBug(AssertionError):
    """An oracle of the harness failed: smuxref did something it must not."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise HarnessBug(message)


class FuzzInput:
    """The fuzz input, consumed front to back; reads past the end give zeros."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def byte(self) -> int:
        if self._pos >= len(self._data):
            return 0
        value = self._data[self._pos]
        self._pos += 1
        return value

    def u16(self) -> int:
        return self.byte() | self.byte() << 8

    def u32(self) -> int:
        return self.u16() | self.u16() << 16

    def take(self, n: int) -> bytes:
        out = self._data[self._pos : self._pos + n]
        self._pos += len(out)
        return out

    def rest(self) -> bytes:
        return self.take(self.remaining)

    def pick(self, options: Sequence[T]) -> T:
        return options[self.byte() % len(options)]


# ===================================================================== decoder target

#: Decoder limits worth trying: around a header, around the default and the maximum.
MAX_FRAME_SIZES: Final = (0, 1, 7, 8, 9, 100, 32768, 65534, MAX_PAYLOAD)


@dataclass
class _Decoded:
    frames: list[Frame]
    error: type[ProtocolError] | None
    header: bytes
    #: Bytes held for an incomplete frame at the end (after an error: not compared).
    buffered: int


def _reference_decode(wire: bytes, version: int | None, limit: int, strict: bool) -> _Decoded:
    """What any decoder must make of ``wire``: one header at a time, no cleverness."""
    frames: list[Frame] = []
    pos = 0
    while len(wire) - pos >= HEADER_SIZE:
        header = wire[pos : pos + HEADER_SIZE]
        if strict:
            try:
                check_header(header, version, limit)
            except ProtocolError as exc:
                return _Decoded(frames, type(exc), header, -1)
        ver, cmd, length, sid = HEADER.unpack(header)
        end = pos + HEADER_SIZE + length
        if end > len(wire):
            break
        command: int = CMD_BY_VALUE[cmd] if cmd < len(CMD_BY_VALUE) else cmd
        frames.append(Frame(ver, command, sid, wire[pos + HEADER_SIZE : end]))
        pos = end
    return _Decoded(frames, None, b"", len(wire) - pos)


def _split(wire: bytes, rng: random.Random) -> list[bytes | bytearray | memoryview]:
    """Cut ``wire`` into pieces of random sizes (empty ones included) and buffer types."""
    pieces: list[bytes | bytearray | memoryview] = []
    pos = 0
    while pos < len(wire):
        size = rng.choice((0, 1, 1, 2, 3, 7, 8, 9, 16, rng.randrange(1, 70000)))
        piece = wire[pos : pos + size]
        pos += len(piece)
        kind = rng.randrange(4)
        if kind == 1:
            pieces.append(bytearray(piece))
        elif kind == 2:
            pieces.append(memoryview(piece))
        elif kind == 3:
            # A strided view: the decoder must copy it, not read it as flat memory.
            doubled = bytearray(2 * len(piece))
            doubled[::2] = piece
            pieces.append(memoryview(bytes(doubled))[::2])
        else:
            pieces.append(piece)
    return pieces


def _decode_pieces(
    pieces: Sequence[bytes | bytearray | memoryview],
    version: int | None,
    limit: int,
    strict: bool,
) -> _Decoded:
    decoder = FrameDecoder(version, limit, strict=strict)
    frames: list[Frame] = []
    # In strict mode a frame in progress is at most one header and an allowed payload;
    # a lenient decoder takes any LEN.
    bound = HEADER_SIZE + (limit if strict else MAX_PAYLOAD)
    for piece in pieces:
        try:
            frames += decoder.feed(piece)
        except ProtocolError as exc:
            frames += getattr(exc, "frames", [])
            _require(len(exc.header) == HEADER_SIZE, f"error without its header: {exc!r}")
            _check_sticky(decoder, exc)
            return _Decoded(frames, type(exc), exc.header, -1)
        _require(decoder.buffered <= bound, f"decoder holds {decoder.buffered} > {bound} bytes")
    buffered = decoder.buffered
    try:
        decoder.close()
    except TruncatedFrameError:
        _require(buffered > 0, "close() reported a truncated frame with nothing buffered")
    else:
        _require(buffered == 0, f"close() accepted {buffered} bytes of an unfinished frame")
    return _Decoded(frames, None, b"", buffered)


def _check_sticky(decoder: FrameDecoder, first: ProtocolError) -> None:
    """A failed decoder keeps failing with the same error, on feed and on close."""
    for call in (lambda: decoder.feed(b"\x01"), decoder.close):
        try:
            call()
        except ProtocolError as again:
            _require(
                type(again) is type(first) and again.header == first.header,
                f"a failed decoder raised {again!r} after {first!r}",
            )
        else:
            raise HarnessBug(f"a failed decoder accepted more input after {first!r}")


def _decode_frame_loop(wire: bytes, version: int | None, strict: bool) -> _Decoded:
    """``decode_frame`` over a whole buffer: the one-shot decoder must agree too."""
    frames: list[Frame] = []
    pos = 0
    while pos < len(wire):
        try:
            frame, used = decode_frame(wire, pos, version=version, strict=strict)
        except TruncatedFrameError as exc:
            if len(exc.header) == HEADER_SIZE and strict:
                # A complete header: decode_frame checked it before finding the cut.
                return _Decoded(frames, None, b"", len(wire) - pos)
            return _Decoded(frames, None, b"", len(wire) - pos)
        except ProtocolError as exc:
            return _Decoded(frames, type(exc), exc.header, -1)
        frames.append(frame)
        pos += used
    return _Decoded(frames, None, b"", 0)


def decoder_one_input(data: bytes) -> None:
    """One run of the decoder target (see the module docstring)."""
    inp = FuzzInput(data)
    mode = inp.byte()
    version = (None, 1, 2)[mode % 3]
    strict = not mode & 0x80
    limit = inp.pick(MAX_FRAME_SIZES)
    rng = random.Random(inp.byte())
    wire = inp.rest()

    whole = _decode_pieces([wire], version, limit, strict)
    reference = _reference_decode(wire, version, limit, strict)
    _require(
        whole == reference,
        f"FrameDecoder {whole} differs from the reference decoder {reference}",
    )
    chunked = _decode_pieces(_split(wire, rng), version, limit, strict)
    _require(chunked == whole, f"split input decoded to {chunked}, whole input to {whole}")
    if limit == MAX_PAYLOAD:
        oneshot = _decode_frame_loop(wire, version, strict)
        _require(oneshot == whole, f"decode_frame gave {oneshot}, FrameDecoder {whole}")
    encoded = b"".join(frame.encode() for frame in whole.frames)
    _require(wire.startswith(encoded), "decoded frames do not re-encode to the input bytes")
    if strict:
        lenient = _decode_pieces([wire], version, limit, strict=False)
        _require(lenient.error is None, f"a lenient decoder raised {lenient.error}")
        _require(
            lenient.frames[: len(whole.frames)] == whole.frames,
            "strict frames are not a prefix of the lenient decoder's frames",
        )


# ====================================================================== engine target

#: Operation codes of the engine target; an op byte selects ``ENGINE_OPS[byte % len]``.
ENGINE_OPS: Final = (
    "receive",  # u16 length, then that many bytes from the peer
    "frame",  # one well-formed frame from the peer, built from a few input bytes
    "frame",
    "accept",
    "consumed",
    "open",
    "send",
    "close_write",
    "close_stream",
    "timer",
    "flush",
    "app",  # the application accepts every stream and reads everything
    "connection_lost",
    "close",
)
_OP_CODE: Final = {name: ENGINE_OPS.index(name) for name in ENGINE_OPS}

FRAME_SIZES: Final = (1, 2, 8, 100, 1024, 4096, 32768, MAX_PAYLOAD)
RECEIVE_BUFFERS: Final = (1, 7, 64, 1024, 65535, 65536, 262144, 4194304)
STREAM_BUFFERS: Final = (1, 2, 64, 1024, 65536, 262144, 1048576)
KEEPALIVE_TIMEOUTS: Final = (1.0, 2.5, 3.0)
_PAYLOAD: Final = bytes(range(256)) * 257  # 65792 bytes: any payload is a slice of this


def engine_seed(
    wire_chunks: Sequence[bytes], *, version: int, client: bool, app_between: bool = True
) -> bytes:
    """A seed input for the engine target: a configuration like Go's defaults, then the
    peer's bytes as ``receive`` operations, the application reading after each."""
    flags = (version - 1) | (2 if client else 0) | 8  # keepalive off: no timer noise
    out = bytearray(engine_config_bytes(flags))
    for chunk in wire_chunks:
        for start in range(0, max(len(chunk), 1), MAX_PAYLOAD):
            piece = chunk[start : start + MAX_PAYLOAD]
            out += bytes([_OP_CODE["receive"]]) + len(piece).to_bytes(2, "little") + piece
        if app_between:
            out += bytes([_OP_CODE["app"], _OP_CODE["flush"]])
    out += bytes([_OP_CODE["connection_lost"], _OP_CODE["app"], _OP_CODE["flush"]])
    return bytes(out)


def engine_config_bytes(
    flags: int,
    *,
    max_receive_buffer: int = 4194304,
    max_frame_size: int = 32768,
    max_stream_buffer: int = 65536,
    accept_backlog: int = 8,
    near_end: int = 0,
) -> bytes:
    """The first bytes of an engine input, for these settings (see _engine_config)."""
    return bytes(
        [
            flags,
            RECEIVE_BUFFERS.index(max_receive_buffer),
            FRAME_SIZES.index(max_frame_size),
            STREAM_BUFFERS.index(max_stream_buffer),
            accept_backlog - 1,
            near_end,
        ]
    )


def _engine_config(inp: FuzzInput) -> tuple[Config, bool, bool, int | None]:
    """``(config, client, respect_pause, next_stream_id)`` from the first input bytes."""
    flags = inp.byte()
    version = 1 + (flags & 1)
    client = bool(flags & 2)
    receive = inp.pick(RECEIVE_BUFFERS)
    config = Config(
        version=version,
        reject_own_parity_syn=bool(flags & 4),
        keepalive_disabled=bool(flags & 8),
        keepalive_interval=1.0,
        keepalive_timeout=KEEPALIVE_TIMEOUTS[(flags >> 6) % len(KEEPALIVE_TIMEOUTS)],
        max_frame_size=inp.pick(FRAME_SIZES),
        max_receive_buffer=receive,
        max_stream_buffer=min(inp.pick(STREAM_BUFFERS), receive),
        accept_backlog=1 + inp.byte() % 8,
    )
    near_end = inp.byte() % 8
    next_id = None
    if flags & 32:
        next_id = (0xFFFFFFFF if client else 0xFFFFFFFE) - 2 * near_end
    # Flag bit 4 makes the adapter misbehave: it feeds bytes while reading is paused.
    return config, client, not flags & 16, next_id


@dataclass
class _Model:
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
            _require(not self.ended, f"event {event!r} after SessionEnded")
            if isinstance(event, StreamOpened):
                # The same id may open again once its stream was removed (SPEC.md 5.4),
                # which a FIN or the application can do within one call.
                sid = event.stream_id
                opened.add(sid)
                self.unread[sid] = 0
                self.incarnations[sid] = self.incarnations.get(sid, 0) + 1
            elif isinstance(event, DataReceived):
                sid = event.stream_id
                _require(bool(event.data), f"empty DataReceived on {sid}")
                _require(sid in before or sid in opened, f"data for stream {sid} never opened")
                self.unread[sid] = self.unread.get(sid, 0) + len(event.data)
            elif isinstance(event, StreamEnded | WindowUpdated):
                sid = event.stream_id
                _require(sid in before or sid in opened, f"{event!r} for a stream never opened")
                if isinstance(event, WindowUpdated):
                    _require(self.config.version == 2, "WindowUpdated in a version 1 session")
            elif isinstance(event, SessionEnded):
                _require(index == len(events) - 1, "SessionEnded is not the last event")
                error = event.error
                _require(
                    error is None or isinstance(error, ProtocolError | KeepAliveTimeoutError),
                    f"SessionEnded with {error!r}",
                )
                self.ended = True
                _require(self.engine.is_closed, "SessionEnded but the engine is not closed")
                if isinstance(error, KeepAliveTimeoutError):
                    self.output_dropped = True
            else:
                _require(isinstance(event, PingReceived), f"unknown event {event!r}")

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
            payload = _PAYLOAD[sid & 0xFF : (sid & 0xFF) + size]
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
            _require(self.go_away or step > _MASK32, f"GoAwayError with id {step} left")
            self.go_away = True
            return
        _require(not self.go_away, f"stream {sid} opened after GoAwayError")
        _require(step <= _MASK32, f"stream {sid} opened past the last id")
        _require(sid == step, f"stream {sid} opened after {self.last_id} (SPEC.md 5.1)")
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
        data: bytes | bytearray | memoryview = _PAYLOAD[kind : kind + size]
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
            _require(over_acked, f"send raised {exc!r} without an over-acknowledging UPD")
            return
        _require(not over_acked or size == 0, "send went on after an over-acknowledging UPD")
        expected = size if window is None else min(size, window)
        _require(taken == expected, f"send took {taken} of {size} bytes, window {window}")
        if taken and self.config.version == 2:
            _require(st.inflight() <= st.peer_window, "send overran the peer's window")
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
        waiting = [sid for sid in engine.stream_ids if not _stream(engine, sid).accepted]
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
            _require(refused, f"close_write on stream {sid} ({st and st.state}) refused")
            return
        _require(not refused, f"close_write on stream {sid} was not refused")

    def close_stream(self, inp: FuzzInput) -> None:
        sid = self.pick_stream(inp)
        if sid is None:
            return
        engine = self.engine
        self.unread.pop(sid, None)  # discarded (SPEC.md 10.4)
        events = self.call(lambda: engine.close_stream(sid))
        # Held-back frames may run now, and a SYN among them may reuse the id (5.4).
        reopened = StreamOpened(stream_id=sid) in events
        _require(reopened or engine.stream(sid) is None, f"stream {sid} kept after close_stream")
        self.pump()

    def timer(self, inp: FuzzInput) -> None:
        engine = self.engine
        self.now += inp.u16() / 1000
        due = engine.next_timer()
        before = set(engine.stream_ids)
        events = engine.handle_timer(self.now)
        if due is None or self.now < due:
            _require(not events, f"handle_timer before its time gave {events!r}")
        self.events(events, before)
        after = engine.next_timer()
        _require(after is None or after > self.now, f"timer stuck at {after} (now {self.now})")

    def connection_lost(self) -> None:
        engine = self.engine
        self.pump()
        self.backlog.clear()  # a paused adapter loses what it held: the connection is gone
        self.call(engine.connection_lost)

    def close(self) -> None:
        self.engine.close()
        self.output_dropped = True
        self.unread.clear()
        _require(self.engine.is_closed, "close() left the engine open")
        _require(self.engine.num_streams == 0, "close() left streams behind")
        _require(self.engine.data_to_send() == b"", "close() left bytes to send")

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
                _require(data == b"", f"{len(data)} bytes sent after the session ended")
            self.flushed_after_end = True
        if self.engine.is_closed and self.output_dropped:
            _require(data == b"", f"{len(data)} bytes sent after a local close or timeout")
        try:
            frames = self.out.feed(data)
        except ProtocolError as exc:
            raise HarnessBug(f"the engine emitted a malformed frame: {exc}") from exc
        _require(self.out.buffered == 0, "data_to_send ended inside a frame")
        config = self.config
        for frame in frames:
            cmd, sid = frame.cmd, frame.sid
            # Plain ifs, not _require: these run per frame, and the messages are costly.
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
                _require(sid == 0, f"NOP with stream id {sid}")
                _require(not config.keepalive_disabled, "NOP with keepalive disabled")
            else:
                _require(config.version == 2, "UPD in a version 1 session")
                window = frame.upd().window
                _require(window == config.max_stream_buffer, f"UPD window {window}")
        if not self.output_dropped:
            _require(not self.syns, f"SYNs never sent: {list(self.syns)}")
            for sid, unsent in self.unsent.items():
                if unsent:
                    raise HarnessBug(f"stream {sid}: {len(unsent)} bytes taken, never sent")


def _stream(engine: Engine, sid: int) -> StreamInfo:
    st = engine.stream(sid)
    assert st is not None
    return st


def check_engine(engine: Engine, unread: dict[int, int] | None = None) -> None:
    """The engine's invariants; ``unread`` is the harness's count per stream, if known."""
    config = engine.config
    buffered = 0
    unaccepted = 0
    closed = StreamState.CLOSED
    for sid in engine.stream_ids:
        st = _stream(engine, sid)
        # Plain ifs, not _require: this runs for every stream after every operation.
        if st.sid != sid or type(st.state) is not StreamState or st.buffered < 0:
            raise HarnessBug(f"stream table: {sid} -> {st.sid} {st.state!r} {st.buffered}")
        if st.state is closed and st.buffered == 0:
            raise HarnessBug(f"stream {sid}: closed with nothing to read, yet still in the table")
        buffered += st.buffered
        unaccepted += not st.accepted
        if unread is not None and st.buffered != unread.get(sid, st.buffered):
            raise HarnessBug(f"stream {sid}: {st.buffered} buffered, {unread[sid]} delivered")
    counted = getattr(engine, "_unaccepted", unaccepted)
    _require(counted == unaccepted, f"unaccepted count {counted}, streams say {unaccepted}")
    _require(
        config.max_receive_buffer - engine.receive_window == buffered,
        f"receive buffer: {config.max_receive_buffer - engine.receive_window} charged, "
        f"{buffered} buffered",
    )
    # SPEC.md 3.3, 8.2: never more than MaxReceiveBuffer - 1 + 65535 unread bytes.
    bound = config.max_receive_buffer - 1 + MAX_PAYLOAD
    _require(buffered <= bound, f"{buffered} unread bytes, bound {bound}")
    decoder = getattr(engine, "_decoder", None)
    if isinstance(decoder, FrameDecoder):
        _require(decoder.buffered <= HEADER_SIZE + MAX_PAYLOAD, "decoder holds too much")


def engine_one_input(data: bytes, log: list[str] | None = None) -> None:
    """One run of the engine target (see the module docstring); ``log``, when given,
    collects the configuration and each operation, to read a crash by."""
    inp = FuzzInput(data)
    config, client, respect_pause, next_id = _engine_config(inp)
    if log is not None:
        role = "client" if client else "server"
        log.append(f"{config!r} {role} respect_pause={respect_pause} next_id={next_id}")
    engine = Engine(config, client=client, now=0.0, next_stream_id=next_id)
    model = _Model(engine, config, client, respect_pause)
    model.last_id = (1 if client else 0) if next_id is None else next_id - 2
    steps = 0
    while inp.remaining and steps < 500:
        steps += 1
        op = ENGINE_OPS[inp.byte() % len(ENGINE_OPS)]
        if log is not None:
            log.append(f"{op} (streams {sorted(engine.stream_ids)[:8]})")
        if op == "receive":
            model.deliver(inp.take(inp.u16()))
        elif op == "frame":
            count = 1 + inp.byte() % 4
            model.deliver(b"".join(model.frame(inp) for _ in range(count)))
        elif op == "accept":
            model.accept(inp)
        elif op == "consumed":
            model.consumed(inp)
        elif op == "open":
            model.open()
        elif op == "send":
            model.send(inp)
        elif op == "close_write":
            model.close_write(inp)
        elif op == "close_stream":
            model.close_stream(inp)
        elif op == "timer":
            model.timer(inp)
        elif op == "flush":
            model.flush()
        elif op == "app":
            model.app()
        elif op == "connection_lost":
            model.connection_lost()
        elif inp.byte() % 8 == 0:  # "close": kept rare, since it ends everything
            model.close()
        check_engine(engine, None if model.output_dropped else model.unread)
        if not model.output_dropped:
            for sid, count in model.unread.items():
                if engine.stream(sid) is None:
                    _require(count == 0, f"stream {sid} removed with {count} bytes unread")
    model.flush()
