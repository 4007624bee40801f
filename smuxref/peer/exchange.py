"""Exchanges (CONTRACT.md rules 20-22): how one peer drives another in a pairwise run.

An exchange ``N:LINE`` opens a stream, sends LINE and N pattern bytes, half-closes and
reads to EOF; its result (stream id, count and SHA-256 of what came back) lets the suite
check, end to end, what the other implementation did with the data.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass

from ..aio import Session
from ..errors import SmuxError
from .pattern import pattern

__all__ = ["Exchange", "ExchangeResult", "parse_exchange", "run_exchange"]

#: Longest LINE: the command line with its newline fits the 256 bytes of rule 9.
_MAX_LINE = 255


@dataclass(frozen=True, slots=True)
class Exchange:
    count: int
    line: str


@dataclass(frozen=True, slots=True)
class ExchangeResult:
    stream_id: int
    count: int = 0
    sha256: str = ""
    error: str = ""

    def line(self) -> str:
        """The ``RAN`` line of rules 21 and 22, without its newline."""
        if self.error:
            sid = str(self.stream_id) if self.stream_id else "-"
            return f"RAN {sid} ERROR {self.error}"
        return f"RAN {self.stream_id} {self.count} {self.sha256}"


def parse_exchange(spec: str) -> Exchange:
    """``N:LINE``; raises ValueError naming what is wrong."""
    count, sep, line = spec.partition(":")
    if not sep or not count.isdigit():
        raise ValueError(f"exchange {spec!r} is not N:LINE (N a decimal byte count)")
    if not line or len(line) > _MAX_LINE or not line.isascii() or "\n" in line:
        raise ValueError(f"exchange LINE {line!r} is not one ASCII line of at most 255 bytes")
    return Exchange(int(count), line)


async def run_exchange(session: Session, exchange: Exchange) -> ExchangeResult:
    try:
        stream = await session.open_stream()
    except (SmuxError, ConnectionError) as exc:
        return ExchangeResult(0, error=f"open_stream: {exc}")

    async def send() -> None:
        stream.write(exchange.line.encode() + b"\n")
        offset = 0
        while offset < exchange.count:
            piece = pattern(offset, min(65511, exchange.count - offset))
            stream.write(piece)
            offset += len(piece)
            await stream.drain()
        stream.close_write()

    digest = hashlib.sha256()
    count = 0
    try:
        sender = asyncio.create_task(send())
        async for chunk in stream:
            digest.update(chunk)
            count += len(chunk)
        await sender
    except (SmuxError, ConnectionError) as exc:
        return ExchangeResult(stream.id, error=f"after reading {count} bytes: {exc}")
    finally:
        stream.close()
    return ExchangeResult(stream.id, count, digest.hexdigest())
