"""A bounded run of each atheris fuzz target (fuzz/fuzz_decoder.py, fuzz/fuzz_engine.py):
the CI's share of the fuzzing, seeded from vectors/ into a fresh corpus.

Each target runs for at most ``$SMUXREF_FUZZ_RUNS`` executions (default 20,000) or
``$SMUXREF_FUZZ_SECONDS`` seconds (default 20), whichever comes first; any crash or
failed oracle fails the test with libFuzzer's report, and the input is left in the
test's temporary directory (``crash-<sha1>``) to become a regression test.  The long
run is ``python fuzz/fuzz_engine.py -max_total_time=3600 fuzz/corpus/engine``
(fuzz/README.md).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from reliability_support import ROOT, report

pytest.importorskip("atheris", reason="atheris is not installed: pip install -e '.[fuzz]'")

RUNS = int(os.environ.get("SMUXREF_FUZZ_RUNS") or "20000")
SECONDS = int(os.environ.get("SMUXREF_FUZZ_SECONDS") or "20")
_DONE = re.compile(r"Done (\d+) runs in (\d+) second")


@pytest.mark.parametrize("target", ["decoder", "engine"])
def test_fuzz_target_bounded_run(target: str, tmp_path: Path) -> None:
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
