"""``python -m smuxref_conformance.precision``: blame precision of the suite on the bug switches.

A verdict is only worth reading if a defect fails the case that tests it and nothing
else: one defect that fails dozens of unrelated requirements hides where it is.  The
reference peer can be broken on purpose (``python -m smuxref.peer --bug NAME``, one
realistic mistake per switch), so the suite can measure this about itself: run it
against each switch alone and count

* **caught**: ``fail`` verdicts in the cases that test the mistake (:data:`TARGETS`), or
  ``non_strict`` ones where the mistake breaks only a SHOULD (first ids 1 and 0, SPEC.md
  13.1);
* **stray**: ``fail``, ``error`` or ``non_strict`` verdicts anywhere else - the number
  to keep at zero (a failed SHOULD pinned on a case the mistake does not touch misleads
  as much as a failed MUST);
* **inconclusive**: results whose precondition failed, and whether every one of them
  names a targeted case that failed in the same version and role (``blame ok``).

The table printed (Markdown) is the one in README.md.  ``--bug`` restricts the switches,
``-k``/``--smux-version``/``--smux-roles`` are passed on to pytest, ``--json`` writes
the rows, ``--keep-reports DIR`` keeps each switch's reports (DIR/NAME).
tests/test_blame_precision.py runs a bounded subset of this on every CI run.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from .judge.prerequisites import NamedCaseIndex

__all__ = [
    "TARGETS",
    "Precision",
    "SuiteRun",
    "bug_peer",
    "child_env",
    "measure",
    "run_suite",
    "run_switch",
    "table",
]

ROOT: Final = Path(__file__).resolve().parents[1]

#: switch -> the cases that test the mistake it imitates (a fail there is the catch).
TARGETS: Final[dict[str, tuple[str, ...]]] = {
    "len-big-endian": ("smux/10.1/interop-one-stream", "smux/4.1/version-on-syn-psh-fin"),
    # The session model checks the version byte of every frame it receives.
    "fin-wrong-version": ("smux/4.1/version-on-syn-psh-fin", "smux/10.2/stateful-echo"),
    "no-keepalive": ("smux/7.1/nop-interval",),
    "ignore-peer-window": ("smux/9.1/initial-window", "smux/9.3/window-from-upd"),
    "first-sid-1-or-0": (
        "smux/5.1/server-first-ids",
        "smux/5.1/client-first-ids",
        "smux/5.1/interop-server-ids",
        "smux/5.1/interop-client-ids",
    ),
    "zero-psh-eof": (
        "smux/6.3/zero-length-psh-open-stream",
        "smux/10.2/stateful-echo",
    ),
    "psh-current-stream": (
        "smux/2.1/interop-100-streams",
        "smux/5.4/thousand-streams",
        "smux/10.2/stateful-echo",
    ),
    "no-fin": ("smux/10.4/fin-after-all-data", "smux/10.4/interop-source"),
    # The session model sends NOPs among its random frames (its "nop" rule).
    "close-on-nop": (
        "smux/5.3/nop-any-stream-id",
        "smux/7.2/nops-keep-session-open",
        "smux/10.2/stateful-echo",
    ),
    "no-version-check": (
        "smux/4.1/wrong-version-syn",
        "smux/4.1/wrong-version-psh",
    ),
    "ignore-max-frame-size": ("smux/6.1/sent-psh-within-max-frame-size",),
    "upd-in-v1": ("smux/4.2/no-upd-sent-in-version-1",),
    # The hundred streams OPEN makes must carry distinct ids of the peer's parity.
    "sid-step-1": (
        "smux/5.1/opened-ids-parity",
        "smux/5.1/interop-100-peer-streams",
        "smux/5.1/server-first-ids",
        "smux/5.1/client-first-ids",
        "smux/5.1/interop-server-ids",
        "smux/5.1/interop-client-ids",
    ),
    "upd-consumed-headers": ("smux/9.2/upd-after-first-read", "smux/9.2/upd-every-half-buffer"),
    "no-receive-buffer-limit": ("smux/8.2/stop-reading-at-limit",),
    "keepalive-never-times-out": ("smux/7.2/idle-session-closed",),
    "keepalive-timeout-early": ("smux/7.2/idle-session-closed",),
    # The session model sends duplicate SYNs among its random frames too.
    # A SYN that names a stream the suite already finished is a duplicate SYN too.
    "dup-syn-resets": (
        "smux/5.4/duplicate-syn-ignored",
        "smux/5.4/duplicate-syn-after-fin-ignored",
        # A SYN for the HALFCLOSE stream replaces it: the suite's FIN ends the new one,
        # and the stream HALFCLOSE reads never ends (RESULT: NONE).
        "smux/5.4/duplicate-syn-half-closed-ignored",
        "smux/10.2/stateful-echo",
    ),
    # The mistake refuses every write after the peer's FIN: it breaks 10.2's "MUST still
    # let its application send data" as directly as "MUST NOT send FIN automatically".
    "fin-replies-fin": (
        "smux/10.2/stateful-echo",
        # Data sent with the FIN must be echoed: the echo is refused here, so the case
        # is inconclusive naming write-after-peer-fin, which fails (blame.OWN_CHECK).
        "smux/10.2/data-before-fin-delivered",
        "smux/10.2/no-automatic-fin",
        "smux/10.2/write-after-peer-fin",
        "smux/10.2/half-close-echo-continues",
        "smux/10.2/interop-sink",
        "smux/10.2/interop-half-close",
    ),
    "reuse-open-id": ("smux/5.1/no-id-of-open-stream",),
    "syn-before-register": ("smux/10.1/ready-before-syn",),
    "half-close-drops-unread": ("smux/10.2/half-close-keeps-unread",),
}

#: What a precision run leaves out by default: the variants that repeat a case with the
#: same frames cut differently or with more bytes (the blame of a case does not depend
#: on them), so one switch costs a minute or two rather than ten.
DEFAULT_SELECTION: Final = "not bytewise and not coalesced and not 64MiB and not 1MiB"


@dataclass
class Precision:
    """One switch's line of the table."""

    bug: str
    results: int = 0
    caught: list[str] = field(default_factory=list)
    stray: list[str] = field(default_factory=list)
    inconclusive: int = 0
    misblamed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: verdict -> how many results had it (pass, fail, inconclusive, unsupported, ...)
    verdicts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.caught) and not self.stray and not self.misblamed


