"""Unit tests of the plugin's parts: --peer parsing, command lines, the raw connection,
and the rule numbers error messages cite; plus a run against a ``tcp:`` peer."""

from __future__ import annotations

import re
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from plugin_harness import REPO, peer_processes, read_until, run_inner

from smuxref import Cmd, Frame, Upd
from smuxref_conformance import errors
from smuxref_conformance.deadlines import scaled
from smuxref_conformance.errors import ConnectionNotClosed, FrameTimeout, UnexpectedFrame
from smuxref_conformance.judge.blame import WRITE_AFTER_FIN, blame_early_fin, blame_missing_fin
from smuxref_conformance.judge.expectations import peer_names
from smuxref_conformance.peers.cmdline import config_args, peer_argv
from smuxref_conformance.peers.specs import DEFAULT_GO_TAG, parse_peer, unique_ids
from smuxref_conformance.wire import FIN_GIVE_UP, STALL_GIVE_UP, RawConnection


def test_parse_peer_forms() -> None:
    assert parse_peer("ref").command[1:] == ("-m", "smuxref.peer")
    assert parse_peer("go").tag == DEFAULT_GO_TAG
    assert parse_peer("go@v1.0.7").tag == "v1.0.7"
    assert parse_peer("go@v1.0.7").id == "go@v1.0.7"
    assert parse_peer("docker:img:1").image == "img:1"
    spec = parse_peer("exec:python3 'tests/peers/my peer.py' --flag")
    assert spec.command == ("python3", "tests/peers/my peer.py", "--flag")
    assert spec.id == "exec:my peer.py"
    assert parse_peer("tcp:127.0.0.1:7000").address == ("127.0.0.1", 7000)
    assert parse_peer("tcp:[::1]:7000").address == ("::1", 7000)
    for bad in ("", "rust", "exec:", "tcp:host", "tcp:host:99999", "docker:"):
        with pytest.raises(ValueError, match="is not one of"):
            parse_peer(bad)


def test_go_native_is_the_go_peer_on_the_host() -> None:
    native = parse_peer("go-native@v1.0.7")
    assert (native.kind, native.tag, native.id) == ("go", "v1.0.7", "go-native@v1.0.7")
    assert not native.containerized
    assert native.runtime == "native"
    assert parse_peer("go-native").tag == DEFAULT_GO_TAG
    assert parse_peer("go").runtime == "container"
    assert [parse_peer(p).runtime for p in ("ref", "tcp:h:1")] == ["process", "remote"]
    # The same expectations files apply: the names include go@TAG.
    assert "go@v1.0.7" in peer_names(native)


def test_unique_ids() -> None:
    specs = unique_ids([parse_peer(p) for p in ("exec:a/p.py", "exec:b/p.py", "ref", "ref")])
    assert [s.id for s in specs] == ["exec:p.py", "exec:p.py#2", "ref"]


def test_command_lines() -> None:
    assert peer_argv("server", "127.0.0.1:0", {"version": 2}) == [
        "--role",
        "server",
        "--addr",
        "127.0.0.1:0",
        "--version",
        "2",
    ]
    assert config_args(
        {"keepalive_interval": 100, "keepalive_timeout": 500, "max_frame_size": 4096}
    ) == ["--keepalive-interval", "100", "--keepalive-timeout", "500", "--max-frame-size", "4096"]
    assert config_args({"keepalive": False, "max_stream_buffer": None}) == ["--no-keepalive"]
    bad_configs: list[tuple[dict[str, object], str]] = [
        ({"keepalive_interval": 100}, "go together"),
        ({"keepalive": False, "keepalive_timeout": 5}, "excludes"),
        ({"version": 3}, "1 or 2"),
        ({"max_frame_size": -1}, ">= 0"),
        ({"max_frame_size": True}, ">= 0"),
        ({"frame_size": 1}, "unknown peer config keys"),
    ]
    for bad, words in bad_configs:
        with pytest.raises(ValueError, match=words):
            config_args(bad)


def test_error_messages_cite_the_right_rules() -> None:
    """Each rule number the harness cites is the rule of CONTRACT.md with that subject."""
    text = (REPO / "conformance" / "CONTRACT.md").read_text()
    titles = {int(n): t for n, t in re.findall(r"^(\d+)\. \*\*(.+?)\*\*", text, re.M)}
    assert sorted(titles) == list(range(1, 23))
    assert titles[20] == "Exchange."
    assert titles[21] == "`RUN N:LINE`"
    assert titles[22] == "Client exchanges."
    assert titles[errors.RULE_COMMAND_LINE] == "Command line."
    assert titles[errors.RULE_UNSUPPORTED] == "Unsupported means exit 127."
    assert titles[errors.RULE_STDOUT] == "stdout is for the suite."
    assert titles[errors.RULE_SERVER_START] == "Server start."
    assert titles[errors.RULE_SERVER_LIFE] == "Server life."
    assert titles[errors.RULE_CLIENT_START] == "Client start."
    assert titles[errors.RULE_CLIENT_END] == "Client end."


