"""The vectors under ``vectors/`` against smuxref: codec vectors and recorded sessions.

Codec vectors (``frames.json``, ``promoted.json``) carry results computed from SPEC.md's
rules by a separate implementation (``smuxref_conformance.recording.codec_rules``) and Go's
verdicts; here smuxref's decoder and engine must agree with every one of them, however
the bytes are split.  Session vectors must decode to the frames they list, re-encode to
the bytes they hold, and match their pcap.  Every file is checked against its schema.
"""

from __future__ import annotations

import json
import runpy
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped, unused-ignore]
import pytest

from smuxref import Cmd, Config, Engine, Frame, FrameDecoder, decode_frame
from smuxref.errors import ProtocolError
from smuxref.events import SessionEnded
from smuxref_conformance.recording.codec_rules import (
    Receiver,
    delivered_streams,
    expected_go_outcome,
)
from smuxref_conformance.recording.pcap import pcap_bytes
from smuxref_conformance.recording.transcript import (
    DIRECTIONS,
    Transcript,
    decode_direction,
    frame_json,
)

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
SCHEMAS = VECTORS / "schema"
CODEC_FILES = [p for p in (VECTORS / "frames.json", VECTORS / "promoted.json") if p.exists()]
SESSION_FILES = sorted((VECTORS / "sessions").glob("v*/*/*.json"))


@cache
def _load(path: Path) -> Any:
    return json.loads(path.read_text())


def _codec_tests() -> Iterator[Any]:
    for path in CODEC_FILES:
        for group in _load(path)["testGroups"]:
            for test in group["tests"]:
                yield pytest.param(group, test, id=f"{path.stem}-{test['tcId']}")


CODEC_TESTS = list(_codec_tests())
SESSIONS = [pytest.param(p, id=str(p.relative_to(VECTORS / "sessions"))) for p in SESSION_FILES]


def _expected_frames(test: dict[str, Any]) -> list[Frame]:
    return [
        Frame(f["version"], Cmd[f["cmd"]], f["sid"], bytes.fromhex(f["data"]))
        for f in test["frames"]
    ]


def _decode(
    version: int, pieces: list[bytes], max_frame_size: int = 65535
) -> tuple[list[Frame], str | None]:
    """Feed ``pieces`` then end the stream; the frames and the error class name, if any."""
    decoder = FrameDecoder(version, max_frame_size)
    frames: list[Frame] = []
    try:
        for piece in pieces:
            frames += decoder.feed(piece)
        decoder.close()
    except ProtocolError as exc:
        return frames + getattr(exc, "frames", []), type(exc).__name__
    return frames, None


# ------------------------------------------------------------------ schemas


@pytest.mark.parametrize(
    ("schema", "files"),
    [
        pytest.param("frames.schema.json", CODEC_FILES, id="codec"),
        pytest.param("session.schema.json", SESSION_FILES, id="sessions"),
        pytest.param("index.schema.json", [VECTORS / "sessions" / "index.json"], id="index"),
    ],
)
def test_files_match_their_schema(schema: str, files: list[Path]) -> None:
    validator = jsonschema.Draft7Validator(_load(SCHEMAS / schema))
    validator.check_schema(validator.schema)
    assert files
    for path in files:
        errors = [f"{e.json_path}: {e.message[:200]}" for e in validator.iter_errors(_load(path))]
        assert not errors, f"{path}: {errors[:5]}"


# ------------------------------------------------------------- codec vectors


def test_codec_vector_inventory() -> None:
    """Enough vectors, every command, error class and result; tcIds never repeat."""
    tests = [p.values[1] for p in CODEC_TESTS]
    assert len(tests) >= 200
    ids = [t["tcId"] for t in tests]
    assert len(ids) == len(set(ids))
    retired = {i for path in CODEC_FILES for i in _load(path)["retiredTcIds"]}
    assert not retired & set(ids)
    assert {f["cmd"] for t in tests for f in t["frames"]} == {c.name for c in Cmd}
    named = {t.get("error") or t.get("strictError") for t in tests} - {None}
    assert named == {
        "InvalidVersionError",
        "UnknownCommandError",
        "InvalidLengthError",
        "TruncatedFrameError",
        "StreamIdError",
    }
    assert {t["result"] for t in tests} == {"valid", "invalid", "acceptable"}
    for path in CODEC_FILES:
        doc = _load(path)
        assert doc["numberOfTests"] == sum(len(g["tests"]) for g in doc["testGroups"])
        used = {flag for g in doc["testGroups"] for t in g["tests"] for flag in t["flags"]}
        assert used <= set(doc["notes"]), f"{path}: flags without a note"


