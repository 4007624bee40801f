"""Record one scenario: start the peers, put the relay between them, write JSON and pcap.

The layout under the output directory is ``v{version}/{client}-{server}/{scenario}``
with ``.json`` and ``.pcap``, where client and server are ``go`` or ``ref`` (smuxref),
and ``index.json`` lists every session present.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from smuxref import Cmd, aio
from smuxref import __version__ as SMUXREF_VERSION

from ..errors import ScenarioError
from .pcap import Endpoints, write_pcap
from .peers import Impl, Program, run_loadgen, start_client, start_server
from .relay import RecordingRelay
from .scenarios import Scenario
from .transcript import DIRECTIONS, Transcript, decode_direction, dumps_session, frame_json

__all__ = ["SESSION_SCHEMA", "Recording", "record", "session_document", "session_id", "write"]

SESSION_SCHEMA: Final = "schema/session.schema.json"
SHORT: Final[dict[Impl, str]] = {"go": "go", "smuxref": "ref"}
#: Seconds a whole scenario may take before the recording is abandoned.
SCENARIO_TIMEOUT: Final = 60.0


def session_id(version: int, pairing: tuple[Impl, Impl], scenario: str) -> str:
    return f"v{version}/{SHORT[pairing[0]]}-{SHORT[pairing[1]]}/{scenario}"


@dataclass(slots=True)
class Recording:
    """A finished recording and what produced it."""

    scenario: Scenario
    version: int
    pairing: tuple[Impl, Impl]
    client: dict[str, Any]
    server: dict[str, Any]
    transcript: Transcript

    @property
    def id(self) -> str:
        return session_id(self.version, self.pairing, self.scenario.name)


def _driver(role: str) -> dict[str, Any]:
    return {
        "impl": "smuxref",
        "tag": SMUXREF_VERSION,
        "program": f"smuxref_conformance.record scenario driver (smuxref.aio {role})",
    }


def _peer(program: Program, args: list[str]) -> dict[str, Any]:
    name = "smux-peer" if program.impl == "go" else "python -m smuxref.peer"
    return {"impl": program.impl, "tag": program.tag, "program": name, "args": args}


async def record(
    scenario: Scenario, version: int, pairing: tuple[Impl, Impl], programs: dict[Impl, Program]
) -> Recording:
    """Run ``scenario`` once between the ``pairing`` implementations and record it."""
    options = scenario.options
    if scenario.kind == "server":
        return await _record_server_driven(scenario, version, pairing, programs)
    server, addr = await start_server(programs[pairing[1]], version, options)
    relay = RecordingRelay(addr)
    try:
        relay_addr = await relay.start()
        if scenario.kind == "loadgen":
            args, _ = await run_loadgen(
                programs["go"], version, options, relay_addr, list(scenario.loadgen)
            )
            client = _peer(programs["go"], args)
        else:
            assert scenario.drive is not None
            session = await aio.connect(*relay_addr, options.config(version))
            try:
                async with asyncio.timeout(SCENARIO_TIMEOUT):
                    await scenario.drive(session)
            finally:
                session.close()
                await session.wait_closed()
            client = _driver("client")
        await relay.wait(15)
    finally:
        await server.stop()
        await relay.close()
    return Recording(
        scenario, version, pairing, client, _peer(server.program, server.args), relay.transcript
    )


async def _record_server_driven(
    scenario: Scenario, version: int, pairing: tuple[Impl, Impl], programs: dict[Impl, Program]
) -> Recording:
    """The driver is a smuxref server; the contract client peer dials it via the relay."""
    assert scenario.drive is not None
    drive = scenario.drive
    finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def handler(session: aio.Session) -> None:
        # The outcome goes to ``finished``, not up into aio.serve's task, where nobody
        # would retrieve it.
        try:
            async with asyncio.timeout(SCENARIO_TIMEOUT):
                await drive(session)
        except Exception as exc:
            if not finished.done():
                finished.set_exception(exc)
            return
        if not finished.done():
            finished.set_result(None)

    server = await aio.serve(handler, "127.0.0.1", 0, scenario.options.config(version))
    host, port = server.sockets[0].getsockname()[:2]
    relay = RecordingRelay((host, port))
    client = None
    try:
        relay_addr = await relay.start()
        client = await start_client(programs[pairing[0]], version, scenario.options, relay_addr)
        async with asyncio.timeout(SCENARIO_TIMEOUT):
            await finished
        await relay.wait(15)
        await client.wait(15)
    finally:
        if client is not None:
            await client.stop(exit_by_itself=5)
        server.close()
        await server.wait_closed()
        await relay.close()
    return Recording(
        scenario,
        version,
        pairing,
        _peer(client.program, client.args),
        _driver("server"),
        relay.transcript,
    )


def session_document(rec: Recording, pcap_name: str, ep: Endpoints) -> dict[str, Any]:
    """The session vector: who talked, the bytes per direction, and the decoded frames."""
    directions: dict[str, Any] = rec.transcript.to_json()
    summary: dict[str, Any] = {}
    for d in DIRECTIONS:
        frames, error = decode_direction(rec.transcript.chunks[d], rec.version)
        directions[d]["frames"] = [frame_json(f) for f in frames]
        directions[d]["error"] = None if error is None else type(error).__name__
        counts = {cmd.name: 0 for cmd in Cmd}
        for f in frames:
            counts[Cmd(f.frame.cmd).name] += 1
        summary[d] = {
            "bytes": len(rec.transcript.data(d)),
            "chunks": len(rec.transcript.chunks[d]),
            "frames": len(frames),
            "commands": counts,
        }
    return {
        "schema": SESSION_SCHEMA,
        "protocol": "smux",
        "id": rec.id,
        "scenario": rec.scenario.name,
        "description": rec.scenario.description,
        "driver": rec.scenario.kind,
        "version": rec.version,
        "options": rec.scenario.options.to_json(),
        "client": rec.client,
        "server": rec.server,
        "recorder": "python -m smuxref_conformance.record",
        "pcap": pcap_name,
        "tcp": {
            "client": f"{ep.client_ip}:{ep.client_port}",
            "server": f"{ep.server_ip}:{ep.server_port}",
        },
        "summary": summary,
        "directions": directions,
    }


def write(rec: Recording, out_dir: Path) -> Path:
    """Write ``rec`` as JSON and pcap under ``out_dir``; return the JSON path."""
    ep = Endpoints()
    base = out_dir / rec.id
    base.parent.mkdir(parents=True, exist_ok=True)
    pcap_path = base.with_suffix(".pcap")
    write_pcap(pcap_path, rec.transcript, ep)
    json_path = base.with_suffix(".json")
    json_path.write_text(dumps_session(session_document(rec, pcap_path.name, ep)))
    return json_path


def write_index(out_dir: Path) -> Path:
    """List every session file under ``out_dir`` in ``index.json``."""
    sessions = []
    for path in sorted(out_dir.glob("v*/*/*.json")):
        doc = json.loads(path.read_text())
        sessions.append(
            {
                "id": doc["id"],
                "json": str(path.relative_to(out_dir)),
                "pcap": str(path.with_suffix(".pcap").relative_to(out_dir)),
                "version": doc["version"],
                "scenario": doc["scenario"],
                "client": f"{doc['client']['impl']} {doc['client']['tag']}",
                "server": f"{doc['server']['impl']} {doc['server']['tag']}",
                "frames": doc["summary"]["c2s"]["frames"] + doc["summary"]["s2c"]["frames"],
            }
        )
    index = {
        "protocol": "smux",
        "header": [
            "Recorded smux sessions: JSON transcripts (bytes per direction with timing and"
            " segmentation, decoded frames) and synthesized pcaps.",
            "Re-record with: python -m smuxref_conformance.record --all",
        ],
        "numberOfSessions": len(sessions),
        "sessions": sessions,
    }
    path = out_dir / "index.json"
    path.write_text(json.dumps(index, indent=1) + "\n")
    return path


def report_failure(rec_id: str, exc: BaseException) -> None:
    kind = "scenario check failed" if isinstance(exc, ScenarioError) else type(exc).__name__
    sys.stderr.write(f"{rec_id}: {kind}: {exc}\n")
