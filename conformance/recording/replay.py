"""Replay one side of a recorded session to a live peer and compare what it sends back.

The driving side's bytes are sent again, read by read, to a fresh peer of the
implementation that was recorded on the other side; the peer's answer must decode to
the same :func:`~smuxref_conformance.recording.transcript.canonical` frames as the recording
(NOP and UPD frames, whose number follows the clock, aside; see
:func:`~smuxref_conformance.recording.transcript.compare_frames`).

Pacing matters: a recorded read may only make sense after the peer said something (a
version 2 UPD acknowledging bytes the peer has not sent yet makes Go fail the next
write with ErrConsumed).  So each read is sent only once the live peer has produced,
on every stream, at least what the recorded peer had produced before that read:
SYN and FIN frames and PSH payload bytes, counted per stream id.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from typing import Any, Final

from smuxref import Cmd, Frame, FrameDecoder
from smuxref.errors import ProtocolError

from ..errors import NotReplayable
from .peers import Impl, Options, Peer, Program, start_client, start_server
from .transcript import (
    Chunk,
    Direction,
    Transcript,
    compare_frames,
    decode_direction,
    finished_streams,
    settled_frames,
)

__all__ = ["NotReplayable", "replay", "replay_and_compare", "target"]

#: Seconds to wait for the live peer to catch up with the recording before each read.
CATCH_UP: Final = 5.0
#: Seconds without progress after which the live peer is taken to have finished.
QUIET: Final = 0.1
#: Seconds to wait for the live peer to end the connection after the last read.
DRAIN: Final = 10.0


def target(doc: dict[str, Any]) -> tuple[str, Impl, Direction]:
    """Which peer to replay against: its role, implementation, and the direction we send.

    A session driven from the client side is replayed to its server peer; one driven by
    the smuxref server is replayed to its contract client peer.
    """
    if doc["driver"] == "server":
        impl: Impl = doc["client"]["impl"]
        return "client", impl, "s2c"
    impl = doc["server"]["impl"]
    return "server", impl, "c2s"


def _progress(frames: list[Frame], into: Counter[int]) -> None:
    for f in frames:
        if f.cmd == Cmd.PSH:
            into[f.sid] += len(f.data)
        elif f.cmd in (Cmd.SYN, Cmd.FIN):
            into[f.sid] += 1


def _requirements(
    ours: list[Chunk], theirs: list[Chunk], end_t: float | None, version: int
) -> list[Counter[int]]:
    """For each of our chunks (and our end, last): the peer progress recorded before it."""
    marks = [c.index for c in ours]
    decoder = FrameDecoder(version, strict=False)
    progress: Counter[int] = Counter()
    out: list[Counter[int]] = []
    pos = 0
    for mark in marks:
        while pos < len(theirs) and theirs[pos].index < mark:
            _progress(decoder.feed(theirs[pos].data), progress)
            pos += 1
        out.append(Counter(progress))
    if end_t is not None:
        while pos < len(theirs) and theirs[pos].t <= end_t:
            _progress(decoder.feed(theirs[pos].data), progress)
            pos += 1
        out.append(Counter(progress))
    return out


class _Listener:
    """Reads the live peer, decoding as it goes, and wakes whoever waits for progress."""

    def __init__(self, reader: asyncio.StreamReader, version: int) -> None:
        self.reader = reader
        self.decoder = FrameDecoder(version, strict=False)
        self.progress: Counter[int] = Counter()
        self.transcript = Transcript()
        self.changed = asyncio.Event()
        self.ended = False
        self.t0 = asyncio.get_running_loop().time()

    def now(self) -> float:
        return asyncio.get_running_loop().time() - self.t0

    async def run(self, direction: Direction) -> None:
        try:
            while data := await self.reader.read(65536):
                self.transcript.add(direction, self.now(), data)
                with contextlib.suppress(ProtocolError):
                    _progress(self.decoder.feed(data), self.progress)
                self.changed.set()
        except OSError:
            pass
        self.ended = True
        self.changed.set()

    async def wait_quiet(self) -> None:
        """Until no SYN, FIN or data came for :data:`QUIET` seconds (NOPs do not count)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CATCH_UP):
                while not self.ended:
                    before = Counter(self.progress)
                    try:
                        async with asyncio.timeout(QUIET):
                            # Woken by every read; only a change of progress restarts
                            # the quiet period.
                            while self.progress == before and not self.ended:
                                self.changed.clear()
                                await self.changed.wait()
                    except TimeoutError:
                        return

    async def wait_for(self, required: Counter[int]) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CATCH_UP):
                while not self.ended and any(self.progress[sid] < n for sid, n in required.items()):
                    self.changed.clear()
                    await self.changed.wait()


