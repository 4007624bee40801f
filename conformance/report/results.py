"""The results file (``smux-results.json``): one row per case x peer x version x role.

The JSON file is the one source every other artefact is built from - the HTML and
Markdown reports, a merged matrix of several runs, the gate - so they can be rebuilt
without running anything again (``python -m smuxref_conformance.report``), and runs made
separately (one per peer, on different machines) can be put side by side.

Shape::

    {"schema": "smux-results/1", "suite_version": "0.1.0", "date": "...Z",
     "options": {...}, "peers": {"ref": {"kind": "ref", "info": {"1": {...}}, ...}},
     "expectations": [{"file": ..., "sha256": ...}],
     "results": [{"case", "title", "spec", "level", "requirement", "peer", "version",
                  "role", "variant", "nodeid", "expected", "actual", "unexpected",
                  "reason", "expectation", "duration", "message", "transcript",
                  "observations", "phase", "blame"?, "relies_on"?}, ...],
     "summary": {"total": n, "verdicts": {...}, "unexpected": n, "gate": "pass"|"fail",
                 "root_causes": [{"case", "verdict", "inconclusive"}, ...]}}

``blame`` (inconclusive rows only) is the id of the case whose failed step kept this
case from running its own check; :meth:`ResultSet.root_causes` groups rows by it.
Verdicts added since the first files (inconclusive, not_run) are new values of
``actual``, so the schema name is unchanged and older files still load.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from ..judge.prerequisites import NamedCaseIndex

__all__ = [
    "LETTERS",
    "NOT_JUDGED",
    "SCHEMA",
    "VERDICTS",
    "Cell",
    "Column",
    "ResultSet",
    "RootCause",
    "headline",
    "load_results",
    "rerun_hint",
    "section_key",
]

SCHEMA: Final = "smux-results/1"
VERDICTS: Final = (
    "pass",
    "non_strict",
    "fail",
    "info",
    "unsupported",
    "inconclusive",
    "not_run",
    "error",
)
#: Verdicts that judge nothing about the peer's requirement.
NOT_JUDGED: Final = ("unsupported", "inconclusive", "not_run")
#: One letter per verdict, used by every report (readable without colour).
LETTERS: Final = {
    "pass": "P",
    "non_strict": "N",
    "fail": "F",
    "info": "I",
    "unsupported": "U",
    "inconclusive": "C",
    "not_run": "-",
    "error": "E",
}
#: Which verdict a cell of several results shows: the most severe that ran.
_DISPLAY_RANK: Final = {
    "not_run": 0,
    "unsupported": 0,
    "inconclusive": 1,
    "pass": 1,
    "info": 2,
    "non_strict": 3,
    "fail": 4,
    "error": 5,
}

Row = dict[str, Any]
#: A matrix column: (peer, version, role); version and role may be None.
Column = tuple[str, int | None, str | None]


def section_key(spec: str) -> tuple[int, ...]:
    """``"4.10"`` sorts after ``"4.9"``."""
    return tuple(int(p) for p in re.findall(r"\d+", spec))


def headline(row: Row) -> str:
    """One line saying what went wrong: the ``Actual:`` line of a failure message, else
    its first line (display only; the verdict itself never comes from text)."""
    lines = (row.get("message") or "").splitlines()
    actual = next((ln for ln in lines if ln.startswith("Actual: ")), None)
    return actual or (lines[0] if lines else "")


def _row_key(row: Row) -> tuple[Any, ...]:
    return (row["case"], row.get("variant", ""), row["peer"], row.get("version"), row.get("role"))


@dataclass
class Cell:
    """The results of one case in one column (several when the case has variants)."""

    rows: list[Row]

    @property
    def shown(self) -> Row:
        """The row the cell shows: unexpected first, then the most severe verdict."""
        return max(
            self.rows, key=lambda r: (bool(r["unexpected"]), _DISPLAY_RANK.get(r["actual"], 5))
        )

    @property
    def unexpected(self) -> bool:
        return any(r["unexpected"] for r in self.rows)

    @property
    def expected_deviation(self) -> bool:
        row = self.shown
        deviated = row["actual"] in ("fail", "non_strict")
        return deviated and not row["unexpected"] and row["expected"] != "pass"

    @property
    def text(self) -> str:
        """``P``, ``F!`` (unexpected), ``xF`` (an expected deviation)."""
        row = self.shown
        letter = LETTERS.get(row["actual"], "?")  # a verdict of a newer suite
        if row["unexpected"]:
            return letter + "!"
        return "x" + letter if self.expected_deviation else letter

    def tooltip(self) -> str:
        parts = []
        for row in self.rows:
            variant = f"[{row['variant']}] " if row.get("variant") else ""
            verdict = row["actual"] + (" (UNEXPECTED)" if row["unexpected"] else "")
            expected = f", expected {row['expected']}" if row["expected"] != "pass" else ""
            parts.append(f"{variant}{verdict}{expected}")
        return "; ".join(parts)


@dataclass
class RootCause:
    """One prerequisite case and the inconclusive results that name it."""

    case: str
    own: list[Row]  #: the prerequisite's results in the same columns (may be empty)
    inconclusive: list[Row]

    @property
    def verdict(self) -> str:
        """What the prerequisite itself got: its worst verdict, or ``not run`` when the
        run did not include it (then nothing in this run shows the failure)."""
        if not self.own:
            return "not run"
        verdicts = [str(r["actual"]) for r in self.own]
        return max(verdicts, key=lambda v: _DISPLAY_RANK.get(v, 0))

    def sentence(self) -> str:
        """``smux/6.2/x fails; 12 cases inconclusive because of it``."""
        verbs = {"fail": "fails", "error": "errors", "non_strict": "deviates (non_strict)"}
        verb = verbs.get(self.verdict, f"is {self.verdict}")
        n = len({r["case"] for r in self.inconclusive})
        results = len(self.inconclusive)
        return (
            f"{self.case} {verb}; {n} case{'s' if n != 1 else ''} inconclusive because of it "
            f"({results} result{'s' if results != 1 else ''})"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "case": self.case,
            "verdict": self.verdict,
            "inconclusive": sorted({r["case"] for r in self.inconclusive}),
            "results": len(self.inconclusive),
        }


@dataclass
class ResultSet:
    """Rows plus run metadata; several runs merged keep every run's metadata."""

    rows: list[Row] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    peers: dict[str, dict[str, Any]] = field(default_factory=dict)

    # -- building ------------------------------------------------------------------------
    def add(self, other: ResultSet) -> None:
        """Merge ``other`` in; a result already present (same case, variant, peer,
        version, role) is replaced by the later one."""
        index = {_row_key(r): i for i, r in enumerate(self.rows)}
        for row in other.rows:
            key = _row_key(row)
            if key in index:
                self.rows[index[key]] = row
            else:
                index[key] = len(self.rows)
                self.rows.append(row)
        self.runs += other.runs
        for name, peer in other.peers.items():
            known = self.peers.setdefault(name, {})
            info = {**known.get("info", {}), **peer.get("info", {})}
            known.update(peer)
            known["info"] = info

    def to_json(self) -> dict[str, Any]:
        """The file written by a run (one run) or by the merging generator (several)."""
        run = self.runs[0] if len(self.runs) == 1 else {"runs": self.runs}
        return {
            "schema": SCHEMA,
            **run,
            "peers": self.peers,
            "results": self.rows,
            "summary": self.summary(),
        }

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1, sort_keys=False) + "\n")
        tmp.replace(path)

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str = "") -> ResultSet:
        if data.get("schema") != SCHEMA:
            raise ValueError(f"{source}: not a {SCHEMA} file (schema={data.get('schema')!r})")
        rows = data.get("results")
        if not isinstance(rows, list):
            raise ValueError(f"{source}: 'results' must be a list")
        skip = {"schema", "peers", "results", "summary"}
        runs = data.get("runs") or [{k: v for k, v in data.items() if k not in skip}]
        return cls(list(rows), list(runs), dict(data.get("peers") or {}))

    # -- reading -------------------------------------------------------------------------
    def peer_order(self) -> list[str]:
        order: list[str] = []
        for run in self.runs:
            order += [p for p in run.get("options", {}).get("peers", []) if p not in order]
        order += [r["peer"] for r in self.rows if r["peer"] not in order]
        return list(dict.fromkeys(order))

    def columns(self) -> list[Column]:
        """Peers in run order, each split by version, then role (server before client)."""
        present = {(r["peer"], r.get("version"), r.get("role")) for r in self.rows}
        order = self.peer_order()
        roles = {"server": 0, "client": 1, None: 2}
        return sorted(present, key=lambda c: (order.index(c[0]), c[1] or 0, roles.get(c[2], 3)))

    def cases(self) -> list[Row]:
        """One row of metadata per case id, in SPEC.md section order."""
        seen: dict[str, Row] = {}
        for row in self.rows:
            seen.setdefault(row["case"], row)
        return sorted(
            seen.values(),
            key=lambda r: (
                r["case"].startswith("contract/"),
                section_key(r.get("spec", "")),
                r["case"],
            ),
        )

    def cell(self, case_id: str, column: Column) -> Cell | None:
        rows = [
            r
            for r in self.rows
            if r["case"] == case_id and (r["peer"], r.get("version"), r.get("role")) == column
        ]
        return Cell(rows) if rows else None

    def unexpected(self) -> list[Row]:
        return [r for r in self.rows if r["unexpected"]]

    def tallies(self) -> dict[str, Counter[str]]:
        """Per peer: counts of each verdict, plus ``expected`` deviations and ``unexpected``."""
        out: dict[str, Counter[str]] = {p: Counter() for p in self.peer_order()}
        for row in self.rows:
            counter = out.setdefault(row["peer"], Counter())
            counter[row["actual"]] += 1
            if row["unexpected"]:
                counter["unexpected"] += 1
            elif row["actual"] in ("fail", "non_strict") and row["expected"] != "pass":
                counter["expected"] += 1
        return out

    def judged(self) -> int:
        """Results that ran and were judged (not unsupported, inconclusive or not run)."""
        return sum(1 for r in self.rows if r["actual"] not in NOT_JUDGED)

    def root_causes(self) -> list[RootCause]:
        """Inconclusive results grouped by the prerequisite case they come down to (the
        one they name, or through a chain of inconclusive prerequisites the one at its
        end), each with that case's own results in the same columns (what actually
        failed), most inconclusive first.  The columns are matched as the gate's blame
        check matches them (:class:`~..judge.prerequisites.NamedCaseIndex`)."""
        index = NamedCaseIndex(self.rows)
        groups: dict[str, list[Row]] = {}
        for row in self.rows:
            if row["actual"] == "inconclusive":
                groups.setdefault(index.root_cause(row) or "?", []).append(row)
        causes = []
        for case_id, rows in groups.items():
            own = {id(r): r for row in rows for r in index.rows_of(row, case_id)}
            causes.append(RootCause(case_id, list(own.values()), rows))
        return sorted(causes, key=lambda c: (-len(c.inconclusive), c.case))

    def gate_passed(self) -> bool:
        """No unexpected result, and at least one case judged."""
        return not self.unexpected() and self.judged() > 0

    def summary(self) -> dict[str, Any]:
        counts = Counter(r["actual"] for r in self.rows)
        return {
            "total": len(self.rows),
            # every verdict present, also one this version does not know (a merged
            # results file of a newer suite)
            "verdicts": {v: counts.get(v, 0) for v in dict.fromkeys([*VERDICTS, *counts])},
            "unexpected": len(self.unexpected()),
            "gate": "pass" if self.gate_passed() else "fail",
            "root_causes": [c.as_dict() for c in self.root_causes()],
        }


def rerun_hint(case_ids: Iterable[str], limit: int = 8) -> str:
    """The ``--smux-case`` options that rerun these cases alone (the first ``limit``)."""
    unique = list(dict.fromkeys(case_ids))
    shown = " ".join(f"--smux-case={i}" for i in unique[:limit])
    more = f" (and {len(unique) - limit} more)" if len(unique) > limit else ""
    return shown + more


def load_results(paths: Sequence[Path] | Iterable[Path]) -> ResultSet:
    """Read and merge results files in order (later results replace earlier ones)."""
    merged = ResultSet()
    for path in paths:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: cannot read results: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: not a results object")
        merged.add(ResultSet.from_json(data, str(path)))
    return merged
