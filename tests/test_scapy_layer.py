"""The Scapy layer and ``python -m smuxref.dissect`` against smuxref's codec.

smuxref is the source of truth; the layer must build the bytes smuxref encodes and
dissect every recorded and generated frame as smuxref decodes it.  The dissector must
reassemble the synthesized pcaps into exactly the bytes of their JSON transcripts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

scapy = pytest.importorskip("scapy")

from scapy.layers.inet import IP, TCP  # noqa: E402
from scapy.layers.l2 import Ether  # noqa: E402
from scapy.packet import Packet, Padding, Raw  # noqa: E402

from smuxref import Cmd, Frame, FrameDecoder, Upd  # noqa: E402
from smuxref import dissect as dissect_cli  # noqa: E402
from smuxref.scapy_layer import SMUX, SMUXUpd, bind_port, dissect_frames, frames_of  # noqa: E402
from smuxref_conformance.recording.pcap import Endpoints, pcap_bytes  # noqa: E402
from smuxref_conformance.recording.transcript import DIRECTIONS, Transcript  # noqa: E402

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
SESSION_FILES = sorted((VECTORS / "sessions").glob("v*/*/*.json"))
SESSIONS = [pytest.param(p, id=str(p.relative_to(VECTORS / "sessions"))) for p in SESSION_FILES]


def _as_frame(pkt: Packet) -> Frame:
    """What smuxref would decode from the bytes the layer dissected into ``pkt``."""
    payload = bytes(pkt.payload) if not isinstance(pkt.payload, Padding) else b""
    return Frame(int(pkt.version), int(pkt.cmd), int(pkt.sid), payload[: int(pkt.length)])


def _load(path: Path) -> Any:
    return json.loads(path.read_text())


# ------------------------------------------------------------------ building


@pytest.mark.parametrize(
    "frame",
    [
        Frame(1, Cmd.SYN, 3),
        Frame(2, Cmd.SYN, 2),
        Frame(1, Cmd.PSH, 3, b"hi"),
        Frame(1, Cmd.PSH, 0xFFFFFFFF, b"hello"),
        Frame(1, Cmd.FIN, 3),
        Frame(2, Cmd.NOP, 0),
        Frame(1, Cmd.PSH, 7),
        Frame(2, Cmd.PSH, 5, bytes(range(256)) * 255 + bytes(255)),
    ],
    ids=repr,
)
def test_build_matches_smuxref(frame: Frame) -> None:
    pkt = SMUX(version=frame.version, cmd=int(frame.cmd), sid=frame.sid)
    if frame.data:
        pkt = pkt / Raw(frame.data)
    assert bytes(pkt) == frame.encode()
    assert _as_frame(SMUX(frame.encode())) == frame


def test_upd_payload_layer() -> None:
    upd = Upd(4000, 65536)
    pkt = SMUX(version=2, cmd="UPD", sid=3) / SMUXUpd(consumed=4000, window=65536)
    assert bytes(pkt) == Frame(2, Cmd.UPD, 3, upd.encode()).encode()
    parsed = SMUX(bytes(pkt))
    assert parsed.length == 8
    assert (parsed[SMUXUpd].consumed, parsed[SMUXUpd].window) == upd
    # A UPD of any other length is not a UPD payload: it stays Raw (and is invalid).
    odd = SMUX(bytes.fromhex("020404000300000000000000"))
    assert SMUXUpd not in odd
    assert bytes(odd[Raw]) == bytes(4)


def test_explicit_length_is_kept() -> None:
    """A user-given LEN is not overwritten: the layer can build malformed frames too."""
    pkt = SMUX(version=1, cmd="SYN", length=1, sid=3) / Raw(b"x")
    assert bytes(pkt).hex() == "010001000300000078"


def test_chain_in_one_segment() -> None:
    """Several frames in one TCP payload dissect as a chain, each with its own LEN."""
    frames = [Frame(1, Cmd.SYN, 3), Frame(1, Cmd.PSH, 3, b"hi"), Frame(1, Cmd.FIN, 3)]
    chain = SMUX(version=1, cmd="SYN", sid=3) / SMUX(version=1, cmd="PSH", sid=3)
    chain = chain / Raw(b"hi") / SMUX(version=1, cmd="FIN", sid=3)
    wire = b"".join(f.encode() for f in frames)
    assert bytes(chain) == wire
    bind_port(29901)
    segment = Ether(bytes(Ether() / IP() / TCP(sport=50000, dport=29901) / Raw(wire)))
    assert [_as_frame(f) for f in frames_of(segment)] == frames
    cut = SMUX(wire + b"\x01\x02\x03")
    assert [_as_frame(f) for f in frames_of(cut)] == frames
    assert bytes(cut[Padding]) == b"\x01\x02\x03"


def test_tcp_reassemble_waits_for_a_frame_boundary() -> None:
    wire = Frame(1, Cmd.PSH, 3, b"hello").encode()
    assert SMUX.tcp_reassemble(wire[:10], {}, None) is None
    assert SMUX.tcp_reassemble(wire[:4], {}, None) is None
    whole = SMUX.tcp_reassemble(wire + wire, {}, None)
    assert whole is not None
    assert bytes(whole) == wire + wire


# ------------------------------------------------------- agreement on vectors


def test_codec_vectors_dissect_as_smuxref_decodes() -> None:
    """Every frame of every codec vector that smuxref decodes, the layer dissects alike."""
    checked = 0
    for path in (VECTORS / "frames.json", VECTORS / "promoted.json"):
        if not path.exists():
            continue
        for group in _load(path)["testGroups"]:
            for test in group["tests"]:
                data = bytes.fromhex(test["hex"])
                want = [
                    Frame(f["version"], Cmd[f["cmd"]], f["sid"], bytes.fromhex(f["data"]))
                    for f in test["frames"]
                ]
                got, _ = dissect_frames(data)
                assert [_as_frame(pkt) for _, pkt in got][: len(want)] == want, test["tcId"]
                # Malformed headers too: the layer reads what smuxref's lenient mode reads.
                lenient = FrameDecoder(strict=False).feed(data)
                assert [_as_frame(pkt) for _, pkt in got] == lenient, test["tcId"]
                for (_, pkt), frame in zip(got, lenient, strict=True):
                    assert bytes(pkt) == frame.encode()
                checked += len(got)
    assert checked > 200


@pytest.mark.parametrize("path", SESSIONS)
def test_session_frames_dissect_as_smuxref_decodes(path: Path) -> None:
    doc = _load(path)
    transcript = Transcript.from_json(doc["directions"])
    for d in DIRECTIONS:
        data = transcript.data(d)
        want = FrameDecoder(doc["version"]).feed(data)
        got, rest = dissect_frames(data)
        assert rest == b""
        assert [_as_frame(pkt) for _, pkt in got] == want
        assert [off for off, _ in got] == [f["offset"] for f in doc["directions"][d]["frames"]]
        assert b"".join(bytes(pkt) for _, pkt in got) == data


# -------------------------------------------------------------- the dissector


@pytest.mark.parametrize("path", SESSIONS)
def test_pcap_reassembles_to_the_transcript(path: Path) -> None:
    doc = _load(path)
    transcript = Transcript.from_json(doc["directions"])
    flows = dissect_cli.read_flows(str(path.with_suffix(".pcap")))
    ep = Endpoints()
    by_dir = {"c2s" if f.dst[1] == ep.server_port else "s2c": f.reassemble()[0] for f in flows}
    for d in DIRECTIONS:
        assert by_dir.get(d, b"") == transcript.data(d)


def test_dissect_prints_every_frame(capsys: pytest.CaptureFixture[str]) -> None:
    path = VECTORS / "sessions" / "v2" / "ref-go" / "hold.pcap"
    assert dissect_cli.main([str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    doc = _load(path.with_suffix(".json"))
    total = sum(len(doc["directions"][d]["frames"]) for d in DIRECTIONS)
    assert len(lines) == total + 1  # and the heading
    assert any("c>s  v2  SYN  3" in line for line in lines)
    assert any("s>c  v2  UPD  3" in line and "window=4096" in line for line in lines)
    assert not any("!!" in line for line in lines)


def test_dissect_marks_protocol_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad header is named with smuxref's class; what follows is shown unchecked."""
    transcript = Transcript()
    transcript.add("c2s", 0.001, Frame(1, Cmd.SYN, 3).encode() + Frame(1, Cmd.SYN, 2).encode())
    transcript.add("s2c", 0.002, Frame(1, Cmd.NOP, 7).encode())
    transcript.add("c2s", 0.003, bytes.fromhex("0105000003000000") + Frame(1, Cmd.FIN, 3).encode())
    transcript.add("c2s", 0.004, Frame(1, Cmd.PSH, 3, b"cut").encode()[:9])
    transcript.end("c2s", 0.005)
    pcap = tmp_path / "bad.pcap"
    pcap.write_bytes(pcap_bytes(transcript))
    assert dissect_cli.main([str(pcap), "--port", "29900"]) == 0
    out = capsys.readouterr().out
    assert "!! UnknownCommandError" in out
    assert "CMD5" in out
    assert "~ SYN id of the wrong parity" in out  # SYN 2 from the client
    assert "~ NOP with a stream id" in out
    assert "FIN  3" in out
    assert out.rstrip().splitlines()[-2].endswith("?")
    assert "TruncatedFrameError" in out.splitlines()[-1]
