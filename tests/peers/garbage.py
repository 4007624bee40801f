"""Broken: the first stdout line is not the contract's (rule 5)."""

from _contract import block_forever, parse

parse()
print("hello world", flush=True)
block_forever()
