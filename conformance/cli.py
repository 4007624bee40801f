"""``smux-conformance``: the gate as one command, for projects that are not this one.

A Rust or Go project that adopts the suite in its CI needs a command whose exit status
is the verdict, not a pytest incantation that depends on its own configuration.  So the
command runs the shipped cases under the suite's own pytest configuration
(``suite.ini`` beside this file: the caller's pytest.ini, pyproject.toml, conftest.py,
``PYTEST_ADDOPTS`` and auto-loaded pytest plugins play no part), writes the reports,
prints where they are, and exits with one of:

====  ==================  ============================================================
code  name                meaning
====  ==================  ============================================================
0     pass                every result is the expected one, and some case was judged
1     unexpected results  the run completed; some result differs from the expectations
2     usage error         the command line is wrong (an option, a --peer, an
                          expectations file, a selection matching no case)
3     harness error       no trustworthy verdict: a harness error in a result, no case
                          judged, no Docker engine for a containerized peer, an
                          interrupted or crashed run
====  ==================  ============================================================

``smux-conformance merge RESULTS.json... -o DIR`` merges results files (shards, tags,
implementations, machines) into one results file and one report, with the same codes
(:mod:`smuxref_conformance.report.merge`).  Every other argument goes to pytest: ``--peer``, the
``--smux-*`` options, ``-k``, ``-n 2``, ``-p PLUGIN``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

__all__ = ["EXIT_HARNESS", "EXIT_PASS", "EXIT_UNEXPECTED", "EXIT_USAGE", "main", "verdict_code"]

EXIT_PASS: Final = 0
EXIT_UNEXPECTED: Final = 1
EXIT_USAGE: Final = 2
EXIT_HARNESS: Final = 3
EXIT_NAMES: Final = {
    EXIT_PASS: "pass",
    EXIT_UNEXPECTED: "unexpected results",
    EXIT_USAGE: "usage error",
    EXIT_HARNESS: "harness error",
}
PACKAGE_DIR: Final = Path(__file__).resolve().parent
SUITE_INI: Final = PACKAGE_DIR / "suite.ini"
RESULTS_NAME: Final = "smux-results.json"
#: What the command imports beyond its plugins (the ``gate`` extra of pyproject.toml).
_GATE_MODULES: Final = ("pytest", "jsonschema", "hypothesis", "filelock")
#: The plugins the suite needs, loaded by name since auto-loading is off; optional ones
#: are loaded when installed (xdist for -n, Hypothesis' reporting).
_PLUGINS: Final = (
    ("pytest_asyncio.plugin", True),
    ("xdist.plugin", False),
    ("xdist.looponfail", False),
    ("_hypothesis_pytestplugin", False),
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smux-conformance",
        description="Run the smux conformance suite against peers; the exit status is the gate "
        "(0 pass, 1 unexpected results, 2 usage error, 3 harness error). Arguments not listed "
        "here go to pytest (--smux-version, --smux-expectations, --smux-shard, -k, -n, ...).",
        epilog="smux-conformance merge RESULTS.json... -o DIR: merge results files into one "
        "report (see smux-conformance merge --help).",
    )
    parser.add_argument(
        "--peer",
        action="append",
        default=[],
        metavar="PEER",
        help="peer under test, repeatable: ref, go[@TAG], go-native[@TAG], docker:IMAGE, "
        "exec:'CMD ARGS', tcp:HOST:PORT (default: ref)",
    )
    parser.add_argument(
        "--report-dir",
        "--smux-report-dir",
        type=Path,
        default=Path("smux-reports"),
        metavar="DIR",
        help="where the reports go (default: ./smux-reports)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["merge"]:
        problem = _gate_missing()
        if problem is not None:
            print(f"smux-conformance: {problem}", file=sys.stderr)
            return EXIT_HARNESS
        from .report.merge import main as merge_main  # noqa: PLC0415 - only that subcommand

        return merge_main(args[1:], prog="smux-conformance merge")
    try:
        options, rest = _parser().parse_known_args(args)
    except SystemExit as exc:  # argparse: --help (0) or a bad option (2)
        return EXIT_PASS if exc.code == 0 else EXIT_USAGE
    return run(options.peer or ["ref"], options.report_dir.resolve(), rest)


def _missing_plugins() -> list[str]:
    return [name for name, required in _PLUGINS if required and not _importable(name)]


def _gate_missing() -> str | None:
    """Why the suite cannot run here, if the ``gate`` extra is not installed.

    Checked before anything imports pytest (the reports and the judge do), so that a
    bare ``pip install smuxref`` gets this sentence rather than a traceback."""
    missing = [name for name in _GATE_MODULES if not _importable(name)]
    missing += [name.partition(".")[0] for name in _missing_plugins()]
    if not missing:
        return None
    return (
        f"the suite needs the 'gate' extra ({', '.join(missing)} not installed): "
        "python -m pip install 'smuxref[gate]'"
    )


def _importable(name: str) -> bool:
    """Whether the distribution of module ``name`` is installed, without importing it
    (an imported plugin module could no longer be assertion-rewritten by pytest)."""
    return importlib.util.find_spec(name.partition(".")[0]) is not None


def pytest_args(peers: Sequence[str], report_dir: Path, rest: Sequence[str]) -> list[str]:
    """The pytest command line: the suite's configuration, its plugins, its cases."""
    plugins = [f"-p{name}" for name, _ in _PLUGINS if _importable(name)]
    return [
        f"--config-file={SUITE_INI}",
        f"--rootdir={PACKAGE_DIR.parent}",
        f"--confcutdir={PACKAGE_DIR}",
        "-pno:cacheprovider",
        *plugins,  # before the suite's plugin, which imports pytest_asyncio
        f"-p{__package__}.plugin",
        *(f"--peer={p}" for p in peers),
        f"--smux-report-dir={report_dir}",
        str(PACKAGE_DIR / "cases"),
        *rest,
    ]


