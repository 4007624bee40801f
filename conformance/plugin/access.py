"""What fixtures hand to cases, and how harness outcomes become pytest outcomes.

Shared by the synchronous fixtures (:mod:`smuxref_conformance.plugin`) and the asyncio one
(:mod:`smuxref_conformance.plugin.smux_session`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from ..errors import HarnessError, PeerUnsupported
from ..judge.checks import OWN_STDERR, PEER_STDERR
from ..peers.lifecycle import ClientHandle, ServerHandle
from ..peers.pool import PeerPool
from ..peers.specs import PeerSpec, RunningPeer
from ..wire import RawConnection

T = TypeVar("T")

__all__ = [
    "TIME_FACTOR",
    "PeerServer",
    "start_adapting",
    "start_client_peer",
    "verdicts",
    "watch_stderr",
    "whole_seconds",
]


def watch_stderr(node: pytest.Item, peer: RunningPeer | None, *, own: bool) -> None:
    """Remember where ``peer``'s stderr stands, so a failure can show what came after;
    for a peer ``own``-ed by the case (not pooled) that is everything it wrote."""
    if peer is not None:
        mark = 0 if own else peer.capture.stderr_total
        node.stash.setdefault(PEER_STDERR, []).append((peer.name, peer, mark))
        if own:
            node.stash.setdefault(OWN_STDERR, set()).add(peer.name)


@contextlib.contextmanager
def verdicts() -> Iterator[None]:
    """Harness errors become a clear error (no traceback), exit 127 a skip."""
    # ``from None``: the pytest outcome carries the whole message; chaining it to the
    # harness exception would print everything twice.
    try:
        yield
    except PeerUnsupported as exc:
        raise pytest.skip.Exception(f"unsupported: {exc}") from None
    except HarnessError as exc:
        raise pytest.fail.Exception(str(exc), pytrace=False) from None


class PeerServer:
    """A running server peer for one case: its address, and raw connections to it."""

    def __init__(self, handle: ServerHandle) -> None:
        self.handle = handle
        self.address = handle.address
        self.version = handle.version
        self._conns: list[RawConnection] = []

    def connect(self) -> RawConnection:
        """A new raw connection: a new, independent session on the peer."""
        try:
            conn = self.handle.connect()
        except OSError as exc:
            host, port = self.address
            raise HarnessError(
                f"cannot connect to {self.handle.spec.id} at {host}:{port}: {exc}"
            ) from None
        self._conns.append(conn)
        return conn

    @property
    def ports(self) -> set[int]:
        """The suite's local ports of this case's connections (what the server sees as
        their remote ports, and may name in its log lines)."""
        return {conn.local_port for conn in self._conns}

    def close(self) -> None:
        for conn in self._conns:
            conn.close()


#: How much slower than asked a case's keepalive values run (see start_adapting).
TIME_FACTOR = pytest.StashKey[int]()
_KEEPALIVE_KEYS = ("keepalive_interval", "keepalive_timeout")


def whole_seconds(options: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
    """The smallest factor that makes every keepalive value (ms) a whole number of
    seconds, and the options multiplied by it; None when there is nothing to stretch."""
    values = [int(options[k]) for k in _KEEPALIVE_KEYS if k in options]
    if not values or all(v % 1000 == 0 for v in values):
        return None
    factor = next(f for f in range(2, 1001) if all(v * f % 1000 == 0 for v in values))
    slower = {k: (int(v) * factor if k in _KEEPALIVE_KEYS else v) for k, v in options.items()}
    return factor, slower


def start_adapting(
    node: pytest.Item, start: Callable[[dict[str, Any]], T], options: dict[str, Any]
) -> T:
    """``start(options)``; if the peer refuses them with exit 127 and they hold keepalive
    values that are not whole seconds (a library whose timers count seconds), start it
    again with the values stretched to whole seconds, and note the factor on ``node``
    so the case stretches its deadlines alike (CONTRACT.md rule 3)."""
    try:
        return start(options)
    except PeerUnsupported:
        slower = whole_seconds(options)
        if slower is None:
            raise
        result = start(slower[1])
        node.stash[TIME_FACTOR] = slower[0]
        return result


def start_client_peer(
    pool: PeerPool,
    peer: PeerSpec,
    version: int,
    options: dict[str, Any],
    node: pytest.Item | None = None,
) -> ClientHandle:
    """A client peer connected to the suite; skips for ``tcp:`` peers and exit 127
    (after a retry at whole seconds when ``node`` is given, see start_adapting)."""
    with verdicts():
        if peer.kind == "tcp":
            raise PeerUnsupported(peer.id, ["--role", "client"], b"a tcp: peer is a running server")
        if node is None:
            return pool.client(peer, version, options)
        return start_adapting(node, lambda o: pool.client(peer, version, o), options)
    raise AssertionError("unreachable")  # pragma: no cover
