"""Run one implementation's client against another's server, through the recording relay.

The server peer is started as for a conformance case; the client peer is started with
``--run`` exchanges (CONTRACT.md rule 22) toward a :class:`RecordingRelay` in front of the
server.  When the client has exited (or its deadline passed and it was killed), the
transcript is judged frame by frame (:mod:`.judge`) and exchange by exchange
(:mod:`.exchanges`); the first finding in wire order names the side at fault.  The
transcript (JSON, and a text listing of every frame) and a pcap are written for the
report to link.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..deadlines import Deadline, scaled
from ..errors import HarnessError, PeerUnsupported
from ..peers.cmdline import peer_argv
from ..peers.pool import PeerPool
from ..peers.specs import PeerSpec
from ..recording.pcap import write_pcap
from ..recording.relay import RecordingRelay
from ..recording.transcript import DIRECTIONS, Direction, Transcript
from .exchanges import DEFAULT_EXCHANGES, check_exchanges
from .judge import Finding, WireFrame, describe, judge_frames, side_of

__all__ = ["PairResult", "run_pair"]

Verdict = Literal["pass", "fail", "unsupported", "error"]
#: Time for the client's exchanges, before the timeout scale.
EXCHANGE_TIME = 20.0
#: A side silent this long lets the other close by keepalive timeout (SPEC.md 7.2; the
#: peers run with their defaults, 30 s in Go, so anything near it counts).
SILENCE = 25.0


@dataclass
class PairResult:
    """The outcome of one (client, server, version) run; JSON-ready through :meth:`to_json`."""

    client: str
    server: str
    version: int
    verdict: Verdict
    summary: str
    at_fault: str | None = None
    findings: list[Finding] = field(default_factory=list)
    exchanges_ok: int = 0
    exchanges: int = 0
    seconds: float = 0.0
    transcript: str = ""  #: file name of the frame listing, relative to the output dir
    pcap: str = ""
    client_stdout: str = ""
    stderr: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.client}__{self.server}__v{self.version}".replace("/", "_").replace(":", "_")

    def to_json(self) -> dict[str, Any]:
        return {
            "client": self.client,
            "server": self.server,
            "version": self.version,
            "verdict": self.verdict,
            "summary": self.summary,
            "at_fault": self.at_fault,
            "exchanges_ok": self.exchanges_ok,
            "exchanges": self.exchanges,
            "seconds": round(self.seconds, 3),
            "transcript": self.transcript,
            "pcap": self.pcap,
            "findings": [
                {
                    "side": f.side,
                    "section": f.section,
                    "message": f.message,
                    "repeats": f.repeats,
                    "frames": [describe(wf) for wf in f.frames],
                }
                for f in self.findings
            ],
        }


class _Loop:
    """An event loop on a thread of its own, for the asyncio relay."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float | None = None) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def _tail(data: bytes, lines: int = 30) -> str:
    return "\n".join(data.decode("utf-8", "replace").rstrip().splitlines()[-lines:])


def run_pair(
    pool: PeerPool,
    client: PeerSpec,
    server: PeerSpec,
    version: int,
    out_dir: Path,
    *,
    exchanges: tuple[str, ...] = DEFAULT_EXCHANGES,
) -> PairResult:
    """Run the pair once and judge it; never raises for what a peer does."""
    started = time.monotonic()
    result = PairResult(client.id, server.id, version, "error", "", exchanges=len(exchanges))
    try:
        handle = pool.server(server, version, {}, fresh=True)
    except PeerUnsupported as exc:
        result.verdict, result.summary = "unsupported", f"server: {exc}".splitlines()[0]
        return result
    except HarnessError as exc:
        result.summary = f"server did not start: {exc}".splitlines()[0]
        return result
    loop = _Loop()
    relay = RecordingRelay(handle.address)
    try:
        host, port = loop.run(relay.start())
        argv = peer_argv("client", f"{host}:{port}", {"version": version})
        for spec in exchanges:
            argv += ["--run", spec]
        try:
            peer = pool.launcher(client).start("client", argv)
        except (HarnessError, FileNotFoundError) as exc:
            result.summary = f"client did not start: {exc}".splitlines()[0]
            return result
        try:
            code = peer.wait_exit(Deadline(scaled(EXCHANGE_TIME)))
            if code is None:
                peer.kill()
            # The exit can come before the reader threads have drained the pipes.
            peer.capture.wait_ended(Deadline(scaled(5.0)))
            result.client_stdout = peer.capture.stdout().decode("utf-8", "replace")
            result.stderr["client"] = _tail(peer.capture.stderr())
        finally:
            peer.kill()
            peer.release()
        if code == 127:
            result.verdict = "unsupported"
            result.summary = "client: exit 127 (" + _tail(peer.capture.stderr(), 1) + ")"
            return result
        with contextlib.suppress(TimeoutError):
            loop.run(relay.wait(scaled(5.0)))
        loop.run(relay.close())
        _judge(result, relay.transcript, version, list(exchanges), code)
        _write(result, relay.transcript, out_dir)
    finally:
        with contextlib.suppress(Exception):
            loop.run(relay.close(), timeout=5)
        loop.close()
        if handle.peer is not None:
            result.stderr["server"] = _tail(handle.peer.capture.stderr())
        try:
            pool.stop(handle)
        except HarnessError as exc:
            result.stderr["server-stop"] = str(exc)
        result.seconds = time.monotonic() - started
    return result


