"""The ECHO round trip that tells whether a server peer is ready, and still serving.

Readiness (CONTRACT.md rule 5) and life (rule 6) are decided by one real smux exchange
through :mod:`..wire`: the pool and the lifecycle probe a server before and between the
cases, which never probe it themselves.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from smuxref import Cmd, Frame

from ..deadlines import Deadline
from ..errors import WireAssertion
from ..wire import dial

__all__ = ["EchoProbe", "echo_probe", "probe_echo"]


def echo_probe(
    address: tuple[str, int], version: int, *, peer: str, deadline: Deadline
) -> str | None:
    """One real smux round trip (SYN, PSH ``ECHO\\n`` + payload, the payload back).

    Returns None on success, or what went wrong.  Used to decide that a server is ready:
    a successful TCP connect proves nothing behind docker-proxy.
    """
    return probe_echo(address, version, peer=peer, deadline=deadline).error


class EchoProbe(NamedTuple):
    """What one readiness round trip gave: the error (None: it worked), the frames the
    peer sent meanwhile and whether it sent any byte at all (a peer that answers with
    wrong frames is alive, but fails the protocol; one that sends nothing may not be
    serving at all)."""

    error: str | None
    frames: list[Frame]
    answered: bool = False


def probe_echo(
    address: tuple[str, int],
    version: int,
    *,
    peer: str,
    deadline: Deadline,
    any_answer: bool = False,
) -> EchoProbe:
    """:func:`echo_probe`, keeping the frames the peer answered with.

    ``any_answer``: stop at the peer's first bytes, for a server already known to answer
    ECHO wrongly (a wrong echo may never complete, and waiting out the deadline before
    each of its cases made a run of such a peer take hours).
    """
    payload = os.urandom(8).hex().encode()
    try:
        conn = dial(address, version, peer=peer, timeout=deadline)
    except OSError as exc:
        return EchoProbe(f"connect to {address[0]}:{address[1]} failed: {exc}", [])
    try:
        sid = conn.open_stream(b"ECHO\n" + payload)
        if any_answer:
            answered = conn.wait_for_answer(deadline)
            return EchoProbe(None if answered else "no answer", conn.frames, answered)
        got = b""
        while len(got) < len(payload):
            frame = conn.expect_frame(
                lambda f: f.sid == sid and f.cmd == Cmd.PSH,
                deadline,
                what="the echoed payload",
            )
            got += frame.data
        if got != payload:
            return EchoProbe(f"ECHO returned {got!r} for {payload!r}", conn.frames, True)
        conn.send_frame(Frame(version, Cmd.FIN, sid))
        return EchoProbe(None, conn.frames, True)
    except (WireAssertion, OSError) as exc:
        answered = any(e.direction == "recv" and e.data for e in conn.transcript)
        return EchoProbe(str(exc).splitlines()[0], conn.frames, answered)
    finally:
        conn.close()
