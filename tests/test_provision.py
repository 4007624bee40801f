"""scripts/provision.sh on a machine without docker.io, with stand-ins for apt and Docker.

The machine that runs the tests has a Docker engine (the tests need one), so a fresh
machine is staged: PATH holds only the few tools the script uses plus stand-in
``apt-get``, ``dockerd`` and ``docker`` scripts that record what they were asked.  The
script must install docker.io, start dockerd and wait until ``docker info`` answers;
fail (so scripts/suite.sh goes native) when it may not provision or dockerd dies; and
stop the dockerd it started.  Nothing real is installed or started.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from plugin_harness import REPO, scaled

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="provisioning is done as root")

TOOLS = ("bash", "cp", "seq", "sleep", "kill", "tail", "id", "cat", "touch", "rm", "dirname")

APT_GET = """#!/bin/bash
echo "apt-get $*" >> "$STAGE/calls"
if [[ $1 == install ]]; then
    for stub in "$STAGE"/available/*; do cp "$stub" "$STAGE/bin/"; done
fi
"""
DOCKERD = """#!/bin/bash
echo "dockerd $*" >> "$STAGE/calls"
[[ -z ${DOCKERD_DIES:-} ]] || { echo "dockerd: cannot start here" >&2; exit 1; }
trap 'rm -f "$STAGE/engine-up"; echo stopped >> "$STAGE/calls"; exit 0' TERM
touch "$STAGE/engine-up"
while :; do sleep 0.1; done
"""
DOCKER = """#!/bin/bash
[[ $1 == info && -e $STAGE/engine-up ]]
"""


def stage(tmp_path: Path) -> dict[str, str]:
    """A PATH of plain tools and a stand-in apt-get that 'installs' dockerd and docker."""
    bin_dir, available = tmp_path / "bin", tmp_path / "available"
    bin_dir.mkdir()
    available.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    for directory, name, text in (
        (bin_dir, "apt-get", APT_GET),
        (available, "dockerd", DOCKERD),
        (available, "docker", DOCKER),
    ):
        (directory / name).write_text(text)
        (directory / name).chmod(0o755)
    (tmp_path / "calls").touch()
    return {"PATH": str(bin_dir), "STAGE": str(tmp_path), "TMPDIR": str(tmp_path)}


def provision(env: dict[str, str], script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [shutil.which("bash") or "bash", "-c", f"source {REPO / 'scripts/provision.sh'}; {script}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=scaled(120),
        check=False,
    )


def calls(tmp_path: Path) -> list[str]:
    return (tmp_path / "calls").read_text().splitlines()


def test_installs_docker_io_starts_dockerd_and_stops_it(tmp_path: Path) -> None:
    env = stage(tmp_path)
    proc = provision(env, "provision_engine && docker info && echo ENGINE-UP; stop_engine")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ENGINE-UP" in proc.stdout
    made = calls(tmp_path)
    assert "apt-get update -qq" in made
    assert "apt-get install -y -qq --no-install-recommends docker.io" in made
    assert "dockerd --storage-driver=vfs --iptables=false" in made
    assert made[-1] == "stopped", made  # the dockerd it started, stopped
    assert not (tmp_path / "engine-up").exists()


def test_an_engine_that_answers_is_used_as_it_is(tmp_path: Path) -> None:
    env = stage(tmp_path)
    for name in ("docker", "dockerd"):
        shutil.copy(tmp_path / "available" / name, tmp_path / "bin")
    (tmp_path / "engine-up").touch()
    proc = provision(env, "provision_engine")
    assert proc.returncode == 0, proc.stderr
    assert calls(tmp_path) == []


@pytest.mark.parametrize("why", ["SMUXREF_PROVISION=0", "dockerd dies"])
def test_no_engine_to_be_had_is_a_failure_not_a_hang(tmp_path: Path, why: str) -> None:
    env = stage(tmp_path)
    if why == "dockerd dies":
        env["DOCKERD_DIES"] = "1"
    else:
        env["SMUXREF_PROVISION"] = "0"
    proc = provision(env, "provision_engine")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    if why == "dockerd dies":
        assert "dockerd exited; its log:" in proc.stderr
        assert "dockerd: cannot start here" in proc.stderr
    else:
        assert calls(tmp_path) == []  # installs nothing, starts nothing
