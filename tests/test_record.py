"""The recorder (``python -m smuxref_conformance.record``): relay, pcap, replay, promote,
repeatability.

The slow checks need peers: recording twice must give the same frames (smuxref's own
peer always, the Go peer when it can be built), and replaying the driving side of a
stored session to a fresh peer of the recorded implementation must give the recorded
answer.  Both skip, saying why, when the Go peer cannot be built.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped, unused-ignore]
import pytest

from smuxref import Cmd, Frame
from smuxref_conformance import record as record_cli
from smuxref_conformance.recording import recorder, replay
from smuxref_conformance.recording.pcap import Endpoints, pcap_bytes
from smuxref_conformance.recording.peers import (
    Impl,
    Program,
    find_go_peer,
    go_program,
    ref_program,
)
from smuxref_conformance.recording.relay import RecordingRelay
from smuxref_conformance.recording.scenarios import by_name
from smuxref_conformance.recording.transcript import (
    DIRECTIONS,
    Direction,
    Transcript,
    compare_frames,
    dumps_session,
    finished_streams,
    settled_frames,
)

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
SESSION_FILES = sorted((VECTORS / "sessions").glob("v*/*/*.json"))


def _load(path: Path) -> Any:
    return json.loads(path.read_text())


def _sessions(target_impl: str) -> list[Any]:
    return [
        pytest.param(p, id=str(p.relative_to(VECTORS / "sessions")))
        for p in SESSION_FILES
        if replay.target(_load(p))[1] == target_impl
    ]


@pytest.fixture(scope="session")
def programs() -> dict[Impl, Program]:
    """smuxref's peer, and the Go peer when it exists or can be built."""
    out: dict[Impl, Program] = {"smuxref": ref_program()}
    binary = find_go_peer()
    if binary is not None:
        out["go"] = go_program(binary)
    return out


@pytest.fixture
def go(programs: dict[Impl, Program]) -> Program:
    if "go" not in programs:
        pytest.skip("the Go peer cannot be built here (no go toolchain or go-peer/build.sh)")
    return programs["go"]


# ----------------------------------------------------------------- the pcap


def _sample() -> Transcript:
    t = Transcript()
    t.add("c2s", 0.001, Frame(1, Cmd.SYN, 3).encode() + Frame(1, Cmd.PSH, 3, b"ECHO\n").encode())
    t.add("s2c", 0.002, Frame(1, Cmd.PSH, 3, b"hi").encode())
    # Longer than one segment can carry: the pcap splits it.
    t.add("s2c", 0.003, Frame(1, Cmd.PSH, 3, b"y" * 65535).encode() + b"z" * 100)
    t.end("c2s", 0.004)
    t.end("s2c", 0.005)
    return t


