"""Stream ids, SYN handling, dropped frames and frame sizes (SPEC.md 5, 6), through the
sans-IO Engine.  Half-close and close (SPEC.md 10, 11): test_engine_lifecycle.py."""

from __future__ import annotations

import pytest
from support import SessionPair, fin, nop, psh, syn, upd

from smuxref import (
    Config,
    DataReceived,
    Engine,
    GoAwayError,
    PingReceived,
    SessionClosedError,
    SessionEnded,
    StreamEnded,
    StreamIdError,
    StreamOpened,
    StreamState,
)

LIMIT = 4194304


# ------------------------------------------------------------------ 5.1 / 5.2 ids


@pytest.mark.parametrize("version", [1, 2])
def test_client_ids_and_syn_bytes(version: int) -> None:
    """SPEC.md 5.1: a client opens 3, 5, 7 with SYN frames of exactly these bytes."""
    engine = Engine(Config(version=version), client=True)
    assert [engine.open_stream() for _ in range(3)] == [3, 5, 7]
    v = bytes([version])
    assert engine.data_to_send() == b"".join(
        v + bytes.fromhex(rest)
        for rest in ("00 0000 03000000", "00 0000 05000000", "00 0000 07000000")
    )
    assert engine.num_streams == 3


@pytest.mark.parametrize("version", [1, 2])
def test_server_ids_and_syn_bytes(version: int) -> None:
    """SPEC.md 5.1: a server opens 2, 4, 6 with SYN frames of exactly these bytes."""
    engine = Engine(Config(version=version), client=False)
    assert [engine.open_stream() for _ in range(3)] == [2, 4, 6]
    v = bytes([version])
    assert engine.data_to_send() == b"".join(
        v + bytes.fromhex(rest)
        for rest in ("00 0000 02000000", "00 0000 04000000", "00 0000 06000000")
    )


@pytest.mark.parametrize(("client", "last"), [(True, 0xFFFFFFFF), (False, 0xFFFFFFFE)])
def test_id_exhaustion(client: bool, last: int) -> None:
    """SPEC.md 5.2: after the last id, open raises GoAwayError for good and nothing is sent."""
    engine = Engine(client=client, next_stream_id=last)
    assert engine.open_stream() == last
    assert engine.data_to_send() == syn(last)
    for _ in range(3):
        with pytest.raises(GoAwayError):
            engine.open_stream()
        assert engine.data_to_send() == b""
    assert engine.stream_ids == [last]
    assert not engine.is_closed
    # The session itself goes on: the last stream still works.
    assert engine.send(last, b"ok") == 2
    assert engine.data_to_send() == psh(last, b"ok")


@pytest.mark.parametrize(("client", "start"), [(True, 0xFFFFFFFD), (False, 0xFFFFFFFC)])
def test_ids_up_to_exhaustion(client: bool, start: int) -> None:
    """SPEC.md 5.1, 5.2: ids step by 2 up to the last one of the side's parity, then stop."""
    engine = Engine(client=client, next_stream_id=start)
    assert [engine.open_stream(), engine.open_stream()] == [start, start + 2]
    with pytest.raises(GoAwayError):
        engine.open_stream()
    assert engine.data_to_send() == syn(start) + syn(start + 2)


# ------------------------------------------------------------------ 5.4 SYN


def test_duplicate_syn_ignored() -> None:
    """SPEC.md 5.4: a SYN for an open id is ignored; the stream and its data are kept."""
    engine = Engine(client=False)
    events = engine.receive_data(syn(3) + psh(3, b"ab") + syn(3) + psh(3, b"cd"))
    assert events == [
        StreamOpened(stream_id=3),
        DataReceived(stream_id=3, data=b"ab"),
        DataReceived(stream_id=3, data=b"cd"),
    ]
    info = engine.stream(3)
    assert info is not None
    assert info.buffered == 4
    assert engine.num_streams == 1
    assert engine.data_to_send() == b""


