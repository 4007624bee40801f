"""Command line: ``run`` (the measurement), ``test`` (one mutant), ``report``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .casemap import REPO, TARGETS, CaseMap, build, fingerprint, prepare_sources
from .report import Summary, summarise, wilson
from .runner import run_mutant
from .session import configure, execute, extend_sample, initialise, select

DEFAULT_WORK = REPO / ".mutation"


def _score_line(summary: Summary) -> str:
    c = summary.counts()
    (detected, judged), (_, wire_judged) = (
        summary.fraction(c),
        summary.fraction(c, wire_only=True),
    )
    if not judged or not wire_judged:
        return f"score: nothing judged yet ({summary.pending} pending)"

    def interval(k: int, n: int) -> str:
        if not summary.sampled:
            return ""
        low, high = wilson(k, n)
        return f" (95 % interval {low:.1%}-{high:.1%})"

    return (
        f"score {detected / judged:.1%}{interval(detected, judged)}: {detected} of {judged}"
        f" non-equivalent mutants detected; wire score {detected / wire_judged:.1%}"
        f"{interval(detected, wire_judged)}: {detected} of {wire_judged}, without the"
        f" {c['outside-wire']} outside the wire's view; {c['not-covered']} not covered by"
        f" any case (not detected in both); {c['equivalent']} equivalent;"
        f" {summary.pending} pending{'; a seeded sample' if summary.sampled else ''}"
    )


def _should_only(summary: Summary) -> str:
    survivors = [o for o in summary.outcomes if o.outcome == "survived"]
    seen = sum(1 for o in survivors if "should-level" in o.detail)
    return (
        f"survivors seen only by should-level cases (non_strict: the default gate passes"
        f" them, --smux-strict would not): {seen} of {len(survivors)}"
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
    print(_should_only(summary))
    if summary.beyond_prefix:
        print(_beyond(summary))
    shown = [o for o in summary.outcomes if o.outcome in ("survived", "error")]
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
        _should_only(summary) + ".",
        "",
        *([_beyond(summary) + ".", ""] if summary.beyond_prefix else []),
        "| outcome | mutant | detail |",
        "|---|---|---|",
    ]
    for o in sorted(summary.outcomes, key=lambda o: (o.outcome != "survived", o.file, o.line)):
        if o.outcome == "killed":
            continue
        mutant = f"`{o.file}:{o.line}` {o.operator.split('/')[-1]}: `{o.original}` → `{o.mutated}`"
        lines.append(f"| {o.outcome} | {mutant.replace('|', '&#124;')} | {o.detail} |")
    return "\n".join(lines) + "\n"


def _run(args: argparse.Namespace) -> int:
    work: Path = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
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
    execute(config, database, settle=not args.rerun_triaged)
    summary = summarise(database)
    print(f"\nwall time {time.monotonic() - started:.0f}s")
    _print_summary(summary, verbose=False)
    errors = summary.counts()["error"]
    if errors or (args.fail_untriaged and summary.untriaged()):
        return 1
    return 0


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
        "--sample",
        type=int,
        help="run only the first N of the seeded order (with --resume: grow the sample to N)",
    )
    run.add_argument("--seed", type=int, default=0)
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
        "--fail-untriaged", action="store_true", help="exit 1 if a survivor has no triage entry"
    )
    test = sub.add_parser("test", help="Cosmic Ray's test command: run the current mutant")
    test.add_argument("--work", type=Path, default=DEFAULT_WORK)
    report = sub.add_parser("report", help="summarise a session (also while it runs)")
    report.add_argument("--work", type=Path, default=DEFAULT_WORK)
    report.add_argument("-v", "--verbose", action="store_true", help="list every non-kill")
    report.add_argument("--markdown", type=Path, help="also write the results as Markdown")
    report.add_argument("--title", default="Mutation results")
    args = parser.parse_args(argv)
    if args.command == "run":
        return _run(args)
    if args.command == "test":
        return run_mutant(args.work.resolve())
    summary = summarise(args.work.resolve() / "session.sqlite")
    _print_summary(summary, verbose=args.verbose)
    if args.markdown:
        args.markdown.write_text(_markdown(summary, args.title))
    return 0


if __name__ == "__main__":
    sys.exit(main())