def test_expect_frame_skips_control_and_keeps_the_rest(
    wire: tuple[RawConnection, socket.socket],
) -> None:
    conn, peer = wire
    nop, upd = Frame(2, Cmd.NOP, 0), Frame(2, Cmd.UPD, 1, Upd(0, 65536).encode())
    fin, psh = Frame(2, Cmd.FIN, 1), Frame(2, Cmd.PSH, 1, b"data")
    # Split mid-frame on purpose: the decoder must reassemble.
    wire_bytes = nop.encode() + upd.encode() + fin.encode() + psh.encode()
    peer.sendall(wire_bytes[:13])
    peer.sendall(wire_bytes[13:])
    assert conn.expect_frame(lambda f: f.cmd == Cmd.PSH, 2) == psh
    assert conn.expect_frame() == fin
    assert conn.expect_frame(control=True) == nop
    assert conn.frames == [nop, upd, fin, psh]
    assert conn.pending == [upd]
    assert [e.direction for e in conn.transcript] == ["recv", "recv"][: len(conn.transcript)]


def test_expect_frame_timeout_shows_hex(wire: tuple[RawConnection, socket.socket]) -> None:
    conn, peer = wire
    conn.open_stream(b"ECHO\n")
    peer.sendall(Frame(2, Cmd.PSH, 1, b"x").encode())
    with pytest.raises(FrameTimeout) as info:
        conn.expect_frame(lambda f: f.cmd == Cmd.FIN, 0.05, what="FIN on stream 1")
    message = str(info.value)
    assert isinstance(info.value, AssertionError)
    # The deadline is scaled by SMUX_TIMEOUT_SCALE, and the message says what it really was.
    budget = f"{scaled(0.05):.3g}"
    expected = f"expected FIN on stream 1 within {budget} s: timeout [peer fake, role server, v2]"
    assert expected in message
    assert "Frame(v2, PSH, sid=1, len=1" in message
    assert "> 02 00 00 00 01 00 00 00 02 02 05 00 01 00 00 00 45 43 48 4f 0a" in message
    assert "< 02 02 01 00 01 00 00 00 78" in message


def test_a_wait_gives_up_on_a_frame_stalled_midway(
    wire: tuple[RawConnection, socket.socket],
) -> None:
    """A PSH whose LEN promises more bytes than come (a LEN written wrong): nothing can
    match before it completes, so a wait ends once the bytes have stopped for
    STALL_GIVE_UP (scaled), not at its deadline, and says why; a patient wait (a
    silence) and a frame that completes in time are unaffected."""
    conn, peer = wire
    give_up = max(scaled(STALL_GIVE_UP), STALL_GIVE_UP)
    whole = Frame(2, Cmd.PSH, 1, b"abc").encode()
    peer.sendall(whole[:9])
    # The rest comes after a pause inside the frame that is shorter than the limit.
    rest = threading.Timer(give_up / 2, peer.sendall, [whole[9:]])
    rest.start()
    assert conn.expect_frame(timeout=600) == Frame(2, Cmd.PSH, 1, b"abc")
    rest.join()
    assert conn.gave_up is None
    peer.sendall(b"\x02\x02\x00\x05\x01\x00\x00\x00hello")  # LEN 1280, 5 bytes sent
    start = time.monotonic()
    with pytest.raises(FrameTimeout, match=r"stopped waiting: the peer's bytes stop 5"):
        conn.expect_frame(lambda f: f.cmd == Cmd.FIN, timeout=600)
    assert give_up <= time.monotonic() - start < give_up + scaled(5.0)
    assert "LEN 1280" in str(conn.gave_up)  # None before: mypy keeps that narrowing
    assert conn.stalled_mid_frame() is not None  # the gate's stall rule applies
    assert conn.stalled_mid_frame(quiet=600) is None  # not yet that long
    start = time.monotonic()
    with pytest.raises(FrameTimeout, match="timeout"):
        conn.expect_frame(lambda f: False, timeout=2 * give_up / scaled(1.0), patient=True)
    assert time.monotonic() - start >= 2 * give_up
    peer.shutdown(socket.SHUT_WR)
    with pytest.raises(FrameTimeout, match="closed"):
        conn.expect_frame(timeout=600)
    # Ended inside the frame: no byte can follow, so no quiet time is needed.
    assert "then the connection ended (eof)" in str(conn.stalled_mid_frame(quiet=600))


