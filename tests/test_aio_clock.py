"""Keepalive through smuxref.aio on the event loop's clock (SPEC.md 7).

The sessions run over an in-memory pipe (tests/memory_transport.py) on a loop whose
clock jumps to the next timer when nothing else can happen, so idling for seconds
takes no real time and every instant is exact: the session's own timers are the only
clock there is.
"""

from __future__ import annotations

import asyncio

import pytest
from memory_transport import lone_session, memory_pair, run_virtual

from smuxref import Cmd, Config, Frame, FrameDecoder
from smuxref.errors import KeepAliveTimeoutError, SessionClosedError

INTERVAL = 0.05
TIMEOUT = 0.2


@pytest.mark.parametrize("version", [1, 2])
def test_keepalive_timeout_against_silent_peer(version: int) -> None:
    """SPEC.md 7.1, 7.2: a silent peer kills the session with KeepAliveTimeoutError at
    the first timeout tick, having sent a NOP every interval before it."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        config = Config(version=version, keepalive_interval=INTERVAL, keepalive_timeout=TIMEOUT)
        session, peer = lone_session(config)
        with pytest.raises(SessionClosedError):
            await session.accept_stream()
        assert loop.time() - started == pytest.approx(TIMEOUT)
        assert isinstance(session.error, KeepAliveTimeoutError)
        frames = FrameDecoder(version).feed(bytes(peer.written))
        # NOPs at 0.05, 0.10, 0.15 (and at 0.2 only if float addition lands before the
        # check): the tick that ends the session sends nothing (SPEC.md 7.2, 11).
        assert 3 <= len(frames) <= 4
        assert set(frames) == {Frame(version, Cmd.NOP, 0)}
        await session.wait_closed()

    run_virtual(main)


@pytest.mark.parametrize("version", [1, 2])
def test_keepalive_nops_keep_idle_session_open(version: int) -> None:
    """SPEC.md 7.1, 7.2: the peer's NOPs keep an idle session open over many timeouts."""

    async def main() -> None:
        config = Config(version=version, keepalive_interval=INTERVAL, keepalive_timeout=TIMEOUT)
        client, server = memory_pair(config)
        # Idling IS the behaviour under test: fifty whole timeout periods without data.
        await asyncio.sleep(50 * TIMEOUT)
        assert not client.is_closed
        assert not server.is_closed
        stream = await client.open_stream()
        stream.write(b"still here")
        accepted = await server.accept_stream()
        assert await accepted.readexactly(10) == b"still here"
        client.close()
        server.close()
        await client.wait_closed()
        await server.wait_closed()

    run_virtual(main)


@pytest.mark.parametrize("disabled", [True, False], ids=["disabled", "enabled"])
@pytest.mark.parametrize("version", [1, 2])
def test_keepalive_disabled_sends_no_nop(version: int, disabled: bool) -> None:
    """SPEC.md 7.3: keepalive_disabled puts no NOP on the wire (enabled: a NOP comes
    first, one per interval)."""

    async def main() -> None:
        config = Config(
            version=version,
            keepalive_disabled=disabled,
            keepalive_interval=INTERVAL,
            keepalive_timeout=30.0,
        )
        session, peer = lone_session(config)
        # Idling IS the behaviour: six keepalive intervals with nothing to send.
        await asyncio.sleep(6 * INTERVAL + INTERVAL / 2)
        stream = await session.open_stream()
        frames = FrameDecoder(version).feed(bytes(peer.written))
        nop = Frame(version, Cmd.NOP, 0)
        syn = Frame(version, Cmd.SYN, stream.id)
        assert frames == ([syn] if disabled else [nop] * 6 + [syn])
        assert not session.is_closed
        session.close()
        await session.wait_closed()

    run_virtual(main)
