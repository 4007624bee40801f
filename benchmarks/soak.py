"""Soak: a large volume over many concurrent streams of one session, every byte checked.

Run from the repository root::

    python -m benchmarks.soak --total 1GiB --streams 1000 --peer go --version 2
    python -m benchmarks.soak --total 1GiB --streams 1000 --peer ref --version 1

A smuxref.aio client opens ``--streams`` streams at once on one connection to a contract
server (conformance/CONTRACT.md) in its own process: ``--peer go`` is go-peer on the real
github.com/xtaci/smux (``--tag``, default v1.5.57, built once with go-peer/build.sh and
cached), ``--peer ref`` is smuxref's reference peer (``python -m smuxref.peer``).  The
streams take turns at the three commands that move data:

* ``SINK``: the client writes the stream's content; the peer answers
  ``<count> <sha256>``, which must be the content's length and SHA-256;
* ``SOURCE n``: the peer writes n bytes of the pattern byte[i] = i % 251; the client
  checks every byte and the length (each stream asks for a different n);
* ``ECHO``: the client writes the stream's content and reads it back, compared byte by
  byte and by SHA-256.

Every stream's content is distinct (SHAKE-128 of the seed, the stream's index and the
block number), and every write has a random size (log-uniform, 1 byte to
``--max-write``), so data lost, duplicated, reordered or crossed between streams shows
up as a wrong length or a wrong byte.  ``--total`` is the volume moved, counting both
directions (an ECHO stream counts twice), split at random over the streams.

The last lines say ``volume``, ``time``, ``bytes lost``, ``bytes duplicated`` and
``streams with wrong content``; the exit status is 0 only when all three are 0 and
every stream finished.  ``--json PATH`` writes the same figures as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import math
import os
import random
import re
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from smuxref import Config, aio  # noqa: E402
from smuxref.errors import SmuxError  # noqa: E402
from smuxref.peer.commands import pattern  # noqa: E402

__all__ = ["ContractServer", "Result", "go_binary", "main", "parse_size", "soak"]

HOST = "127.0.0.1"
GO_TAG = "v1.5.57"
KINDS = ("SINK", "SOURCE", "ECHO")
#: Volume a stream's content counts for: SINK and SOURCE move it once, ECHO twice.
WEIGHT = {"SINK": 1, "SOURCE": 1, "ECHO": 2}
BLOCK = 1 << 16
_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``"1GiB"``, ``"32MiB"``, ``"512K"``, ``"1000"`` -> bytes (binary units)."""
    match = _SIZE.fullmatch(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 1GiB, 32MiB, 4096)")
    return int(float(match[1]) * _UNITS[match[2].upper()])


# --------------------------------------------------------------------- the peer


def go_binary(tag: str = GO_TAG) -> Path:
    """go-peer built against xtaci/smux ``tag``: built once by go-peer/build.sh and cached
    (the conformance plugin's cache and lock, so parallel runs build it once)."""
    from filelock import FileLock  # noqa: PLC0415 - test extra, needed for --peer go only

    from smuxref_conformance.peers.go_build import build_binary, cache_dir, source_hash  # noqa: PLC0415

    digest = source_hash()
    lock = cache_dir() / "go-peer" / f"{tag}-{digest[:16]}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock), timeout=900):
        return build_binary(tag, digest)


