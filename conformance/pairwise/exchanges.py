"""What each exchange of a pairwise run must have put on the wire, and who broke it (sans-IO).

The client peer runs exchanges (CONTRACT.md rules 20-22); the relay saw every byte.  For
each exchange the expected bytes of both directions are known: the client sends
``LINE\\n`` and N pattern bytes then FIN, the server answers as its command says.  A
difference is blamed on the side that wrote the bytes; a client whose ``RAN`` line does
not match what the wire carried to it is blamed for what its library delivered.
``RUN`` exchanges do the same one level down, on the stream the server opens.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Final

from smuxref import Cmd

from ..recording.transcript import Direction
from .judge import INITIAL_WINDOW, Finding, WireFrame, side_of

__all__ = [
    "DEFAULT_EXCHANGES",
    "Exchange",
    "StreamData",
    "check_exchanges",
    "expected_reply",
    "pattern",
    "stream_data",
]

#: Both directions, both openers, bulk beyond a 32 KiB frame and the v2 initial window.
DEFAULT_EXCHANGES: Final = (
    "300000:SINK",
    "100000:ECHO",
    "0:SOURCE 300000",
    "0:RUN 100000:SINK",
    "0:RUN 0:SOURCE 70000",
)
_RAN: Final = re.compile(r"RAN (\d+) (\d+) ([0-9a-f]{64})\n")


@dataclass(frozen=True)
class Exchange:
    count: int
    line: str

    @classmethod
    def parse(cls, spec: str) -> Exchange:
        n, _, line = spec.partition(":")
        return cls(int(n), line)

    def request(self) -> bytes:
        return self.line.encode() + b"\n" + pattern(self.count)


def pattern(n: int) -> bytes:
    """The first n bytes of byte[i] = i % 251 (CONTRACT.md rule 12)."""
    period = bytes(range(251))
    return (period * (n // 251 + 1))[:n]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def expected_reply(exchange: Exchange) -> bytes | re.Pattern[bytes] | None:
    """The bytes the remote must write back for this exchange (a pattern for RUN)."""
    word, _, rest = exchange.line.partition(" ")
    if word in ("SINK", "HOLD"):
        return f"{exchange.count} {sha(pattern(exchange.count))}\n".encode()
    if word == "ECHO":
        return pattern(exchange.count)
    if word == "SOURCE":
        return pattern(int(rest))
    if word == "RUN":
        return re.compile(_RAN.pattern.encode())
    return None


@dataclass
class StreamData:
    """One stream as the relay saw it: payload and FIN per direction, and its frames."""

    sid: int
    opener: Direction
    data: dict[Direction, bytearray] = field(
        default_factory=lambda: {"c2s": bytearray(), "s2c": bytearray()}
    )
    fin: dict[Direction, WireFrame | None] = field(
        default_factory=lambda: {"c2s": None, "s2c": None}
    )
    frames: list[WireFrame] = field(default_factory=list)


def stream_data(frames: dict[Direction, list[WireFrame]]) -> dict[int, StreamData]:
    """Reassemble every stream's payload from the frames (first SYN wins the opener)."""
    streams: dict[int, StreamData] = {}
    merged = sorted((wf for fs in frames.values() for wf in fs), key=lambda w: (w.first, w.offset))
    for wf in merged:
        f = wf.frame
        if f.cmd == Cmd.SYN and f.sid not in streams:
            streams[f.sid] = StreamData(f.sid, wf.direction)
        st = streams.get(f.sid)
        if st is None:
            continue
        st.frames.append(wf)
        if f.cmd == Cmd.PSH and st.fin[wf.direction] is None:
            st.data[wf.direction] += f.data
        elif f.cmd == Cmd.FIN and st.fin[wf.direction] is None:
            st.fin[wf.direction] = wf
    return streams


def _first_diff(got: bytes, want: bytes) -> str:
    n = next((i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b), None)
    if n is None:
        return f"{len(got)} bytes where {len(want)} were due"
    return f"byte {n} is {got[n]:#04x}, not {want[n]:#04x} ({len(got)} bytes, {len(want)} due)"


