"""The ``smux_session`` fixture: a smuxref asyncio session talking to the peer.

Raw connections test what a peer does with frames; many cases are easier to write, and
test interoperability more honestly, with a complete implementation on the suite's side:
the reference one (``smuxref.aio``).  The suite plays the role opposite to the peer's:
client when the peer is a server, server when the peer is a client.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from smuxref import HEADER_SIZE, aio

from ..deadlines import STOP, scaled
from ..peers.cmdline import Role
from ..peers.lifecycle import ClientHandle, finish_client
from ..peers.pool import PeerPool
from ..peers.specs import PeerSpec
from ..wire import FIN_GIVE_UP, STALL_GIVE_UP
from .access import PeerServer, start_client_peer, verdicts, watch_stderr

__all__ = ["let_session_read", "smux_session", "stall_watch"]


def let_session_read(session: aio.Session, quiet: float = 0.5) -> None:
    """Run the session's event loop for ``quiet`` seconds (scaled) after its case ended.

    A case that fails while the peer is still writing leaves its session holding part of
    a frame whose rest is already in the socket or on its way; the loop stopped with the
    case, so nothing reads it.  The gate calls this before it takes an incomplete frame
    for a LEN that disagrees with the bytes (only one that stays incomplete is).
    """
    loop = session.loop
    if not loop.is_closed() and not loop.is_running():
        loop.run_until_complete(asyncio.sleep(scaled(quiet)))


async def _watch(
    session: aio.Session, scope: asyncio.Timeout, found: list[str], *, for_fin: bool
) -> None:
    give_up = max(scaled(STALL_GIVE_UP), STALL_GIVE_UP)
    fin_quiet = max(scaled(FIN_GIVE_UP), FIN_GIVE_UP)
    engine, loop = session.engine, asyncio.get_running_loop()
    held, since = -1, loop.time()
    heard, quiet_since = engine.bytes_received, loop.time()
    while True:
        await asyncio.sleep(give_up / 4)
        now, size = loop.time(), engine.partial_input
        if engine.bytes_received != heard:
            heard, quiet_since = engine.bytes_received, now
        if size < HEADER_SIZE or engine.reading_paused or size != held:
            held, since = size, now
        elif now - since >= give_up:
            found.append(
                f"stopped waiting after {give_up:.3g} s: the suite's own smuxref session holds "
                f"{size} bytes of a frame the peer never completed"
            )
            scope.reschedule(now)
            return
        if for_fin and now - quiet_since >= fin_quiet:
            found.append(
                f"stopped waiting after {now - quiet_since:.3g} s without a byte from the peer "
                "(a correct peer sends its FIN right after its last data)"
            )
            scope.reschedule(now)
            return


@contextlib.asynccontextmanager
async def stall_watch(
    session: aio.Session | None,
    scope: asyncio.Timeout,
    found: list[str],
    *,
    for_fin: bool = False,
) -> AsyncIterator[None]:
    """End the wait of ``scope`` early, saying why in ``found``, once ``session`` has
    held the same incomplete frame for :data:`~smuxref_conformance.wire.STALL_GIVE_UP`
    s (scaled) while reading on, or (``for_fin``: a step waiting for the peer's FIN,
    whose failure the case blames on the FIN case) once no byte has come for
    :data:`~smuxref_conformance.wire.FIN_GIVE_UP` s (scaled).

    Nothing the peer sends after that frame can reach the case before it completes, and
    the gate blames a failure on exactly that stall (its "LEN out of step" rule) however
    long the case waits: waiting out the step's deadline would change only the time.
    """
    task = (
        None
        if session is None
        else asyncio.create_task(_watch(session, scope, found, for_fin=for_fin))
    )
    try:
        yield
    finally:
        if task is not None:
            task.cancel()


@pytest_asyncio.fixture(loop_scope="function")
async def smux_session(  # noqa: PLR0917 - pytest passes fixtures positionally
    request: pytest.FixtureRequest,
    peer: PeerSpec,
    smux_version: int,
    role: Role,
    peer_options: dict[str, Any],
    smux_pool: PeerPool,
) -> AsyncIterator[aio.Session]:
    """A smuxref session to the peer playing ``role``; Config from ``@local_config``.

    Closed at teardown; a client peer must then exit 0 (CONTRACT.md rule 8).
    """
    marker = request.node.get_closest_marker("local_config")
    config = aio.Config(**{**(marker.kwargs if marker else {}), "version": smux_version})
    handle: ClientHandle | None = None
    if role == "server":
        server: PeerServer = request.getfixturevalue("peer_server")
        reader, writer = await asyncio.open_connection(*server.address)
        session = await aio.client(reader, writer, config)
    else:
        handle = start_client_peer(smux_pool, peer, smux_version, peer_options, request.node)
        watch_stderr(request.node, handle.peer, own=True)
        reader, writer = await asyncio.open_connection(sock=handle.conn.sock)
        session = await aio.server(reader, writer, config)
    try:
        yield session
    finally:
        session.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(session.wait_closed(), scaled(STOP))
        if handle is not None:
            with verdicts():
                finish_client(handle)
