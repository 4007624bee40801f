"""The narrow interface between a stream view and the session that owns it.

:class:`~smuxref.aio.Stream` reads its state from the engine's
:class:`~smuxref.engine.StreamInfo` and asks the session, through this protocol, for
the few things only the session can do: run the engine and flush what it queued,
report how the session ended, and wait for room in the transport.  Declaring it here
keeps ``_stream`` from importing ``_session`` (which imports ``_stream``).
"""

from __future__ import annotations

import asyncio
import copy
from typing import Protocol, TypeVar

from ..engine import Engine

__all__ = ["StreamHost", "fresh"]

_E = TypeVar("_E", bound=BaseException)


def fresh(exc: _E) -> _E:
    """A new instance of a stored exception, to raise once more.

    Raising one instance again and again appends every raise to its traceback, so an
    error stored for many waiters would grow (and keep their frames alive) without end.
    """
    try:
        new = copy.copy(exc)
    except Exception:  # an exception whose constructor copy cannot call again
        return exc.with_traceback(None)
    new.__cause__ = exc.__cause__
    return new.with_traceback(None)


class StreamHost(Protocol):
    """What a :class:`~smuxref.aio.Stream` needs from its session."""

    @property
    def engine(self) -> Engine: ...

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    @property
    def end_error(self) -> BaseException | None:
        """The error that operations raise once the session has ended (None while open)."""

    def sent(self) -> None:
        """The engine queued frames outside event dispatch: put them on the transport."""

    def consumed(self, sid: int, n: int) -> None: ...
    def close_write(self, sid: int) -> None: ...
    def close_stream(self, sid: int) -> None: ...
    async def wait_writable(self) -> None: ...
