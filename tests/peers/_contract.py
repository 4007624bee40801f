"""Shared by the deliberately broken peers: contract-style argument parsing.

Each broken peer must get past the suite's compliance check (exit 127 for a made-up
option) so that the breakage under test is the one that trips.  Every start is logged
to ``$SMUXREF_TEST_PEER_LOG`` when set, so a test can count how often a peer ran.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import NoReturn


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"unsupported: {message}\n")
        raise SystemExit(127)


def log_start(argv: list[str]) -> None:
    """Append this start to ``$SMUXREF_TEST_PEER_LOG`` (one line: script and arguments)."""
    log = os.environ.get("SMUXREF_TEST_PEER_LOG")
    if log:
        with open(log, "a") as f:
            f.write(f"{os.path.basename(sys.argv[0])} {' '.join(argv)}\n")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    argv = sys.argv[1:] if argv is None else argv
    log_start(argv)
    p = _Parser(allow_abbrev=False)
    p.add_argument("--role", choices=("server", "client"), required=True)
    p.add_argument("--addr", required=True)
    p.add_argument("--version", type=int, choices=(1, 2), required=True)
    p.add_argument("--no-keepalive", action="store_true")
    for name in ("keepalive-interval", "keepalive-timeout", "max-frame-size"):
        p.add_argument(f"--{name}", type=int)
    for name in ("max-receive-buffer", "max-stream-buffer"):
        p.add_argument(f"--{name}", type=int)
    return p.parse_args(argv)


def split_addr(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), int(port)


def block_forever() -> NoReturn:
    """Wait for a signal; the default SIGTERM action ends the process."""
    while True:
        signal.pause()
