"""Third-party peers (smuxref_conformance.peers.thirdparty): ``--peer=rust-smux``, clean cache.

The unit checks need nothing; the run builds thirdparty/rust-smux with cargo into a fresh
cache directory (crates from crates.io, about 20 s on 2 cores once the registry is warm)
and runs a few cases against it: the gate must pass because every deviation is in
conformance/expectations/rust-smux-0.2.0.json, and every expected failure's reason must
point into the crate's source.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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


def test_unknown_shim_is_a_harness_error() -> None:
    with pytest.raises(HarnessError, match="no third-party peer 'nope'"):
        ensure_binary("nope", "")


@pytest.mark.skipif(find_cargo() is None and not os.environ.get("CI"), reason="no cargo")
def test_rust_smux_built_on_demand_and_judged(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SMUXREF_CACHE_DIR": str(tmp_path / "cache"),
        "PYTHONPATH": str(REPO),
    }
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_ADDOPTS", None)
    report = tmp_path / "report"
    argv = [sys.executable, "-m", "pytest", "conformance", "-q", "-p", "no:cacheprovider"]
    argv += ["--peer=rust-smux", "-k", "test_client_first_ids or test_one_stream"]
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
    results = json.loads((report / "smux-results.json").read_text())["results"]
    by_case = {(r["case"], r["version"]): r for r in results}
    assert by_case[("smux/10.1/interop-one-stream", 1)]["actual"] == "pass"
    # v1 PSH frames in a v2 session: failed, or inconclusive when a prerequisite case failed
    assert by_case[("smux/10.1/interop-one-stream", 2)]["actual"] in ("fail", "inconclusive")
    assert by_case[("smux/5.1/client-first-ids", 1)]["actual"] in ("fail", "non_strict")
    for r in results:
        if r["actual"] in ("fail", "non_strict"):
            assert not r["unexpected"]
            assert "smux 0.2.0 src/" in r["reason"], r
    info = json.loads((report / "smux-results.json").read_text())["peers"]["rust-smux"]["info"]
    assert next(iter(info.values()))["version"] == "0.2.0"
