"""A bounded run of each atheris fuzz target (fuzz/fuzz_decoder.py, fuzz/fuzz_engine.py):
the CI's share of the fuzzing, seeded from vectors/ into a fresh corpus.

Each target runs for at most ``$SMUXREF_FUZZ_RUNS`` executions (default 20,000) or
``$SMUXREF_FUZZ_SECONDS`` seconds (default 20), whichever comes first; any crash or
failed oracle fails the test with libFuzzer's report, and the input is left in the
test's temporary directory (``crash-<sha1>``) to become a regression test.  The long
run is ``python fuzz/fuzz_engine.py -max_total_time=3600 fuzz/corpus/engine``
(fuzz/README.md).

When atheris is missing, the run FAILS under tox (``TOX_ENV_NAME`` is set: tox.ini
installs the ``fuzz`` extra in every test env, so a missing atheris means the CI lost
its fuzzing) and in CI (``CI`` set to anything but empty, ``0`` or ``false``); anywhere
else (a developer's own virtualenv) it is skipped.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
from reliability_support import ROOT, report

RUNS = int(os.environ.get("SMUXREF_FUZZ_RUNS") or "20000")
SECONDS = int(os.environ.get("SMUXREF_FUZZ_SECONDS") or "20")
_DONE = re.compile(r"Done (\d+) runs in (\d+) second")


def atheris_required(environ: Mapping[str, str]) -> bool:
    """Whether a missing atheris fails the run (under tox or in CI) instead of skipping."""
    ci = environ.get("CI", "").strip().lower() not in ("", "0", "false")
    return ci or bool(environ.get("TOX_ENV_NAME"))


HAVE_ATHERIS = importlib.util.find_spec("atheris") is not None


@pytest.mark.parametrize(
    ("environ", "required"),
    [
        ({}, False),
        ({"CI": ""}, False),
        ({"CI": "false"}, False),
        ({"CI": "0"}, False),
        ({"CI": "true"}, True),
        ({"CI": "1"}, True),
        ({"TOX_ENV_NAME": "py311"}, True),
        ({"TOX_ENV_NAME": "py311", "CI": "false"}, True),
    ],
)
def test_atheris_is_required_under_tox_and_in_ci(environ: dict[str, str], required: bool) -> None:
    assert atheris_required(environ) is required


@pytest.mark.skipif(
    not HAVE_ATHERIS and not atheris_required(os.environ),
    reason="atheris is not installed: pip install -e '.[fuzz]'",
)
@pytest.mark.parametrize("target", ["decoder", "engine"])
def test_fuzz_target_bounded_run(target: str, tmp_path: Path) -> None:
    assert HAVE_ATHERIS, (
        "atheris is not installed, yet this run must fuzz (under tox or CI=...): "
        "tox.ini's [testenv] extras must include fuzz"
    )
    corpus = tmp_path / "corpus"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "fuzz" / f"fuzz_{target}.py"),
            f"-runs={RUNS}",
            f"-max_total_time={SECONDS}",
            f"-artifact_prefix={tmp_path}/",
            "-print_final_stats=1",
            str(corpus),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=SECONDS * 6 + 120,
        check=False,
    )
    output = proc.stdout + proc.stderr
    crashes = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("crash-", "oom-")))
    assert not crashes, f"{crashes}\n{output[-6000:]}"
    assert proc.returncode == 0, output[-6000:]
    done = _DONE.search(output)
    assert done is not None, output[-3000:]
    executions = int(done[1])
    assert executions > 0
    assert any(corpus.iterdir()), "the corpus was not seeded from vectors/"
    report("fuzz_smoke", target=target, executions=executions, seconds=int(done[2]), crashes=0)
