"""Protocol errors and the end of the byte stream, as the Engine reports them (SPEC.md 4.1-4.6,
12): the frames before the bad one are processed, then ``SessionEnded(error=...)``."""

from __future__ import annotations

import pytest
from support import header, nop, psh, syn

from smuxref import (
    Config,
    DataReceived,
    Engine,
    Event,
    InvalidLengthError,
    InvalidVersionError,
    PingReceived,
    ProtocolError,
    SessionClosedError,
    SessionEnded,
    StreamOpened,
    TruncatedFrameError,
    UnknownCommandError,
)

#: (name, session version, offending header, payload that follows it, error class)
CASES: list[tuple[str, int, bytes, bytes, type[ProtocolError]]] = [
    ("v2-byte-in-v1", 1, header(2, 0, 0, 5), b"", InvalidVersionError),
    ("v1-byte-in-v2", 2, header(1, 0, 0, 5), b"", InvalidVersionError),
    ("version-0", 1, header(0, 2, 1, 3), b"x", InvalidVersionError),
    ("version-3", 2, header(3, 3, 0, 0), b"", InvalidVersionError),
    ("version-255", 1, header(255, 0, 0, 5), b"", InvalidVersionError),
    ("cmd-5-v1", 1, header(1, 5, 0, 3), b"", UnknownCommandError),
    ("cmd-5-v2", 2, header(2, 5, 0, 3), b"", UnknownCommandError),
    ("cmd-255-v2", 2, header(2, 255, 0, 3), b"", UnknownCommandError),
    ("upd-in-v1", 1, header(1, 4, 8, 3), bytes(8), UnknownCommandError),
    ("syn-len-1", 1, header(1, 0, 1, 5), b"x", InvalidLengthError),
    ("fin-len-1", 1, header(1, 1, 1, 3), b"x", InvalidLengthError),
    ("nop-len-4", 1, header(1, 3, 4, 0), bytes(4), InvalidLengthError),
    ("syn-len-65535-v2", 2, header(2, 0, 0xFFFF, 5), b"", InvalidLengthError),
    ("fin-len-8-v2", 2, header(2, 1, 8, 3), bytes(8), InvalidLengthError),
    ("nop-len-1-v2", 2, header(2, 3, 1, 0), b"x", InvalidLengthError),
    ("upd-len-0", 2, header(2, 4, 0, 3), b"", InvalidLengthError),
    ("upd-len-7", 2, header(2, 4, 7, 3), bytes(7), InvalidLengthError),
    ("upd-len-9", 2, header(2, 4, 9, 3), bytes(9), InvalidLengthError),
    ("upd-len-16", 2, header(2, 4, 16, 3), bytes(16), InvalidLengthError),
]
IDS = [case[0] for case in CASES]


def _before(version: int) -> bytes:
    """Good frames that precede the bad one."""
    return syn(3, version) + psh(3, b"hi", version) + nop(0, version)


def _after(version: int) -> bytes:
    """Good frames that follow the bad one and must not be processed."""
    return syn(7, version) + psh(3, b"late", version)


EXPECTED_BEFORE: list[Event] = [
    StreamOpened(stream_id=3),
    DataReceived(stream_id=3, data=b"hi"),
    PingReceived(stream_id=0),
]


def _check_ended(
    engine: Engine, events: list[Event], cls: type[ProtocolError], bad: bytes, buffered: int = 2
) -> None:
    assert len(events) == 1
    ended = events[0]
    assert isinstance(ended, SessionEnded)
    assert type(ended.error) is cls
    assert isinstance(ended.error, ProtocolError)
    assert ended.error.header == bad
    assert engine.error is ended.error
    assert engine.is_closed
    assert engine.stream(7) is None
    info = engine.stream(3)
    assert info is not None
    assert info.buffered == buffered
    assert engine.data_to_send() == b""
    with pytest.raises(SessionClosedError) as excinfo:
        engine.receive_data(nop(0, engine.version))
    assert excinfo.value.cause is ended.error
    with pytest.raises(SessionClosedError):
        engine.open_stream()
    assert engine.connection_lost() == []


@pytest.mark.parametrize(("name", "version", "bad", "payload", "cls"), CASES, ids=IDS)
def test_protocol_error_in_one_chunk(
    name: str, version: int, bad: bytes, payload: bytes, cls: type[ProtocolError]
) -> None:
    """SPEC.md 4.1-4.4, 4.6: earlier frames processed, then SessionEnded(exact class, header)."""
    engine = Engine(Config(version=version), client=False)
    events = engine.receive_data(_before(version) + bad + payload + _after(version))
    assert events[:-1] == EXPECTED_BEFORE
    _check_ended(engine, events[-1:], cls, bad)


