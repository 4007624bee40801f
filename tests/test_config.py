"""Config defaults and validation in Go's VerifyConfig order (SPEC.md 3.1-3.3)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smuxref import Config, ConfigError, UsageError

MAX_INT32 = 2**31 - 1


def test_defaults_equal_go_default_config() -> None:
    """SPEC.md 3.1: defaults are Go v1.5.57's DefaultConfig (mux.go:61-71) plus Go's
    fixed accept backlog, with the hardening option off."""
    config = Config()
    assert dataclasses.asdict(config) == {
        "version": 1,
        "keepalive_disabled": False,
        "keepalive_interval": 10.0,
        "keepalive_timeout": 30.0,
        "max_frame_size": 32768,
        "max_receive_buffer": 4194304,
        "max_stream_buffer": 65536,
        "accept_backlog": 1024,
        "reject_own_parity_syn": False,
    }


def test_config_is_frozen() -> None:
    """SPEC.md 3.1: a Config cannot be changed after validation."""
    config = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.max_frame_size = 0  # type: ignore[misc]


def test_config_is_keyword_only() -> None:
    """SPEC.md 3.1: fields are passed by name."""
    with pytest.raises(TypeError):
        Config(2)  # type: ignore[call-arg]


# (keyword arguments, field reported, rule reported) for one broken rule each
RULES: list[tuple[dict[str, Any], str, str]] = [
    ({"version": 0}, "version", "must be 1 or 2 (unsupported protocol version)"),
    ({"version": 3}, "version", "must be 1 or 2 (unsupported protocol version)"),
    ({"version": -1}, "version", "must be 1 or 2 (unsupported protocol version)"),
    ({"keepalive_interval": 0}, "keepalive_interval", "must be positive"),
    ({"keepalive_interval": 0.0}, "keepalive_interval", "must be positive"),
    ({"keepalive_interval": -1.0}, "keepalive_interval", "must be positive"),
    ({"keepalive_interval": math.nan}, "keepalive_interval", "must be positive"),
    (
        {"keepalive_timeout": 9.999},
        "keepalive_timeout",
        "must be at least keepalive_interval (10.0)",
    ),
    (
        {"keepalive_interval": 5, "keepalive_timeout": 4},
        "keepalive_timeout",
        "must be at least keepalive_interval (5)",
    ),
    (
        {"keepalive_timeout": math.nan},
        "keepalive_timeout",
        "must be at least keepalive_interval (10.0)",
    ),
    ({"max_frame_size": 0}, "max_frame_size", "must be within 1..65535"),
    ({"max_frame_size": -1}, "max_frame_size", "must be within 1..65535"),
    ({"max_frame_size": 65536}, "max_frame_size", "must be within 1..65535"),
    ({"max_receive_buffer": 0}, "max_receive_buffer", f"must be within 1..{MAX_INT32}"),
    ({"max_receive_buffer": -5}, "max_receive_buffer", f"must be within 1..{MAX_INT32}"),
    ({"max_receive_buffer": 2**31}, "max_receive_buffer", f"must be within 1..{MAX_INT32}"),
    ({"max_stream_buffer": 0}, "max_stream_buffer", f"must be within 1..{MAX_INT32}"),
    ({"max_stream_buffer": -1}, "max_stream_buffer", f"must be within 1..{MAX_INT32}"),
    (
        {"max_stream_buffer": 4194305},
        "max_stream_buffer",
        "must not exceed max_receive_buffer (4194304)",
    ),
    (
        {"max_receive_buffer": 1000, "max_stream_buffer": 1001},
        "max_stream_buffer",
        "must not exceed max_receive_buffer (1000)",
    ),
    ({"accept_backlog": 0}, "accept_backlog", "must be at least 1"),
    ({"accept_backlog": -1}, "accept_backlog", "must be at least 1"),
]


@pytest.mark.parametrize(("kwargs", "field", "rule"), RULES)
def test_each_rule(kwargs: dict[str, Any], field: str, rule: str) -> None:
    """SPEC.md 3.2: each VerifyConfig rule raises ConfigError naming the field and the rule."""
    with pytest.raises(ConfigError) as excinfo:
        Config(**kwargs)
    err = excinfo.value
    assert err.field == field
    assert err.rule == rule
    assert err.value == kwargs[field] or (
        isinstance(kwargs[field], float) and math.isnan(kwargs[field])
    )
    assert field in str(err)
    assert rule in str(err)
    assert isinstance(err, UsageError)
    assert isinstance(err, ValueError)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"version": 2},
        {"keepalive_interval": 30.0, "keepalive_timeout": 30.0},  # equal is allowed
        {"keepalive_interval": 0.001, "keepalive_timeout": 0.001},
        {"keepalive_interval": 1, "keepalive_timeout": 2},  # ints are seconds too
        {"max_frame_size": 1},
        {"max_frame_size": 65535},
        {"max_receive_buffer": MAX_INT32, "max_stream_buffer": MAX_INT32},
        {"max_receive_buffer": 1, "max_stream_buffer": 1},
        {"accept_backlog": 1},
        {"reject_own_parity_syn": True},
        {"keepalive_disabled": True, "keepalive_interval": 0, "keepalive_timeout": -1},
        {"keepalive_disabled": True, "keepalive_interval": -5.0},
    ],
)
def test_boundaries_accepted(kwargs: dict[str, Any]) -> None:
    """SPEC.md 3.2: values on the edge of every rule are valid; keepalive_disabled skips the
    interval and timeout rules (Go v1.5.15+)."""
    config = Config(**kwargs)
    for name, value in kwargs.items():
        assert getattr(config, name) == value


@pytest.mark.parametrize(
    ("kwargs", "field", "rule"),
    [
        ({"version": True}, "version", "must be 1 or 2 (unsupported protocol version)"),
        ({"version": 1.0}, "version", "must be 1 or 2 (unsupported protocol version)"),
        ({"version": "1"}, "version", "must be 1 or 2 (unsupported protocol version)"),
        ({"keepalive_disabled": 1}, "keepalive_disabled", "must be a bool"),
        ({"keepalive_disabled": None}, "keepalive_disabled", "must be a bool"),
        ({"keepalive_interval": True}, "keepalive_interval", "must be a number of seconds"),
        ({"keepalive_interval": "10"}, "keepalive_interval", "must be a number of seconds"),
        ({"keepalive_timeout": True}, "keepalive_timeout", "must be a number of seconds"),
        ({"keepalive_timeout": None}, "keepalive_timeout", "must be a number of seconds"),
        ({"max_frame_size": True}, "max_frame_size", "must be an integer"),
        ({"max_frame_size": 1024.0}, "max_frame_size", "must be an integer"),
        ({"max_frame_size": "1024"}, "max_frame_size", "must be an integer"),
        ({"max_receive_buffer": False}, "max_receive_buffer", "must be an integer"),
        ({"max_receive_buffer": 1e6}, "max_receive_buffer", "must be an integer"),
        ({"max_stream_buffer": True}, "max_stream_buffer", "must be an integer"),
        ({"max_stream_buffer": 1024.5}, "max_stream_buffer", "must be an integer"),
        ({"accept_backlog": True}, "accept_backlog", "must be an integer"),
        ({"accept_backlog": None}, "accept_backlog", "must be an integer"),
        ({"reject_own_parity_syn": 1}, "reject_own_parity_syn", "must be a bool"),
        ({"reject_own_parity_syn": "yes"}, "reject_own_parity_syn", "must be a bool"),
    ],
)
def test_wrong_types_refused(kwargs: dict[str, Any], field: str, rule: str) -> None:
    """SPEC.md 3.2: bools and non-integers are refused where Go has an int (or a bool)."""
    with pytest.raises(ConfigError) as excinfo:
        Config(**kwargs)
    assert excinfo.value.field == field
    assert excinfo.value.rule == rule


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"version": 3, "keepalive_interval": 0, "max_frame_size": 0}, "version"),
        ({"keepalive_interval": 0, "keepalive_timeout": -1}, "keepalive_interval"),
        ({"keepalive_timeout": 1, "max_frame_size": 0}, "keepalive_timeout"),
        ({"max_frame_size": 0, "max_receive_buffer": 0}, "max_frame_size"),
        ({"max_frame_size": 65536, "max_stream_buffer": 0}, "max_frame_size"),
        ({"max_receive_buffer": 0, "max_stream_buffer": 0}, "max_receive_buffer"),
        ({"max_receive_buffer": 2**31, "max_stream_buffer": 2**31}, "max_receive_buffer"),
        ({"max_stream_buffer": 0, "accept_backlog": 0}, "max_stream_buffer"),
        (
            {"keepalive_disabled": True, "keepalive_interval": 0, "max_frame_size": 0},
            "max_frame_size",
        ),
    ],
)
def test_first_rule_in_go_order_wins(kwargs: dict[str, Any], field: str) -> None:
    """SPEC.md 3.2: a config breaking several rules reports the first in Go's order."""
    with pytest.raises(ConfigError) as excinfo:
        Config(**kwargs)
    assert excinfo.value.field == field


