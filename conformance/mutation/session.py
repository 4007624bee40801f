"""The Cosmic Ray session: its configuration, the mutants kept, and running them.

Cosmic Ray enumerates every mutant of the four files into a SQLite work database
(``cosmic-ray init``) and runs the pending ones one after the other with its local
distributor (``cosmic-ray exec``): one worker, as the machine is shared.  Between the
two, mutants of operators outside :data:`~smuxref_conformance.mutation.operators.SELECTED`
and, for a sample, all but the seeded sample are marked skipped, as Cosmic Ray's own
filters do; so are the mutants ``triage.toml`` already judges (``--rerun-triaged``
runs them too).  A session left unfinished resumes where it stopped: ``exec`` only runs
pending mutants.
"""

from __future__ import annotations

import difflib
import json
import random
import subprocess
import sys
from pathlib import Path

import cosmic_ray.plugins
from cosmic_ray.mutating import mutate_code
from cosmic_ray.work_db import WorkDB, use_db
from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkItem, WorkResult

from .casemap import REPO, TARGETS
from .operators import is_selected
from .report import diff_lines, judge, load_triage
from .runner import MARK

__all__ = ["configure", "execute", "initialise", "select", "settle_pending"]

#: Cosmic Ray's own limit per mutant: only a backstop, the runner's budget comes first.
BACKSTOP_TIMEOUT = 3600.0


def configure(
    work: Path, *, scale: float, files: tuple[str, ...] = TARGETS, pytest_args: list[str]
) -> Path:
    """Write the session's Cosmic Ray configuration and the runner's settings."""
    unknown = set(files) - set(TARGETS)
    if unknown:
        raise ValueError(f"--files: {sorted(unknown)} not among {TARGETS}")
    paths = [str((work / "peer" / "smuxref" / name).relative_to(REPO)) for name in files]
    command = (
        f"{sys.executable} -m smuxref_conformance.mutation test --work {work.relative_to(REPO)}"
    )
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


def _diff(item: WorkItem, work: Path) -> str:
    """The mutant's unified diff, as Cosmic Ray records it after a run."""
    mutation = item.mutations[0]
    operator = cosmic_ray.plugins.get_operator(mutation.operator_name)()
    original = (work / "pristine" / Path(mutation.module_path).name).read_text()
    mutated = mutate_code(original, operator, mutation.occurrence) or original
    return "\n".join(difflib.unified_diff(original.split("\n"), mutated.split("\n"), lineterm=""))


def _settle_triaged(db: WorkDB, items: list[WorkItem], work: Path) -> list[WorkItem]:
    """Record mutants the triage file already judges, without running them again; return
    the others.  The report gives them the triage's verdict."""
    triage = load_triage()
    files = {key[0] for key in triage}
    left = []
    for item in items:
        if Path(item.mutations[0].module_path).name in files:
            diff = _diff(item, work)
            file = Path(item.mutations[0].module_path).name
            key = (file, item.mutations[0].operator_name, *diff_lines(diff))
            verdict = judge(triage, key, item.mutations[0].definition_name or "")
            if verdict is not None:
                result = WorkResult(
                    output=f"{MARK} TRIAGED {verdict[0]}",
                    diff=diff,
                    test_outcome=TestOutcome.SURVIVED,
                    worker_outcome=WorkerOutcome.NORMAL,
                )
                db.set_result(item.job_id, result)
                continue
        left.append(item)
    return left


def select(
    database: Path, *, sample: int | None, seed: int, rerun_triaged: bool = False
) -> tuple[int, int]:
    """Skip unselected operators, then all but ``sample`` seeded picks, then (unless
    ``rerun_triaged``) settle the triaged ones; return (mutants generated, to run)."""
    with use_db(str(database), WorkDB.Mode.open) as db:
        items = list(db.pending_work_items)
        kept = []
        for item in items:
            if all(is_selected(m.operator_name) for m in item.mutations):
                kept.append(item)
            else:
                _skip(db, item.job_id, "operator not selected")
        if sample is not None and sample < len(kept):
            kept.sort(key=_position)
            chosen = {i.job_id for i in random.Random(seed).sample(kept, sample)}
            for item in kept:
                if item.job_id not in chosen:
                    _skip(db, item.job_id, f"not in the sample (seed {seed})")
            kept = [i for i in kept if i.job_id in chosen]
        if not rerun_triaged:
            kept = _settle_triaged(db, kept, database.parent)
        return len(items), len(kept)


def settle_pending(database: Path) -> int:
    """Record the pending mutants that the triage file now judges; return how many are
    left to run (a resumed session does not rerun what was triaged meanwhile)."""
    with use_db(str(database), WorkDB.Mode.open) as db:
        return len(_settle_triaged(db, list(db.pending_work_items), database.parent))


def execute(config: Path, database: Path) -> None:
    _cosmic_ray("exec", str(config), str(database))