def test_a_wait_for_fin_gives_up_when_no_fin_comes(
    wire: tuple[RawConnection, socket.socket],
) -> None:
    """The peer echoed on a stream the suite finished but sent no FIN on any stream: a
    wait for that FIN ends after FIN_GIVE_UP (scaled) of quiet, not at its deadline;
    once the peer has sent a FIN on some stream, the wait runs to its deadline."""
    conn, peer = wire
    quiet = max(scaled(FIN_GIVE_UP), FIN_GIVE_UP)
    sid = conn.open_stream(b"ECHO\n")
    conn.send_frame(Frame(2, Cmd.PSH, sid, b"hi"))
    conn.send_frame(Frame(2, Cmd.FIN, sid))
    peer.sendall(Frame(2, Cmd.PSH, sid, b"hi").encode())
    start = time.monotonic()
    with pytest.raises(FrameTimeout, match=r"stopped waiting: .* no FIN on any stream"):
        conn.read_stream(sid, timeout=600)
    assert quiet <= time.monotonic() - start < quiet + scaled(5.0)
    peer.sendall(Frame(2, Cmd.FIN, 2).encode())
    start = time.monotonic()
    with pytest.raises(FrameTimeout, match="timeout"):
        conn.read_stream(sid, timeout=2 * quiet / scaled(1.0))
    assert time.monotonic() - start >= 2 * quiet


def test_expect_closed_and_silence(wire: tuple[RawConnection, socket.socket]) -> None:
    conn, peer = wire
    conn.expect_silence(0.05)
    peer.sendall(Frame(2, Cmd.NOP, 0).encode())
    conn.expect_silence(0.05)  # NOP does not break the silence...
    peer.sendall(Frame(2, Cmd.NOP, 0).encode())
    with pytest.raises(UnexpectedFrame, match="a frame arrived"):
        conn.expect_silence(0.5, control=True)  # ...unless asked
    with pytest.raises(ConnectionNotClosed, match="expected the peer to close"):
        conn.expect_closed(0.05)
    peer.sendall(Frame(2, Cmd.FIN, 3).encode() + b"\x02\x02\x10")
    peer.close()
    assert conn.expect_closed(2) == [Frame(2, Cmd.FIN, 3)]
    assert conn.closed == "eof"
    assert conn.trailing == b"\x02\x02\x10"
    with pytest.raises(FrameTimeout, match=r"the peer closed the connection \(eof\)"):
        conn.expect_frame(lambda f: f.cmd == Cmd.PSH, timeout=60)  # at once, not after 60 s


def test_no_fin_blame_for_a_fin_sent_after_the_peer_closed(
    wire: tuple[RawConnection, socket.socket],
) -> None:
    """A peer that answers, then closes the connection (a protocol error it saw), owed no
    FIN for the suite's FIN sent after that: the case keeps its own verdict instead of
    an inconclusive naming smux/10.4/fin-after-all-data."""
    conn, peer = wire
    sid = conn.open_stream(b"ECHO\none")
    peer.sendall(Frame(2, Cmd.PSH, sid, b"one").encode())
    peer.shutdown(socket.SHUT_WR)  # EOF for the suite; its FIN can still be written
    assert conn.expect_closed(2) == [Frame(2, Cmd.PSH, sid, b"one")]
    conn.send_raw(Frame(2, Cmd.FIN, sid).encode())
    assert blame_missing_fin(conn.frames, conn.sent_frames()) is not None
    assert [f.cmd for f in conn.sent_frames(while_open=True)] == [Cmd.SYN, Cmd.PSH]
    assert blame_missing_fin(conn.frames, conn.sent_frames(while_open=True)) is None


def _echo_streams(*sids: int) -> list[Frame]:
    """What the suite sends to open ECHO streams with 3 own bytes each, then FIN them."""
    return (
        [Frame(2, Cmd.SYN, s) for s in sids]
        + [Frame(2, Cmd.PSH, s, b"ECHO\n" + bytes([s]) * 3) for s in sids]
        + [Frame(2, Cmd.FIN, s) for s in sids]
    )


