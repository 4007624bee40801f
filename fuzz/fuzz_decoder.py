"""atheris entry point of the decoder target (fuzz/decoder_target.py).

    python fuzz/fuzz_decoder.py -max_total_time=3600 fuzz/corpus/decoder    # the long run
    python fuzz/fuzz_decoder.py -runs=20000 fuzz/corpus/decoder             # what CI runs

Any libFuzzer option works (``-help=1``); a crash is written to ``crash-<sha1>`` (or
``-artifact_prefix=DIR/``) and replays with ``python fuzz/replay.py decoder FILE``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fuzz._atheris_main import run

if __name__ == "__main__":
    run("decoder", sys.argv)
