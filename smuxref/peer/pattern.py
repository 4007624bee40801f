"""The SOURCE pattern of the contract (CONTRACT.md): byte[i] = i % 251.

A module of its own because both the commands and the exchanges send it, and the
commands module imports the exchanges one.
"""

from __future__ import annotations

__all__ = ["pattern"]

_PATTERN = bytes(i % 251 for i in range(251 * 261))  # 65511 bytes, a whole number of periods


def pattern(offset: int, n: int) -> bytes:
    """Bytes ``offset .. offset+n`` of the SOURCE pattern byte[i] = i % 251."""
    out = bytearray()
    start = offset % 251
    while n > 0:
        piece = _PATTERN[start : start + n]
        out += piece
        n -= len(piece)
        start = 0
    return bytes(out)
