"""The example database behind ``conformance/hypothesis-db/`` for the ``deep`` profile.

Hypothesis keeps a database of failing examples and cleans it as it goes: on every run
it replays the stored examples and deletes each one that no longer fails.  For a
conformance suite that is the wrong policy.  A sequence that broke one implementation
(a buggy peer, an old Go tag) passes against the reference peer, and a nightly ``deep``
run against the reference would delete it - yet it is exactly the regression example
the ``ci`` profile should replay against every peer.  :class:`KeepingDatabase` keeps
them: it saves new failures and moves shrink steps to the secondary corpus as usual,
and ignores the clean-up deletions.  Stale entries are removed by hand (git rm).
"""

from __future__ import annotations

from collections.abc import Iterable

from hypothesis.database import ExampleDatabase

__all__ = ["KeepingDatabase"]


class KeepingDatabase(ExampleDatabase):
    """``db`` without the deletion of examples that stopped failing."""

    def __init__(self, db: ExampleDatabase) -> None:
        super().__init__()
        self._wrapped = db

    def __repr__(self) -> str:
        return f"KeepingDatabase({self._wrapped!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KeepingDatabase) and self._wrapped == other._wrapped

    def __hash__(self) -> int:
        return hash(("KeepingDatabase", id(self._wrapped)))

    def fetch(self, key: bytes) -> Iterable[bytes]:
        yield from self._wrapped.fetch(key)

    def save(self, key: bytes, value: bytes) -> None:
        self._wrapped.save(key, value)

    def move(self, src: bytes, dest: bytes, value: bytes) -> None:
        # A shrink step: the larger example leaves the primary corpus for the secondary.
        self._wrapped.move(src, dest, value)

    def delete(self, key: bytes, value: bytes) -> None:
        """Ignored: an example that passes today is kept as a regression case."""

    def _start_listening(self) -> None:
        pass

    def _stop_listening(self) -> None:
        pass
