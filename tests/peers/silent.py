"""Broken: never prints LISTENING / CONNECTED (rules 5, 7)."""

from _contract import block_forever, parse

parse()
block_forever()
