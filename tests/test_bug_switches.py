"""Every ``--bug`` switch of the reference peer really changes what goes on the wire.

The gate test (test_gate_catches_bugs.py) proves the conformance suite catches each
switch; these tests prove the switches themselves, at the engine level, so that a
switch which silently stopped doing anything (say, after a refactor of the engine's
seams) fails here and not as a mysterious "bug not caught" in the gate.  Each test
drives the buggy engine and its clean twin with the same input and asserts the exact
wrong bytes or events.
"""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
from collections.abc import Callable

import pytest
from support import fin, nop, psh, syn, upd

from smuxref import (
    Cmd,
    Config,
    DataReceived,
    Engine,
    Frame,
    FrameDecoder,
    InvalidVersionError,
    KeepAliveTimeoutError,
    SessionEnded,
    StreamEnded,
    StreamOpened,
    UnknownCommandError,
    Upd,
    encode_raw,
)
from smuxref.aio import Session
from smuxref.config import Config as _Config
from smuxref.peer.options import UNSUPPORTED, parse_options
from smuxref_conformance import bugs

TESTED: set[str] = set()


def covers(name: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Mark a test as the proof for switch ``name`` (checked by test_every_switch_is_tested)."""
    assert name in bugs.BUGS, name
    TESTED.add(name)
    return lambda f: f


def make(name: str | None, version: int = 1, *, client: bool = False, **config: object) -> Engine:
    """An engine with switch ``name`` (None: the clean engine), keepalive off unless asked."""
    fields: dict[str, object] = {"version": version, "keepalive_disabled": True, **config}
    if "keepalive_interval" in config:
        fields["keepalive_disabled"] = False
    cls = bugs.engine_class([name] if name else [])
    return cls(_Config(**fields), client=client)  # type: ignore[arg-type]


def pair(
    name: str, version: int = 1, *, client: bool = False, **config: object
) -> tuple[Engine, Engine]:
    """(buggy, clean) engines with the same configuration."""
    return (
        make(name, version, client=client, **config),
        make(None, version, client=client, **config),
    )


def frames_of(wire: bytes) -> list[Frame]:
    decoder = FrameDecoder(strict=False)
    out = decoder.feed(wire)
    assert decoder.buffered == 0, wire.hex()
    return out


def accepted_stream(engine: Engine, sid: int = 3, version: int = 1, data: bytes = b"") -> None:
    """The peer opened ``sid`` (optionally with data) and the application accepted it."""
    engine.receive_data(syn(sid, version) + (psh(sid, data, version) if data else b""))
    engine.accept(sid)


# ---------------------------------------------------------------------- outgoing frames


@covers("len-big-endian")
@pytest.mark.parametrize("version", [1, 2])
def test_len_big_endian(version: int) -> None:
    buggy, clean = pair("len-big-endian", version)
    for engine in (buggy, clean):
        accepted_stream(engine, 3, version)
        engine.send(3, b"hello")
    assert clean.data_to_send() == bytes([version, 2, 5, 0, 3, 0, 0, 0]) + b"hello"
    assert buggy.data_to_send() == bytes([version, 2, 0, 5, 3, 0, 0, 0]) + b"hello"
    # LEN 0 reads the same both ways: SYN, FIN and NOP are unaffected.
    buggy.close_write(3)
    assert buggy.data_to_send() == fin(3, version)


@covers("fin-wrong-version")
def test_fin_wrong_version() -> None:
    buggy, clean = pair("fin-wrong-version", 2, client=True)
    for engine in (buggy, clean):
        engine.open_stream()
        engine.send(3, b"x")
        engine.close_write(3)
    assert clean.data_to_send() == syn(3, 2) + psh(3, b"x", 2) + fin(3, 2)
    assert buggy.data_to_send() == syn(3, 2) + psh(3, b"x", 2) + fin(3, 1)
    # In a version 1 session the constant 1 happens to be right.
    v1 = make("fin-wrong-version", 1, client=True)
    v1.open_stream()
    v1.close_write(3)
    assert v1.data_to_send() == syn(3) + fin(3)


@covers("no-keepalive")
def test_no_keepalive() -> None:
    buggy, clean = pair("no-keepalive", 1, keepalive_interval=1.0, keepalive_timeout=3.0)
    for engine in (buggy, clean):
        assert engine.handle_timer(1.0) == []
    assert clean.data_to_send() == nop()
    assert buggy.data_to_send() == b""
    # The timeout side still works: the bug only drops the NOP frames.
    events = buggy.handle_timer(3.0)
    assert isinstance(events[-1], SessionEnded)
    assert isinstance(events[-1].error, KeepAliveTimeoutError)


@covers("no-fin")
def test_no_fin() -> None:
    buggy, clean = pair("no-fin", 1)
    for engine in (buggy, clean):
        accepted_stream(engine, 3)
        accepted_stream(engine, 5)
        engine.send(3, b"data")
        engine.close_stream(3)
        engine.close_write(5)
    assert clean.data_to_send() == psh(3, b"data") + fin(3) + fin(5)
    assert buggy.data_to_send() == psh(3, b"data")


@covers("upd-consumed-headers")
def test_upd_consumed_counts_headers() -> None:
    buggy, clean = pair("upd-consumed-headers", 2)
    for engine in (buggy, clean):
        engine.receive_data(syn(3, 2) + psh(3, b"hello", 2) + psh(3, b"abc", 2))
        engine.accept(3)
        engine.consumed(3, 8)
    assert clean.data_to_send() == upd(3, 8, 65536)
    assert buggy.data_to_send() == upd(3, 8 + 2 * 8, 65536)  # two PSH headers counted


# ---------------------------------------------------------------------------- sending


@covers("ignore-peer-window")
def test_ignore_peer_window() -> None:
    buggy, clean = pair("ignore-peer-window", 2, client=True)
    for engine in (buggy, clean):
        engine.open_stream()
        engine.data_to_send()
    data = bytes(300_000)
    assert clean.send(3, data) == 262_144
    assert buggy.send(3, data) == 300_000
    assert sum(len(f.data) for f in frames_of(buggy.data_to_send())) == 300_000
    # A UPD closing the window does not stop it either.
    buggy.receive_data(upd(3, 0, 0))
    assert buggy.send(3, b"more") == 4
    assert frames_of(buggy.data_to_send()) == [Frame(2, Cmd.PSH, 3, b"more")]


@covers("ignore-max-frame-size")
def test_ignore_max_frame_size() -> None:
    buggy, clean = pair("ignore-max-frame-size", 1, max_frame_size=1024)
    for engine in (buggy, clean):
        accepted_stream(engine)
        engine.send(3, bytes(5000))
    assert [len(f.data) for f in frames_of(clean.data_to_send())] == [1024] * 4 + [904]
    assert [len(f.data) for f in frames_of(buggy.data_to_send())] == [5000]
    big = make("ignore-max-frame-size", 1, max_frame_size=1024)
    accepted_stream(big)
    big.send(3, bytes(70_000))
    assert [len(f.data) for f in frames_of(big.data_to_send())] == [65535, 4465]


@covers("upd-in-v1")
def test_upd_in_v1() -> None:
    buggy, clean = pair("upd-in-v1", 1)
    for engine in (buggy, clean):
        accepted_stream(engine, 3, 1, b"hello")
        engine.consumed(3, 5)
    assert clean.data_to_send() == b""
    assert buggy.data_to_send() == encode_raw(1, Cmd.UPD, 8, 3, Upd(5, 65536).encode())
    # Version 2 is unchanged (one UPD, not two).
    v2 = make("upd-in-v1", 2)
    accepted_stream(v2, 3, 2, b"hello")
    v2.consumed(3, 5)
    assert v2.data_to_send() == upd(3, 5, 65536)


# ------------------------------------------------------------------------- stream ids


@covers("first-sid-1-or-0")
@pytest.mark.parametrize(("client", "first"), [(True, 1), (False, 0)])
def test_first_sid_is_the_seed(client: bool, first: int) -> None:
    buggy, clean = pair("first-sid-1-or-0", 1, client=client)
    assert clean.open_stream() == first + 2
    assert buggy.open_stream() == first
    assert buggy.open_stream() == first + 2
    assert buggy.data_to_send() == syn(first) + syn(first + 2)


@covers("sid-step-1")
@pytest.mark.parametrize(("client", "ids"), [(True, [3, 4, 5]), (False, [2, 3, 4])])
def test_sid_step_one(client: bool, ids: list[int]) -> None:
    buggy = make("sid-step-1", 1, client=client)
    assert [buggy.open_stream() for _ in ids] == ids
    assert buggy.data_to_send() == b"".join(syn(sid) for sid in ids)


# -------------------------------------------------------------------- incoming frames


@covers("zero-psh-eof")
def test_zero_length_psh_is_eof() -> None:
    buggy, clean = pair("zero-psh-eof", 1)
    wire = syn(3) + psh(3, b"") + psh(3, b"late")
    assert clean.receive_data(wire) == [
        StreamOpened(stream_id=3),
        DataReceived(stream_id=3, data=b"late"),
    ]
    assert buggy.receive_data(wire) == [
        StreamOpened(stream_id=3),
        StreamEnded(stream_id=3),
        DataReceived(stream_id=3, data=b"late"),
    ]


@covers("psh-current-stream")
def test_psh_goes_to_the_current_stream() -> None:
    buggy, clean = pair("psh-current-stream", 1)
    wire = syn(3) + psh(3, b"one") + syn(5) + psh(3, b"two") + psh(5, b"five")
    opened = [StreamOpened(stream_id=3), DataReceived(stream_id=3, data=b"one")]
    assert clean.receive_data(wire) == [
        *opened,
        StreamOpened(stream_id=5),
        DataReceived(stream_id=3, data=b"two"),
        DataReceived(stream_id=5, data=b"five"),
    ]
    assert buggy.receive_data(wire) == [
        *opened,
        StreamOpened(stream_id=5),
        DataReceived(stream_id=5, data=b"two"),  # stream 3's data on stream 5
        DataReceived(stream_id=5, data=b"five"),
    ]


@covers("close-on-nop")
def test_close_on_nop() -> None:
    buggy, clean = pair("close-on-nop", 1)
    assert [type(e).__name__ for e in clean.receive_data(nop(7) + syn(3))] == [
        "PingReceived",
        "StreamOpened",
    ]
    assert buggy.receive_data(nop(7) + syn(3)) == [SessionEnded(error=None)]
    assert buggy.is_closed


@covers("dup-syn-resets")
def test_duplicate_syn_resets_the_stream() -> None:
    buggy, clean = pair("dup-syn-resets", 1)
    wire = syn(3) + psh(3, b"abc") + syn(3)
    head = [StreamOpened(stream_id=3), DataReceived(stream_id=3, data=b"abc")]
    assert clean.receive_data(wire) == head
    assert buggy.receive_data(wire) == [*head, StreamOpened(stream_id=3)]
    assert clean.receive_window - buggy.receive_window == -3  # the 3 bytes were dropped


@covers("fin-replies-fin")
def test_fin_is_answered_with_fin() -> None:
    buggy, clean = pair("fin-replies-fin", 1)
    for engine in (buggy, clean):
        accepted_stream(engine, 3, 1, b"data")
        engine.receive_data(fin(3))
    assert clean.data_to_send() == b""
    assert buggy.data_to_send() == fin(3)
    assert clean.send(3, b"echo") == 4  # half-closed by the peer: writing still allowed
    with pytest.raises(Exception, match="stream 3"):
        buggy.send(3, b"echo")


@covers("no-version-check")
@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("chop", [0, 1, 3])
def test_no_version_check(version: int, chop: int) -> None:
    buggy, clean = pair("no-version-check", version)
    # Headers with versions 0, the other one and 255; a payload full of version-like
    # bytes stays intact, whatever the segmentation.
    body = bytes([0, 1, 2, 255]) * 3
    wire = (
        encode_raw(0, Cmd.SYN, 0, 3)
        + encode_raw(3 - version, Cmd.PSH, len(body), 3, body)
        + encode_raw(255, Cmd.NOP, 0, 0)
    )
    events = clean.receive_data(wire)
    assert isinstance(events[-1], SessionEnded)
    assert isinstance(events[-1].error, InvalidVersionError)
    pieces = [wire[i : i + chop] for i in range(0, len(wire), chop)] if chop else [wire]
    got = [e for piece in pieces for e in buggy.receive_data(piece)]
    assert [type(e).__name__ for e in got] == ["StreamOpened", "DataReceived", "PingReceived"]
    assert got[1] == DataReceived(stream_id=3, data=body)
    # The other checks still run: an unknown command is refused.
    assert isinstance(buggy.receive_data(encode_raw(7, 9, 0, 3))[-1].error, UnknownCommandError)  # type: ignore[attr-defined]


@covers("reuse-open-id")
def test_reuse_open_id() -> None:
    """A server engine whose peer opened id 2 (the server's own parity): the clean
    engine's next stream is 4, the buggy one takes over 2 and the peer's data for 2 goes
    to the new stream."""
    buggy, clean = pair("reuse-open-id", 1)
    for engine in (buggy, clean):
        engine.receive_data(syn(2))
        engine.accept(2)
    assert clean.open_stream() == 4
    assert buggy.open_stream() == 2
    assert buggy.stream_ids == [2]  # one entry left: the peer's stream is orphaned


@covers("syn-before-register")
def test_syn_before_register() -> None:
    """Frames for a stream just opened, in the first input chunk after the open, are
    dropped; the next chunk reaches the stream."""
    buggy, clean = pair("syn-before-register", 1)
    for engine in (buggy, clean):
        assert engine.open_stream() == 2
        engine.data_to_send()
    assert clean.receive_data(psh(2, b"early")) == [DataReceived(stream_id=2, data=b"early")]
    assert buggy.receive_data(psh(2, b"early") + fin(2)) == []
    assert buggy.receive_data(psh(2, b"late")) == [DataReceived(stream_id=2, data=b"late")]


@covers("half-close-drops-unread")
def test_half_close_drops_unread() -> None:
    """Half-closed stream, then data and FIN in one chunk: the clean engine delivers the
    data before the end, the buggy one only the end; data alone still arrives."""
    buggy, clean = pair("half-close-drops-unread", 1)
    for engine in (buggy, clean):
        accepted_stream(engine, 3, 1)
        engine.close_write(3)
    assert clean.receive_data(psh(3, b"data") + fin(3)) == [
        DataReceived(stream_id=3, data=b"data"),
        StreamEnded(stream_id=3),
    ]
    assert buggy.receive_data(psh(3, b"data") + fin(3)) == [StreamEnded(stream_id=3)]
    other, _ = pair("half-close-drops-unread", 1)
    accepted_stream(other, 3, 1)
    other.close_write(3)
    assert other.receive_data(psh(3, b"data")) == [DataReceived(stream_id=3, data=b"data")]


# ---------------------------------------------------------------------------- reading


@covers("no-receive-buffer-limit")
def test_no_receive_buffer_limit() -> None:
    buggy, clean = pair("no-receive-buffer-limit", 1, max_receive_buffer=100, max_stream_buffer=100)
    wire = syn(3) + psh(3, bytes(150)) + syn(5)
    for engine in (buggy, clean):
        engine.accept(3)
    assert clean.receive_data(wire)[-1] == DataReceived(stream_id=3, data=bytes(150))
    assert clean.reading_paused
    assert buggy.receive_data(wire)[-1] == StreamOpened(stream_id=5)
    assert not buggy.reading_paused
    assert buggy.receive_window == -50


@covers("keepalive-never-times-out")
def test_keepalive_never_times_out() -> None:
    buggy, clean = pair(
        "keepalive-never-times-out", 1, keepalive_interval=1.0, keepalive_timeout=2.0
    )
    ended = clean.handle_timer(1.0) + clean.handle_timer(2.0)
    assert isinstance(ended[-1], SessionEnded)
    for t in range(1, 11):
        assert buggy.handle_timer(float(t)) == []
    assert not buggy.is_closed
    assert buggy.data_to_send() == nop() * 10  # NOPs still go out


@covers("keepalive-timeout-early")
def test_keepalive_timeout_early() -> None:
    buggy, clean = pair("keepalive-timeout-early", 1, keepalive_interval=0.1, keepalive_timeout=2.0)
    assert clean.handle_timer(1.0) == []
    ended = buggy.handle_timer(1.0)
    assert isinstance(ended[-1], SessionEnded)
    assert isinstance(ended[-1].error, KeepAliveTimeoutError)
    assert isinstance(clean.handle_timer(2.0)[-1], SessionEnded)


# ------------------------------------------------------------------ catalogue and wiring


def test_every_switch_is_tested() -> None:
    assert set(bugs.BUGS) == TESTED
    assert len(bugs.BUGS) >= 12


@pytest.mark.parametrize("name", sorted(bugs.BUGS))
def test_switch_is_described(name: str) -> None:
    bug = bugs.BUGS[name]
    assert bug.summary, f"{name}: the engine subclass needs a docstring saying what is wrong"
    assert re.fullmatch(r"\d+\.\d+", bug.spec)
    assert issubclass(bug.engine, Engine)


def test_switches_compose() -> None:
    cls = bugs.engine_class(["fin-wrong-version", "len-big-endian", "fin-wrong-version"])
    engine = cls(Config(version=2, keepalive_disabled=True), client=True)
    engine.open_stream()
    engine.send(3, b"hi")
    engine.close_write(3)
    assert engine.data_to_send() == syn(3, 2) + bytes([2, 2, 0, 2, 3, 0, 0, 0]) + b"hi" + fin(3, 1)
    assert bugs.engine_class([]) is Engine
    with pytest.raises(KeyError):
        bugs.engine_class(["no-such-bug"])


class _NullLink:
    """A transport that accepts writes and does nothing else."""

    def __init__(self) -> None:
        self.written = bytearray()

    def write(self, data: bytes) -> None:
        self.written += data

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def close(self) -> None: ...
    async def wait_writable(self) -> None: ...
    async def wait_closed(self) -> None: ...


async def test_injected_engine_reaches_asyncio_sessions() -> None:
    """``engine=`` is how ``--bug`` reaches a session: that session runs the switch,
    and a session made without it runs the plain engine (nothing was patched)."""
    link = _NullLink()
    session = Session(
        link,
        Config(keepalive_disabled=True),
        client=True,
        engine=bugs.engine_class(["first-sid-1-or-0"]),
    )
    plain = Session(_NullLink(), Config(keepalive_disabled=True), client=True)
    assert type(plain.engine) is Engine
    plain.close()
    assert isinstance(session.engine, bugs.FirstSidOneOrZero)
    stream = await session.open_stream()
    assert stream.id == 1
    assert bytes(link.written) == syn(1)
    session.close()
    await asyncio.sleep(0)  # let the loop run the close callbacks


@pytest.mark.parametrize("name", sorted(bugs.BUGS))
def test_peer_accepts_the_option(name: str) -> None:
    argv = ["--role", "server", "--addr", "127.0.0.1:0", "--version", "2"]
    assert parse_options([*argv, "--bug", name], sorted(bugs.BUGS)).bugs == (name,)
    with pytest.raises(SystemExit) as exc:
        parse_options([*argv, "--bug", name + "-nope"], sorted(bugs.BUGS))
    assert exc.value.code == UNSUPPORTED


def test_shipped_peer_offers_no_switch() -> None:
    """The shipped peer refuses ``--bug`` as an unsupported option (CONTRACT.md's
    status 127): the switches live with the suite, not in smuxref."""
    argv = ["--role", "server", "--addr", "127.0.0.1:0", "--version", "2"]
    with pytest.raises(SystemExit) as exc:
        parse_options([*argv, "--bug", "no-fin"], [])
    assert exc.value.code == UNSUPPORTED
    proc = subprocess.run(
        [sys.executable, "-m", "smuxref.peer", *argv, "--bug", "no-fin"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == UNSUPPORTED, proc.stderr


def test_peer_program_runs_the_switch() -> None:
    """End to end through ``python -m smuxref_conformance.bugs --bug``: the FIN of an echo
    stream comes back with VER 1 in a version 2 session."""
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "smuxref_conformance.bugs", "--role", "server"),
            *("--addr", "127.0.0.1:0", "--version", "2", "--no-keepalive"),
            *("--bug", "fin-wrong-version"),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        match = re.fullmatch(r"LISTENING (\S+):(\d+)\n", line)
        assert match is not None, line
        with socket.create_connection((match[1], int(match[2])), timeout=10) as sock:
            sock.sendall(syn(3, 2) + psh(3, b"ECHO\nping", 2) + fin(3, 2))
            decoder = FrameDecoder(strict=False)
            got: list[Frame] = []
            while not any(f.cmd == Cmd.FIN for f in got):
                data = sock.recv(4096)
                assert data, f"connection closed; frames so far {got}"
                got += decoder.feed(data)
        assert Frame(2, Cmd.PSH, 3, b"ping") in got
        assert Frame(1, Cmd.FIN, 3) in got
    finally:
        proc.kill()
        proc.communicate(timeout=10)