def _judge(
    result: PairResult, transcript: Transcript, version: int, specs: list[str], code: int | None
) -> None:
    findings, frames = judge_frames(transcript, version)
    lines = result.client_stdout.splitlines()
    app_findings, ok = check_exchanges(frames, specs, lines[1:], version)
    findings += app_findings
    result.exchanges_ok = ok
    done = code == 0 and lines[-1:] == ["DONE"]
    clean = done and not any(" ERROR " in ln for ln in lines)
    if ok < len(specs):
        # A client whose exchanges all ended and that then printed DONE closed its
        # session as rule 22 says; one that saw errors may have ended the session itself;
        # one the suite killed at its deadline did not close anything itself.
        closers: tuple[Direction, ...] = ("s2c",) if clean or code is None else DIRECTIONS
        findings += _early_ends(transcript, frames, closers)
    if code is None:
        findings.append(
            Finding(
                "client",
                "rule 22",
                f"did not finish its exchanges within {scaled(EXCHANGE_TIME):.0f} s (killed)",
                (),
                1 << 31,
            )
        )
    elif not done:
        findings.append(
            Finding(
                "client",
                "rule 22",
                f"exited with status {code}; stdout ended {lines[-1:]!r}, not 'DONE'",
                (),
                1 << 31,
            )
        )
    findings.sort(key=lambda f: f.order)
    result.findings = findings
    if not findings:
        result.verdict = "pass"
        result.summary = f"{ok}/{len(specs)} exchanges, SHA-256 checked; no frame broke SPEC.md"
        return
    first = findings[0]
    result.verdict = "fail"
    result.at_fault = first.side
    impl = result.client if first.side == "client" else result.server
    result.summary = f"{first.side} ({impl}) at fault: SPEC {first.section}: {first.message}"


def _early_ends(
    transcript: Transcript,
    frames: dict[Direction, list[WireFrame]],
    directions: tuple[Direction, ...],
) -> list[Finding]:
    """A side that closed the connection before the exchanges were done: what it last got."""
    out = []
    for d in directions:
        end = transcript.ends.get(d)
        other: Direction = "s2c" if d == "c2s" else "c2s"
        other_end = transcript.ends.get(other)
        if end is None or (other_end is not None and other_end.t < end.t):
            continue
        chunks = transcript.chunks[d]
        # After frame-level findings (a cause it may have had), before exchange findings.
        order = (1 << 29) + (chunks[-1].index if chunks else 0)
        before = [wf for wf in frames[other] if wf.t <= end.t]
        last_heard = before[-1].t if before else 0.0
        if end.t - last_heard >= SILENCE:
            out.append(
                Finding(
                    side_of(other),
                    "7.1",
                    f"sent nothing at all (not even NOP) for {end.t - last_heard:.1f} s, so the "
                    f"{side_of(d)} ended the session by keepalive timeout at {end.t:.1f} s; "
                    "shown: the last frames it sent",
                    tuple(before[-3:]),
                    order,
                )
            )
            continue
        largest = max(before, key=lambda wf: len(wf.frame.data), default=None)
        received = ([largest] if largest is not None else []) + [
            wf for wf in before[-2:] if wf is not largest
        ]
        out.append(
            Finding(
                side_of(d),
                "11",
                f"closed the connection (TCP {end.kind} at {end.t:.3f} s) before the exchanges "
                "were done; shown: the largest frame it had received, and the last two",
                tuple(received),
                order,
            )
        )
    return out


def _write(result: PairResult, transcript: Transcript, out_dir: Path) -> None:
    pairs = out_dir / "pairs"
    pairs.mkdir(parents=True, exist_ok=True)
    frames = judge_frames(transcript, result.version)[1]
    merged = sorted((wf for fs in frames.values() for wf in fs), key=lambda w: (w.first, w.offset))
    listing = [
        f"# {result.client} (client) -> relay -> {result.server} (server), "
        f"protocol {result.version}",
        f"# verdict: {result.verdict}: {result.summary}",
        "",
        *[
            f"!! {f.side} SPEC {f.section}: {f.message}"
            + (f" (and {f.repeats} more like it)" if f.repeats else "")
            for f in result.findings
        ],
        "",
        "#     time  read  dir ver cmd    stream    len",
        *[describe(wf) for wf in merged],
        "",
        "# client stdout:",
        *["  " + ln for ln in result.client_stdout.splitlines()],
    ]
    for who, text in result.stderr.items():
        listing += ["", f"# {who} stderr (tail):", *["  " + ln for ln in text.splitlines()]]
    (pairs / f"{result.name}.txt").write_text("\n".join(listing) + "\n")
    (pairs / f"{result.name}.json").write_text(
        json.dumps(
            {
                **result.to_json(),
                "client_stdout": result.client_stdout,
                "stderr": result.stderr,
                "directions": transcript.to_json(),
            }
        )
        + "\n"
    )
    write_pcap(pairs / f"{result.name}.pcap", transcript)
    result.transcript = f"pairs/{result.name}.txt"
    result.pcap = f"pairs/{result.name}.pcap"
