"""Half-close, close and the end of a session (SPEC.md 10, 11), through the sans-IO
Engine.  Stream ids, SYN handling and frame sizes (SPEC.md 5, 6): test_engine_streams.py."""

from __future__ import annotations

import pytest
from support import SessionPair, decode_all, fin, nop, psh, syn

from smuxref import (
    Config,
    DataReceived,
    Engine,
    SessionClosedError,
    SessionEnded,
    StreamClosedError,
    StreamEnded,
    StreamOpened,
    StreamState,
    UsageError,
)

LIMIT = 4194304


# ------------------------------------------------------------------ 10 lifecycle


def test_half_close_both_directions() -> None:
    """SPEC.md 10.2: each direction ends with its own FIN; the other keeps flowing."""
    pair = SessionPair()
    sid = pair.client.open_stream()
    pair.client.send(sid, b"request")
    pair.client.close_write(sid)
    pair.pump()
    assert pair.take_events("server") == [
        StreamOpened(stream_id=sid),
        DataReceived(stream_id=sid, data=b"request"),
        StreamEnded(stream_id=sid),
    ]
    pair.server.accept(sid)
    client_info = pair.client.stream(sid)
    server_info = pair.server.stream(sid)
    assert client_info is not None
    assert server_info is not None
    assert client_info.state is StreamState.LOCAL_CLOSED
    assert server_info.state is StreamState.REMOTE_CLOSED
    with pytest.raises(StreamClosedError):
        pair.client.send(sid, b"more")

    # The server may still answer after the client's FIN.
    assert pair.server.send(sid, b"response") == 8
    pair.pump()
    assert pair.take_events("client") == [DataReceived(stream_id=sid, data=b"response")]
    pair.server.close_write(sid)
    pair.pump()
    assert pair.take_events("client") == [StreamEnded(stream_id=sid)]
    # Both FINs are done: each side forgets the stream once its data has been read.
    for engine in (pair.client, pair.server):
        info = engine.stream(sid)
        assert info is not None
        assert info.state is StreamState.CLOSED
    assert pair.client.num_streams == 1
    assert pair.client.consumed(sid, 8) == []
    assert pair.client.num_streams == 0
    assert pair.server.consumed(sid, 7) == []
    assert pair.server.num_streams == 0
    assert pair.sent["client"] == syn(sid) + psh(sid, b"request") + fin(sid)
    assert pair.sent["server"] == psh(sid, b"response") + fin(sid)


def test_half_close_from_server() -> None:
    """SPEC.md 10.2: a server-side close_write leaves the client able to send."""
    pair = SessionPair()
    sid = pair.server.open_stream()
    pair.server.close_write(sid)
    pair.pump()
    assert pair.take_events("client") == [StreamOpened(stream_id=sid), StreamEnded(stream_id=sid)]
    pair.client.accept(sid)
    assert pair.client.send(sid, b"up") == 2
    pair.client.close_write(sid)
    pair.pump()
    assert pair.take_events("server") == [
        DataReceived(stream_id=sid, data=b"up"),
        StreamEnded(stream_id=sid),
    ]
    assert pair.client.num_streams == 0  # both FINs, nothing unread
    assert pair.server.num_streams == 1  # two bytes unread
    assert pair.server.consumed(sid, 2) == []
    assert pair.server.num_streams == 0


def test_second_close_write_refused() -> None:
    """SPEC.md 10.2: a stream is half-closed once; a second close_write raises and
    queues no second FIN."""
    pair = SessionPair()
    sid = pair.client.open_stream()
    pair.client.close_write(sid)
    with pytest.raises(StreamClosedError, match="already closed for writing"):
        pair.client.close_write(sid)
    pair.pump()
    assert pair.sent["client"] == syn(sid) + fin(sid)


def test_consumed_refuses_negative_count() -> None:
    """A negative read count is the caller's mistake, not tokens to hand out."""
    engine = Engine(client=False)
    engine.receive_data(syn(3) + psh(3, b"abc"))
    for n in (-1, -2):
        with pytest.raises(UsageError, match="must not be negative"):
            engine.consumed(3, n)
    info = engine.stream(3)
    assert info is not None
    assert info.buffered == 3


def test_duplicate_fin_ignored() -> None:
    """SPEC.md 10.2, 10.5: a second FIN from the peer is dropped."""
    engine = Engine(client=False)
    assert engine.receive_data(syn(3) + fin(3) + fin(3)) == [
        StreamOpened(stream_id=3),
        StreamEnded(stream_id=3),
    ]


def test_data_after_fin_delivered() -> None:
    """SPEC.md 10.3: PSH after the peer's FIN is still delivered and charged."""
    engine = Engine(client=False)
    assert engine.receive_data(syn(3) + psh(3, b"hello") + fin(3) + psh(3, b"after")) == [
        StreamOpened(stream_id=3),
        DataReceived(stream_id=3, data=b"hello"),
        StreamEnded(stream_id=3),
        DataReceived(stream_id=3, data=b"after"),
    ]
    assert engine.receive_window == LIMIT - 10


