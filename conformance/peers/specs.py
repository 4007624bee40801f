"""Peer specifications (``--peer`` values) and peers run as local processes.

A :class:`RunningPeer` is whatever the suite started - a process here, a container in
:mod:`smuxref_conformance.peers.docker` - seen through one small interface, so that the launch
contract is checked by one piece of code (:mod:`smuxref_conformance.peers.lifecycle`) whatever the
peer runs in.

Processes are never left behind: each peer runs in its own process group (so a
wrapper's children are signalled too, and a terminal's Ctrl-C reaches pytest only, which
then stops the peer in order), dies with the process that started it (Linux
``PR_SET_PDEATHSIG``), is killed by an ``atexit`` hook if still registered, and carries
``SMUXREF_OWNER`` in its environment so a later run can find and kill it if all of that
failed (:func:`sweep_processes`).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import select
import shlex
import signal
import subprocess
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..deadlines import Deadline
from .capture import OutputCapture
from .run_context import owner_alive, owner_tag
from .thirdparty import IMPLEMENTATIONS

__all__ = [
    "DEFAULT_GO_TAG",
    "ExecPeer",
    "PeerSpec",
    "RunningPeer",
    "describe_status",
    "parse_peer",
    "sweep_processes",
]

DEFAULT_GO_TAG = "v1.5.58"
#: A directory the reference peer imports ``smuxref`` from, ahead of this interpreter's
#: own path: ``python -m smuxref_conformance.mutation`` runs the peer on a mutated copy while
#: the suite itself keeps the original codec.
REF_SOURCE_ENV = "SMUXREF_REF_PEER_SOURCE"
Kind = Literal["ref", "go", "docker", "exec", "tcp", "thirdparty"]


@dataclass(frozen=True)
class PeerSpec:
    """One ``--peer`` value, parsed.  ``id`` is what test ids show."""

    raw: str
    kind: Kind
    id: str
    command: tuple[str, ...] = ()  #: ref, exec
    image: str = ""  #: docker
    tag: str = ""  #: go; thirdparty: the library version ('' = the shim's pinned one)
    address: tuple[str, int] = ("", 0)  #: tcp
    native: bool = False  #: go: the Go peer binary run on the host, not in a container
    env: tuple[tuple[str, str], ...] = ()  #: ref, exec: added to the inherited environment

    @property
    def containerized(self) -> bool:
        return self.kind == "docker" or (self.kind == "go" and not self.native)

    @property
    def runtime(self) -> str:
        """Where the peer runs, as reports label it: container, native, process or remote."""
        if self.containerized:
            return "container"
        if self.kind == "go":
            return "native"
        return "remote" if self.kind == "tcp" else "process"


def parse_peer(raw: str) -> PeerSpec:
    """Parse ``ref``, ``go``, ``go@TAG``, ``go-native[@TAG]``, a third-party shim
    (``rust-smux``, ``rust-smux@VERSION``), ``docker:IMAGE``, ``exec:CMD ARGS``,
    ``tcp:HOST:PORT``."""
    if raw == "ref":
        source = os.environ.get(REF_SOURCE_ENV, "")
        if not source:
            return PeerSpec(raw, "ref", "ref", command=(sys.executable, "-m", "smuxref.peer"))
        # -P: `-m` would otherwise put the working directory (a checkout) ahead of it.
        path = os.pathsep.join(p for p in (source, os.environ.get("PYTHONPATH", "")) if p)
        command = (sys.executable, "-P", "-m", "smuxref.peer")
        return PeerSpec(raw, "ref", "ref", command=command, env=(("PYTHONPATH", path),))
    name, at, tag = raw.partition("@")
    if name in ("go", "go-native"):
        return PeerSpec(raw, "go", raw, tag=tag or DEFAULT_GO_TAG, native=name == "go-native")
    if name in IMPLEMENTATIONS and (tag or not at):
        return PeerSpec(raw, "thirdparty", raw, tag=tag)
    kind, sep, rest = raw.partition(":")
    if sep and rest:
        if kind == "docker":
            return PeerSpec(raw, "docker", raw, image=rest)
        if kind == "exec":
            argv = tuple(shlex.split(rest))
            if not argv:
                raise ValueError(f"--peer={raw!r}: no command after 'exec:'")
            shown = next((a for a in reversed(argv) if "/" in a or a.endswith(".py")), argv[0])
            return PeerSpec(raw, "exec", f"exec:{Path(shown).name}", command=argv)
        if kind == "tcp":
            host, _, port = rest.rpartition(":")
            if host and port.isdigit() and 0 < int(port) < 65536:
                return PeerSpec(raw, "tcp", raw, address=(host.strip("[]"), int(port)))
    shims = ", ".join(f"{n}[@VERSION]" for n in IMPLEMENTATIONS)
    forms = f"ref, go[@TAG], go-native[@TAG], {shims}, docker:IMAGE, exec:'CMD ARGS', tcp:HOST:PORT"
    raise ValueError(f"--peer={raw!r} is not one of: {forms}")


def unique_ids(specs: list[PeerSpec]) -> list[PeerSpec]:
    """Drop repeated ``--peer`` values and make ids unique (``exec:peer.py#2``)."""
    seen: dict[str, int] = {}
    out: list[PeerSpec] = []
    raws: set[str] = set()
    for spec in specs:
        if spec.raw in raws:
            continue
        raws.add(spec.raw)
        n = seen[spec.id] = seen.get(spec.id, 0) + 1
        out.append(spec if n == 1 else PeerSpec(**{**spec.__dict__, "id": f"{spec.id}#{n}"}))
    return out


def describe_status(code: int | None) -> str:
    """An exit status in words, as messages show it."""
    if code is None:
        return "is still running"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


class RunningPeer(ABC):
    """A started peer: its output, its exit, and how to stop it."""

    name: str
    argv: list[str]
    capture: OutputCapture

    @abstractmethod
    def exit_fd(self) -> int:
        """A file descriptor that turns readable when the peer has exited."""

    @abstractmethod
    def wait_exit(self, deadline: Deadline) -> int | None:
        """The exit status once the peer has exited, or ``None`` at the deadline."""

    @abstractmethod
    def terminate(self) -> None:
        """Send SIGTERM (CONTRACT.md rule 6)."""

    @abstractmethod
    def kill(self) -> None:
        """Send SIGKILL to the peer and everything it started; never raises."""

    @abstractmethod
    def release(self) -> None:
        """Free what is left (pipes, container) after the peer has exited or been killed."""

    def connect_address(self, listening: tuple[str, int]) -> tuple[str, int]:
        """Where the suite dials, given the address of the LISTENING line."""
        return listening


_live: dict[int, ExecPeer] = {}
_live_lock = threading.Lock()
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn making the child get SIGKILL when its parent thread dies (Linux)."""
    if (
        not sys.platform.startswith("linux")
        or threading.current_thread() is not threading.main_thread()
    ):
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

    return preexec


@dataclass(eq=False)
class ExecPeer(RunningPeer):
    """A peer process in its own process group, stdout and stderr captured."""

    name: str
    command: list[str]
    argv: list[str]
    run_id: str
    extra_env: dict[str, str] = field(default_factory=dict)
    capture: OutputCapture = field(init=False)
    proc: subprocess.Popen[bytes] = field(init=False)
    _pidfd: int = field(init=False, default=-1)

    def __post_init__(self) -> None:
        self.capture = OutputCapture(self.name)
        env = {
            **os.environ,
            **self.extra_env,
            "SMUXREF_RUN": self.run_id,
            "SMUXREF_OWNER": owner_tag(),
        }
        preexec = _die_with_parent()
        try:
            self.proc = subprocess.Popen(
                [*self.command, *self.argv],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                env=env,
                preexec_fn=preexec,  # noqa: PLW1509 - it only calls prctl(2)
            )
        except OSError as exc:
            self.capture.close(Deadline(0))
            raise FileNotFoundError(
                f"cannot start {self.name}: {shlex.join(self.command)}: {exc}"
            ) from exc
        with _live_lock:
            _live[self.proc.pid] = self
        if hasattr(os, "pidfd_open"):
            self._pidfd = os.pidfd_open(self.proc.pid)
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        self.capture.read_pipe("stdout", self.proc.stdout)
        self.capture.read_pipe("stderr", self.proc.stderr)

    def exit_fd(self) -> int:
        return self._pidfd if self._pidfd >= 0 else self.capture.ended_fd

    def wait_exit(self, deadline: Deadline) -> int | None:
        if self.proc.returncode is not None:
            return self.proc.returncode
        if self._pidfd >= 0:
            ready, _, _ = select.select([self._pidfd], [], [], deadline.remaining())
            if not ready:
                return None
            # Still a zombie, so the group id cannot have been reused: kill stragglers.
            self._killpg(signal.SIGKILL)
            return self.proc.wait()
        try:
            return self.proc.wait(deadline.remaining())
        except subprocess.TimeoutExpired:
            return None

    def _killpg(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def terminate(self) -> None:
        if self.proc.returncode is None:
            self._killpg(signal.SIGTERM)

    def kill(self) -> None:
        if self.proc.returncode is None:
            self._killpg(signal.SIGKILL)
            self.proc.wait()

    def release(self) -> None:
        self.kill()
        self.capture.close(Deadline(1.0))
        if self._pidfd >= 0:
            os.close(self._pidfd)
            self._pidfd = -1
        with _live_lock:
            _live.pop(self.proc.pid, None)


@atexit.register
def _kill_live() -> None:
    """Last resort (an error inside pytest itself): kill every peer still registered."""
    with _live_lock:
        peers = list(_live.values())
    for peer in peers:
        peer.kill()


def sweep_processes() -> list[int]:
    """Kill peer processes left by runs whose owner process is gone; return their pids."""
    killed: list[int] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return killed
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        owner = next((v[14:] for v in environ if v.startswith(b"SMUXREF_OWNER=")), None)
        if owner is not None and not owner_alive(owner.decode(errors="replace")):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signal.SIGKILL)
                killed.append(int(entry.name))
    return killed
