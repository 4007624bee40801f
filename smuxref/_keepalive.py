"""The keepalive of a session (SPEC.md 7): when a NOP is due, and whether the peer was
heard from before each liveness check.

Go runs two tickers per session: one sends a NOP every ``KeepAliveInterval``, the other
checks every ``KeepAliveTimeout`` that some frame header arrived since the previous
check.  A Go ticker that fell behind drops the ticks it missed instead of firing them in
a burst, so an adapter that calls late sends one NOP, not one per missed interval; this
clock does the same.  Whether a silent peer ends the session (not while the receive
buffer is exhausted) is the engine's decision: this is the schedule and the record.
"""

from __future__ import annotations

from .config import Config

__all__ = ["KeepaliveClock"]


class KeepaliveClock:
    """The two deadlines of a session, advanced by whole ticks; both None when the
    configuration disables keepalive."""

    __slots__ = ("heard", "interval", "next_check", "next_ping", "timeout")

    def __init__(self, config: Config, now: float) -> None:
        self.interval = config.keepalive_interval
        self.timeout = config.keepalive_timeout
        #: A frame header arrived since the last check (the adapter's reads set it).
        self.heard = False
        self.next_ping: float | None = None
        self.next_check: float | None = None
        if not config.keepalive_disabled:
            self.next_ping = now + self.interval
            self.next_check = now + self.timeout

    def next_due(self) -> float | None:
        """The earlier of the two deadlines (None: keepalive is off)."""
        if self.next_ping is None or self.next_check is None:
            return None
        return min(self.next_ping, self.next_check)

    def advance(self, now: float) -> tuple[bool, bool]:
        """Run both tickers up to ``now``: (a NOP is due, a check found the peer silent)."""
        if self.next_ping is None or self.next_check is None:
            return False, False
        ping = now >= self.next_ping
        if ping:
            self.next_ping += ((now - self.next_ping) // self.interval + 1) * self.interval
        silent = False
        if now >= self.next_check:
            silent = not self.heard
            self.heard = False
            self.next_check += ((now - self.next_check) // self.timeout + 1) * self.timeout
        return ping, silent