@pytest.mark.parametrize(("name", "version", "bad", "payload", "cls"), CASES, ids=IDS)
def test_protocol_error_byte_by_byte(
    name: str, version: int, bad: bytes, payload: bytes, cls: type[ProtocolError]
) -> None:
    """SPEC.md 4.6: the error is reported as soon as its 8 header bytes are in, in any split."""
    engine = Engine(Config(version=version), client=False)
    events: list[Event] = []
    for byte in _before(version):
        events += engine.receive_data(bytes([byte]))
    assert events == EXPECTED_BEFORE
    for byte in bad[:-1]:
        assert engine.receive_data(bytes([byte])) == []
    events = engine.receive_data(bad[-1:])
    _check_ended(engine, events, cls, bad)


def test_error_reported_without_waiting_for_payload() -> None:
    """SPEC.md 4.6: a bad header announcing 65535 bytes ends the session at once."""
    engine = Engine(client=False)
    events = engine.receive_data(header(1, 1, 0xFFFF, 3))
    assert len(events) == 1
    assert isinstance(events[0], SessionEnded)
    assert type(events[0].error) is InvalidLengthError


def test_error_behind_held_back_frames_waits() -> None:
    """SPEC.md 8.2, 4.6: behind an exhausted buffer the bad header is not reached until
    tokens come back, as in Go, which does not read it."""
    engine = Engine(Config(max_receive_buffer=4, max_stream_buffer=4), client=False)
    bad = header(1, 7, 0, 3)
    events = engine.receive_data(syn(3) + psh(3, b"hello") + syn(5) + bad)
    assert events == [StreamOpened(stream_id=3), DataReceived(stream_id=3, data=b"hello")]
    assert not engine.is_closed
    assert engine.reading_paused
    events = engine.consumed(3, 5)
    assert events[:1] == [StreamOpened(stream_id=5)]
    _check_ended(engine, events[1:], UnknownCommandError, bad, buffered=0)


# ------------------------------------------------------------------ 4.5 end of stream


@pytest.mark.parametrize("cut", [1, 3, 7])
def test_connection_lost_mid_header(cut: int) -> None:
    """SPEC.md 4.5: EOF inside a header ends the session with TruncatedFrameError."""
    engine = Engine(client=False)
    partial = psh(3, b"abc")[:cut]
    assert engine.receive_data(_before(1) + partial) == EXPECTED_BEFORE
    events = engine.connection_lost()
    assert len(events) == 1
    ended = events[0]
    assert isinstance(ended, SessionEnded)
    assert type(ended.error) is TruncatedFrameError
    assert ended.error.header == partial
    assert engine.is_closed
    assert engine.connection_lost() == []
    with pytest.raises(SessionClosedError):
        engine.receive_data(b"x")


@pytest.mark.parametrize("cut", [8, 9, 12])
def test_connection_lost_mid_payload(cut: int) -> None:
    """SPEC.md 4.5: EOF inside a payload ends the session with TruncatedFrameError."""
    engine = Engine(client=False)
    frame = psh(3, b"abcde")
    assert engine.receive_data(syn(3) + frame[:cut]) == [StreamOpened(stream_id=3)]
    events = engine.connection_lost()
    assert len(events) == 1
    ended = events[0]
    assert isinstance(ended, SessionEnded)
    assert type(ended.error) is TruncatedFrameError
    assert ended.error.header == frame[:8]
    info = engine.stream(3)
    assert info is not None
    assert info.buffered == 0


def test_clean_eof() -> None:
    """SPEC.md 4.5, 11: EOF on a frame boundary ends the session with error=None."""
    engine = Engine(client=False)
    assert engine.receive_data(_before(1)) == EXPECTED_BEFORE
    assert engine.connection_lost() == [SessionEnded(error=None)]
    assert engine.is_closed
    assert engine.error is None
    assert engine.connection_lost() == []
    with pytest.raises(SessionClosedError) as excinfo:
        engine.receive_data(nop())
    assert excinfo.value.cause is None


def test_clean_eof_on_fresh_session() -> None:
    """SPEC.md 11: EOF before any byte is a clean end."""
    engine = Engine(client=True)
    assert engine.connection_lost() == [SessionEnded(error=None)]


def test_eof_delivers_held_back_frames_first() -> None:
    """SPEC.md 8.2, 11: frames held back by the buffer still come out before SessionEnded."""
    engine = Engine(Config(max_receive_buffer=3, max_stream_buffer=3), client=False)
    events = engine.receive_data(syn(3) + psh(3, b"abc") + psh(3, b"de"))
    assert events == [StreamOpened(stream_id=3), DataReceived(stream_id=3, data=b"abc")]
    assert engine.connection_lost() == []
    assert not engine.is_closed
    assert engine.consumed(3, 3) == [
        DataReceived(stream_id=3, data=b"de"),
        SessionEnded(error=None),
    ]
    assert engine.is_closed


def test_connection_lost_after_protocol_error_is_silent() -> None:
    """SPEC.md 4.6: a session that already ended reports nothing more at EOF."""
    engine = Engine(client=False)
    events = engine.receive_data(header(9, 0, 0, 3))
    assert isinstance(events[-1], SessionEnded)
    assert type(events[-1].error) is InvalidVersionError
    assert engine.connection_lost() == []
