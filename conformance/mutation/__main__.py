"""Command line: ``run`` (the measurement), ``test`` (one mutant), ``report``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Final

from .casemap import REPO, TARGETS, CaseMap, build, fingerprint, prepare_sources
from .report import Summary, summarise, wilson
from .runner import run_mutant
from .session import configure, execute, extend_sample, forget, initialise, select
from .workers import sigterm_interrupts

DEFAULT_WORK = REPO / ".mutation"


def _score_line(summary: Summary) -> str:
    c = summary.counts()
    if not summary.fraction(c)[1] or not summary.fraction(c, wire_only=True)[1]:
        return f"score: nothing judged yet ({summary.pending} pending)"

    def figure(name: str, *, wire_only: bool, must_only: bool) -> str:
        k, n = summary.fraction(c, wire_only=wire_only, must_only=must_only)
        interval = ""
        if summary.sampled:
            low, high = wilson(k, n)
            interval = f" (95 % interval {low:.1%}-{high:.1%})"
        return f"{name} {k / n:.1%}{interval}: {k} of {n}"

    return (
        figure("wire score", wire_only=True, must_only=False)
        + f" detected (killed, timed out or detected at should level), without the"
        f" {c['outside-wire']} outside the wire's view and the {c['allowed']} allowed by"
        " SPEC.md; "
        + figure("at must level only", wire_only=True, must_only=True)
        + " (killed or timed out: the default gate); "
        + figure("score", wire_only=False, must_only=False)
        + " of the non-equivalent mutants; "
        + figure("at must level only", wire_only=False, must_only=True)
        + f"; {c['not-covered']} not covered by any case (not detected in all four);"
        f" {c['equivalent']} equivalent; {summary.pending} pending"
        + ("; a seeded sample" if summary.sampled else "")
    )


def _should_only(summary: Summary) -> str:
    c = summary.counts()
    return (
        f"detected only at should level (non_strict results the unmutated peer does not"
        f" give: the default gate passes them, --smux-strict fails them):"
        f" {c['should-level']}; killed at must level: {c['killed'] + c['timeout']}"
    )


def _beyond(summary: Summary) -> str:
    settled = ", ".join(f"{n} {k}" for k, n in sorted(summary.beyond_prefix.items()))
    return (
        f"not counted: {settled} recorded without a run beyond the measured prefix"
        " of the seeded order (counting them would bias the sample)"
    )


def _print_summary(summary: Summary, *, verbose: bool) -> None:
    print(summary.table())
    print("\n" + _score_line(summary))
    print("pytest time per mutant: " + summary.timing())
    print("projected: " + summary.projected_hours())
    print(_should_only(summary))
    if summary.beyond_prefix:
        print(_beyond(summary))
    shown = [o for o in summary.outcomes if o.outcome in ("survived", "should-level", "error")]
    if verbose:
        shown = [o for o in summary.outcomes if o.outcome != "killed"]
    for o in sorted(shown, key=lambda o: (o.file, o.line)):
        print(f"  {o.outcome:12} {o.file}:{o.line} {o.operator}: {o.original!r} -> {o.mutated!r}")
        if o.detail:
            print(f"  {'':12} {o.detail}")
    for stale in summary.stale_triage if not summary.sampled else ():
        print(f"  triage entry matches no mutant run: {stale}")


def _markdown(summary: Summary, title: str) -> str:
    lines = [
        f"# {title}",
        "",
        "Written by `python -m smuxref_conformance.mutation report --markdown FILE`;"
        " how to read it:",
        "[`__init__.py`](__init__.py), [`report.py`](report.py).",
        "",
        summary.table(),
        "",
        _score_line(summary) + ".",
        "",
        "pytest time per mutant: " + summary.timing() + ".",
        "",
        "Projected: " + summary.projected_hours() + ".",
        "",
        _should_only(summary) + ".",
        "",
        *([_beyond(summary) + ".", ""] if summary.beyond_prefix else []),
        "| outcome | mutant | detail |",
        "|---|---|---|",
    ]
    first = ("survived", "should-level")
    for o in sorted(
        summary.outcomes,
        key=lambda o: (first.index(o.outcome) if o.outcome in first else 2, o.file, o.line),
    ):
        if o.outcome == "killed":
            continue
        mutant = f"`{o.file}:{o.line}` {o.operator.split('/')[-1]}: `{o.original}` → `{o.mutated}`"
        lines.append(f"| {o.outcome} | {mutant.replace('|', '&#124;')} | {o.detail} |")
    return "\n".join(lines) + "\n"


def _run(args: argparse.Namespace) -> int:
    work: Path = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    # A SIGTERM (a nightly job's time limit) stops the run as Ctrl-C does: the map's
    # pytest or the running mutants are ended with their peers.
    with sigterm_interrupts():
        try:
            config, database = _session(args, work, started)
        except KeyboardInterrupt:
            print("\ninterrupted before any mutant ran: run the same command again", flush=True)
            return 130
        try:
            execute(config, database, settle=not args.rerun_triaged, workers=args.workers)
        except KeyboardInterrupt:
            # The mutants that were running are pending again; every result recorded stands.
            print(f"\ninterrupted: `run --resume --work {args.work}` goes on", flush=True)
            return 130
    summary = summarise(database)
    print(f"\nwall time {time.monotonic() - started:.0f}s")
    _print_summary(summary, verbose=False)
    errors = summary.counts()["error"]
    if errors or (args.fail_untriaged and summary.untriaged()):
        return 1
    return 0


def _session(args: argparse.Namespace, work: Path, started: float) -> tuple[Path, Path]:
    """A new session (case map, mutants, sample) or, with ``--resume``, the one in
    ``work``; return its Cosmic Ray configuration and database."""
    if not args.resume:
        suite = [*args.cases, f"--smux-version={args.smux_version}"]
        saved = work / "casemap.json"
        if saved.exists() and CaseMap.load(saved).fingerprint == fingerprint(suite):
            print("case map: smuxref and the suite are unchanged, reusing it", flush=True)
        else:
            prepare_sources(work)
            casemap = build(work, scale=args.scale, workers=args.map_workers, pytest_args=suite)
            print(
                f"case map: {len(casemap.durations)} cases, {len(casemap.failed)} failed"
                f" unmutated ({time.monotonic() - started:.0f}s)",
                flush=True,
            )
        files = tuple(args.files.split(",")) if args.files else TARGETS
        config = configure(
            work, scale=args.scale, files=files, pytest_args=suite[len(args.cases) :]
        )
        database = initialise(work, config)
        generated, kept = select(
            database, sample=args.sample, seed=args.seed, rerun_triaged=args.rerun_triaged
        )
        print(f"mutants: {generated} generated, {kept} selected", flush=True)
    else:
        config, database = work / "cosmic-ray.toml", work / "session.sqlite"
        if args.sample is not None:
            print(f"sample: {extend_sample(database, args.sample)} mutants added", flush=True)
        if args.rerun_survivors:
            _forget_survivors(work, database, args)
    return config, database


def _forget_survivors(work: Path, database: Path, args: argparse.Namespace) -> None:
    """``--rerun-survivors``: the survivors, uncovered mutants and harness errors of the
    measured prefix become pending again, and run with the suite as it is now (an error
    is no verdict on the mutant, e.g. a suite replaced under a running pytest).  A suite
    changed since the case map was built (a case added to kill a survivor) gets a new
    map first, so the new cases are among those a mutant runs.  smuxref itself must not
    have changed: the mutants were generated from it."""
    settings = json.loads((work / "settings.json").read_text())
    suite = [*args.cases, *settings.get("pytest_args", [])]
    if CaseMap.load(work / "casemap.json").fingerprint != fingerprint(suite):
        pristine = {n: (work / "pristine" / n).read_bytes() for n in TARGETS}
        if any((REPO / "smuxref" / n).read_bytes() != b for n, b in pristine.items()):
            raise SystemExit("--rerun-survivors: smuxref changed since the mutants were made")
        prepare_sources(work)
        casemap = build(work, scale=settings["scale"], workers=args.map_workers, pytest_args=suite)
        print(f"case map rebuilt: {len(casemap.durations)} cases", flush=True)
    again = [o.job_id for o in summarise(database).outcomes if o.outcome in _RERUN]
    forget(database, again)
    print(f"rerun: {len(again)} survivors, uncovered mutants and errors pending again", flush=True)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


#: The outcomes --rerun-survivors runs again.
_RERUN: Final = ("survived", "not-covered", "error")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m smuxref_conformance.mutation", description=__doc__
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="build the case map, generate and run the mutants")
    run.add_argument("--work", type=Path, default=DEFAULT_WORK, help="work directory")
    run.add_argument("--scale", type=float, default=1.0, help="--smux-timeout-scale")
    run.add_argument("--map-workers", type=int, default=2, help="-n of the instrumented run")
    run.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="mutants run side by side, each in its own copy of the source (default 1)",
    )
    run.add_argument(
        "--sample",
        type=int,
        help="run only the first N of the seeded order (with --resume: grow the sample to N)",
    )
    run.add_argument(
        "--seed",
        type=int,
        default=20261202,
        help="of the random order (default 20261202: the order RESULTS.md and tox's sample use)",
    )
    run.add_argument(
        "--smux-version", default="1,2", help="protocol versions of the suite (default 1,2)"
    )
    run.add_argument(
        "--cases",
        nargs="+",
        default=["conformance"],
        help="the suite, or part of it (paths; default: conformance)",
    )
    run.add_argument("--files", help=f"comma-separated subset of {','.join(TARGETS)}")
    run.add_argument("--resume", action="store_true", help="run the pending mutants only")
    run.add_argument(
        "--rerun-triaged", action="store_true", help="also run the mutants triage.toml judges"
    )
    run.add_argument(
        "--rerun-survivors",
        action="store_true",
        help="with --resume: run the survivors (and uncovered mutants and harness errors) of"
        " the measured prefix again, with the suite as it is now (the case map is rebuilt"
        " if it changed)",
    )
    run.add_argument(
        "--fail-untriaged", action="store_true", help="exit 1 if a survivor has no triage entry"
    )
    test = sub.add_parser("test", help="Cosmic Ray's test command: run the current mutant")
    test.add_argument("--work", type=Path, default=DEFAULT_WORK)
    test.add_argument("--slot", type=int, help="the worker's slot (run --workers)")
    report = sub.add_parser("report", help="summarise a session (also while it runs)")
    report.add_argument("--work", type=Path, default=DEFAULT_WORK)
    report.add_argument("-v", "--verbose", action="store_true", help="list every non-kill")
    report.add_argument("--markdown", type=Path, help="also write the results as Markdown")
    report.add_argument("--title", default="Mutation results")
    args = parser.parse_args(argv)
    if args.command == "run" and args.rerun_survivors and not args.resume:
        parser.error("--rerun-survivors needs --resume (it runs mutants of a session again)")
    if args.command == "run":
        return _run(args)
    if args.command == "test":
        return run_mutant(args.work.resolve(), args.slot)
    summary = summarise(args.work.resolve() / "session.sqlite")
    _print_summary(summary, verbose=args.verbose)
    if args.markdown:
        args.markdown.write_text(_markdown(summary, args.title))
    return 0


if __name__ == "__main__":
    sys.exit(main())
