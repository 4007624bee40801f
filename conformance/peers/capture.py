"""A peer's stdout and stderr, read continuously by threads, waited on with deadlines.

The launch contract is read off stdout (CONTRACT.md rules 4, 5, 7), and stderr is the
only explanation a broken peer gives, so both pipes are drained from the moment the peer
starts: a peer must never block on a full pipe, and a peer that floods its output must
cost bounded memory.  The main thread never reads a pipe itself; it waits on a
condition variable (new output, end of output) with a deadline, or selects on
:attr:`OutputCapture.ended_fd`, which turns readable once both streams have ended, next
to a socket it is accepting on.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterable
from typing import IO, Final, NamedTuple

from ..deadlines import Deadline

__all__ = ["MAX_LINE", "FirstLine", "OutputCapture"]

#: The longest first line accepted on stdout, newline included (the lines of rules 5/7
#: are far shorter; 256 is the command-line limit of rule 9, reused for symmetry).
MAX_LINE: Final = 256
_STDOUT_KEEP: Final = 64 * 1024
_STDERR_KEEP: Final = 64 * 1024


class FirstLine(NamedTuple):
    """What stdout showed: ``line`` (without ``\\n``) or why there is none."""

    line: str | None
    raw: bytes  #: the bytes seen (for messages), at most MAX_LINE of them
    overflow: bool  #: MAX_LINE bytes arrived without a newline
    ended: bool  #: stdout ended before a complete line


class OutputCapture:
    """Collect stdout (bounded) and a tail of stderr of one peer."""

    def __init__(self, peer: str) -> None:
        self.peer = peer
        self._cond = threading.Condition()
        self._stdout = bytearray()
        self._stdout_total = 0
        self._stderr = bytearray()
        self._stderr_total = 0
        self._open = {"stdout", "stderr"}
        self._threads: list[threading.Thread] = []
        self._ended_r, self._ended_w = socket.socketpair()
        self._ended_r.setblocking(False)

    # -- feeding (reader threads) ------------------------------------------------------
    def feed(self, stream: str, data: bytes) -> None:
        with self._cond:
            if stream == "stdout":
                self._stdout_total += len(data)
                room = _STDOUT_KEEP - len(self._stdout)
                if room > 0:
                    self._stdout += data[:room]
            else:
                self._stderr_total += len(data)
                self._stderr += data
                if len(self._stderr) > _STDERR_KEEP:
                    del self._stderr[: len(self._stderr) - _STDERR_KEEP]
            self._cond.notify_all()

    def end(self, stream: str) -> None:
        with self._cond:
            self._open.discard(stream)
            if not self._open:
                # OSError: closed by close(), nobody waits any more.
                with contextlib.suppress(OSError):
                    self._ended_w.send(b"x")
            self._cond.notify_all()

    def read_pipe(self, stream: str, pipe: IO[bytes]) -> None:
        """Drain ``pipe`` in a daemon thread until EOF, then close it."""

        def run() -> None:
            fd = pipe.fileno()
            try:
                while data := os.read(fd, 65536):
                    self.feed(stream, data)
            except OSError:
                pass
            finally:
                pipe.close()
                self.end(stream)

        self._start(run, stream)

    def read_chunks(
        self, chunks: Iterable[tuple[bytes | None, bytes | None]], done: Callable[[], None]
    ) -> None:
        """Drain an iterator of (stdout, stderr) pairs (Docker's demuxed attach stream)."""

        def run() -> None:
            try:
                for out, err in chunks:
                    if out:
                        self.feed("stdout", out)
                    if err:
                        self.feed("stderr", err)
            except Exception:  # the stream died with the container
                pass
            finally:
                done()
                self.end("stdout")
                self.end("stderr")

        self._start(run, "attach")

    def _start(self, target: Callable[[], None], what: str) -> None:
        thread = threading.Thread(target=target, name=f"smux-{self.peer}-{what}", daemon=True)
        self._threads.append(thread)
        thread.start()

    # -- observing (main thread) -------------------------------------------------------
    @property
    def ended(self) -> bool:
        with self._cond:
            return not self._open

    @property
    def ended_fd(self) -> int:
        """Readable once stdout and stderr have both ended (for ``select``)."""
        return self._ended_r.fileno()

    def _first_line(self) -> FirstLine | None:
        nl = self._stdout.find(b"\n", 0, MAX_LINE)
        if nl >= 0:
            raw = bytes(self._stdout[:nl])
            return FirstLine(raw.decode("ascii", "replace"), raw, overflow=False, ended=False)
        raw = bytes(self._stdout[:MAX_LINE])
        if len(self._stdout) >= MAX_LINE:
            return FirstLine(None, raw, overflow=True, ended=False)
        if "stdout" not in self._open:
            return FirstLine(None, raw, overflow=False, ended=True)
        return None

    def wait_first_line(self, deadline: Deadline) -> FirstLine | None:
        """The first stdout line, or why there is none; ``None`` when the deadline passed."""
        with self._cond:
            self._cond.wait_for(lambda: self._first_line() is not None, deadline.remaining())
            return self._first_line()

    def wait_ended(self, deadline: Deadline) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: not self._open, deadline.remaining())

    def extra_stdout(self) -> tuple[int, bytes]:
        """Bytes on stdout after the first line: (total count, first bytes of them)."""
        with self._cond:
            nl = self._stdout.find(b"\n")
            if nl < 0:
                return self._stdout_total, bytes(self._stdout[:80])
            return self._stdout_total - nl - 1, bytes(self._stdout[nl + 1 : nl + 81])

    def stdout(self) -> bytes:
        """What stdout received (as much as is kept)."""
        with self._cond:
            return bytes(self._stdout)

    def stderr(self) -> bytes:
        with self._cond:
            return bytes(self._stderr)

    @property
    def stderr_total(self) -> int:
        """Bytes written to stderr so far (kept or not): a mark for :meth:`stderr_since`."""
        with self._cond:
            return self._stderr_total

    def stderr_since(self, mark: int) -> bytes:
        """What stderr received after ``mark`` (as much of it as is still kept)."""
        with self._cond:
            return bytes(self._stderr[max(0, len(self._stderr) - (self._stderr_total - mark)) :])

    def close(self, deadline: Deadline) -> None:
        """Wait (bounded) for the reader threads to finish, then release the socketpair."""
        for thread in self._threads:
            thread.join(deadline.remaining())
        with self._cond:
            self._ended_r.close()
            self._ended_w.close()
