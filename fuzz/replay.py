"""Replay fuzz inputs without atheris: ``python fuzz/replay.py decoder|engine FILE...``.

Each file runs through its target once; a failure prints the traceback (and, for the
engine, the operations that led to it) and makes the exit status 1.  A crash found by
the fuzzer becomes a regression test by adding its bytes to
tests/test_fuzz_regressions.py.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fuzz.decoder_target import decoder_one_input
from fuzz.engine_target import engine_one_input


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("decoder", "engine"):
        print(__doc__, file=sys.stderr)
        return 2
    failed = 0
    for name in argv[1:]:
        data = Path(name).read_bytes()
        log: list[str] = []
        try:
            if argv[0] == "decoder":
                decoder_one_input(data)
            else:
                engine_one_input(data, log)
        except Exception:
            failed += 1
            print(f"{name}: FAILED ({len(data)} bytes: {data.hex()})")
            for line in log:
                print(f"    {line}")
            traceback.print_exc()
        else:
            print(f"{name}: ok")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
