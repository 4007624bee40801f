"""``python -m smuxref.dissect FILE.pcap``: print every smux frame of a capture, one per line.

    $ python -m smuxref.dissect vectors/sessions/v2/ref-go/hold.pcap
         time  dir  ver cmd  stream      len  data
     0.008061  c>s  v2  SYN  3               0
     0.008061  c>s  v2  PSH  3            8201  b'HOLD 300\\n\\x00\\x01\\x02\\x03'...
     0.020684  s>c  v2  UPD  3               8  consumed=1 window=4096

Each TCP connection is reassembled per direction (by sequence number, so reordered or
retransmitted segments do no harm), split into frames with the Scapy layer
(:mod:`smuxref.scapy_layer`), and every header is checked with smuxref's strict codec.
A protocol error is printed as a ``!!`` line naming the smuxref error class; the rest
of that direction is then shown unchecked, marked ``?``, since a real receiver stops
there (SPEC.md 4.6).  Leniencies a strict receiver may refuse are marked ``~``.  The
client side is the one that sent the first SYN; ``--port`` names the smux port when
the capture has no handshake.  Needs the ``scapy`` extra.
"""

from __future__ import annotations

import argparse
import bisect
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final

from ._frame import HEADER_SIZE, Cmd, Upd, decode_frame
from .errors import ProtocolError

try:
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6
    from scapy.utils import PcapReader

    from .scapy_layer import bind_port, dissect_frames
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    _NO_SCAPY: ImportError | None = exc
else:
    _NO_SCAPY = None

__all__ = ["HEADING", "Flow", "Header", "format_frames", "format_headers", "main", "read_flows"]

#: The column heading of the lines :func:`format_headers` yields.
HEADING: Final = f"{'time':>9}  dir  ver cmd  stream      len  data"
#: One frame header found in a byte stream: (offset, VER, CMD, SID, LEN).
Header = tuple[int, int, int, int, int]


def _need_scapy() -> None:
    """Reading pcaps needs scapy; formatting frames of a byte stream does not."""
    if _NO_SCAPY is not None:
        raise ImportError("reading a pcap needs scapy: pip install 'smuxref[scapy]'") from _NO_SCAPY


PREVIEW: Final = 24
_SYN_FLAG: Final = 0x02
_ACK_FLAG: Final = 0x10


@dataclass(slots=True)
class Flow:
    """One direction of one TCP connection: its reassembled bytes and their arrival times."""

    src: tuple[str, int]
    dst: tuple[str, int]
    isn: int | None = None
    #: This side sent the opening SYN (without ACK): it is the TCP client.
    opened: bool = False
    #: (relative sequence offset, capture time, bytes), in capture order.
    segments: list[tuple[int, float, bytes]] = field(default_factory=list)

    def reassemble(self) -> tuple[bytes, list[tuple[int, float]]]:
        """The byte stream and, for each position where a segment ended, its time."""
        data = bytearray()
        marks: list[tuple[int, float]] = []
        for offset, t, payload in sorted(self.segments, key=lambda s: (s[0], s[1])):
            if offset > len(data):
                break  # a gap: the capture lost a segment; stop at what is certain
            new = payload[len(data) - offset :]
            if new:
                data += new
                marks.append((len(data), t))
        return bytes(data), marks


def read_flows(path: str, port: int | None = None) -> list[Flow]:
    """Every TCP direction of ``path`` that carries payload (or that ``port`` names)."""
    _need_scapy()
    flows: dict[tuple[tuple[str, int], tuple[str, int]], Flow] = {}
    base: float | None = None
    with PcapReader(path) as reader:
        for pkt in reader:
            if TCP not in pkt or (IP not in pkt and IPv6 not in pkt):
                continue
            ip = pkt[IP] if IP in pkt else pkt[IPv6]
            tcp = pkt[TCP]
            t = float(pkt.time)
            base = t if base is None else base
            key = ((str(ip.src), int(tcp.sport)), (str(ip.dst), int(tcp.dport)))
            if port is not None and port not in (key[0][1], key[1][1]):
                continue
            flow = flows.setdefault(key, Flow(*key))
            payload = bytes(tcp.payload)
            flags = int(tcp.flags)
            if flags & _SYN_FLAG:
                flow.isn = (int(tcp.seq) + 1) & 0xFFFFFFFF
                flow.opened = not flags & _ACK_FLAG
            if not payload:
                continue
            if flow.isn is None:  # no handshake captured: start at the first segment
                flow.isn = int(tcp.seq)
            flow.segments.append(((int(tcp.seq) - flow.isn) & 0xFFFFFFFF, t - base, payload))
    return [f for f in flows.values() if f.segments or f.isn is not None]


def _is_client(flow: Flow, flows: list[Flow], port: int | None) -> bool:
    """The TCP client is the smux client: ``--port`` is the server's, else the SYN tells."""
    if port is not None:
        return flow.dst[1] == port
    if flow.opened:
        return True
    reverse = [f for f in flows if f.src == flow.dst and f.dst == flow.src]
    if reverse and reverse[0].opened:
        return False
    # No handshake captured: smux clients usually speak first (their SYN frame).
    if not reverse or not reverse[0].segments:
        return True
    return flow.segments[0][1] <= reverse[0].segments[0][1]


