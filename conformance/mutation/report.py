"""Killed, survived, timed out, equivalent: the session read back, with the triage.

Every survivor either gets a case that kills it, or an entry in ``triage.toml`` that
argues it is *equivalent* (no input can tell it from the original: taken out of the
score) or *outside the wire's view* (it changes something no peer can see through the
wire and the peer contract, such as a local API's argument check: kept in the score as
not killed, and counted apart).  An entry matches a mutant by file, operator, and the
original and mutated source line, so it survives edits that only move the line.

Score = (killed + timed out) / (all mutants run - equivalent); the wire score also
leaves out the outside-the-wire ones.  A timeout counts as
detected: the suite did not pass that peer.  A harness error (pytest could not run the
cases) is neither and is listed for a rerun.  The verdict is the gate's, i.e. pytest's
exit status: a mutant whose only effect is a ``non_strict`` or ``inconclusive`` result,
which the default gate passes, survives.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from cosmic_ray.work_db import WorkDB, use_db
from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkItem, WorkResult

from .casemap import TARGETS
from .runner import MARK

__all__ = ["TRIAGE", "Outcome", "Summary", "diff_lines", "judge", "load_triage", "summarise"]

TRIAGE: Final = Path(__file__).resolve().parent / "triage.toml"
OUTCOMES: Final = ("killed", "timeout", "survived", "outside-wire", "equivalent", "error")
_VERDICTS: Final = ("equivalent", "outside-wire")


@dataclass(frozen=True)
class Outcome:
    file: str
    line: int
    operator: str
    original: str
    mutated: str
    outcome: str  #: one of OUTCOMES
    detail: str  #: the killing case, the triage reason, the error
    function: str = ""  #: the enclosing definition, as Cosmic Ray names it

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.file, self.operator, self.original, self.mutated)


@dataclass
class Summary:
    outcomes: list[Outcome] = field(default_factory=list)
    skipped: int = 0
    pending: int = 0
    stale_triage: list[str] = field(default_factory=list)
    sampled: bool = False  #: only a sample ran: triage entries may match nothing

    def counts(self, file: str | None = None) -> Counter[str]:
        return Counter(o.outcome for o in self.outcomes if file in (None, o.file))

    @staticmethod
    def score(counts: Counter[str], *, wire_only: bool = False) -> float | None:
        """Detected over non-equivalent mutants; ``wire_only`` also leaves out those
        triaged as outside the wire's view (what a wire-level suite can reach)."""
        detected = counts["killed"] + counts["timeout"]
        judged = detected + counts["survived"] + (0 if wire_only else counts["outside-wire"])
        return detected / judged if judged else None

    def untriaged(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.outcome == "survived"]

    def table(self) -> str:
        head = "| file | mutants | killed | timed out | survived | outside wire | equivalent "
        rows = [head + "| error | score | wire score |", "|---" * 10 + "|"]
        for file in (*TARGETS, None):
            c = self.counts(file)
            scores = (self.score(c), self.score(c, wire_only=True))
            cells = [
                f"`{file}`" if file else "**all**",
                str(sum(c.values())),
                *(str(c[k]) for k in OUTCOMES),
                *(f"{x:.1%}" if x is not None else "-" for x in scores),
            ]
            rows.append("| " + " | ".join(cells) + " |")
        return "\n".join(rows)


def diff_lines(diff: str) -> tuple[str, str]:
    minus = [ln[1:].strip() for ln in diff.splitlines() if ln.startswith("-") and ln[1:2] != "-"]
    plus = [ln[1:].strip() for ln in diff.splitlines() if ln.startswith("+") and ln[1:2] != "+"]
    return " / ".join(minus), " / ".join(plus)


def _marks(output: str) -> dict[str, str]:
    marks: dict[str, str] = {}
    for line in output.splitlines():
        if line.startswith(MARK + " "):
            word, _, rest = line[len(MARK) + 1 :].partition(" ")
            marks[word] = rest
    return marks


#: (file, operator, original, mutated) -> [(function or "", verdict, reason)]
Triage = dict[tuple[str, str, str, str], list[tuple[str, str, str]]]


def load_triage(path: Path = TRIAGE) -> Triage:
    entries = tomllib.loads(path.read_text()).get("mutant", []) if path.exists() else []
    triage: Triage = {}
    for i, e in enumerate(entries):
        if e.get("verdict") not in _VERDICTS or not e.get("reason"):
            raise ValueError(f"{path}: mutant #{i + 1}: verdict must be one of {_VERDICTS}")
        key = (e["file"], e["operator"], e["original"], e["mutated"])
        triage.setdefault(key, []).append((e.get("function", ""), e["verdict"], e["reason"]))
    return triage


def judge(triage: Triage, key: tuple[str, str, str, str], function: str) -> tuple[str, str] | None:
    """The verdict and reason of the entry for this mutant; an entry that names a
    ``function`` applies only to mutants in that definition (the same line of code can
    be reachable in one function and not in another)."""
    for where, verdict, reason in triage.get(key, ()):
        if where in ("", function):
            return verdict, reason
    return None


def _classify(item: WorkItem, result: WorkResult, triage: Triage) -> Outcome:
    mutation = item.mutations[0]
    original, mutated = diff_lines(result.diff or "")
    marks = _marks(result.output or "")
    if result.worker_outcome != WorkerOutcome.NORMAL:
        outcome, detail = "error", f"worker {result.worker_outcome.value}"
    elif "TIMEOUT" in marks:
        outcome, detail = "timeout", marks["TIMEOUT"]
    elif "ERROR" in marks or result.test_outcome == TestOutcome.INCOMPETENT:
        outcome, detail = "error", marks.get("ERROR", "incompetent")
    elif result.test_outcome == TestOutcome.KILLED:
        outcome, detail = "killed", marks.get("KILLED-BY", "?")
    else:
        outcome, detail = "survived", "no case runs it" if "NO-CASE" in marks else ""
    found = Outcome(
        Path(mutation.module_path).name,
        mutation.start_pos[0],
        mutation.operator_name,
        original,
        mutated,
        outcome,
        detail,
        mutation.definition_name or "",
    )
    verdict = judge(triage, found.key, found.function) if outcome == "survived" else None
    if verdict is not None:
        return dataclasses.replace(found, outcome=verdict[0], detail=verdict[1])
    return found


def summarise(database: Path, triage_path: Path = TRIAGE) -> Summary:
    triage = load_triage(triage_path)
    summary = Summary()
    with use_db(str(database), WorkDB.Mode.open) as db:
        results = dict(db.results)
        for item in db.work_items:
            result = results.get(item.job_id)
            if result is None:
                summary.pending += 1
            elif result.worker_outcome in (WorkerOutcome.SKIPPED, WorkerOutcome.NO_TEST):
                summary.skipped += 1
                summary.sampled |= "sample" in (result.output or "")
            else:
                summary.outcomes.append(_classify(item, result, triage))
    used = {o.key for o in summary.outcomes}
    summary.stale_triage = [" ".join(k) for k in triage if k not in used]
    return summary