def test_bytes_received_counts_every_byte_fed() -> None:
    """A frame cut anywhere counts its bytes as they come, whole or not."""
    engine = Engine(client=False)
    data = syn(3) + psh(3, b"abc")
    engine.receive_data(data[:5])
    assert (engine.bytes_received, engine.partial_input) == (5, 5)
    engine.receive_data(data[5:])
    assert (engine.bytes_received, engine.partial_input) == (len(data), 0)


def test_duplicate_syn_for_own_stream_ignored() -> None:
    """SPEC.md 5.4: a SYN for a stream this side opened is ignored too."""
    engine = Engine(client=True)
    sid = engine.open_stream()
    engine.data_to_send()
    assert engine.receive_data(syn(sid)) == []
    info = engine.stream(sid)
    assert info is not None
    assert info.accepted
    assert engine.data_to_send() == b""


@pytest.mark.parametrize(
    ("client", "sid"),
    [
        (False, 0),
        (False, 0xFFFFFFFF),
        (False, 2),  # the server's own parity
        (True, 0),
        (True, 0xFFFFFFFF),  # the client's own parity
        (True, 3),
        (True, 2),
    ],
)
def test_syn_any_id_accepted_by_default(client: bool, sid: int) -> None:
    """SPEC.md 5.4: by default a SYN of any id and parity, 0 included, opens a stream."""
    engine = Engine(client=client)
    assert engine.receive_data(syn(sid) + psh(sid, b"x")) == [
        StreamOpened(stream_id=sid),
        DataReceived(stream_id=sid, data=b"x"),
    ]
    assert engine.stream_ids == [sid]


@pytest.mark.parametrize(
    ("client", "good", "bad"),
    [(False, 3, 2), (False, 3, 0), (True, 2, 5), (True, 2, 0), (True, 2, 0xFFFFFFFF)],
)
def test_reject_own_parity_syn(client: bool, good: int, bad: int) -> None:
    """SPEC.md 3.3, 5.4: with reject_own_parity_syn, a SYN of own parity or id 0 ends the
    session with StreamIdError; frames before it are processed, frames after it are not."""
    engine = Engine(Config(reject_own_parity_syn=True), client=client)
    events = engine.receive_data(syn(good) + syn(bad) + psh(good, b"late") + syn(good + 2))
    assert events[:1] == [StreamOpened(stream_id=good)]
    assert len(events) == 2
    ended = events[1]
    assert isinstance(ended, SessionEnded)
    assert type(ended.error) is StreamIdError
    assert ended.error.header == syn(bad)
    assert engine.error is ended.error
    assert engine.is_closed
    info = engine.stream(good)
    assert info is not None
    assert info.buffered == 0  # the PSH after the bad SYN was not processed
    assert engine.stream(bad) is None
    assert engine.stream(good + 2) is None
    assert engine.data_to_send() == b""
    with pytest.raises(SessionClosedError):
        engine.receive_data(psh(good, b"more"))


@pytest.mark.parametrize("client", [True, False])
def test_reject_own_parity_syn_accepts_peer_parity(client: bool) -> None:
    """SPEC.md 3.3, 5.1: reject_own_parity_syn still accepts every id of the peer's parity."""
    engine = Engine(Config(reject_own_parity_syn=True), client=client)
    peer_ids = [2, 4, 0xFFFFFFFE] if client else [1, 3, 0xFFFFFFFF]
    wire = b"".join(syn(sid) for sid in peer_ids)
    assert engine.receive_data(wire) == [StreamOpened(stream_id=sid) for sid in peer_ids]
    assert not engine.is_closed


def test_reject_own_parity_between_paired_engines() -> None:
    """SPEC.md 3.3, 5.1: two hardened engines can open streams to each other."""
    pair = SessionPair(Config(reject_own_parity_syn=True))
    a = pair.client.open_stream()
    b = pair.server.open_stream()
    pair.pump()
    assert pair.take_events("server") == [StreamOpened(stream_id=a)]
    assert pair.take_events("client") == [StreamOpened(stream_id=b)]
    assert not pair.client.is_closed
    assert not pair.server.is_closed


