"""Sample the Python processes of a smuxref benchmark run with py-spy; write text summaries.

Run from the repository root (py-spy on PATH: ``pip install -e '.[bench]'``; it attaches
with ptrace, so it needs the permission to trace processes of the same user)::

    python -m benchmarks.profile --case 2proc-v2            # one case, summary on stdout
    python -m benchmarks.profile --case all --out benchmarks/profiles

Cases (all on loopback; the peer is ``python -m smuxref.peer --role server --no-keepalive``):

* ``2proc-v1`` / ``2proc-v2``: a smuxref aio client downloads ``SOURCE`` on one stream,
  the "smuxref<-smuxref 2 proc" rows of ``benchmarks/run.py``;
* ``echo-v1`` / ``echo-v2``: 1 KiB ``ECHO`` round trips on one stream, one after the other;
* ``goload-v1`` / ``goload-v2``: the Go loadgen downloads ``SOURCE`` from the smuxref
  peer (the "Go<-smuxref SOURCE" rows); only the peer is sampled;
* ``inproc-v1`` / ``inproc-v2``: both ends in one event loop, one stream (the
  "smuxref vN, 1 stream" rows that are compared with raw asyncio TCP); no peer process.

Both Python processes import and warm up first; py-spy attaches to them (``--idle``, so
time blocked in ``epoll_wait`` is sampled too) and only then does the measured run start.
The summary per process gives its CPU seconds against the wall time (from /proc), where
its samples are, grouped (waiting in epoll, socket syscalls inside asyncio's transport,
the rest of the asyncio loop, smuxref's engine and codec, smuxref.aio, the application),
and the top functions by own and by cumulative samples.  Sampling pauses the process
briefly (about 1-5 % at 1000 Hz): take speeds from ``benchmarks.run``, shares from here.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import interop  # noqa: E402

MIB = 1 << 20
#: case -> (workload, protocol version)
CASES = {
    "2proc-v1": ("download", 1),
    "2proc-v2": ("download", 2),
    "echo-v1": ("echo", 1),
    "echo-v2": ("echo", 2),
    "goload-v1": ("loadgen", 1),
    "goload-v2": ("loadgen", 2),
    "inproc-v1": ("inproc", 1),
    "inproc-v2": ("inproc", 2),
}

#: Own-sample groups, first match wins: (label, leaf-frame pattern).
GROUPS = (
    ("blocked in epoll (waiting for the other side)", re.compile(r"^EpollSelector\.select ")),
    (
        "asyncio socket transport (send/recv syscalls)",
        re.compile(r"\(asyncio/selector_events\.py"),
    ),
    ("asyncio loop, tasks and futures", re.compile(r"\(asyncio/")),
    (
        "smuxref engine, codec, events",
        re.compile(r"\(smuxref/(engine|_decoder|_frame|_state|events)\.py|\(<string>\)"),
    ),
    ("smuxref.aio (session, stream, link)", re.compile(r"\(smuxref/aio/")),
    ("application (peer commands, benchmark client)", re.compile(r"\((smuxref/peer|benchmarks)/")),
)
_LINE = re.compile(r":\d+\)$")


# ------------------------------------------------------------------ summaries


@dataclass
class Profile:
    """Collapsed py-spy stacks of one process, reduced to what the summary prints."""

    samples: int
    own: collections.Counter[str]
    cum: collections.Counter[str]


def _short(frame: str) -> str:
    """``func (path:line)`` -> ``func (path)`` with the checkout and stdlib prefixes cut."""
    frame = _LINE.sub(")", frame)
    frame = frame.replace(str(ROOT) + "/", "")
    return re.sub(r"\(/\S*?/lib/python3\.\d+/", "(", frame)


def load_raw(path: Path) -> Profile:
    own: collections.Counter[str] = collections.Counter()
    cum: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_short(f) for f in stack.split(";")]
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            cum[frame] += n
    return Profile(total, own, cum)


def summarize(title: str, prof: Profile, cpu: float, wall: float, top: int) -> str:
    if prof.samples == 0:
        return f"== {title}: no samples\n"
    out = [
        f"== {title}",
        f"CPU {cpu:.3f} s over {wall:.3f} s wall ({cpu / wall:.0%} of one core); "
        f"{prof.samples} samples",
        "",
        "own samples by group:",
    ]
    grouped: collections.Counter[str] = collections.Counter()
    for frame, n in prof.own.items():
        label = next((name for name, rx in GROUPS if rx.search(frame)), "other")
        grouped[label] += n
    for label, n in grouped.most_common():
        out.append(f"  {n / prof.samples:6.1%}  {label}")
    out += ["", f"top {top} by own samples:"]
    out += [f"  {n / prof.samples:6.1%}  {f}" for f, n in prof.own.most_common(top)]
    out += ["", f"top {top} by cumulative samples (frames above the event loop):"]
    loop_level = {"BaseEventLoop._run_once (asyncio/base_events.py)"}
    below = {f for f, n in prof.cum.items() if n >= prof.cum.get(next(iter(loop_level)), 0)}
    shown = [(f, n) for f, n in prof.cum.most_common() if f not in below]
    out += [f"  {n / prof.samples:6.1%}  {f}" for f, n in shown[:top]]
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------ processes


class Spy:
    """py-spy attached to a live process until ``stop``."""

    def __init__(self, pid: int, path: Path, rate: int) -> None:
        self.path = path
        argv = ["py-spy", "record", "--pid", str(pid), "--idle", "--nonblocking"]
        argv += ["--rate", str(rate), "--format", "raw", "--output", str(path)]
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "Sampling" not in line:
            raise RuntimeError(f"py-spy did not attach to {pid}: {line.strip()}")

    def stop(self) -> Profile:
        self.proc.send_signal(signal.SIGINT)
        self.proc.communicate(timeout=60)
        return load_raw(self.path)


def client_argv(spec: tuple[str, int, str, int, int, int]) -> list[str]:
    """The client process for ``(workload, version, host, port, size, count)``."""
    return [sys.executable, "-m", "benchmarks.profile", "--client", ",".join(map(str, spec))]


async def _client_run(workload: str, version: int, host: str, port: int, n: int) -> None:
    if workload == "download":
        await interop.aio_download(host, port, version, 1, n)
    elif workload == "inproc":
        from benchmarks import run, throughput  # noqa: PLC0415 - only this workload needs them

        opts, _ = run.parse_args(["--no-interop", "--size", str(n / MIB)])
        payload = os.urandom(opts.write_size)
        await throughput.Smux("inproc", "inproc", opts, payload, version=version, streams=1).once()
    else:
        await interop.aio_echo_latency(host, port, version, 1, count=n, size=1024)


def client_main(spec: str) -> int:
    """The sampled client process: warm up, say READY, run on GO, report, wait for EXIT."""
    from benchmarks.run import pin_malloc  # noqa: PLC0415 - the client process only

    pin_malloc()  # as benchmarks.run does for its own process, so the shares match its rows
    workload, v, host, p, s, c = spec.split(",")
    version, port, size, count = int(v), int(p), int(s), int(c)
    n = count if workload == "echo" else size
    asyncio.run(_client_run(workload, version, host, port, min(n, 4 * MIB)))  # warm-up
    print("READY", flush=True)
    sys.stdin.readline()
    cpu0, t0 = time.process_time(), time.perf_counter()
    asyncio.run(_client_run(workload, version, host, port, n))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    print(json.dumps({"wall": wall, "cpu": cpu}), flush=True)
    sys.stdin.readline()
    return 0


def run_case(case: str, args: argparse.Namespace, go: Path | None) -> str:
    workload, version = CASES[case]
    size = int(args.size * MIB)
    # The in-process case runs both ends in the client: no peer process to start.
    server = (
        None
        if workload == "inproc"
        else interop.ServerProcess(interop.peer_argv("ref", version, None, "--no-keepalive"))
    )
    peer_cpu = 0.0
    tmp = Path(args.tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    client: subprocess.Popen[str] | None = None
    try:
        spies: dict[str, Spy] = {}
        if workload == "loadgen":
            assert server is not None
            spies["peer"] = Spy(server.proc.pid, tmp / f"{case}-peer.txt", args.rate)
            if go is None:
                raise RuntimeError("the goload cases need the Go toolchain (go-peer/build.sh)")
            spy_cpu0 = server.cpu()
            loadgen_args = ("--mode", "bulk", "--direction", "download", "--streams", "1")
            t0 = time.perf_counter()
            result = asyncio.run(
                interop.loadgen(go, server.address, version, *loadgen_args, "--bytes", str(size))
            )
            wall = time.perf_counter() - t0
            peer_cpu = server.cpu() - spy_cpu0
            client_note = f"Go loadgen: {size / MIB / float(result['seconds']):.0f} MiB/s"
            client_cpu = float(result["cpu"])
        else:
            host, port = (server.host, server.port) if server is not None else ("-", 0)
            argv = client_argv((workload, version, host, port, size, args.count))
            client = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT
            )
            assert client.stdin is not None
            assert client.stdout is not None
            if client.stdout.readline().strip() != "READY":
                raise RuntimeError("the client did not warm up")
            # Attached only now, so neither profile holds start-up or the warm-up run.
            if server is not None:
                spies["peer"] = Spy(server.proc.pid, tmp / f"{case}-peer.txt", args.rate)
                spy_cpu0 = server.cpu()
            spies["client"] = Spy(client.pid, tmp / f"{case}-client.txt", args.rate)
            client.stdin.write("GO\n")
            client.stdin.flush()
            result = json.loads(client.stdout.readline())
            if server is not None:
                peer_cpu = server.cpu() - spy_cpu0
            wall, client_cpu = float(result["wall"]), float(result["cpu"])
            if workload in ("download", "inproc"):
                client_note = f"{size / MIB / wall:.0f} MiB/s under the profiler"
            else:
                client_note = f"{args.count} round trips, {wall / args.count * 1e6:.0f} us each"
        profiles = {name: spy.stop() for name, spy in spies.items()}
    finally:
        if client is not None:
            client.communicate("EXIT\n", timeout=60)
        if server is not None:
            server.close()
    amount = f"{args.size:g} MiB" if workload != "echo" else f"{args.count} x 1 KiB"
    head = [
        f"# benchmarks.profile --case {case}: {workload}, protocol v{version}, {amount}",
        f"# {dt.date.today().isoformat()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}, "
        f"py-spy --idle --rate {args.rate}",
        f"# wall {wall:.3f} s ({client_note}); CPU: "
        + (f"peer {peer_cpu:.3f} s, " if server is not None else "")
        + f"client {client_cpu:.3f} s",
        "",
    ]
    labels = {
        "peer": "python -m smuxref.peer",
        "client": "aio client and server, one loop" if workload == "inproc" else "aio client",
    }
    body = [
        summarize(
            f"{name} ({labels[name]})",
            prof,
            peer_cpu if name == "peer" else client_cpu,
            wall,
            args.top,
        )
        for name, prof in profiles.items()
    ]
    return "\n".join(head) + "\n".join(body)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--case", action="append", choices=[*CASES, "all"], help="repeatable")
    parser.add_argument("--size", type=float, default=256, help="MiB per transfer (256)")
    parser.add_argument("--count", type=int, default=5000, help="ECHO round trips (5000)")
    parser.add_argument("--rate", type=int, default=1000, help="samples per second (1000)")
    parser.add_argument("--top", type=int, default=15, help="functions per list (15)")
    parser.add_argument("--out", type=Path, help="directory for CASE.txt (default: stdout)")
    parser.add_argument("--tmp", default="/tmp/smuxref-profile", help="raw py-spy output")
    parser.add_argument("--client", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        return client_main(args.client)
    if shutil.which("py-spy") is None:
        parser.error("py-spy is not on PATH (pip install py-spy)")
    cases = list(CASES) if not args.case or "all" in args.case else args.case
    go = interop.go_binary()[0] if any(CASES[c][0] == "loadgen" for c in cases) else None
    for case in cases:
        text = run_case(case, args, go)
        if args.out is None:
            print(text)
        else:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / f"{case}.txt").write_text(text)
            print(f"wrote {args.out / f'{case}.txt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
