"""Stop a mutant's run at its first new inconclusive result (``-p`` plugin of the runner).

An inconclusive result is a claim: "the peer fails the case I name".  The gate settles
it once every result is known (:func:`~smuxref_conformance.judge.prerequisites.confirm_blames`):
the named case fails, or it passes and the inconclusive becomes a fail.  Either way a
mutant that makes a case inconclusive is caught as soon as the named case has run; until
then ``-x`` sees no failure and would run every covering case (minutes for each such
mutant).  So the runner stops here, runs the named case next, and settles the claim
itself (:mod:`.runner`).  Results the unmutated peer gives as well, and claims already
settled without a verdict, do not stop the run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Final

import pytest

__all__ = ["STOP_ENV", "pytest_runtest_logreport", "pytest_sessionstart"]

#: JSON: {"file": where to write the stop, "nodes": node ids to ignore, "blames": ids
#: of named cases to ignore}.
STOP_ENV: Final = "SMUXREF_MUTATION_STOP"
#: The running session (one per process): the report hook has no other way to it.
_RUNNING: list[pytest.Session] = []


def pytest_sessionstart(session: pytest.Session) -> None:
    _RUNNING[:] = [session]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    record = getattr(report, "smux", None)
    settings = os.environ.get(STOP_ENV)
    if not settings or not isinstance(record, dict) or record.get("actual") != "inconclusive":
        return
    blame = record.get("blame")
    stop = json.loads(settings)
    if not blame or report.nodeid in stop["nodes"] or blame in stop["blames"]:
        return
    Path(stop["file"]).write_text(json.dumps({"nodeid": report.nodeid, "blame": blame}))
    for session in _RUNNING:
        session.shouldstop = f"inconclusive, relies on {blame}: the runner runs that next"
