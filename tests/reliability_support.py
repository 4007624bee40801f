"""Helpers of the reliability tests (hostile peers, faults, soak): a raw frame peer on an
asyncio connection, a tracemalloc window, descriptor counts, and the one place that
prints the figures the README's reliability section quotes.

Figures are printed as ``RELIABILITY <name> key=value ...`` lines; run the tests with
``-rP`` (or ``-s``) to see them.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import sys
import time
import tracemalloc
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from smuxref import Cmd, Frame, FrameDecoder

__all__ = ["ROOT", "Memory", "RawFrames", "cpu_seconds", "no_fd_leak", "open_fds", "report"]

#: The repository root, put on sys.path so that tests can import ``benchmarks.soak`` and
#: the ``fuzz`` targets (pytest puts only tests/ there).
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def report(name: str, **figures: object) -> None:
    """Print one line of figures for the reliability section of the README."""
    fields = " ".join(f"{key}={value}" for key, value in figures.items())
    print(f"RELIABILITY {name} {fields}", flush=True)


def open_fds() -> set[int]:
    """The descriptors this process has open (Linux: /proc/self/fd)."""
    return {int(name) for name in os.listdir("/proc/self/fd")}


def cpu_seconds() -> float:
    """CPU time of this process (user + system), for "no busy loop" checks."""
    return time.process_time()


class Memory:
    """Peak Python heap growth over a ``with`` block, measured by tracemalloc.

    tracemalloc counts every Python allocation (transport buffers, frames, streams), not
    the kernel's socket buffers, which is what the bounds below are about: what a peer
    can make smuxref hold.
    """

    def __init__(self) -> None:
        self._started = False
        self.base = 0

    def __enter__(self) -> Memory:
        gc.collect()
        if not tracemalloc.is_tracing():
            tracemalloc.start()
            self._started = True
        self.base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        return self

    def peak(self) -> int:
        """Largest growth over the baseline since the block started."""
        return tracemalloc.get_traced_memory()[1] - self.base

    def current(self) -> int:
        return tracemalloc.get_traced_memory()[0] - self.base

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._started:
            tracemalloc.stop()


@dataclass
class RawFrames:
    """The hostile end of a connection: writes any bytes, reads frames as they come.

    ``frames`` keeps what arrived and was not yet taken; NOPs are dropped on arrival
    unless ``keep_nops``.
    """

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    version: int
    keep_nops: bool = False
    frames: deque[Frame] = field(default_factory=deque)
    received: int = 0
    _decoder: FrameDecoder = field(init=False)

    def __post_init__(self) -> None:
        self._decoder = FrameDecoder(self.version)

    def send(self, *frames: Frame | bytes) -> None:
        self.writer.write(b"".join(f if isinstance(f, bytes) else f.encode() for f in frames))

    def frame(self, cmd: Cmd, sid: int, data: bytes = b"") -> Frame:
        return Frame(self.version, cmd, sid, data)

    async def _read_more(self) -> None:
        data = await self.reader.read(1 << 16)
        if not data:
            raise EOFError(f"connection closed; {len(self.frames)} frames unread")
        self.received += len(data)
        for frame in self._decoder.feed(data):
            if frame.cmd != Cmd.NOP or self.keep_nops:
                self.frames.append(frame)

    async def next(self, match: Callable[[Frame], bool] | None = None) -> Frame:
        """The first frame (matching ``match``) not taken yet; others stay queued."""
        while True:
            for frame in self.frames:
                if match is None or match(frame):
                    self.frames.remove(frame)
                    return frame
            await self._read_more()

    async def payload(self, sid: int, n: int) -> bytes:
        """Exactly ``n`` bytes of stream ``sid``'s PSH payload."""
        got = bytearray()
        while len(got) < n:
            frame = await self.next(lambda f: f.sid == sid and f.cmd == Cmd.PSH)
            got += frame.data
        if len(got) > n:
            raise AssertionError(f"stream {sid}: {len(got)} bytes arrived, {n} expected")
        return bytes(got)

    async def until_fin(self, sid: int) -> bytes:
        """Stream ``sid``'s payload up to its FIN."""
        got = bytearray()
        while True:
            frame = await self.next(lambda f: f.sid == sid and f.cmd in (Cmd.PSH, Cmd.FIN))
            if frame.cmd == Cmd.FIN:
                return bytes(got)
            got += frame.data

    async def drain_forever(self) -> None:
        """Read and drop everything until the connection ends (a peer that reads)."""
        with contextlib.suppress(ConnectionError, EOFError):
            while True:
                await self._read_more()
                self.frames.clear()


@contextlib.contextmanager
def no_fd_leak() -> Iterator[set[int]]:
    """Fail if descriptors opened inside the block are still open after it."""
    before = open_fds()
    yield before
    gc.collect()
    leaked = open_fds() - before
    if leaked:
        targets = {}
        for fd in sorted(leaked):
            with contextlib.suppress(OSError):
                targets[fd] = os.readlink(f"/proc/self/fd/{fd}")
        raise AssertionError(f"descriptors leaked: {targets or sorted(leaked)}")