def test_early_fin_blame_for_a_short_echo_but_not_for_crossed_data() -> None:
    """A peer that FINs an ECHO stream having echoed only part of what it got lost its
    writes at the FIN (smux/10.2/write-after-peer-fin).  One that echoed a stream's
    bytes on another stream crossed the data: the short echoes follow from that, and the
    case's own check must judge it, not a blame naming a case the peer may pass."""
    sent = _echo_streams(1, 3)
    short = [Frame(2, Cmd.PSH, 1, b"\x01"), Frame(2, Cmd.FIN, 1), Frame(2, Cmd.FIN, 3)]
    found = blame_early_fin(short, sent)
    assert found is not None
    assert found[0] == WRITE_AFTER_FIN
    assert "echoed 1 of the 3 bytes" in found[1]
    # Stream 3 carries its own bytes and stream 1's; stream 1 echoes nothing.
    crossed = [
        Frame(2, Cmd.PSH, 3, b"\x03\x03\x03\x01\x01\x01"),
        Frame(2, Cmd.FIN, 1),
        Frame(2, Cmd.FIN, 3),
    ]
    assert blame_early_fin(crossed, sent) is None
    # The same bytes, but foreign rather than more: still crossed.
    swapped = [
        Frame(2, Cmd.PSH, 3, b"\x01\x01\x01"),
        Frame(2, Cmd.FIN, 1),
        Frame(2, Cmd.FIN, 3),
    ]
    assert blame_early_fin(swapped, sent) is None
    whole = [Frame(2, Cmd.PSH, s, bytes([s]) * 3) for s in (1, 3)] + short[1:]
    assert blame_early_fin(whole, sent) is None


def test_a_send_after_the_peer_closed_is_unsent_and_says_so(
    wire: tuple[RawConnection, socket.socket],
) -> None:
    """A write refused because the peer closed the connection reached no session: it is
    not counted as sent (no FIN owed for it), the transcript and pcap show it apart, and
    the error says the peer closed the connection, keeping its type for the callers that
    stop on it."""
    conn, peer = wire
    sid = conn.open_stream(b"ECHO\n")
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.close()  # a reset: the next sends fail
    fin = Frame(2, Cmd.FIN, sid).encode()

    def send_until_refused() -> None:
        for _ in range(50):  # the first write after a reset may still be accepted
            conn.send_raw(fin)

    with pytest.raises((BrokenPipeError, ConnectionResetError)) as raised:
        send_until_refused()
    assert "the peer had closed the connection when the suite wrote 8 more bytes" in str(
        raised.value
    )
    assert conn.transcript[-1].direction == "unsent"
    assert all(e.direction != "unsent" for e in conn.transcript[:-1])
    delivered = [e for e in conn.transcript if e.direction == "send"]
    assert len(conn.sent_frames()) == 1 + len(delivered)  # SYN+PSH in one send, then FINs
    assert "-- NOT SENT: 8 bytes" in conn.format_frames()
    assert "x> " in conn.format_hex()
    conn.pcap()  # an unsent entry is neither data nor an end of the connection


def test_stream_ids_follow_the_suite_role(wire: tuple[RawConnection, socket.socket]) -> None:
    conn, _ = wire
    assert [conn.next_sid() for _ in range(3)] == [1, 3, 5]
    ours, theirs = socket.socketpair()
    with ours, theirs:
        as_server = RawConnection(ours, 1, peer="fake", peer_role="client")
        assert [as_server.next_sid() for _ in range(2)] == [2, 4]


TCP_CASE = """\
from smuxref import Cmd, Frame

def test_echo(raw_conn):
    sid = raw_conn.open_stream(b"ECHO\\nping")
    raw_conn.send_frame(Frame(raw_conn.version, Cmd.FIN, sid))
    assert raw_conn.read_stream(sid) == b"ping"
"""


def test_tcp_peer_runs_server_cases_only(tmp_path: Path) -> None:
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "smuxref.peer",
            "--role",
            "server",
            "--addr",
            "127.0.0.1:0",
            "--version",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        line = read_until(server, b"\n", 30).decode()
        address = line.split()[1]
        started = time.monotonic()
        run = run_inner(tmp_path, TCP_CASE, f"--peer=tcp:{address}", "--smux-version=1")
        assert run.returncode == 0, run.output
        assert "1 passed, 1 skipped" in run.output, run.output
        assert "a tcp: peer is a running server" in run.output
        assert time.monotonic() - started < 60
        assert server.poll() is None, "the suite must not stop a server it did not start"
    finally:
        server.terminate()
        server.communicate(timeout=30)


