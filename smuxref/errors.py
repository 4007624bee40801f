"""The one error hierarchy of smuxref.

smux has no error frames: the only thing a receiver can do about a bad frame is to
stop reading or to drop the connection.  The exception class is therefore the whole
diagnosis, and it is kept small and precise::

    SmuxError
     ├─ ProtocolError               the remote peer broke the protocol (carries the header)
     │   ├─ InvalidVersionError     VER byte is not the session's version
     │   ├─ UnknownCommandError     CMD byte is not a command of that version (UPD in v1 too)
     │   ├─ InvalidLengthError      LEN is not 0 for SYN/FIN/NOP, not 8 for UPD
     │   ├─ FrameTooLargeError      LEN above the decoder's limit
     │   ├─ TruncatedFrameError     the byte stream ended inside a header or payload
     │   ├─ StreamIdError           a SYN the local hardening options refuse
     │   └─ FlowControlError        a UPD acknowledged more than was sent
     ├─ UsageError                  the local application asked for something impossible
     │   ├─ ConfigError             a Config field broke a rule (names both)
     │   ├─ StreamClosedError       write after close_write/close, unknown stream id
     │   └─ GoAwayError             stream ids are exhausted (Go's ErrGoAway)
     └─ SessionClosedError          the session is over (transport gone, closed, timed out)
         └─ KeepAliveTimeoutError   nothing arrived during a keepalive timeout period

Remote violations and local misuse never share a class, so callers can tell "the peer
is broken" from "my code is broken" with one ``except``.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "FlowControlError",
    "FrameTooLargeError",
    "GoAwayError",
    "InvalidLengthError",
    "InvalidVersionError",
    "KeepAliveTimeoutError",
    "ProtocolError",
    "SessionClosedError",
    "SmuxError",
    "StreamClosedError",
    "StreamIdError",
    "TruncatedFrameError",
    "UnknownCommandError",
    "UsageError",
]


class SmuxError(Exception):
    """Base class of every error smuxref raises on purpose."""


class ProtocolError(SmuxError):
    """The remote peer sent something the protocol forbids.

    ``header`` holds the offending 8 header bytes (or as many as arrived), ``field`` names
    the header field that is wrong (``"version"``, ``"cmd"``, ``"length"``, ``"sid"`` or a
    UPD payload field), and ``spec`` the SPEC.md section that states the rule.
    """

    field: str = ""
    spec: str = ""

    def __init__(self, message: str, *, header: bytes = b"", field: str | None = None) -> None:
        super().__init__(message)
        self.header = bytes(header)
        if field is not None:
            self.field = field

    def __str__(self) -> str:
        text = super().__str__()
        if self.header:
            text += f" [header {self.header.hex(' ')}]"
        return text


class InvalidVersionError(ProtocolError):
    field = "version"
    spec = "4.1"


class UnknownCommandError(ProtocolError):
    field = "cmd"
    spec = "4.2"


class InvalidLengthError(ProtocolError):
    field = "length"
    spec = "4.3"


class FrameTooLargeError(ProtocolError):
    field = "length"
    spec = "6.2"


class TruncatedFrameError(ProtocolError):
    field = "length"
    spec = "4.5"


class StreamIdError(ProtocolError):
    field = "sid"
    spec = "5.4"


class FlowControlError(ProtocolError):
    field = "consumed"
    spec = "9.4"


class UsageError(SmuxError):
    """The local application misused the API; the peer did nothing wrong."""


class ConfigError(UsageError, ValueError):
    """A configuration value breaks a rule; ``field`` and ``rule`` say which."""

    def __init__(self, field: str, rule: str, value: object) -> None:
        super().__init__(f"invalid config: {field}={value!r}: {rule}")
        self.field = field
        self.rule = rule
        self.value = value


class StreamClosedError(UsageError):
    """The stream cannot take this operation any more (closed, half-closed, unknown)."""


class GoAwayError(UsageError):
    """No stream id is left on this session; open a new connection (Go's ErrGoAway)."""


class SessionClosedError(SmuxError, ConnectionError):
    """The session has ended; ``cause`` tells why when it is known."""

    def __init__(self, message: str = "session closed", cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.cause = cause


class KeepAliveTimeoutError(SessionClosedError):
    """No frame arrived during a whole keepalive timeout period."""
