"""Run the conformance plugin in a child pytest and look at what it left behind.

The plugin's promises are about whole runs - a broken peer ends as a clear error within
a deadline, nothing keeps running afterwards, Ctrl-C cleans up - so they are tested
from outside: a case file and a pytest.ini are written to a temporary directory, pytest
runs there in a subprocess (its own process group, killed if it overruns), and the test
then inspects the output, /proc and Docker.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from smuxref_conformance.peers.docker import engine_unreachable

REPO = Path(__file__).resolve().parent.parent
PEERS = REPO / "tests" / "peers"
#: The project's one knob for slow machines (see tests/conftest.py).
SCALE = float(os.environ.get("SMUX_TIMEOUT_SCALE") or "1")
#: What the child suites run with: short deadlines, so broken peers are judged quickly.
INNER_SCALE = 0.5 * SCALE

_INI = """\
[pytest]
asyncio_default_fixture_loop_scope = function
filterwarnings = error
"""


def scaled(seconds: float) -> float:
    return seconds * SCALE


def plugin_args() -> list[str]:
    """``-p smuxref_conformance.plugin`` unless the installed entry point loads it already."""
    installed = any(
        ep.value == "smuxref_conformance.plugin" for ep in entry_points(group="pytest11")
    )
    return [] if installed else ["-p", "smuxref_conformance.plugin"]


def exec_peer(script: str) -> str:
    """``--peer`` value of a test peer script under tests/peers."""
    return f"--peer=exec:{sys.executable} {PEERS / script}"


@dataclass
class InnerRun:
    returncode: int
    output: str
    seconds: float
    pid: int


def write_case(tmp_path: Path, source: str) -> Path:
    (tmp_path / "pytest.ini").write_text(_INI)
    case = tmp_path / "test_case.py"
    case.write_text(source)
    return case


#: The child pytest, started with SIGINT delivered and handled as Python does by default.
#: A child inherits an ignored or blocked SIGINT from its parent, and then never raises
#: KeyboardInterrupt.  Once, in a full run, every SIGINT test of one xdist worker saw its
#: child ignore the signal and run on; nothing in smuxref or the suite ignores or blocks
#: SIGINT, so that worker's state came from elsewhere.  These tests are about what the
#: suite does when interrupted, so the child starts as a shell would start it.
_INTERRUPTIBLE_PYTEST = (
    "import signal, sys; "
    "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT}); "
    "signal.signal(signal.SIGINT, signal.default_int_handler); "
    "import pytest; sys.exit(pytest.console_main())"
)


def inner_command(case: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-c",
        _INTERRUPTIBLE_PYTEST,
        "-p",
        "no:cacheprovider",
        "-q",
        "-rA",
        str(case),
        *plugin_args(),
        f"--smux-timeout-scale={INNER_SCALE}",
        *args,
    ]


def inner_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, **extra}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_ADDOPTS", None)
    return env


def signal_state(pid: int) -> str:
    """The SigBlk/SigIgn/SigCgt masks of ``pid`` (for a failure message)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError as exc:
        return f"signal state of {pid} unreadable: {exc}"
    return " ".join(
        line.replace("\t", "") for line in lines if line.startswith(("SigBlk", "SigIgn", "SigCgt"))
    )


def start_inner(tmp_path: Path, source: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        inner_command(write_case(tmp_path, source), *args),
        cwd=tmp_path,
        env=inner_env(**env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def finish_inner(proc: subprocess.Popen[bytes], timeout: float, started: float) -> InnerRun:
    """Wait for the child pytest; past ``timeout`` s kill its group and fail loudly."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        text = out.decode(errors="replace")
        raise AssertionError(f"the child pytest still ran after {timeout:.0f} s:\n{text}") from None
    return InnerRun(
        proc.returncode, out.decode(errors="replace"), time.monotonic() - started, proc.pid
    )


def run_inner(tmp_path: Path, source: str, *args: str, timeout: float = 60, **env: str) -> InnerRun:
    started = time.monotonic()
    proc = start_inner(tmp_path, source, *args, **env)
    return finish_inner(proc, scaled(timeout), started)


def read_until(proc: subprocess.Popen[bytes], marker: bytes, timeout: float) -> bytes:
    """Read the child's stdout until ``marker`` appears (select with a deadline)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    seen = b""
    end = time.monotonic() + timeout
    while marker not in seen:
        ready, _, _ = select.select([fd], [], [], max(0.0, end - time.monotonic()))
        chunk = os.read(fd, 65536) if ready else b""
        if not chunk:
            raise AssertionError(
                f"no {marker!r} from the child pytest; its output:\n{seen.decode(errors='replace')}"
            )
        seen += chunk
    return seen


def peer_processes(owner_pid: int) -> list[str]:
    """Live processes started by the plugin in process ``owner_pid`` (SMUXREF_OWNER)."""
    needle = f"SMUXREF_OWNER={owner_pid}:".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            if any(v.startswith(needle) for v in environ):
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                found.append(f"{entry.name}: {cmdline}")
        except OSError:
            continue
    return found


def docker_client() -> Any:
    """A Docker client, or None when no engine answers."""
    if engine_unreachable() is not None:
        return None  # docker-py would leak the socket of its failed connect
    try:
        import docker  # noqa: PLC0415 - optional

        client = docker.from_env()
    except Exception:
        return None
    try:
        client.ping()
    except Exception:
        client.close()
        return None
    return client


def containers_of(client: Any, owner_pid: int) -> list[str]:
    """Containers (any state) labelled as started by process ``owner_pid``."""
    found = []
    for container in client.containers.list(all=True, filters={"label": "smuxref=1"}):
        if container.labels.get("smuxref.owner", "").startswith(f"{owner_pid}:"):
            found.append(f"{container.short_id} {container.status}")
    return found
