"""Events the sans-IO engine reports to the application layer above it.

They are plain values: frozen, slotted, keyword-only, compared by value, so a test can
write ``assert engine.receive_data(wire) == [StreamOpened(stream_id=3)]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .errors import SmuxError

if TYPE_CHECKING:
    from ._streaminfo import StreamInfo

__all__ = [
    "DataReceived",
    "Event",
    "PingReceived",
    "SessionEnded",
    "StreamEnded",
    "StreamOpened",
    "WindowUpdated",
]


class Event:
    """Base class of all events."""

    __slots__ = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamOpened(Event):
    """The peer opened a stream (SYN).  Call ``Engine.accept`` when the application takes it."""

    stream_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DataReceived(Event):
    """Stream data arrived.  Report it with ``Engine.consumed`` once the application read it."""

    stream_id: int
    data: bytes


def data_received(stream_id: int, data: bytes) -> DataReceived:
    """``DataReceived(stream_id=stream_id, data=data)``, made the fast way: the engine
    makes one per PSH, and a frozen dataclass's ``__init__`` sets each field through
    ``object.__setattr__``, three times the cost of storing into the slots directly."""
    event = _new_event(DataReceived)
    _set_stream_id(event, stream_id)
    _set_data(event, data)
    return event


_new_event = object.__new__
_set_stream_id = DataReceived.__dict__["stream_id"].__set__  # the slot descriptors
_set_data = DataReceived.__dict__["data"].__set__


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamEnded(Event):
    """The peer sent FIN: no more data will come on this stream (it may still read).

    ``info`` is the engine's record of the stream, which it may already have dropped
    from its table (nothing was left to read); not part of the event's value.
    """

    stream_id: int
    info: StreamInfo | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class WindowUpdated(Event):
    """Version 2: the peer acknowledged ``consumed`` bytes and offers ``window``.

    ``info`` is the engine's record of the stream (see :class:`StreamEnded`): data held
    for the window may have gone out with this update, and the stream with it.
    """

    stream_id: int
    consumed: int
    window: int
    info: StreamInfo | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class PingReceived(Event):
    """A NOP arrived (keepalive); ``stream_id`` is whatever the peer put there."""

    stream_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionEnded(Event):
    """The session is over.  ``error`` is None for an orderly end of the byte stream,
    a :class:`~smuxref.errors.ProtocolError` for a peer violation, or a
    :class:`~smuxref.errors.KeepAliveTimeoutError`."""

    error: SmuxError | None