def _engine_problem(peers: Sequence[str]) -> str | None:
    """Why containerized peers cannot run here (asked before pytest starts), or None."""
    from .peers.docker import ENGINE_HINT, engine_unreachable  # noqa: PLC0415
    from .peers.specs import parse_peer  # noqa: PLC0415

    try:
        if not any(parse_peer(p).containerized for p in peers):
            return None
    except ValueError:
        return None  # pytest reports the bad --peer, as a usage error
    reason = engine_unreachable()
    if reason is None:
        return None
    where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    return f"no Docker engine reachable at {where} ({reason}); {ENGINE_HINT}"


def run(peers: Sequence[str], report_dir: Path, rest: Sequence[str]) -> int:
    """Run the suite; return the gate's exit code."""
    problem = _gate_missing()
    if problem is not None:
        print(f"smux-conformance: {problem}", file=sys.stderr)
        return EXIT_HARNESS
    problem = _engine_problem(peers)
    if problem is not None:
        print(f"smux-conformance: {problem}", file=sys.stderr)
        return EXIT_HARNESS
    import pytest  # noqa: PLC0415 - the gate extra, checked above

    results_file = report_dir / RESULTS_NAME
    results_file.unlink(missing_ok=True)  # never judge a run by an earlier run's file
    os.environ.pop("PYTEST_ADDOPTS", None)
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    status = int(pytest.main(pytest_args(peers, report_dir, rest)))
    code = verdict_code(status, _read(results_file))
    print(f"smux-conformance: exit {code} ({EXIT_NAMES[code]})")
    if results_file.is_file():
        names = ("report.html", "summary.md", RESULTS_NAME, "junit.xml")
        present = [str(report_dir / n) for n in names if (report_dir / n).is_file()]
        print(f"smux-conformance: reports in {report_dir}: {', '.join(present)}")
    return code


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def verdict_code(pytest_status: int, results: dict[str, Any] | None) -> int:
    """The gate's exit code from pytest's exit status and the results file it wrote.

    Judged from the results where there are some: their ``unexpected`` flags (whatever
    the verdict names), ``error`` verdicts, which mean the harness could not judge, and
    whether any result was judged at all (``NOT_JUDGED`` of the results model).
    """
    if pytest_status == 4:  # pytest.ExitCode.USAGE_ERROR
        return EXIT_USAGE
    if results is None:
        # Nothing was written: a selection matching no case is a usage error; anything
        # else (interrupted, internal error) left no verdict.
        return EXIT_USAGE if pytest_status == 5 else EXIT_HARNESS
    from .report.results import NOT_JUDGED  # noqa: PLC0415 - it imports pytest (_gate_missing)

    rows = [r for r in results.get("results", []) if isinstance(r, dict)]
    unexpected = [r for r in rows if r.get("unexpected")]
    judged = [r for r in rows if r.get("actual") not in NOT_JUDGED]
    if pytest_status in (2, 3) or not judged:
        return EXIT_HARNESS
    if any(r.get("actual") == "error" for r in unexpected):
        return EXIT_HARNESS
    if unexpected:
        return EXIT_UNEXPECTED
    # pytest failed although every result is expected: something outside the cases broke.
    return EXIT_PASS if pytest_status == 0 else EXIT_HARNESS


if __name__ == "__main__":
    raise SystemExit(main())
