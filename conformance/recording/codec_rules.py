"""SPEC.md's receiver rules for one byte string, as the expected result of a codec vector.

This is deliberately a second implementation of sections 4, 5.3, 5.4 and 6, written
without smuxref's decoder: the vectors it labels are then checked against smuxref (by
``tests/test_vectors.py``) and against the Go library (the ``go`` field), so a mistake
in any one of the three shows up as a disagreement instead of being copied into the
vectors.

A byte string is judged the way a receiver configured as a :class:`Receiver` would read
it from a connection that then ends:

* ``invalid``: a header breaks a MUST (4.1-4.3), or the bytes end inside a frame
  (4.5).  ``error`` names the smuxref class; frames before the bad one keep their effect
  (4.6) and are listed.
* ``acceptable``: every frame is well formed, but one uses a leniency of Go's that a
  stricter receiver may refuse (SYN for id 0 or its own parity, NOP with a stream id,
  zero-length PSH, LEN above the receiver's own MaxFrameSize, a window above 2^31-1).
  ``strictError`` names what smuxref raises when configured strictly, if it can.
* ``valid``: everything else.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, Final, Literal

__all__ = [
    "CMD_NAMES",
    "ERROR_CLASSES",
    "GO_OUTCOMES",
    "NOTES",
    "Outcome",
    "Receiver",
    "classify",
    "delivered_streams",
    "expected_go_outcome",
]

Result = Literal["valid", "invalid", "acceptable"]

HEADER: Final = struct.Struct("<BBHI")
UPD: Final = struct.Struct("<II")
#: Command names by value (SPEC.md 4.2).
CMD_NAMES: Final = ("SYN", "FIN", "PSH", "NOP", "UPD")
SYN, FIN, PSH, NOP, UPD_CMD = range(5)
#: Protocol errors a codec vector may name: the codec's, and StreamIdError (5.4).
ERROR_CLASSES: Final = (
    "InvalidVersionError",
    "UnknownCommandError",
    "InvalidLengthError",
    "FrameTooLargeError",
    "TruncatedFrameError",
    "StreamIdError",
)
#: What the Go harness reports for a vector: how ``AcceptStream`` ended after the bytes
#: were written and the connection closed.
GO_OUTCOMES: Final = ("accepted", "ErrInvalidProtocol", "io.ErrUnexpectedEOF", "timeout")


def _note(bug_type: str, description: str, effect: str, spec: str) -> dict[str, str]:
    return {"bugType": bug_type, "description": description, "effect": effect, "spec": spec}


#: The flag dictionary of the vector files (Wycheproof's ``notes``).
NOTES: Final[dict[str, dict[str, str]]] = {
    "Ktv": _note(
        "BASIC",
        "A known test vector: a frame from SPEC.md Appendix A or one observed from Go smux.",
        "An implementation that fails it cannot interoperate at all.",
        "4.1",
    ),
    "MultiFrame": _note(
        "BASIC",
        "Several frames back to back in one byte string, as one TCP read delivers them.",
        "A decoder that expects one frame per read loses or merges frames.",
        "4.1",
    ),
    "LengthBoundary": _note(
        "EDGE_CASE",
        "LEN at a boundary: 0, 1, the default MaxFrameSize 32768 or its neighbours, 65535.",
        "Off-by-one length handling truncates payloads or rejects legal frames.",
        "6.2",
    ),
    "SidEdge": _note(
        "EDGE_CASE",
        "A stream id at an edge: 0, 1, 2, 3, 0x7FFFFFFF, 0xFFFFFFFE or 0xFFFFFFFF.",
        "Signed 32-bit or masked stream ids misroute frames near the top of the range.",
        "5.1",
    ),
    "SidOne": _note(
        "EDGE_CASE",
        "SYN for id 1: the peer's parity for a server, although no Go client allocates it.",
        "A receiver that reserves id 1 refuses a legal stream.",
        "5.4",
    ),
    "ByteOrder": _note(
        "ENCODING",
        "LEN or SID bytes whose value differs when read big-endian.",
        "A big-endian decoder reads other lengths and ids and loses the framing.",
        "4.1",
    ),
    "UpdEdge": _note(
        "EDGE_CASE",
        "A UPD payload at an edge: zero, 2^31-1 or 2^32-1 in CONSUMED or WINDOW.",
        "Signed or narrower arithmetic on the UPD fields corrupts the send window.",
        "4.4",
    ),
    "UpdConsumedAboveWindow": _note(
        "EDGE_CASE",
        "CONSUMED larger than WINDOW: normal, since CONSUMED counts every byte ever read.",
        "A receiver that thinks CONSUMED must stay below WINDOW rejects a long stream.",
        "4.4",
    ),
    "DuplicateSyn": _note(
        "EDGE_CASE",
        "A second SYN for an id that already has a stream: ignored, not an error.",
        "Resetting or duplicating the stream loses its data.",
        "5.4",
    ),
    "FrameBeforeSyn": _note(
        "EDGE_CASE",
        "PSH, FIN or UPD for an id no SYN opened: well formed, dropped by a session.",
        "Treating it as a protocol error kills sessions on a normal close race.",
        "5.5",
    ),
    "ZeroLengthPsh": _note(
        "LEGACY",
        "PSH with LEN 0. Go ignores it and never sends one; SPEC.md 6.3 makes every receiver"
        " ignore it.",
        "Delivering it as an empty read can look like EOF to the application.",
        "6.3",
    ),
    "LenAboveOwnMaxFrameSize": _note(
        "LEGACY",
        "PSH longer than the receiver's own MaxFrameSize (32768 here). Every receiver accepts"
        " up to 65535 (SPEC.md 6.2); only a tool's FrameDecoder may use a lower limit.",
        "A receiver that enforces its own limit breaks with peers configured larger.",
        "6.2",
    ),
    "SynSidZero": _note(
        "LEGACY",
        "SYN for stream id 0, which no opener allocates. Go accepts it; smuxref refuses it"
        " with reject_own_parity_syn (StreamIdError).",
        "Accepting it lets a peer open a stream no allocator can ever name.",
        "5.4",
    ),
    "OwnParitySyn": _note(
        "LEGACY",
        "SYN for an id of the receiver's own parity. Go accepts it; smuxref refuses it with"
        " reject_own_parity_syn (StreamIdError).",
        "Accepting it can collide with an id the receiver allocates later.",
        "5.4",
    ),
    "NopNonzeroSid": _note(
        "LEGACY",
        "NOP with a stream id other than 0. Go sends 0 and never looks at it.",
        "A receiver that routes NOP by stream id may touch or create a stream.",
        "5.3",
    ),
    "UpdWindowAboveInt32": _note(
        "LEGACY",
        "UPD WINDOW above 2^31-1, which a sender must not send; Go reads it as a negative"
        " signed window and blocks the stream.",
        "The sender's window arithmetic goes negative or wraps.",
        "4.4",
    ),
    "WrongVersion": _note(
        "MALFORMED",
        "VER is not the session's version (no negotiation exists).",
        "A receiver that ignores VER misreads a peer of the other version.",
        "4.1",
    ),
    "UnknownCommand": _note(
        "MALFORMED",
        "CMD above 4.",
        "A receiver that skips unknown commands guesses a payload length and desyncs.",
        "4.2",
    ),
    "UpdInVersion1": _note(
        "MALFORMED",
        "CMD 4 (UPD) in a version 1 session: an unknown command there (Go since v1.5.51).",
        "Applying it to stream state in a version 1 session corrupts nothing visible but"
        " hides a version mismatch.",
        "4.2",
    ),
    "NonEmptyControlFrame": _note(
        "MALFORMED",
        "SYN, FIN or NOP with LEN other than 0 (Go refuses it since v1.5.56).",
        "Go v1.2.2-v1.5.55 did not read the payload and parsed it as the next header.",
        "4.3",
    ),
    "UpdWrongLength": _note(
        "MALFORMED",
        "UPD with LEN other than 8 (Go refuses it since v1.5.56).",
        "Go v1.5.3-v1.5.55 read 8 bytes whatever LEN said and lost the framing.",
        "4.3",
    ),
    "TruncatedHeader": _note(
        "TRUNCATED",
        "The bytes end inside a header.",
        "A receiver that pads or guesses the missing bytes invents a frame.",
        "4.5",
    ),
    "TruncatedPayload": _note(
        "TRUNCATED",
        "The bytes end before the LEN bytes of payload.",
        "A receiver that delivers the partial payload hands the application a cut frame.",
        "4.5",
    ),
    "TruncatedAfterHeader": _note(
        "TRUNCATED",
        "The bytes end right after a header that announces a payload. Go's io.ReadFull then"
        " returns io.EOF, exactly as at an orderly end, so Go reports no error (observed on"
        " v1.5.57 and v1.5.58; SPEC.md 4.5 expects io.ErrUnexpectedEOF inside a frame).",
        "A receiver that treats it as an orderly end hides a cut transfer; no payload is"
        " delivered either way.",
        "4.5",
    ),
    "ErrorAfterFrames": _note(
        "MALFORMED",
        "Well-formed frames followed by a bad header: the first ones keep their effect.",
        "A receiver that validates the whole read first drops good frames.",
        "4.6",
    ),
    "LegacyDesync": _note(
        "KNOWN_BUG",
        "The payload of the bad frame is itself a well-formed header: old Go (v1.2.2-v1.5.55)"
        " parsed it as the next frame instead of failing.",
        "A receiver that resynchronizes acts on bytes the peer sent as payload.",
        "4.6",
    ),
    "CheckOrder": _note(
        "EDGE_CASE",
        "Several header fields are wrong; the first check in SPEC order (version, command,"
        " length) names the error.",
        "Another order reports another error class; no interoperability effect.",
        "4.1",
    ),
    "Promoted": _note(
        "KNOWN_BUG",
        "Promoted from a failure the property-based tests found"
        " (smuxref_conformance.record promote).",
        "See the vector's comment.",
        "4.6",
    ),
}


@dataclass(frozen=True, slots=True)
class Receiver:
    """The receiving side a vector is judged for (a vector file's test group)."""

    version: int
    role: Literal["server", "client"] = "server"
    #: The receiver's own MaxFrameSize; it still accepts up to 65535 (SPEC.md 6.2).
    max_frame_size: int = 32768

    @classmethod
    def of_group(cls, group: dict[str, Any]) -> Receiver:
        """The receiver a vector file's test group describes."""
        return cls.make(group["version"], group["receiverRole"], group["receiverMaxFrameSize"])

    @classmethod
    def make(cls, version: int, role: str, max_frame_size: int = 32768) -> Receiver:
        """Build from untyped input (JSON, the command line), checking every field."""
        if version not in (1, 2):
            raise ValueError(f"version must be 1 or 2, not {version!r}")
        if role == "server":
            return cls(version, "server", max_frame_size)
        if role == "client":
            return cls(version, "client", max_frame_size)
        raise ValueError(f"role must be server or client, not {role!r}")

    def own_parity(self, sid: int) -> bool:
        """Servers open even ids and clients odd ones (SPEC.md 5.1)."""
        return sid % 2 == (0 if self.role == "server" else 1)


@dataclass(slots=True)
class Outcome:
    """The expected result of a byte string for one :class:`Receiver`."""

    result: Result
    frames: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    strict_error: str | None = None
    flags: list[str] = field(default_factory=list)

    def add_flag(self, flag: str) -> None:
        if flag not in self.flags:
            self.flags.append(flag)


def classify(data: bytes, rx: Receiver) -> Outcome:
    """Judge ``data`` as the whole byte stream a receiver ``rx`` reads (module docstring)."""
    out = Outcome("valid")
    opened: set[int] = set()
    pos = 0
    while pos < len(data):
        if len(data) - pos < 8:
            return _fail(out, "TruncatedFrameError", "TruncatedHeader")
        ver, cmd, length, sid = HEADER.unpack_from(data, pos)
        # The order of these checks is SPEC.md 4.1 ("before every other check"), then
        # 4.2, then 4.3: Go's recvLoop order (v1.5.57:session.go:413-496).
        if ver != rx.version:
            return _fail(out, "InvalidVersionError", "WrongVersion")
        if cmd > UPD_CMD:
            return _fail(out, "UnknownCommandError", "UnknownCommand")
        if cmd == UPD_CMD and rx.version == 1:
            return _fail(out, "UnknownCommandError", "UpdInVersion1")
        if cmd in (SYN, FIN, NOP) and length != 0:
            return _fail(out, "InvalidLengthError", "NonEmptyControlFrame")
        if cmd == UPD_CMD and length != 8:
            return _fail(out, "InvalidLengthError", "UpdWrongLength")
        payload = data[pos + 8 : pos + 8 + length]
        if len(payload) < length:
            if not payload:
                out.add_flag("TruncatedAfterHeader")
            return _fail(out, "TruncatedFrameError", "TruncatedPayload")
        frame: dict[str, Any] = {
            "version": ver,
            "cmd": CMD_NAMES[cmd],
            "sid": sid,
            "length": length,
            "data": payload.hex(),
        }
        if cmd == UPD_CMD:
            consumed, window = UPD.unpack(payload)
            frame["upd"] = {"consumed": consumed, "window": window}
        out.frames.append(frame)
        _leniencies(out, rx, frame, opened)
        pos += 8 + length
    if len(out.frames) > 1:
        out.add_flag("MultiFrame")
    return out


def delivered_streams(data: bytes, rx: Receiver) -> dict[str, str]:
    """What a lenient receiver (Go) hands its application for ``data``: per stream id it
    accepted, the hex of every PSH payload, up to the first bad header."""
    streams: dict[str, str] = {}
    for frame in classify(data, rx).frames:
        sid = str(frame["sid"])
        if frame["cmd"] == "SYN":
            streams.setdefault(sid, "")
        elif frame["cmd"] == "PSH" and sid in streams:
            streams[sid] += frame["data"]
    return streams


def _leniencies(out: Outcome, rx: Receiver, frame: dict[str, Any], opened: set[int]) -> None:
    """Mark what a well-formed frame leans on: Go's leniencies make it acceptable."""
    cmd = CMD_NAMES.index(frame["cmd"])
    length, sid = frame["length"], frame["sid"]

    def lenient(flag: str, strict_error: str | None = None) -> None:
        out.result = "acceptable"
        out.add_flag(flag)
        if strict_error is not None and out.strict_error is None:
            out.strict_error = strict_error

    if cmd == SYN:
        if sid in opened:
            out.add_flag("DuplicateSyn")
        elif sid == 0:
            lenient("SynSidZero", "StreamIdError")
        elif rx.own_parity(sid):
            lenient("OwnParitySyn", "StreamIdError")
        opened.add(sid)
    # SPEC.md 6.3, 6.2 and 5.3 make these MUSTs for the receiver, so they stay valid:
    # flagged for the reader, never a reason to refuse.
    elif cmd == PSH:
        if length == 0:
            out.add_flag("ZeroLengthPsh")
        elif length > rx.max_frame_size:
            out.add_flag("LenAboveOwnMaxFrameSize")
    elif cmd == NOP and sid != 0:
        out.add_flag("NopNonzeroSid")
    elif cmd == UPD_CMD:
        upd = frame["upd"]
        if upd["window"] > 0x7FFFFFFF:
            lenient("UpdWindowAboveInt32")
        if upd["consumed"] > upd["window"]:
            out.add_flag("UpdConsumedAboveWindow")


def _fail(out: Outcome, error: str, flag: str) -> Outcome:
    out.result = "invalid"
    out.error = error
    out.strict_error = None
    out.add_flag(flag)
    if out.frames:
        out.add_flag("ErrorAfterFrames")
    return out


def expected_go_outcome(result: str, error: str | None, flags: list[str]) -> str:
    """What Go v1.5.56+ reports for a vector with this expected result.

    ``accepted`` is how the harness names Go's ``io.EOF``: everything was read and the
    connection then ended at a frame boundary.  Go accepts every leniency, so
    ``acceptable`` means accepted; a header error is ``ErrInvalidProtocol`` (SPEC.md
    4.6); a truncated frame is the read error ``io.ErrUnexpectedEOF`` (4.5), except
    right after a header, where Go sees ``io.EOF`` (flag ``TruncatedAfterHeader``).
    """
    if result != "invalid" or "TruncatedAfterHeader" in flags:
        return "accepted"
    if error == "TruncatedFrameError":
        return "io.ErrUnexpectedEOF"
    return "ErrInvalidProtocol"