def test_frames_json_is_what_the_generator_writes() -> None:
    """``vectors/generate_frames.py --check``: the file is reproducible from the script."""
    module = runpy.run_path(str(VECTORS / "generate_frames.py"), run_name="generate_frames")
    assert module["main"](["--check"]) == 0


@pytest.mark.parametrize(("group", "test"), CODEC_TESTS)
def test_decoder_agrees(group: dict[str, Any], test: dict[str, Any]) -> None:
    """Whole, and one byte at a time: the same frames, then the same error (or none)."""
    data = bytes.fromhex(test["hex"])
    want = (_expected_frames(test), test.get("error"))
    assert _decode(group["version"], [data]) == want
    assert _decode(group["version"], [data[i : i + 1] for i in range(len(data))]) == want


@pytest.mark.parametrize(("group", "test"), CODEC_TESTS)
def test_decode_frame_agrees(group: dict[str, Any], test: dict[str, Any]) -> None:
    """The one-shot ``decode_frame`` walks the same frames to the same error."""
    data = bytes.fromhex(test["hex"])
    frames: list[Frame] = []
    error = None
    offset = 0
    while offset < len(data):
        try:
            frame, used = decode_frame(data, offset, version=group["version"])
        except ProtocolError as exc:
            error = type(exc).__name__
            break
        frames.append(frame)
        offset += used
    assert (frames, error) == (_expected_frames(test), test.get("error"))


@pytest.mark.parametrize(("group", "test"), CODEC_TESTS)
def test_engine_agrees(group: dict[str, Any], test: dict[str, Any]) -> None:
    """A session ends with the vector's error, or cleanly; a strict one with strictError."""
    rx = Receiver.of_group(group)
    data = bytes.fromhex(test["hex"])

    def session_error(config: Config) -> str | None:
        engine = Engine(config, client=rx.role == "client")
        events = engine.receive_data(data) + engine.connection_lost()
        ends = [e for e in events if isinstance(e, SessionEnded)]
        assert len(ends) == 1
        return None if ends[0].error is None else type(ends[0].error).__name__

    assert session_error(Config(version=rx.version)) == test.get("error")
    strict = test.get("strictError")
    if strict == "StreamIdError":
        assert session_error(Config(version=rx.version, reject_own_parity_syn=True)) == strict
    elif strict == "FrameTooLargeError":
        # Only the decoder takes a lower limit (SPEC.md 6.2); a session never does.
        frames, error = _decode(rx.version, [data], rx.max_frame_size)
        assert error == strict
        assert frames == _expected_frames(test)[: len(frames)]


@pytest.mark.parametrize(("group", "test"), CODEC_TESTS)
def test_reencoding_gives_the_bytes(group: dict[str, Any], test: dict[str, Any]) -> None:
    """Frame.encode of each decoded frame reproduces the vector's bytes, up to any error."""
    encoded = b"".join(frame.encode() for frame in _expected_frames(test))
    assert bytes.fromhex(test["hex"]).startswith(encoded)
    if test["result"] != "invalid":
        assert encoded.hex() == test["hex"]


@pytest.mark.parametrize(("group", "test"), CODEC_TESTS)
def test_go_verdict_agrees_with_spec(group: dict[str, Any], test: dict[str, Any]) -> None:
    """Go's recorded verdict is the one SPEC.md predicts (the notes explain the exceptions)."""
    go = test.get("go", {})
    if not go:
        pytest.skip("no Go verdict recorded for this vector (promoted, not yet run)")
    want = expected_go_outcome(test["result"], test.get("error"), test["flags"])
    assert go == dict.fromkeys(go, want)


