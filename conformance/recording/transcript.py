"""A recorded smux connection: the bytes of each direction as they were read, with times.

A :class:`Transcript` is what the recording relay saw: every read of each direction,
in one global order (``index``), with its time since the connection was accepted, and
how each direction ended.  It is stored as JSON (the session vector files) together
with the frames decoded from each direction, and as a pcap (:mod:`.pcap`).

Segmentation and timing differ from one recording to the next; the frames mostly do
not.  :func:`canonical` reduces a direction to what must stay the same: per stream, its
SYN, its data (PSH payloads joined, since where a sender splits them depends on timing
and window updates) and its FIN, without the NOP and UPD frames whose number and
position follow the clock.  :func:`settled_frames` also leaves out what a peer sent
after the driving side had closed the connection: a Go stream's FIN racing the end of
the session (the loadgen client closes its session right after its last FIN) arrives
in one recording and not in the next.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from smuxref import Cmd, Frame, FrameDecoder, Upd
from smuxref.errors import ProtocolError

__all__ = [
    "DIRECTIONS",
    "Chunk",
    "DecodedFrame",
    "Direction",
    "Transcript",
    "canonical",
    "compare_frames",
    "decode_direction",
    "dumps_session",
    "finished_streams",
    "frame_json",
    "settled_frames",
]

Direction = Literal["c2s", "s2c"]
DIRECTIONS: Final[tuple[Direction, Direction]] = ("c2s", "s2c")
#: Bytes of each frame's payload kept in the JSON as a preview.
PREVIEW: Final = 16


@dataclass(frozen=True, slots=True)
class Chunk:
    """One read of one direction: the relay forwarded ``data`` at ``t``."""

    index: int
    t: float
    data: bytes


@dataclass(slots=True)
class End:
    """How a direction ended: ``fin`` (EOF read) or ``rst`` (the read failed)."""

    t: float
    kind: Literal["fin", "rst"] = "fin"


@dataclass(slots=True)
class Transcript:
    """Both directions of one connection as the relay saw them."""

    chunks: dict[Direction, list[Chunk]] = field(default_factory=lambda: {"c2s": [], "s2c": []})
    ends: dict[Direction, End] = field(default_factory=dict)
    _next_index: int = 0

    def add(self, direction: Direction, t: float, data: bytes) -> None:
        self.chunks[direction].append(Chunk(self._next_index, t, data))
        self._next_index += 1

    def end(self, direction: Direction, t: float, kind: Literal["fin", "rst"] = "fin") -> None:
        self.ends.setdefault(direction, End(t, kind))

    def data(self, direction: Direction) -> bytes:
        return b"".join(chunk.data for chunk in self.chunks[direction])

    def to_json(self) -> dict[str, Any]:
        return {
            d: {
                "chunks": [
                    {"i": c.index, "t": round(c.t, 6), "hex": c.data.hex()} for c in self.chunks[d]
                ],
                "end": (
                    {"t": round(self.ends[d].t, 6), "kind": self.ends[d].kind}
                    if d in self.ends
                    else None
                ),
            }
            for d in DIRECTIONS
        }

    @classmethod
    def from_json(cls, directions: dict[str, Any]) -> Transcript:
        """Rebuild from the ``directions`` object of a session file."""
        out = cls()
        top = -1
        for d in DIRECTIONS:
            side = directions[d]
            for c in side["chunks"]:
                out.chunks[d].append(Chunk(c["i"], c["t"], bytes.fromhex(c["hex"])))
                top = max(top, c["i"])
            if side["end"] is not None:
                out.ends[d] = End(side["end"]["t"], side["end"]["kind"])
        out._next_index = top + 1
        return out


@dataclass(frozen=True, slots=True)
class DecodedFrame:
    """A frame of a direction, where it starts in the byte stream and when it was whole."""

    offset: int
    t: float
    frame: Frame


def decode_direction(
    chunks: list[Chunk], version: int
) -> tuple[list[DecodedFrame], ProtocolError | None]:
    """Decode a direction chunk by chunk with smuxref's strict decoder.

    Each frame gets the time of the chunk that completed it.  A protocol error ends the
    decoding; it is returned with the frames before it.  A cut-off last frame is a
    :class:`~smuxref.errors.TruncatedFrameError` (SPEC.md 4.5).
    """
    decoder = FrameDecoder(version)
    out: list[DecodedFrame] = []
    offset = 0
    for chunk in chunks:
        try:
            frames = decoder.feed(chunk.data)
        except ProtocolError as exc:
            _place(out, getattr(exc, "frames", []), chunk.t, offset)
            return out, exc
        offset = _place(out, frames, chunk.t, offset)
    try:
        decoder.close()
    except ProtocolError as exc:
        return out, exc
    return out, None


def _place(out: list[DecodedFrame], frames: list[Frame], t: float, offset: int) -> int:
    for frame in frames:
        out.append(DecodedFrame(offset, t, frame))
        offset += 8 + len(frame.data)
    return offset


def frame_json(decoded: DecodedFrame) -> dict[str, Any]:
    """The JSON of one decoded frame in a session file."""
    f = decoded.frame
    cmd = Cmd(f.cmd)
    out: dict[str, Any] = {
        "offset": decoded.offset,
        "t": round(decoded.t, 6),
        "version": f.version,
        "cmd": cmd.name,
        "sid": f.sid,
        "length": len(f.data),
    }
    if cmd == Cmd.UPD:
        upd = Upd.decode(f.data)
        out["upd"] = {"consumed": upd.consumed, "window": upd.window}
    elif f.data:
        out["preview"] = f.data[:PREVIEW].hex()
    return out


def settled_frames(transcript: Transcript, direction: Direction, version: int) -> list[Frame]:
    """The frames of ``direction`` that arrived before the other direction ended."""
    other: Direction = "s2c" if direction == "c2s" else "c2s"
    frames, _ = decode_direction(transcript.chunks[direction], version)
    end = transcript.ends.get(other)
    cutoff = float("inf") if end is None else end.t
    return [f.frame for f in frames if f.t <= cutoff]


def canonical(frames: list[Frame]) -> dict[int, list[tuple[str, str]]]:
    """Per stream id: SYN, data (joined PSH payloads, as a SHA-256) and FIN, in order.

    NOP and UPD frames are left out, and so is a zero-length PSH; what remains does not
    depend on timing for a scenario that is deterministic (the module docstring).
    """
    out: dict[int, list[tuple[str, str]]] = {}
    pending: dict[int, bytearray] = {}

    def flush(sid: int) -> None:
        data = pending.pop(sid, None)
        if data is not None:
            out.setdefault(sid, []).append(("DATA", hashlib.sha256(data).hexdigest()))

    for f in frames:
        if f.cmd == Cmd.PSH and f.data:
            pending.setdefault(f.sid, bytearray()).extend(f.data)
        elif f.cmd in (Cmd.SYN, Cmd.FIN):
            flush(f.sid)
            out.setdefault(f.sid, []).append((Cmd(f.cmd).name, ""))
    for sid in list(pending):
        flush(sid)
    return out


def finished_streams(transcript: Transcript, direction: Direction, version: int) -> set[int]:
    """Stream ids on which ``direction`` sent FIN."""
    frames, _ = decode_direction(transcript.chunks[direction], version)
    return {f.frame.sid for f in frames if f.frame.cmd == Cmd.FIN}


def compare_frames(a: list[Frame], b: list[Frame], finished: set[int]) -> str:
    """ "" when ``a`` and ``b`` have the same :func:`canonical` form, else what differs.

    One difference is not one: on a stream the driving side had finished (its FIN is in
    ``finished``), the peer's answering FIN may be in one run and not the other,
    because the driver closed the connection before it came.  Go's loadgen does this:
    it closes its session right after the FIN of its last stream.
    """
    ca, cb = canonical(a), canonical(b)
    for sid in sorted(set(ca) | set(cb)):
        x, y = ca.get(sid, []), cb.get(sid, [])
        if x == y:
            continue
        if sid in finished and (x == [*y, ("FIN", "")] or y == [*x, ("FIN", "")]):
            continue
        return f"stream {sid}: {x} != {y}"
    return ""


def dumps_session(doc: dict[str, Any]) -> str:
    """Session JSON: indented, but one line per chunk and per frame to stay compact."""
    placeholders: dict[str, str] = {}

    def one_line(value: Any) -> str:
        key = f"@@{len(placeholders)}@@"
        placeholders[key] = json.dumps(value, separators=(",", ":"))
        return key

    def compact(items: list[dict[str, Any]]) -> list[str]:
        return [one_line(item) for item in items]

    shallow = json.loads(json.dumps(doc))
    for side in ("client", "server"):
        if "args" in shallow[side]:
            shallow[side]["args"] = one_line(shallow[side]["args"])
    for d in DIRECTIONS:
        side = shallow["directions"][d]
        side["chunks"] = compact(side["chunks"])
        side["frames"] = compact(side["frames"])
    text = json.dumps(shallow, indent=1)
    for key, value in placeholders.items():
        text = text.replace(f'"{key}"', value, 1)
    return text + "\n"
