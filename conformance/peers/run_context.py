"""Identity of one test run, shared by pytest-xdist workers, and liveness of owners.

Everything the suite starts (peer processes, containers) is tagged with the run and the
process that started it, so that a later run can tell a leftover of a run that is gone
(remove it) from a resource of a run still in progress (leave it).  A pid alone is not
a safe identity - pids are reused - so the owner tag is ``pid:starttime``, the start
time being the kernel's (field 22 of /proc/PID/stat); where /proc does not exist the
start time is 0 and only the pid is compared.

The run directory holds what the workers of one run share: memoized compliance verdicts
and build results, each written under a file lock.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from filelock import FileLock

__all__ = ["RunContext", "owner_alive", "owner_tag", "process_start_time"]


def process_start_time(pid: int) -> int:
    """The kernel start time of ``pid`` (clock ticks since boot); 0 if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    # The command name (field 2) may contain spaces and parentheses: split after it.
    return int(stat[stat.rindex(")") + 2 :].split()[19])


def owner_tag(pid: int | None = None) -> str:
    """``pid:starttime`` of the current (or given) process."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{process_start_time(pid)}"


def owner_alive(tag: str) -> bool:
    """Whether the process named by an :func:`owner_tag` still exists."""
    try:
        pid_text, _, start_text = tag.partition(":")
        pid, start = int(pid_text), int(start_text or 0)
    except ValueError:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    return start == 0 or process_start_time(pid) in (0, start)


@dataclass(frozen=True)
class RunContext:
    """``run_id`` names the run; ``directory`` is shared by all its workers."""

    run_id: str
    directory: Path
    controller: bool  #: True in the process that owns the run (not an xdist worker)

    @classmethod
    def create(cls, run_id: str | None) -> RunContext:
        controller = run_id is None
        run_id = run_id or secrets.token_hex(6)
        directory = Path(tempfile.gettempdir()) / f"smuxref-run-{run_id}"
        return cls(run_id, directory, controller)

    def remove(self) -> None:
        if self.controller:
            shutil.rmtree(self.directory, ignore_errors=True)

    def memo(self, name: str) -> tuple[FileLock, Path]:
        """Lock and path of a run-wide memo file (JSON) named ``name``."""
        # Imported on use: the plugin is loaded by every pytest run of an environment that
        # has smuxref installed, and must not need the test extras until a case runs.
        from filelock import FileLock  # noqa: PLC0415

        self.directory.mkdir(parents=True, exist_ok=True)
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        return FileLock(str(self.directory / f"{safe}.lock")), self.directory / f"{safe}.json"

    @staticmethod
    def read_memo(path: Path) -> dict[str, Any] | None:
        try:
            value = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    @staticmethod
    def write_memo(path: Path, value: dict[str, Any]) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(value))
        tmp.replace(path)
