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
