"""The oracle for a protocol without error frames: what did the peer do with bad input?

smux has no error, reset or goaway frame (SPEC.md 4.6, 12), so a peer that rejects a
frame can only close the transport, stop reading, or carry on.  A case that sends an
adversarial input therefore cannot wait for "the error"; it asks the oracle which of
four observable reactions the peer had, and grades that list (pass, non_strict, fail):

``CLOSED``
    The peer closed the connection (FIN or RST), within the wait or during the probe.
``IGNORED``
    The connection is open and the *same* session still serves a new stream: an
    ``ECHO`` round trip on a fresh stream id works (or the peer at least answers it).
``SILENT``
    The connection is open but the new stream gets no answer: the peer stopped
    reading (Go since v1.2.12, SPEC.md 4.6), or waits for bytes that never come.
``CRASHED``
    The peer *process* is gone, or no fresh connection gets an ``ECHO`` round trip.
    Always a fail, whatever a case accepts.

Procedure (every step bounded by a deadline scaled by ``--smux-timeout-scale``): wait
up to ``wait`` seconds for a close; if none, probe the same session (SYN + ``ECHO``
line + payload on a fresh id; NOP and UPD are skipped while waiting); then probe the
process: a fresh connection with an ``ECHO`` round trip for a server peer, the
process's exit status for a client peer (which has one session only: after a close
it must exit 0, CONTRACT.md rule 8; any other status is a crash).

Why the client probe differs: a client peer dialed the suite once and runs exactly one
session, so there is no "fresh connection" to ask for; what can still be told apart is
a process that ended its session cleanly (exit 0 after the close: fine), one that is
still running (fine while its session is open), and one that died (non-zero status or a
signal, or any exit while its session was open: CRASHED).  The plugin already watches
that process (it checks rule 8 at teardown); the oracle reads the same exit status
earlier, so that a crash becomes the case's fail instead of a teardown error.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, Protocol

from smuxref import Cmd, Frame

from ..deadlines import STOP, Deadline
from ..errors import ConnectionNotClosed, HarnessError, WireAssertion
from ..peers.specs import RunningPeer, describe_status
from ..wire import CONTROL, RawConnection

__all__ = [
    "PROBE",
    "REACTION_WAIT",
    "ClientLiveness",
    "Liveness",
    "Observation",
    "Reaction",
    "ServerLiveness",
    "observe",
    "probe_session",
]

#: Seconds (before scaling) to wait for a close before probing.  A close that comes later,
#: while the probe waits, still counts as CLOSED, so this only keeps transcripts tidy.
REACTION_WAIT: Final = 0.5
#: Seconds (before scaling) an ECHO round trip may take before the peer counts as silent.
#: A healthy peer answers in milliseconds; every SILENT verdict costs this much time.
PROBE: Final = 3.0


class Reaction(StrEnum):
    """What a peer observably did after an input; see the module docstring."""

    CLOSED = "closed"
    IGNORED = "ignored"
    SILENT = "silent"
    CRASHED = "crashed"


@dataclass
class Observation:
    """A reaction and the facts it was decided on (for messages and reports)."""

    reaction: Reaction
    details: list[str] = field(default_factory=list)
    #: Frames (NOP/UPD and the probe's own excepted) the peer sent after the input.
    frames: list[Frame] = field(default_factory=list)

    def describe(self) -> str:
        text = f"{self.reaction.value}: " + "; ".join(self.details)
        if self.frames:
            shown = ", ".join(repr(f) for f in self.frames[:8])
            more = f" (+{len(self.frames) - 8} more)" if len(self.frames) > 8 else ""
            text += f"; frames the peer sent meanwhile: {shown}{more}"
        return text


class Liveness(Protocol):
    """The fresh-process probe of one peer: ``(alive, what was seen)``; ``exited`` looks
    at the process only (no connection), for the check after every case."""

    def probe(self, *, session_closed: bool) -> tuple[bool, str]: ...

    def exited(self, *, session_closed: bool) -> str | None: ...


@dataclass
class ServerLiveness:
    """A server peer is alive if its process runs and a fresh connection gets ECHO back.

    ``connect`` opens the fresh connection (``PeerServer.connect``: a new, independent
    session, CONTRACT.md rule 6).  ``process`` is None for a ``tcp:`` peer (the suite did
    not start it): only the connection is probed.  ``on_crash`` lets the plugin forget a
    pooled server that died, so that the next case starts a new one instead of
    inheriting the corpse.
    """

    connect: Callable[[], RawConnection]
    process: RunningPeer | None
    on_crash: Callable[[], None] | None = None

    def probe(self, *, session_closed: bool) -> tuple[bool, str]:
        del session_closed  # a server outlives its sessions (CONTRACT.md rule 6)
        why = self.exited(session_closed=False)
        if why is not None:
            return False, why
        deadline = Deadline(PROBE)
        try:
            conn = self.connect()
        except (HarnessError, OSError) as exc:
            return self._crashed_or(f"no fresh connection: {str(exc).splitlines()[0]}")
        try:
            reaction, detail, _ = probe_session(conn, deadline)
        finally:
            conn.close()
        if reaction is Reaction.IGNORED:
            return True, "a fresh connection got an ECHO round trip"
        return self._crashed_or(f"a fresh connection got no ECHO round trip: {detail}")

    def exited(self, *, session_closed: bool) -> str | None:
        del session_closed
        code = self.process.wait_exit(Deadline(0)) if self.process is not None else None
        if code is None:
            return None
        return self._crashed(f"the server process {describe_status(code)}")

    def _crashed_or(self, why: str) -> tuple[bool, str]:
        """No fresh session: a crash.  Say so by the exit status if the process is
        dying (a dying process resets connections before its exit is reaped)."""
        if self.process is not None:
            code = self.process.wait_exit(Deadline(1.0))
            if code is not None:
                why = f"the server process {describe_status(code)}"
        return False, self._crashed(why)

    def _crashed(self, why: str) -> str:
        if self.on_crash is not None:
            self.on_crash()
        return why


@dataclass
class ClientLiveness:
    """A client peer has one session: the process is what can be probed.

    While the session is open the process must be running.  Once the session is closed
    the client must exit with status 0 (CONTRACT.md rule 8): any other status is a crash;
    a client still running after the wait is left to the rule-8 check at teardown.
    """

    process: RunningPeer
    #: How long to wait for the exit after the session ended (shortened once rule 8 is
    #: known broken for this peer: smuxref_conformance.peers.lifecycle.client_exit_deadline).
    exit_deadline: Callable[[], Deadline] = lambda: Deadline(STOP)

    def _wait(self, session_closed: bool) -> int | None:
        return self.process.wait_exit(self.exit_deadline() if session_closed else Deadline(0))

    def probe(self, *, session_closed: bool) -> tuple[bool, str]:
        code = self._wait(session_closed)
        if code is None:
            return True, "the client process is still running"
        if code == 0 and session_closed:
            return True, "the client process exited with status 0 after its session ended"
        when = "when its session ended" if session_closed else "while its session was open"
        return False, f"the client process {describe_status(code)} {when}"

    def exited(self, *, session_closed: bool) -> str | None:
        # After its session ended it is about to exit: wait to read its status.
        code = self._wait(session_closed)
        if code is None or (code == 0 and session_closed):
            return None
        when = "when its session ended" if session_closed else "while its session was open"
        return f"the client process {describe_status(code)} {when}"


def probe_session(conn: RawConnection, deadline: Deadline) -> tuple[Reaction, str, int]:
    """One ECHO round trip on a new stream of ``conn``: ``(reaction, detail, sid)``.

    IGNORED when the peer answers on the new stream (the echo, or at least a FIN: it
    still processes frames), CLOSED when the connection ends first, SILENT when nothing
    comes back in time or the peer no longer takes our bytes.
    """
    payload = os.urandom(6).hex().encode()
    sid = -1
    try:
        sid = conn.open_stream(b"ECHO\n" + payload)
    except TimeoutError:
        return Reaction.SILENT, "the peer stopped taking bytes (send buffer full)", sid
    except OSError as exc:
        _drain_until_closed(conn)
        if conn.closed is not None:
            return Reaction.CLOSED, f"the connection ended ({conn.closed}) during the probe", sid
        return Reaction.SILENT, f"sending the probe failed: {exc}", sid
    got = b""
    while len(got) < len(payload):
        try:
            frame = conn.expect_frame(
                lambda f: f.sid == sid and f.cmd in (Cmd.PSH, Cmd.FIN),
                deadline,
                what=f"the ECHO of a probe on stream {sid}",
                # A close that comes late is still the reaction (CLOSED, not SILENT).
                patient=True,
            )
        except WireAssertion:
            if conn.closed is not None:
                return (
                    Reaction.CLOSED,
                    f"the connection ended ({conn.closed}) while a probe on stream {sid} "
                    "waited for its ECHO",
                    sid,
                )
            return (
                Reaction.SILENT,
                f"a new stream {sid} got no ECHO answer within {deadline.budget:.3g} s",
                sid,
            )
        if frame.cmd == Cmd.FIN:
            return Reaction.IGNORED, f"the session answered a new stream {sid} with FIN", sid
        got += frame.data
    with contextlib.suppress(OSError):
        conn.send_frame(Frame(conn.version, Cmd.FIN, sid))
    if got != payload:
        return Reaction.IGNORED, f"stream {sid} echoed {got!r} for {payload!r}", sid
    return Reaction.IGNORED, f"the same session still served a new stream {sid} (ECHO)", sid


def _drain_until_closed(conn: RawConnection) -> None:
    """After a failed send: read what is left, to see the close the failure implies."""
    with contextlib.suppress(ConnectionNotClosed, OSError):
        conn.expect_closed(1.0)


def _since_last_send(conn: RawConnection) -> str:
    sends = [e.time for e in conn.transcript if e.direction == "send"]
    return f" {time.monotonic() - sends[-1]:.2g} s after the last bytes sent" if sends else ""


def observe(
    conn: RawConnection,
    *,
    wait: float = REACTION_WAIT,
    probe: float = PROBE,
    liveness: Liveness | None = None,
) -> Observation:
    """Decide the peer's reaction to what was last sent on ``conn`` (see module doc)."""
    first = len(conn.frames)
    details: list[str] = []
    if conn.closed is None and wait > 0:
        with contextlib.suppress(ConnectionNotClosed):
            conn.expect_closed(wait)
    probe_sid = -1
    if conn.closed is not None:
        reaction = Reaction.CLOSED
        details.append(f"the peer closed the connection ({conn.closed}){_since_last_send(conn)}")
    else:
        reaction, detail, probe_sid = probe_session(conn, Deadline(probe))
        details.append(detail)
    frames = [f for f in conn.frames[first:] if f.cmd not in CONTROL and f.sid != probe_sid]
    if liveness is not None:
        alive, what = liveness.probe(session_closed=conn.closed is not None)
        details.append(what)
        if not alive:
            reaction = Reaction.CRASHED
    return Observation(reaction, details, frames)
