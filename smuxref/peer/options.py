"""Command-line options of a contract peer.

The contract says an option or value the peer does not support ends it at once with
exit status 127 and the reason on stderr, so argparse's usual status 2 is replaced.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import NoReturn

from ..config import Config
from ..errors import ConfigError
from .exchange import Exchange, parse_exchange

__all__ = ["UNSUPPORTED", "PeerOptions", "parse_options"]

#: Exit status for an unsupported option or value (CONTRACT.md).
UNSUPPORTED = 127


@dataclass(frozen=True, slots=True)
class PeerOptions:
    role: str
    host: str
    port: int
    config: Config
    bugs: tuple[str, ...] = ()
    runs: tuple[Exchange, ...] = ()  #: --run N:LINE (client, CONTRACT.md rule 22)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        unsupported(message)


def unsupported(reason: str) -> NoReturn:
    sys.stderr.write(f"smuxref.peer: unsupported: {reason}\n")
    sys.stderr.flush()
    raise SystemExit(UNSUPPORTED)


def _parser(bug_names: list[str]) -> argparse.ArgumentParser:
    p = _Parser(prog="python -m smuxref.peer", allow_abbrev=False)
    p.add_argument("--role", choices=("server", "client"), required=True)
    p.add_argument("--addr", required=True, help="HOST:PORT (server: port 0 picks one)")
    p.add_argument("--version", type=int, choices=(1, 2), required=True)
    keepalive = p.add_mutually_exclusive_group()
    keepalive.add_argument("--no-keepalive", action="store_true")
    keepalive.add_argument("--keepalive-interval", type=int, metavar="MS")
    p.add_argument("--keepalive-timeout", type=int, metavar="MS")
    p.add_argument("--max-frame-size", type=int, metavar="N")
    p.add_argument("--max-receive-buffer", type=int, metavar="N")
    p.add_argument("--max-stream-buffer", type=int, metavar="N")
    p.add_argument("--run", action="append", default=[], metavar="N:LINE")
    p.add_argument(
        "--bug",
        action="append",
        default=[],
        choices=bug_names,
        help="inject a deliberate protocol mistake (suite self-test; offered only by the "
        "suite's build of the peer, python -m smuxref_conformance.bugs)",
    )
    return p


def parse_options(argv: list[str], bug_names: list[str]) -> PeerOptions:
    args = _parser(bug_names).parse_args(argv)
    host, sep, port_text = args.addr.rpartition(":")
    if not sep or not port_text.isdigit() or not host:
        unsupported(f"--addr must be HOST:PORT, got {args.addr!r}")
    fields: dict[str, object] = {"version": args.version}
    if args.no_keepalive:
        if args.keepalive_timeout is not None:
            unsupported("--keepalive-timeout cannot be combined with --no-keepalive")
        fields["keepalive_disabled"] = True
    if args.keepalive_interval is not None:
        fields["keepalive_interval"] = args.keepalive_interval / 1000
    if args.keepalive_timeout is not None:
        fields["keepalive_timeout"] = args.keepalive_timeout / 1000
    for name in ("max_frame_size", "max_receive_buffer", "max_stream_buffer"):
        value = getattr(args, name)
        if value is not None:
            fields[name] = value
    try:
        config = Config(**fields)  # type: ignore[arg-type]
    except ConfigError as exc:
        unsupported(str(exc))
    if args.run and args.role != "client":
        unsupported("--run is a client option (CONTRACT.md rule 22)")
    try:
        runs = tuple(parse_exchange(spec) for spec in args.run)
    except ValueError as exc:
        unsupported(f"--run: {exc}")
    host = host.strip("[]")
    return PeerOptions(args.role, host, int(port_text), config, tuple(args.bug), runs)