@dataclass
class _Checker:
    streams: dict[int, StreamData]
    version: int
    findings: list[Finding] = field(default_factory=list)
    used: set[int] = field(default_factory=set)

    def blame(self, d: Direction, section: str, message: str, st: StreamData | None) -> None:
        """A finding about what an exchange carried: it shows once the connection is over,
        so it ranks after every frame-level finding (which may well be its cause)."""
        shown = tuple(st.frames[-6:]) if st is not None else ()
        order = (1 << 30) + (st.frames[-1].first if st is not None and st.frames else 0)
        self.findings.append(Finding(side_of(d), section, message, shown, order))

    def window_stall(self, st: StreamData, sender: Direction) -> bool:
        """Version 2: did ``sender`` stop because the receiver's window was used up?"""
        if self.version != 2:
            return False
        consumed, window = 0, INITIAL_WINDOW
        for wf in st.frames:
            if wf.direction != sender and wf.frame.cmd == Cmd.UPD and len(wf.frame.data) == 8:
                upd = wf.frame.upd()
                consumed, window = upd.consumed, upd.window
        return len(st.data[sender]) - consumed >= window

    def find(self, opener: Direction, line: str) -> StreamData | None:
        head = line.encode() + b"\n"
        for sid, st in sorted(self.streams.items()):
            if sid not in self.used and st.opener == opener and st.data[opener].startswith(head):
                self.used.add(sid)
                return st
        return None

    def exchange(self, ex: Exchange, opener: Direction) -> tuple[StreamData | None, bytes | None]:
        """Check one exchange run by ``opener``'s side; return its stream and the reply."""
        other: Direction = "s2c" if opener == "c2s" else "c2s"
        st = self.find(opener, ex.line)
        if st is None:
            self.blame(
                opener, "rule 20", f"exchange {ex.count}:{ex.line}: no stream carried it", None
            )
            return None, None
        sent = bytes(st.data[opener])
        request = ex.request()
        if sent != request and request.startswith(sent) and self.window_stall(st, opener):
            self.blame(
                other,
                "9.2",
                f"stream {st.sid} ({ex.line}): the sender stopped at {len(sent)} of "
                f"{len(request)} bytes, its window used up: the receiver sent no UPD to open it",
                st,
            )
            return st, None
        if sent != request:
            self.blame(
                opener,
                "rule 20",
                f"stream {st.sid} ({ex.line}): sent {_first_diff(sent, ex.request())}",
                st,
            )
        elif st.fin[opener] is None:
            self.blame(
                opener,
                "10.2",
                f"stream {st.sid} ({ex.line}): all data sent but no FIN (half-close)",
                st,
            )
            return st, None
        reply = bytes(st.data[other])
        want = expected_reply(ex)
        if isinstance(want, re.Pattern):
            if not want.fullmatch(reply):
                self.blame(
                    other,
                    "rule 21",
                    f"stream {st.sid} ({ex.line}): reply {reply[:90]!r} is no RAN line",
                    st,
                )
                return st, None
        elif want is not None and reply != want:
            self.blame(
                other,
                "rules 10-13",
                f"stream {st.sid} ({ex.line}): replied {_first_diff(reply, want)}",
                st,
            )
            return st, None
        if st.fin[other] is None:
            self.blame(other, "10.4", f"stream {st.sid} ({ex.line}): reply complete but no FIN", st)
        return st, reply

    def nested(self, ex: Exchange, reply: bytes) -> None:
        """A RUN exchange: the server opened a stream and ran the inner exchange on it."""
        inner = Exchange.parse(ex.line.partition(" ")[2])
        st, inner_reply = self.exchange(inner, "s2c")
        ran = _RAN.fullmatch(reply.decode("ascii", "replace"))
        if st is None or inner_reply is None or ran is None:
            return
        if int(ran[1]) != st.sid or int(ran[2]) != len(inner_reply) or ran[3] != sha(inner_reply):
            self.blame(
                "s2c",
                "rule 21",
                f"RAN line {reply!r} does not describe stream {st.sid}, which carried "
                f"{len(inner_reply)} bytes to the server",
                st,
            )


def check_exchanges(
    frames: dict[Direction, list[WireFrame]],
    specs: list[str],
    client_lines: list[str],
    version: int,
) -> tuple[list[Finding], int]:
    """Findings about the exchanges, and how many completed as they must."""
    checker = _Checker(stream_data(frames), version)
    ok = 0
    results = [ln for ln in client_lines if ln.startswith("RAN ")]
    for i, spec in enumerate(specs):
        ex = Exchange.parse(spec)
        before = len(checker.findings)
        st, reply = checker.exchange(ex, "c2s")
        if st is not None and reply is not None:
            if ex.line.startswith("RUN "):
                checker.nested(ex, reply)
            line = results[i] if i < len(results) else ""
            want = f"RAN {st.sid} {len(reply)} {sha(reply)}"
            if line != want:
                checker.blame(
                    "c2s",
                    "rule 22",
                    f"stream {st.sid}: the client reported {line!r}; the wire carried {want!r}",
                    st,
                )
        if len(checker.findings) == before:
            ok += 1
    return checker.findings, ok
