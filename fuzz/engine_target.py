"""The engine fuzz target: an Engine with a configuration and a sequence of operations
taken from the input, its invariants checked after every operation.

:func:`engine_one_input` takes one ``bytes`` input and returns normally or raises.  The
first bytes give the :class:`~smuxref.config.Config` (version, role, limits, keepalive,
stream ids near exhaustion); the rest is up to 500 operations: bytes and well-formed
frames from the peer, ``accept``, ``consumed``, ``open_stream``, ``send``,
``close_write``, ``close_stream``, ``handle_timer``, ``data_to_send``,
``connection_lost`` and ``close``, made by :class:`~fuzz.engine_model.EngineModel`,
which checks every event and every emitted byte.  After every operation
:func:`check_engine` checks the engine's own bookkeeping.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from fuzz.engine_model import EngineModel, stream_info
from fuzz.shared import FuzzInput, HarnessBug, require
from smuxref import Config, Engine, FrameDecoder, StreamState
from smuxref._frame import HEADER_SIZE, MAX_PAYLOAD

__all__ = [
    "ENGINE_OPS",
    "check_engine",
    "engine_config_bytes",
    "engine_one_input",
    "engine_seed",
]

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


def check_engine(engine: Engine, unread: dict[int, int] | None = None) -> None:
    """The engine's invariants; ``unread`` is the harness's count per stream, if known."""
    config = engine.config
    buffered = 0
    unaccepted = 0
    closed = StreamState.CLOSED
    for sid in engine.stream_ids:
        st = stream_info(engine, sid)
        # Plain ifs, not require(): this runs for every stream after every operation.
        if st.sid != sid or type(st.state) is not StreamState or st.buffered < 0:
            raise HarnessBug(f"stream table: {sid} -> {st.sid} {st.state!r} {st.buffered}")
        if st.state is closed and st.buffered == 0:
            raise HarnessBug(f"stream {sid}: closed with nothing to read, yet still in the table")
        buffered += st.buffered
        unaccepted += not st.accepted
        if unread is not None and st.buffered != unread.get(sid, st.buffered):
            raise HarnessBug(f"stream {sid}: {st.buffered} buffered, {unread[sid]} delivered")
    counted = getattr(engine, "_unaccepted", unaccepted)
    require(counted == unaccepted, f"unaccepted count {counted}, streams say {unaccepted}")
    require(
        config.max_receive_buffer - engine.receive_window == buffered,
        f"receive buffer: {config.max_receive_buffer - engine.receive_window} charged, "
        f"{buffered} buffered",
    )
    # SPEC.md 3.3, 8.2: never more than MaxReceiveBuffer - 1 + 65535 unread bytes.
    bound = config.max_receive_buffer - 1 + MAX_PAYLOAD
    require(buffered <= bound, f"{buffered} unread bytes, bound {bound}")
    decoder = getattr(engine, "_decoder", None)
    if isinstance(decoder, FrameDecoder):
        require(decoder.buffered <= HEADER_SIZE + MAX_PAYLOAD, "decoder holds too much")


def engine_one_input(data: bytes, log: list[str] | None = None) -> None:
    """One run of the engine target (see the module docstring); ``log``, when given,
    collects the configuration and each operation, to read a crash by."""
    inp = FuzzInput(data)
    config, client, respect_pause, next_id = _engine_config(inp)
    if log is not None:
        role = "client" if client else "server"
        log.append(f"{config!r} {role} respect_pause={respect_pause} next_id={next_id}")
    engine = Engine(config, client=client, now=0.0, next_stream_id=next_id)
    model = EngineModel(engine, config, client, respect_pause)
    model.last_id = (1 if client else 0) if next_id is None else next_id - 2
    steps = 0
    # The ops that are an EngineModel method of the same name.
    with_input: dict[str, Callable[[FuzzInput], None]] = {
        "accept": model.accept,
        "consumed": model.consumed,
        "send": model.send,
        "close_write": model.close_write,
        "close_stream": model.close_stream,
        "timer": model.timer,
    }
    plain: dict[str, Callable[[], None]] = {
        "open": model.open,
        "flush": model.flush,
        "app": model.app,
        "connection_lost": model.connection_lost,
    }
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
        elif op == "close":
            if inp.byte() % 8 == 0:  # kept rare, since it ends everything
                model.close()
        elif op in with_input:
            with_input[op](inp)
        else:
            plain[op]()
        check_engine(engine, None if model.output_dropped else model.unread)
        if not model.output_dropped:
            for sid, count in model.unread.items():
                if engine.stream(sid) is None:
                    require(count == 0, f"stream {sid} removed with {count} bytes unread")
    model.flush()
