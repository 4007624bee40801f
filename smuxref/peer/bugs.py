"""Deliberate protocol mistakes for the suite's self-test (``--bug NAME``).

Each switch is a realistic implementation error.  The conformance suite must catch
every one with at least one must-level case; the clean peer must pass everything.
Bugs patch the engine class the asyncio layer instantiates, through the engine's
documented seams (``_frame_bytes``, ``_handle_frame``, ``_allocate_id``).
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["BUGS", "install"]

#: name -> installer; filled in by the conformance issue's bug catalogue.
BUGS: dict[str, Callable[[], None]] = {}


def install(names: tuple[str, ...]) -> None:
    for name in names:
        BUGS[name]()
