"""Targets, connections, transcripts and failure reports of the stateful machine.

The parts of :mod:`smuxref_conformance.stateful.machine` that are not Hypothesis rules: the server
peers an example dials (:class:`Target`, :class:`PooledServer` which restarts a peer an
example killed), the per-run environment (:class:`MachineEnv`), the failures raised at
the end of an example (:class:`SequenceFailure`, :class:`DifferentialMismatch`), and
one connection of an example checked against
:class:`~smuxref_conformance.stateful.model.EchoSessionModel` (:class:`Side`), with the hex
transcript and the ``python -m smuxref_conformance.record promote`` command a failure report
carries.
"""

from __future__ import annotations

import hashlib
import select
import shlex
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

from ..deadlines import EXPECT, STOP, Deadline, scaled
from ..errors import ModelViolation
from ..peers.lifecycle import ServerHandle
from ..peers.pool import PeerPool
from ..peers.readiness import echo_probe
from ..peers.specs import PeerSpec, describe_status
from ..wire import FIN_GIVE_UP, RawConnection
from .model import EchoSessionModel, Reaction

__all__ = [
    "MachineEnv",
    "PooledServer",
    "Side",
    "Target",
    "crashed",
    "wait_sides",
]

_SHOW_BYTES: Final = 128
_INLINE_HEX: Final = 4096


class Target(Protocol):
    """A server peer the machine dials: one new connection per example."""

    label: str

    @property
    def address(self) -> tuple[str, int]: ...

    def connect(self) -> RawConnection:
        """A new raw connection (a new session on the peer)."""

    def dead(self) -> str | None:
        """None if the peer still serves new connections, else what is wrong with it."""

    def suspect(self) -> None:
        """The last example may have killed the peer: check before the next connect."""


@dataclass
class PooledServer:
    """A pooled server peer that is restarted when an example killed it.

    A crash is charged to the example that caused it (its teardown finds the peer dead
    and fails with that); the next example gets a fresh peer instead of a refused
    connection, so Hypothesis can shrink the crashing sequence like any other failure.
    """

    label: str
    pool: PeerPool
    spec: PeerSpec
    version: int
    options: dict[str, Any]
    handle: ServerHandle
    restarts: int = 0
    _suspect: bool = False

    @property
    def address(self) -> tuple[str, int]:
        return self.handle.address

    def connect(self) -> RawConnection:
        if self._suspect:
            self._suspect = False
            if self._exited() is not None:
                self._restart()
        try:
            return self.handle.connect()
        except OSError:
            # Refused: the peer is probably dying right now (a crash takes a moment).
            peer = self.handle.peer
            if peer is None or peer.wait_exit(Deadline(STOP)) is None:
                raise
        self._restart()
        return self.handle.connect()

    def _restart(self) -> None:
        self.pool.discard(self.handle)
        self.handle = self.pool.server(self.spec, self.version, self.options)
        self.restarts += 1

    def suspect(self) -> None:
        self._suspect = True

    def _exited(self) -> int | None:
        peer = self.handle.peer
        return None if peer is None else peer.wait_exit(Deadline(0))

    def dead(self) -> str | None:
        self._suspect = True
        code = self._exited()
        if code is not None:
            return f"the server process {describe_status(code)}"
        error = echo_probe(self.address, self.version, peer=self.label, deadline=Deadline(EXPECT))
        if error is None:
            return None
        peer = self.handle.peer
        code = None if peer is None else peer.wait_exit(Deadline(1.0))  # dying, maybe
        if code is not None:
            return f"the server process {describe_status(code)}"
        return f"a fresh connection got no ECHO round trip: {error}"


@dataclass(frozen=True)
class MachineEnv:
    """Everything one test run of the machine needs; bound to the machine class."""

    version: int
    targets: tuple[Target, ...]  #: one (model check) or two (reference first: differential)
    max_frame_size: int | None = None  #: the peers' --max-frame-size, checked on PSH


