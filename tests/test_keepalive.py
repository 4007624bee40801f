"""Keepalive on an injected clock (SPEC.md 7.1-7.4)."""

from __future__ import annotations

import pytest
from support import SessionPair, decode_all, nop, psh, syn

from smuxref import (
    Cmd,
    Config,
    DataReceived,
    Engine,
    Event,
    Frame,
    KeepAliveTimeoutError,
    PingReceived,
    SessionClosedError,
    SessionEnded,
    StreamOpened,
)


def _run(engine: Engine, until: float) -> list[Event]:
    """Fire every timer of ``engine`` due up to ``until``, each at its own time."""
    events: list[Event] = []
    while (due := engine.next_timer()) is not None and due <= until:
        events += engine.handle_timer(due)
        after = engine.next_timer()
        assert after is None or after > due, f"timer stuck at {after}"
    return events


def _is_timeout(events: list[Event]) -> bool:
    if len(events) != 1 or not isinstance(events[0], SessionEnded):
        return False
    return type(events[0].error) is KeepAliveTimeoutError


# ------------------------------------------------------------------ 7.1 NOP


@pytest.mark.parametrize("version", [1, 2])
def test_nop_every_interval(version: int) -> None:
    """SPEC.md 7.1: a NOP with sid 0 and the session's version byte at every interval."""
    engine = Engine(Config(version=version), client=True)
    assert engine.next_timer() == 10.0
    assert engine.handle_timer(9.999) == []
    assert engine.data_to_send() == b""
    assert engine.handle_timer(10.0) == []
    assert engine.data_to_send() == bytes([version]) + bytes.fromhex("03 0000 00000000")
    assert engine.next_timer() == 20.0
    engine.receive_data(nop(0, version))  # the peer is alive
    assert engine.handle_timer(20.0) == []
    assert engine.data_to_send() == nop(0, version)
    assert engine.next_timer() == 30.0


def test_nop_sent_whatever_the_traffic() -> None:
    """SPEC.md 7.1: the NOP goes out at every interval even on a busy session."""
    pair = SessionPair()
    sid = pair.client.open_stream()
    for second in range(1, 61):
        pair.client.send(sid, b"tick")
        pair.advance(1.0)
        assert pair.now == second
    frames = decode_all(bytes(pair.sent["client"]), 1)
    assert [f.cmd for f in frames].count(Cmd.NOP) == 6  # at 10, 20, ..., 60
    assert [f for f in frames if f.cmd == Cmd.NOP] == [Frame(1, Cmd.NOP, 0)] * 6
    assert pair.sent["server"] == nop() * 6
    assert not pair.client.is_closed
    assert not pair.server.is_closed


def test_custom_interval() -> None:
    """SPEC.md 7.1: the interval is configurable."""
    engine = Engine(Config(keepalive_interval=0.2, keepalive_timeout=0.7), client=False, now=5.0)
    assert engine.next_timer() == pytest.approx(5.2)
    _run(engine, 5.61)
    assert engine.data_to_send() == nop() * 3


def test_late_timer_call_sends_one_nop() -> None:
    """SPEC.md 7.1: a late handle_timer sends one NOP and keeps the interval grid (missed
    ticks are skipped, as Go's ticker does)."""
    engine = Engine(Config(keepalive_interval=10.0, keepalive_timeout=100.0), client=True)
    assert engine.handle_timer(35.0) == []
    assert engine.data_to_send() == nop()
    assert engine.next_timer() == 40.0


# ------------------------------------------------------------------ 7.2 timeout


def test_silent_peer_dies_at_first_timeout_tick() -> None:
    """SPEC.md 7.2, 11: with nothing received, the session ends exactly at keepalive_timeout,
    and sends nothing more (not even the NOP due at the same instant)."""
    engine = Engine(client=True)
    assert _run(engine, 29.999) == []
    assert engine.data_to_send() == nop() * 2
    events = engine.handle_timer(30.0)
    assert _is_timeout(events)
    assert engine.data_to_send() == b""
    assert engine.is_closed
    assert isinstance(engine.error, KeepAliveTimeoutError)
    assert engine.next_timer() is None
    assert engine.handle_timer(60.0) == []
    with pytest.raises(SessionClosedError):
        engine.receive_data(nop())


@pytest.mark.parametrize(
    ("last_frame_at", "death_at"),
    [
        (0.0, 60.0),  # idle 60 s: 2x the timeout
        (1.0, 60.0),
        (29.9, 60.0),  # idle 30.1 s
        (30.1, 90.0),  # idle 59.9 s
        (59.0, 90.0),
    ],
)
def test_death_between_one_and_two_timeouts(last_frame_at: float, death_at: float) -> None:
    """SPEC.md 7.2: death comes at the first timeout tick that finds no frame since the
    previous tick, so after 1x to 2x keepalive_timeout of silence."""
    engine = Engine(client=True)
    assert engine.receive_data(nop()) == [PingReceived(stream_id=0)]  # at t=0
    assert _run(engine, last_frame_at) == []
    assert engine.receive_data(nop()) == [PingReceived(stream_id=0)]
    assert _run(engine, death_at - 0.001) == []
    assert not engine.is_closed
    assert _is_timeout(engine.handle_timer(death_at))