def _preview(data: bytes) -> str:
    if not data:
        return ""
    text = repr(data[:PREVIEW])
    return text + ("..." if len(data) > PREVIEW else "")


def _lenient_note(cmd: int, sid: int, length: int, client: bool) -> str:
    """A ``~`` note for what Go accepts and a strict receiver may refuse (SPEC 5.3-6.3)."""
    # Clients open odd ids and servers even ones (SPEC.md 5.1); Go accepts any (5.4).
    if cmd == Cmd.SYN and (sid == 0 or sid % 2 == (0 if client else 1)):
        return "~ SYN id of the wrong parity for its sender (5.1, 5.4)"
    if cmd == Cmd.NOP and sid != 0:
        return "~ NOP with a stream id (5.3)"
    if cmd == Cmd.PSH and length == 0:
        return "~ zero-length PSH (6.3)"
    return ""


def format_frames(
    data: bytes, marks: list[tuple[int, float]], label: str, version: int | None, *, client: bool
) -> Iterator[tuple[float, str]]:
    """``(time, line)`` for every frame of one direction's byte stream (split by the
    Scapy layer)."""
    _need_scapy()
    frames, rest = dissect_frames(data)
    headers = [
        (offset, int(p.version), int(p.cmd), int(p.sid), int(p.length)) for offset, p in frames
    ]
    yield from format_headers(data, headers, len(rest), marks, label, version, client=client)


def format_headers(  # noqa: PLR0917 - one direction's facts
    data: bytes,
    headers: list[Header],
    rest: int,
    marks: list[tuple[int, float]],
    label: str,
    version: int | None,
    *,
    client: bool,
) -> Iterator[tuple[float, str]]:
    """``(time, line)`` for every frame of one direction's byte stream, given where its
    headers are (``rest``: bytes of an incomplete frame at the end).  ``marks`` says
    when the stream had reached which length.  Used by the CLI and by the conformance
    suite's failure transcripts, so both read the same."""

    # Linear in the stream's length: a failure transcript of a connection that carried
    # hundreds of megabytes (a SOURCE left running) must not take minutes to format.
    positions = [pos for pos, _ in marks]

    def time_at(end: int) -> float:
        found = bisect.bisect_left(positions, end)
        return marks[min(found, len(marks) - 1)][1] if marks else 0.0

    view = memoryview(data)
    failed = False
    for offset, ver, cmd, sid, length in headers:
        end = offset + HEADER_SIZE + length
        session_version = version if version is not None else ver
        t = time_at(end)
        if not failed:
            try:
                decode_frame(view[:end], offset, version=session_version)
            except ProtocolError as exc:
                failed = True
                yield t, f"{t:9.6f}  {label}  !! {type(exc).__name__}: {exc}"
        name = Cmd(cmd).name if cmd < len(Cmd) else f"CMD{cmd}"
        payload = data[offset + HEADER_SIZE : end]
        if cmd == Cmd.UPD and length == 8:
            consumed, window = Upd.decode(payload)
            detail = f"consumed={consumed} window={window}"
        else:
            detail = _preview(payload)
        note = "?" if failed else _lenient_note(cmd, sid, length, client)
        line = f"{t:9.6f}  {label}  v{ver}  {name:4} {sid:<10} {length:6}  {detail}"
        yield t, (line + ("  " + note if note else "")).rstrip()
    if rest:
        t = time_at(len(data))
        cut = f"the capture ends {rest} bytes into a frame"
        yield t, f"{t:9.6f}  {label}  !! TruncatedFrameError: {cut}"


def _session_version(flows: list[Flow]) -> int | None:
    """smux has no negotiation: take the VER byte of the first frame anyone sent."""
    first = (
        min((f.segments[0][1], f.segments[0][2]) for f in flows if f.segments)
        if any(f.segments for f in flows)
        else None
    )
    return first[1][0] if first is not None and first[1] else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m smuxref.dissect", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("pcap")
    parser.add_argument("--port", type=int, help="the smux server's TCP port")
    parser.add_argument("--version", type=int, choices=(1, 2), help="default: from the frames")
    args = parser.parse_args(argv)
    _need_scapy()
    if args.port is not None:
        bind_port(args.port)
    flows = read_flows(args.pcap, args.port)
    version = args.version if args.version is not None else _session_version(flows)
    lines: list[tuple[float, int, str]] = []
    for n, flow in enumerate(flows):
        data, marks = flow.reassemble()
        if not data:
            continue
        client = _is_client(flow, flows, args.port)
        label = "c>s" if client else "s>c"
        for t, line in format_frames(data, marks, label, version, client=client):
            lines.append((t, n, line))
    try:
        print(HEADING)
        for _, _, line in sorted(lines, key=lambda x: (x[0], x[1])):
            print(line)
        sys.stdout.flush()
    except BrokenPipeError:  # `| head`: stop quietly, as other CLI tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
