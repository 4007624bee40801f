"""The Hypothesis state machine behind the property-based conformance cases.

:class:`EchoSessionMachine` drives a server peer over fresh raw connections, one per
example, with random sequences of valid frames - open ``ECHO`` streams (the command
line in one or two PSH frames), PSH of random sizes (empty ones included, up to the
65535-byte maximum), FIN, NOP with any stream id, UPD (version 2), frames for streams
that do not exist, duplicate SYNs - queued and sent in random segments, and ends some
sequences with one invalid input: a wrong version byte, an unknown command, a wrong
length, or a connection cut inside a frame.  Every frame the peer sends is checked
against :class:`~smuxref_conformance.stateful.model.EchoSessionModel` as it arrives; at the end of a
valid sequence the suite half-closes every stream and requires the complete echo and
FIN on each (after a marker whose echo proves everything before it was processed);
after an invalid input the peer must close or go silent (a canary stream opened right
after the bad header must never be answered), and a fresh connection must still be
served.  A peer an example killed is restarted for the next one (:class:`PooledServer`).

With two targets the same machine runs a *differential* example: the same bytes, in
the same segments, go to the reference peer and to the peer under test, and at the end
their observable outcomes (per-stream echo and FIN, the reaction to the invalid input,
the model rules broken) must be equal.

A violation is recorded when it arrives but raised only in ``teardown``, after every
rule of the example ran: when frames arrive depends on timing, and a failure that could
stop an example after step 3 in one run and after step 5 in the next would make
Hypothesis' replay of its choices inconsistent ("flaky strategy").  Likewise, whatever
decides *which* rules run depends only on what the suite sent, never on what came back.

A failure is shrunk by Hypothesis, which prints the minimal program of rule calls; the
exception raised here adds the hex transcript of each connection (every segment sent
and every chunk received) and the exact ``python -m smuxref_conformance.record promote``
command that turns the bytes sent into a codec vector.
"""

from __future__ import annotations

import contextlib
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Literal

from hypothesis import seed
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from smuxref import Cmd, Frame, Upd, encode_raw

from ..deadlines import Deadline
from ..errors import DifferentialMismatch, ModelViolation, SequenceFailure, section_label
from .model import EchoSessionModel, Outcome
from .peer_io import MachineEnv, PooledServer, Side, Target, crashed, wait_sides
from .profiles import Profile

__all__ = [
    "BadInput",
    "DifferentialMismatch",
    "EchoSessionMachine",
    "MachineEnv",
    "PooledServer",
    "SequenceFailure",
    "Target",
    "run_machine",
]

#: ECHO streams open at once in one example: enough to interleave, few enough to shrink.
MAX_STREAMS: Final = 4
#: Data the suite sends on one stream: below the 262144-byte initial window (9.1), so a
#: version 2 peer never has to wait for a UPD from the suite to echo it.
STREAM_CAP: Final = 200_000
#: How long a peer may take to react to an invalid input (seconds, before scaling): a
#: peer that neither closes nor answers the canary within it is "silent".
REACTION_WAIT: Final = 0.5
#: How long (seconds, before scaling) the echo of a few hundred KiB may take to catch up
#: with what was sent: milliseconds for any live peer, but every example of a peer that
#: lost data waits this long, shrinking included.
CATCH_UP: Final = 2.0
ECHO_LINE: Final = b"ECHO\n"
CANARY: Final = b"canary: sent after an invalid header, must never be echoed"
#: Written on every open stream at the end of a valid sequence (see _finish_streams).
#: It ends with a newline so that a peer which lost a stream's state (and reads a new
#: command line from it) answers at once instead of waiting for one.
SYNC: Final = b"<sync>\n"
#: Written with the FIN that ends each stream at the end of a valid sequence.
END: Final = b"<end>"
_WINDOWS: Final = (0, 1, 1000, 65536, 262144, 2**31 - 1)


