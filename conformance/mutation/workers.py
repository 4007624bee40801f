"""Several mutants at once (``run --workers N``): slots, and a pool of threads that use them.

Each worker owns a *slot*, ``work/slots/K``: its own copy of the peer's source (Cosmic
Ray writes the mutant into that copy and puts the original back), its own report
directory, stop file and pytest base directory.  What the slots share is only read while
mutants run (``pristine/``, ``casemap.json``, ``settings.json``), except the kill counts,
which the runner updates under a lock (:func:`~.runner.count_kill`).  Peers listen on
ephemeral ports and each pytest run has its own run directory, so nothing one slot's run
writes is seen by another's.

A worker is a thread of the ``run`` process: the work is done by the test command's
processes, and a thread can run Cosmic Ray's own mutate-and-test step as the serial run
does, with the results written by one process into the one database.  Cosmic Ray's own
concurrency, its ``http`` distributor, needs a worker server per copy of the project on
its own port, and leaves a test command running when the run is interrupted.

An interrupted run (Ctrl-C, SIGTERM) starts no further mutant and writes no further
result (:class:`Records`); the test commands still running are terminated (each kills its
pytest's process group, :mod:`.runner`), so their mutants stay pending for ``--resume``.
A result is one SQLite transaction: it is recorded whole or not at all.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Final

import attrs
from cosmic_ray.work_item import MutationSpec, WorkItem

from .casemap import TARGETS
from .runner import slot_dir

__all__ = [
    "Records",
    "in_slot",
    "prepare_slots",
    "run_pool",
    "sigterm_interrupts",
    "slot_command",
    "terminate",
]

#: How often the waiting main thread looks up, so that Ctrl-C is seen at once.
_POLL: Final = 0.2


def prepare_slots(work: Path, count: int) -> list[Path]:
    """``count`` fresh slots, each with a copy of the unmutated peer source.

    The copy is made from ``work/peer`` (the source the mutants were generated from),
    which must still hold the originals: a mutant left in it would be part of every run."""
    peer = work / "peer" / "smuxref"
    for name in TARGETS:
        if (peer / name).read_bytes() != (work / "pristine" / name).read_bytes():
            raise RuntimeError(f"{peer / name} differs from {work / 'pristine' / name}")
    shutil.rmtree(slot_dir(work, 0).parent, ignore_errors=True)
    slots = []
    for k in range(count):
        slot = slot_dir(work, k)
        shutil.copytree(
            peer, slot / "peer" / "smuxref", ignore=shutil.ignore_patterns("__pycache__")
        )
        slots.append(slot)
    return slots


def in_slot(item: WorkItem, slot: Path) -> list[MutationSpec]:
    """The item's mutations, aimed at the slot's copy of each file."""
    target = slot / "peer" / "smuxref"
    return [attrs.evolve(m, module_path=target / Path(m.module_path).name) for m in item.mutations]


def slot_command(command: str, slot: int) -> str:
    """The session's test command, run in slot ``slot``."""
    return f"{command} --slot {slot}"


class Records:
    """The one lock the workers write results under; closed when the run is interrupted,
    so a test command terminated then does not turn into a recorded outcome."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._closed = False

    @contextlib.contextmanager
    def open(self) -> Iterator[bool]:
        """Held while writing; yields False once the run is interrupted."""
        with self._lock:
            yield not self._closed

    def close(self) -> None:
        with self._lock:  # waits for a write in progress: it completes
            self._closed = True


#: One mutant's job: (item, slot index, records); it runs and records it.
Job = Callable[[WorkItem, int, Records], None]


def run_pool(items: Sequence[WorkItem], workers: int, job: Job) -> None:
    """Run ``job`` over ``items`` in their order, ``workers`` at a time, slot K used by
    worker K only.  An interruption (KeyboardInterrupt; SIGTERM is turned into one)
    closes the records, terminates the test commands and is raised once every worker has
    returned.  A job's exception stops the handing out of items and is raised when the
    running jobs are done."""
    records = Records()
    queue = iter(items)
    queue_lock = threading.Lock()
    errors: list[BaseException] = []

    def worker(slot: int) -> None:
        while not errors:
            with queue_lock:
                item = next(queue, None)
            if item is None:
                return
            with records.open() as recording:
                if not recording:
                    return
            try:
                job(item, slot, records)
            except BaseException as exc:  # raised again in the main thread
                errors.append(exc)

    before = set(_children())
    threads = [
        threading.Thread(target=worker, args=(k,), name=f"mutation-slot-{k}", daemon=True)
        for k in range(workers)
    ]
    with sigterm_interrupts():
        try:
            for thread in threads:
                thread.start()
            while any(t.is_alive() for t in threads):
                _join_any(threads)
        except KeyboardInterrupt:
            records.close()
            while any(t.is_alive() for t in threads):
                terminate(set(_children()) - before)
                _join_any(threads)
            raise
    if errors:
        raise errors[0]


def _join_any(threads: list[threading.Thread]) -> None:
    for thread in threads:
        if thread.is_alive():
            thread.join(_POLL)
            return


def _children() -> list[int]:
    """This process's child processes (Linux ``/proc``): the test commands Cosmic Ray
    started, each the leader of its own session."""
    me = os.getpid()
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # exited meanwhile
        if len(fields) > 1 and int(fields[1]) == me:
            found.append(int(stat.parent.name))
    return found


def terminate(pids: set[int]) -> None:
    """SIGTERM to each process's group (its own, as Cosmic Ray starts it): the runner
    then kills its pytest's group, whose peers die with it."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            group = os.getpgid(pid)
            if group == pid:
                os.killpg(group, signal.SIGTERM)
            else:
                os.kill(pid, signal.SIGTERM)


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """A SIGTERM (a nightly job's time limit) stops the run as Ctrl-C does."""

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
