"""Reading and writing the codec vector files (``vectors/frames.json``, ``vectors/promoted.json``).

Wycheproof's files renumber ``tcId`` between releases, and its users complain
(C2SP/x509-limbo #87).  Here a ``tcId`` is never renumbered or reused: a regenerated
vector keeps the id of the vector with the same group and bytes, a new one takes the
next id above every id ever used in either file, and a removed one is listed in
``retiredTcIds`` so that its id stays taken.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from .codec_rules import NOTES, Receiver, classify

__all__ = [
    "FRAMES_SCHEMA",
    "Case",
    "build_document",
    "dumps",
    "group_key",
    "iter_tests",
    "load",
    "next_tc_id",
    "promote",
    "write",
]

FRAMES_SCHEMA: Final = "schema/frames.schema.json"
GROUP_TYPE: Final = "FrameDecodeTest"

Key = tuple[int, str, int, str]


@dataclass(frozen=True, slots=True)
class Case:
    """One vector before it has an id: the bytes, why they exist, and extra flags."""

    rx: Receiver
    data: bytes
    comment: str
    flags: tuple[str, ...] = ()


def group_key(group: dict[str, Any]) -> tuple[int, str, int]:
    return (group["version"], group["receiverRole"], group["receiverMaxFrameSize"])


def _key(rx: Receiver, hex_: str) -> Key:
    return (rx.version, rx.role, rx.max_frame_size, hex_)


def load(path: Path) -> dict[str, Any] | None:
    """The parsed vector file, or None when it does not exist yet."""
    if not path.exists():
        return None
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def dumps(doc: dict[str, Any]) -> str:
    """The file text: keys in insertion order, one-space indent, a final newline."""
    return json.dumps(doc, indent=1) + "\n"


def write(path: Path, doc: dict[str, Any]) -> None:
    path.write_text(dumps(doc))


def iter_tests(doc: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Every ``(group, test)`` of a vector document."""
    for group in doc["testGroups"]:
        for test in group["tests"]:
            yield group, test


def _used_ids(docs: Iterable[dict[str, Any] | None]) -> set[int]:
    used: set[int] = set()
    for doc in docs:
        if doc is None:
            continue
        used.update(doc.get("retiredTcIds", []))
        used.update(test["tcId"] for _, test in iter_tests(doc))
    return used


def next_tc_id(docs: Iterable[dict[str, Any] | None]) -> int:
    """One above every id used or retired in ``docs``."""
    return max(_used_ids(docs), default=0) + 1


def make_test(tc_id: int, case: Case, go: dict[str, str] | None = None) -> dict[str, Any]:
    """The JSON test object for ``case`` (result, frames and error from the rules)."""
    outcome = classify(case.data, case.rx)
    flags = list(case.flags)
    flags += [flag for flag in outcome.flags if flag not in flags]
    unknown = [flag for flag in flags if flag not in NOTES]
    if unknown:
        raise ValueError(f"flags without a note: {unknown}")
    test: dict[str, Any] = {
        "tcId": tc_id,
        "comment": case.comment,
        "flags": flags,
        "hex": case.data.hex(),
        "result": outcome.result,
        "frames": outcome.frames,
    }
    if outcome.error is not None:
        test["error"] = outcome.error
    if outcome.strict_error is not None:
        test["strictError"] = outcome.strict_error
    if go:
        test["go"] = dict(sorted(go.items()))
    return test


def build_document(
    cases: list[Case],
    previous: dict[str, Any] | None,
    others: Iterable[dict[str, Any] | None],
    header: list[str],
) -> dict[str, Any]:
    """A vector document for ``cases`` that keeps the ids and Go results of ``previous``.

    ``others`` are the other vector files whose ids must not be reused.
    """
    old: dict[Key, dict[str, Any]] = {}
    retired: set[int] = set(previous.get("retiredTcIds", [])) if previous else set()
    if previous is not None:
        for group, test in iter_tests(previous):
            rx = Receiver.of_group(group)
            old[_key(rx, test["hex"])] = test
    others = list(others)
    next_id = next_tc_id([previous, *others])
    groups: dict[Receiver, list[dict[str, Any]]] = {}
    seen: set[Key] = set()
    for case in cases:
        key = _key(case.rx, case.data.hex())
        if key in seen:
            raise ValueError(f"duplicate vector in group {case.rx}: {case.data.hex()}")
        seen.add(key)
        prior = old.pop(key, None)
        if prior is not None:
            test = make_test(prior["tcId"], case, prior.get("go"))
        else:
            test = make_test(next_id, case)
            next_id += 1
        groups.setdefault(case.rx, []).append(test)
    retired.update(test["tcId"] for test in old.values())
    return {
        "schema": FRAMES_SCHEMA,
        "protocol": "smux",
        "numberOfTests": len(seen),
        "header": header,
        "notes": NOTES,
        "retiredTcIds": sorted(retired),
        "testGroups": [
            {
                "type": GROUP_TYPE,
                "version": rx.version,
                "receiverRole": rx.role,
                "receiverMaxFrameSize": rx.max_frame_size,
                "tests": tests,
            }
            for rx, tests in groups.items()
        ],
    }


PROMOTED_HEADER: Final = [
    "Codec vectors promoted from failures the property-based tests found.",
    "Appended by `python -m smuxref_conformance.record promote`; never regenerated or renumbered.",
    "Same format and schema as frames.json; tcIds are unique across both files.",
]


def promote(
    data: bytes,
    comment: str,
    rx: Receiver,
    promoted_path: Path,
    frames_path: Path,
) -> dict[str, Any]:
    """Append ``data`` as a new vector to ``promoted_path`` and return the new test."""
    doc = load(promoted_path)
    if doc is None:
        doc = {
            "schema": FRAMES_SCHEMA,
            "protocol": "smux",
            "numberOfTests": 0,
            "header": PROMOTED_HEADER,
            "notes": NOTES,
            "retiredTcIds": [],
            "testGroups": [],
        }
    for group, test in iter_tests(doc):
        if Receiver.of_group(group) == rx and test["hex"] == data.hex():
            raise ValueError(f"already promoted as tcId {test['tcId']}")
    tc_id = next_tc_id([doc, load(frames_path)])
    test = make_test(tc_id, Case(rx, data, comment, ("Promoted",)))
    for group in doc["testGroups"]:
        if Receiver.of_group(group) == rx:
            group["tests"].append(test)
            break
    else:
        doc["testGroups"].append(
            {
                "type": GROUP_TYPE,
                "version": rx.version,
                "receiverRole": rx.role,
                "receiverMaxFrameSize": rx.max_frame_size,
                "tests": [test],
            }
        )
    doc["notes"] = NOTES
    doc["numberOfTests"] = sum(1 for _ in iter_tests(doc))
    write(promoted_path, doc)
    return test
