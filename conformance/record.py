"""``python -m smuxref_conformance.record``: record session vectors, or promote a codec vector.

Record (the default command)::

    python -m smuxref_conformance.record --all      # every scenario, both versions, and frames.json
    python -m smuxref_conformance.record --scenario echo --version 2
    python -m smuxref_conformance.record --scenario open --pairing ref-ref --out /tmp/s

Each recording starts the peers on loopback, puts a recording relay between them (no
root needed), runs the scenario, and writes ``{out}/v{N}/{client}-{server}/{name}``
``.json`` and ``.pcap``, then refreshes ``{out}/index.json``.  With ``--all`` and the
default ``--out`` it also regenerates ``vectors/frames.json``
(``vectors/generate_frames.py``).  The Go peer comes from ``--go-binary``,
``$SMUX_GO_PEER``, a build of ``go-peer/`` (``go-peer/build.sh``, cached), or
``go-peer/bin/smux-peer-v1.5.57``.

Promote a failure the property-based tests found into a codec vector::

    python -m smuxref_conformance.record promote --hex 0102ffff03000000 --comment "..." \
        [--version 1]

It is appended to ``vectors/promoted.json`` with a new ``tcId`` and the expected
result the SPEC rules give (``smuxref_conformance.recording.codec_rules``).

Replay a recorded session against a live peer and compare (what the tests do)::

    python -m smuxref_conformance.record replay vectors/sessions/v1/ref-go/echo.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import runpy
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from smuxref_conformance.recording import recorder, replay, vector_file
from smuxref_conformance.recording.codec_rules import Receiver
from smuxref_conformance.recording.peers import (
    Impl,
    Program,
    find_go_peer,
    go_program,
    ref_program,
)
from smuxref_conformance.recording.scenarios import SCENARIOS, Scenario, by_name

ROOT: Final = Path(__file__).resolve().parents[1]
DEFAULT_OUT: Final = ROOT / "vectors" / "sessions"
PAIRINGS: Final[dict[str, tuple[Impl, Impl]]] = {
    "go-go": ("go", "go"),
    "go-ref": ("go", "smuxref"),
    "ref-go": ("smuxref", "go"),
    "ref-ref": ("smuxref", "smuxref"),
}


def _record_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m smuxref_conformance.record",
        description="Record smux sessions between contract peers (see the module docstring;"
        " subcommands: promote, replay).",
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every scenario and its pairings")
    which.add_argument("--scenario", action="append", metavar="NAME", help="repeatable")
    which.add_argument("--list", action="store_true", help="list the scenarios")
    p.add_argument("--version", type=int, choices=(1, 2), action="append", help="default: both")
    p.add_argument(
        "--pairing",
        choices=sorted(PAIRINGS),
        action="append",
        help="client-server implementations (default: the scenario's own)",
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--go-binary", type=Path)
    return p


def _jobs(args: argparse.Namespace) -> list[tuple[Scenario, int, tuple[Impl, Impl]]]:
    scenarios = list(SCENARIOS) if args.all else [by_name(n) for n in args.scenario]
    versions = args.version or [1, 2]
    jobs = []
    for version in versions:
        for scenario in scenarios:
            pairings = [PAIRINGS[p] for p in args.pairing] if args.pairing else scenario.pairings
            for pairing in pairings:
                if scenario.kind == "loadgen" and pairing[0] != "go":
                    continue  # loadgen is the Go client
                if scenario.kind == "server" and pairing[1] != "smuxref":
                    continue  # the driver is the smuxref server
                jobs.append((scenario, version, pairing))
    return jobs


async def _record_all(
    jobs: list[tuple[Scenario, int, tuple[Impl, Impl]]], programs: dict[Impl, Program], out: Path
) -> int:
    failures = 0
    for scenario, version, pairing in jobs:
        rec_id = recorder.session_id(version, pairing, scenario.name)
        try:
            rec = await recorder.record(scenario, version, pairing, programs)
        except Exception as exc:
            recorder.report_failure(rec_id, exc)
            failures += 1
            continue
        path = recorder.write(rec, out)
        reads = sum(len(chunks) for chunks in rec.transcript.chunks.values())
        print(f"{rec_id}: {path.relative_to(out)} ({reads} reads)")
    recorder.write_index(out)
    return failures


def main_record(argv: Sequence[str]) -> int:
    args = _record_parser().parse_args(argv)
    if args.list:
        for s in SCENARIOS:
            pairs = " ".join("-".join(recorder.SHORT[i] for i in p) for p in s.pairings)
            print(f"{s.name:12} {s.kind:8} {pairs:14} {s.description}")
        return 0
    jobs = _jobs(args)
    programs: dict[Impl, Program] = {"smuxref": ref_program()}
    if any("go" in pairing for _, _, pairing in jobs):
        binary = find_go_peer(args.go_binary)
        if binary is None:
            print("no Go peer: pass --go-binary or install Go to build go-peer/", file=sys.stderr)
            return 2
        programs["go"] = go_program(binary)
    failures = asyncio.run(_record_all(jobs, programs, args.out))
    print(f"{len(jobs) - failures} recorded, {failures} failed")
    if args.all and args.out.resolve() == DEFAULT_OUT.resolve():
        # Everything under vectors/: the codec vectors too (ids and Go verdicts kept).
        generator = runpy.run_path(str(ROOT / "vectors" / "generate_frames.py"), run_name="gen")
        failures += generator["main"]([])
    return 1 if failures else 0


def main_promote(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(
        prog="python -m smuxref_conformance.record promote",
        description="Append a byte string to vectors/promoted.json as a new codec vector.",
    )
    p.add_argument("--hex", required=True, help="the bytes the receiver read")
    p.add_argument("--comment", required=True, help="why the vector exists (the failure)")
    p.add_argument("--version", type=int, choices=(1, 2), default=1)
    p.add_argument("--role", choices=("server", "client"), default="server")
    p.add_argument("--max-frame-size", type=int, default=32768)
    p.add_argument("--file", type=Path, default=ROOT / "vectors" / "promoted.json")
    p.add_argument("--frames-file", type=Path, default=ROOT / "vectors" / "frames.json")
    args = p.parse_args(argv)
    try:
        data = bytes.fromhex(args.hex.replace(" ", ""))
        rx = Receiver.make(args.version, args.role, args.max_frame_size)
        test = vector_file.promote(data, args.comment, rx, args.file, args.frames_file)
    except ValueError as exc:
        print(f"promote: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(test, indent=1))
    return 0


def main_replay(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(
        prog="python -m smuxref_conformance.record replay",
        description="Replay one side of a recorded session to a live peer and compare.",
    )
    p.add_argument("session", type=Path, nargs="+")
    p.add_argument("--go-binary", type=Path)
    args = p.parse_args(argv)
    binary = find_go_peer(args.go_binary)
    programs: dict[Impl, Program] = {"smuxref": ref_program()}
    if binary is not None:
        programs["go"] = go_program(binary)
    return asyncio.run(_replay_all(args.session, programs))


async def _replay_all(paths: list[Path], programs: dict[Impl, Program]) -> int:
    failed = 0
    for path in paths:
        doc = json.loads(path.read_text())
        try:
            diff = await replay.replay_and_compare(doc, programs)
        except replay.NotReplayable as exc:
            print(f"{doc['id']}: skipped: {exc}")
            continue
        print(f"{doc['id']}: {'same frames' if not diff else 'DIFFERENT: ' + diff}")
        failed += bool(diff)
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "promote":
        return main_promote(argv[1:])
    if argv and argv[0] == "replay":
        return main_replay(argv[1:])
    return main_record(argv)


if __name__ == "__main__":
    sys.exit(main())
