"""The INFO line of each peer, for the report: which implementation, which version.

A report that says "go failed smux/4.1/x" is only useful if it says *which* Go: the
contract's ``INFO`` command (CONTRACT.md rule 15) returns one JSON line naming the
implementation, its version and its configuration.  The ``smux_check`` fixture asks
each server peer once per (peer, version) and process, on a connection of its own, and
leaves the answer on the item for :mod:`smuxref_conformance.plugin.gate` to put into the results.
"""

from __future__ import annotations

import json
from typing import Any, Final

import pytest

from smuxref import Cmd

from ..deadlines import EXPECT, Deadline
from ..errors import HarnessError
from ..wire import RawConnection

__all__ = ["PEER_INFO", "fetch_info"]

_INFO_SEEN: dict[tuple[str, int], dict[str, Any] | str | None] = {}
#: (peer id, version, INFO reply) fetched while setting up this item, for the report.
PEER_INFO: Final = pytest.StashKey[tuple[str, int, Any]]()


def fetch_info(request: pytest.FixtureRequest) -> None:
    """Ask a server peer for its INFO line once per (peer, version) and process.

    Only for default-configured, pooled servers: INFO describes the implementation,
    and a case's own configuration or a fresh server must not be disturbed.
    """
    node = request.node
    callspec = getattr(node, "callspec", None)
    if callspec is None or callspec.params.get("role", "server") != "server":
        return
    if "peer" not in request.fixturenames or node.get_closest_marker("fresh_peer") is not None:
        return
    if node.get_closest_marker("peer_config") is not None:
        return
    spec = callspec.params.get("peer")
    version = callspec.params.get("smux_version")
    if spec is None or not isinstance(version, int):
        return
    key = (str(spec.id), version)
    if key not in _INFO_SEEN:
        _INFO_SEEN[key] = None
        server = request.getfixturevalue("peer_server")
        try:
            conn = server.connect()
        except HarnessError:
            return
        try:
            sid = conn.open_stream(b"INFO\n")
            line = _first_line(conn, sid, Deadline(EXPECT)).decode("utf-8", "replace").strip()
            try:
                _INFO_SEEN[key] = json.loads(line)
            except ValueError:
                _INFO_SEEN[key] = line
        except (AssertionError, OSError):
            pass
        finally:
            conn.close()
    if _INFO_SEEN[key] is not None:
        node.stash[PEER_INFO] = (key[0], key[1], _INFO_SEEN[key])


def _first_line(conn: RawConnection, sid: int, deadline: Deadline) -> bytes:
    """INFO's reply up to its newline (or FIN): the reply is one line, and a peer that
    never sends FIN must not cost the whole deadline here (10.4 has its own case)."""
    data = b""
    while b"\n" not in data:
        frame = conn.expect_frame(
            lambda f: f.sid == sid and f.cmd in (Cmd.PSH, Cmd.FIN), deadline, what="INFO's line"
        )
        if frame.cmd == Cmd.FIN:
            break
        data += bytes(frame.data)
    return data
