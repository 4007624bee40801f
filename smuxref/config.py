"""Session configuration, validated the way Go's VerifyConfig does (SPEC.md 3.1-3.3).

Times are in seconds (floats), unlike Go's ``time.Duration``; the contract's millisecond
options are converted by the peer program.  Validation runs in Go's order
(v1.5.57:mux.go:74-107) so that the first rule reported for a bad config is the one Go
would report, and every error names the field and the rule.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._frame import MAX_PAYLOAD, VERSIONS
from .errors import ConfigError

__all__ = ["MAX_INT32", "Config"]

MAX_INT32 = 2**31 - 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """Everything in Go's ``smux.Config`` plus smuxref's hardening options.

    Defaults are Go v1.5.57's ``DefaultConfig()`` (v1.5.57:mux.go:61-71); the hardening
    options default to Go's behaviour too, so a default smuxref session is wire-identical
    to a default Go session.
    """

    #: Protocol version, 1 or 2.  There is no negotiation: both ends must agree.
    version: int = 1
    #: No NOPs are sent and the session never times out (Go's KeepAliveDisabled).
    keepalive_disabled: bool = False
    #: Seconds between NOP frames.
    keepalive_interval: float = 10.0
    #: The session dies when no frame arrived during a period this long.
    keepalive_timeout: float = 30.0
    #: Largest PSH payload this side sends; it accepts up to 65535 whatever this is.
    max_frame_size: int = 32768
    #: Session-wide bound on received bytes the application has not read yet.
    max_receive_buffer: int = 4194304
    #: Version 2: the window this side advertises in its UPD frames.
    max_stream_buffer: int = 65536
    #: Streams opened by the peer and not yet accepted before frame processing stalls
    #: (Go's fixed accept backlog is 1024).
    accept_backlog: int = 1024
    #: Treat a SYN with this side's own id parity, or id 0, as a protocol error (Go
    #: accepts any id).
    reject_own_parity_syn: bool = False

    def __post_init__(self) -> None:
        validate(self)


def _check_int(field: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(field, "must be an integer", value)
    return value


def _check_seconds(field: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(field, "must be a number of seconds", value)
    return value


def validate(config: Config) -> None:
    """Raise :class:`ConfigError` for the first rule ``config`` breaks."""
    version: object = config.version
    if isinstance(version, bool) or not isinstance(version, int) or version not in VERSIONS:
        raise ConfigError("version", "must be 1 or 2 (unsupported protocol version)", version)
    if not isinstance(config.keepalive_disabled, bool):
        raise ConfigError("keepalive_disabled", "must be a bool", config.keepalive_disabled)
    if not config.keepalive_disabled:
        interval = _check_seconds("keepalive_interval", config.keepalive_interval)
        if not interval > 0:
            raise ConfigError("keepalive_interval", "must be positive", interval)
        timeout = _check_seconds("keepalive_timeout", config.keepalive_timeout)
        if not timeout >= interval:  # written so that NaN is refused too
            raise ConfigError(
                "keepalive_timeout", f"must be at least keepalive_interval ({interval})", timeout
            )
    frame = _check_int("max_frame_size", config.max_frame_size)
    if not 0 < frame <= MAX_PAYLOAD:
        raise ConfigError("max_frame_size", f"must be within 1..{MAX_PAYLOAD}", frame)
    receive = _check_int("max_receive_buffer", config.max_receive_buffer)
    if not 0 < receive <= MAX_INT32:
        raise ConfigError("max_receive_buffer", f"must be within 1..{MAX_INT32}", receive)
    # Go checks <= 0, then > MaxReceiveBuffer, then > MaxInt32; the last can no longer
    # fire once max_receive_buffer is within range, but it is kept in Go's order.
    stream = _check_int("max_stream_buffer", config.max_stream_buffer)
    if stream <= 0:
        raise ConfigError("max_stream_buffer", f"must be within 1..{MAX_INT32}", stream)
    if stream > receive:
        raise ConfigError(
            "max_stream_buffer", f"must not exceed max_receive_buffer ({receive})", stream
        )
    if stream > MAX_INT32:  # pragma: no cover - implied by the two rules above
        raise ConfigError("max_stream_buffer", f"must be within 1..{MAX_INT32}", stream)
    backlog = _check_int("accept_backlog", config.accept_backlog)
    if backlog < 1:
        raise ConfigError("accept_backlog", "must be at least 1", backlog)
    if not isinstance(config.reject_own_parity_syn, bool):
        raise ConfigError("reject_own_parity_syn", "must be a bool", config.reject_own_parity_syn)
