"""The soak (benchmarks/soak.py), scaled down for CI: 32 MiB over 100 concurrent streams
of one session, smuxref.aio against the reference peer and against the Go peer
(xtaci/smux v1.5.57, a native go-peer build), protocols 1 and 2; nothing lost, nothing
duplicated, nothing crossed between streams.  The full run is one command::

    python -m benchmarks.soak --total 1GiB --streams 1000 --peer go --version 2

Two more tests keep the tool honest: its command line prints the figures and exits 0,
and a peer that mixes up streams (the reference peer's ``--bug psh-current-stream``)
or garbles frames (``--bug len-big-endian``) makes it report bytes lost or streams with
wrong content.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from reliability_support import ROOT, no_fd_leak, report

from benchmarks.soak import ContractServer, go_binary, soak
from smuxref_conformance.errors import HarnessError

if TYPE_CHECKING:
    from conftest import Deadline

MiB = 1 << 20
TOTAL = 32 * MiB
STREAMS = 100


@pytest.fixture(scope="session")
def go_peer() -> Path:
    """The go-peer binary (built once and cached); skip where it cannot be built."""
    try:
        return go_binary()
    except HarnessError as exc:
        pytest.skip(f"no go-peer: {exc}")


@pytest.mark.parametrize(
    ("peer", "version"),
    [("ref", 1), ("ref", 2), ("go", 1), ("go", 2)],
    ids=["ref-v1", "ref-v2", "go-v1", "go-v2"],
)
async def test_soak_scaled_down(
    peer: str, version: int, deadline: Deadline, request: pytest.FixtureRequest
) -> None:
    if peer == "go":
        request.getfixturevalue("go_peer")
    with no_fd_leak():
        server = await ContractServer.start(peer, version, startup=deadline.scaled(30))
        try:
            result = await soak(
                server.host,
                server.port,
                version=version,
                total=TOTAL,
                streams=STREAMS,
                seed=version,
                limit=deadline.scaled(120),
                peer=peer,
            )
        finally:
            code = await server.stop(grace=deadline.scaled(5))
    assert result.passed, "\n".join(result.errors[:10])
    assert (result.lost, result.duplicated, result.wrong_content) == (0, 0, 0)
    assert result.volume == TOTAL
    assert code == 0, f"the {peer} peer exited {code} after SIGTERM"
    report(
        "soak",
        peer=peer,
        version=version,
        streams=STREAMS,
        volume=result.volume,
        seconds=round(result.seconds, 2),
        lost=result.lost,
    )


@pytest.mark.parametrize(
    ("bug", "failure"),
    [("psh-current-stream", "wrong content"), ("len-big-endian", "lost")],
)
async def test_soak_catches_a_broken_peer(bug: str, failure: str, deadline: Deadline) -> None:
    """The checks are not vacuous: crossed or lost data is reported as such."""
    server = await ContractServer.start("ref", 2, "--bug", bug, startup=deadline.scaled(30))
    try:
        result = await soak(
            server.host, server.port, version=2, total=4 * MiB, streams=12, limit=deadline.scaled(3)
        )
    finally:
        await server.stop(grace=deadline.scaled(5))
    assert not result.passed
    if failure == "wrong content":
        assert result.wrong_content > 0, result
    else:
        assert result.lost > 0, result


def test_command_line_prints_the_figures(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    command = ["--total", "4MiB", "--streams", "30", "--peer", "ref", "--version", "2"]
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.soak", *command, "--json", str(out)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    for start in ("volume: 4194304 bytes", "time: ", "bytes lost: 0", "bytes duplicated: 0"):
        assert any(line.startswith(start) for line in lines), proc.stdout
    assert lines[-1] == "result: PASS"
    figures = json.loads(out.read_text())
    assert figures["passed"] is True
    assert figures["volume"] == 4 * MiB
    assert figures["streams"] == 30
