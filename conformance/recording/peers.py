"""Starting the contract peers a recording needs, and finding the Go one.

Two programs follow the peer contract: the Go peer (``go-peer/``, built on the real
xtaci/smux) and smuxref's ``python -m smuxref.peer``.  Both take the same options and
announce themselves the same way (``LISTENING host:port`` or ``CONNECTED`` on stdout),
so one launcher serves both.  The Go peer's ``loadgen`` subcommand is the Go client
that opens streams (a contract client peer only serves streams opened toward it).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from smuxref import __version__ as SMUXREF_VERSION
from smuxref.config import Config

__all__ = [
    "Options",
    "Peer",
    "Program",
    "find_go_peer",
    "go_program",
    "ref_program",
    "run_loadgen",
    "start_client",
    "start_server",
]

ROOT: Final = Path(__file__).resolve().parents[2]
GO_PEER_DIR: Final = ROOT / "go-peer"
DEFAULT_GO_TAG: Final = "v1.5.57"
#: Seconds a peer may take to start, or a loadgen run to finish.
START_TIMEOUT: Final = 20.0
Impl = Literal["go", "smuxref"]


@dataclass(frozen=True, slots=True)
class Options:
    """Session options a scenario gives both ends (the contract's command-line options)."""

    keepalive_interval_ms: int | None = None
    keepalive_timeout_ms: int | None = None
    max_frame_size: int | None = None
    max_stream_buffer: int | None = None

    def args(self) -> list[str]:
        out: list[str] = []
        for flag, value in (
            ("--keepalive-interval", self.keepalive_interval_ms),
            ("--keepalive-timeout", self.keepalive_timeout_ms),
            ("--max-frame-size", self.max_frame_size),
            ("--max-stream-buffer", self.max_stream_buffer),
        ):
            if value is not None:
                out += [flag, str(value)]
        return out

    def config(self, version: int) -> Config:
        """The same options for a smuxref session."""
        fields: dict[str, Any] = {"version": version}
        if self.keepalive_interval_ms is not None:
            fields["keepalive_interval"] = self.keepalive_interval_ms / 1000
        if self.keepalive_timeout_ms is not None:
            fields["keepalive_timeout"] = self.keepalive_timeout_ms / 1000
        if self.max_frame_size is not None:
            fields["max_frame_size"] = self.max_frame_size
        if self.max_stream_buffer is not None:
            fields["max_stream_buffer"] = self.max_stream_buffer
        return Config(**fields)

    def to_json(self) -> dict[str, int]:
        return {
            name: value
            for name, value in (
                ("keepaliveIntervalMs", self.keepalive_interval_ms),
                ("keepaliveTimeoutMs", self.keepalive_timeout_ms),
                ("maxFrameSize", self.max_frame_size),
                ("maxStreamBuffer", self.max_stream_buffer),
            )
            if value is not None
        }


@dataclass(frozen=True, slots=True)
class Program:
    """A contract peer program: how to run it and what to call it in a transcript."""

    impl: Impl
    argv: tuple[str, ...]
    #: The xtaci/smux tag compiled in (Go) or smuxref's version.
    tag: str


def ref_program() -> Program:
    return Program("smuxref", (sys.executable, "-m", "smuxref.peer"), SMUXREF_VERSION)


def go_program(binary: Path) -> Program:
    return Program("go", (str(binary),), go_tag(binary))


def go_tag(binary: Path) -> str:
    """The xtaci/smux version in the binary's embedded build information."""
    found = re.search(rb"dep\tgithub\.com/xtaci/smux\t(v[0-9][^\t\n]*)", binary.read_bytes())
    return found.group(1).decode() if found else "unknown"


def find_go_peer(explicit: Path | None = None, tag: str = DEFAULT_GO_TAG) -> Path | None:
    """The Go peer binary for ``tag``.

    In order: ``explicit``, ``$SMUX_GO_PEER``, a build of the current ``go-peer/``
    sources with ``go-peer/build.sh`` (cached under the temporary directory, keyed by a
    hash of the sources, so editing the peer rebuilds it), and last an existing
    ``go-peer/bin/smux-peer-TAG``.  None when none of these gives a binary.
    """
    for candidate in (explicit, os.environ.get("SMUX_GO_PEER")):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    built = _build_go_peer(tag)
    if built is not None:
        return built
    prebuilt = GO_PEER_DIR / "bin" / f"smux-peer-{tag}"
    return prebuilt if prebuilt.is_file() else None


def _source_hash() -> str:
    digest = hashlib.sha256()
    for path in sorted(GO_PEER_DIR.rglob("*")):
        rel = path.relative_to(GO_PEER_DIR)
        if path.is_file() and rel.parts[0] != "bin":
            digest.update(str(rel).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _build_go_peer(tag: str) -> Path | None:
    build_sh = GO_PEER_DIR / "build.sh"
    if shutil.which("go") is None or not build_sh.is_file():
        return None
    out_dir = Path(tempfile.gettempdir()) / "smuxref-record" / f"go-peer-{tag}-{_source_hash()}"
    binary = out_dir / f"smux-peer-{tag}"
    if binary.is_file():
        return binary
    out_dir.mkdir(parents=True, exist_ok=True)
    # Build beside the target and rename: parallel test workers may build at once, and
    # none of them may run a half-written binary.
    with tempfile.TemporaryDirectory(dir=out_dir) as scratch:
        done = subprocess.run(
            ["bash", str(build_sh), tag, scratch],
            cwd=GO_PEER_DIR,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        fresh = Path(scratch) / binary.name
        if done.returncode != 0 or not fresh.is_file():
            sys.stderr.write(f"go-peer/build.sh {tag} failed:\n{done.stdout}{done.stderr}\n")
            return None
        os.replace(fresh, binary)
    return binary


class Peer:
    """A running peer process."""

    def __init__(self, program: Program, args: list[str], proc: asyncio.subprocess.Process):
        self.program = program
        self.args = args
        self.proc = proc

    async def stop(self, exit_by_itself: float = 0.0) -> None:
        """SIGTERM (the contract's orderly stop), then SIGKILL after a grace period.

        A client peer exits by itself when its session ends: give it
        ``exit_by_itself`` seconds first.  Signalling a process that is exiting makes
        ``Popen.send_signal`` reap it behind asyncio's child watcher, which then logs
        "Unknown child process".
        """
        if exit_by_itself and self.proc.returncode is None:
            with contextlib.suppress(TimeoutError):
                await self.wait(exit_by_itself)
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
            try:
                async with asyncio.timeout(5):
                    await self.proc.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()

    async def wait(self, seconds: float) -> int:
        async with asyncio.timeout(seconds):
            return await self.proc.wait()


def _peer_args(role: str, addr: str, version: int, options: Options) -> list[str]:
    return ["--role", role, "--addr", addr, "--version", str(version), *options.args()]


async def _spawn(program: Program, args: list[str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *program.argv, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )


async def _first_line(proc: asyncio.subprocess.Process) -> str:
    assert proc.stdout is not None
    async with asyncio.timeout(START_TIMEOUT):
        line = await proc.stdout.readline()
    return line.decode().strip()


async def start_server(
    program: Program, version: int, options: Options
) -> tuple[Peer, tuple[str, int]]:
    """Start a server peer on an ephemeral loopback port; return it and its address."""
    args = _peer_args("server", "127.0.0.1:0", version, options)
    proc = await _spawn(program, args)
    peer = Peer(program, args, proc)
    line = await _first_line(proc)
    word, _, addr = line.partition(" ")
    if word != "LISTENING":
        await peer.stop()
        raise RuntimeError(f"{program.argv[0]} did not start: {line!r}")
    host, _, port = addr.rpartition(":")
    return peer, (host.strip("[]"), int(port))


async def start_client(
    program: Program, version: int, options: Options, addr: tuple[str, int]
) -> Peer:
    """Start a client peer dialing ``addr``; returns once it printed CONNECTED."""
    args = _peer_args("client", f"{addr[0]}:{addr[1]}", version, options)
    proc = await _spawn(program, args)
    peer = Peer(program, args, proc)
    line = await _first_line(proc)
    if line != "CONNECTED":
        await peer.stop()
        raise RuntimeError(f"{program.argv[0]} did not connect: {line!r}")
    return peer


async def run_loadgen(
    program: Program, version: int, options: Options, addr: tuple[str, int], extra: list[str]
) -> tuple[list[str], dict[str, Any]]:
    """Run the Go peer's loadgen client to completion; return its arguments and result."""
    args = ["loadgen", "--addr", f"{addr[0]}:{addr[1]}", "--version", str(version)]
    args += [*options.args(), "--timeout", "30", *extra]
    proc = await asyncio.create_subprocess_exec(
        *program.argv, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"loadgen failed ({proc.returncode}): {err.decode().strip()}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return args, result
