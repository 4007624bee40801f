"""Known deviations per implementation, so that the gate fails only on *unexpected* results.

A real implementation has known, explained deviations from SPEC.md (Go's behaviour
changed across tags, SPEC.md section 13).  Failing the run on them forever would make the
gate useless, and deleting the cases would lose them; so an expectations file lists them
(BoGo's shim config, Chromium's expectations):

.. code-block:: json

    {
      "implementation": "github.com/xtaci/smux v1.0.7 (go-peer)",
      "peers": ["go@v1.0.7"],
      "expectations": [
        {"cases": "smux/4.3/*", "versions": [1], "roles": ["server"],
         "expect": "fail", "reason": "SPEC.md 13: LEN checks arrived in v1.5.56"}
      ]
    }

``peers`` (file level, optional): globs over peer names; the file applies to those peers
only (all peers when absent).  A peer's names are its id (``go``, ``exec:p.py``), its
``--peer`` text, and for Go its resolved tag (``go@v1.5.58`` for ``go``).  Each entry:
``cases`` (a glob or a list of globs over case ids, ``fnmatch`` rules), optional
``peers``/``versions``/``roles`` filters and ``variants`` (globs over a result's variant
text such as ``size=65535``, for a case whose parameters fare differently), ``expect``
(pass, fail, non_strict, unsupported, or racy: the implementation's outcome is a race
that its reason names, so a pass and a deviation are both accepted) and a mandatory
``reason``.  When several entries match a result, the last one wins.  A result not
covered by any entry is expected to pass.

Gate semantics (:func:`is_unexpected`): an error is always unexpected; unsupported,
inconclusive and not_run never are; a pass where a deviation was expected is an
*unexpected pass* (so files cannot rot);
non_strict is unexpected only under ``--smux-strict`` unless listed.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ..errors import ExpectationError
from ..peers.specs import PeerSpec
from ..peers.thirdparty import resolved_version
from .case import Verdict

__all__ = [
    "EXPECT_VALUES",
    "SHIPPED_DIR",
    "Expectation",
    "ExpectationFile",
    "Expectations",
    "Resolved",
    "is_expected_deviation",
    "is_unexpected",
    "peer_names",
]

SHIPPED_DIR: Final = Path(__file__).resolve().parents[1] / "expectations"
EXPECT_VALUES: Final = ("pass", "fail", "non_strict", "unsupported", "racy")

#: Verdicts each ``expect`` value accepts (non_strict under "pass" only without --smux-strict).
_NOT_JUDGED: Final = (Verdict.UNSUPPORTED, Verdict.INCONCLUSIVE, Verdict.NOT_RUN)
#: Inconclusive (and not_run) is accepted everywhere: it never breaks the gate by itself (its
#: prerequisite's own case carries the failure, see smuxref_conformance.judge.checks).
_ACCEPTS: Final = {
    "pass": frozenset({Verdict.PASS, Verdict.INFO, *_NOT_JUDGED}),
    "non_strict": frozenset({Verdict.NON_STRICT, *_NOT_JUDGED}),
    "fail": frozenset({Verdict.FAIL, Verdict.NON_STRICT, *_NOT_JUDGED}),
    "unsupported": frozenset(_NOT_JUDGED),
    # The implementation races with itself (its reason names the race): pass or deviation.
    "racy": frozenset({Verdict.PASS, Verdict.INFO, Verdict.FAIL, Verdict.NON_STRICT, *_NOT_JUDGED}),
}


def peer_names(spec: PeerSpec) -> tuple[str, ...]:
    """The names an expectations file may use for a peer (see the module docstring)."""
    names = [spec.id, spec.raw]
    if spec.kind == "go":
        names.append(f"go@{spec.tag}")
    if spec.kind == "thirdparty":
        name = spec.raw.partition("@")[0]
        names.append(f"{name}@{resolved_version(name, spec.tag)}")
    return tuple(dict.fromkeys(names))


def _globs(value: Any, where: str, key: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(g, str) and g for g in items):
        raise ExpectationError(f"{where}: {key!r} must be a non-empty string or list of strings")
    return tuple(items)


def _optional(entry: dict[str, Any], key: str, where: str, allowed: Iterable[Any]) -> Any:
    if key not in entry:
        return None
    value = entry[key]
    choices = tuple(allowed)
    if not isinstance(value, list) or not value or any(v not in choices for v in value):
        raise ExpectationError(f"{where}: {key!r} must be a non-empty list of {choices}")
    return tuple(value)


@dataclass(frozen=True)
class Expectation:
    """One entry: which results it covers, what they are expected to be, and why."""

    cases: tuple[str, ...]
    expect: str
    reason: str
    source: str  #: "FILE#INDEX", for messages and the report
    peers: tuple[str, ...] | None = None
    versions: tuple[int, ...] | None = None
    roles: tuple[str, ...] | None = None
    variants: tuple[str, ...] | None = None

    @classmethod
    def parse(cls, entry: Any, where: str) -> Expectation:
        if not isinstance(entry, dict):
            raise ExpectationError(f"{where}: an entry must be a JSON object")
        known = {"cases", "peers", "versions", "roles", "variants", "expect", "reason"}
        unknown = set(entry) - known
        if unknown:
            raise ExpectationError(f"{where}: unknown keys {sorted(unknown)}")
        if "cases" not in entry:
            raise ExpectationError(f"{where}: 'cases' is required")
        expect = entry.get("expect")
        if expect not in EXPECT_VALUES:
            raise ExpectationError(f"{where}: 'expect' must be one of {EXPECT_VALUES}")
        reason = entry.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise ExpectationError(f"{where}: 'reason' is mandatory (why, with SPEC.md section)")
        return cls(
            cases=_globs(entry["cases"], where, "cases"),
            expect=expect,
            reason=reason.strip(),
            source=where,
            peers=_globs(entry["peers"], where, "peers") if "peers" in entry else None,
            versions=_optional(entry, "versions", where, (1, 2)),
            roles=_optional(entry, "roles", where, ("server", "client")),
            variants=_globs(entry["variants"], where, "variants") if "variants" in entry else None,
        )

    def matches(
        self,
        case_id: str,
        names: Sequence[str],
        version: int | None,
        role: str | None,
        variant: str = "",
    ) -> bool:
        if not any(fnmatch.fnmatchcase(case_id, g) for g in self.cases):
            return False
        if self.variants is not None and not any(
            fnmatch.fnmatchcase(variant, g) for g in self.variants
        ):
            return False
        if self.peers is not None and not _any_name(names, self.peers):
            return False
        if self.versions is not None and version not in self.versions:
            return False
        return self.roles is None or role in self.roles


def _any_name(names: Sequence[str], globs: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(n, g) for n in names for g in globs)


@dataclass(frozen=True)
class ExpectationFile:
    path: Path
    implementation: str
    peers: tuple[str, ...] | None
    entries: tuple[Expectation, ...]
    sha256: str

    @classmethod
    def load(cls, path: Path) -> ExpectationFile:
        try:
            raw = path.read_bytes()
            data = json.loads(raw)
        except (OSError, ValueError) as exc:
            raise ExpectationError(f"{path}: cannot read expectations: {exc}") from None
        if not isinstance(data, dict):
            raise ExpectationError(f"{path}: the top level must be a JSON object")
        unknown = set(data) - {"implementation", "peers", "expectations", "comment"}
        if unknown:
            raise ExpectationError(f"{path}: unknown keys {sorted(unknown)}")
        implementation = data.get("implementation")
        if not isinstance(implementation, str) or not implementation.strip():
            raise ExpectationError(f"{path}: 'implementation' (a non-empty string) is required")
        entries = data.get("expectations")
        if not isinstance(entries, list):
            raise ExpectationError(f"{path}: 'expectations' must be a list (may be empty)")
        peers = _globs(data["peers"], str(path), "peers") if "peers" in data else None
        return cls(
            path=path,
            implementation=implementation,
            peers=peers,
            entries=tuple(Expectation.parse(e, f"{path.name}#{i}") for i, e in enumerate(entries)),
            sha256=hashlib.sha256(raw).hexdigest(),
        )

    def applies_to(self, names: Sequence[str]) -> bool:
        return self.peers is None or _any_name(names, self.peers)

    def describe(self) -> dict[str, Any]:
        return {
            "file": str(self.path),
            "implementation": self.implementation,
            "peers": list(self.peers) if self.peers is not None else None,
            "entries": len(self.entries),
            "sha256": self.sha256,
        }


@dataclass(frozen=True)
class Resolved:
    """The expectation in force for one result."""

    expect: str = "pass"
    reason: str = ""
    source: str = ""


class Expectations:
    """All loaded files; :meth:`resolve` finds the expectation for one result."""

    def __init__(self, files: Sequence[ExpectationFile] = ()) -> None:
        self.files = list(files)

    @classmethod
    def from_paths(cls, values: Sequence[str] | None) -> Expectations:
        """``--smux-expectations`` values: files or directories (their ``*.json``);
        ``none`` for no expectations; nothing given means the shipped directory."""
        if not values:
            values = [str(SHIPPED_DIR)]
        paths: list[Path] = []
        for value in values:
            if value == "none":
                continue
            path = Path(value)
            if path.is_dir():
                paths += sorted(path.glob("*.json"))
            elif path.is_file():
                paths.append(path)
            else:
                raise ExpectationError(f"--smux-expectations={value}: no such file or directory")
        return cls([ExpectationFile.load(p) for p in paths])

    def resolve(
        self,
        case_id: str,
        names: Sequence[str],
        version: int | None,
        role: str | None,
        variant: str = "",
    ) -> Resolved:
        """The expectation for one result; ``names`` from :func:`peer_names`."""
        found = Resolved()
        for file in self.files:
            if not file.applies_to(names):
                continue
            for entry in file.entries:
                if entry.matches(case_id, names, version, role, variant):
                    found = Resolved(entry.expect, entry.reason, entry.source)
        return found

    def files_for(self, spec: PeerSpec) -> list[ExpectationFile]:
        names = peer_names(spec)
        return [f for f in self.files if f.applies_to(names)]

    def stale_globs(self, case_ids: Iterable[str]) -> list[str]:
        """Entries with a ``cases`` glob matching none of ``case_ids`` (the lint)."""
        ids = list(case_ids)
        stale = []
        for file in self.files:
            for entry in file.entries:
                for glob in entry.cases:
                    if not any(fnmatch.fnmatchcase(i, glob) for i in ids):
                        stale.append(f"{entry.source}: {glob!r} matches no case")
        return stale


def is_unexpected(actual: Verdict, expect: str, *, strict: bool) -> bool:
    """Whether ``actual`` breaks the gate given the expectation ``expect``."""
    if actual is Verdict.ERROR:
        return True
    if actual is Verdict.NON_STRICT and expect == "pass":
        return strict
    return actual not in _ACCEPTS[expect]


def is_expected_deviation(actual: Verdict, expect: str) -> bool:
    """A fail or non_strict that the expectation names: reported like an xfail."""
    return (
        actual in (Verdict.FAIL, Verdict.NON_STRICT)
        and expect in ("fail", "non_strict", "racy")
        and (actual in _ACCEPTS[expect])
    )