CONFIG_CASE = """\
import json

import pytest

from smuxref import Cmd, Frame


def info(raw_conn):
    sid = raw_conn.open_stream(b"INFO\\n")
    return json.loads(raw_conn.read_stream(sid))["config"]


@pytest.mark.peer_config(max_frame_size=1024, keepalive=False)
def test_configured(raw_conn):
    config = info(raw_conn)
    assert config["max_frame_size"] == 1024
    assert config["keepalive_disabled"] is True


@pytest.mark.peer_config(keepalive_interval=1000, keepalive_timeout=3000)
def test_keepalive_options(raw_conn):
    config = info(raw_conn)
    assert config["keepalive_interval_ms"] == 1000
    assert config["keepalive_timeout_ms"] == 3000


@pytest.mark.roles("server")
@pytest.mark.fresh_peer
def test_fresh(peer_server):
    a, b = peer_server.connect(), peer_server.connect()
    for conn in (a, b):
        sid = conn.open_stream(b"ECHO\\nx")
        conn.send_frame(Frame(conn.version, Cmd.FIN, sid))
        assert conn.read_stream(sid) == b"x"


@pytest.mark.asyncio
async def test_session(smux_session):
    stream = await smux_session.open_stream()
    stream.write(b"ECHO\\nover smuxref.aio")
    stream.close_write()
    assert await stream.read() == b"over smuxref.aio"
"""


def test_peer_config_fresh_peer_and_session(tmp_path: Path) -> None:
    run = run_inner(tmp_path, CONFIG_CASE, "--peer=ref", "--smux-version=2")
    assert run.returncode == 0, run.output
    assert "7 passed" in run.output, run.output
    assert peer_processes(run.pid) == []


def test_many_server_configs_are_pooled_with_a_bound(tmp_path: Path) -> None:
    case = """\
import json
import os

import pytest

from smuxref_conformance.peers.pool import MAX_POOLED
from plugin_harness import peer_processes


def make(size):
    @pytest.mark.roles("server")
    @pytest.mark.versions(1)
    @pytest.mark.peer_config(max_frame_size=size)
    def test(raw_conn):
        sid = raw_conn.open_stream(b"INFO\\n")
        assert json.loads(raw_conn.read_stream(sid))["config"]["max_frame_size"] == size
        assert len(peer_processes(os.getpid())) <= MAX_POOLED
    return test


for size in range(1024, 10 * 1024, 1024):  # each command line twice in a row
    globals()[f"test_size_{size}"] = make(size)
    globals()[f"test_again_{size}"] = make(size)
"""
    log = tmp_path / "starts.log"
    peer = f"--peer=exec:{sys.executable} {REPO / 'tests' / 'peers' / 'logged_ref.py'}"
    run = run_inner(
        tmp_path, case, peer, SMUXREF_TEST_PEER_LOG=str(log), PYTHONPATH=str(REPO / "tests")
    )
    assert run.returncode == 0, run.output
    assert "18 passed" in run.output, run.output
    starts = [ln for ln in log.read_text().splitlines() if "--smux-made-up" not in ln]
    assert len(starts) == 9, starts  # one server per command line, reused once
    assert "the server ignored" not in run.output
    assert peer_processes(run.pid) == []


def test_stderr_of_a_pooled_server_is_cut_to_the_case_or_labelled_shared() -> None:
    from types import SimpleNamespace  # noqa: PLC0415
    from typing import cast  # noqa: PLC0415

    from smuxref_conformance.plugin import _stderr_section  # noqa: PLC0415

    conn = SimpleNamespace(local_port=40001)
    item = cast(pytest.Item, SimpleNamespace(funcargs={"raw_conn": conn}))
    lines = ["127.0.0.1:40001: session started", "127.0.0.1:40002: session started"]
    # Not a RawConnection: no port known, so the lines are labelled shared.
    title, kept = _stderr_section(item, "go", False, lines)
    assert "shared" in title
    assert kept == lines
    title, kept = _stderr_section(item, "go", True, lines)
    assert "served this case alone" in title
    assert kept == lines


def test_stderr_lines_naming_the_case_port_are_kept() -> None:
    import socket  # noqa: PLC0415
    from typing import cast  # noqa: PLC0415

    from smuxref_conformance.plugin import _stderr_section  # noqa: PLC0415
    from smuxref_conformance.wire import RawConnection  # noqa: PLC0415

    with socket.create_server(("127.0.0.1", 0)) as listener:
        sock = socket.create_connection(listener.getsockname())
        conn = RawConnection(sock, 1, peer="go", peer_role="server")
        try:
            item = cast(pytest.Item, type("Item", (), {"funcargs": {"raw_conn": conn}})())
            port = conn.local_port
            lines = [f"127.0.0.1:{port}: session ended: EOF", "127.0.0.1:1: session started"]
            title, kept = _stderr_section(item, "go", False, lines)
            assert kept == lines[:1]
            assert str(port) in title
        finally:
            conn.close()
