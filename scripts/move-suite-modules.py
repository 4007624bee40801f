#!/usr/bin/env python3
"""Move a branch made before conformance/ had subpackages over to the new module names.

The suite's flat modules moved into subpackages that follow its two chains
(``smuxref_conformance.pool`` is ``smuxref_conformance.peers.pool`` now, ``verdict`` was
split into ``judge.case`` and ``judge.checks``, every exception is in ``errors``; the
whole table is :data:`MOVES` and :data:`NAME_HOME`).  After rebasing such a branch
(git follows the renamed files), run this from the repository root: it rewrites, in
tracked *.py, *.md, *.ini, *.toml, *.sh and *.yml files,

* dotted module paths (imports, ``-p`` and ``python -m`` lines, strings, docs);
* ``from X import a, b`` where some names now live elsewhere, into one import per home;
* relative imports in the suite that still point at a module's old place;
* paths such as ``conformance/pool.py``.

It can be run again at any time; on a tree already moved it changes nothing.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PKG = "smuxref_conformance"

MOVES = {
    "access": "plugin.access",
    "aiosession": "plugin.smux_session",
    "blame": "judge.blame",
    "capture": "peers.capture",
    "cmdline": "peers.cmdline",
    "collector": "plugin.collector",
    "dockerpeer": "peers.docker",
    "expectations": "judge.expectations",
    "gate": "plugin.gate",
    "gopeer": "peers.go_build",
    "hypothesis_db": "stateful.database",
    "hypothesis_profiles": "stateful.profiles",
    "lifecycle": "peers.lifecycle",
    "merge": "report.merge",
    "model": "stateful.model",
    "oracle": "judge.oracle",
    "peerinfo": "peers.info",
    "peers": "peers.specs",
    "plugin": "plugin",  # plugin.py -> plugin/__init__.py
    "pool": "peers.pool",
    "run": "peers.run_context",
    "shard": "plugin.shard",
    "stateful": "stateful.machine",
    "stateful_io": "stateful.peer_io",
    "thirdparty": "peers.thirdparty",
    "verdict": "judge.checks",
}

# Names that leave their module: (old absolute module, name) -> new absolute module.
_CASE = f"{PKG}.judge.case"
_ERR = f"{PKG}.errors"
NAME_HOME: dict[tuple[str, str], str] = {}
for n in ["Level", "Verdict", "CaseMeta", "case", "case_meta", "Grade", "GRADES", "SEVERITY"]:
    NAME_HOME[(f"{PKG}.judge.checks", n)] = _CASE
for n in ["CheckFailed", "PreconditionFailed", "NotRun"]:
    NAME_HOME[(f"{PKG}.judge.checks", n)] = _ERR
NAME_HOME[(f"{PKG}.judge.checks", "smux_check")] = f"{PKG}.plugin.fixtures"
for n in ["WireAssertion", "FrameTimeout", "UnexpectedFrame", "ConnectionNotClosed"]:
    NAME_HOME[(f"{PKG}.wire", n)] = _ERR
NAME_HOME[(f"{PKG}.stateful.model", "Violation")] = _ERR
NAME_HOME[(f"{PKG}.stateful.peer_io", "SequenceFailure")] = _ERR
NAME_HOME[(f"{PKG}.stateful.peer_io", "DifferentialMismatch")] = _ERR
NAME_HOME[(f"{PKG}.judge.expectations", "ExpectationError")] = _ERR
NAME_HOME[(f"{PKG}.recording.replay", "NotReplayable")] = _ERR
NAME_HOME[(f"{PKG}.recording.scenarios", "ScenarioError")] = _ERR
NAME_HOME[(f"{PKG}.stateful.model", "section_label")] = _ERR
NAME_HOME[(f"{PKG}.judge.checks", "Reaction")] = f"{PKG}.judge.oracle"
NAME_HOME[(f"{PKG}.judge.checks", "_reaction_table")] = _CASE
NAME_HOME[(f"{PKG}.plugin.gate", "classify_exception")] = f"{PKG}.judge.classify"
for n in ["PEER_STDERR", "OWN_STDERR"]:
    NAME_HOME[(f"{PKG}.plugin.access", n)] = f"{PKG}.judge.checks"
    NAME_HOME[(f"{PKG}.plugin", n)] = f"{PKG}.judge.checks"

#: Names that changed with their move: (new home, old name) -> new name.
RENAMES: dict[tuple[str, str], str] = {
    (_ERR, "Violation"): "ModelViolation",
    (_CASE, "_reaction_table"): "reaction_table",
}


def new_mod(old: str) -> str:
    """Absolute old module name -> absolute new module name."""
    if old == PKG or not old.startswith(PKG + "."):
        return old
    rest = old[len(PKG) + 1 :]
    head, _, tail = rest.partition(".")
    if head in MOVES and not tail:
        return f"{PKG}.{MOVES[head]}"
    return old


def file_module(rel: str) -> str:
    """conformance/a/b.py -> smuxref_conformance.a.b (package for __init__)."""
    parts = rel[len("conformance/") :].removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([PKG, *parts])


def file_package(rel: str) -> str:
    mod = file_module(rel)
    return mod if rel.endswith("__init__.py") else mod.rpartition(".")[0]


def relative(target: str, pkg: str) -> str:
    t, p = target.split("."), pkg.split(".")
    common = 0
    while common < min(len(t), len(p)) and t[common] == p[common]:
        common += 1
    dots = len(p) - common + 1
    return "." * dots + ".".join(t[common:])


IMPORT = re.compile(
    r"^(?P<indent>[ \t]*)from (?P<mod>\.*[\w.]*) import (?P<names>\([^)]*\)|[^\n]*(?:\\\n[^\n]*)*)",
    re.M,
)


def split_names(text: str) -> list[str]:
    text = text.strip()
    if text.startswith("("):
        text = text[1:-1]
    body = []
    for line in text.replace("\\\n", " ").splitlines():
        body.append(line.split("#", 1)[0])
    return [n.strip() for n in " ".join(body).split(",") if n.strip()]


def rewrite_imports(text: str, old_pkg: str | None, new_pkg: str | None) -> str:
    renamed: dict[str, str] = {}

    def sub(m: re.Match[str]) -> str:
        mod = m["mod"]
        indent = m["indent"]
        if mod.startswith("."):
            if old_pkg is None:
                return m[0]
            dots = len(mod) - len(mod.lstrip("."))
            base = old_pkg.split(".")
            base = base[: len(base) - dots + 1]
            rest = mod.lstrip(".")
            absolute = ".".join(base + ([rest] if rest else []))
            is_relative = True
        elif mod == PKG or mod.startswith(PKG + "."):
            absolute = mod
            is_relative = False
        else:
            return m[0]
        names = split_names(m["names"])
        groups: dict[str, list[str]] = {}
        if not mod.lstrip("."):  # from . import a, b  (modules of the package)
            for name in names:
                plain = name.split(" as ")[0].strip()
                target = new_mod(f"{absolute}.{plain}")
                if _exists(f"{absolute}.{plain}") and "." in absolute:
                    target = f"{absolute}.{plain}"
                parent, _, leaf = target.rpartition(".")
                alias = name if leaf == plain else f"{leaf} as {plain}"
                groups.setdefault(parent, []).append(alias)
        else:
            moved = absolute != new_mod(absolute) and not all(
                _exists(f"{absolute}.{n.split(' as ')[0].strip()}") for n in names
            )
            target = new_mod(absolute) if is_relative and moved else absolute
            for name in names:
                plain = name.split(" as ")[0].strip()
                home = NAME_HOME.get((target, plain), target)
                entry = name
                if (home, plain) in RENAMES:
                    renamed[plain] = RENAMES[home, plain]
                    entry = name.replace(plain, RENAMES[home, plain], 1)
                groups.setdefault(home, []).append(entry)
        wheres = [
            relative(target, new_pkg) if is_relative and new_pkg else target for target in groups
        ]
        if wheres == [mod]:
            return m[0]  # already where it belongs: leave the statement as written
        comment = ""
        if "\n" not in m["names"] and "#" in m["names"]:
            comment = "  #" + m["names"].split("#", 1)[1]
        lines = []
        for where, group in zip(wheres, groups.values(), strict=True):
            joined = ", ".join(group)
            line = f"{indent}from {where} import {joined}"
            if len(line) > 99:
                inner = "".join(f"{indent}    {n},\n" for n in group)
                line = f"{indent}from {where} import (\n{inner}{indent})"
            lines.append(line)
        return "\n".join(lines) + comment

    text = IMPORT.sub(sub, text)
    for old, new in renamed.items():
        text = re.sub(rf"(?<![\w.]){re.escape(old)}\b", new, text)
    return text


#: Modules of the packages that took an old module's name (peers, stateful, plugin):
#: ``smuxref_conformance.peers.pool`` is already moved, ``smuxref_conformance.peers`` not.
SUBMODULES = (
    r"(?!\.(?:"
    + "|".join(
        sorted({v.rpartition(".")[2] for v in MOVES.values()} | {"fixtures", "classify", "case"})
    )
    + r")\b)"
)
DOTTED = re.compile(
    rf"\b{PKG}\.(" + "|".join(sorted(MOVES, key=len, reverse=True)) + r")\b" + SUBMODULES
)


def rewrite_dotted(text: str) -> str:
    # smuxref_conformance.old -> smuxref_conformance.new, also followed by .attr
    def sub(m: re.Match[str]) -> str:
        return f"{PKG}.{MOVES[m[1]]}"

    return DOTTED.sub(sub, text)


PATHS = re.compile(r"\bconformance/(" + "|".join(sorted(MOVES, key=len, reverse=True)) + r")\.py\b")


def rewrite_paths(text: str) -> str:
    def sub(m: re.Match[str]) -> str:
        new = MOVES[m[1]].replace(".", "/")
        if m[1] == "plugin":
            return "conformance/plugin/__init__.py"
        return f"conformance/{new}.py"

    return PATHS.sub(sub, text)


def _exists(module: str) -> bool:
    rel = module.split(".")[1:]
    base = ROOT / "conformance" / Path(*rel) if rel else ROOT / "conformance"
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def old_package(rel: str) -> str:
    """Where a suite file's relative imports were written for: its own package when
    they resolve there, else the suite's top (the file moved down from there)."""
    package = file_package(rel)
    text = (ROOT / rel).read_text()
    for m in re.finditer(r"^\s*from (\.+)(\w[\w.]*) import", text, re.M):
        dots, name = len(m[1]), m[2]
        base = package.split(".")[: len(package.split(".")) - dots + 1]
        if not _exists(".".join([*base, name])) and name.split(".")[0] in MOVES:
            return ".".join(package.split(".")[:-1]) if "." in package else package
    return package


def main() -> int:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    changed = 0
    for rel in listed.stdout.decode().split("\0"):
        path = ROOT / rel
        if not rel or rel.startswith(("vectors/", "conformance/hypothesis-db/", "scripts/")):
            continue
        if path.is_symlink() or not path.is_file():
            continue
        if path.suffix not in {".py", ".md", ".ini", ".toml", ".sh", ".yml", ".yaml", ".cfg"}:
            continue
        text = path.read_text()
        new = rewrite_dotted(text)
        if path.suffix == ".py":
            if rel.startswith("conformance/"):
                new = rewrite_imports(new, old_package(rel), file_package(rel))
            else:
                new = rewrite_imports(new, None, None)
        new = rewrite_paths(new)
        if new != text:
            path.write_text(new)
            changed += 1
            print(f"rewrote {rel}")
    print(f"{changed} files rewritten; now run ruff check --fix and ruff format")
    return 0


if __name__ == "__main__":
    sys.exit(main())
