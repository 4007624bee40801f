"""A listening smux server that keeps track of what it started.

asyncio's own ``Server`` knows connections, not sessions or the tasks serving them,
so it can neither report a handler's failure nor wind the handlers down.  This one
owns both: every handler runs in a task it holds, a failure is logged rather than
left in an unretrieved task, and shutdown gives the handlers a deadline before it
closes their sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ..errors import SessionClosedError

if TYPE_CHECKING:
    import socket
    from types import TracebackType

    from ._session import Session

__all__ = ["Server"]

logger = logging.getLogger("smuxref.aio.server")


class Server:
    """What :func:`smuxref.aio.serve` returns.

    ``close()`` stops listening; ``await wait_closed(grace)`` then waits up to
    ``grace`` seconds (None: without limit) for the handlers to return, closes the
    sessions still open, cancels the handlers still running and waits for all of it.
    ``async with server:`` does both on exit, with no grace period.
    """

    def __init__(self, handler: Callable[[Session], Awaitable[None]]) -> None:
        self._handler = handler
        self._listener: asyncio.Server | None = None
        self._sessions: set[Session] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"<smuxref.aio.Server sessions={len(self._sessions)} handlers={len(self._tasks)}>"

    def listening(self, listener: asyncio.Server) -> None:
        self._listener = listener

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """The listening sockets (empty once closed)."""
        return () if self._listener is None else tuple(self._listener.sockets)

    @property
    def sessions(self) -> frozenset[Session]:
        """Sessions whose handler is still running."""
        return frozenset(self._sessions)

    @property
    def handlers(self) -> frozenset[asyncio.Task[None]]:
        return frozenset(self._tasks)

    def is_serving(self) -> bool:
        return self._listener is not None and self._listener.is_serving()

    def start(self, session: Session) -> None:
        """Run the handler for a new session (called by the listener per connection)."""
        task = asyncio.get_running_loop().create_task(self._run(session))
        self._sessions.add(session)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, session: Session) -> None:
        try:
            await self._handler(session)
        except (SessionClosedError, ConnectionError) as exc:
            # The client went away, or the session failed under the handler: routine
            # for a server, so reported, not raised.
            logger.info("handler of %r ended with its session: %s", session, exc)
        except Exception:
            logger.exception("handler of %r failed", session)
        finally:
            self._sessions.discard(session)
            session.close()

    def close(self) -> None:
        """Stop accepting connections; running handlers go on."""
        if self._listener is not None:
            self._listener.close()

    async def wait_closed(self, grace: float | None = None) -> None:
        """Shut down: handlers get ``grace`` seconds (None: as long as they take), then
        their sessions are closed and the handlers still running are cancelled."""
        self.close()
        tasks = set(self._tasks)
        if tasks and (grace is None or grace > 0):
            await asyncio.wait(tasks, timeout=grace)
        for session in list(self._sessions):
            session.close()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._listener is not None:
            with contextlib.suppress(ConnectionError, OSError):
                await self._listener.wait_closed()

    async def serve_forever(self) -> None:
        assert self._listener is not None
        await self._listener.serve_forever()

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.wait_closed(grace=0)
