"""Harness errors in JUnit XML are ``<error>``, never ``<failure>``.

pytest's own ``--junitxml`` writer files every failed *call* as a ``<failure>``; only
setup and teardown failures become ``<error>``.  A harness error (a contract violation,
a HarnessError, a bug in a case) raised while a case runs would then look like a
protocol failure of the peer - the confusion the verdict model exists to avoid.  After
pytest has written the file, the test cases whose verdict is ``error`` get their
``<failure>`` element renamed ``<error>``; nothing else is touched.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path

from _pytest.junitxml import mangle_test_address

__all__ = ["mark_errors"]


def _address(nodeid: str, prefix: str | None) -> tuple[str, str]:
    """(classname, name) as pytest's junitxml writes them for ``nodeid``."""
    names = mangle_test_address(nodeid)
    classnames = names[:-1]
    if prefix:
        classnames.insert(0, prefix)
    return ".".join(classnames), names[-1]


def mark_errors(path: Path, nodeids: Iterable[str], prefix: str | None = None) -> int:
    """Rename ``<failure>`` to ``<error>`` for ``nodeids``; return how many were renamed."""
    wanted = {_address(n, prefix) for n in nodeids}
    if not wanted or not path.is_file():
        return 0
    tree = ET.parse(path)
    renamed = 0
    for testcase in tree.iter("testcase"):
        if (testcase.get("classname", ""), testcase.get("name", "")) not in wanted:
            continue
        for child in testcase:
            if child.tag == "failure":
                child.tag = "error"
                renamed += 1
    if renamed:
        for suite in tree.iter("testsuite"):
            errors = sum(1 for _ in suite.iter("error"))
            failures = sum(1 for _ in suite.iter("failure"))
            suite.set("errors", str(errors))
            suite.set("failures", str(failures))
        tree.write(path, encoding="utf-8", xml_declaration=True)
    return renamed
