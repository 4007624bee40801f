"""Steps of the interoperability cases (test_interop.py): each runs under a scaled
deadline and turns a stall, a deadline or a broken session into a failed expectation
naming the step, or into ``inconclusive`` naming the case the step relies on; so a case
reads as its steps and the report says which one did not happen.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
from collections.abc import AsyncIterator, Callable, Sequence
from functools import cache
from typing import Final

from smuxref import aio
from smuxref.errors import SessionClosedError, SmuxError
from smuxref_conformance.deadlines import scaled
from smuxref_conformance.errors import StepFailed
from smuxref_conformance.judge.blame import describe_session_end
from smuxref_conformance.judge.checks import SmuxCheck
from smuxref_conformance.plugin.smux_session import stall_watch

KIB: Final = 1024
MIB: Final = 1024 * KIB
#: Deadline of a step that moves little data (seconds, before scaling).
STEP: Final = 10.0
#: Extra seconds a step is allowed per MiB it moves (before scaling): 64 MiB through a
#: containerized peer on a loaded two-core machine takes a few seconds, not a minute.
PER_MIB: Final = 1.0
#: Largest SOURCE/SINK chunk handed to ``write`` at once by the suite.
WRITE_CHUNK: Final = 256 * KIB
#: The SOURCE pattern (CONTRACT.md rule 12): byte[i] = i % 251, here 261 whole periods.
PERIOD: Final = bytes(i % 251 for i in range(251)) * 261
#: The case that checks the peer's FIN after its data (what a read to EOF relies on).
FIN_CASE: Final = "smux/10.4/fin-after-all-data"
#: The case that tests that the peer opens a stream when OPEN asks (the cases' _helpers
#: name it for the raw-frame cases).
PEER_OPENS: Final = "smux/10.1/peer-opens-streams"


def budget(nbytes: int = 0) -> float:
    """Seconds (before scaling) for a step that moves ``nbytes``."""
    return STEP + PER_MIB * nbytes / MIB


@contextlib.asynccontextmanager
async def step(
    check: SmuxCheck, expected: str, seconds: float = STEP, *, prerequisite: str = ""
) -> AsyncIterator[None]:
    """Run a step under a scaled deadline.

    A deadline that runs out, or the session or stream failing under the step, is
    recorded as a failed expectation ``expected`` with what happened instead, and ends
    the case.  With ``prerequisite`` (a case the step relies on, declared in
    ``relies_on``) the case ends inconclusive instead, naming it.
    """
    __tracebackhide__ = True
    limit = scaled(seconds)
    stalled: list[str] = []
    try:
        async with (
            asyncio.timeout(limit) as scope,
            stall_watch(check.session(), scope, stalled, for_fin=prerequisite == FIN_CASE),
        ):
            yield
    except TimeoutError:
        actual = stalled[0] if stalled else f"not done within {limit:g} s"
    except SessionClosedError as exc:
        actual = f"{type(exc).__name__}: {exc}: {describe_session_end(exc)}"
    except (SmuxError, ConnectionError) as exc:
        actual = f"{type(exc).__name__}: {exc}"
    else:
        return
    if prerequisite:
        check.require(False, prerequisite=prerequisite, what=expected, actual=actual)
    check.expect(False, expected=expected, actual=actual)
    raise StepFailed(f"{expected}: {actual}")


def sha256_hex(data: bytes) -> str:
    """SHA-256 of ``data`` in lowercase hex, as SINK reports it."""
    return hashlib.sha256(data).hexdigest()


@cache
def pattern_digest(n: int) -> str:
    """SHA-256 (hex) of the first ``n`` bytes of the SOURCE pattern."""
    digest = hashlib.sha256()
    whole, rest = divmod(n, len(PERIOD))
    for _ in range(whole):
        digest.update(PERIOD)
    digest.update(PERIOD[:rest])
    return digest.hexdigest()


def payload(seed: int, n: int) -> bytes:
    """``n`` seeded pseudo-random bytes (the same on every run)."""
    return random.Random(seed).randbytes(n)


def describe_end(data: bytes, limit: int = 80) -> str:
    """``data`` for a message: its first ``limit`` bytes, and how many more there were."""
    shown = data[:limit]
    more = f" (+{len(data) - limit} bytes)" if len(data) > limit else ""
    return f"{shown!r}{more}"


async def open_with_line(session: aio.Session, line: bytes) -> aio.Stream:
    """Open a stream and send its command line (data may follow at once, 10.1)."""
    stream = await session.open_stream()
    stream.write(line)
    return stream


def require_opened(check: SmuxCheck, line: bytes) -> None:
    """OPEN's stream ended before any byte: the peer refused to open the streams
    (CONTRACT.md rule 14 writes OPENED once they are open), which PEER_OPENS tests."""
    check.require(
        line != b"",
        prerequisite=PEER_OPENS,
        what="the peer opens the streams OPEN asks for",
        actual="OPEN's stream ended without an OPENED line",
    )


async def read_all(stream: aio.Stream, sink: Callable[[bytes], object]) -> int:
    """Feed every byte until EOF to ``sink``; return how many there were."""
    total = 0
    async for chunk in stream:
        sink(chunk)
        total += len(chunk)
    return total


async def write_all(stream: aio.Stream, chunks: Sequence[bytes | memoryview]) -> None:
    """Write ``chunks`` one by one, each drained before the next (flow control applies)."""
    for chunk in chunks:
        stream.write(chunk)
        await stream.drain()


async def read_up_to(stream: aio.Stream, n: int) -> bytes:
    """``n`` bytes, or fewer when the stream ends first."""
    try:
        return await stream.readexactly(n)
    except asyncio.IncompleteReadError as exc:
        return exc.partial


async def bodies_then_eof(check: SmuxCheck, streams: list[aio.Stream], n: int) -> list[bytes]:
    """``n`` bytes from each stream (the case's own check), then its end: what came
    after the ``n`` is appended, and a missing EOF is blamed on the FIN case."""
    async with step(check, f"{n} bytes on each of {len(streams)} streams", budget(n)):
        bodies = await asyncio.gather(*(read_up_to(s, n) for s in streams))
    async with step(check, "EOF after the data", prerequisite=FIN_CASE):
        rests = await asyncio.gather(*(s.read() for s in streams))
    return [body + rest for body, rest in zip(bodies, rests, strict=True)]


async def echo_round_trip(stream: aio.Stream, chunks: list[bytes]) -> bytes:
    """Write ``chunks`` while reading back as many bytes; return what came back."""
    writer = asyncio.ensure_future(write_all(stream, chunks))
    try:
        reply = await read_up_to(stream, sum(map(len, chunks)))
    finally:
        if not writer.done():
            writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer  # re-raises what made the writer fail
    return reply


def first_difference(got: bytes, want: bytes) -> int:
    """Offset of the first byte where ``got`` and ``want`` differ (or the shorter length)."""
    for offset, (a, b) in enumerate(zip(got, want, strict=False)):
        if a != b:
            return offset
    return min(len(got), len(want))


async def expect_echo(check: SmuxCheck, stream: aio.Stream, chunks: list[bytes], what: str) -> None:
    """An ECHO round trip of ``chunks`` on ``stream``, checked byte for byte."""
    __tracebackhide__ = True
    sent = b"".join(chunks)
    async with step(check, f"{what}: {len(sent)} bytes echoed", budget(len(sent))):
        got = await echo_round_trip(stream, chunks)
    check.expect(
        got == sent,
        expected=f"{what}: the {len(sent)} bytes written, echoed back unchanged",
        actual=f"{len(got)} bytes, the first difference at offset {first_difference(got, sent)}",
    )
