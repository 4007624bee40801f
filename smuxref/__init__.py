"""smuxref: the reference Python implementation of the smux protocol, versions 1 and 2.

``import smuxref`` gives the pure codec and the sans-IO engine and nothing else: it
never imports asyncio or touches a socket.  The asyncio API lives in ``smuxref.aio``.
"""

from __future__ import annotations

from ._decoder import FrameDecoder
from ._frame import (
    HEADER_SIZE,
    INITIAL_PEER_WINDOW,
    MAX_PAYLOAD,
    Cmd,
    Frame,
    Upd,
    decode_frame,
    encode_raw,
)
from ._state import TRANSITIONS, StreamInput, StreamState
from .config import Config
from .engine import Engine
from .errors import (
    ConfigError,
    FlowControlError,
    FrameTooLargeError,
    GoAwayError,
    InvalidLengthError,
    InvalidVersionError,
    KeepAliveTimeoutError,
    ProtocolError,
    SessionClosedError,
    SmuxError,
    StreamClosedError,
    StreamIdError,
    TruncatedFrameError,
    UnknownCommandError,
    UsageError,
)
from .events import (
    DataReceived,
    Event,
    PingReceived,
    SessionEnded,
    StreamEnded,
    StreamOpened,
    WindowUpdated,
)

__version__ = "0.1.0"

__all__ = [
    "HEADER_SIZE",
    "INITIAL_PEER_WINDOW",
    "MAX_PAYLOAD",
    "TRANSITIONS",
    "Cmd",
    "Config",
    "ConfigError",
    "DataReceived",
    "Engine",
    "Event",
    "FlowControlError",
    "Frame",
    "FrameDecoder",
    "FrameTooLargeError",
    "GoAwayError",
    "InvalidLengthError",
    "InvalidVersionError",
    "KeepAliveTimeoutError",
    "PingReceived",
    "ProtocolError",
    "SessionClosedError",
    "SessionEnded",
    "SmuxError",
    "StreamClosedError",
    "StreamEnded",
    "StreamIdError",
    "StreamInput",
    "StreamOpened",
    "StreamState",
    "TruncatedFrameError",
    "UnknownCommandError",
    "Upd",
    "UsageError",
    "WindowUpdated",
    "__version__",
    "decode_frame",
    "encode_raw",
]