@pytest.mark.parametrize("tag", ["v1.5.57", "v1.5.58"])
def test_go_verdicts_are_reproduced_by_go_peer(tag: str) -> None:
    """The recorded ``go`` verdicts come from `smux-peer vectors` (go-peer), so running it
    again against the same tag must give every outcome and every stream's bytes again."""
    from benchmarks.soak import go_binary  # noqa: PLC0415 - builds go-peer (cached)
    from smuxref_conformance.errors import HarnessError  # noqa: PLC0415

    try:
        binary = go_binary(tag)
    except HarnessError as exc:
        pytest.skip(f"no go-peer: {exc}")
    files = [str(p) for p in CODEC_FILES]
    run = subprocess.run(
        [str(binary), "vectors", *files], capture_output=True, text=True, timeout=300, check=False
    )
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout)
    vectors = [param.values for param in CODEC_TESTS]
    recorded = {
        str(test["tcId"]): test["go"][tag] for _, test in vectors if tag in test.get("go", {})
    }
    assert recorded, f"no vector records a verdict of {tag}"
    got = {tc: results[tc]["outcome"] for tc in recorded}
    assert got == recorded
    for group, test in vectors:
        if str(test["tcId"]) in recorded:
            want = delivered_streams(bytes.fromhex(test["hex"]), Receiver.of_group(group))
            assert results[str(test["tcId"])]["streams"] == want, test["tcId"]


# ----------------------------------------------------------- session vectors


def test_session_inventory() -> None:
    """At least 12 sessions per version, Go-Go and Go-smuxref both ways in each."""
    for version in (1, 2):
        docs = [_load(p) for p in SESSION_FILES if _load(p)["version"] == version]
        assert len(docs) >= 12
        pairs = {(d["client"]["impl"], d["server"]["impl"]) for d in docs}
        assert {("go", "go"), ("go", "smuxref"), ("smuxref", "go")} <= pairs
    index = _load(VECTORS / "sessions" / "index.json")
    assert index["numberOfSessions"] == len(SESSION_FILES)
    assert {s["json"] for s in index["sessions"]} == {
        str(p.relative_to(VECTORS / "sessions")) for p in SESSION_FILES
    }


@pytest.mark.parametrize("path", SESSIONS)
def test_session_decodes_to_its_frames(path: Path) -> None:
    doc = _load(path)
    transcript = Transcript.from_json(doc["directions"])
    for d in DIRECTIONS:
        frames, error = decode_direction(transcript.chunks[d], doc["version"])
        assert error is None
        assert doc["directions"][d]["error"] is None
        assert [frame_json(f) for f in frames] == doc["directions"][d]["frames"]
        summary = doc["summary"][d]
        assert summary["frames"] == len(frames)
        assert summary["bytes"] == len(transcript.data(d))
        assert summary["chunks"] == len(transcript.chunks[d])


@pytest.mark.parametrize("path", SESSIONS)
def test_session_reencodes_to_its_bytes(path: Path) -> None:
    """Encoding the decoded frames gives each direction's bytes back, whatever the split."""
    doc = _load(path)
    transcript = Transcript.from_json(doc["directions"])
    for d in DIRECTIONS:
        data = transcript.data(d)
        frames, error = _decode(doc["version"], [c.data for c in transcript.chunks[d]])
        assert error is None
        assert b"".join(f.encode() for f in frames) == data
        assert _decode(doc["version"], [data]) == (frames, None)


@pytest.mark.parametrize("path", SESSIONS)
def test_session_pcap_is_its_transcript(path: Path) -> None:
    """The pcap is the rendering of the JSON transcript, byte for byte."""
    doc = _load(path)
    transcript = Transcript.from_json(doc["directions"])
    assert (path.parent / doc["pcap"]).read_bytes() == pcap_bytes(transcript)


def test_session_ids_and_order() -> None:
    """Chunk indexes interleave both directions in one order; times only grow."""
    for path in SESSION_FILES:
        doc = _load(path)
        assert doc["id"] == str(path.relative_to(VECTORS / "sessions").with_suffix(""))
        chunks = sorted(
            (c["i"], c["t"]) for d in DIRECTIONS for c in doc["directions"][d]["chunks"]
        )
        assert [i for i, _ in chunks] == list(range(len(chunks)))
        assert [t for _, t in chunks] == sorted(t for _, t in chunks)
