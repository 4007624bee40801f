"""Why the suite could not judge a peer, as opposed to the peer failing a case.

A conformance verdict is only meaningful if the harness around it worked.  When a peer
breaks the launch contract (CONTRACT.md) the suite must say so, naming the rule and
showing the peer's stderr, instead of reporting a protocol failure or hanging.  Three
outcomes are kept apart:

* :class:`ContractViolation` - the peer broke a rule of CONTRACT.md (a harness error).
* :class:`PeerUnsupported` - the peer exited 127: it does not implement what the case
  needs; pytest reports a skip, never a failure (CONTRACT.md rule 3).
* :class:`HarnessError` - the suite's own environment is broken (no Docker engine, the
  Go build failed).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "RULE_CLIENT_END",
    "RULE_CLIENT_START",
    "RULE_COMMAND_LINE",
    "RULE_SERVER_LIFE",
    "RULE_SERVER_START",
    "RULE_STDOUT",
    "RULE_UNSUPPORTED",
    "ContractViolation",
    "HarnessError",
    "PeerUnsupported",
    "format_tail",
]

# Rule numbers of CONTRACT.md that the harness itself checks.
RULE_COMMAND_LINE: Final = 1
RULE_UNSUPPORTED: Final = 3
RULE_STDOUT: Final = 4
RULE_SERVER_START: Final = 5
RULE_SERVER_LIFE: Final = 6
RULE_CLIENT_START: Final = 7
RULE_CLIENT_END: Final = 8

#: How much of a peer's stderr a message shows: enough for a traceback or a Go panic.
STDERR_TAIL_LINES: Final = 30


def format_tail(stderr: bytes, peer: str) -> str:
    """The last lines of a peer's stderr, indented, or a note that it wrote none."""
    if not stderr.strip():
        return f"({peer} wrote nothing on stderr)"
    lines = stderr.decode("utf-8", "replace").rstrip().splitlines()[-STDERR_TAIL_LINES:]
    return f"stderr of {peer} (last {len(lines)} lines):\n" + "\n".join("    " + ln for ln in lines)


class HarnessError(Exception):
    """The suite cannot run: its environment or a peer is unusable.  Never a verdict."""


class ContractViolation(HarnessError):
    """The peer broke rule ``rule`` of CONTRACT.md; the message starts with the citation."""

    def __init__(self, rule: int, message: str, *, peer: str = "", stderr: bytes | None = None):
        text = f"CONTRACT.md rule {rule}: {message}"
        if stderr is not None:
            text += "\n" + format_tail(stderr, peer or "the peer")
        super().__init__(text)
        self.rule = rule


class PeerUnsupported(Exception):
    """The peer exited 127 for this command line: the case is unsupported, not failed."""

    def __init__(self, peer: str, argv: list[str], stderr: bytes) -> None:
        reason = stderr.decode("utf-8", "replace").strip().splitlines()
        why = reason[-1] if reason else "no reason given on stderr"
        super().__init__(f"{peer} does not support {' '.join(argv)!r} (exit 127: {why})")
