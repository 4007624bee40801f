"""What both fuzz targets share: how they read their input and how an oracle fails.

The targets read their input with :class:`FuzzInput` rather than atheris'
``FuzzedDataProvider`` so that they need nothing from atheris: a crash replays from its
bytes alone (fuzz/replay.py, tests/test_fuzz_regressions.py).  Reads past the end give
zeros, so every byte string is a valid input and libFuzzer never wastes a run on one.

The rule the targets enforce: a failed oracle raises :class:`HarnessBug` (an
``AssertionError``); smuxref itself may only raise what its API documents for the call
(for the decoder, :class:`~smuxref.errors.ProtocolError` subclasses), so any other
exception reaching atheris is a crash as it stands.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

__all__ = ["FuzzInput", "HarnessBug", "require"]

T = TypeVar("T")


class HarnessBug(AssertionError):
    """An oracle of the harness failed: smuxref did something it must not."""


def require(condition: bool, message: str) -> None:
    """Fail the run with ``message`` unless ``condition`` holds."""
    if not condition:
        raise HarnessBug(message)


class FuzzInput:
    """The fuzz input, consumed front to back; reads past the end give zeros."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def byte(self) -> int:
        if self._pos >= len(self._data):
            return 0
        value = self._data[self._pos]
        self._pos += 1
        return value

    def u16(self) -> int:
        return self.byte() | self.byte() << 8

    def u32(self) -> int:
        return self.u16() | self.u16() << 16

    def take(self, n: int) -> bytes:
        out = self._data[self._pos : self._pos + n]
        self._pos += len(out)
        return out

    def rest(self) -> bytes:
        return self.take(self.remaining)

    def pick(self, options: Sequence[T]) -> T:
        return options[self.byte() % len(options)]
