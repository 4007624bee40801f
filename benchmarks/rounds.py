"""Transfers and latencies in rounds: each ratio from its two cases run back to back.

A machine's speed drifts while a run lasts (other jobs start and stop, the CPU clock
moves), so a ratio of two bests taken minutes apart can swing by a factor of two.
Here every ratio is a :class:`Pair`: in every round its two cases run one right after
the other (the order alternating from round to round, so a steady drift favours
neither), the ratio is taken within the round, and the figure is the median of the
rounds' ratios with their min-max.  Rates and latencies are the medians of every
sample of their case.

Latency is compared with raw asyncio TCP (a ``StreamReader`` echo): a Python
implementation cannot be faster than the event loop under it, and Go's own round trip
is 2-3 times shorter than asyncio's on the same machine.  Where uvloop is installed,
the same pair runs once more with both ends on uvloop.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks import interop
from benchmarks.report import MIB, RATE, RATIO, Figure, Options, Target
from benchmarks.throughput import (
    AioClient,
    GoLoadgen,
    RawStreams,
    RawWindowed,
    Servers,
    Smux,
    Transfer,
)
from smuxref import Config

__all__ = [
    "PLACEMENTS",
    "Case",
    "Pair",
    "Processes",
    "measure",
    "one_round",
    "pairs",
    "placement_cpus",
    "uvloop_missing",
]

#: Targets from the issues (bulk: issue 5; latency and codec: issue 16).
TARGET_VS_RAW = Target(">=", 0.70)
TARGET_REF_VS_GO = Target(">=", 0.50)
TARGET_INTEROP_VS_GO = Target(">=", 0.60)
TARGET_ECHO_VS_RAW = Target("<=", 1.5)


#: Where the processes of a pair run (``--placement``): every process on one CPU (the
#: default), the client side on one CPU and the servers on another, or wherever the OS
#: puts them.
PLACEMENTS = ("one-cpu", "two-cpus", "os")


def placement_cpus(placement: str) -> tuple[frozenset[int] | None, frozenset[int] | None]:
    """The CPUs of the client side (this process, the Go loadgen, the in-process rows)
    and of the server processes; None where the OS decides.

    Why one CPU by default: a round trip between two processes on two CPUs puts the
    waiting one's CPU to sleep and wakes it again each way.  On a virtual machine
    that wake-up goes through the hypervisor and costs tens of microseconds, more or
    less depending on what else runs on the host, which no guest can see: counted on
    the 2-core VM these figures come from, a raw asyncio echo halted each CPU about
    once per round trip on two CPUs and 0.00-0.04 times on one, and took 143-154 us
    against 62-76 us.  Left to the OS, a pair shares a CPU in one run and not in the
    next (it spreads them when the machine is idle), so the same ratio moved by a
    factor of two between runs.  On one CPU the figures measure the implementations'
    own costs, both ends included, as the in-process rows do.
    """
    if placement == "os":
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    client = frozenset(cpus[-1:])
    if placement == "one-cpu" or len(cpus) < 2:
        return client, client
    return client, frozenset(cpus[-2:-1])


@dataclass(frozen=True, slots=True)
class Case:
    key: str
    name: str
    unit: str  # "MiB/s" (higher is better) or "us" (a p50 round trip)
    run: Callable[[], Awaitable[float]]
    loop: str = "asyncio"


@dataclass(frozen=True, slots=True)
class Pair:
    numerator: Case
    denominator: Case
    target: Target | None = None

    @property
    def key(self) -> str:
        return f"{self.numerator.key}/{self.denominator.key}"

    @property
    def name(self) -> str:
        return f"{self.numerator.name} / {self.denominator.name}"


def _transfer(case: Transfer, size: int) -> Case:
    async def run() -> float:
        return size / (await case.once()).wall / MIB

    return Case(case.key, case.name, "MiB/s", run)


def _latency(
    key: str, name: str, run_once: Callable[[], Awaitable[list[float]]], loop: str
) -> Case:
    async def run() -> float:
        return interop.percentile(await run_once(), 0.5)

    return Case(key, name, "us", run, loop)


class Processes:
    """The server processes of the cross-process cases, started once per run, each on
    ``cpus`` (None: wherever the OS puts it)."""

    def __init__(self, go: Path | None, uvloop: bool, cpus: frozenset[int] | None = None) -> None:
        self.servers = Servers(go, cpus)
        self.cpus = cpus
        self.go = go
        self.uvloop = uvloop
        self._echo: dict[str, interop.ServerProcess] = {}
        self._uv_peer: interop.ServerProcess | None = None

    def echo(self, loop: str) -> interop.ServerProcess:
        if loop not in self._echo:
            self._echo[loop] = interop.ServerProcess(interop.echo_server_argv(loop), self.cpus)
        return self._echo[loop]

    def uv_peer(self) -> interop.ServerProcess:
        if self._uv_peer is None:
            argv = interop.peer_argv("ref", 1, None, "--no-keepalive")
            self._uv_peer = interop.ServerProcess(interop.uvloop_peer_argv(argv), self.cpus)
        return self._uv_peer

    def close(self) -> None:
        self.servers.close()
        for proc in [*self._echo.values(), self._uv_peer]:
            if proc is not None:
                proc.close()


def pairs(opts: Options, procs: Processes | None) -> list[Pair]:
    payload = os.urandom(opts.write_size)
    size = opts.size
    raw = _transfer(RawStreams("raw_tcp", "raw asyncio TCP", opts, payload), size)

    def smux(version: int) -> Case:
        name = f"smuxref v{version}, 1 stream, one process"
        return _transfer(
            Smux(f"smux_v{version}", name, opts, payload, version=version, streams=1), size
        )

    window = RawWindowed(
        "raw_tcp_window", "raw asyncio TCP, v2 window", opts, payload, Config().max_stream_buffer
    )
    out = [
        Pair(smux(1), raw, TARGET_VS_RAW),
        Pair(smux(2), raw, TARGET_VS_RAW),
        Pair(smux(2), _transfer(window, size)),
    ]
    if procs is None:
        return out
    servers = procs.servers
    count, echo_size = opts.echo_count, opts.echo_size

    def raw_echo(loop: str) -> Case:
        async def once() -> list[float]:
            echo = procs.echo(loop)
            return await interop.raw_echo_latency(echo.host, echo.port, 1, count, echo_size)

        label = "" if loop == "asyncio" else f", {loop}"
        return _latency(f"lat_raw_{loop}", f"echo raw asyncio TCP{label}", once, loop)

    def ref_echo(impl: str, version: int, loop: str = "asyncio") -> Case:
        async def once() -> list[float]:
            server = procs.uv_peer() if loop == "uvloop" else servers.get(impl, version)
            return await interop.aio_echo_latency(
                server.host, server.port, version, 1, count=count, size=echo_size
            )

        label = "" if loop == "asyncio" else f", {loop}"
        other = "smuxref" if impl == "ref" else "Go"
        key = f"lat_ref_{impl}_v{version}_{loop}"
        return _latency(key, f"echo smuxref->{other} v{version}{label}", once, loop)

    for version in (1, 2):
        out.append(Pair(ref_echo("ref", version), raw_echo("asyncio"), TARGET_ECHO_VS_RAW))
    if procs.uvloop:
        out.append(Pair(ref_echo("ref", 1, "uvloop"), raw_echo("uvloop"), TARGET_ECHO_VS_RAW))
    if procs.go is None:
        return out
    for version in (1, 2):
        at: dict[str, Any] = {"servers": servers, "version": version, "streams": 1}
        tag = f"v{version}, 1 stream"
        go_go = _transfer(
            GoLoadgen(f"go_go_v{version}", f"Go<->Go {tag}", opts, payload, impl="go", **at), size
        )
        numerators = [
            (
                AioClient(
                    f"ref_ref_v{version}",
                    f"smuxref<-smuxref {tag}, 2 processes",
                    opts,
                    payload,
                    impl="ref",
                    **at,
                ),
                TARGET_REF_VS_GO,
            ),
            (
                AioClient(
                    f"ref_go_down_v{version}",
                    f"smuxref<-Go SOURCE {tag}",
                    opts,
                    payload,
                    impl="go",
                    **at,
                ),
                TARGET_INTEROP_VS_GO,
            ),
            (
                AioClient(
                    f"ref_go_up_v{version}",
                    f"smuxref->Go SINK {tag}",
                    opts,
                    payload,
                    impl="go",
                    direction="upload",
                    **at,
                ),
                TARGET_INTEROP_VS_GO,
            ),
            (
                GoLoadgen(
                    f"go_ref_v{version}",
                    f"Go<-smuxref SOURCE {tag}",
                    opts,
                    payload,
                    impl="ref",
                    **at,
                ),
                TARGET_INTEROP_VS_GO,
            ),
        ]
        out += [Pair(_transfer(case, size), go_go, target) for case, target in numerators]

    async def go_echo() -> list[float]:
        assert procs.go is not None
        res = await interop.loadgen(
            procs.go,
            servers.get("go", 1).address,
            1,
            "--mode",
            "echo-latency",
            "--size",
            str(echo_size),
            "--count",
            str(count),
            "--streams",
            "1",
        )
        return [float(res["p50_us"])]

    raw = raw_echo("asyncio")
    out.append(Pair(ref_echo("go", 1), raw))
    out.append(Pair(_latency("lat_go_go_v1", "echo Go<->Go v1", go_echo, "asyncio"), raw))
    return out


async def _one_round(
    todo: list[Pair], flip: bool, samples: dict[str, list[float]], ratios: dict[str, list[float]]
) -> None:
    for pair in todo:
        first, second = (pair.numerator, pair.denominator)
        if not flip:
            first, second = second, first
        a = await first.run()
        b = await second.run()
        num, den = (a, b) if first is pair.numerator else (b, a)
        samples[pair.numerator.key].append(num)
        samples[pair.denominator.key].append(den)
        ratios[pair.key].append(num / den)


def one_round(
    opts: Options,
    procs: Processes | None,
    number: int,
    samples: dict[str, list[float]],
    ratios: dict[str, list[float]],
) -> None:
    """Run every pair once (round ``number``: odd rounds run each pair's cases in the
    other order), adding to ``samples`` and ``ratios``."""
    todo = pairs(opts, procs)
    loops = sorted({pair.numerator.loop for pair in todo})
    factories: dict[str, Callable[[], asyncio.AbstractEventLoop] | None] = {"asyncio": None}
    if "uvloop" in loops:
        import uvloop  # noqa: PLC0415 - optional (extra "bench")

        factories["uvloop"] = uvloop.new_event_loop
    for loop in loops:
        with asyncio.Runner(loop_factory=factories[loop]) as runner:
            mine = [pair for pair in todo if pair.numerator.loop == loop]
            runner.run(_one_round(mine, number % 2 == 1, samples, ratios))


def measure(
    opts: Options,
    procs: Processes | None,
    progress: Callable[[str], None],
    cpus: frozenset[int] | None = None,
) -> list[Figure]:
    """Run every pair ``opts.rounds`` times; the rows, then the ratios.

    Each round runs in a fresh worker process on ``cpus`` (the client side), which
    starts the servers of ``procs`` afresh: where a process's memory lands (address
    space layout randomization) moves a 1 KiB round trip between 18 and 26 us for
    that process's whole life, so one process per run would give each run one draw
    and runs would differ by it.  With a process per round, every run samples many
    layouts, as pyperf's worker processes do.  ``procs`` itself starts nothing here.
    """
    samples: dict[str, list[float]] = defaultdict(list)
    ratios: dict[str, list[float]] = defaultdict(list)
    spec: dict[str, Any] = {
        "options": asdict(opts),
        "interop": procs is not None,
        "go": None if procs is None or procs.go is None else str(procs.go),
        "uvloop": procs is not None and procs.uvloop,
        "server_cpus": None if procs is None or procs.cpus is None else sorted(procs.cpus),
    }
    for number in range(opts.rounds):
        progress(f"round {number + 1} of {opts.rounds}")
        argv = [sys.executable, "-m", "benchmarks.rounds", "worker"]
        with interop.on_cpus(cpus):
            proc = subprocess.run(
                [*argv, json.dumps({**spec, "number": number})],
                cwd=interop.ROOT,
                stdout=subprocess.PIPE,
                text=True,
                timeout=1800,
                check=False,
            )
        if proc.returncode != 0:
            raise RuntimeError(f"round {number + 1}: the worker exited {proc.returncode}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        for key, values in result["samples"].items():
            samples[key] += values
        for key, values in result["ratios"].items():
            ratios[key] += values
    todo = pairs(opts, procs)
    cases: dict[str, Case] = {}
    for pair in todo:
        cases.setdefault(pair.denominator.key, pair.denominator)
        cases.setdefault(pair.numerator.key, pair.numerator)
    rows = [
        Figure(key, case.name, RATE, case.unit, tuple(samples[key])) for key, case in cases.items()
    ]
    return rows + [
        Figure(pair.key, pair.name, RATIO, "ratio", tuple(ratios[pair.key]), pair.target)
        for pair in todo
    ]


def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    """One round in this process (``measure`` runs it in a fresh one)."""
    opts = Options(**spec["options"])
    if opts.pin_malloc:
        from benchmarks.run import pin_malloc  # noqa: PLC0415 - run imports this module

        pin_malloc()
    procs = None
    if spec["interop"]:
        go = None if spec["go"] is None else Path(spec["go"])
        cpus = None if spec["server_cpus"] is None else frozenset(spec["server_cpus"])
        procs = Processes(go, spec["uvloop"], cpus)
    samples: dict[str, list[float]] = defaultdict(list)
    ratios: dict[str, list[float]] = defaultdict(list)
    try:
        one_round(opts, procs, spec["number"], samples, ratios)
    finally:
        if procs is not None:
            procs.close()
    return {"samples": samples, "ratios": ratios}


def uvloop_missing() -> str | None:
    try:
        import uvloop  # noqa: F401, PLC0415
    except ImportError:
        return "uvloop rows: uvloop is not installed (pip install -e '.[bench]')"
    return None


if __name__ == "__main__":
    if sys.argv[1:2] != ["worker"] or len(sys.argv) != 3:
        print("usage: python -m benchmarks.rounds worker SPEC (run by benchmarks.run)")
        sys.exit(2)
    print(json.dumps(_worker(json.loads(sys.argv[2]))))
