"""The contract's stream commands (ECHO, SINK, SOURCE, HOLD, OPEN, RUN, INFO, CLOSE, EXIT,
HALFCLOSE, RESULT)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import weakref
from dataclasses import dataclass, field

from .. import __version__
from ..aio import Session, Stream
from ..errors import SmuxError
from .exchange import parse_exchange, run_exchange
from .pattern import pattern

__all__ = ["pattern", "run_command", "serve_session"]

#: Longest command line, newline included (CONTRACT.md).
MAX_LINE = 256


async def serve_session(session: Session) -> None:
    """Accept streams until the session ends; each runs the command it is sent."""
    tasks: set[asyncio.Task[None]] = set()
    try:
        while True:
            stream = await session.accept_stream()
            task = asyncio.create_task(_serve_stream(session, stream))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    except SmuxError:
        pass
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _serve_stream(session: Session, stream: Stream) -> None:
    try:
        with contextlib.suppress(SmuxError, ConnectionError):
            line = await stream.readline(MAX_LINE)
            if not line.endswith(b"\n"):
                return
            await run_command(session, stream, line[:-1].decode("ascii", "replace"))
    finally:
        # A command that failed - e.g. a write refused after an over-acknowledging UPD
        # (SPEC.md 9.4) - still ends its stream with FIN, as the Go peer does.
        with contextlib.suppress(SmuxError, ConnectionError):
            stream.close()


async def run_command(session: Session, stream: Stream, line: str) -> None:
    word, _, rest = line.partition(" ")
    try:
        if word == "ECHO" and not rest:
            while chunk := await stream.read(1 << 16):
                stream.write(chunk)
                await stream.drain()
        elif word == "SINK" and not rest:
            await _sink(stream)
        elif word == "SOURCE":
            await _source(stream, int(rest))
        elif word == "HOLD":
            # The pause is the behaviour under test: a reader that stops reading.
            await asyncio.sleep(int(rest) / 1000)
            await _sink(stream)
        elif word == "OPEN":
            count, _, sub = rest.partition(" ")
            await _open(session, stream, int(count), sub)
        elif word == "RUN":
            result = await run_exchange(session, parse_exchange(rest))
            stream.write(result.line().encode() + b"\n")
        elif word == "INFO" and not rest:
            stream.write(_info(session).encode() + b"\n")
        elif word == "EXIT" and not rest:
            session.close()
            return
        elif word == "HALFCLOSE" and not rest:
            await _half_close(session, stream)
        elif word == "RESULT":
            sid, _, ms = rest.partition(" ")
            await _result(session, stream, _decimal(sid), _decimal(ms) / 1000)
    except ValueError:
        pass
    stream.close()
    await stream.wait_closed()


async def _sink(stream: Stream) -> None:
    stream.write(await _digest(stream))


async def _digest(stream: Stream) -> bytes:
    """Read to the end; ``<count> <sha256 hex>\\n`` of what was read."""
    digest = hashlib.sha256()
    count = 0
    async for chunk in stream:
        digest.update(chunk)
        count += len(chunk)
    return f"{count} {digest.hexdigest()}\n".encode()


def _decimal(text: str) -> int:
    """A plain decimal number, as the contract writes them (no sign, no spaces)."""
    if not text.isascii() or not text.isdigit():
        raise ValueError(text)
    return int(text)


@dataclass
class _HalfClosed:
    """One HALFCLOSE stream (CONTRACT.md rule 19): RESULT sets ``start`` to let it
    read, and it sets ``done`` once ``record`` holds what it read."""

    start: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    record: bytes = b"NONE\n"


#: Per session, the HALFCLOSE streams by id.  Either command may come first, so both
#: create the entry; a session that ends takes its entries with it.
_half_closed: weakref.WeakKeyDictionary[Session, dict[int, _HalfClosed]] = (
    weakref.WeakKeyDictionary()
)


def _half_closed_entry(session: Session, sid: int) -> _HalfClosed:
    return _half_closed.setdefault(session, {}).setdefault(sid, _HalfClosed())


async def _half_close(session: Session, stream: Stream) -> None:
    """Half-close at once, read nothing until RESULT: the peer's data and FIN are then
    both waiting when reading starts, where an engine that drops unread data on the
    second FIN (Go v1.5.54-v1.5.57) loses it."""
    entry = _half_closed_entry(session, stream.id)
    try:
        try:
            stream.close_write()
        except NotImplementedError:  # an engine without half-close (tests' stand-in)
            stream.write(b"UNSUPPORTED\n")
            return
        await entry.start.wait()
        entry.record = await _digest(stream)
    finally:
        entry.done.set()


async def _result(session: Session, stream: Stream, sid: int, seconds: float) -> None:
    entry = _half_closed_entry(session, sid)
    entry.start.set()
    reply = b"NONE\n"
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await entry.done.wait()
        reply = entry.record
        _half_closed.get(session, {}).pop(sid, None)
    stream.write(reply)


async def _source(stream: Stream, n: int) -> None:
    if n < 0:
        raise ValueError(n)
    offset = 0
    while offset < n:
        piece = pattern(offset, min(65511, n - offset))
        stream.write(piece)
        offset += len(piece)
        await stream.drain()


async def _open(session: Session, stream: Stream, count: int, line: str) -> None:
    if count < 0 or not line or line.split(" ", maxsplit=1)[0] == "OPEN":
        raise ValueError(line)
    ids = []
    for _ in range(count):
        child = await session.open_stream()
        ids.append(child.id)
        asyncio.create_task(_run_detached(session, child, line))  # noqa: RUF006
    stream.write(("OPENED " + " ".join(map(str, ids)) + "\n").encode())


async def _run_detached(session: Session, stream: Stream, line: str) -> None:
    with contextlib.suppress(SmuxError, ConnectionError):
        await run_command(session, stream, line)


def _info(session: Session) -> str:
    c = session.config
    return json.dumps(
        {
            "implementation": "smuxref",
            "version": __version__,
            "peer": "smuxref.peer",
            "protocol_versions": [1, 2],
            "config": {
                "version": c.version,
                "keepalive_disabled": c.keepalive_disabled,
                "keepalive_interval_ms": round(c.keepalive_interval * 1000),
                "keepalive_timeout_ms": round(c.keepalive_timeout * 1000),
                "max_frame_size": c.max_frame_size,
                "max_receive_buffer": c.max_receive_buffer,
                "max_stream_buffer": c.max_stream_buffer,
            },
        },
        sort_keys=True,
    )
