#!/usr/bin/env python3
"""Import the conformance suite as ``smuxref_conformance``, the name the wheel installs.

The repository keeps the suite in ``conformance/``; ``smuxref_conformance`` is a
symbolic link to it, so the checkout and an installed wheel import the same module
names and no top-level ``conformance`` module (a generic name another project may well
use) is ever installed.  This script moves code and documents over to that name and can
be run again at any time: on a branch made before the rename, it rewrites the imports
that branch added (``tests/test_adoption.py`` fails on any import of ``conformance``).

What it rewrites, in tracked *.py, *.md, *.ini, *.toml, *.sh and *.yml files (data such as
vectors/ stays as recorded):

* dotted module paths: ``conformance.plugin`` -> ``smuxref_conformance.plugin``, in
  imports, strings (``-p``, entry points) and ``python -m`` lines;
* ``from conformance import x`` and ``import conformance``;
* in conformance/cases/, imports relative to the suite (``from ..wire import``), which
  would load a second copy of the suite's modules when pytest imports the cases from
  the folder, as ``conformance.cases.*``.

Paths (``conformance/CONTRACT.md``, ``pytest conformance``) keep naming the folder.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAME = "smuxref_conformance"
SUFFIXES = {".py", ".md", ".ini", ".toml", ".sh", ".yml", ".yaml", ".cfg"}
SKIP = ("vectors/sessions/", "scripts/rename-suite-package.py")

DOTTED = re.compile(r"(?<![\w/.-])conformance(?=\.[A-Za-z_])")
FROM_PACKAGE = re.compile(r"^(\s*)from conformance import ", re.M)
IMPORT_PACKAGE = re.compile(r"^(\s*)import conformance\b", re.M)
RELATIVE_TO_SUITE = re.compile(r"^(\s*)from \.\.(\w)", re.M)
RELATIVE_SUITE_ITSELF = re.compile(r"^(\s*)from \.\. import ", re.M)


def rewrite(path: Path, text: str) -> str:
    text = DOTTED.sub(NAME, text)
    text = FROM_PACKAGE.sub(rf"\1from {NAME} import ", text)
    text = IMPORT_PACKAGE.sub(rf"\1import {NAME}", text)
    rel = path.relative_to(ROOT).as_posix()
    if rel.startswith("conformance/cases/") and path.suffix == ".py":
        text = RELATIVE_TO_SUITE.sub(rf"\1from {NAME}.\2", text)
        text = RELATIVE_SUITE_ITSELF.sub(rf"\1from {NAME} import ", text)
    if rel == "pyproject.toml":
        text = text.replace('include = ["smuxref*", "conformance*"]', 'include = ["smuxref*"]')
        text = re.sub(r"^conformance = \[", f"{NAME} = [", text, flags=re.M)
        text = text.replace('"smuxref", "conformance", "tests"', f'"smuxref", "{NAME}", "tests"')
    return text


def tracked_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    files = [ROOT / p for p in listed.split("\0") if p]
    return [
        f
        for f in files
        if f.suffix in SUFFIXES
        and not f.is_symlink()
        and f.is_file()
        and not f.relative_to(ROOT).as_posix().startswith(SKIP)
        and not f.relative_to(ROOT).as_posix().startswith(f"{NAME}/")
    ]


def main() -> int:
    link = ROOT / NAME
    if not link.is_symlink():
        link.symlink_to("conformance", target_is_directory=True)
        print(f"created {NAME} -> conformance")
    changed = 0
    for path in tracked_files():
        text = path.read_text()
        new = rewrite(path, text)
        if new != text:
            path.write_text(new)
            changed += 1
            print(f"rewrote {path.relative_to(ROOT)}")
    print(f"{changed} files rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
