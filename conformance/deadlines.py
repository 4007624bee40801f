"""Every time limit of the suite, in one place, multiplied by ``--smux-timeout-scale``.

A slow machine (CI under load, an emulated architecture, a peer in a container on
vfs storage) must be able to stretch *all* waits at once without editing cases, and a
fast one to shrink them.  So nothing in the plugin or in a case passes a literal
number of seconds to a wait: it goes through :func:`scaled` (or :class:`Deadline`,
which calls it), and :func:`set_scale` is called once from ``pytest_configure``.

Waiting itself is never done by sleeping: callers block on a socket, a pipe, an event
or a process with ``Deadline.remaining()`` as the timeout, so they wake up as soon as
the awaited thing happens and give up exactly when the deadline passes.
"""

from __future__ import annotations

import math
import time
from typing import Final

__all__ = [
    "COMPLIANCE",
    "CONNECT",
    "DOCKER_OP",
    "EXPECT",
    "GO_BUILD",
    "IMAGE_BUILD",
    "STARTUP",
    "STOP",
    "Deadline",
    "get_scale",
    "scaled",
    "set_scale",
]

# Base values in seconds, before scaling.  They are generous on purpose: a deadline only
# costs time when something is already broken.
STARTUP: Final = 10.0  #: from launch to LISTENING / CONNECTED and a working ECHO
COMPLIANCE: Final = 5.0  #: a made-up option must give exit 127 within this
STOP: Final = 5.0  #: SIGTERM to exit (server), session end to exit (client)
CONNECT: Final = 5.0  #: one TCP connect / accept
EXPECT: Final = 5.0  #: default wait for an expected frame
DOCKER_OP: Final = 60.0  #: one Docker API call (create, start, remove)
GO_BUILD: Final = 600.0  #: building the Go peer (may download modules)
IMAGE_BUILD: Final = 300.0  #: building the FROM-scratch image

#: The multiplier in force; a one-element list so that set_scale needs no ``global``.
_scale: list[float] = [1.0]


def set_scale(factor: float) -> None:
    """Set the multiplier applied by :func:`scaled`; it must be a finite number > 0."""
    if not (math.isfinite(factor) and factor > 0):
        raise ValueError(f"--smux-timeout-scale must be a finite number > 0, not {factor!r}")
    _scale[0] = factor


def get_scale() -> float:
    """The multiplier in force (1.0 unless ``--smux-timeout-scale`` said otherwise)."""
    return _scale[0]


def scaled(seconds: float) -> float:
    """The one helper every deadline goes through: ``seconds * --smux-timeout-scale``."""
    return seconds * _scale[0]


class Deadline:
    """A point in monotonic time, ``scaled(seconds)`` from now.

    ``remaining()`` is what to pass as a timeout to ``select``, ``Event.wait`` or
    ``Popen.wait``; it never goes below zero.  ``budget`` keeps the scaled length so
    messages can say "within 2.5 s".
    """

    __slots__ = ("budget", "end")

    def __init__(self, seconds: float, *, already_scaled: bool = False) -> None:
        self.budget = seconds if already_scaled else scaled(seconds)
        self.end = time.monotonic() + self.budget

    def remaining(self) -> float:
        return max(0.0, self.end - time.monotonic())

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.end

    def __repr__(self) -> str:
        return f"Deadline({self.budget:.3g} s, {self.remaining():.3g} s left)"
