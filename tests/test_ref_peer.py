"""The reference peer ``python -m smuxref.peer`` against conformance/CONTRACT.md, run as a
subprocess in both roles and both protocol versions, driven by smuxref.aio."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest

import smuxref
from smuxref import aio
from smuxref.config import Config
from smuxref.errors import SessionClosedError

if TYPE_CHECKING:
    from conftest import Deadline

LOCALHOST = "127.0.0.1"
LISTENING = re.compile(rb"LISTENING 127\.0\.0\.1:([0-9]+)\n")


def pattern(n: int) -> bytes:
    """Bytes 0..n of the SOURCE pattern byte[i] = i % 251 (CONTRACT.md rule 12)."""
    return bytes(i % 251 for i in range(n))


@dataclass(slots=True)
class Peers:
    """Starts reference peers; every one still running at teardown is killed and reaped."""

    deadline: Deadline
    procs: list[asyncio.subprocess.Process] = field(default_factory=list)

    async def start(self, *args: str) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "smuxref.peer",
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        self.procs.append(proc)
        return proc

    async def server(self, version: int, *options: str) -> tuple[asyncio.subprocess.Process, int]:
        """A listening server peer and its port (rule 5)."""
        proc = await self.start(
            "--role", "server", "--addr", f"{LOCALHOST}:0", "--version", str(version), *options
        )
        assert proc.stdout is not None
        async with self.deadline(10):
            line = await proc.stdout.readline()
        match = LISTENING.fullmatch(line)
        assert match is not None, line
        port = int(match[1])
        assert 0 < port < 65536
        return proc, port

    async def aclose(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                proc.kill()
        async with self.deadline(10):
            for proc in self.procs:
                await proc.communicate()
        assert all(proc.returncode is not None for proc in self.procs)


@pytest.fixture
async def peers(deadline: Deadline) -> AsyncIterator[Peers]:
    """Reference peer processes, killed in the finalizer if still running."""
    factory = Peers(deadline)
    try:
        yield factory
    finally:
        await factory.aclose()


async def exchange(
    session: aio.Session, line: bytes, data: bytes = b"", *, half_close: bool = True
) -> bytes:
    """Open a stream, send ``line`` and ``data``, half-close, return all read until EOF."""

    async def send(stream: aio.Stream) -> None:
        stream.write(line + data)
        if half_close:
            stream.close_write()
        await stream.drain()  # version 2: returns as the peer reads, so read meanwhile

    async with await session.open_stream() as stream:
        _, received = await asyncio.gather(send(stream), stream.read())
        return received


async def exit_session(session: aio.Session) -> None:
    """Send EXIT; the session must end (the stream gets no FIN: the connection goes)."""
    with pytest.raises(SessionClosedError):
        await exchange(session, b"EXIT\n", half_close=False)
    with pytest.raises(SessionClosedError):
        await session.accept_stream()
    assert session.is_closed


async def finished(proc: asyncio.subprocess.Process, deadline: Deadline, seconds: float) -> int:
    async with deadline(seconds):
        return await proc.wait()


# ------------------------------------------------------------------ the server role


@pytest.fixture
async def ref_server(peers: Peers, version: int, deadline: Deadline) -> AsyncIterator[aio.Session]:
    """A client session connected to a fresh reference server peer of the version under test."""
    proc, port = await peers.server(version)
    session = await aio.connect(LOCALHOST, port, Config(version=version))
    try:
        yield session
    finally:
        session.close()
        async with deadline(5):
            await session.wait_closed()
        proc.send_signal(signal.SIGTERM)
        assert await finished(proc, deadline, 5) == 0


async def test_server_start_line_and_sigterm(
    peers: Peers, version: int, deadline: Deadline
) -> None:
    """CONTRACT.md rules 4-6: one LISTENING line; SIGTERM exits 0 promptly, stdout stays quiet."""
    proc, port = await peers.server(version)
    session = await aio.connect(LOCALHOST, port, Config(version=version))
    async with session:
        assert await exchange(session, b"ECHO\n", b"ping") == b"ping"
        proc.send_signal(signal.SIGTERM)
        assert await finished(proc, deadline, 5) == 0
        async with deadline(5):
            with pytest.raises(SessionClosedError):
                await session.accept_stream()
    assert proc.stdout is not None
    assert await proc.stdout.read() == b""


async def test_server_serves_connections_independently(
    peers: Peers, version: int, deadline: Deadline
) -> None:
    """CONTRACT.md rule 6: one independent session per TCP connection; EXIT on one ends only it."""
    proc, port = await peers.server(version)
    first = await aio.connect(LOCALHOST, port, Config(version=version))
    second = await aio.connect(LOCALHOST, port, Config(version=version))
    async with first, second, deadline(10):
        await exit_session(first)
        assert await exchange(second, b"ECHO\n", b"still served") == b"still served"
        assert proc.returncode is None
    proc.send_signal(signal.SIGTERM)
    assert await finished(proc, deadline, 5) == 0


async def test_echo(ref_server: aio.Session, deadline: Deadline) -> None:
    """CONTRACT.md rule 10: ECHO returns every byte after the command line, then EOF."""
    data = random.Random(10).randbytes(500_000)
    async with deadline(30):
        assert await exchange(ref_server, b"ECHO\n", data) == data


async def test_sink_reports_count_and_sha256(ref_server: aio.Session, deadline: Deadline) -> None:
    """CONTRACT.md rule 11: SINK answers '<count> <sha256 hex>\\n' for the bytes after the line."""
    data = random.Random(11).randbytes(300_001)
    expected = f"{len(data)} {hashlib.sha256(data).hexdigest()}\n".encode()
    async with deadline(30):
        assert await exchange(ref_server, b"SINK\n", data) == expected
        empty = f"0 {hashlib.sha256(b'').hexdigest()}\n".encode()
        assert await exchange(ref_server, b"SINK\n") == empty


async def test_source_pattern(ref_server: aio.Session, deadline: Deadline) -> None:
    """CONTRACT.md rule 12: SOURCE n writes n bytes of byte[i] = i % 251, then EOF."""
    async with deadline(30):
        for n in (0, 1, 251, 252, 65511, 65512, 1_000_003):
            assert await exchange(ref_server, f"SOURCE {n}\n".encode()) == pattern(n), n


async def test_hold_waits_then_sinks(ref_server: aio.Session, deadline: Deadline) -> None:
    """CONTRACT.md rule 13: HOLD ms reads nothing for ms milliseconds, then acts as SINK."""
    data = random.Random(13).randbytes(100_000)
    expected = f"{len(data)} {hashlib.sha256(data).hexdigest()}\n".encode()
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with deadline(10):
        assert await exchange(ref_server, b"HOLD 300\n", data) == expected
    assert loop.time() - started >= 0.3


async def accept_all(session: aio.Session, count: int) -> list[aio.Stream]:
    return [await session.accept_stream() for _ in range(count)]


async def run_open(
    session: aio.Session, deadline: Deadline, line: bytes, count: int
) -> tuple[bytes, dict[int, bytes]]:
    """Send an OPEN command; return its reply and what each opened stream delivered."""
    async with deadline(30):
        reply, streams = await asyncio.gather(exchange(session, line), accept_all(session, count))
        contents = {}
        for stream in streams:
            async with stream:
                contents[stream.id] = await stream.read()
    return reply, contents


async def test_open_from_server(ref_server: aio.Session, deadline: Deadline) -> None:
    """CONTRACT.md rule 14, SPEC.md 5.1: OPEN k LINE from a server opens ids 2, 4, 6..."""
    reply, contents = await run_open(ref_server, deadline, b"OPEN 3 SOURCE 1000\n", 3)
    assert reply == b"OPENED 2 4 6\n"
    assert contents == {2: pattern(1000), 4: pattern(1000), 6: pattern(1000)}
    reply, contents = await run_open(ref_server, deadline, b"OPEN 0 SOURCE 5\n", 0)
    assert reply in {b"OPENED \n", b"OPENED\n"}
    reply, contents = await run_open(ref_server, deadline, b"OPEN 1 CLOSE\n", 1)
    assert reply == b"OPENED 8\n"
    assert contents == {8: b""}


async def test_open_echo_runs_without_command_line(
    ref_server: aio.Session, deadline: Deadline
) -> None:
    """CONTRACT.md rule 14: LINE runs on the opened stream without reading a command line."""
    async with deadline(10):
        reply, (opened,) = await asyncio.gather(
            exchange(ref_server, b"OPEN 1 ECHO\n"), accept_all(ref_server, 1)
        )
        assert reply == b"OPENED 2\n"
        async with opened:
            opened.write(b"ECHO\nhello")
            opened.close_write()
            assert await opened.read() == b"ECHO\nhello"


async def test_info_json(peers: Peers, version: int, deadline: Deadline) -> None:
    """CONTRACT.md rules 2, 15: INFO is one JSON line with the implementation and its config."""
    proc, port = await peers.server(
        version,
        "--keepalive-interval", "5000",
        "--keepalive-timeout", "20000",
        "--max-frame-size", "1000",
        "--max-receive-buffer", "1048576",
    )  # fmt: skip
    session = await aio.connect(LOCALHOST, port, Config(version=version))
    async with session, deadline(10):
        reply = await exchange(session, b"INFO\n")
    assert reply.endswith(b"\n")
    assert reply.count(b"\n") == 1
    assert json.loads(reply) == {
        "implementation": "smuxref",
        "version": smuxref.__version__,
        "peer": "smuxref.peer",
        "protocol_versions": [1, 2],
        "config": {
            "version": version,
            "keepalive_disabled": False,
            "keepalive_interval_ms": 5000,
            "keepalive_timeout_ms": 20000,
            "max_frame_size": 1000,
            "max_receive_buffer": 1048576,
            "max_stream_buffer": Config().max_stream_buffer,
        },
    }
    proc.send_signal(signal.SIGTERM)
    assert await finished(proc, deadline, 5) == 0


async def test_info_reports_no_keepalive(peers: Peers, version: int, deadline: Deadline) -> None:
    """CONTRACT.md rules 1, 15: --no-keepalive shows as keepalive_disabled in INFO."""
    proc, port = await peers.server(version, "--no-keepalive", "--max-stream-buffer", "4096")
    session = await aio.connect(LOCALHOST, port, Config(version=version))
    async with session, deadline(10):
        config = json.loads(await exchange(session, b"INFO\n"))["config"]
    assert config["keepalive_disabled"] is True
    assert config["max_stream_buffer"] == 4096
    assert config["version"] == version
    proc.send_signal(signal.SIGTERM)
    assert await finished(proc, deadline, 5) == 0


async def test_close_closes_the_stream_at_once(ref_server: aio.Session, deadline: Deadline) -> None:
    """CONTRACT.md rule 16: CLOSE closes the stream without waiting for our FIN."""
    async with deadline(5), await ref_server.open_stream() as stream:
        stream.write(b"CLOSE\n")
        await stream.drain()
        assert await stream.read() == b""  # no half-close from us: the peer closed


async def test_anything_else_closes_the_stream(ref_server: aio.Session, deadline: Deadline) -> None:
    """CONTRACT.md rule 18: an unknown or malformed command closes only the stream."""
    lines = [
        b"BOGUS\n",
        b"echo\n",
        b"ECHO extra\n",
        b"SINK 1\n",
        b"SOURCE\n",
        b"SOURCE x\n",
        b"SOURCE -1\n",
        b"HOLD\n",
        b"OPEN 1\n",
        b"OPEN x ECHO\n",
        b"OPEN 1 OPEN 1 ECHO\n",
        b"\n",
    ]
    async with deadline(10):
        for line in lines:
            assert await exchange(ref_server, line, b"payload", half_close=False) == b"", line
        assert await exchange(ref_server, b"ECHO\n", b"next") == b"next"


async def test_half_close_and_result(ref_server: aio.Session, deadline: Deadline) -> None:
    """CONTRACT.md rule 19: HALFCLOSE sends FIN at once and reads only once RESULT names
    it; RESULT gives the record; RESULT for an unknown id gives NONE after its time."""
    async with deadline(10):
        half = await ref_server.open_stream()
        half.write(b"HALFCLOSE\n")
        await half.drain()
        assert await half.read() == b""  # the peer's FIN, before any data of ours
        half.write(b"some data")
        half.close_write()
        assert await exchange(ref_server, f"RESULT {half.id} 5000\n".encode()) == (
            b"9 " + hashlib.sha256(b"some data").hexdigest().encode() + b"\n"
        )
        start = asyncio.get_running_loop().time()
        assert await exchange(ref_server, b"RESULT 999 200\n") == b"NONE\n"
        assert asyncio.get_running_loop().time() - start >= 0.2
        for line in (b"HALFCLOSE 1\n", b"RESULT\n", b"RESULT 3\n", b"RESULT x 10\n"):
            assert await exchange(ref_server, line, half_close=False) == b"", line


async def test_command_line_length_limit(ref_server: aio.Session, deadline: Deadline) -> None:
    """CONTRACT.md rule 9: a 256-byte command line runs; a longer line closes the stream."""
    longest = b"SOURCE " + b"7".rjust(256 - 8, b"0") + b"\n"
    assert len(longest) == 256
    async with deadline(10):
        assert await exchange(ref_server, longest) == pattern(7)
        too_long = b"SOURCE " + b"7".rjust(257 - 8, b"0") + b"\n"
        assert await exchange(ref_server, too_long, half_close=False) == b""
        assert await exchange(ref_server, b"x" * 300, half_close=False) == b""
        assert await exchange(ref_server, b"ECHO\n", b"ok") == b"ok"


async def test_stream_ending_before_newline_is_closed(
    ref_server: aio.Session, deadline: Deadline
) -> None:
    """CONTRACT.md rule 9: a stream that ends before the newline is closed unrun."""
    async with deadline(5):
        assert await exchange(ref_server, b"SOURCE 10") == b""
        assert await exchange(ref_server, b"") == b""


async def test_exit_closes_the_connection(ref_server: aio.Session, deadline: Deadline) -> None:
    """CONTRACT.md rule 17: EXIT closes the whole session, i.e. the TCP connection."""
    async with deadline(5):
        await exit_session(ref_server)


# ------------------------------------------------------------------ the client role


@dataclass(slots=True)
class ClientRun:
    proc: asyncio.subprocess.Process
    session: aio.Session


@pytest.fixture
async def ref_client(peers: Peers, version: int, deadline: Deadline) -> AsyncIterator[ClientRun]:
    """A reference client peer dialled into an aio.serve listener; yields its session."""
    accepted: asyncio.Queue[aio.Session] = asyncio.Queue()
    done = asyncio.Event()

    async def handler(session: aio.Session) -> None:
        accepted.put_nowait(session)
        await done.wait()

    listener = await aio.serve(handler, LOCALHOST, 0, Config(version=version))
    port = listener.sockets[0].getsockname()[1]
    proc = await peers.start(
        "--role", "client", "--addr", f"{LOCALHOST}:{port}", "--version", str(version)
    )
    try:
        assert proc.stdout is not None
        async with deadline(10):
            assert await proc.stdout.readline() == b"CONNECTED\n"
            session = await accepted.get()
        listener.close()
        yield ClientRun(proc, session)
    finally:
        done.set()
        listener.close()
        async with deadline(5):
            await listener.wait_closed()


async def test_client_commands(ref_client: ClientRun, deadline: Deadline) -> None:
    """CONTRACT.md rules 7, 10-14: a client peer runs commands; its own ids are 3, 5, 7..."""
    session = ref_client.session
    data = random.Random(7).randbytes(200_000)
    async with deadline(30):
        assert await exchange(session, b"ECHO\n", data) == data
        sink = await exchange(session, b"SINK\n", data)
        assert sink == f"{len(data)} {hashlib.sha256(data).hexdigest()}\n".encode()
        assert await exchange(session, b"SOURCE 70000\n") == pattern(70000)
    reply, contents = await run_open(session, deadline, b"OPEN 3 SOURCE 10\n", 3)
    assert reply == b"OPENED 3 5 7\n"
    assert contents == {3: pattern(10), 5: pattern(10), 7: pattern(10)}
    session.close()
    assert await finished(ref_client.proc, deadline, 5) == 0


async def test_client_exits_on_exit_command(ref_client: ClientRun, deadline: Deadline) -> None:
    """CONTRACT.md rules 8, 17: EXIT closes the connection and the client exits with 0."""
    async with deadline(5):
        await exit_session(ref_client.session)
    assert await finished(ref_client.proc, deadline, 5) == 0
    assert ref_client.proc.stdout is not None
    assert await ref_client.proc.stdout.read() == b""


async def test_client_exits_when_session_ends(ref_client: ClientRun, deadline: Deadline) -> None:
    """CONTRACT.md rule 8: the client exits with 0 when we close the connection."""
    ref_client.session.close()
    assert await finished(ref_client.proc, deadline, 5) == 0


async def test_client_sigterm(ref_client: ClientRun, deadline: Deadline) -> None:
    """CONTRACT.md rules 6, 8: SIGTERM ends a client peer's session and the process, status 0."""
    ref_client.proc.send_signal(signal.SIGTERM)
    assert await finished(ref_client.proc, deadline, 5) == 0
    async with deadline(5):
        with pytest.raises(SessionClosedError):
            await ref_client.session.accept_stream()


