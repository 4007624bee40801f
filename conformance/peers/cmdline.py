"""Peer command lines (CONTRACT.md rule 1) from a configuration dict.

Cases describe the peer they need as data, e.g.
``{"version": 2, "keepalive_interval": 100, "keepalive_timeout": 500}``, and never
spell option names themselves: one function maps the dict to arguments, so the option
spelling lives in one place and a typo in a key is an error, not a silently ignored
option.  Keys:

``version`` (1 or 2), ``keepalive_interval`` and ``keepalive_timeout`` (milliseconds,
given together), ``keepalive`` (``False`` gives ``--no-keepalive``), ``max_frame_size``,
``max_receive_buffer``, ``max_stream_buffer`` (bytes).  A key that is absent or ``None``
is left out, which means the implementation's default (rule 2).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

__all__ = ["CONFIG_KEYS", "PeerConfig", "Role", "config_args", "config_key", "peer_argv"]

Role = Literal["server", "client"]
PeerConfig = Mapping[str, object]

_SIZE_OPTIONS: Final = {
    "max_frame_size": "--max-frame-size",
    "max_receive_buffer": "--max-receive-buffer",
    "max_stream_buffer": "--max-stream-buffer",
}
CONFIG_KEYS: Final = frozenset(
    {"version", "keepalive", "keepalive_interval", "keepalive_timeout", *_SIZE_OPTIONS}
)


def _int(config: PeerConfig, key: str) -> int | None:
    value = config.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"peer config {key!r} must be an integer >= 0, not {value!r}")
    return value


def config_args(config: PeerConfig) -> list[str]:
    """The option arguments for ``config``, everything but --role and --addr."""
    unknown = set(config) - CONFIG_KEYS
    if unknown:
        raise ValueError(
            f"unknown peer config keys {sorted(unknown)}; known: {sorted(CONFIG_KEYS)}"
        )
    args: list[str] = []
    version = _int(config, "version")
    if version is not None:
        if version not in (1, 2):
            raise ValueError(f"peer config 'version' must be 1 or 2, not {version}")
        args += ["--version", str(version)]
    interval = _int(config, "keepalive_interval")
    timeout = _int(config, "keepalive_timeout")
    keepalive = config.get("keepalive")
    if keepalive is not None and not isinstance(keepalive, bool):
        raise ValueError(f"peer config 'keepalive' must be a bool, not {keepalive!r}")
    if keepalive is False:
        if interval is not None or timeout is not None:
            raise ValueError("peer config: keepalive=False excludes keepalive_interval/_timeout")
        args.append("--no-keepalive")
    elif (interval is None) != (timeout is None):
        raise ValueError("peer config: keepalive_interval and keepalive_timeout go together")
    elif interval is not None:
        args += ["--keepalive-interval", str(interval), "--keepalive-timeout", str(timeout)]
    for key, option in _SIZE_OPTIONS.items():
        size = _int(config, key)
        if size is not None:
            args += [option, str(size)]
    return args


def peer_argv(role: Role, addr: str, config: PeerConfig) -> list[str]:
    """Arguments after the peer's own command: ``--role R --addr A`` then the options."""
    if role not in ("server", "client"):
        raise ValueError(f"role must be 'server' or 'client', not {role!r}")
    return ["--role", role, "--addr", addr, *config_args(config)]


def config_key(config: PeerConfig) -> tuple[str, ...]:
    """A hashable identity of ``config``: equal keys mean identical peer command lines."""
    return tuple(config_args(config))