# -- one connection ---------------------------------------------------------------------
@dataclass
class Side:
    """One connection of an example and the model of the session on it."""

    target: Target
    conn: RawConnection
    model: EchoSessionModel
    violations: list[ModelViolation] = field(default_factory=list)
    seen: int = 0  #: frames of ``conn.frames`` already given to the model
    reaction: Reaction | None = None

    def absorb(self) -> None:
        """Give the model every frame received and not yet checked."""
        frames = self.conn.frames
        while self.seen < len(frames) and not self.violations:
            frame = frames[self.seen]
            self.seen += 1
            try:
                self.model.observe(frame)
            except ModelViolation as violation:
                self.fail(violation)

    def fail(self, violation: ModelViolation) -> None:
        """Record a violation; it is raised at the end of the example (see teardown)."""
        self.violations.append(violation)

    def poll(self, timeout: float = 0.0) -> None:
        """Read what has arrived (waiting up to ``timeout`` seconds, already scaled)."""
        if self.conn.closed is None:
            self.conn._read(timeout)
        self.absorb()

    @property
    def settled(self) -> bool:
        return self.conn.closed is not None or bool(self.violations)

    # -- reporting ----------------------------------------------------------------------
    def sent_bytes(self) -> bytes:
        return b"".join(e.data for e in self.conn.transcript if e.direction == "send")

    def transcript(self) -> str:
        lines = [f"transcript of the connection to {self.target.label} (> sent, < received):"]
        start = self.conn.transcript[0].time if self.conn.transcript else 0.0
        for entry in self.conn.transcript:
            arrow = {"send": ">", "recv": "<"}.get(entry.direction, "x")
            data = entry.data[:_SHOW_BYTES].hex(" ")
            more = f" ... ({len(entry.data)} bytes)" if len(entry.data) > _SHOW_BYTES else ""
            body = data + more if entry.data else entry.direction.upper()
            lines.append(f"  {entry.time - start:+9.4f} {arrow} {body}")
        return "\n".join(lines)

    def promote_command(self, comment: str) -> str:
        """The command that records the bytes sent as a codec vector (conformance/record.py)."""
        wire = self.sent_bytes()
        hex_text = wire.hex()
        if len(hex_text) <= _INLINE_HEX:
            hex_arg = hex_text
        else:  # too long for a readable message: keep it in a file, name the file
            digest = hashlib.sha256(wire).hexdigest()[:16]
            path = Path(tempfile.gettempdir()) / f"smux-sequence-{digest}.hex"
            path.write_text(hex_text + "\n")
            hex_arg = f'"$(cat {shlex.quote(str(path))})"'
        return (
            f"python -m smuxref_conformance.record promote --version {self.model.version} "
            f"--role server --hex {hex_arg} --comment {shlex.quote(comment)}"
        )

    def report(self, violation: ModelViolation) -> str:
        """Who broke the model, the transcript and the promote command (the violation
        itself is the failure's first lines)."""
        first = violation.text().splitlines()[0]
        comment = f"stateful ECHO sequence, {self.target.label}: {first}"
        return "\n".join(
            [
                f"Peer: {self.target.label} (server role, protocol version {self.model.version})",
                self.transcript(),
                "Promote the bytes sent to a codec vector:",
                "  " + self.promote_command(comment),
            ]
        )


def crashed(error: str, when: str) -> ModelViolation:
    return ModelViolation(
        "CONTRACT.md rule 6",
        "The server runs an independent smux server session on every TCP connection it "
        "accepts, and serves until it receives SIGTERM",
        f"{when}, the peer still serves new connections",
        f"it does not: {error.splitlines()[0]}",
    )


def wait_sides(
    sides: Sequence[Side],
    done: Callable[[Side], bool],
    deadline: Deadline,
    *,
    for_fin: bool = False,
) -> None:
    """Read from every open connection until ``done`` holds for every side or the deadline.

    ``for_fin``: a wait for the peers' FINs, which also ends once every side is done or
    shows the no-FIN rule (RawConnection.no_fin_decided: it wrote on streams the suite
    finished, sent no FIN on any, and has been quiet for FIN_GIVE_UP, scaled).  The
    model's completeness check then fails that side on the missing FIN, as it would at
    the deadline: the wait changes nothing but the time, for every example shrinking
    runs too.
    """
    quiet = max(scaled(FIN_GIVE_UP), FIN_GIVE_UP)

    def finished(side: Side) -> bool:
        return done(side) or (for_fin and side.conn.no_fin_decided() is not None)

    while not all(finished(s) for s in sides) and not deadline.expired:
        open_sides = [s for s in sides if s.conn.closed is None]
        if not open_sides:
            break
        wait = min(deadline.remaining(), quiet / 2) if for_fin else deadline.remaining()
        ready, _, _ = select.select([s.conn.sock for s in open_sides], [], [], wait)
        for side in open_sides:
            if side.conn.sock in ready:
                side.poll()
    for side in sides:
        side.poll()
