"""Broken: crashes at start with a traceback on stderr (rule 5)."""

from _contract import parse

parse()
raise RuntimeError("boom: the peer crashed at start")
