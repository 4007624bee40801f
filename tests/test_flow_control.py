"""The session-wide receive buffer (SPEC.md 8) and version 2 stream windows (SPEC.md 9)."""

from __future__ import annotations

import random
from collections.abc import Iterable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as note
from hypothesis import strategies as st
from support import Segmenter, SessionPair, decode_all, psh, syn, upd

from smuxref import (
    INITIAL_PEER_WINDOW,
    Config,
    DataReceived,
    Engine,
    Event,
    FlowControlError,
    SessionEnded,
    StreamOpened,
    WindowUpdated,
)

# ------------------------------------------------------------------ 8 token bucket


def _small(limit: int) -> Config:
    return Config(max_receive_buffer=limit, max_stream_buffer=min(limit, 65536))


def test_frames_held_back_once_buffer_full() -> None:
    """SPEC.md 8.1, 8.2: at N unread bytes, later frames (SYN included) are held back."""
    engine = Engine(_small(1000), client=False)
    wire = syn(3) + psh(3, bytes(600)) + psh(3, bytes(400)) + syn(5) + psh(3, b"x")
    assert engine.receive_data(wire) == [
        StreamOpened(stream_id=3),
        DataReceived(stream_id=3, data=bytes(600)),
        DataReceived(stream_id=3, data=bytes(400)),
    ]
    assert engine.receive_window == 0
    assert engine.reading_paused
    assert engine.stream(5) is None  # the SYN is not processed either, as in Go
    # Tokens come back one read at a time; processing resumes exactly when the bucket > 0.
    assert engine.consumed(3, 1) == [
        StreamOpened(stream_id=5),
        DataReceived(stream_id=3, data=b"x"),
    ]
    assert engine.receive_window == 0
    assert engine.reading_paused  # bucket empty again, nothing pending
    assert engine.consumed(3, 1) == []
    assert engine.receive_window == 1
    assert not engine.reading_paused


def test_bucket_goes_negative_by_at_most_one_frame() -> None:
    """SPEC.md 8.1: a frame is charged whole, so the bucket can go negative by one frame."""
    engine = Engine(_small(1000), client=False)
    wire = syn(3) + psh(3, bytes(600)) + psh(3, bytes(600)) + syn(5) + psh(3, b"x")
    events = engine.receive_data(wire)
    assert events == [
        StreamOpened(stream_id=3),
        DataReceived(stream_id=3, data=bytes(600)),
        DataReceived(stream_id=3, data=bytes(600)),
    ]
    assert engine.receive_window == -200
    assert engine.reading_paused
    assert engine.consumed(3, 200) == []  # bucket 0: still held
    assert engine.reading_paused
    assert engine.stream(5) is None
    assert engine.consumed(3, 1) == [
        StreamOpened(stream_id=5),
        DataReceived(stream_id=3, data=b"x"),
    ]


def test_largest_overdraft() -> None:
    """SPEC.md 8.1: with max_receive_buffer=1 one 65535-byte frame takes the bucket to -65534."""
    engine = Engine(_small(1), client=False)
    big = bytes(65535)
    assert engine.receive_data(syn(3) + psh(3, big) + psh(3, b"y")) == [
        StreamOpened(stream_id=3),
        DataReceived(stream_id=3, data=big),
    ]
    assert engine.receive_window == -65534
    assert engine.consumed(3, 65534) == []
    assert engine.consumed(3, 1) == [DataReceived(stream_id=3, data=b"y")]


def test_held_back_frames_survive_more_input() -> None:
    """SPEC.md 8.2: bytes fed while paused are queued in order, not processed or lost."""
    engine = Engine(_small(10), client=False)
    assert engine.receive_data(syn(3) + psh(3, bytes(10))) == [
        StreamOpened(stream_id=3),
        DataReceived(stream_id=3, data=bytes(10)),
    ]
    assert engine.receive_data(psh(3, b"a")) == []
    assert engine.receive_data(psh(3, b"b") + syn(5)) == []
    assert engine.consumed(3, 10) == [
        DataReceived(stream_id=3, data=b"a"),
        DataReceived(stream_id=3, data=b"b"),
        StreamOpened(stream_id=5),
    ]


def test_unknown_stream_data_does_not_charge() -> None:
    """SPEC.md 5.5, 8.1: only delivered PSH payload is charged."""
    engine = Engine(_small(10), client=False)
    assert engine.receive_data(psh(9, bytes(100)) + syn(3) + psh(3, bytes(4))) == [
        StreamOpened(stream_id=3),
        DataReceived(stream_id=3, data=bytes(4)),
    ]
    assert engine.receive_window == 6


# ------------------------------------------------------------------ 9 v2 windows


def _v2_client() -> tuple[Engine, int]:
    engine = Engine(Config(version=2), client=True)
    sid = engine.open_stream()
    engine.data_to_send()
    return engine, sid


