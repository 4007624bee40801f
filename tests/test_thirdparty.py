"""Third-party peers (smuxref_conformance.peers.thirdparty): ``--peer=rust-smux``,
``--peer=async-smux`` and ``--peer=smux-rust``, each built into a clean cache.

The unit checks need nothing; each run builds one shim in thirdparty/ with cargo into a
fresh cache directory (crates from crates.io, 20 to 40 s on 2 cores once the registry is
warm) and runs a few cases against it: the gate must pass because every deviation is in
conformance/expectations/NAME-VERSION.json, and every expected failure's reason must point
into the crate's source.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from plugin_harness import REPO, scaled

from smuxref_conformance.errors import HarnessError
from smuxref_conformance.judge.expectations import peer_names
from smuxref_conformance.peers.specs import parse_peer
from smuxref_conformance.peers.thirdparty import ensure_binary, find_cargo, resolved_version


def test_peer_forms() -> None:
    pinned = parse_peer("rust-smux")
    assert (pinned.kind, pinned.id, pinned.tag) == ("thirdparty", "rust-smux", "")
    other = parse_peer("rust-smux@0.1.0")
    assert (other.kind, other.tag) == ("thirdparty", "0.1.0")
    with pytest.raises(ValueError, match=r"rust-smux\[@VERSION\]"):
        parse_peer("rust-smux@")


def test_expectation_names_carry_the_locked_version() -> None:
    assert resolved_version("rust-smux", "") == "0.2.0"
    assert peer_names(parse_peer("rust-smux")) == ("rust-smux", "rust-smux@0.2.0")
    assert peer_names(parse_peer("rust-smux@0.1.0"))[-1] == "rust-smux@0.1.0"


def test_async_smux_forms_and_locked_version() -> None:
    assert parse_peer("async-smux").kind == "thirdparty"
    assert parse_peer("async-smux@0.3.0").tag == "0.3.0"
    assert resolved_version("async-smux", "") == "0.4.0"
    assert peer_names(parse_peer("async-smux")) == ("async-smux", "async-smux@0.4.0")


def test_smux_rust_forms_and_locked_version() -> None:
    assert parse_peer("smux-rust@0.2.0").tag == "0.2.0"
    assert resolved_version("smux-rust", "") == "0.2.1"
    assert peer_names(parse_peer("smux-rust")) == ("smux-rust", "smux-rust@0.2.1")


def test_unknown_shim_is_a_harness_error() -> None:
    with pytest.raises(HarnessError, match="no third-party peer 'nope'"):
        ensure_binary("nope", "")


def _judge(tmp_path: Path, peer: str, select: str) -> dict[str, Any]:
    """Run the cases matching ``select`` against ``peer`` built into an empty cache; the
    gate (and so pytest) must pass.  Returns smux-results.json."""
    env = {
        **os.environ,
        "SMUXREF_CACHE_DIR": str(tmp_path / "cache"),
        "PYTHONPATH": str(REPO),
    }
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_ADDOPTS", None)
    report = tmp_path / "report"
    argv = [sys.executable, "-m", "pytest", "conformance", "-q", "-p", "no:cacheprovider"]
    argv += [f"--peer={peer}", "-k", select]
    argv += [f"--smux-report-dir={report}", f"--smux-timeout-scale={scaled(1)}"]
    proc = subprocess.run(
        argv,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=scaled(900),
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    doc: dict[str, Any] = json.loads((report / "smux-results.json").read_text())
    return doc


_NEEDS_CARGO = pytest.mark.skipif(
    find_cargo() is None and not os.environ.get("CI"), reason="no cargo"
)


@_NEEDS_CARGO
def test_rust_smux_built_on_demand_and_judged(tmp_path: Path) -> None:
    doc = _judge(tmp_path, "rust-smux", "test_client_first_ids or test_one_stream")
    results = doc["results"]
    by_case = {(r["case"], r["version"]): r for r in results}
    assert by_case[("smux/10.1/interop-one-stream", 1)]["actual"] == "pass"
    # v1 PSH frames in a v2 session: failed, or inconclusive when a prerequisite case failed
    assert by_case[("smux/10.1/interop-one-stream", 2)]["actual"] in ("fail", "inconclusive")
    assert by_case[("smux/5.1/client-first-ids", 1)]["actual"] in ("fail", "non_strict")
    for r in results:
        if r["actual"] in ("fail", "non_strict"):
            assert not r["unexpected"]
            assert "smux 0.2.0 src/" in r["reason"], r
    info = doc["peers"]["rust-smux"]["info"]
    assert next(iter(info.values()))["version"] == "0.2.0"


@_NEEDS_CARGO
def test_async_smux_built_on_demand_and_judged(tmp_path: Path) -> None:
    """Protocol 1 only (version 2 is exit 127), and a PSH for an unknown id answered with
    FIN: an expected failure whose reason cites the crate's source."""
    doc = _judge(tmp_path, "async-smux", "test_one_stream or test_psh_unknown_id")
    results = doc["results"]
    actual = {(r["case"], r["version"], r["role"]): r["actual"] for r in results}
    assert actual[("smux/10.1/interop-one-stream", 1, "server")] == "pass"
    assert actual[("smux/10.1/interop-one-stream", 1, "client")] == "pass"
    assert actual[("smux/10.1/interop-one-stream", 2, "server")] == "unsupported"
    assert actual[("smux/5.5/psh-unknown-id", 1, "server")] == "fail"
    for r in results:
        if r["actual"] == "fail":
            assert not r["unexpected"]
            assert "async_smux 0.4.0 src/mux.rs:" in r["reason"], r
    info = doc["peers"]["async-smux"]["info"]
    assert next(iter(info.values()))["protocol_versions"] == [1]


@_NEEDS_CARGO
def test_smux_rust_server_that_cannot_open_is_one_failure(tmp_path: Path) -> None:
    """smux_rust 0.2.1's server cannot open a stream: the case that tests opening fails
    (expected, its reason citing the crate's source), and a case that only needs a
    stream opened to check something else is inconclusive naming it, not failed."""
    doc = _judge(tmp_path, "smux-rust", "test_peer_opens_streams or test_version_on_stream_frames")
    by_key = {(r["case"], r["version"], r["role"]): r for r in doc["results"]}
    for version in (1, 2):
        opens = by_key[("smux/10.1/peer-opens-streams", version, "server")]
        assert opens["actual"] == "fail", opens
        assert not opens["unexpected"]
        assert "smux_rust 0.2.1 src/session.rs:161-167" in opens["reason"]
        assert by_key[("smux/10.1/peer-opens-streams", version, "client")]["actual"] == "pass"
        versions = by_key[("smux/4.1/version-on-syn-psh-fin", version, "server")]
        assert versions["actual"] == "inconclusive", versions
        assert "smux/10.1/peer-opens-streams" in versions["message"]
        assert by_key[("smux/4.1/version-on-syn-psh-fin", version, "client")]["actual"] == "pass"
