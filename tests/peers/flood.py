"""Broken: floods stdout without ever ending a line (rule 4)."""

import sys

from _contract import parse

parse()
chunk = b"x" * 65536
while True:
    sys.stdout.buffer.write(chunk)
