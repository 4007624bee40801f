# scapy.contrib.description = smux stream multiplexing (xtaci/smux), versions 1 and 2
# scapy.contrib.status = loads
"""A Scapy layer for smux frames, for people reading captures (``pip install smuxref[scapy]``).

The codec in :mod:`smuxref` stays the source of truth; this layer is a satellite for
pcap triage and interactive work, and ``tests/test_scapy_layer.py`` checks that the
two agree on every recorded and generated vector.

    >>> from smuxref.scapy_layer import SMUX, SMUXUpd
    >>> bytes(SMUX(version=2, cmd="UPD", sid=3) / SMUXUpd(consumed=4000, window=65536)).hex()
    '0204080003000000a00f000000000100'
    >>> SMUX(bytes.fromhex("01020200030000006869")).summary()
    'smux v1 PSH sid=3 len=2 / Raw'

Layout (SPEC.md 4.1): ``SMUX`` is the 8-byte header; its payload is exactly LEN bytes,
a :class:`SMUXUpd` for an 8-byte UPD and ``Raw`` otherwise.  Bytes after the payload
are the next frame, so a TCP segment carrying several frames dissects as a chain
``SMUX / Raw / SMUX / SMUXUpd / ...`` (Scapy would otherwise leave them as Padding).
LEN is filled in on build when left as None, counting only this frame's payload.
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

from scapy.fields import AnyField, ByteEnumField, ByteField, LEIntField, LEShortField
from scapy.layers.inet import TCP
from scapy.packet import NoPayload, Packet, Padding, Raw, bind_layers

__all__ = ["CMD_NAMES", "SMUX", "SMUXUpd", "bind_port", "dissect_frames", "frames_of"]

#: Command names by value (SPEC.md 4.2); other values show as numbers.
CMD_NAMES: Final = {0: "SYN", 1: "FIN", 2: "PSH", 3: "NOP", 4: "UPD"}
_HEADER_SIZE: Final = 8


class SMUX(Packet):
    """One smux frame header; ``length`` is LEN, ``sid`` the stream id."""

    name = "smux"
    fields_desc: ClassVar[list[AnyField]] = [
        # Go's DefaultConfig() uses protocol version 1.
        ByteField("version", 1),
        ByteEnumField("cmd", 2, CMD_NAMES),
        LEShortField("length", None),
        LEIntField("sid", 0),
    ]

    def post_build(self, pkt: bytes, pay: bytes) -> bytes:
        if self.length is None:
            n = self._own_payload_length()
            if n > 0xFFFF:
                raise ValueError(f"a payload of {n} bytes does not fit LEN (at most 65535)")
            pkt = pkt[:2] + n.to_bytes(2, "little") + pkt[4:]
        return pkt + pay

    def _own_payload_length(self) -> int:
        """Bytes of payload up to the next chained SMUX frame (not the whole chain)."""
        total = 0
        layer = self.payload
        while not isinstance(layer, NoPayload | SMUX):
            total += len(layer.self_build())
            layer = layer.payload
        return total

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        # The payload is exactly LEN bytes; the rest belongs to the next frame.
        return s[: self.length], s[self.length :]

    def guess_payload_class(self, payload: bytes) -> Any:
        if self.cmd == 4 and len(payload) == 8:
            return SMUXUpd
        return Raw

    def dissect(self, s: bytes) -> None:
        """Dissect this frame, then chain the bytes after it as the next frame(s)."""
        s = self.pre_dissect(s)
        s = self.do_dissect(s)
        s = self.post_dissect(s)
        payload, rest = self.extract_padding(s)
        self.do_dissect_payload(payload)
        if not rest:
            return
        if len(rest) < _HEADER_SIZE or len(rest) < _HEADER_SIZE + _length_at(rest):
            # A partial frame (the segment ends inside it): keep the bytes visible.
            self.add_payload(Padding(rest))
        else:
            self.add_payload(SMUX(rest, _internal=1, _underlayer=self))

    def mysummary(self) -> str:
        return str(self.sprintf("smux v%SMUX.version% %SMUX.cmd% sid=%SMUX.sid% len=%SMUX.length%"))

    @classmethod
    def tcp_reassemble(cls, data: bytes, metadata: dict[str, Any], session: Any) -> Packet | None:
        """For ``sniff(session=TCPSession)``: wait until the data ends on a frame boundary."""
        pos = 0
        while len(data) - pos >= _HEADER_SIZE:
            pos += _HEADER_SIZE + _length_at(data[pos:])
        return cls(data) if pos == len(data) else None


class SMUXUpd(Packet):
    """The UPD payload of protocol version 2 (SPEC.md 4.4)."""

    name = "smux UPD"
    fields_desc: ClassVar[list[AnyField]] = [LEIntField("consumed", 0), LEIntField("window", 65536)]

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s

    def mysummary(self) -> str:
        return str(self.sprintf("consumed=%SMUXUpd.consumed% window=%SMUXUpd.window%"))


bind_layers(SMUX, SMUXUpd, cmd=4)


def _length_at(buf: bytes) -> int:
    return int.from_bytes(buf[2:4], "little")


def bind_port(port: int) -> None:
    """Dissect TCP payloads to or from ``port`` as smux (smux has no well-known port)."""
    bind_layers(TCP, SMUX, dport=port)
    bind_layers(TCP, SMUX, sport=port)


def frames_of(pkt: Packet) -> list[Packet]:
    """Every SMUX frame chained in ``pkt``, each detached with its own payload only."""
    out = []
    layer = pkt.getlayer(SMUX)
    while layer is not None:
        frame = layer.copy()
        # Cut the copy after its own payload so it stands alone.
        inner = frame
        while not isinstance(inner.payload, NoPayload | SMUX | Padding):
            inner = inner.payload
        inner.remove_payload()
        out.append(frame)
        layer = _next_frame(layer)
    return out


def _next_frame(layer: Packet) -> SMUX | None:
    inner = layer.payload
    while not isinstance(inner, NoPayload):
        if isinstance(inner, SMUX):
            return inner
        inner = inner.payload
    return None


def dissect_frames(data: bytes) -> tuple[list[tuple[int, SMUX]], bytes]:
    """Split a reassembled TCP byte stream into ``(offset, frame)`` pairs.

    Returns the frames and the trailing bytes that do not form a whole frame (a capture
    that ends inside one).  Frames are parsed one by one, so a stream of any length
    does not build one deeply nested packet.
    """
    frames = []
    pos = 0
    while len(data) - pos >= _HEADER_SIZE:
        end = pos + _HEADER_SIZE + _length_at(data[pos:])
        if end > len(data):
            break
        frames.append((pos, SMUX(data[pos:end])))
        pos = end
    return frames, data[pos:]
