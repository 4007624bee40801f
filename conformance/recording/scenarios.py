"""The recorded scenarios: what the driving side of each session does.

A contract client peer only serves streams its remote opens, so every session needs a
driver that opens streams and sends commands:

* ``client``: smuxref's asyncio client drives a contract *server* peer (Go or smuxref).
  Scenarios that need the server to open streams send it ``OPEN k LINE``.
* ``server``: smuxref's asyncio server drives a contract *client* peer, opening streams
  toward it (server ids 2, 4, ...), so the Go client's side of the protocol is recorded.
* ``loadgen``: the Go peer's ``loadgen`` subcommand is the client (Go client with a Go
  or smuxref server); it can only run its echo and bulk modes.

Every driver checks what it gets back, so a recording is also a passing interop run.
Each scenario is written to be deterministic at the level of
:func:`~smuxref_conformance.recording.transcript.canonical`: the same SYN, data and FIN per
stream every time.  Payloads are small to keep ``vectors/`` small.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final, Literal

from smuxref.aio import Session, Stream
from smuxref.peer.commands import pattern

from ..errors import ScenarioError
from .peers import Impl, Options

__all__ = ["SCENARIOS", "Scenario", "ScenarioError", "by_name"]

Kind = Literal["client", "server", "loadgen"]
Driver = Callable[[Session], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Scenario:
    """One scenario; ``pairings`` are the (client, server) implementations ``--all`` records."""

    name: str
    description: str
    kind: Kind
    drive: Driver | None = None
    loadgen: tuple[str, ...] = ()
    options: Options = field(default_factory=Options)
    pairings: tuple[tuple[Impl, Impl], ...] = ()


def _check(got: bytes, want: bytes, what: str) -> None:
    if got != want:
        raise ScenarioError(f"{what}: got {got[:60]!r}... ({len(got)} bytes), want {len(want)}")


async def _read_all(stream: Stream) -> bytes:
    return await stream.read()


async def _command(session: Session, line: str, data: bytes = b"") -> Stream:
    stream = await session.open_stream()
    stream.write(line.encode() + b"\n" + data)
    await stream.drain()
    return stream


def _sink_reply(data: bytes) -> bytes:
    return f"{len(data)} {hashlib.sha256(data).hexdigest()}\n".encode()


async def _sink(session: Session, data: bytes) -> None:
    stream = await _command(session, "SINK", data)
    stream.close_write()
    _check(await _read_all(stream), _sink_reply(data), "SINK reply")
    stream.close()


# ------------------------------------------------------------ client drivers


async def echo(session: Session) -> None:
    stream = await _command(session, "ECHO")
    for line in (b"hello, smux\n", b"a second line\n"):
        stream.write(line)
        await stream.drain()
        _check(await stream.readexactly(len(line)), line, "echo")
    stream.close_write()
    _check(await _read_all(stream), b"", "after FIN")
    stream.close()


async def echo_100(session: Session) -> None:
    payloads = [f"stream {i:03d} says hello, smux!\n".encode() for i in range(100)]
    streams = [await _command(session, "ECHO", p) for p in payloads]
    for stream in streams:
        stream.close_write()
    replies = await asyncio.gather(*(_read_all(s) for s in streams))
    for stream, payload, reply in zip(streams, payloads, replies, strict=True):
        _check(reply, payload, f"echo on stream {stream.id}")
        stream.close()


async def half_close(session: Session) -> None:
    lines = b"".join(f"line {i}\n".encode() for i in range(5))
    stream = await _command(session, "ECHO", lines)
    stream.close_write()  # our FIN goes first; the echo keeps flowing back after it
    _check(await _read_all(stream), lines, "echo after half-close")
    stream.close()


async def keepalive(session: Session) -> None:
    stream = await _command(session, "ECHO", b"ping\n")
    _check(await stream.readexactly(5), b"ping\n", "echo")
    await asyncio.sleep(0.35)  # both sides send NOPs every 50 ms meanwhile
    stream.write(b"pong\n")
    await stream.drain()
    _check(await stream.readexactly(5), b"pong\n", "echo")
    stream.close_write()
    _check(await _read_all(stream), b"", "after FIN")
    stream.close()


async def hold(session: Session) -> None:
    # 8 KiB go out at once (the initial window is 256 KiB); the server reads nothing
    # for 300 ms, then its first UPD sets the window to its MaxStreamBuffer (4096), so
    # in version 2 the next 8 KiB go out paced by its window updates.
    first, second = pattern(0, 8192), pattern(8192, 8192)
    stream = await _command(session, "HOLD 300", first)
    await asyncio.sleep(0.5)  # the pause is what is recorded: the HOLD ends meanwhile
    stream.write(second)
    await stream.drain()
    stream.close_write()
    _check(await _read_all(stream), _sink_reply(first + second), "HOLD reply")
    stream.close()


async def big_frame(session: Session) -> None:
    await _sink(session, pattern(0, 65535))  # one 65535-byte PSH with MaxFrameSize 65535


async def exit_mid_transfer(session: Session) -> None:
    sink = await _command(session, "SINK", pattern(0, 10000))  # no FIN: still sending
    await _command(session, "EXIT")
    async with asyncio.timeout(10):
        await session.wait_closed()
    if not session.is_closed:
        raise ScenarioError("the session outlived EXIT")
    del sink


async def source(session: Session) -> None:
    stream = await _command(session, "SOURCE 12000")
    _check(await _read_all(stream), pattern(0, 12000), "SOURCE data")
    stream.close()


async def sink(session: Session) -> None:
    await _sink(session, pattern(0, 12000))


async def _accept_and_read(session: Session, count: int, want: bytes) -> None:
    for _ in range(count):
        stream = await session.accept_stream()
        _check(await _read_all(stream), want, f"stream {stream.id} opened by the peer")
        stream.close()


async def open_source(session: Session) -> None:
    stream = await _command(session, "OPEN 3 SOURCE 1000")
    stream.close_write()
    reader = asyncio.create_task(_accept_and_read(session, 3, pattern(0, 1000)))
    reply = await _read_all(stream)
    if not reply.startswith(b"OPENED ") or len(reply.split()) != 4:
        raise ScenarioError(f"OPEN reply {reply!r}")
    await reader
    stream.close()


async def open_echo(session: Session) -> None:
    stream = await _command(session, "OPEN 2 ECHO")
    stream.close_write()
    reply = await _read_all(stream)
    for _ in range(2):
        child = await session.accept_stream()
        line = f"hello, stream {child.id}\n".encode()
        child.write(line)
        child.close_write()
        _check(await _read_all(child), line, f"echo on stream {child.id}")
        child.close()
    if not reply.startswith(b"OPENED "):
        raise ScenarioError(f"OPEN reply {reply!r}")
    stream.close()


async def info(session: Session) -> None:
    stream = await _command(session, "INFO")
    stream.close_write()
    reply = await _read_all(stream)
    if not reply.startswith(b"{") or not reply.endswith(b"}\n"):
        raise ScenarioError(f"INFO reply {reply!r}")
    stream.close()


async def close_command(session: Session) -> None:
    stream = await _command(session, "CLOSE")
    _check(await _read_all(stream), b"", "CLOSE")
    stream.close()


async def sequential(session: Session) -> None:
    for i in range(10):
        stream = await _command(session, "ECHO", f"{i}\n".encode())
        stream.close_write()
        _check(await _read_all(stream), f"{i}\n".encode(), "echo")
        stream.close()


# ------------------------------------------------------------ server drivers


async def srv_open(session: Session) -> None:
    stream = await _command(session, "OPEN 2 SOURCE 500")
    stream.close_write()
    reader = asyncio.create_task(_accept_and_read(session, 2, pattern(0, 500)))
    reply = await _read_all(stream)
    if not reply.startswith(b"OPENED "):
        raise ScenarioError(f"OPEN reply {reply!r}")
    await reader
    stream.close()


KEEPALIVE: Final = Options(keepalive_interval_ms=50, keepalive_timeout_ms=2000)
BIG: Final = Options(max_frame_size=65535)
SMALL_WINDOW: Final = Options(max_stream_buffer=4096)
REF_GO: Final = (("smuxref", "go"),)
GO_REF: Final = (("go", "smuxref"),)
GO_ANY: Final = (("go", "go"), ("go", "smuxref"))

SCENARIOS: Final = (
    Scenario(
        "echo", "one ECHO stream, two round trips, half-close", "client", echo, pairings=REF_GO
    ),
    Scenario("echo-100", "100 concurrent ECHO streams", "client", echo_100, pairings=REF_GO),
    Scenario(
        "half-close",
        "FIN first, then the echo arrives after it",
        "client",
        half_close,
        pairings=REF_GO,
    ),
    Scenario(
        "keepalive",
        "NOP every 50 ms both ways across an idle ECHO stream",
        "client",
        keepalive,
        options=KEEPALIVE,
        pairings=REF_GO,
    ),
    Scenario(
        "hold",
        "HOLD 300: a slow reader; v2 window updates with MaxStreamBuffer 4096",
        "client",
        hold,
        options=SMALL_WINDOW,
        pairings=REF_GO,
    ),
    Scenario(
        "big-frame",
        "SINK of a 65535-byte PSH (MaxFrameSize 65535)",
        "client",
        big_frame,
        options=BIG,
        pairings=REF_GO,
    ),
    Scenario(
        "exit",
        "EXIT while a SINK transfer is still open: the server drops the session",
        "client",
        exit_mid_transfer,
        pairings=REF_GO,
    ),
    Scenario("source", "SOURCE 12000", "client", source, pairings=REF_GO),
    Scenario("sink", "SINK of 12000 bytes", "client", sink, pairings=REF_GO),
    Scenario(
        "open",
        "OPEN 3 SOURCE 1000: the server opens three streams",
        "client",
        open_source,
        pairings=REF_GO,
    ),
    Scenario(
        "open-echo",
        "OPEN 2 ECHO: the client writes on server-opened streams",
        "client",
        open_echo,
        pairings=REF_GO,
    ),
    Scenario("info", "INFO", "client", info, pairings=REF_GO),
    Scenario(
        "close",
        "CLOSE: the server closes the stream at once",
        "client",
        close_command,
        pairings=REF_GO,
    ),
    Scenario(
        "sequential", "ten ECHO streams one after another", "client", sequential, pairings=REF_GO
    ),
    Scenario("srv-echo", "the server opens an ECHO stream", "server", echo, pairings=GO_REF),
    Scenario("srv-source", "the server asks SOURCE 12000", "server", source, pairings=GO_REF),
    Scenario("srv-sink", "the server sends SINK 12000", "server", sink, pairings=GO_REF),
    Scenario(
        "srv-open",
        "OPEN 2 SOURCE 500: the client opens streams back",
        "server",
        srv_open,
        pairings=GO_REF,
    ),
    Scenario(
        "srv-hold",
        "HOLD 300 on the client; v2 window updates from the client",
        "server",
        hold,
        options=SMALL_WINDOW,
        pairings=GO_REF,
    ),
    Scenario(
        "lg-echo",
        "loadgen echo-latency: 5 round trips of 64 bytes",
        "loadgen",
        loadgen=("--mode", "echo-latency", "--streams", "1", "--count", "5", "--size", "64"),
        pairings=GO_ANY,
    ),
    Scenario(
        "lg-echo-100",
        "loadgen echo-latency on 100 streams, 16 bytes each",
        "loadgen",
        loadgen=("--mode", "echo-latency", "--streams", "100", "--count", "100", "--size", "16"),
        pairings=GO_ANY,
    ),
    Scenario(
        "lg-upload",
        "loadgen bulk upload (SINK), 8192 bytes on 2 streams",
        "loadgen",
        loadgen=("--mode", "bulk", "--direction", "upload", "--bytes", "8192", "--streams", "2"),
        pairings=GO_ANY,
    ),
    Scenario(
        "lg-download",
        "loadgen bulk download (SOURCE), 8192 bytes on 2 streams",
        "loadgen",
        loadgen=(
            "--mode",
            "bulk",
            "--direction",
            "download",
            "--bytes",
            "8192",
            "--streams",
            "2",
        ),
        pairings=GO_ANY,
    ),
)


def by_name(name: str) -> Scenario:
    for scenario in SCENARIOS:
        if scenario.name == name:
            return scenario
    raise KeyError(f"no scenario {name!r}; known: {', '.join(s.name for s in SCENARIOS)}")
