"""A model of one smux session whose streams all run the contract's ``ECHO`` command.

The property-based cases (``conformance/cases/test_hypothesis.py``) throw random frame
sequences at a peer, and need to know, for any sequence, what a conforming peer may
answer.  ``ECHO`` makes that decidable: every byte the suite sends on a stream after
its command line comes back on that stream, in order, and the peer's FIN follows the
suite's FIN and the last echoed byte (CONTRACT.md rule 10).  So the model keeps, per
stream, what was sent and what came back, and checks every frame the peer sends as it
arrives:

* the header is one a sender may write (version byte, command, LEN; SPEC.md 4.1-4.3, 6.1);
* echoed data extends what came back so far with exactly the next bytes sent, so data
  is intact, in order, and on the right stream;
* FIN comes after all the echo, only after the suite's FIN, and no data follows it;
* UPD (version 2) never acknowledges more than was sent (9.2);
* nothing answers a frame for an unknown stream (5.5), and after the suite sent an
  invalid header nothing sent after that header is ever processed (4.6).

The model is pure: it never touches a socket and never waits, so its verdicts depend on
the frames alone.  A :class:`ModelViolation` names the SPEC.md (or CONTRACT.md) sentence that
was broken, what was expected and what arrived - the case's failure text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

from smuxref import Cmd, Frame, Upd

from ..errors import ModelViolation

__all__ = [
    "CONTRACT_ECHO",
    "EchoSessionModel",
    "EchoStream",
    "Outcome",
    "Reaction",
]

MAX_WINDOW: Final = 2**31 - 1
CONTRACT_ECHO: Final = (
    "ECHO: write back every byte read after the command line, until EOF; then close the "
    "stream. (CONTRACT.md rule 10)"
)
_VERSION_RULE: Final = (
    "A sender MUST put its session's configured version in VER of every frame, NOP included."
)
_LENGTH_RULE: Final = "A sender MUST follow these rules."
_UPD_V1_RULE: Final = (
    "A receiver in a version 1 session MUST treat CMD 4 (UPD) as a protocol error."
)
_MAX_FRAME: Final = "A sender MUST NOT send a PSH whose LEN exceeds its own MaxFrameSize."
_PARITY: Final = "A client MUST open streams with odd ids and a server with even ids."
_NO_REUSE: Final = "An opener MUST NOT reuse an id within a session."
_UNKNOWN_ID: Final = "A receiver MUST NOT send anything in response to a frame for an unknown id."
_AFTER_ERROR: Final = (
    "After a protocol error, a receiver MUST NOT process the offending frame or any byte after it."
)
_NO_PSH_AFTER_FIN: Final = "A sender MUST NOT send PSH on a stream after its own FIN."
_FIN_AFTER_DATA: Final = "The FIN MUST come after all data previously written on the stream."
_CONSUMED: Final = (
    "CONSUMED MUST be the total number of bytes consumed on the stream so far, modulo 2^32."
)
_WINDOW: Final = "WINDOW MUST NOT exceed 2147483647"
_TRUNCATED: Final = "A receiver MUST NOT deliver any part of the payload of a truncated frame."

#: How a peer reacted to an invalid header: it closed the connection, stopped reading
#: (went silent), or went on processing what followed (ignored it: never allowed).
Reaction = Literal["closed", "silent", "ignored"]


@dataclass
class EchoStream:
    """One ``ECHO`` stream the suite opened."""

    sid: int
    line: bytes  #: the command line sent (``ECHO\\n``), consumed but not echoed
    sent: bytearray = field(default_factory=bytearray)  #: data sent after the line
    fin_sent: bool = False
    received: bytearray = field(default_factory=bytearray)  #: data echoed back so far
    fin_received: bool = False
    #: Bytes sent in a frame the peer must never process (after an invalid header, or a
    #: truncated frame's payload): echoing them is a violation of the named rule.
    poisoned: bytes = b""
    poison_rule: tuple[str, str] = ("4.6", _AFTER_ERROR)

    @property
    def complete(self) -> bool:
        return self.fin_received and self.received == self.sent


@dataclass(frozen=True)
class Outcome:
    """What a peer observably did with one generated sequence, for differential runs.

    Timing-dependent details are left out on purpose: after an invalid header one peer
    may have echoed more of the earlier data than another before it stopped, and
    "closed" and "silent" are both correct reactions (SPEC.md 4.6: close SHOULD, stop
    reading MUST), so ``reaction`` compares as "refused" versus "ignored".
    """

    streams: tuple[tuple[int, bytes, bool], ...]  #: (sid, echoed bytes, FIN) per stream
    reaction: str  #: "valid" (no invalid header sent), "refused" or "ignored"
    violations: tuple[str, ...]  #: sections of the model rules the peer broke

    def describe(self) -> str:
        parts = [f"reaction {self.reaction}"]
        for sid, data, fin in self.streams:
            parts.append(f"stream {sid}: {len(data)} B{' + FIN' if fin else ''}")
        if self.violations:
            parts.append("violations " + ", ".join(self.violations))
        return "; ".join(parts)


class EchoSessionModel:
    """The expected behaviour of an ECHO peer on one connection.

    ``peer_role`` is the role the *peer* plays (its streams, if it opened any, have that
    role's parity); ``max_frame_size`` the MaxFrameSize the peer was configured with,
    when the suite set it (None: not checked, the peer's default is its own business).
    The suite calls the ``sent_*`` methods as it queues frames and :meth:`observe` for
    every frame the peer sends.
    """

    def __init__(
        self, version: int, *, peer_role: str = "server", max_frame_size: int | None = None
    ) -> None:
        self.version = version
        self.peer_role = peer_role
        self.max_frame_size = max_frame_size
        self.streams: dict[int, EchoStream] = {}
        self.peer_streams: set[int] = set()  #: ids the peer opened (ECHO peers do not)
        self.unknown_ids: set[int] = set()  #: ids the suite sent frames to without SYN
        self.invalid_sent: str | None = None  #: what invalid input ended the sequence
        self.canary: int | None = None  #: the stream opened after the invalid header
        self.truncated = False  #: the suite ended the connection inside a frame

    # -- what the suite sent --------------------------------------------------------
    def sent_open(self, sid: int, line: bytes) -> None:
        self.streams[sid] = EchoStream(sid, line)

    def sent_data(self, sid: int, data: bytes) -> None:
        self.streams[sid].sent += data

    def sent_fin(self, sid: int) -> None:
        self.streams[sid].fin_sent = True

    def sent_unknown(self, sid: int) -> None:
        self.unknown_ids.add(sid)

    def sent_invalid(self, description: str, poisoned: dict[int, bytes] | None = None) -> None:
        """An invalid header went out: from here on nothing may be processed."""
        self.invalid_sent = description
        for sid, data in (poisoned or {}).items():
            self.streams[sid].poisoned += data

    def sent_canary(self, sid: int, line: bytes) -> None:
        self.sent_open(sid, line)
        self.canary = sid

    def sent_truncated(self, sid: int | None, partial: bytes) -> None:
        self.invalid_sent = "a frame cut off by the end of the connection"
        self.truncated = True
        if sid is not None:
            st = self.streams[sid]
            st.poisoned += partial
            st.poison_rule = ("4.5", _TRUNCATED)

    @property
    def terminal(self) -> bool:
        return self.invalid_sent is not None

    def consumed_by_suite(self, sid: int) -> int:
        """What a UPD from the suite may acknowledge: the echo received so far."""
        return len(self.streams[sid].received)

    # -- what the peer sent ---------------------------------------------------------
    def observe(self, frame: Frame) -> None:
        """Check one frame from the peer; raise :class:`ModelViolation` if no conforming
        peer could have sent it at this point."""
        self._check_header(frame)
        cmd = frame.cmd
        if cmd == Cmd.NOP:
            return  # any stream id (5.3: SHOULD be 0, and receivers ignore it)
        if cmd == Cmd.SYN:
            self._peer_syn(frame.sid)
            return
        st = self.streams.get(frame.sid)
        if st is None:
            self._stray(frame)
            return
        if cmd == Cmd.PSH:
            self._echo(st, frame.data)
        elif cmd == Cmd.FIN:
            self._fin(st)
        else:
            self._upd(st, frame)

    def _check_header(self, frame: Frame) -> None:
        name = frame.cmd.name if isinstance(frame.cmd, Cmd) else f"command {frame.cmd}"
        if frame.version != self.version:
            raise ModelViolation(
                "4.1",
                _VERSION_RULE,
                f"VER {self.version} in every frame",
                f"{name} on stream {frame.sid} with VER {frame.version}",
            )
        if frame.cmd > Cmd.UPD or (frame.cmd == Cmd.UPD and self.version == 1):
            raise ModelViolation(
                "4.2",
                _UPD_V1_RULE if frame.cmd == Cmd.UPD else _LENGTH_RULE,
                "commands SYN, FIN, PSH, NOP" + (", UPD" if self.version == 2 else ""),
                f"{name} on stream {frame.sid} in a version {self.version} session",
            )
        fixed = 8 if frame.cmd == Cmd.UPD else None if frame.cmd == Cmd.PSH else 0
        if fixed is not None and len(frame.data) != fixed:
            raise ModelViolation(
                "4.3", _LENGTH_RULE, f"LEN {fixed} on {name}", f"LEN {len(frame.data)}"
            )
        # A zero-length PSH is only a SHOULD NOT for its sender (SPEC.md 6.1): every
        # receiver ignores it (6.3), so it is no violation of the model.
        if (
            frame.cmd == Cmd.PSH
            and self.max_frame_size is not None
            and len(frame.data) > self.max_frame_size
        ):
            raise ModelViolation(
                "6.1",
                _MAX_FRAME,
                f"PSH LEN at most {self.max_frame_size} (the peer's --max-frame-size)",
                f"PSH LEN {len(frame.data)} on stream {frame.sid}",
            )

    def _peer_syn(self, sid: int) -> None:
        parity = 0 if self.peer_role == "server" else 1
        # Ids 0 and 1 are only a SHOULD NOT (SPEC.md 5.1; Go accepts any SYN id, 5.4).
        if sid % 2 != parity:
            raise ModelViolation(
                "5.1",
                _PARITY,
                f"a {self.peer_role} opens {'even' if parity == 0 else 'odd'} ids from "
                f"{2 if parity == 0 else 3}",
                f"the peer sent SYN for stream {sid}",
            )
        if sid in self.peer_streams or sid in self.streams:
            raise ModelViolation("5.1", _NO_REUSE, "a new stream id", f"SYN for stream {sid} again")
        self.peer_streams.add(sid)

    def _stray(self, frame: Frame) -> None:
        name = frame.cmd.name if isinstance(frame.cmd, Cmd) else str(frame.cmd)
        if frame.sid in self.peer_streams:
            return  # a stream the peer opened itself: not the model's business
        if frame.sid in self.unknown_ids:
            raise ModelViolation(
                "5.5",
                _UNKNOWN_ID,
                f"no answer to the frames sent to the unknown stream {frame.sid}",
                f"{name} on stream {frame.sid}" + self._whose(frame.data),
            )
        raise ModelViolation(
            "2.1",
            CONTRACT_ECHO,
            "frames only on the streams the suite opened: "
            + (", ".join(map(str, self.streams)) or "none"),
            f"{name} on stream {frame.sid}, which nobody opened" + self._whose(frame.data),
        )

    def _whose(self, data: bytes) -> str:
        """A hint: which stream's data this is, if it is some stream's."""
        if len(data) < 2:
            return ""
        owners = [st.sid for st in self.streams.values() if data in st.sent]
        return f" (its data was sent on stream {owners[0]})" if owners else ""

    def _echo(self, st: EchoStream, data: bytes) -> None:
        where = f"stream {st.sid}"
        if st.fin_received:
            raise ModelViolation(
                "10.3", _NO_PSH_AFTER_FIN, f"nothing on {where} after its FIN", f"PSH {data!r:.60}"
            )
        if st.sid == self.canary:
            raise ModelViolation(
                "4.6",
                _AFTER_ERROR,
                f"the stream opened after the invalid header ({self.invalid_sent}) never "
                "gets an answer: the peer closes or stops reading",
                f"the peer echoed {data!r:.60} on it (the header was ignored)",
            )
        done = len(st.received)
        want = bytes(st.sent[done : done + len(data)])
        if data == want:
            st.received += data
            return
        extra = bytes(data[len(want) :] if data.startswith(want) else data)
        if st.poisoned and extra[:16] in st.poisoned:
            section, rule = st.poison_rule
            raise ModelViolation(
                section,
                rule,
                f"{where} echoes only the {len(st.sent)} bytes sent before {self.invalid_sent}",
                f"it echoed bytes of the later frame: {data!r:.60}",
            )
        raise ModelViolation(
            "2.1",
            CONTRACT_ECHO,
            f"{where} echoes bytes {done}..{done + len(data)} of what was sent on it: "
            f"{want!r:.60}" + ("" if len(want) == len(data) else f" (only {len(want)} sent)"),
            f"{data!r:.60}" + self._whose(data),
        )

    def _fin(self, st: EchoStream) -> None:
        if st.fin_received:
            return  # a second FIN: SHOULD NOT (10.4), not the model's concern
        st.fin_received = True
        if self.terminal:
            return  # after an invalid header a peer may end its streams early
        if not st.fin_sent:
            raise ModelViolation(
                "10.2",
                CONTRACT_ECHO,
                f"stream {st.sid} ends only after the suite's FIN",
                f"FIN on stream {st.sid} after {len(st.received)} of {len(st.sent)} "
                "bytes, before the suite sent FIN",
            )
        if st.received != st.sent:
            raise ModelViolation(
                "10.4",
                _FIN_AFTER_DATA,
                f"all {len(st.sent)} bytes echoed on stream {st.sid}, then FIN",
                f"FIN after {len(st.received)} bytes",
            )

    def _upd(self, st: EchoStream, frame: Frame) -> None:
        upd = Upd.decode(frame.data)
        total = len(st.line) + len(st.sent)
        if upd.consumed > total:  # the suite sends far less than 2**32 bytes
            raise ModelViolation(
                "9.2",
                _CONSUMED,
                f"CONSUMED at most {total}, the bytes sent on stream {st.sid} so far "
                "(command line included)",
                f"UPD consumed={upd.consumed} window={upd.window}",
            )
        if upd.window > MAX_WINDOW:
            raise ModelViolation("4.4", _WINDOW, "WINDOW <= 2147483647", f"UPD window={upd.window}")

    # -- the end of a sequence ------------------------------------------------------
    def check_complete(self, closed: str | None) -> None:
        """After the suite's FINs: every stream echoed everything and ended with FIN."""
        missing = [st for st in self.streams.values() if not st.complete]
        if not missing:
            return
        actual = "; ".join(
            f"stream {st.sid}: {len(st.received)} of {len(st.sent)} bytes, "
            f"{'FIN' if st.fin_received else 'no FIN'}"
            for st in missing
        )
        if closed:
            actual += f"; the peer closed the connection ({closed})"
        raise ModelViolation(
            "10.2",
            "A receiver of FIN MUST deliver all data that arrived before the FIN, and then "
            "signal end of stream to its application.",
            "every ECHO stream echoes all its data and then FIN, after the suite's FIN",
            actual,
        )

    def outcome(self, reaction: Reaction | None, violations: list[ModelViolation]) -> Outcome:
        refused = "refused" if reaction in ("closed", "silent") else "ignored"
        return Outcome(
            streams=tuple(
                (st.sid, bytes(st.received), st.fin_received)
                for st in self.streams.values()
                if not self.terminal
            ),
            reaction="valid" if not self.terminal else refused,
            violations=tuple(sorted({v.section for v in violations})),
        )
