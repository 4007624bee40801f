"""``python -m smuxref_conformance.pairwise --client PEER --server PEER [--version 1,2]
[--out DIR]``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..deadlines import set_scale
from ..peers.pool import PeerPool
from ..peers.run_context import RunContext
from ..peers.specs import parse_peer
from .runner import run_pair


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m smuxref_conformance.pairwise")
    p.add_argument(
        "--client", required=True, help="a --peer value (ref, go@v1.0.7, rust-smux, ...)"
    )
    p.add_argument("--server", required=True, help="a --peer value")
    p.add_argument("--version", default="1,2", help="protocol versions (default 1,2)")
    p.add_argument("--out", default="reports/pairwise", help="where transcripts and pcaps go")
    p.add_argument("--timeout-scale", type=float, default=1.0)
    args = p.parse_args(argv)
    set_scale(args.timeout_scale)
    run = RunContext.create(None)
    pool = PeerPool(run)
    worst = 0
    try:
        for version in (int(v) for v in args.version.split(",")):
            result = run_pair(
                pool, parse_peer(args.client), parse_peer(args.server), version, Path(args.out)
            )
            print(json.dumps(result.to_json(), indent=1))
            worst = max(worst, 0 if result.verdict in ("pass", "unsupported") else 1)
    finally:
        pool.close()
        run.remove()
    return worst


if __name__ == "__main__":
    sys.exit(main())
