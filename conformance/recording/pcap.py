"""Write a transcript as a pcap of Ethernet/IPv4/TCP packets that any tool opens.

The relay records reads, not packets, so the packets are synthesized: a three-way
handshake, one data segment per recorded read with the sequence and acknowledgement
numbers it would have had, a pure ACK from the receiver after each segment, and FIN
(or RST) where a direction ended.  Checksums are real.  The result is a function of the
transcript alone (fixed addresses, ports, initial sequence numbers and base time), so a
pcap can be regenerated from its JSON byte for byte.

The framing is the classic libpcap format with microsecond timestamps, which tshark,
Wireshark, tcpdump and Scapy all read.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from .transcript import DIRECTIONS, Direction, Transcript

__all__ = ["Endpoints", "pcap_bytes", "write_pcap"]

#: 2026-01-01T00:00:00Z: the pcap's time zero (transcript times are relative).
BASE_TIME: Final = 1767225600
SNAPLEN: Final = 65535
LINKTYPE_ETHERNET: Final = 1
#: Largest TCP payload per packet: an Ethernet frame of at most 65535 bytes, the most
#: some readers take from one pcap record (Scapy cuts longer records at its MTU).
MSS: Final = 65535 - 14 - 20 - 20
WSCALE: Final = 7

_FIN, _SYN, _RST, _PSH, _ACK = 0x01, 0x02, 0x04, 0x08, 0x10


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Addresses written into the pcap (the recording's real ports were ephemeral)."""

    client_ip: str = "127.0.0.1"
    server_ip: str = "127.0.0.1"
    client_port: int = 50000
    #: Not a port any Wireshark dissector claims, so tshark leaves the payload alone.
    server_port: int = 29900
    client_mac: bytes = bytes.fromhex("020000000001")
    server_mac: bytes = bytes.fromhex("020000000002")
    client_isn: int = 0x1000_0000
    server_isn: int = 0x5000_0000


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(int(word) for word in struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ip(addr: str) -> bytes:
    return bytes(int(part) for part in addr.split("."))


class _Writer:
    """Packet builder holding each side's sequence state."""

    def __init__(self, ep: Endpoints) -> None:
        self.ep = ep
        self.next_seq: dict[Direction, int] = {"c2s": ep.client_isn, "s2c": ep.server_isn}
        self.ip_id: dict[Direction, int] = {"c2s": 1, "s2c": 1}
        self.records: list[bytes] = []
        self.last_time = 0.0

    def packet(
        self, t: float, sender: Direction, flags: int, payload: bytes = b"", *, syn: bool = False
    ) -> None:
        ep = self.ep
        other: Direction = "s2c" if sender == "c2s" else "c2s"
        if sender == "c2s":
            src, dst = _ip(ep.client_ip), _ip(ep.server_ip)
            sport, dport = ep.client_port, ep.server_port
            smac, dmac = ep.client_mac, ep.server_mac
        else:
            src, dst = _ip(ep.server_ip), _ip(ep.client_ip)
            sport, dport = ep.server_port, ep.client_port
            smac, dmac = ep.server_mac, ep.client_mac
        # MSS, NOP, window scale: the options Linux puts on a loopback SYN, minus SACK
        # and timestamps, which nothing here needs.
        options = struct.pack("!BBHBBBB", 2, 4, MSS, 1, 3, 3, WSCALE) if syn else b""
        ack = self.next_seq[other] & 0xFFFFFFFF if flags & _ACK else 0
        offset = (20 + len(options)) // 4
        window = 0xFFFF
        tcp = struct.pack(
            "!HHIIBBHHH",
            sport,
            dport,
            self.next_seq[sender] & 0xFFFFFFFF,
            ack,
            offset << 4,
            flags,
            window,
            0,
            0,
        )
        tcp += options
        pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp) + len(payload))
        csum = _checksum(pseudo + tcp + payload)
        tcp = tcp[:16] + struct.pack("!H", csum) + tcp[18:]
        total = 20 + len(tcp) + len(payload)
        ip = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, total, self.ip_id[sender], 0x4000, 64, 6, 0, src, dst
        )
        ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
        self.ip_id[sender] = (self.ip_id[sender] + 1) & 0xFFFF
        frame = dmac + smac + b"\x08\x00" + ip + tcp + payload
        t = max(t, self.last_time)  # keep capture time monotonic
        self.last_time = t
        micros = round(t * 1_000_000)
        sec, usec = divmod(micros, 1_000_000)
        self.records.append(
            struct.pack("<IIII", BASE_TIME + sec, usec, len(frame), len(frame)) + frame
        )
        self.next_seq[sender] += len(payload) + (1 if flags & (_SYN | _FIN) else 0)


def pcap_bytes(transcript: Transcript, ep: Endpoints | None = None) -> bytes:
    """The whole pcap file for ``transcript``."""
    w = _Writer(ep or Endpoints())
    w.packet(0.0, "c2s", _SYN, syn=True)
    w.packet(0.0, "s2c", _SYN | _ACK, syn=True)
    w.packet(0.0, "c2s", _ACK)
    # Reads in the order the relay made them; an end goes after its direction's reads.
    events: list[tuple[float, int, Direction, bytes | None]] = []
    for direction in DIRECTIONS:
        last = -1
        for chunk in transcript.chunks[direction]:
            events.append((chunk.t, chunk.index, direction, chunk.data))
            last = chunk.index
        end = transcript.ends.get(direction)
        if end is not None:
            events.append((end.t, last, direction, None))
    events.sort(key=lambda e: (e[0], e[1], e[3] is None))
    for t, _, sender, data in events:
        receiver: Direction = "s2c" if sender == "c2s" else "c2s"
        if data is None:
            kind = transcript.ends[sender].kind
            if kind == "rst":
                w.packet(t, sender, _RST | _ACK)
                continue
            w.packet(t, sender, _FIN | _ACK)
        else:
            for start in range(0, len(data), MSS):
                w.packet(t, sender, _PSH | _ACK, data[start : start + MSS])
        w.packet(t, receiver, _ACK)
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET)
    return header + b"".join(w.records)


def write_pcap(path: Path, transcript: Transcript, ep: Endpoints | None = None) -> None:
    path.write_bytes(pcap_bytes(transcript, ep))