class ContractServer:
    """A contract server peer (CONTRACT.md rules 5, 6) in its own process.

    ``await ContractServer.start("go", 2)``; ``stop()`` sends SIGTERM and waits (SIGKILL
    after ``grace`` seconds); ``kill()`` is SIGKILL at once, for fault injection.
    """

    def __init__(self, argv: list[str], process: asyncio.subprocess.Process) -> None:
        self.argv = argv
        self.process = process
        self.host = HOST
        self.port = 0

    @classmethod
    async def start(
        cls,
        peer: str,
        version: int,
        *options: str,
        tag: str = GO_TAG,
        startup: float = 30.0,
    ) -> ContractServer:
        base = ["--role", "server", "--addr", f"{HOST}:0", "--version", str(version), *options]
        if peer == "go":
            argv = [str(go_binary(tag)), *base]
        elif peer == "ref":
            # The suite's build of the reference peer offers the --bug switches.
            module = "smuxref_conformance.bugs" if "--bug" in options else "smuxref.peer"
            argv = [sys.executable, "-m", module, *base]
        else:
            raise ValueError(f"--peer must be go or ref, not {peer!r}")
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        server = cls(argv, process)
        try:
            assert process.stdout is not None
            async with asyncio.timeout(startup):
                line = (await process.stdout.readline()).decode(errors="replace").split()
            if len(line) != 2 or line[0] != "LISTENING":
                raise RuntimeError(f"{argv[0]}: no LISTENING line (got {line!r})")
            server.port = int(line[1].rpartition(":")[2])
        except BaseException:
            await server.kill()
            raise
        return server

    @property
    def pid(self) -> int:
        return self.process.pid

    async def kill(self) -> int:
        """SIGKILL, and reap the process."""
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        return await self._reap()

    async def stop(self, grace: float = 5.0) -> int:
        """SIGTERM (CONTRACT.md rule 6); SIGKILL if it is still running after ``grace``."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    await self.process.wait()
        return await self.kill()

    async def _reap(self) -> int:
        code = await self.process.wait()
        # Read stdout to its end so the pipe transport closes (no ResourceWarning).
        if self.process.stdout is not None:
            await self.process.stdout.read()
        return code


# ------------------------------------------------------------------- the streams


class Content:
    """A stream's distinct content, generated in order: SHAKE-128 blocks of
    (seed, stream index, block number)."""

    def __init__(self, seed: int, index: int) -> None:
        self._prefix = f"smuxref-soak:{seed}:{index}:".encode()
        self._block = b""
        self._number = 0
        self._pos = 0

    def take(self, n: int) -> bytes:
        parts = []
        while n > 0:
            if self._pos == len(self._block):
                self._block = hashlib.shake_128(self._prefix + b"%d" % self._number).digest(BLOCK)
                self._number += 1
                self._pos = 0
            piece = self._block[self._pos : self._pos + n]
            self._pos += len(piece)
            n -= len(piece)
            parts.append(piece)
        return b"".join(parts)


@dataclass
class StreamResult:
    index: int
    kind: str
    size: int
    sent: int = 0
    received: int = 0
    #: Bytes the receiving end got (the peer's count for SINK): lost or duplicated
    #: bytes are measured against ``size``.
    delivered: int = 0
    wrong_content: bool = False
    error: str | None = None

    @property
    def lost(self) -> int:
        return max(0, self.size - self.delivered)

    @property
    def duplicated(self) -> int:
        return max(0, self.delivered - self.size)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.wrong_content and self.delivered == self.size


def _write_sizes(rng: random.Random, total: int, max_write: int) -> list[int]:
    """Random write sizes summing to ``total``: log-uniform from 1 to ``max_write``."""
    sizes = []
    top = math.log2(max_write)
    while total > 0:
        size = min(total, max(1, int(2 ** rng.uniform(0, top))))
        sizes.append(size)
        total -= size
    return sizes


async def _write_content(
    stream: aio.Stream, content: Content, sizes: list[int], digest: Any, result: StreamResult
) -> None:
    for size in sizes:
        data = content.take(size)
        digest.update(data)
        stream.write(data)
        await stream.drain()
        result.sent += size
    stream.close_write()


async def _run_stream(
    session: aio.Session, result: StreamResult, *, seed: int, max_write: int
) -> None:
    rng = random.Random(seed * 1_000_003 + result.index)
    try:
        stream = await session.open_stream()
        try:
            await _exchange(stream, result, rng, seed, max_write)
        finally:
            stream.close()
    except (SmuxError, ConnectionError, ValueError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"


async def _exchange(
    stream: aio.Stream, result: StreamResult, rng: random.Random, seed: int, max_write: int
) -> None:
    kind, size, index = result.kind, result.size, result.index
    sizes = _write_sizes(rng, size, max_write)
    if kind == "SINK":
        stream.write(b"SINK\n")
        sent = hashlib.sha256()
        await _write_content(stream, Content(seed, index), sizes, sent, result)
        reply = await stream.read()
        count, _, hexdigest = reply.decode(errors="replace").strip().partition(" ")
        result.delivered = int(count)
        result.wrong_content = hexdigest != sent.hexdigest()
    elif kind == "SOURCE":
        stream.write(f"SOURCE {size}\n".encode())
        stream.close_write()
        while chunk := await stream.read(rng.choice(sizes) if sizes else 1):
            if chunk != pattern(result.received, len(chunk)):
                result.wrong_content = True
            result.received += len(chunk)
        result.delivered = result.received
    else:  # ECHO
        stream.write(b"ECHO\n")
        sent = hashlib.sha256()
        writer = asyncio.create_task(
            _write_content(stream, Content(seed, index), sizes, sent, result)
        )
        expected = Content(seed, index)
        received = hashlib.sha256()
        try:
            while chunk := await stream.read(rng.choice(sizes) if sizes else 1):
                if chunk != expected.take(len(chunk)):
                    result.wrong_content = True
                received.update(chunk)
                result.received += len(chunk)
        finally:
            if not writer.done():
                writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        result.delivered = result.received
        if received.hexdigest() != sent.hexdigest():
            result.wrong_content = True


def plan(total: int, streams: int, seed: int) -> list[tuple[str, int]]:
    """(command, content size) per stream: sizes at random around the mean, summing so
    that the volume (ECHO counted twice) is exactly ``total``."""
    rng = random.Random(seed)
    kinds = [KINDS[i % len(KINDS)] for i in range(streams)]
    weights = [rng.uniform(0.5, 1.5) for _ in range(streams)]
    scale = total / sum(w * WEIGHT[k] for w, k in zip(weights, kinds, strict=True))
    sizes = [int(w * scale) for w in weights]
    volume = sum(s * WEIGHT[k] for s, k in zip(sizes, kinds, strict=True))
    sizes[0] += total - volume  # stream 0 is a SINK: the remainder counts once
    return list(zip(kinds, sizes, strict=True))


@dataclass
class Result:
    peer: str
    version: int
    streams: int
    seed: int
    volume: int = 0
    seconds: float = 0.0
    lost: int = 0
    duplicated: int = 0
    wrong_content: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not (self.lost or self.duplicated or self.wrong_content or self.failed)


async def soak(
    host: str,
    port: int,
    *,
    version: int,
    total: int,
    streams: int,
    seed: int = 1,
    max_write: int = 1 << 16,
    peer: str = "",
    limit: float = 3600.0,
) -> Result:
    """Run the soak against the contract server at ``host:port``; streams still running
    after ``limit`` seconds are cancelled and count as failed (their missing bytes lost)."""
    result = Result(peer, version, streams, seed)
    outcomes = [
        StreamResult(index, kind, size)
        for index, (kind, size) in enumerate(plan(total, streams, seed))
    ]
    started = time.perf_counter()
    async with await aio.connect(host, port, Config(version=version)) as session:
        tasks = [
            asyncio.create_task(_run_stream(session, outcome, seed=seed, max_write=max_write))
            for outcome in outcomes
        ]
        _, unfinished = await asyncio.wait(tasks, timeout=limit)
        for task in unfinished:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    result.seconds = time.perf_counter() - started
    for task, outcome in zip(tasks, outcomes, strict=True):
        if task in unfinished:
            outcome.error = f"still running after {limit:g} s"
        result.volume += outcome.sent + outcome.received
        result.lost += outcome.lost
        result.duplicated += outcome.duplicated
        result.wrong_content += outcome.wrong_content
        if not outcome.ok:
            result.failed += 1
            result.errors.append(
                f"stream {outcome.index} ({outcome.kind} {outcome.size}): "
                f"delivered {outcome.delivered}, wrong content {outcome.wrong_content}, "
                f"error {outcome.error}"
            )
    return result


def _describe(size: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor:
            return f"{size / factor:.2f} {unit}"
    return f"{size} B"


async def _main(args: argparse.Namespace) -> Result:
    server = await ContractServer.start(args.peer, args.version, tag=args.tag)
    name = f"go (xtaci/smux {args.tag})" if args.peer == "go" else "ref (python -m smuxref.peer)"
    kinds = [kind for kind, _ in plan(args.total, args.streams, args.seed)]
    counts = {kind: kinds.count(kind) for kind in KINDS}
    print(
        f"soak: peer={name} version={args.version} streams={args.streams} "
        f"({', '.join(f'{n} {k}' for k, n in counts.items())}) seed={args.seed} "
        f"writes=1..{args.max_write} B",
        flush=True,
    )
    try:
        result = await soak(
            server.host,
            server.port,
            version=args.version,
            total=args.total,
            streams=args.streams,
            seed=args.seed,
            max_write=args.max_write,
            peer=name,
            limit=args.timeout,
        )
    finally:
        await server.stop()
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.soak", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--total", type=parse_size, default=parse_size("1GiB"))
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--peer", choices=("go", "ref"), default="go")
    parser.add_argument("--tag", default=GO_TAG, help="xtaci/smux tag of the go peer")
    parser.add_argument("--version", type=int, choices=(1, 2), default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-write", type=parse_size, default=1 << 16)
    parser.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds; streams still running then fail"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.streams < 1 or args.total < 0:
        parser.error("--streams must be at least 1 and --total not negative")
    result = asyncio.run(_main(args))
    rate = result.volume / result.seconds / (1 << 20) if result.seconds else 0.0
    print(
        f"volume: {result.volume} bytes ({_describe(result.volume)}) over {result.streams} "
        f"streams, {result.streams - result.failed} complete"
    )
    print(f"time: {result.seconds:.2f} s ({rate:.1f} MiB/s)")
    print(f"bytes lost: {result.lost}")
    print(f"bytes duplicated: {result.duplicated}")
    print(f"streams with wrong content: {result.wrong_content}")
    for error in result.errors[:20]:
        print(f"  {error}")
    print(f"result: {'PASS' if result.passed else 'FAIL'}")
    if args.json is not None:
        figures = {**asdict(result), "passed": result.passed, "mib_per_s": rate}
        figures["command"] = " ".join(["python -m benchmarks.soak", *(argv or sys.argv[1:])])
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