@pytest.mark.parametrize("backlog", [1, 3])
def test_accept_backlog_stalls_after_the_syn_beyond_it(backlog: int) -> None:
    """SPEC.md 3.3, 5.4: SYNs beyond accept_backlog are not dropped: the first one beyond
    creates its stream, then nothing is processed until the application accepts one."""
    engine = Engine(Config(accept_backlog=backlog), client=False)
    ids = [3 + 2 * i for i in range(backlog + 2)]
    wire = b"".join(syn(sid) for sid in ids) + psh(3, b"x")
    assert engine.receive_data(wire) == [StreamOpened(stream_id=sid) for sid in ids[:-1]]
    assert engine.reading_paused
    assert engine.num_streams == backlog + 1
    assert engine.accept(9999) == []  # not a waiting stream: nothing changes
    assert engine.reading_paused
    # One accept lets the waiting SYN through, which fills the backlog beyond the bound
    # again, as Go's receive loop blocks on its next SYN once the queue is full.
    assert engine.accept(ids[0]) == [StreamOpened(stream_id=ids[-1])]
    assert engine.reading_paused
    assert engine.accept(ids[0]) == []  # accepting twice counts once
    assert engine.reading_paused
    assert engine.accept(ids[1]) == [DataReceived(stream_id=3, data=b"x")]
    assert not engine.reading_paused


def test_go_backlog_default() -> None:
    """SPEC.md 3.1, 5.4: with the default backlog, 1025 unaccepted streams are created and
    the frame after the 1025th SYN waits."""
    engine = Engine(client=False)
    ids = [3 + 2 * i for i in range(1026)]
    events = engine.receive_data(b"".join(syn(sid) for sid in ids))
    assert events == [StreamOpened(stream_id=sid) for sid in ids[:1025]]
    assert engine.accept(3) == [StreamOpened(stream_id=ids[-1])]


def test_syn_reuses_id_of_removed_stream() -> None:
    """SPEC.md 5.4, 10.5: a SYN for an id whose stream was closed and removed opens a new one."""
    engine = Engine(client=False)
    engine.receive_data(syn(3) + psh(3, b"old"))
    engine.accept(3)
    engine.close_stream(3)
    assert engine.receive_data(syn(3) + psh(3, b"new")) == [
        StreamOpened(stream_id=3),
        DataReceived(stream_id=3, data=b"new"),
    ]
    info = engine.stream(3)
    assert info is not None
    assert info.state is StreamState.OPEN
    assert info.buffered == 3
    assert not info.accepted


def test_syn_for_closed_stream_still_held_is_ignored() -> None:
    """SPEC.md 10.5: while a CLOSED stream is held for unread data, its SYN is a duplicate."""
    engine = Engine(client=False)
    engine.receive_data(syn(3) + psh(3, b"unread") + fin(3))
    engine.accept(3)
    engine.close_write(3)
    info = engine.stream(3)
    assert info is not None
    assert info.state is StreamState.CLOSED
    assert engine.receive_data(syn(3) + psh(3, b"more")) == []
    assert engine.stream(3) is info
    assert info.buffered == 6


def test_frames_before_syn_is_sent_are_received() -> None:
    """SPEC.md 10.1: an opener is ready for the stream's frames before its SYN leaves."""
    engine = Engine(client=True)
    sid = engine.open_stream()
    assert engine.receive_data(psh(sid, b"early") + fin(sid)) == [
        DataReceived(stream_id=sid, data=b"early"),
        StreamEnded(stream_id=sid),
    ]
    assert engine.data_to_send() == syn(sid)


# ------------------------------------------------------------------ 5.5 unknown ids