# -- generated inputs ------------------------------------------------------------------
def _patterned(length: int, salt: int) -> bytes:
    """``length`` bytes that differ per ``salt``: cheap to generate, easy to shrink."""
    period = bytes((salt + 7 * i) & 0xFF for i in range(251))
    return (period * (length // 251 + 1))[:length]


#: Stream payloads: mostly small random bytes (empty included: 6.3), sometimes large
#: patterned ones up to the largest LEN (6.2).
PAYLOADS: Final = st.one_of(
    st.binary(max_size=40),
    st.builds(_patterned, st.integers(41, 4096), st.integers(0, 255)),
    st.builds(_patterned, st.integers(4097, 65535), st.integers(0, 255)),
)
#: Where a flush cuts the queued bytes into segments (positions modulo the length).
CUTS: Final = st.lists(st.integers(1, 1 << 20), max_size=6)
NOP_IDS: Final = st.one_of(st.sampled_from([0, 1, 2, 3, 0xFFFFFFFF]), st.integers(0, 2**32 - 1))


@dataclass(frozen=True)
class BadInput:
    """One invalid input that ends a sequence (rendered bytes depend on the session)."""

    kind: Literal["version", "command", "length", "truncate"]
    version: int = 0  #: VER byte (kind version)
    cmd: int = 0  #: command byte
    length: int = 0  #: LEN field
    keep: int = 0  #: truncate: bytes of the frame sent before the cut
    salt: int = 0  #: payload content

    def __repr__(self) -> str:
        name = Cmd(self.cmd).name if self.cmd <= Cmd.UPD else f"CMD {self.cmd}"
        if self.kind == "version":
            return f"BadInput(VER {self.version} on {name})"
        if self.kind == "command":
            return f"BadInput(unknown command {self.cmd}, LEN {self.length})"
        if self.kind == "length":
            return f"BadInput({name} with LEN {self.length})"
        return f"BadInput(PSH LEN {self.length} cut after {self.sent} of {8 + self.length} bytes)"

    @property
    def sent(self) -> int:
        """truncate: bytes of the frame sent before the cut (always fewer than all)."""
        return min(self.keep, 8 + self.length - 1)


def bad_inputs(version: int) -> st.SearchStrategy[BadInput]:
    """Invalid inputs a receiver must refuse (4.1, 4.2, 4.3) or treat as the end (4.5).

    Built with ``st.builds(BadInput, ...)`` so that a falsifying example prints as a
    readable ``BadInput(...)`` call.
    """
    commands = [Cmd.SYN, Cmd.FIN, Cmd.PSH, Cmd.NOP] + ([Cmd.UPD] if version == 2 else [])
    salts = st.integers(0, 255)
    wrong_version = st.builds(
        BadInput,
        kind=st.just("version"),
        version=st.one_of(
            st.sampled_from([0, 3 - version, 3, 255]),
            st.integers(0, 255).filter(lambda v: v != version),
        ),
        cmd=st.sampled_from(commands),
        salt=salts,
    )
    unknown_command = st.builds(
        BadInput,
        kind=st.just("command"),
        cmd=st.integers(5, 255) if version == 2 else st.integers(4, 255),
        length=st.sampled_from([0, 1, 8, 100]),
        salt=salts,
    )
    lengths = [
        st.builds(
            BadInput,
            kind=st.just("length"),
            cmd=st.sampled_from([Cmd.SYN, Cmd.FIN, Cmd.NOP]),
            length=st.one_of(st.integers(1, 16), st.integers(1, 65535)),
            salt=salts,
        )
    ]
    if version == 2:
        lengths.append(
            st.builds(
                BadInput,
                kind=st.just("length"),
                cmd=st.just(Cmd.UPD),
                length=st.integers(0, 65535).filter(lambda n: n != 8),
                salt=salts,
            )
        )
    truncated = st.builds(
        BadInput,
        kind=st.just("truncate"),
        cmd=st.just(Cmd.PSH),
        length=st.integers(1, 65535),
        keep=st.integers(1, 8 + 65535 - 1),  # clamped to the frame when it is sent
        salt=salts,
    )
    return st.one_of(wrong_version, unknown_command, *lengths, truncated)


# -- the machine -------------------------------------------------------------------------
class EchoSessionMachine(RuleBasedStateMachine):
    """Random frame sequences on ECHO streams, checked against the session model.

    Bound to a :class:`MachineEnv` by :func:`run_machine` (Hypothesis builds machines
    without arguments).  The suite plays the client: its streams are odd, from 3.
    """

    env: ClassVar[MachineEnv]
    streams = Bundle("streams")

    def __init__(self) -> None:
        super().__init__()
        env = self.env
        self.version = env.version
        self.sides = [
            Side(
                t,
                t.connect(),
                EchoSessionModel(env.version, max_frame_size=env.max_frame_size),
            )
            for t in env.targets
        ]
        self.outbox = bytearray()
        self.fins: set[int] = set()  #: streams whose FIN the suite queued
        self._next_sid = 3
        self.open = 0

    # -- helpers ------------------------------------------------------------------------
    @property
    def terminal(self) -> bool:
        return self.sides[0].model.terminal

    def _sid(self) -> int:
        sid, self._next_sid = self._next_sid, self._next_sid + 2
        return sid

    def _frame(self, cmd: Cmd, sid: int, data: bytes = b"") -> bytes:
        return Frame(self.version, cmd, sid, data).encode()

    def _queue_fin(self, sid: int) -> None:
        self.outbox += self._frame(Cmd.FIN, sid)
        self.fins.add(sid)

    def _send(self, cuts: Sequence[int]) -> None:
        """Send the outbox in segments cut at ``cuts`` (the same segments on every side).

        A FIN counts as sent (for the model) from here, not from when a rule queued it:
        a FIN the peer sends before this point cannot be an answer to the suite's.
        """
        data = bytes(self.outbox)
        self.outbox.clear()
        for side in self.sides:
            for sid in self.fins:
                if not side.model.streams[sid].fin_sent:
                    side.model.sent_fin(sid)
        if not data:
            return
        points = sorted({c % len(data) for c in cuts} - {0})
        pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
        for piece in pieces:
            for side in self.sides:
                if side.conn.closed is None:
                    try:
                        side.conn.send_raw(piece)
                    except OSError:
                        side.poll()  # the peer closed or reset: the checks will tell
                side.poll()

    # -- valid rules --------------------------------------------------------------------
    @precondition(lambda self: not self.terminal and self.open < MAX_STREAMS)
    @rule(target=streams, split=st.integers(0, len(ECHO_LINE)))
    def open_echo(self, split: int) -> int:
        """SYN and the ECHO command line, in one PSH or two (split at ``split``)."""
        sid = self._sid()
        parts = (
            [ECHO_LINE[:split], ECHO_LINE[split:]] if 0 < split < len(ECHO_LINE) else [ECHO_LINE]
        )
        self.outbox += self._frame(Cmd.SYN, sid)
        for part in parts:
            self.outbox += self._frame(Cmd.PSH, sid, part)
        for side in self.sides:
            side.model.sent_open(sid, ECHO_LINE)
        self.open += 1
        return sid

    @precondition(lambda self: not self.terminal)
    @rule(sid=streams, data=PAYLOADS)
    def write(self, sid: int, data: bytes) -> None:
        """One PSH (possibly empty, possibly 65535 bytes) on an open stream."""
        room = STREAM_CAP - len(self.sides[0].model.streams[sid].sent)
        data = data[: max(0, room)]
        self.outbox += self._frame(Cmd.PSH, sid, data)
        for side in self.sides:
            side.model.sent_data(sid, data)

    @precondition(lambda self: not self.terminal)
    @rule(sid=streams)
    def empty_psh(self, sid: int) -> None:
        """A PSH with LEN 0 (6.3: ignored, it neither ends nor wakes the stream)."""
        self.outbox += self._frame(Cmd.PSH, sid)

    @precondition(lambda self: not self.terminal)
    @rule(sid=consumes(streams))
    def fin(self, sid: int) -> None:
        """Half-close: the peer must echo everything, then FIN."""
        self._queue_fin(sid)

    @precondition(lambda self: not self.terminal)
    @rule(sid=NOP_IDS)
    def nop(self, sid: int) -> None:
        """NOP with any stream id (5.3: the receiver ignores the id)."""
        self.outbox += self._frame(Cmd.NOP, sid)

    @precondition(lambda self: not self.terminal and self.version == 2)
    @rule(sid=streams, window=st.sampled_from(_WINDOWS))
    def upd(self, sid: int, window: int) -> None:
        """UPD acknowledging the echo read so far, with any window (even 0)."""
        consumed = self.sides[0].model.consumed_by_suite(sid)
        for side in self.sides[1:]:
            consumed = min(consumed, side.model.consumed_by_suite(sid))
        self.outbox += self._frame(Cmd.UPD, sid, Upd(consumed, window).encode())

    @precondition(lambda self: not self.terminal)
    @rule(
        cmd=st.sampled_from([Cmd.PSH, Cmd.FIN, Cmd.UPD]),
        half=st.integers(0, 2**31 - 1),
        data=st.binary(max_size=32),
    )
    def to_unknown_stream(self, cmd: Cmd, half: int, data: bytes) -> None:
        """PSH, FIN or UPD for an even id nobody opened (5.5: read and dropped)."""
        sid = 2 * half  # the server peer's parity: it opens no stream in these sessions
        if cmd == Cmd.UPD:
            if self.version == 1:
                cmd = Cmd.PSH
            else:
                data = Upd(0, 65536).encode()
        if cmd == Cmd.FIN:
            data = b""
        self.outbox += self._frame(cmd, sid, data)
        for side in self.sides:
            side.model.sent_unknown(sid)

    @precondition(lambda self: not self.terminal)
    @rule(sid=streams)
    def duplicate_syn(self, sid: int) -> None:
        """SYN again for an open stream (5.4: ignored, the stream is not reset)."""
        self.outbox += self._frame(Cmd.SYN, sid)

    @precondition(lambda self: not self.terminal)
    @rule(cuts=CUTS)
    def flush(self, cuts: list[int]) -> None:
        """Send what is queued, cut into segments at arbitrary byte positions."""
        self._send(cuts)

    # -- the invalid input ------------------------------------------------------------------
    @precondition(lambda self: not self.terminal)
    @rule(bad=st.data(), cuts=CUTS)
    def invalid(self, bad: st.DataObject, cuts: list[int]) -> None:
        """Queue one invalid input after what is queued, then the canary, and send it."""
        item = bad.draw(bad_inputs(self.version), label="bad")
        existing = [sid for sid in self.sides[0].model.streams if sid not in self.fins]
        target = existing[0] if existing else None
        payload = _patterned(item.length, item.salt)
        poisoned: dict[int, bytes] = {}
        if item.kind == "truncate":
            sid = target if target is not None else self._sid()
            whole = encode_raw(self.version, Cmd.PSH, item.length, sid, payload)
            self.outbox += whole[: item.sent]
            for side in self.sides:
                side.model.sent_truncated(target, payload[: max(0, item.sent - 8)])
            self._send(cuts)
            for side in self.sides:
                if side.conn.closed is None:
                    with contextlib.suppress(OSError):  # already reset by the peer
                        side.conn.sock.shutdown(socket.SHUT_WR)
            return
        if item.kind == "version":
            if item.cmd == Cmd.SYN or (target is None and item.cmd != Cmd.NOP):
                sid = self._sid()
            else:
                sid = 0 if item.cmd == Cmd.NOP else target or 0
            data = {Cmd.PSH: payload[:32] or b"x", Cmd.UPD: Upd(0, 65536).encode()}.get(
                Cmd(item.cmd), b""
            )
            frame = encode_raw(item.version, item.cmd, len(data), sid, data)
            if item.cmd == Cmd.PSH and target is not None:
                poisoned[target] = data
        else:
            sid = self._sid() if item.cmd == Cmd.SYN or target is None else target
            frame = encode_raw(self.version, item.cmd, item.length, sid, payload)
        canary = self._sid()
        self.outbox += frame
        self.outbox += self._frame(Cmd.SYN, canary) + self._frame(
            Cmd.PSH, canary, ECHO_LINE + CANARY
        )
        for side in self.sides:
            side.model.sent_invalid(repr(item), poisoned)
            side.model.sent_canary(canary, ECHO_LINE)
        self._send(cuts)

    @precondition(lambda self: self.terminal)
    @rule()
    def wait(self) -> None:
        """Nothing more is sent after an invalid input; the reaction is judged at the end."""

    # -- checks -------------------------------------------------------------------------
    @invariant()
    def frames_follow_the_model(self) -> None:
        for side in self.sides:
            side.poll()

    def teardown(self) -> None:
        # Hypothesis calls teardown from a ``finally``: when a rule already failed (or
        # the example was abandoned), only close, or this would mask that failure.
        if sys.exc_info()[1] is not None:
            for side in self.sides:
                side.target.suspect()
                side.conn.close()
            return
        for side in self.sides:
            # Whatever happened, a closed connection or a violation may mean a dead peer:
            # the next example checks before it connects.
            if side.conn.closed is not None or side.violations or self.terminal:
                side.target.suspect()
        try:
            if len(self.sides) == 1 and self.sides[0].violations:
                pass  # already decided (a differential run still judges every side)
            elif self.terminal:
                self._judge_reaction()
            else:
                self._finish_streams()
            if len(self.sides) > 1:
                self._compare()
            else:
                side = self.sides[0]
                if side.violations:
                    raise SequenceFailure(side.violations[0], side.report(side.violations[0]))
        finally:
            for side in self.sides:
                side.conn.close()

    def _finish_streams(self) -> None:
        """Open every window, write a marker on every open stream and wait for the echo
        to catch up; then send a last PSH and FIN together on each and wait for the
        complete echo and FIN.

        The marker's echo proves the peer processed everything sent before it, without
        any timing guess: a peer that ended a stream on its own (say, on a zero-length
        PSH) or lost track of it (a duplicate SYN that reset it) has shown it by then,
        before the suite's FIN could excuse it.  The last PSH travels with the FIN, so
        a peer whose FIN overtakes its data, or that answers FIN with FIN before it
        echoed, shows that too.
        """
        models = [side.model for side in self.sides]
        self._send([])
        if self.version == 2:
            for sid in models[0].streams:
                consumed = min(m.consumed_by_suite(sid) for m in models)
                self.outbox += self._frame(Cmd.UPD, sid, Upd(consumed, 2**31 - 1).encode())
            self._send([])

        def caught_up(side: Side) -> bool:
            return side.settled or all(s.received == s.sent for s in side.model.streams.values())

        def complete(side: Side) -> bool:
            return side.settled or all(s.complete for s in side.model.streams.values())

        for sid in models[0].streams:
            if sid not in self.fins:
                self.outbox += self._frame(Cmd.PSH, sid, SYNC)
                for model in models:
                    model.sent_data(sid, SYNC)
        self._send([])
        wait_sides(self.sides, caught_up, Deadline(CATCH_UP))
        for sid in models[0].streams:
            if sid not in self.fins:
                self.outbox += self._frame(Cmd.PSH, sid, END)
                for model in models:
                    model.sent_data(sid, END)
                self._queue_fin(sid)
        self._send([])
        wait_sides(self.sides, complete, Deadline(CATCH_UP), for_fin=True)
        for side in self.sides:
            if side.violations:
                side.target.suspect()
                continue
            if side.conn.closed is not None:
                # A valid sequence never ends a session: did the peer die?
                error = side.target.dead()
                if error is not None:
                    side.fail(crashed(error, "during a sequence of valid frames"))
                    continue
            try:
                side.model.check_complete(side.conn.closed)
            except ModelViolation as violation:
                side.fail(violation)

    def _judge_reaction(self) -> None:
        """After the invalid input: closed or silent, never the canary; still serving."""
        wait_sides(self.sides, lambda side: side.settled, Deadline(REACTION_WAIT))
        for side in self.sides:
            if any(v.section == "4.6" for v in side.violations):
                side.reaction = "ignored"
                continue
            side.reaction = "closed" if side.conn.closed is not None else "silent"
            error = side.target.dead()
            if error is not None:
                side.fail(crashed(error, "after the invalid input"))

    def _compare(self) -> None:
        """Differential: the outcomes of the reference and of the peer must be equal."""
        outcomes: list[Outcome] = [
            side.model.outcome(side.reaction, side.violations) for side in self.sides
        ]
        if all(o == outcomes[0] for o in outcomes[1:]):
            return
        lines = ["The peers reacted differently to the same sequence:"]
        for side, outcome in zip(self.sides, outcomes, strict=True):
            lines.append(f"  {side.target.label}: {outcome.describe()}")
            for violation in side.violations:
                where = section_label(violation.section)
                lines.append(f"    breaks {where}: {violation.actual}")
        for side in self.sides:
            lines.append(side.transcript())
        comment = "differential: " + " vs ".join(
            f"{s.target.label} {o.describe()}" for s, o in zip(self.sides, outcomes, strict=True)
        )
        lines += [
            "Promote the bytes sent to a codec vector:",
            "  " + self.sides[0].promote_command(comment),
        ]
        raise DifferentialMismatch("\n".join(lines))


def run_machine(env: MachineEnv, profile: Profile) -> None:
    """Run the machine under ``profile`` against ``env``; raises the (shrunk) failure.

    The machine class is made per run and named after the protocol version only: that
    name keys the example database, so the stored examples of a version are shared by
    every peer and by the model and differential runs alike (a sequence that broke one
    implementation is replayed against all).
    """
    machine: Any = type(
        f"EchoSessionMachineV{env.version}",
        (EchoSessionMachine,),
        {"env": env, "__module__": __name__},
    )
    if profile.seed is not None:
        machine = seed(profile.seed)(machine)
    run_state_machine_as_test(machine, settings=profile.settings())
