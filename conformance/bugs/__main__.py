"""``python -m smuxref_conformance.bugs --bug NAME ...``: the reference peer with switches on.

The same program as ``python -m smuxref.peer`` (same options, same contract), built
with the engine of the named switches; the shipped peer offers no ``--bug``.
"""

from __future__ import annotations

import sys

from smuxref.peer import main

from . import BUGS, engine_class

if __name__ == "__main__":
    sys.exit(main(bug_names=sorted(BUGS), engine_for=engine_class))