def _where(row: dict[str, Any]) -> str:
    variant = f" [{row['variant']}]" if row.get("variant") else ""
    return f"{row['case']} v{row['version']} {row['role']}{variant}: {row['actual']}"


#: The session-model cases check every rule a frame sequence can break (their failure
#: message names the rule), so a fail there is a catch for any switch.
MODEL_CASES: Final = ("smux/10.2/stateful-echo", "smux/10.2/differential-echo")


def judge(bug: str, rows: Sequence[dict[str, Any]]) -> Precision:
    """Sort one run's result rows into caught, stray and inconclusive."""
    targets = {*TARGETS[bug], *MODEL_CASES}
    out = Precision(bug, results=len(rows))
    # An inconclusive result is only right if the case it names does fail, in the same
    # version and role: a blame that names a passing case would hide a defect.
    failing = {
        (row["case"], row["version"], row["role"])
        for row in rows
        if row["actual"] in ("fail", "non_strict")
    }
    index = NamedCaseIndex(rows)
    for row in rows:
        out.verdicts[row["actual"]] = out.verdicts.get(row["actual"], 0) + 1
        targeted = row["case"] in targets
        if row["actual"] in ("fail", "error", "non_strict"):
            (out.caught if targeted and row["actual"] != "error" else out.stray).append(_where(row))
        elif row["actual"] == "inconclusive":
            out.inconclusive += 1
            # Through a chain of inconclusive prerequisites, to the case that failed.
            blame = index.root_cause(row)
            if blame not in targets:
                out.misblamed.append(f"{_where(row)} (blames {blame})")
            elif (blame, row["version"], row["role"]) not in failing:
                out.misblamed.append(f"{_where(row)} (blames {blame}, which did not fail)")
    return out


def bug_peer(name: str) -> str:
    """The ``--peer`` value of the reference peer with switch ``name``."""
    return "exec:" + shlex.join([sys.executable, "-m", "smuxref_conformance.bugs", "--bug", name])


@dataclass(frozen=True)
class SuiteRun:
    """One subprocess run of the conformance suite and the results it wrote."""

    command: list[str]
    returncode: int
    seconds: float
    output: str
    results: list[dict[str, Any]]

    def describe(self, limit: int = 40) -> str:
        """The command, its exit status and time, every result and the output's tail."""
        rows = [
            f"  {r['actual']:<11} {r['level']:<6} {r['case']} v{r['version']} {r['role']}"
            f"{' ' + r['variant'] if r.get('variant') else ''}"
            for r in self.results
        ]
        tail = "\n".join(self.output.rstrip().splitlines()[-limit:])
        return (
            f"command: {shlex.join(self.command)}\nexit status {self.returncode} after "
            f"{self.seconds:.1f} s; results:\n" + ("\n".join(rows) or "  none") + f"\n{tail}"
        )