# ------------------------------------------------------------- unsupported options


@pytest.mark.parametrize(
    ("peer_role", "args"),
    [
        ("server", ["--smux-made-up-option"]),
        ("client", ["--smux-made-up-option"]),
        ("server", ["--keepalive-interval", "abc"]),
        ("server", ["--version", "3"]),
        ("server", ["--max-frame-size", "0"]),
        ("server", ["--max-frame-size", "65536"]),
        ("server", ["--max-receive-buffer", "2147483648"]),
        ("server", ["--max-stream-buffer", "2000000", "--max-receive-buffer", "1000000"]),
        ("client", ["--max-stream-buffer", "2000000", "--max-receive-buffer", "1000000"]),
        ("server", ["--keepalive-interval", "2000", "--keepalive-timeout", "1000"]),
        ("server", ["--keepalive-interval", "0"]),
        ("server", ["--no-keepalive", "--keepalive-interval", "1000"]),
        ("server", ["--role", "proxy"]),
        ("client", ["--addr", "no-port"]),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else str(value),
)
async def test_unsupported_exits_127(
    peers: Peers, deadline: Deadline, peer_role: str, args: list[str]
) -> None:
    """CONTRACT.md rule 3: unknown options, bad values, configs Go refuses: exit 127 at once."""
    base = {"--role": peer_role, "--addr": f"{LOCALHOST}:1", "--version": "2"}
    argv = [part for name, value in base.items() if name not in args for part in (name, value)]
    proc = await peers.start(*argv, *args)
    async with deadline(5):
        out, err = await proc.communicate()
    assert proc.returncode == 127
    assert out == b""
    assert b"unsupported" in err
