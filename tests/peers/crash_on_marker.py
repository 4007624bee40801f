"""The reference peer, except that it exits with status 3 as soon as it receives the bytes
``CRASH-NOW`` (anywhere in what it reads): a crash the oracle must call CRASHED."""

import os
import sys

from smuxref import engine
from smuxref.peer import main

_receive = engine.Engine.receive_data


def _receive_or_crash(self: engine.Engine, data: bytes | bytearray | memoryview) -> object:
    if b"CRASH-NOW" in bytes(data):
        os._exit(3)
    return _receive(self, data)


engine.Engine.receive_data = _receive_or_crash  # type: ignore[assignment,method-assign]
sys.exit(main())