def test_pcap_packets_are_consistent_tcp(tmp_path: Path) -> None:
    """Handshake, sequence and acknowledgement numbers, checksums, FIN, segment sizes."""
    inet = pytest.importorskip("scapy.layers.inet")
    utils = pytest.importorskip("scapy.utils")
    IP, TCP = inet.IP, inet.TCP

    transcript = _sample()
    pcap = tmp_path / "sample.pcap"
    pcap.write_bytes(pcap_bytes(transcript))
    ep = Endpoints()
    packets = list(utils.rdpcap(str(pcap)))
    flags = [str(p[TCP].flags) for p in packets[:3]]
    assert flags == ["S", "SA", "A"]
    seq = {ep.client_port: ep.client_isn + 1, ep.server_port: ep.server_isn + 1}
    data: dict[int, bytes] = {ep.client_port: b"", ep.server_port: b""}
    for pkt in packets[3:]:
        tcp = pkt[TCP]
        other = ep.server_port if tcp.sport == ep.client_port else ep.client_port
        assert tcp.seq == seq[tcp.sport]
        assert tcp.ack == seq[other]
        assert len(pkt) <= 65535
        payload = bytes(tcp.payload)
        data[tcp.sport] += payload
        seq[tcp.sport] += len(payload) + (1 if "F" in str(tcp.flags) else 0)
        for layer in (IP, TCP):
            copy = pkt[layer].copy()
            del copy.chksum
            assert layer(bytes(copy)).chksum == pkt[layer].chksum
    assert data[ep.client_port] == transcript.data("c2s")
    assert data[ep.server_port] == transcript.data("s2c")
    assert [str(p[TCP].flags) for p in packets].count("FA") == 2


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
@pytest.mark.parametrize(
    "path",
    [pytest.param(p, id=str(p.relative_to(VECTORS))) for p in sorted(VECTORS.glob("**/*.pcap"))],
)
def test_pcap_opens_in_tshark(path: Path) -> None:
    """No malformed packet, no warning or error in tshark's expert info, checksums good."""
    done = subprocess.run(
        [
            "tshark",
            "-r",
            str(path),
            "-o",
            "tcp.check_checksum:TRUE",
            "-o",
            "ip.check_checksum:TRUE",
            "-V",
            "-Y",
            "_ws.malformed || _ws.expert.severity >= 6291456",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "", done.stdout[:2000]


# ---------------------------------------------------------------- the relay


async def test_relay_records_reads_and_ends() -> None:
    async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read(100)
        writer.write(data.upper())
        await writer.drain()
        assert await reader.read(100) == b""
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(upstream, "127.0.0.1", 0)
    relay = RecordingRelay(server.sockets[0].getsockname()[:2])
    try:
        reader, writer = await asyncio.open_connection(*await relay.start())
        writer.write(b"hello")
        assert await reader.readexactly(5) == b"HELLO"
        writer.write_eof()
        assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()
        await relay.wait(5)
    finally:
        await relay.close()
        server.close()
        await server.wait_closed()
    t = relay.transcript
    assert (t.data("c2s"), t.data("s2c")) == (b"hello", b"HELLO")
    assert [c.index for c in t.chunks["c2s"] + t.chunks["s2c"]] == [0, 1]
    assert t.ends["c2s"].kind == t.ends["s2c"].kind == "fin"
    assert t.ends["c2s"].t <= t.ends["s2c"].t
    assert Transcript.from_json(json.loads(json.dumps(t.to_json()))).to_json() == t.to_json()


def test_compare_frames_tolerates_only_a_raced_final_fin() -> None:
    syn, fin = Frame(1, Cmd.SYN, 3), Frame(1, Cmd.FIN, 3)
    psh = [Frame(1, Cmd.PSH, 3, b"ab"), Frame(1, Cmd.PSH, 3, b"c")]
    joined = Frame(1, Cmd.PSH, 3, b"abc")
    nop = Frame(1, Cmd.NOP, 0)
    assert compare_frames([syn, *psh, fin], [nop, syn, joined, nop, fin], set()) == ""
    assert compare_frames([syn, joined], [syn, joined, fin], {3}) == ""
    assert compare_frames([syn, joined], [syn, joined, fin], set()) != ""
    assert compare_frames([syn, joined], [syn, Frame(1, Cmd.PSH, 3, b"abd")], {3}) != ""


def test_session_json_layout() -> None:
    """One line per chunk and per frame; loads back to the same document."""
    path = VECTORS / "sessions" / "v1" / "ref-go" / "echo.json"
    doc = _load(path)
    assert dumps_session(doc) == path.read_text()
    assert all(line.count("{") <= 1 for line in path.read_text().splitlines())


# ------------------------------------------------------- command line, promote


def test_list_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    assert record_cli.main(["--list"]) == 0
    out = capsys.readouterr().out
    for name in ("echo", "echo-100", "half-close", "keepalive", "hold", "big-frame", "exit"):
        assert f"{name} " in out


def test_promote_appends_a_vector(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    promoted = tmp_path / "promoted.json"
    frames = VECTORS / "frames.json"
    argv = ["promote", "--file", str(promoted), "--frames-file", str(frames), "--version", "2"]
    hex_ = "0202ffff03000000"
    assert record_cli.main([*argv, "--hex", hex_, "--comment", "hypothesis: cut at LEN"]) == 0
    first = json.loads(capsys.readouterr().out)
    top = max(t["tcId"] for g in _load(frames)["testGroups"] for t in g["tests"])
    assert first["tcId"] > top
    assert first["result"] == "invalid"
    assert first["error"] == "TruncatedFrameError"
    assert "Promoted" in first["flags"]
    assert record_cli.main([*argv, "--hex", "02000000 02000000", "--comment", "own parity"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["tcId"] == first["tcId"] + 1
    assert second["result"] == "acceptable"
    assert record_cli.main([*argv, "--hex", hex_, "--comment", "again"]) == 1
    doc = _load(promoted)
    assert doc["numberOfTests"] == 2
    schema = _load(VECTORS / "schema" / "frames.schema.json")
    jsonschema.Draft7Validator(schema).validate(doc)


# ---------------------------------------------- recording twice, replaying


REPEATED = ("echo", "half-close", "open", "open-echo", "exit", "hold", "srv-open")


async def _record_twice(
    name: str, version: int, pairing: tuple[Impl, Impl], programs: dict[Impl, Program]
) -> None:
    scenario = by_name(name)
    runs = [await recorder.record(scenario, version, pairing, programs) for _ in range(2)]
    driver = "s2c" if scenario.kind == "server" else "c2s"
    for d in DIRECTIONS:
        other: Direction = "s2c" if d == "c2s" else "c2s"
        a, b = (settled_frames(r.transcript, d, version) for r in runs)
        finished = finished_streams(runs[0].transcript, other, version)
        assert compare_frames(a, b, finished if d != driver else set()) == ""
    stored = VECTORS / "sessions" / f"{recorder.session_id(version, pairing, name)}.json"
    if stored.exists():
        old = Transcript.from_json(_load(stored)["directions"])
        for d in DIRECTIONS:
            back: Direction = "s2c" if d == "c2s" else "c2s"
            finished = finished_streams(old, back, version)
            got = settled_frames(runs[0].transcript, d, version)
            assert compare_frames(settled_frames(old, d, version), got, finished) == ""


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("name", [n for n in REPEATED if by_name(n).kind == "client"])
async def test_recording_twice_gives_the_same_frames_ref(
    name: str, version: int, programs: dict[Impl, Program]
) -> None:
    """smuxref on both sides: the driver against ``python -m smuxref.peer``, no Go needed."""
    await _record_twice(name, version, ("smuxref", "smuxref"), programs)


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("name", REPEATED)
async def test_recording_twice_gives_the_same_frames_go(
    name: str, version: int, programs: dict[Impl, Program], go: Program
) -> None:
    """Against the Go peer, in the pairing the vectors store (and the stored vector too)."""
    await _record_twice(name, version, by_name(name).pairings[0], programs)


@pytest.mark.parametrize("path", _sessions("go"))
async def test_replay_to_go_gives_the_recorded_answer(
    path: Path, programs: dict[Impl, Program], go: Program
) -> None:
    assert await replay.replay_and_compare(_load(path), programs) == ""


@pytest.mark.parametrize("path", _sessions("smuxref"))
async def test_replay_to_smuxref_gives_the_recorded_answer(
    path: Path, programs: dict[Impl, Program]
) -> None:
    assert await replay.replay_and_compare(_load(path), programs) == ""
