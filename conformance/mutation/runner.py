"""One mutant through the conformance suite: Cosmic Ray's test command.

Cosmic Ray has written the mutant into the slot's copy of the source,
``work/slots/K/peer/smuxref`` (``--slot K``; without it ``work/peer/smuxref``), and runs
this command; it does not say which line it changed, so the command compares the files
with ``work/pristine``.  Everything a run writes is in the slot (reports, stop file,
pytest's base directory) except the kill counts, shared by the slots under a lock
(:func:`count_kill`), so slots can run side by side (:mod:`.workers`).

The command runs only the cases whose peer ran the changed statement
(:mod:`smuxref_conformance.mutation.casemap`), with ``-x``: the first failure is the
verdict.  The cases go cheapest first, counting each case's kills so far
(:func:`cheapest_first`).  The suite's own deadlines turn a hung peer into a failure;
the budget here (a multiple of the cases' unmutated time) only stops a run that crawls.

An inconclusive result the unmutated peer does not give stops the run too
(:mod:`.stopper`): it claims that the case it names fails, and the gate settles that
claim once the named case has run (a named case that passes turns it into a fail,
:func:`~smuxref_conformance.judge.prerequisites.confirm_blames`).  So the named case
runs next, and the claim is settled over the results of both runs; only when that
gives no verdict (the named case inconclusive or unsupported too) do the remaining
cases run.  Without this, ``-x`` sees no failure: such a mutant ran every covering
case before the gate's last step failed it (2.5 minutes instead of half a minute for
``_state.py:120``, ``OPEN + RECV_SYN -> LOCAL_CLOSED``), and survived when the named
case was not among the covering ones, though the whole suite fails it.

The exit status is what Cosmic Ray records (0 survived, anything else killed); the
lines starting with ``MUTATION`` on stdout tell the report the rest: which case
killed it, a timeout, a harness error (pytest could not run the cases: that is no kill,
the report counts it apart), or no case running the line at all.

Terminated (SIGTERM, from an interrupted ``run``) or left by its parent, the command kills
its pytest's process group, whose peers die with pytest, and exits: no result of a
half-run mutant is recorded, and no process of it is left behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import difflib
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Final

from smuxref_conformance.judge.prerequisites import REFUTED_KEY, confirm_blames
from smuxref_conformance.peers.specs import REF_SOURCE_ENV

from .casemap import REPO, RESULTS_NAME, TARGETS, CaseMap
from .stopper import STOP_ENV

__all__ = [
    "MARK",
    "changed_lines",
    "cheapest_first",
    "count_kill",
    "lines_changed",
    "run_mutant",
    "slot_dir",
]

MARK: Final = "MUTATION"
#: A run may take this many times its cases' unmutated time, plus the slack, before it
#: is stopped and reported as timed out.
BUDGET_FACTOR: Final = 4.0
BUDGET_SLACK: Final = 30.0
_FAILED_LINE: Final = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.MULTILINE)
_PR_SET_PDEATHSIG: Final = 1
#: The folder of the work directory that holds the slots of ``run --workers``.
SLOTS: Final = "slots"


def lines_changed(before: str, after: str) -> list[int]:
    """The lines of ``before`` (numbered from 1) that ``after`` changes."""
    lines: list[int] = []
    matcher = difflib.SequenceMatcher(a=before.splitlines(), b=after.splitlines(), autojunk=False)
    for tag, i1, i2, _, _ in matcher.get_opcodes():
        if tag != "equal":
            lines.extend(range(i1 + 1, max(i2, i1 + 1) + 1))
    return lines


def slot_dir(work: Path, slot: int | None) -> Path:
    """Where a run in slot ``slot`` finds its source and writes (None: ``work`` itself)."""
    return work if slot is None else work / SLOTS / str(slot)


def changed_lines(work: Path, slot: Path) -> dict[str, list[int]]:
    """Per target file, the lines (numbered as in the original) the mutant changed."""
    changed: dict[str, list[int]] = {}
    for name in TARGETS:
        before = (work / "pristine" / name).read_text()
        after = (slot / "peer" / "smuxref" / name).read_text()
        if before != after:
            changed[name] = lines_changed(before, after)
    return changed


def _say(*parts: object) -> None:
    print(MARK, *parts, flush=True)


def _killers(work: Path) -> dict[str, int]:
    path = work / "killers.json"
    return json.loads(path.read_text()) if path.exists() else {}


def count_kill(work: Path, case: str) -> None:
    """One more kill for ``case``; slots running side by side update the counts in turn,
    and a reader sees the old counts or the new ones, never a half-written file."""
    with (work / "killers.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        killers = _killers(work)
        killers[case] = killers.get(case, 0) + 1
        fresh = work / f"killers.json.{os.getpid()}"
        fresh.write_text(json.dumps(killers))
        fresh.replace(work / "killers.json")


def cheapest_first(
    cases: list[str], durations: dict[str, float], kills: dict[str, int]
) -> list[str]:
    """The order that reaches a kill soonest on average: by seconds per kill so far, i.e.
    a case's unmutated time divided by one more than the mutants it killed earlier in
    the session.  Before any kill that is plain cheapest-first; a cheap case that keeps
    killing stays ahead of an equally cheap one that never did."""
    return sorted(cases, key=lambda c: (durations.get(c, 1.0) / (1 + kills.get(c, 0)), c))


@dataclass
class _Run:
    """What one pytest run of a mutant gave."""

    status: int | None  #: pytest's exit status; None: stopped at the budget
    output: str
    rows: list[dict[str, Any]]  #: its rows of ``smux-results.json``
    stop: dict[str, str] | None  #: the inconclusive result it stopped at, if any


def _die_with_parent(sig: signal.Signals) -> Callable[[], None]:
    """A function that makes the process calling it get ``sig`` when the thread that
    started it ends (Linux; elsewhere it does nothing).  Made before a fork, so the child
    only calls prctl(2)."""
    if not sys.platform.startswith("linux"):
        return lambda: None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    return lambda: prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)


def _terminated(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # through _pytest, which kills its pytest first


def run_mutant(work: Path, slot: int | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminated)
    _die_with_parent(signal.SIGTERM)()
    settings = json.loads((work / "settings.json").read_text())
    casemap = CaseMap.load(work / "casemap.json")
    place = slot_dir(work, slot)
    changed = changed_lines(work, place)
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
    shutil.rmtree(place / "peer" / "smuxref" / "__pycache__", ignore_errors=True)
    # The map's durations were measured at the map's scale; deadlines (and so the time a
    # surviving case spends waiting for silence) grow with the run's.
    stretch = max(1.0, settings["scale"] / casemap.scale)
    budget = stretch * (
        BUDGET_FACTOR * sum(casemap.durations.get(c, 1.0) for c in cases) + BUDGET_SLACK
    )
    _say("CASES", len(cases), f"budget {budget:.0f}s")
    started = time.monotonic()
    rows: list[dict[str, Any]] = []
    settled: list[str] = []  # named cases run without settling their claim
    while True:
        left = budget - (time.monotonic() - started)
        run = _pytest(place, settings, cases, left, ignore=(casemap.inconclusive, settled))
        rows += run.rows
        if run.status is None or run.status == 1 or run.stop is None:
            break
        # An inconclusive result: run the case it names, then judge the claim as the
        # gate does once every result is known (a named case that passed refutes it).
        stop = run.stop
        _say("INCONCLUSIVE", stop["nodeid"], "relies on", stop["blame"])
        left = budget - (time.monotonic() - started)
        named = _pytest(place, settings, ["conformance", "--smux-case", stop["blame"]], left)
        rows += named.rows
        if named.status is None or named.status == 1 or _refuted(rows):
            run = dataclasses.replace(named, status=None if named.status is None else 1)
            break
        settled.append(stop["blame"])
        cases = cases[cases.index(stop["nodeid"]) + 1 :] if stop["nodeid"] in cases else []
        if not cases:
            run = dataclasses.replace(run, status=0)
            break
    _say("SECONDS", f"{time.monotonic() - started:.1f}")
    if run.status is None:
        _say("TIMEOUT", f"{budget:.0f}s")
        return 2
    print("\n".join(run.output.splitlines()[-15:]))
    if run.status == 0:
        should = _should_level(rows) - set(casemap.non_strict)
        if should:
            # The default gate passed it, --smux-strict would not: detected at should level.
            _say("SHOULD-LEVEL", json.dumps(sorted(should)))
        _say("SURVIVED")
        return 0
    if run.status == 1:
        failed = _FAILED_LINE.search(run.output)
        if failed:
            count_kill(work, failed.group(1))
            _say("KILLED-BY", failed.group(1))
        else:  # the gate's own verdict: an inconclusive claim its named case refuted
            refuted = _refuted(rows)
            why = " (inconclusive; the case it named passed)"
            _say("KILLED-BY", refuted + why if refuted else "?")
        return 1
    _say("ERROR", f"pytest exited with status {run.status}")
    return 3


def _should_level(rows: list[dict[str, Any]]) -> set[str]:
    """The nodes that fail a SHOULD, given every result so far: ``non_strict`` ones, and
    inconclusive ones of should-level cases whose named case passed in the same column
    (the gate turns those into ``non_strict``; ``_decoder.py:203``, a ``KeyError`` that
    escapes the decoder, was counted a survivor while the gate gave it non_strict)."""
    merged = [dict(r) for r in rows]
    confirm_blames(merged, strict=False)
    return {r["nodeid"] for r in merged if r.get("actual") == "non_strict"}


def _refuted(rows: list[dict[str, Any]]) -> str:
    """A node whose inconclusive result the gate turns into an unexpected fail, given
    every result so far ("" if none): its named case passed in the same column."""
    merged = [dict(r) for r in rows]
    confirm_blames(merged, strict=False)
    return next((r["nodeid"] for r in merged if REFUTED_KEY in r and r.get("unexpected")), "")


def _pytest(
    place: Path,
    settings: dict[str, Any],
    selection: list[str],
    budget: float,
    *,
    ignore: tuple[list[str], list[str]] | None = None,
) -> _Run:
    """One pytest run of ``selection`` (node ids, or a path and options) against the
    mutant in the slot ``place``, ``-x``; with ``ignore`` (node ids, named cases) it
    also stops at the first other inconclusive result (:mod:`.stopper`)."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        *selection,
        "--peer=ref",
        "-x",
        "-q",
        "-rfE",
        "-p",
        "no:cacheprovider",
        f"--smux-timeout-scale={settings['scale']}",
        f"--smux-report-dir={place / 'reports'}",
        f"--basetemp={place / 'tmp'}",
        *settings.get("pytest_args", []),
    ]
    env = {**os.environ, REF_SOURCE_ENV: str(place / "peer"), "PYTHONDONTWRITEBYTECODE": "1"}
    stopped = place / "stopped.json"
    stopped.unlink(missing_ok=True)
    if ignore is not None:
        command += ["-p", "smuxref_conformance.mutation.stopper"]
        nodes, blames = ignore
        env[STOP_ENV] = json.dumps({"file": str(stopped), "nodes": nodes, "blames": blames})
    results = place / "reports" / RESULTS_NAME
    results.unlink(missing_ok=True)  # a pytest that dies early must not leave the last one's
    proc = subprocess.Popen(
        command,
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_die_with_parent(signal.SIGKILL),  # noqa: PLW1509 - it only calls prctl(2)
    )
    try:
        output, _ = proc.communicate(timeout=max(budget, 1.0))
    except subprocess.TimeoutExpired:
        _kill(proc)
        return _Run(None, "", [], None)
    except BaseException:  # terminated: no pytest of this mutant may outlive the command
        _kill(proc)
        raise
    rows = json.loads(results.read_text()).get("results", []) if results.exists() else []
    stop = json.loads(stopped.read_text()) if stopped.exists() else None
    return _Run(proc.returncode, output.decode(errors="replace"), rows, stop)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """Kill pytest's process group; its peers die with it (PR_SET_PDEATHSIG)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
