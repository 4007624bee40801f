"""What fixtures hand to cases, and how harness outcomes become pytest outcomes.

Shared by the synchronous fixtures (:mod:`conformance.plugin`) and the asyncio one
(:mod:`conformance.aiosession`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from .errors import HarnessError, PeerUnsupported
from .lifecycle import ClientHandle, ServerHandle
from .peers import PeerSpec, RunningPeer
from .pool import PeerPool
from .wire import RawConnection

__all__ = [
    "OWN_STDERR",
    "PEER_STDERR",
    "PeerServer",
    "start_client_peer",
    "verdicts",
    "watch_stderr",
]

#: Peers a case talks to, with the stderr mark at its start: a failing case's report
#: gets what each peer wrote on stderr during the case (see plugin.pytest_runtest_makereport).
PEER_STDERR = pytest.StashKey[list[tuple[str, RunningPeer, int]]]()
#: Names of the peers in PEER_STDERR that served this case alone (a client, a fresh
#: server): their stderr is the case's own, not shared with other sessions.
OWN_STDERR = pytest.StashKey[set[str]]()


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


def start_client_peer(
    pool: PeerPool, peer: PeerSpec, version: int, options: dict[str, Any]
) -> ClientHandle:
    """A client peer connected to the suite; skips for ``tcp:`` peers and exit 127."""
    with verdicts():
        if peer.kind == "tcp":
            raise PeerUnsupported(peer.id, ["--role", "client"], b"a tcp: peer is a running server")
        return pool.client(peer, version, options)
    raise AssertionError("unreachable")  # pragma: no cover