def test_header_counts_before_its_payload() -> None:
    """SPEC.md 7.2: a complete header is traffic even while its payload is still arriving;
    the payload bytes that follow are not."""
    engine = Engine(client=True)
    frame = psh(3, bytes(100))
    assert _run(engine, 25.0) == []
    assert engine.receive_data(frame[:8]) == []  # the header, at t=25
    assert _run(engine, 59.0) == []  # the tick at 30 saw it
    assert engine.receive_data(frame[8:]) == []  # the payload, at t=59
    assert _is_timeout(engine.handle_timer(60.0))


def test_header_split_counts_when_complete() -> None:
    """SPEC.md 7.2: a header counts at the moment its eighth byte arrives."""
    engine = Engine(client=True)
    frame = nop()
    assert _run(engine, 10.0) == []
    assert engine.receive_data(frame[:7]) == []
    assert _run(engine, 29.0) == []
    assert engine.receive_data(frame[7:]) == [PingReceived(stream_id=0)]
    assert _run(engine, 59.9) == []
    assert _is_timeout(engine.handle_timer(60.0))


def test_partial_header_is_not_traffic() -> None:
    """SPEC.md 7.2: bytes that do not complete a header do not count as traffic."""
    engine = Engine(client=True)
    assert _run(engine, 20.0) == []
    assert engine.receive_data(nop()[:7]) == []
    assert _is_timeout(_run(engine, 30.0))


def test_kept_alive_by_peer_nops() -> None:
    """SPEC.md 7.1, 7.2: two keepalive peers on an idle link live forever."""
    pair = SessionPair()
    pair.advance(3600.0)
    assert not pair.client.is_closed
    assert not pair.server.is_closed
    pings = [e for e in pair.events["client"] if isinstance(e, PingReceived)]
    assert len(pings) == 360
    assert pair.sent["client"] == nop() * 360


def test_kept_alive_by_data_only() -> None:
    """SPEC.md 7.2: any frame counts; a peer without keepalive that sends data often enough
    keeps the session alive, and dies at the first empty period once it stops."""
    pair = SessionPair(server_config=Config(keepalive_disabled=True))
    sid = pair.server.open_stream()
    pair.pump()
    for _ in range(10):
        pair.server.send(sid, b"x")
        pair.advance(25.0)
    assert pair.now == 250.0
    assert not pair.client.is_closed
    # Silence from t=225 on: the tick at 240 saw the last frame, the tick at 270 sees none.
    pair.advance(19.999)
    assert not pair.engine("client").is_closed
    pair.advance(0.001)
    assert pair.now == 270.0
    assert pair.engine("client").is_closed
    ended = pair.events["client"][-1]
    assert isinstance(ended, SessionEnded)
    assert type(ended.error) is KeepAliveTimeoutError
    assert not pair.server.is_closed  # keepalive disabled: it never times out


def test_any_nop_sid_keeps_alive() -> None:
    """SPEC.md 7.2: a NOP with a non-zero sid counts as a frame too."""
    engine = Engine(client=False)
    assert engine.receive_data(nop(12345)) == [PingReceived(stream_id=12345)]
    assert _run(engine, 59.0) == []
    assert _is_timeout(engine.handle_timer(60.0))


# ------------------------------------------------------------------ 7.3 disabled


def test_keepalive_disabled() -> None:
    """SPEC.md 7.3: no timer, no NOP, no death."""
    engine = Engine(Config(keepalive_disabled=True), client=True)
    assert engine.next_timer() is None
    assert engine.handle_timer(1e9) == []
    assert engine.data_to_send() == b""
    assert not engine.is_closed
    assert engine.open_stream() == 3


def test_keepalive_disabled_ignores_interval_fields() -> None:
    """SPEC.md 3.2, 7.3: with keepalive disabled the interval and timeout are not checked."""
    engine = Engine(
        Config(keepalive_disabled=True, keepalive_interval=0, keepalive_timeout=-1), client=True
    )
    assert engine.next_timer() is None


# ------------------------------------------------------------------ 7.4 full buffer


def test_not_killed_while_bucket_exhausted() -> None:
    """SPEC.md 7.4: no timeout while the receive buffer is exhausted; NOPs still go out;
    once tokens return, the next silent tick ends the session."""
    engine = Engine(Config(max_receive_buffer=10, max_stream_buffer=10), client=False)
    assert engine.receive_data(syn(3) + psh(3, bytes(10))) == [
        StreamOpened(stream_id=3),
        DataReceived(stream_id=3, data=bytes(10)),
    ]
    assert engine.receive_window == 0
    assert _run(engine, 300.0) == []
    assert not engine.is_closed
    assert engine.data_to_send() == nop() * 30
    assert engine.consumed(3, 10) == []
    assert _run(engine, 329.999) == []
    assert _is_timeout(engine.handle_timer(330.0))


def test_held_back_frames_do_not_prevent_stall_protection() -> None:
    """SPEC.md 7.4, 8.2: frames held back behind a full buffer do not end the session."""
    engine = Engine(Config(max_receive_buffer=10, max_stream_buffer=10), client=False)
    engine.receive_data(syn(3) + psh(3, bytes(20)) + psh(3, b"held"))
    assert engine.reading_paused
    assert _run(engine, 500.0) == []
    assert engine.consumed(3, 20) == [DataReceived(stream_id=3, data=b"held")]
    assert not engine.is_closed