def test_close_fin_follows_written_data() -> None:
    """SPEC.md 10.4: the FIN of a close comes after all data written on the stream."""
    engine = Engine(Config(max_frame_size=4), client=True)
    sid = engine.open_stream()
    engine.send(sid, b"abcdef")
    engine.close_stream(sid)
    assert engine.data_to_send() == syn(sid) + psh(sid, b"abcd") + psh(sid, b"ef") + fin(sid)


def test_close_discards_unread_and_returns_tokens() -> None:
    """SPEC.md 10.4: close_stream sends FIN, discards unread data and returns its tokens."""
    engine = Engine(Config(max_receive_buffer=100, max_stream_buffer=100), client=False)
    engine.receive_data(syn(3) + psh(3, bytes(60)))
    engine.accept(3)
    assert engine.receive_window == 40
    assert engine.close_stream(3) == []
    assert engine.data_to_send() == fin(3)
    assert engine.receive_window == 100
    assert engine.stream(3) is None
    assert engine.num_streams == 0


def test_close_after_close_write_sends_no_second_fin() -> None:
    """SPEC.md 10.4, 10.5: closing a LOCAL_CLOSED stream discards its data without a FIN."""
    engine = Engine(client=False)
    engine.receive_data(syn(3) + psh(3, b"abc"))
    engine.accept(3)
    engine.close_write(3)
    assert engine.data_to_send() == fin(3)
    assert engine.close_stream(3) == []
    assert engine.data_to_send() == b""
    assert engine.receive_window == LIMIT


def test_close_releases_held_back_frames() -> None:
    """SPEC.md 8.3, 10.4: tokens returned by close_stream let held-back frames through."""
    engine = Engine(Config(max_receive_buffer=10, max_stream_buffer=10), client=False)
    events = engine.receive_data(syn(3) + psh(3, bytes(10)) + syn(5) + psh(5, b"x"))
    assert events == [StreamOpened(stream_id=3), DataReceived(stream_id=3, data=bytes(10))]
    assert engine.reading_paused
    assert engine.close_stream(3) == [
        StreamOpened(stream_id=5),
        DataReceived(stream_id=5, data=b"x"),
    ]
    assert engine.receive_window == 9
    assert not engine.reading_paused


def test_close_unaccepted_stream_frees_backlog() -> None:
    """SPEC.md 3.3, 10.4: closing a stream that was never accepted frees its backlog slot."""
    engine = Engine(Config(accept_backlog=1), client=False)
    assert engine.receive_data(syn(3) + syn(5) + syn(7)) == [
        StreamOpened(stream_id=3),
        StreamOpened(stream_id=5),
    ]
    assert engine.reading_paused
    assert engine.close_stream(3) == [StreamOpened(stream_id=7)]
    assert engine.data_to_send() == fin(3)


@pytest.mark.parametrize("sid", [0, 3, 4, 0xFFFFFFFF])
def test_close_unknown_stream_is_noop(sid: int) -> None:
    """SPEC.md 10.4: close_stream on an unknown id returns no events and sends nothing."""
    engine = Engine(client=True)
    assert engine.close_stream(sid) == []
    assert engine.close_stream(sid) == []
    assert engine.data_to_send() == b""
    assert not engine.is_closed


def test_close_twice_sends_one_fin() -> None:
    """SPEC.md 10.4: a second close_stream of the same stream is a no-op."""
    engine = Engine(client=True)
    sid = engine.open_stream()
    engine.data_to_send()
    assert engine.close_stream(sid) == []
    assert engine.close_stream(sid) == []
    assert engine.data_to_send() == fin(sid)


def test_session_close_sends_nothing() -> None:
    """SPEC.md 11: close() sends no frame, forgets every stream and refuses further use."""
    engine = Engine(client=True)
    a = engine.open_stream()
    engine.open_stream()
    engine.send(a, b"queued")
    engine.data_to_send()
    engine.receive_data(syn(2) + psh(2, b"unread"))
    engine.close()
    assert engine.data_to_send() == b""
    assert engine.is_closed
    assert engine.error is None
    assert engine.num_streams == 0
    assert engine.receive_window == LIMIT
    assert engine.next_timer() is None
    assert engine.handle_timer(1000.0) == []
    with pytest.raises(SessionClosedError):
        engine.open_stream()
    with pytest.raises(SessionClosedError):
        engine.receive_data(nop())
    with pytest.raises(SessionClosedError):
        engine.send(a, b"x")
    with pytest.raises(SessionClosedError):
        engine.close_write(a)
    assert engine.close_stream(a) == []
    assert engine.connection_lost() == []
    assert engine.data_to_send() == b""


def test_session_close_over_pair_is_silent() -> None:
    """SPEC.md 11: the peer sees no frame at all when a session is closed."""
    pair = SessionPair()
    sid = pair.client.open_stream()
    pair.client.send(sid, b"data")
    pair.pump()
    before = bytes(pair.sent["client"])
    pair.client.close()
    pair.pump()
    assert bytes(pair.sent["client"]) == before
    assert decode_all(before, 1) == decode_all(syn(sid) + psh(sid, b"data"), 1)
    # The peer only learns of it from the transport's end.
    assert pair.connection_lost("server") == [SessionEnded(error=None)]