def child_env() -> dict[str, str]:
    """This process's environment minus what would make the child think it is an
    xdist worker or part of a running test."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT_TEST")) and k != "PYTEST_ADDOPTS"
    }


def run_suite(
    peer: str, pytest_args: Sequence[str], report_dir: Path, *, timeout: float | None = None
) -> SuiteRun:
    """``pytest conformance --peer PEER ARGS`` in a subprocess; its results file read back.

    RuntimeError, with the output's tail, when the run wrote no results file.
    """
    command = [
        sys.executable,
        "-m",
        "pytest",
        "conformance",
        "-p",
        "no:cacheprovider",
        "-q",
        f"--peer={peer}",
        f"--smux-report-dir={report_dir}",
        *pytest_args,
    ]
    start = time.monotonic()
    proc = subprocess.run(
        command,
        cwd=ROOT,
        env=child_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = proc.stdout + proc.stderr
    path = report_dir / "smux-results.json"
    if not path.exists():
        raise RuntimeError(
            f"the suite wrote no results (exit status {proc.returncode}): {shlex.join(command)}\n"
            + "\n".join(output.splitlines()[-60:])
        )
    results: list[dict[str, Any]] = json.loads(path.read_text())["results"]
    return SuiteRun(command, proc.returncode, time.monotonic() - start, output, results)


def run_switch(bug: str, pytest_args: Sequence[str], report_dir: Path) -> list[dict[str, Any]]:
    """The suite against ``--bug BUG`` in a subprocess; the rows of its results file."""
    return run_suite(bug_peer(bug), pytest_args, report_dir).results


def measure(
    bugs: Sequence[str], pytest_args: Sequence[str], keep: Path | None = None
) -> list[Precision]:
    """Run every switch in ``bugs`` alone and judge its results (``keep``: leave each
    switch's reports in ``keep/NAME`` to read the messages behind the table)."""
    lines = []
    for bug in bugs:
        start = time.monotonic()
        if keep is not None:
            (keep / bug).mkdir(parents=True, exist_ok=True)
            rows = run_switch(bug, pytest_args, keep / bug)
        else:
            with tempfile.TemporaryDirectory(prefix=f"smux-precision-{bug}-") as tmp:
                rows = run_switch(bug, pytest_args, Path(tmp))
        line = judge(bug, rows)
        line.seconds = round(time.monotonic() - start, 1)
        lines.append(line)
        # Progress on stderr as each switch ends: a long run keeps what it measured.
        print(table([line]).splitlines()[-1], f"({line.seconds:g} s)", file=sys.stderr, flush=True)
        for item in (*line.stray, *line.misblamed):
            print(f"  {bug}: {item}", file=sys.stderr, flush=True)
    return lines


def table(lines: Sequence[Precision]) -> str:
    """The Markdown table of README.md."""
    out = [
        "| switch | results | pass | fail | inconclusive | other | caught by (fail) "
        "| stray fails | blame ok |",
        "|---|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for line in lines:
        caught = sorted({c.split(" ")[0] for c in line.caught})
        passed, failed = line.verdicts.get("pass", 0), line.verdicts.get("fail", 0)
        other = line.results - passed - failed - line.inconclusive
        out.append(
            f"| `{line.bug}` | {line.results} | {passed} | {failed} | {line.inconclusive} | "
            f"{other} | "
            + (", ".join(f"`{c}`" for c in caught) or "**none**")
            + f" | {len(line.stray)} | "
            + ("yes" if not line.misblamed else f"**{len(line.misblamed)} elsewhere**")
            + " |"
        )
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m smuxref_conformance.precision", description=__doc__
    )
    parser.add_argument("--bug", action="append", choices=sorted(TARGETS), help="repeatable")
    parser.add_argument("-k", default=DEFAULT_SELECTION, help="pytest -k selection")
    parser.add_argument("--json", type=Path, help="write the rows as JSON here")
    parser.add_argument("--keep-reports", type=Path, help="each switch's reports in DIR/NAME")
    args, rest = parser.parse_known_args(argv)
    bugs = args.bug or sorted(TARGETS)
    lines = measure(bugs, ["-k", args.k, *rest], args.keep_reports)
    print(table(lines))
    for line in lines:
        for what, items in (("stray", line.stray), ("blamed elsewhere", line.misblamed)):
            for item in items:
                print(f"  {line.bug}: {what}: {item}")
    if args.json:
        args.json.write_text(json.dumps([asdict(x) for x in lines], indent=1) + "\n")
    return 0 if all(line.ok for line in lines) else 1


if __name__ == "__main__":
    sys.exit(main())