def test_initial_window_and_update() -> None:
    """SPEC.md 9.1, 9.3: exactly 262144 bytes before any UPD; after
    UPD(consumed=262144, window=65536) exactly 65536 more."""
    engine, sid = _v2_client()
    data = bytes(range(256)) * 2000  # 512000 bytes
    assert engine.send_window(sid) == INITIAL_PEER_WINDOW == 262144
    assert engine.send(sid, data) == 262144
    frames = decode_all(engine.data_to_send(), 2)
    assert [len(f.data) for f in frames] == [32768] * 8
    assert b"".join(f.data for f in frames) == data[:262144]
    assert engine.send_window(sid) == 0
    assert engine.send(sid, data[262144:]) == 0
    assert engine.data_to_send() == b""

    assert engine.receive_data(upd(sid, 262144, 65536)) == [
        WindowUpdated(stream_id=sid, consumed=262144, window=65536)
    ]
    assert engine.send_window(sid) == 65536
    assert engine.send(sid, data[262144:]) == 65536
    assert engine.data_to_send() == (
        psh(sid, data[262144:294912], 2) + psh(sid, data[294912:327680], 2)
    )
    assert engine.send(sid, data[327680:]) == 0


def test_window_counts_inflight() -> None:
    """SPEC.md 9.3: the sender may have peer window minus in-flight bytes outstanding."""
    engine, sid = _v2_client()
    assert engine.send(sid, bytes(1000)) == 1000
    engine.data_to_send()
    # The peer read 400 and offers a window of 700: 600 are in flight, 100 may go.
    engine.receive_data(upd(sid, 400, 700))
    assert engine.send_window(sid) == 100
    assert engine.send(sid, bytes(150)) == 100
    assert engine.data_to_send() == psh(sid, bytes(100), 2)
    # A window smaller than what is in flight allows nothing (never negative).
    engine.receive_data(upd(sid, 500, 10))
    assert engine.send_window(sid) == 0
    assert engine.send(sid, b"z") == 0


def test_window_is_per_stream() -> None:
    """SPEC.md 9.3: one stream's exhausted window does not limit another."""
    engine = Engine(Config(version=2), client=True)
    a, b = engine.open_stream(), engine.open_stream()
    assert engine.send(a, bytes(300000)) == 262144
    assert engine.send(b, bytes(10)) == 10
    assert engine.send_window(b) == 262134


def test_v1_has_no_window() -> None:
    """SPEC.md 9: version 1 takes everything and has no send window."""
    engine = Engine(client=True)
    sid = engine.open_stream()
    assert engine.send(sid, bytes(300000)) == 300000
    assert engine.send_window(sid) is None


def test_receiver_upd_points() -> None:
    """SPEC.md 9.2: UPD on the first read, then each time max_stream_buffer/2 more was read;
    consumed is cumulative, window is max_stream_buffer."""
    engine = Engine(Config(version=2), client=False)
    payload = bytes(65535)
    engine.receive_data(syn(3, 2) + psh(3, payload, 2) + psh(3, payload, 2))
    engine.accept(3)

    assert engine.consumed(3, 4000) == []
    first = engine.data_to_send()
    assert first == bytes.fromhex("02 04 0800 03000000 a00f0000 00000100")
    assert first == upd(3, 4000, 65536)

    assert engine.consumed(3, 32767) == []
    assert engine.data_to_send() == b""
    assert engine.consumed(3, 1) == []  # 4000 + 32768
    assert engine.data_to_send() == upd(3, 36768, 65536)

    assert engine.consumed(3, 16384) == []
    assert engine.data_to_send() == b""
    assert engine.consumed(3, 16384) == []  # exactly 32768 since the last UPD
    assert engine.data_to_send() == upd(3, 69536, 65536)

    assert engine.consumed(3, 40000) == []  # one large read: one UPD
    assert engine.data_to_send() == upd(3, 109536, 65536)


def test_receiver_upd_first_read_of_one_byte() -> None:
    """SPEC.md 9.2: even a one-byte first read sends a UPD; the window is the configured one."""
    engine = Engine(Config(version=2, max_stream_buffer=1000), client=False)
    engine.receive_data(syn(5, 2) + psh(5, b"abc", 2))
    assert engine.consumed(5, 1) == []
    assert engine.data_to_send() == upd(5, 1, 1000)
    assert engine.consumed(5, 1) == []
    assert engine.data_to_send() == b""  # 1 < 500
    assert engine.consumed(5, 0) == []
    assert engine.data_to_send() == b""


def test_v1_sends_no_upd() -> None:
    """SPEC.md 9.2: version 1 never sends UPD."""
    engine = Engine(client=False)
    engine.receive_data(syn(3) + psh(3, bytes(40000)))
    assert engine.consumed(3, 40000) == []
    assert engine.data_to_send() == b""


