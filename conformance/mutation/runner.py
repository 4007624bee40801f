"""One mutant through the conformance suite: Cosmic Ray's test command.

Cosmic Ray has written the mutant into ``work/peer/smuxref`` and runs this command; it
does not say which line it changed, so the command compares the four files with
``work/pristine``.  It then runs only the cases whose peer ran that statement
(:mod:`smuxref_conformance.mutation.casemap`), with ``-x``: the first failure is the verdict.
The cases go cheapest first, counting each case's kills so far
(:func:`cheapest_first`).  The
suite's own deadlines turn a hung peer into a failure; the budget here (a multiple of
the cases' unmutated time) only stops a run that crawls.

The exit status is what Cosmic Ray records (0 survived, anything else killed); the
lines starting with ``MUTATION`` on stdout tell the report the rest: which case
killed it, a timeout, a harness error (pytest could not run the cases: that is no kill,
the report counts it apart), or no case running the line at all.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Final

from smuxref_conformance.peers.specs import REF_SOURCE_ENV

from .casemap import REPO, RESULTS_NAME, TARGETS, CaseMap, non_strict_cases

__all__ = ["MARK", "changed_lines", "cheapest_first", "lines_changed", "run_mutant"]

MARK: Final = "MUTATION"
#: A run may take this many times its cases' unmutated time, plus the slack, before it
#: is stopped and reported as timed out.
BUDGET_FACTOR: Final = 4.0
BUDGET_SLACK: Final = 30.0
_FAILED_LINE: Final = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.MULTILINE)


def lines_changed(before: str, after: str) -> list[int]:
    """The lines of ``before`` (numbered from 1) that ``after`` changes."""
    lines: list[int] = []
    matcher = difflib.SequenceMatcher(a=before.splitlines(), b=after.splitlines(), autojunk=False)
    for tag, i1, i2, _, _ in matcher.get_opcodes():
        if tag != "equal":
            lines.extend(range(i1 + 1, max(i2, i1 + 1) + 1))
    return lines


def changed_lines(work: Path) -> dict[str, list[int]]:
    """Per target file, the lines (numbered as in the original) the mutant changed."""
    changed: dict[str, list[int]] = {}
    for name in TARGETS:
        before = (work / "pristine" / name).read_text()
        after = (work / "peer" / "smuxref" / name).read_text()
        if before != after:
            changed[name] = lines_changed(before, after)
    return changed


def _say(*parts: object) -> None:
    print(MARK, *parts, flush=True)


def _killers(work: Path) -> dict[str, int]:
    path = work / "killers.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _count_kill(work: Path, case: str) -> None:
    killers = _killers(work)
    killers[case] = killers.get(case, 0) + 1
    (work / "killers.json").write_text(json.dumps(killers))


def cheapest_first(
    cases: list[str], durations: dict[str, float], kills: dict[str, int]
) -> list[str]:
    """The order that reaches a kill soonest on average: by seconds per kill so far, i.e.
    a case's unmutated time divided by one more than the mutants it killed earlier in
    the session.  Before any kill that is plain cheapest-first; a cheap case that keeps
    killing stays ahead of an equally cheap one that never did."""
    return sorted(cases, key=lambda c: (durations.get(c, 1.0) / (1 + kills.get(c, 0)), c))


def run_mutant(work: Path) -> int:
    settings = json.loads((work / "settings.json").read_text())
    casemap = CaseMap.load(work / "casemap.json")
    changed = changed_lines(work)
    cases: list[str] = []
    for name, lines in changed.items():
        source = (work / "pristine" / name).read_text()
        cases.extend(c for c in casemap.cases_for(name, source, lines) if c not in cases)
    cases = cheapest_first(cases, casemap.durations, _killers(work))
    _say("CHANGED", json.dumps(changed))
    if not changed:
        _say("ERROR no target file differs from its original")
        return 3
    if not cases:
        _say("NO-CASE no conformance case runs the mutated statement")
        return 0
    shutil.rmtree(work / "peer" / "smuxref" / "__pycache__", ignore_errors=True)
    # The map's durations were measured at the map's scale; deadlines (and so the time a
    # surviving case spends waiting for silence) grow with the run's.
    stretch = max(1.0, settings["scale"] / casemap.scale)
    budget = stretch * (
        BUDGET_FACTOR * sum(casemap.durations.get(c, 1.0) for c in cases) + BUDGET_SLACK
    )
    command = [
        sys.executable,
        "-m",
        "pytest",
        *cases,
        "--peer=ref",
        "-x",
        "-q",
        "-rfE",
        "-p",
        "no:cacheprovider",
        f"--smux-timeout-scale={settings['scale']}",
        f"--smux-report-dir={work / 'reports'}",
        *settings.get("pytest_args", []),
    ]
    env = {**os.environ, REF_SOURCE_ENV: str(work / "peer"), "PYTHONDONTWRITEBYTECODE": "1"}
    _say("CASES", len(cases), f"budget {budget:.0f}s")
    results = work / "reports" / RESULTS_NAME
    results.unlink(missing_ok=True)  # a pytest that dies early must not leave the last one's
    proc = subprocess.Popen(
        command,
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    started = time.monotonic()
    try:
        output, _ = proc.communicate(timeout=budget)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # its peers die with it (PR_SET_PDEATHSIG)
        proc.communicate()
        _say("SECONDS", f"{time.monotonic() - started:.1f}")
        _say("TIMEOUT", f"{budget:.0f}s")
        return 2
    _say("SECONDS", f"{time.monotonic() - started:.1f}")
    text = output.decode(errors="replace")
    print("\n".join(text.splitlines()[-15:]))
    if proc.returncode == 0:
        should = non_strict_cases(results) - set(casemap.non_strict) if results.exists() else set()
        if should:
            # The default gate passed it, --smux-strict would not: detected at should level.
            _say("SHOULD-LEVEL", json.dumps(sorted(should)))
        _say("SURVIVED")
        return 0
    if proc.returncode == 1:
        failed = _FAILED_LINE.search(text)
        if failed:
            _count_kill(work, failed.group(1))
        _say("KILLED-BY", failed.group(1) if failed else "?")
        return 1
    _say("ERROR", f"pytest exited with status {proc.returncode}")
    return 3
