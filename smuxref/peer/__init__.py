"""The reference peer: the conformance contract (conformance/CONTRACT.md) on smuxref.aio.

Run it as ``python -m smuxref.peer --role server --addr 127.0.0.1:0 --version 2``.
"""

from __future__ import annotations

from .commands import serve_session
from .options import PeerOptions, parse_options
from .program import main

__all__ = ["PeerOptions", "main", "parse_options", "serve_session"]
