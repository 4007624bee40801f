"""The cross-implementation rows of the speed table: Go and smuxref in separate processes.

``benchmarks/run.py`` calls into this module; it is also a small command line of its own
for the helpers that must run in a fresh process::

    python -m benchmarks.interop echo-server [uvloop] # raw asyncio TCP echo (LISTENING line)
    python -m benchmarks.interop uvloop-peer ARGS...  # python -m smuxref.peer ARGS on uvloop
    python -m benchmarks.interop idle-streams N [V]   # RSS/tracemalloc of N idle streams

What it measures, all on loopback:

* bulk throughput with the go-peer (github.com/xtaci/smux, built natively by
  ``go-peer/build.sh``, no Docker) and the smuxref reference peer
  (``python -m smuxref.peer``) as contract servers: Go loadgen -> Go server, Go loadgen
  -> smuxref server, smuxref aio client -> Go server (``SOURCE`` download and ``SINK``
  upload), smuxref aio client -> smuxref server;
* the round trip of a 1 KiB ``ECHO`` on one stream and on 64 concurrent streams, the
  same pairings plus a raw asyncio TCP echo server (64 connections for the 64 row);
* memory: RSS and tracemalloc bytes per idle open stream, and the peak RSS of a
  smuxref server receiving a ``SINK`` upload under a given MaxReceiveBuffer;
* the gate: wall time of the conformance suite (``pytest conformance -n 2``).

CPU figures of a pairing are the sum over both processes (user + system), so they
compare with the in-process rows of ``run.py``, where one process is both ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smuxref import Config, aio

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
MIB = 1 << 20
KIB = 1 << 10
GO_TAG = "v1.5.57"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# ----------------------------------------------------------------- processes


def go_binary(tag: str = GO_TAG) -> tuple[Path | None, str]:
    """Build (or reuse) the static go-peer for ``tag``; return it, or None and why not."""
    if shutil.which("go") is None:
        return None, "no Go toolchain on PATH (the go-peer cannot be built)"
    outdir = Path(tempfile.gettempdir()) / "smuxref-bench"
    proc = subprocess.run(
        [str(ROOT / "go-peer" / "build.sh"), tag, str(outdir)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    binary = outdir / f"smux-peer-{tag}"
    if proc.returncode != 0 or not binary.exists():
        return None, f"go-peer/build.sh {tag} failed: {proc.stderr.strip()[-300:]}"
    return binary, ""


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_status(pid: int | str, key: str) -> int:
    """A ``kB`` line of /proc/PID/status (VmRSS, VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * KIB
    raise KeyError(key)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def on_cpus(cpus: frozenset[int] | None) -> Iterator[None]:
    """Run this thread (and every process it starts meanwhile) on ``cpus`` only, with
    ``GOMAXPROCS`` set to their number for Go processes; None: leave both as they are.

    A child inherits its parent's CPU mask at fork, so a server started inside this
    block runs on ``cpus`` for its whole life, with all its threads."""
    if cpus is None:
        yield
        return
    before = os.sched_getaffinity(0)
    gomaxprocs = os.environ.get("GOMAXPROCS")
    os.sched_setaffinity(0, cpus)
    os.environ["GOMAXPROCS"] = str(len(cpus))
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)
        if gomaxprocs is None:
            os.environ.pop("GOMAXPROCS", None)
        else:
            os.environ["GOMAXPROCS"] = gomaxprocs


class ServerProcess:
    """A contract server in its own process; ``address`` from its LISTENING line.
    ``cpus``: the CPUs it runs on (see :func:`on_cpus`); None: wherever the OS puts it."""

    def __init__(self, argv: Sequence[str], cpus: frozenset[int] | None = None) -> None:
        self.argv = list(argv)
        with on_cpus(cpus):
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                cwd=ROOT,
            )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "LISTENING":  # pragma: no cover - a broken peer
            self.close()
            raise RuntimeError(f"{self.argv}: no LISTENING line (got {line!r})")
        host, _, port = line[1].rpartition(":")
        self.host, self.port = host, int(port)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def cpu(self) -> float:
        return proc_cpu(self.proc.pid)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:  # pragma: no cover
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def peer_argv(impl: str, version: int, go: Path | None, *extra: str) -> list[str]:
    base = ["--role", "server", "--addr", f"{HOST}:0", "--version", str(version), *extra]
    if impl == "go":
        assert go is not None
        return [str(go), *base]
    return [sys.executable, "-m", "smuxref.peer", *base]


def echo_server_argv(loop: str = "asyncio") -> list[str]:
    return [sys.executable, "-m", "benchmarks.interop", "echo-server", loop]


def uvloop_peer_argv(peer: Sequence[str]) -> list[str]:
    """``peer`` (a ``python -m smuxref.peer`` command line) run on uvloop."""
    assert list(peer[1:3]) == ["-m", "smuxref.peer"], peer
    return [sys.executable, "-m", "benchmarks.interop", "uvloop-peer", *peer[3:]]