@pytest.mark.parametrize(
    ("version", "frame"),
    [
        (1, psh(9, b"payload")),
        (1, fin(9)),
        (2, psh(9, b"payload", 2)),
        (2, fin(9, 2)),
        (2, upd(9, 100, 65536)),
    ],
    ids=["psh-v1", "fin-v1", "psh-v2", "fin-v2", "upd-v2"],
)
def test_frames_for_unknown_ids_dropped(version: int, frame: bytes) -> None:
    """SPEC.md 5.5: PSH/FIN/UPD for an unknown id: no event, no reply, no buffer charge."""
    engine = Engine(Config(version=version), client=False)
    assert engine.receive_data(frame) == []
    assert engine.receive_window == LIMIT
    assert engine.num_streams == 0
    assert engine.data_to_send() == b""
    assert not engine.is_closed
    # ... and the session goes on.
    assert engine.receive_data(syn(3, version)) == [StreamOpened(stream_id=3)]


def test_frames_for_closed_stream_dropped() -> None:
    """SPEC.md 5.5, 10.4: after close_stream, the peer's PSH and FIN for it are dropped."""
    engine = Engine(client=False)
    engine.receive_data(syn(3))
    engine.accept(3)
    assert engine.close_stream(3) == []
    assert engine.data_to_send() == fin(3)
    assert engine.receive_data(psh(3, b"late") + fin(3)) == []
    assert engine.receive_window == LIMIT
    assert engine.data_to_send() == b""


def test_nop_with_any_sid_reported() -> None:
    """SPEC.md 5.3: a NOP is accepted with any stream id and creates nothing."""
    engine = Engine(client=True)
    assert engine.receive_data(nop(0) + nop(12345)) == [
        PingReceived(stream_id=0),
        PingReceived(stream_id=12345),
    ]
    assert engine.num_streams == 0
    assert engine.data_to_send() == b""


# ------------------------------------------------------------------ 6 frame sizes


def test_zero_length_psh_ignored() -> None:
    """SPEC.md 6.3: a zero-length PSH is ignored, for a known or an unknown stream."""
    engine = Engine(client=False)
    events = engine.receive_data(syn(3) + psh(3, b"") + psh(5, b"") + psh(3, b"x"))
    assert events == [StreamOpened(stream_id=3), DataReceived(stream_id=3, data=b"x")]
    assert engine.receive_window == LIMIT - 1


@pytest.mark.parametrize(
    ("frame_size", "length", "chunks"),
    [
        (1000, 2500, [1000, 1000, 500]),
        (1000, 1000, [1000]),
        (1000, 1001, [1000, 1]),
        (1, 3, [1, 1, 1]),
        (65535, 65536, [65535, 1]),
        (32768, 65537, [32768, 32768, 1]),
    ],
)
def test_send_splits_at_max_frame_size(frame_size: int, length: int, chunks: list[int]) -> None:
    """SPEC.md 6.1: send() cuts data into PSH frames of exactly max_frame_size, then the rest."""
    engine = Engine(Config(max_frame_size=frame_size), client=True)
    sid = engine.open_stream()
    engine.data_to_send()
    data = bytes(i % 251 for i in range(length))
    assert engine.send(sid, data) == length
    expected = b""
    offset = 0
    for size in chunks:
        expected += psh(sid, data[offset : offset + size])
        offset += size
    assert engine.data_to_send() == expected


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_send_accepts_buffers(kind: type[bytes] | type[bytearray] | type[memoryview]) -> None:
    """SPEC.md 6.1: bytes, bytearray and memoryview are sent identically."""
    engine = Engine(client=True)
    sid = engine.open_stream()
    engine.data_to_send()
    assert engine.send(sid, kind(b"hello")) == 5
    assert engine.data_to_send() == psh(sid, b"hello")


@pytest.mark.parametrize("version", [1, 2])
def test_send_empty_sends_nothing(version: int) -> None:
    """SPEC.md 6.3: send(b"") returns 0 and never emits a zero-length PSH."""
    engine = Engine(Config(version=version), client=True)
    sid = engine.open_stream()
    engine.data_to_send()
    assert engine.send(sid, b"") == 0
    assert engine.data_to_send() == b""
    if version == 2:
        assert engine.send_window(sid) == 262144
