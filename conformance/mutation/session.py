"""The Cosmic Ray session: its configuration, the mutants kept, and running them.

Cosmic Ray enumerates every mutant of the four files into a SQLite work database
(``cosmic-ray init``).  Mutants of operators outside
:data:`~smuxref_conformance.mutation.operators.SELECTED` are then marked skipped, as
Cosmic Ray's own filters do.  The rest are put in one seeded random order
(:func:`seeded_order`); a sample of N is the first N of that order, so a larger sample
with the same seed extends a smaller one (``run --resume --sample N``) and every result
already recorded still counts.  Before anything runs, a mutant that ``triage.toml``
already judges is recorded as such (``--rerun-triaged`` runs them too), and one whose
line no conformance case runs is recorded as *not covered*, with no pytest run.

The rest are handed out in that order to one worker, or to ``--workers N`` running side
by side (:mod:`.workers`), each through Cosmic Ray's own mutate-and-test step.  Stopped at
any point, the mutants run so far are a prefix of the seeded order, up to the few that
other workers had finished ahead of an unfinished one; the report counts only the prefix,
a simple random sample, and a resumed session goes on where it stopped.
"""

from __future__ import annotations

import contextlib
import difflib
import itertools
import json
import random
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cosmic_ray.plugins
from cosmic_ray.config import load_config
from cosmic_ray.mutating import mutate_and_test, mutate_code
from cosmic_ray.work_db import WorkDB, WorkResultStorage, use_db
from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkItem, WorkResult

from .casemap import REPO, TARGETS, CaseMap
from .operators import is_selected
from .report import diff_lines, judge, load_triage
from .runner import MARK, lines_changed
from .workers import Records, in_slot, prepare_slots, run_pool, slot_command

__all__ = [
    "configure",
    "execute",
    "extend_sample",
    "forget",
    "initialise",
    "seeded_order",
    "select",
]

#: The skip reason of a mutant left out of the sample; ``extend_sample`` looks for it.
_NOT_SAMPLED = "not in the sample"

#: Cosmic Ray's own limit per mutant: only a backstop, the runner's budget comes first.
BACKSTOP_TIMEOUT = 3600.0


def configure(
    work: Path, *, scale: float, files: tuple[str, ...] = TARGETS, pytest_args: list[str]
) -> Path:
    """Write the session's Cosmic Ray configuration and the runner's settings."""
    unknown = set(files) - set(TARGETS)
    if unknown:
        raise ValueError(f"--files: {sorted(unknown)} not among {TARGETS}")
    paths = [_from_repo(work / "peer" / "smuxref" / name) for name in files]
    command = f"{sys.executable} -m smuxref_conformance.mutation test --work {_from_repo(work)}"
    config = work / "cosmic-ray.toml"
    config.write_text(
        "[cosmic-ray]\n"
        f"module-path = {json.dumps(paths)}\n"
        f"timeout = {BACKSTOP_TIMEOUT}\n"
        "excluded-modules = []\n"
        f"test-command = {json.dumps(command)}\n"
        "\n[cosmic-ray.distributor]\n"
        'name = "local"\n'
    )
    settings = {"scale": scale, "pytest_args": pytest_args}
    (work / "settings.json").write_text(json.dumps(settings))
    return config


def _from_repo(path: Path) -> str:
    """Relative to the repository (Cosmic Ray runs there) when inside it, else absolute."""
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def _cosmic_ray(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "cosmic_ray.cli", *args], cwd=REPO, check=True)


def initialise(work: Path, config: Path) -> Path:
    database = work / "session.sqlite"
    database.unlink(missing_ok=True)
    _cosmic_ray("init", str(config), str(database))
    return database


def _skip(db: WorkDB, job_id: str, why: str) -> None:
    db.set_result(job_id, WorkResult(output=why, worker_outcome=WorkerOutcome.SKIPPED))


def _position(item: WorkItem) -> tuple[str, tuple[int, int], str, int]:
    """A mutant's place in the code: job ids are random, the sample must not be."""
    m = item.mutations[0]
    return (str(m.module_path), m.start_pos, m.operator_name, m.occurrence)


def seeded_order(count: int, seed: int) -> list[int]:
    """A random permutation of ``range(count)`` whose every prefix is the sample
    ``random.Random(seed).sample(range(count), k)`` draws while that uses its
    set-based method (k up to 85 of 823 mutants): draw indices, drop repeats.  So the
    samples of the earlier runs (50 and tox's 4, seed 20261202) are its first
    mutants, and any prefix is a simple random sample."""
    rng = random.Random(seed)
    seen: set[int] = set()
    order: list[int] = []
    while len(order) < count:
        index = rng.randrange(count)
        if index not in seen:
            seen.add(index)
            order.append(index)
    return order


@dataclass(frozen=True)
class _Mutant:
    item: WorkItem
    file: str
    original: str
    mutated: str

    @property
    def diff(self) -> str:
        """The unified diff, as Cosmic Ray records it after a run."""
        before, after = self.original.split("\n"), self.mutated.split("\n")
        return "\n".join(difflib.unified_diff(before, after, lineterm=""))


def _mutant(item: WorkItem, work: Path) -> _Mutant:
    """The mutant's source, made in memory as Cosmic Ray would write it."""
    mutation = item.mutations[0]
    operator = cosmic_ray.plugins.get_operator(mutation.operator_name)()
    name = Path(mutation.module_path).name
    original = (work / "pristine" / name).read_text()
    mutated = mutate_code(original, operator, mutation.occurrence) or original
    return _Mutant(item, name, original, mutated)