async def loadgen(go: Path, address: str, version: int, *args: str) -> dict[str, Any]:
    """Run the Go loadgen once; its JSON result plus ``cpu`` (its CPU seconds)."""
    before = children_cpu()
    proc = await asyncio.create_subprocess_exec(
        str(go),
        "loadgen",
        "--addr",
        address,
        "--version",
        str(version),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"loadgen {args}: exit {proc.returncode}: {err.decode()[-500:]}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    result["cpu"] = children_cpu() - before
    return result


# ----------------------------------------------------------------- bulk


@dataclass(frozen=True, slots=True)
class Sample:
    """One measured transfer: wall seconds and CPU seconds of both ends."""

    wall: float
    cpu: float


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (i < total % parts) for i in range(parts)]


async def aio_download(host: str, port: int, version: int, streams: int, size: int) -> None:
    """``SOURCE`` on ``streams`` streams of one smuxref session; check the byte counts."""
    session = await aio.connect(host, port, Config(version=version))
    try:

        async def one(n: int) -> None:
            stream = await session.open_stream()
            stream.write(b"SOURCE %d\n" % n)
            got = 0
            while chunk := await stream.read(256 * KIB):
                got += len(chunk)
            if got != n:
                raise AssertionError(f"SOURCE {n}: got {got} bytes")
            stream.close()

        await asyncio.gather(*(one(n) for n in _split(size, streams)))
    finally:
        session.close()
        await session.wait_closed()


async def aio_upload(
    host: str, port: int, version: int, streams: int, *, size: int, payload: bytes
) -> None:
    """``SINK`` on ``streams`` streams: write, half-close, check the reply's count."""
    session = await aio.connect(host, port, Config(version=version))
    try:

        async def one(n: int) -> None:
            stream = await session.open_stream()
            stream.write(b"SINK\n")
            full, rest = divmod(n, len(payload))
            for _ in range(full):
                stream.write(payload)
                await stream.drain()
            stream.write(payload[:rest])
            stream.close_write()
            reply = await stream.readline()
            if not reply.startswith(b"%d " % n):
                raise AssertionError(f"SINK {n}: reply {reply!r}")
            stream.close()

        await asyncio.gather(*(one(n) for n in _split(size, streams)))
    finally:
        session.close()
        await session.wait_closed()


async def timed_aio(server: ServerProcess, coro_factory: Any) -> Sample:
    cpu0, scpu0 = time.process_time(), server.cpu()
    t0 = time.perf_counter()
    await coro_factory()
    wall = time.perf_counter() - t0
    return Sample(wall, time.process_time() - cpu0 + server.cpu() - scpu0)


async def timed_loadgen(go: Path, server: ServerProcess, version: int, *args: str) -> Sample:
    scpu0 = server.cpu()
    result = await loadgen(go, server.address, version, *args)
    return Sample(float(result["seconds"]), float(result["cpu"]) + server.cpu() - scpu0)


# ----------------------------------------------------------------- latency


