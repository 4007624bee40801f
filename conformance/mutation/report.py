"""Killed, survived, timed out, equivalent: the session read back, with the triage.

Every survivor either gets a case that kills it, or an entry in ``triage.toml`` that
argues it is *equivalent* (no input can tell it from the original: taken out of the
score) or *outside the wire's view* (it changes something no peer can see through the
wire and the peer contract, such as a local API's argument check: kept in the score as
not killed, and counted apart) or *allowed* (the wire shows it, but SPEC.md permits both
the original's and the mutant's behaviour, e.g. a MAY, so a conformance case that failed
it would fail a conforming peer: counted like outside the wire's view).  A
``[[mutant]]`` entry matches a mutant by file, operator, and the original and mutated
source line, so it survives edits that only move the line; a ``[[function]]`` entry
judges every mutant of one definition that the suite does not kill (a function the
reference peer never calls).

A mutant of a statement that no conformance case runs (per the case map) is *not
covered*: recorded without a pytest run, in its own column, and counted as not
detected in both scores unless the triage judges it.

A mutant the default gate passes but a should-level case saw (a ``non_strict`` result
that the unmutated peer does not give) is *detected at should level*: smuxref means to
meet every SHOULD of SPEC.md, so the deviation is the mutant's, and ``--smux-strict``
fails it.  It is counted in its own column, never as killed.

Score = (detected) / (all mutants judged - equivalent); the wire score also leaves out
the outside-the-wire and allowed ones (not the uncovered ones: code the peer could run over the wire
but no case makes it run is the suite's gap).  Each is given twice: *detected* = killed
+ timed out + detected at should level (the suite under ``--smux-strict``), and *must
level* = killed + timed out (the default gate, pytest's exit status).  A timeout counts
as detected: the suite did not pass that peer.  A harness error (pytest could not run
the cases) is neither and is listed for a rerun.  A mutant whose only effect is an
``inconclusive`` result survives.  For a sample, :func:`wilson` gives each score's
95 % interval.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import statistics
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from cosmic_ray.work_db import WorkDB, use_db
from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkItem, WorkResult

from .casemap import TARGETS
from .runner import MARK

__all__ = [
    "TRIAGE",
    "Outcome",
    "Summary",
    "diff_lines",
    "judge",
    "load_triage",
    "summarise",
    "wilson",
]

TRIAGE: Final = Path(__file__).resolve().parent / "triage.toml"
OUTCOMES: Final = (
    "killed",
    "should-level",
    "timeout",
    "survived",
    "not-covered",
    "outside-wire",
    "allowed",
    "equivalent",
    "error",
)
_HEADINGS: Final = (
    "killed",
    "should level",
    "timed out",
    "survived",
    "not covered",
    "outside wire",
    "allowed",
    "equivalent",
    "error",
)
_VERDICTS: Final = ("equivalent", "outside-wire", "allowed")


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
    seconds: float | None = None  #: the pytest run's wall time (None: no run)
    job_id: str = ""  #: Cosmic Ray's id of the mutant, to run it again

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.file, self.operator, self.original, self.mutated)


@dataclass
class Summary:
    outcomes: list[Outcome] = field(default_factory=list)
    skipped: int = 0
    #: Of ``skipped``: the mutants of selected operators left out of a seeded sample.
    sampled_out: int = 0
    pending: int = 0
    stale_triage: list[str] = field(default_factory=list)
    sampled: bool = False  #: only a sample ran: triage entries may match nothing
    #: Results recorded beyond the measured prefix of the seeded order (mutants settled
    #: without a run while the run itself has not reached them): left out of the counts,
    #: so that what is counted stays a simple random sample.
    beyond_prefix: Counter[str] = field(default_factory=Counter)

    def counts(self, file: str | None = None) -> Counter[str]:
        return Counter(o.outcome for o in self.outcomes if file in (None, o.file))

    @staticmethod
    def fraction(
        counts: Counter[str], *, wire_only: bool = False, must_only: bool = False
    ) -> tuple[int, int]:
        """(detected, judged): judged is every non-equivalent mutant, and with
        ``wire_only`` not those triaged as outside the wire's view or as allowed by
        SPEC.md (no conformance case may fail them); detected counts the
        should-level detections unless ``must_only`` (the default gate's view)."""
        must = counts["killed"] + counts["timeout"]
        detected = must + (0 if must_only else counts["should-level"])
        judged = must + counts["should-level"] + counts["survived"] + counts["not-covered"]
        beyond_wire = counts["outside-wire"] + counts["allowed"]
        return detected, judged + (0 if wire_only else beyond_wire)

    @classmethod
    def score(
        cls, counts: Counter[str], *, wire_only: bool = False, must_only: bool = False
    ) -> float | None:
        detected, judged = cls.fraction(counts, wire_only=wire_only, must_only=must_only)
        return detected / judged if judged else None

    def timing(self) -> str:
        """Seconds of pytest per mutant, by outcome: what a full run costs."""
        parts = []
        for outcome in ("killed", "survived", "timeout"):
            times = sorted(o.seconds for o in self.outcomes if o.outcome == outcome and o.seconds)
            if times:
                parts.append(
                    f"{outcome} {len(times)}: median {statistics.median(times):.1f} s,"
                    f" max {times[-1]:.0f} s, total {sum(times) / 60:.0f} min"
                )
        return "; ".join(parts) or "no timed runs"

    def projected_hours(self, workers: int = 2) -> str:
        """What a run of every mutant would take now, from this sample's own times.

        A mutant the triage settles (equivalent, outside the wire, allowed) or that no
        case covers costs no pytest run in a new run, whatever it cost when this sample
        measured it; every other one is charged its measured time.  The sample's mean is
        scaled to all mutants and divided among ``workers`` (two workers measured 2.0
        times one on two cores).  The mutants outside the sample are assumed to be like
        it, triage included: true once the triage covers them, while until then each
        equivalent or outside-the-wire one runs every covering case (about 190 s)."""
        total = (
            len(self.outcomes) + self.pending + self.sampled_out + sum(self.beyond_prefix.values())
        )
        if not self.outcomes or not total:
            return "no sample to project from"
        charged = [o for o in self.outcomes if o.outcome not in (*_VERDICTS, "not-covered")]
        timed = [o.seconds for o in charged if o.seconds]
        if not timed:
            return "no timed runs"
        mean = sum(timed) / len(timed)
        hours = mean * len(charged) / len(self.outcomes) * total / workers / 3600
        plural = "s" if workers != 1 else ""
        return (
            f"a run of all {total} mutants now: about {hours:.1f} h of pytest on {workers}"
            f" worker{plural} ({len(charged)} of the {len(self.outcomes)} sampled need a run,"
            f" mean {mean:.0f} s; the rest the triage settles)"
        )

    def untriaged(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.outcome == "survived"]

    def table(self) -> str:
        head = (
            "| file | mutants | "
            + " | ".join(_HEADINGS)
            + " | score | wire score | wire score, must level |"
        )
        rows = [head, "|---" * (len(_HEADINGS) + 5) + "|"]
        for file in (*TARGETS, None):
            c = self.counts(file)
            scores = (
                self.score(c),
                self.score(c, wire_only=True),
                self.score(c, wire_only=True, must_only=True),
            )
            cells = [
                f"`{file}`" if file else "**all**",
                str(sum(c.values())),
                *(str(c[k]) for k in OUTCOMES),
                *(f"{x:.1%}" if x is not None else "-" for x in scores),
            ]
            rows.append("| " + " | ".join(cells) + " |")
        return "\n".join(rows)


def wilson(detected: int, judged: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (95 % for z = 1.96) of ``detected / judged`` when the
    mutants judged are a simple random sample of all of them."""
    if judged == 0:
        return (0.0, 1.0)
    p = detected / judged
    centre = (p + z * z / (2 * judged)) / (1 + z * z / judged)
    half = z * math.sqrt(p * (1 - p) / judged + z * z / (4 * judged * judged))
    half /= 1 + z * z / judged
    return (max(0.0, centre - half), min(1.0, centre + half))


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


#: A ``[[function]]`` entry's key: (file, definition name); its operator and lines are
#: these placeholders.
_ANY: Final = "*"


def load_triage(path: Path = TRIAGE) -> Triage:
    data = tomllib.loads(path.read_text()) if path.exists() else {}
    triage: Triage = {}
    for kind in ("mutant", "function"):
        for i, e in enumerate(data.get(kind, [])):
            if e.get("verdict") not in _VERDICTS or not e.get("reason"):
                raise ValueError(f"{path}: {kind} #{i + 1}: verdict must be one of {_VERDICTS}")
            if kind == "mutant":
                key = (e["file"], e["operator"], e["original"], e["mutated"])
                where = e.get("function", "")
            else:
                key, where = (e["file"], _ANY, _ANY, e["name"]), e["name"]
            triage.setdefault(key, []).append((where, e["verdict"], e["reason"]))
    return triage


def judge(triage: Triage, key: tuple[str, str, str, str], function: str) -> tuple[str, str] | None:
    """The verdict and reason of the entry for this mutant; an entry that names a
    ``function`` applies only to mutants in that definition (the same line of code can
    be reachable in one function and not in another)."""
    for where, verdict, reason in triage.get(key, ()):
        if where in ("", function):
            return verdict, reason
    for _where, verdict, reason in triage.get((key[0], _ANY, _ANY, function), ()):
        return verdict, reason
    return None


_NON_STRICT: Final = re.compile(r"^gate PASS: .*?(\d+) non_strict", re.MULTILINE)
_DEVIATES: Final = re.compile(r"^\s*root cause: (\S+) deviates \(non_strict\)", re.MULTILINE)


def _should_level(output: str) -> str:
    """For a survivor: the should-level cases that saw it (non_strict results, which
    the default gate passes and ``--smux-strict`` would fail), if any."""
    found = _NON_STRICT.search(output)
    if not found:
        return ""
    causes = ", ".join(dict.fromkeys(_DEVIATES.findall(output)))
    return f"seen only by should-level cases: {found.group(1)} non_strict" + (
        f" ({causes})" if causes else ""
    )


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
    elif "NOT-COVERED" in marks or "NO-CASE" in marks:
        outcome, detail = "not-covered", marks.get("NOT-COVERED", "no case runs it")
    elif "SHOULD-LEVEL" in marks:
        cases = json.loads(marks["SHOULD-LEVEL"])
        outcome = "should-level"
        detail = f"non_strict in {len(cases)}: " + ", ".join(cases)
    else:
        outcome, detail = "survived", _should_level(result.output or "")
    found = Outcome(
        Path(mutation.module_path).name,
        mutation.start_pos[0],
        mutation.operator_name,
        original,
        mutated,
        outcome,
        detail,
        mutation.definition_name or "",
        float(marks["SECONDS"]) if "SECONDS" in marks else None,
        item.job_id,
    )
    judged = outcome in ("survived", "not-covered")
    verdict = judge(triage, found.key, found.function) if judged else None
    if verdict is not None:
        return dataclasses.replace(found, outcome=verdict[0], detail=verdict[1])
    return found


def _measured_prefix(order: list[str], results: dict[str, WorkResult]) -> set[str]:
    """The job ids of the longest prefix of the seeded order that has results."""
    measured: set[str] = set()
    for job_id in order:
        result = results.get(job_id)
        if result is None or result.worker_outcome == WorkerOutcome.SKIPPED:
            break
        measured.add(job_id)
    return measured


def summarise(database: Path, triage_path: Path = TRIAGE) -> Summary:
    """The session's outcomes.  A session whose run stopped part way through the seeded
    order (``session.seeded_order``) counts only the prefix it completed, which is a
    simple random sample of all the mutants."""
    triage = load_triage(triage_path)
    summary = Summary()
    order_path = database.parent / "order.json"
    order: list[str] = json.loads(order_path.read_text()) if order_path.exists() else []
    with use_db(str(database), WorkDB.Mode.open) as db:
        results = dict(db.results)
        measured = _measured_prefix(order, results) if order else None
        for item in db.work_items:
            result = results.get(item.job_id)
            if result is None:
                summary.pending += 1
            elif result.worker_outcome in (WorkerOutcome.SKIPPED, WorkerOutcome.NO_TEST):
                summary.skipped += 1
                if "sample" in (result.output or ""):
                    summary.sampled = True
                    summary.sampled_out += 1
            elif measured is not None and item.job_id not in measured:
                summary.beyond_prefix[_classify(item, result, triage).outcome] += 1
            else:
                summary.outcomes.append(_classify(item, result, triage))
    summary.sampled |= summary.pending > 0
    used = {o.key for o in summary.outcomes} | {
        (o.file, _ANY, _ANY, o.function) for o in summary.outcomes
    }
    summary.stale_triage = [" ".join(k) for k in triage if k not in used]
    return summary