def _settle(db: WorkDB, items: Sequence[WorkItem], work: Path) -> list[WorkItem]:
    """Record, without a pytest run, the mutants the triage file already judges and
    those whose mutated statement no case of the map runs; return the others.  The
    report gives the first the triage's verdict and the second their own column."""
    triage = load_triage()
    casemap = CaseMap.load(work / "casemap.json")
    left = []
    for item in items:
        mutant = _mutant(item, work)
        mutation = item.mutations[0]
        key = (mutant.file, mutation.operator_name, *diff_lines(mutant.diff))
        verdict = judge(triage, key, mutation.definition_name or "")
        changed = lines_changed(mutant.original, mutant.mutated)
        if verdict is not None:
            mark = f"{MARK} TRIAGED {verdict[0]}"
        elif not casemap.cases_for(mutant.file, mutant.original, changed):
            mark = f"{MARK} NOT-COVERED no conformance case runs lines {changed}"
        else:
            left.append(item)
            continue
        result = WorkResult(
            output=mark,
            diff=mutant.diff,
            test_outcome=TestOutcome.SURVIVED,
            worker_outcome=WorkerOutcome.NORMAL,
        )
        db.set_result(item.job_id, result)
    return left


def _write_order(work: Path, job_ids: list[str]) -> None:
    (work / "order.json").write_text(json.dumps(job_ids))


def select(
    database: Path, *, sample: int | None, seed: int, rerun_triaged: bool = False
) -> tuple[int, int]:
    """Skip unselected operators, then all but the first ``sample`` of the seeded
    order, then settle what needs no run; return (mutants generated, to run)."""
    work = database.parent
    with use_db(str(database), WorkDB.Mode.open) as db:
        items = list(db.pending_work_items)
        kept = []
        for item in items:
            if all(is_selected(m.operator_name) for m in item.mutations):
                kept.append(item)
            else:
                _skip(db, item.job_id, "operator not selected")
        kept.sort(key=_position)
        kept = [kept[i] for i in seeded_order(len(kept), seed)]
        _write_order(work, [i.job_id for i in kept])
        if sample is not None:
            for item in kept[sample:]:
                _skip(db, item.job_id, f"{_NOT_SAMPLED} (seed {seed})")
            kept = kept[:sample]
        left = kept if rerun_triaged else _settle(db, kept, work)
        return len(items), len(left)


def _unskip(database: Path, job_ids: list[str]) -> None:
    """Forget the skip results of these mutants, so they are pending again (Cosmic
    Ray's WorkDB can overwrite a result but not remove one)."""
    table = WorkResultStorage.__tablename__
    with contextlib.closing(sqlite3.connect(database)) as con, con:
        con.executemany(f"DELETE FROM {table} WHERE job_id = ?", [(j,) for j in job_ids])


def extend_sample(database: Path, sample: int) -> int:
    """Make the first ``sample`` mutants of the seeded order part of the session;
    return how many were added."""
    order = json.loads((database.parent / "order.json").read_text())
    with use_db(str(database), WorkDB.Mode.open) as db:
        results = dict(db.results)
    added = [
        j
        for j in order[:sample]
        if j in results
        and results[j].worker_outcome == WorkerOutcome.SKIPPED
        and (results[j].output or "").startswith(_NOT_SAMPLED)
    ]
    _unskip(database, added)
    return len(added)


def forget(database: Path, job_ids: list[str]) -> None:
    """Make these mutants pending again, to run them with the suite as it is now (a
    survivor after a case was added for it)."""
    _unskip(database, job_ids)


def _pending_in_order(database: Path) -> Iterator[WorkItem]:
    order = json.loads((database.parent / "order.json").read_text())
    with use_db(str(database), WorkDB.Mode.open) as db:
        pending = {i.job_id: i for i in db.pending_work_items}
    yield from (pending[j] for j in order if j in pending)


def execute(config: Path, database: Path, *, settle: bool = True, workers: int = 1) -> None:
    """Run the pending mutants in the seeded order with Cosmic Ray's mutate-and-test
    step (what its local distributor does, minus its random order), ``workers`` at a
    time, each worker in its own slot (:mod:`.workers`).  With ``settle``, a mutant the
    triage judges, or that no case reaches, is recorded without a run just before its
    turn, so triage written while a long run goes on takes effect."""
    cfg = load_config(str(config))
    items = list(_pending_in_order(database))
    print(f"mutants: {len(items)} pending, {workers} worker(s)", flush=True)
    slots = prepare_slots(database.parent, workers)
    finished = itertools.count(1)

    def job(item: WorkItem, slot: int, records: Records) -> None:
        started = time.monotonic()
        if settle:
            with records.open() as recording, use_db(str(database), WorkDB.Mode.open) as db:
                if not recording or not _settle(db, [item], database.parent):
                    return
        command = slot_command(cfg.test_command, slot)
        result = mutate_and_test(in_slot(item, slots[slot]), command, cfg.timeout)
        with records.open() as recording:
            if not recording:
                return  # interrupted: the mutant stays pending
            with use_db(str(database), WorkDB.Mode.open) as db:
                db.set_result(item.job_id, result)
            m = item.mutations[0]
            outcome = result.test_outcome or result.worker_outcome
            print(
                f"[{next(finished)}/{len(items)}] {Path(m.module_path).name}:{m.start_pos[0]}"
                f" {m.operator_name}: {outcome.value} in {time.monotonic() - started:.0f}s"
                + (f" (slot {slot})" if workers > 1 else ""),
                flush=True,
            )

    with contextlib.chdir(REPO):  # the work items' module paths are relative to it
        run_pool(items, workers, job)