async def replay(doc: dict[str, Any], programs: dict[Impl, Program]) -> Transcript:
    """Replay ``doc``'s driving side to a fresh peer; return the live transcript."""
    role, impl, ours = target(doc)
    if impl not in programs:
        raise NotReplayable(f"no {impl} peer program available")
    theirs: Direction = "s2c" if ours == "c2s" else "c2s"
    recorded = Transcript.from_json(doc["directions"])
    version = doc["version"]
    options = Options(
        keepalive_interval_ms=doc["options"].get("keepaliveIntervalMs"),
        keepalive_timeout_ms=doc["options"].get("keepaliveTimeoutMs"),
        max_frame_size=doc["options"].get("maxFrameSize"),
        max_stream_buffer=doc["options"].get("maxStreamBuffer"),
    )
    end = recorded.ends.get(ours)
    needs = _requirements(
        recorded.chunks[ours], recorded.chunks[theirs], None if end is None else end.t, version
    )
    peer: Peer
    server: asyncio.Server | None = None
    if role == "server":
        peer, addr = await start_server(programs[impl], version, options)
        reader, writer = await asyncio.open_connection(*addr)
    else:
        accepted: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]]
        accepted = asyncio.get_running_loop().create_future()

        def on_connect(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            if not accepted.done():
                accepted.set_result((r, w))

        server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        host, port = server.sockets[0].getsockname()[:2]
        peer = await start_client(programs[impl], version, options, (host, port))
        reader, writer = await asyncio.wait_for(accepted, 10)
    listener = _Listener(reader, version)
    reading = asyncio.create_task(listener.run(theirs))
    try:
        for chunk, need in zip(recorded.chunks[ours], needs, strict=False):
            await listener.wait_for(need)
            if listener.ended:
                break
            writer.write(chunk.data)
            with contextlib.suppress(OSError):
                await writer.drain()
        if end is not None and not listener.ended:
            await listener.wait_for(needs[-1])
            # Let the peer finish before closing: the recording's close may have cut
            # off the peer's last FINs, the replay's need not (compare_frames).
            await listener.wait_quiet()
            listener.transcript.end(ours, listener.now())
            with contextlib.suppress(OSError):
                writer.write_eof()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(reading), DRAIN)
    finally:
        writer.close()
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError, OSError):
            await reading
        await peer.stop(exit_by_itself=0 if role == "server" else 5)
        if server is not None:
            server.close()
    return listener.transcript


async def replay_and_compare(doc: dict[str, Any], programs: dict[Impl, Program]) -> str:
    """Replay ``doc`` and return "" if the peer's frames match, else what differs."""
    _, _, ours = target(doc)
    theirs: Direction = "s2c" if ours == "c2s" else "c2s"
    live = await replay(doc, programs)
    recorded = Transcript.from_json(doc["directions"])
    version = doc["version"]
    _, error = decode_direction(live.chunks[theirs], version)
    if error is not None:
        return f"the live peer sent something undecodable: {error}"
    return compare_frames(
        settled_frames(recorded, theirs, version),
        settled_frames(live, theirs, version),
        finished_streams(recorded, ours, version),
    )
