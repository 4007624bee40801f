"""Judge a relayed connection between two implementations, frame by frame (sans-IO).

The relay reads both directions in one global order, so a frame the relay read before
another frame was forwarded cannot have been caused by it.  That order is what lets a
finding name the side at fault: a PSH beyond the window is judged against the most
generous window the sender could have known, from the initial window and the UPDs the
relay had forwarded before the PSH's first byte arrived (when the sender saw each one
cannot be told, so a later, smaller window never counts against it); a frame on a
stream counts only a SYN forwarded before it.

Checks (each a SPEC.md section): the version byte (4.1), the command (4.2), LEN per
command (4.3, 4.4), a frame cut off by the end of the connection (4.5), stream ids of
SYN (5.1: parity, id 0, an id still open), frames on a stream never opened (10.1), data
after the sender's own FIN (10.3), and in version 2 the send window (9.3) and UPDs
acknowledging more than was received (9.4).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field, replace
from typing import Final, Literal

from smuxref import Cmd, Frame, FrameDecoder

from ..recording.transcript import DIRECTIONS, Direction, Transcript

__all__ = [
    "INITIAL_WINDOW",
    "Finding",
    "Side",
    "WireFrame",
    "describe",
    "judge_frames",
    "side_of",
    "wire_frames",
]

Side = Literal["client", "server"]
INITIAL_WINDOW: Final = 262144  #: SPEC.md 9.1
_FIXED_LEN: Final = {Cmd.SYN: 0, Cmd.FIN: 0, Cmd.NOP: 0, Cmd.UPD: 8}


@dataclass(frozen=True, slots=True)
class WireFrame:
    """A frame as the relay read it: direction, where it started and ended in the order."""

    direction: Direction
    offset: int  #: byte offset in its direction
    first: int  #: global index of the read holding its first byte
    last: int  #: global index of the read that completed it
    t: float  #: time the read that completed it happened
    frame: Frame


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule broken by one side, with the frames that show it."""

    side: Side
    section: str  #: SPEC.md section (or CONTRACT.md rule, "rule 20")
    message: str
    frames: tuple[WireFrame, ...] = ()
    order: int = 0  #: global index where it became visible, for "which came first"
    repeats: int = 0  #: later frames that broke the same rule the same way (not listed)


def side_of(direction: Direction) -> Side:
    """The sender of a direction."""
    return "client" if direction == "c2s" else "server"


def describe(wf: WireFrame) -> str:
    """One line per frame, in the manner of ``python -m smuxref.dissect``."""
    f = wf.frame
    arrow = "c>s" if wf.direction == "c2s" else "s>c"
    try:
        name = Cmd(f.cmd).name
    except ValueError:
        name = f"cmd={f.cmd}"
    extra = ""
    if f.cmd == Cmd.UPD and len(f.data) == 8:
        upd = f.upd()
        extra = f" consumed={upd.consumed} window={upd.window}"
    elif f.data:
        extra = f" {f.data[:16]!r}" + ("..." if len(f.data) > 16 else "")
    head = f"{wf.t:9.6f} #{wf.first:<4} {arrow} v{f.version} {name:6} {f.sid:<6}"
    return f"{head} {len(f.data):6}{extra}"


def wire_frames(
    transcript: Transcript,
) -> tuple[dict[Direction, list[WireFrame]], dict[Direction, int]]:
    """Every frame of each direction, decoded leniently; and the bytes left over at the end."""
    out: dict[Direction, list[WireFrame]] = {}
    leftover: dict[Direction, int] = {}
    for d in DIRECTIONS:
        chunks = transcript.chunks[d]
        starts: list[int] = []
        total = 0
        for chunk in chunks:
            starts.append(total)
            total += len(chunk.data)
        decoder = FrameDecoder(None, strict=False)
        frames: list[WireFrame] = []
        offset = 0
        for chunk in chunks:
            for frame in decoder.feed(chunk.data):
                first = chunks[bisect.bisect_right(starts, offset) - 1].index
                frames.append(WireFrame(d, offset, first, chunk.index, chunk.t, frame))
                offset += 8 + len(frame.data)
        out[d] = frames
        leftover[d] = decoder.buffered
    return out, leftover


@dataclass
class _Stream:
    opener: Direction
    syn_last: int
    fin: set[Direction] = field(default_factory=set)
    sent: dict[Direction, int] = field(default_factory=lambda: {"c2s": 0, "s2c": 0})
    #: per sending direction: (consumed, window) of the receiver's last UPD forwarded
    #: per sending direction: the most the sender may have sent, whichever of the UPDs
    #: forwarded so far it had seen (the relay cannot tell when it saw one): the largest
    #: consumed + window among them and the initial window
    send_limit: dict[Direction, int] = field(
        default_factory=lambda: {"c2s": INITIAL_WINDOW, "s2c": INITIAL_WINDOW}
    )
    window_reported: set[Direction] = field(default_factory=set)


