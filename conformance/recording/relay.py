"""The recording relay: a loopback TCP proxy that writes down every read, in order.

Recording on loopback with a packet capture needs root; a relay does not.  The relay
accepts one connection, dials the real server, and copies bytes both ways, noting each
read with its time.  Those reads are the segmentation the transcript keeps: what one
``recv`` gave the relay is about what one ``recv`` would have given the receiver.

Ends are forwarded as they happen: an EOF from one side becomes a half-close toward
the other (smux itself never half-closes TCP, but a peer that closes its socket while
the other still sends must look the same through the relay).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

from .pcap import MSS
from .transcript import Direction, Transcript

__all__ = ["READ_SIZE", "RecordingRelay"]

#: Largest read, and so largest recorded chunk: one synthesized segment's payload.
READ_SIZE: Final = MSS


class RecordingRelay:
    """Relay the first connection made to :attr:`address` to ``upstream`` and record it."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.transcript = Transcript()
        self.done = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._t0 = 0.0
        self._taken = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> tuple[str, int]:
        """Listen on an ephemeral loopback port and return it."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    async def wait(self, seconds: float) -> None:
        """Wait until both directions have ended (:class:`TimeoutError` otherwise)."""
        async with asyncio.timeout(seconds):
            await self.done.wait()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()

    def _now(self) -> float:
        return asyncio.get_running_loop().time() - self._t0

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._taken:  # one connection per recording; a second is refused
            writer.close()
            return
        self._taken = True
        self._t0 = asyncio.get_running_loop().time()
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            self.done.set()
            raise
        try:
            await asyncio.gather(
                self._pump(reader, up_writer, "c2s"), self._pump(up_reader, writer, "s2c")
            )
        finally:
            for w in (writer, up_writer):
                w.close()
                with contextlib.suppress(OSError):
                    await w.wait_closed()
            self.done.set()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: Direction
    ) -> None:
        forwarding = True
        while True:
            try:
                data = await reader.read(READ_SIZE)
            except OSError:
                self.transcript.end(direction, self._now(), "rst")
                break
            if not data:
                self.transcript.end(direction, self._now(), "fin")
                break
            self.transcript.add(direction, self._now(), data)
            if forwarding:
                try:
                    writer.write(data)
                    await writer.drain()
                except OSError:
                    # The other side is gone; keep reading so the record is complete.
                    forwarding = False
        if forwarding and writer.can_write_eof():
            with contextlib.suppress(OSError):
                writer.write_eof()
