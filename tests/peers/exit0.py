"""Broken: exits 0 at once, printing nothing (rules 5, 7)."""

from _contract import parse

parse()
