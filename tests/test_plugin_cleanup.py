"""Nothing of a run outlives it: no peer process, no container - even after Ctrl-C.

The child pytest is interrupted with SIGINT (sent to its pid only, as a terminal's
Ctrl-C reaches pytest - the peers run in their own process groups) while a case is
blocked on a peer; afterwards no process or container labelled with the child's pid
may remain.  The Docker tests use the Go peer image (go-peer/build.sh, go-peer/Dockerfile)
and are skipped where no Docker engine or no go-peer build script is available.
"""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from plugin_harness import (
    InnerRun,
    containers_of,
    docker_client,
    finish_inner,
    peer_processes,
    read_until,
    run_inner,
    scaled,
    signal_state,
    start_inner,
)

from smuxref_conformance.peers.go_build import GO_PEER_DIR

HOLD_CASE = """\
import sys

def test_hold(raw_conn):
    sys.stdout.write("SMUXREF-READY\\n")
    sys.stdout.flush()
    raw_conn.expect_silence(600)
"""

ECHO_CASE = """\
from smuxref import Cmd, Frame

def test_echo(raw_conn):
    sid = raw_conn.open_stream(b"ECHO\\nping")
    raw_conn.send_frame(Frame(raw_conn.version, Cmd.FIN, sid))
    assert raw_conn.read_stream(sid) == b"ping"
"""


def interrupt_run(tmp_path: Path, peer: str, role: str, client: Any = None) -> InnerRun:
    """Start a child run, wait until a case holds a peer, SIGINT it; check what is left."""
    started = time.monotonic()
    proc = start_inner(tmp_path, HOLD_CASE, peer, "-s", f"--smux-roles={role}", "--smux-version=1")
    state = ""
    try:
        read_until(proc, b"SMUXREF-READY", scaled(120))
        holding = containers_of(client, proc.pid) if client else peer_processes(proc.pid)
        assert holding, "the case holds no peer: nothing to clean up"
        state = signal_state(proc.pid)
        proc.send_signal(signal.SIGINT)
    finally:
        run = finish_inner(proc, scaled(60), started)
    assert run.returncode == 2, f"{state}\n{run.output}"  # pytest's "interrupted"
    assert "KeyboardInterrupt" in run.output, run.output
    assert peer_processes(run.pid) == [], run.output
    if client:
        assert containers_of(client, run.pid) == [], run.output
    return run


@pytest.mark.parametrize("role", ["server", "client"])
def test_sigint_leaves_no_exec_peer(tmp_path: Path, role: str) -> None:
    interrupt_run(tmp_path, "--peer=ref", role)


# -- Docker ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def docker() -> Iterator[Any]:
    client = docker_client()
    if client is None:
        pytest.skip("no Docker engine reachable")
    if not (GO_PEER_DIR / "build.sh").is_file() or not (GO_PEER_DIR / "Dockerfile").is_file():
        client.close()
        pytest.skip(f"{GO_PEER_DIR} has no build.sh and Dockerfile (yet)")
    yield client
    client.close()


@pytest.fixture(scope="module")
def go_image(docker: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A complete run against the Go peer (both roles and versions); leaves nothing."""
    tmp = tmp_path_factory.mktemp("go-run")
    run = run_inner(tmp, ECHO_CASE, "--peer=go", timeout=900)
    assert run.returncode == 0, run.output
    assert "4 passed" in run.output, run.output
    assert containers_of(docker, run.pid) == []
    images = docker.images.list(filters={"label": ["smuxref=1", "smuxref.smux-tag=v1.5.58"]})
    assert images, "the run built no smuxref-go-peer image"
    tag: str = images[0].tags[0]
    return tag


def test_go_run_leaves_no_container(go_image: str) -> None:
    assert go_image.startswith("smuxref-go-peer:v1.5.58-")


@pytest.mark.parametrize("role", ["server", "client"])
def test_sigint_leaves_no_container(tmp_path: Path, docker: Any, go_image: str, role: str) -> None:
    interrupt_run(tmp_path, "--peer=go", role, docker)


def test_leftover_of_a_dead_run_is_swept(tmp_path: Path, docker: Any, go_image: str) -> None:
    # Start time 1 never matches a live process: this owner is gone, whatever the pid.
    dead_run = f"dead-{tmp_path.name}"
    labels = {"smuxref": "1", "smuxref.owner": "999999:1", "smuxref.run": dead_run}
    labels["smuxref.host"] = socket.gethostname()
    argv = ["--role", "server", "--addr", "0.0.0.0:7000", "--version", "1"]
    mine = {"label": f"smuxref.run={dead_run}"}
    try:
        docker.containers.run(go_image, argv, detach=True, init=True, labels=labels)
    except Exception:  # a concurrent run (another xdist worker) swept it mid-creation
        assert docker.containers.list(all=True, filters=mine) == []
    try:
        run = run_inner(tmp_path, ECHO_CASE, "--peer=go", "--smux-version=1", "--smux-roles=server")
        assert run.returncode == 0, run.output
        remaining = docker.containers.list(all=True, filters=mine)
        assert remaining == [], "the leftover container of a dead run was not removed"
    finally:
        for container in docker.containers.list(all=True, filters=mine):
            container.remove(force=True)


def test_no_docker_engine_is_one_clear_line(tmp_path: Path) -> None:
    sock = tmp_path / "no-such-docker.sock"
    run = run_inner(tmp_path, ECHO_CASE, "--peer=go", DOCKER_HOST=f"unix://{sock}")
    assert run.returncode == 4, run.output
    lines = [ln for ln in run.output.splitlines() if "no Docker engine reachable" in ln]
    assert len(lines) == 1, run.output
    assert lines[0].startswith(f"ERROR: no Docker engine reachable at unix://{sock}")
    assert "dockerd --storage-driver=vfs --iptables=false &" in lines[0]