def percentile(sorted_us: Sequence[float], q: float) -> float:
    """The same nearest-rank percentile as the Go loadgen's ``summarize``."""
    i = max(0, min(len(sorted_us) - 1, -(-int(q * len(sorted_us) * 1000) // 1000) - 1))
    return sorted_us[i]


async def aio_echo_latency(
    host: str, port: int, version: int, streams: int, *, count: int, size: int
) -> list[float]:
    """Round trips of ``size`` bytes through ``ECHO`` on ``streams`` concurrent streams (µs)."""
    session = await aio.connect(host, port, Config(version=version))
    payload = bytes(i % 251 for i in range(size))
    try:

        async def one(n: int) -> list[float]:
            stream = await session.open_stream()
            stream.write(b"ECHO\n")
            out: list[float] = []
            clock = time.perf_counter
            for _ in range(n):
                t0 = clock()
                stream.write(payload)
                got = await stream.readexactly(size)
                out.append((clock() - t0) * 1e6)
                if got != payload:
                    raise AssertionError("ECHO returned other bytes")
            stream.close()
            return out

        parts = await asyncio.gather(*(one(n) for n in _split(count, streams)))
    finally:
        session.close()
        await session.wait_closed()
    return sorted(x for part in parts for x in part)


async def raw_echo_latency(
    host: str, port: int, connections: int, count: int, size: int
) -> list[float]:
    """Round trips through a raw asyncio TCP echo server, one connection per 'stream'."""
    payload = bytes(i % 251 for i in range(size))

    async def one(n: int) -> list[float]:
        reader, writer = await asyncio.open_connection(host, port)
        out: list[float] = []
        clock = time.perf_counter
        try:
            for _ in range(n):
                t0 = clock()
                writer.write(payload)
                got = await reader.readexactly(size)
                out.append((clock() - t0) * 1e6)
                if got != payload:
                    raise AssertionError("echo returned other bytes")
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        return out

    parts = await asyncio.gather(*(one(n) for n in _split(count, connections)))
    return sorted(x for part in parts for x in part)


async def _echo_server() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(64 * KIB):
                writer.write(data)
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, HOST, 0)
    host, port = server.sockets[0].getsockname()[:2]
    print(f"LISTENING {host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


# ----------------------------------------------------------------- memory


async def _idle_streams(count: int, version: int) -> dict[str, float]:
    """Open ``count`` streams between two smuxref sessions in this process and keep them
    idle; the RSS and tracemalloc growth per stream (both ends: client and server side)."""
    accepted: list[aio.Stream] = []
    want = [8]
    ready = asyncio.Event()

    async def handler(session: aio.Session) -> None:
        with contextlib.suppress(Exception):
            while True:
                accepted.append(await session.accept_stream())
                if len(accepted) >= want[0]:
                    ready.set()

    config = Config(version=version)
    server = await aio.serve(handler, HOST, 0, config)
    port = server.sockets[0].getsockname()[1]
    session = await aio.connect(HOST, port, config)
    # Warm up the code paths (first-use allocations are no per-stream cost).
    warm = [await session.open_stream() for _ in range(want[0])]
    await asyncio.wait_for(ready.wait(), 60)
    ready.clear()
    want[0] += count
    gc.collect()
    trace = os.environ.get("SMUXREF_TRACEMALLOC") == "1"
    if trace:
        tracemalloc.start()
    rss0 = proc_status("self", "VmRSS")
    traced0 = tracemalloc.get_traced_memory()[0] if trace else 0
    opened = [await session.open_stream() for _ in range(count)]
    await asyncio.wait_for(ready.wait(), 120)
    gc.collect()
    rss1 = proc_status("self", "VmRSS")
    traced1 = tracemalloc.get_traced_memory()[0] if trace else 0
    assert len(warm) + len(opened) == len(accepted)
    n = len(opened)
    result = {
        "streams": float(n),
        "rss_per_stream": (rss1 - rss0) / n,
        "traced_per_stream": (traced1 - traced0) / n if trace else 0.0,
        "client_streams": float(session.num_streams),
    }
    session.close()
    await session.wait_closed()
    server.close()
    return result


def idle_streams(count: int, version: int, *, trace: bool) -> dict[str, float]:
    """Run ``_idle_streams`` in a fresh interpreter (a clean heap: RSS growth is honest)."""
    env = {**os.environ, "SMUXREF_TRACEMALLOC": "1" if trace else "0"}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.interop", "idle-streams", str(count), str(version)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    out: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


async def peak_rss_upload(version: int, size: int, receive_buffer: int) -> dict[str, float]:
    """A smuxref peer server with MaxReceiveBuffer ``receive_buffer`` receives ``size``
    bytes of ``SINK`` on one stream; its RSS before and at the peak (VmHWM)."""
    argv = peer_argv(
        "ref", version, None, "--max-receive-buffer", str(receive_buffer), "--no-keepalive"
    )
    server = ServerProcess(argv)
    try:
        # One ECHO round trip first, so the idle RSS includes a served session.
        latency = await aio_echo_latency(server.host, server.port, version, 1, count=10, size=1024)
        assert latency
        base = proc_status(server.proc.pid, "VmRSS")
        payload = os.urandom(64 * KIB)
        await aio_upload(server.host, server.port, version, 1, size=size, payload=payload)
        peak = proc_status(server.proc.pid, "VmHWM")
    finally:
        server.close()
    return {"base": float(base), "peak": float(peak), "growth": float(peak - base)}


# ----------------------------------------------------------------- gate


def gate(peer: str, workers: int = 2) -> float:
    """Wall seconds of ``pytest conformance --peer=PEER -q -n WORKERS`` (the ci profile)."""
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "conformance",
        f"--peer={peer}",
        "-q",
        "-n",
        str(workers),
        "-p",
        "no:cacheprovider",
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=3600, check=False)
    wall = time.perf_counter() - t0
    tail = proc.stdout.strip().splitlines()[-1:] or [""]
    print(f"gate --peer={peer}: exit {proc.returncode}, {wall:.1f} s: {tail[0]}", file=sys.stderr)
    return wall


def main(argv: Sequence[str]) -> int:
    if argv[:1] == ["echo-server"]:
        uvloop = argv[1:2] == ["uvloop"]
        if uvloop:
            importlib.import_module("uvloop").install()
        asyncio.run(_echo_server())
        return 0
    if argv[:1] == ["uvloop-peer"]:
        importlib.import_module("uvloop").install()  # asyncio.run below makes a uvloop loop
        from smuxref.peer.program import main as peer_main  # noqa: PLC0415

        return peer_main(list(argv[1:]))
    if argv[:1] == ["idle-streams"]:
        count = int(argv[1])
        version = int(argv[2]) if len(argv) > 2 else 2
        print(json.dumps(asyncio.run(_idle_streams(count, version))))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
