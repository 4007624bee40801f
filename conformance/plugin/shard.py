"""``--smux-shard I/N``: run the I-th of N disjoint parts of the selected results.

When one machine is not enough, a CI's job matrix is the engine: N jobs run the same
command with shards 1/N .. N/N and a last job merges their results files
(``smux-conformance merge``).  The split must be the same in every job without any
coordination, so it depends on nothing but the selected items: their keys (the test id
without the directory the cases are installed in, so a wheel and a checkout agree) are
sorted and dealt round robin.  Every job must select the same items (same ``--peer``,
``--smux-version``, ``-k``); the merge checks that all N shards came back.
"""

from __future__ import annotations

import re
from typing import Final

import pytest

__all__ = ["SHARD", "add_option", "parse_shard", "shard_key", "split"]

SHARD: Final = pytest.StashKey[tuple[int, int] | None]()
_FORM: Final = re.compile(r"(\d+)/(\d+)")


def add_option(group: pytest.OptionGroup) -> None:
    group.addoption(
        "--smux-shard",
        metavar="I/N",
        help="run only shard I of N (1 <= I <= N): a deterministic split of the selected "
        "cases, for CI job matrices; merge the shards' results with smux-conformance merge",
    )


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"2/4"`` -> ``(2, 4)``; None when not sharding.  Raises ValueError naming the option."""
    if text is None:
        return None
    match = _FORM.fullmatch(text.strip())
    if match is None or not 1 <= int(match[1]) <= int(match[2]):
        raise ValueError(f"--smux-shard={text!r}: use I/N with 1 <= I <= N, e.g. 2/4")
    return int(match[1]), int(match[2])


def shard_key(nodeid: str) -> str:
    """The test id from the case file on: ``test_length.py::test_x[go-v1-server]``."""
    path, sep, rest = nodeid.partition("::")
    return path.rsplit("/", 1)[-1] + sep + rest


def split(items: list[pytest.Item], index: int, count: int) -> tuple[list[int], list[int]]:
    """Positions in ``items`` of shard ``index`` of ``count``, and of the others."""
    order = sorted(range(len(items)), key=lambda i: shard_key(items[i].nodeid))
    mine = {position for rank, position in enumerate(order) if rank % count == index - 1}
    kept = [i for i in range(len(items)) if i in mine]
    dropped = [i for i in range(len(items)) if i not in mine]
    return kept, dropped


@pytest.hookimpl(trylast=True)  # after -k and -m have deselected what they do
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    shard = config.stash.get(SHARD, None)
    if shard is None:
        return
    kept, dropped = split(items, *shard)
    if dropped:
        config.hook.pytest_deselected(items=[items[i] for i in dropped])
    items[:] = [items[i] for i in kept]