def test_stream_buffer_above_int32_reports_receive_buffer_rule() -> None:
    """SPEC.md 3.2: Go checks MaxStreamBuffer > MaxReceiveBuffer before > MaxInt32, so a
    stream buffer of 2**31 breaks the receive-buffer rule first."""
    with pytest.raises(ConfigError) as excinfo:
        Config(max_stream_buffer=2**31)
    assert excinfo.value.field == "max_stream_buffer"
    assert excinfo.value.rule == "must not exceed max_receive_buffer (4194304)"


# ------------------------------------------------------------------ model


def _go_first_broken(kw: dict[str, Any]) -> str | None:
    """Go v1.5.57 VerifyConfig (mux.go:74-107), then smuxref's own option."""
    keepalive = not kw["keepalive_disabled"]
    broken = {
        "version": isinstance(kw["version"], bool) or kw["version"] not in (1, 2),
        "keepalive_interval": keepalive and not kw["keepalive_interval"] > 0,
        "keepalive_timeout": keepalive and kw["keepalive_timeout"] < kw["keepalive_interval"],
        "max_frame_size": not 0 < kw["max_frame_size"] <= 65535,
        "max_receive_buffer": not 0 < kw["max_receive_buffer"] <= MAX_INT32,
        "max_stream_buffer": not 0 < kw["max_stream_buffer"] <= kw["max_receive_buffer"],
        "accept_backlog": kw["accept_backlog"] < 1,
    }
    return next((name for name, bad in broken.items() if bad), None)  # dicts keep order


@given(
    kw=st.fixed_dictionaries(
        {
            "version": st.sampled_from([1, 2, 0, 3, True]),
            "keepalive_disabled": st.booleans(),
            "keepalive_interval": st.sampled_from([10.0, 0.5, 0, -1.0]),
            "keepalive_timeout": st.sampled_from([30.0, 5.0, 0.5, 0]),
            "max_frame_size": st.sampled_from([32768, 1, 65535, 0, 65536]),
            "max_receive_buffer": st.sampled_from([4194304, 1, MAX_INT32, 0, 2**31]),
            "max_stream_buffer": st.sampled_from([65536, 1, MAX_INT32, 0, 2**31]),
            "accept_backlog": st.sampled_from([1024, 1, 0]),
        }
    )
)
def test_validation_order_matches_go(kw: dict[str, Any]) -> None:
    """SPEC.md 3.2: for any mix of valid and invalid fields, the field reported is the first
    one Go's VerifyConfig would reject."""
    expected = _go_first_broken(kw)
    if expected is None:
        Config(**kw)
    else:
        with pytest.raises(ConfigError) as excinfo:
            Config(**kw)
        assert excinfo.value.field == expected