def test_over_acknowledgement_fails_next_send() -> None:
    """SPEC.md 9.4: UPD consumed > sent is recorded; the next send raises FlowControlError."""
    engine, sid = _v2_client()
    assert engine.send(sid, bytes(100)) == 100
    engine.data_to_send()
    assert engine.receive_data(upd(sid, 101, 65536)) == [
        WindowUpdated(stream_id=sid, consumed=101, window=65536)
    ]
    assert not engine.is_closed
    assert engine.send_window(sid) == 0  # the UPD does not enlarge the window
    with pytest.raises(FlowControlError):
        engine.send(sid, b"x")
    assert engine.data_to_send() == b""
    # The peer correcting itself makes the stream usable again.
    engine.receive_data(upd(sid, 100, 65536))
    assert engine.send(sid, b"x") == 1


def test_exact_acknowledgement_is_fine() -> None:
    """SPEC.md 9.4: consumed == sent is not an error."""
    engine, sid = _v2_client()
    engine.send(sid, bytes(100))
    engine.receive_data(upd(sid, 100, 65536))
    assert engine.send_window(sid) == 65536
    assert engine.send(sid, bytes(65536)) == 65536


def test_receiver_does_not_enforce_window() -> None:
    """SPEC.md 9.5: data beyond the advertised window is still delivered."""
    engine = Engine(Config(version=2, max_stream_buffer=100), client=False)
    events = engine.receive_data(syn(3, 2) + psh(3, bytes(5000), 2))
    assert events == [StreamOpened(stream_id=3), DataReceived(stream_id=3, data=bytes(5000))]


def test_pair_transfer_beyond_initial_window() -> None:
    """SPEC.md 9.1-9.3: a transfer larger than the initial window completes through UPDs."""
    pair = SessionPair(Config(version=2))
    sid = pair.client.open_stream()
    data = random.Random(7).randbytes(1_000_000)
    offset = pair.client.send(sid, data)
    received = bytearray()
    for _ in range(100):
        pair.pump()
        for event in pair.take_events("server"):
            if isinstance(event, DataReceived):
                received += event.data
                pair.record("server", pair.server.consumed(sid, len(event.data)))
        pair.take_events("client")
        offset += pair.client.send(sid, data[offset:])
        if len(received) == len(data):
            break
    assert bytes(received) == data


# ------------------------------------------------------------------ property test


Op = tuple[str, bool, int, int]

OPS = st.lists(
    st.tuples(
        st.sampled_from(["write", "write", "read", "read", "pump"]),
        st.booleans(),  # client side?
        st.integers(0, 5),  # stream index
        st.integers(0, 20000) | st.sampled_from([262144, 300000]),  # bytes
    ),
    max_size=30,
)


class Traffic:
    """Both applications of a SessionPair, with the invariants checked on every event."""

    def __init__(self, pair: SessionPair, seed: int) -> None:
        self.pair = pair
        # Payload bytes come from a seeded generator, not from Hypothesis' data stream,
        # which large writes would overrun.
        self.rnd = random.Random(seed)
        self.limit = pair.config.max_receive_buffer
        self.version = pair.config.version
        #: streams[side] = ids known to that side
        self.streams: dict[str, list[int]] = {"client": [], "server": []}
        self.expected: dict[tuple[str, int], bytearray] = {}  # (writer side, sid) -> data
        self.pending: dict[tuple[str, int], bytearray] = {}  # not yet taken by send()
        self.received: dict[tuple[str, int], bytearray] = {}  # (reader side, sid) -> data
        self.read: dict[tuple[str, int], int] = {}
        pair.observers.append(self.observe)

    def open(self, side: str) -> None:
        sid = self.pair.engine(side).open_stream()
        for who in ("client", "server"):
            self.streams[who].append(sid)
            self.expected[who, sid] = bytearray()
            self.pending[who, sid] = bytearray()
            self.received[who, sid] = bytearray()
            self.read[who, sid] = 0

    def unread(self, side: str) -> int:
        return sum(
            len(self.received[side, sid]) - self.read[side, sid] for sid in self.streams[side]
        )

    def observe(self, side: str, events: list[Event]) -> None:
        peer = SessionPair.peer_of(side)
        for event in events:
            assert not isinstance(event, SessionEnded), event
            if isinstance(event, DataReceived):
                sid = event.stream_id
                # (b) nothing is delivered to a stream the receiver does not know
                assert sid in self.streams[side]
                got = self.received[side, sid]
                got += event.data
                # (a) intact and in order
                assert got == self.expected[peer, sid][: len(got)]
            elif isinstance(event, StreamOpened):
                assert event.stream_id in self.streams[side]
        # (c) delivered-unread bytes are bounded, and the bucket accounts for them exactly
        unread = self.unread(side)
        if self.pair.engine(side).reading_paused:
            note("a receiver paused reading")
        assert unread == self.limit - self.pair.engine(side).receive_window
        assert unread <= self.limit - 1 + 65535  # SPEC.md 8.2

    def write(self, side: str, sid: int, size: int) -> None:
        chunk = self.rnd.randbytes(size)
        self.expected[side, sid] += chunk
        self.pending[side, sid] += chunk

    def flush(self) -> None:
        for side in ("client", "server"):
            engine = self.pair.engine(side)
            for sid in self.streams[side]:
                pending = self.pending[side, sid]
                if not pending:
                    continue
                window = engine.send_window(sid)
                n = engine.send(sid, pending)
                if n < len(pending):
                    note("a v2 send was cut by the window")
                del pending[:n]
                if self.version == 1:
                    assert window is None
                    assert n > 0
                else:
                    info = engine.stream(sid)
                    assert info is not None
                    assert window is not None
                    assert n == min(window, n + len(pending))
                    # (d) what send() takes never exceeds the peer's window
                    if n:
                        assert info.inflight() <= info.peer_window

    def consume_all(self) -> None:
        """Read everything, again and again while reading releases held-back frames."""
        while self.unread("client") or self.unread("server"):
            for side in ("client", "server"):
                for sid in self.streams[side]:
                    self.consume(side, sid, 1 << 30)

    def consume(self, side: str, sid: int, amount: int) -> None:
        available = len(self.received[side, sid]) - self.read[side, sid]
        n = min(amount, available)
        if n:
            self.read[side, sid] += n
            self.pair.record(side, self.pair.engine(side).consumed(sid, n))