class _Judge:
    def __init__(self, version: int) -> None:
        self.version = version
        self.streams: dict[int, _Stream] = {}
        self.findings: list[Finding] = []
        self.seen: dict[tuple[str, str, str], int] = {}
        self.pending_upd: list[WireFrame] = []  # UPDs not yet forwarded at this point

    def add(self, wf: WireFrame, section: str, message: str, *more: WireFrame) -> None:
        side = side_of(wf.direction)
        key = (side, section, " ".join(message.split()[:2]))
        index = self.seen.get(key)
        if index is not None:  # one finding per rule and kind; the rest are counted
            old = self.findings[index]
            self.findings[index] = replace(old, repeats=old.repeats + 1)
            return
        self.seen[key] = len(self.findings)
        self.findings.append(Finding(side, section, message, (*more, wf), wf.first))

    def frame(self, wf: WireFrame) -> None:
        self._apply_updates(wf.first)
        f = wf.frame
        if f.version != self.version:
            self.add(wf, "4.1", f"version byte {f.version} in a version {self.version} session")
        if f.cmd not in Cmd.__members__.values() or (f.cmd == Cmd.UPD and self.version == 1):
            self.add(wf, "4.2", f"command {f.cmd} does not exist in version {self.version}")
            return
        cmd = Cmd(f.cmd)
        fixed = _FIXED_LEN.get(cmd)
        if fixed is not None and len(f.data) != fixed:
            section = "4.4" if cmd == Cmd.UPD else "4.3"
            self.add(wf, section, f"{cmd.name} with LEN {len(f.data)}; it must be {fixed}")
        if cmd == Cmd.NOP:
            return
        if cmd == Cmd.SYN:
            self._syn(wf)
            return
        stream = self.streams.get(f.sid)
        if stream is None or (stream.opener != wf.direction and stream.syn_last >= wf.first):
            self.add(wf, "10.1", f"{cmd.name} on stream {f.sid}, which no SYN had opened")
            return
        if cmd == Cmd.UPD:
            self._upd(wf, stream)
        elif cmd == Cmd.PSH:
            self._psh(wf, stream)
        elif wf.direction in stream.fin:
            self.add(wf, "10.2", f"a second FIN on stream {f.sid}")
        else:
            stream.fin.add(wf.direction)

    def _syn(self, wf: WireFrame) -> None:
        sid = wf.frame.sid
        odd = wf.direction == "c2s"
        if sid == 0 or (sid % 2 == 1) != odd:
            want = "odd" if odd else "even"
            self.add(
                wf, "5.1", f"SYN for stream {sid}: the {side_of(wf.direction)} opens {want} ids"
            )
        elif sid in self.streams:
            self.add(wf, "5.1", f"SYN for stream {sid}, which is already open: an id reused")
            return
        # No order is required on the wire: concurrent opens may put a later id's SYN
        # first (5.1 is about allocation), so ids are not checked to grow.
        self.streams.setdefault(sid, _Stream(wf.direction, wf.last))

    def _psh(self, wf: WireFrame, stream: _Stream) -> None:
        d = wf.direction
        if d in stream.fin:
            self.add(wf, "10.3", f"PSH on stream {wf.frame.sid} after its sender's FIN")
        stream.sent[d] += len(wf.frame.data)
        if self.version != 2 or d in stream.window_reported:
            return
        limit = stream.send_limit[d]
        if stream.sent[d] > limit:
            stream.window_reported.add(d)
            self.add(
                wf,
                "9.3",
                f"{stream.sent[d]} bytes sent on stream {wf.frame.sid}, more than any window "
                f"announced so far allows (at best consumed + window = {limit})",
            )

    def _upd(self, wf: WireFrame, stream: _Stream) -> None:
        upd = wf.frame.upd()
        data_dir: Direction = "s2c" if wf.direction == "c2s" else "c2s"
        if upd.consumed > stream.sent[data_dir]:
            self.add(
                wf,
                "9.4",
                f"UPD on stream {wf.frame.sid} acknowledges {upd.consumed} bytes; only "
                f"{stream.sent[data_dir]} had been sent to it",
            )
        self.pending_upd.append(wf)

    def _apply_updates(self, before: int) -> None:
        """UPDs the relay had forwarded before read ``before`` now bind their senders."""
        keep = []
        for wf in self.pending_upd:
            if wf.last < before:
                stream = self.streams.get(wf.frame.sid)
                if stream is not None:
                    upd = wf.frame.upd()
                    data_dir: Direction = "s2c" if wf.direction == "c2s" else "c2s"
                    bound = upd.consumed + upd.window
                    stream.send_limit[data_dir] = max(stream.send_limit[data_dir], bound)
            else:
                keep.append(wf)
        self.pending_upd = keep


def judge_frames(
    transcript: Transcript, version: int
) -> tuple[list[Finding], dict[Direction, list[WireFrame]]]:
    """The protocol findings of a relayed connection, in wire order, and its frames."""
    frames, leftover = wire_frames(transcript)
    judge = _Judge(version)
    merged = sorted(
        (wf for d in DIRECTIONS for wf in frames[d]), key=lambda wf: (wf.first, wf.offset)
    )
    for wf in merged:
        judge.frame(wf)
    for d in DIRECTIONS:
        if leftover[d]:
            last = frames[d][-1:] or []
            end = transcript.ends.get(d)
            order = transcript.chunks[d][-1].index if transcript.chunks[d] else 0
            judge.findings.append(
                Finding(
                    side_of(d),
                    "4.5",
                    f"the connection ended ({end.kind if end else 'open'}) {leftover[d]} bytes "
                    "into a frame",
                    tuple(last),
                    order,
                )
            )
    judge.findings.sort(key=lambda f: f.order)
    return judge.findings, frames