def _peer(side: str) -> str:
    return SessionPair.peer_of(side)


def _segmenter(rnd: random.Random) -> Segmenter:
    def cut(data: bytes) -> Iterable[bytes]:
        points = sorted(rnd.randint(0, len(data)) for _ in range(rnd.randint(0, 4)))
        start = 0
        for point in [*points, len(data)]:
            yield data[start:point]
            start = point

    return cut


@st.composite
def traffic_configs(draw: st.DrawFn) -> Config:
    limit = draw(st.sampled_from([1, 1000, 70000, 300000, 4194304]))
    return Config(
        version=draw(st.sampled_from([1, 2])),
        max_receive_buffer=limit,
        max_stream_buffer=min(draw(st.sampled_from([256, 1024, 65536])), limit),
        max_frame_size=draw(st.sampled_from([100, 4096, 32768, 65535])),
        keepalive_disabled=True,
    )


def _open_streams(traffic: Traffic, client_streams: int, server_streams: int) -> None:
    for _ in range(client_streams):
        traffic.open("client")
    for _ in range(server_streams):
        traffic.open("server")
    pair = traffic.pair
    pair.pump()
    for side in SessionPair.SIDES:
        for event in pair.take_events(side):
            assert isinstance(event, StreamOpened)
            assert pair.engine(side).accept(event.stream_id) == []


def _drained(traffic: Traffic) -> bool:
    return traffic.unread("client") == traffic.unread("server") == 0 and all(
        not traffic.pending[writer, sid]
        and traffic.received[_peer(writer), sid] == traffic.expected[writer, sid]
        for writer, sid in traffic.expected
    )


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    config=traffic_configs(),
    streams=st.tuples(st.integers(1, 3), st.integers(0, 2)),
    ops=OPS,
    rnd=st.randoms(use_true_random=False),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_traffic_invariants(
    config: Config, streams: tuple[int, int], ops: list[Op], rnd: random.Random, seed: int
) -> None:
    """SPEC.md 8, 9: with random writes, reads and segmentation, data arrives intact, on the
    right stream; unread data stays within max_receive_buffer - 1 + 65535; v2 senders
    stay within the peer window."""
    pair = SessionPair(config)
    pair.segmenter = _segmenter(rnd)
    traffic = Traffic(pair, seed)
    _open_streams(traffic, *streams)
    for kind, from_client, index, amount in ops:
        side = "client" if from_client else "server"
        sid = traffic.streams[side][index % len(traffic.streams[side])]
        if kind == "write":
            traffic.write(side, sid, amount)
        elif kind == "read":
            traffic.consume(side, sid, amount)
        else:
            pair.pump()
        traffic.flush()
    # Drain: both applications read everything until all data has arrived.
    for _ in range(2000):
        traffic.flush()
        pair.pump()
        traffic.consume_all()
        if _drained(traffic):
            break
    for writer, sid in traffic.expected:
        assert traffic.received[_peer(writer), sid] == traffic.expected[writer, sid]
    assert traffic.unread("client") == traffic.unread("server") == 0
    limit = config.max_receive_buffer
    assert pair.client.receive_window == pair.server.receive_window == limit
    assert not pair.client.is_closed
    assert not pair.server.is_closed
