"""Every input the fuzzers (fuzz/) found to break smuxref, replayed through the same harness
without atheris, plus the seed corpus built from vectors/ (which must pass as it stands).

To add a crash: ``python fuzz/replay.py engine crash-<sha1>`` prints its hex and the
operations that led to it; add the hex to ``CRASHES`` with a line on what it broke and
the fix, and a plain test of the fix next to it.
"""

from __future__ import annotations

import pytest
from reliability_support import ROOT

from fuzz.build_corpus import seeds
from fuzz.decoder_target import decoder_one_input
from fuzz.engine_target import ENGINE_OPS, engine_config_bytes, engine_one_input
from smuxref import Cmd, Config, Engine, Frame, StreamOpened

_OP = {name: ENGINE_OPS.index(name) for name in ENGINE_OPS}

#: (target, input hex, what it broke).  Found by the engine target's first runs.
CRASHES = [
    (
        "engine",
        # client v1; the peer sends SYN 3 (the client's own parity, SPEC.md 5.4); the
        # application opens a stream.  smuxref allocated 3 again and overwrote the
        # peer's un-accepted stream: the accept backlog count stayed 1 too high for the
        # rest of the session and that stream's unread bytes were never returned to the
        # receive buffer (a hostile peer could stall the session for good).
        # Fix: Engine._allocate_id skips ids in use (SPEC.md 5.1 SHOULD NOT).
        (
            engine_config_bytes(0b1010)
            + bytes([_OP["frame"], 0, 0, 206, _OP["open"], _OP["flush"], _OP["app"]])
            + bytes([_OP["flush"]])
        ).hex(),
        "open_stream took over a stream id the peer had opened",
    ),
]


@pytest.mark.parametrize(
    ("target", "data", "what"), CRASHES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CRASHES)]
)
def test_crash_input_passes(target: str, data: str, what: str) -> None:
    run = engine_one_input if target == "engine" else decoder_one_input
    run(bytes.fromhex(data))


@pytest.mark.parametrize("client", [True, False])
def test_open_stream_skips_an_id_the_peer_opened(client: bool) -> None:
    """SPEC.md 5.1: an implementation SHOULD NOT allocate an id naming an open stream."""
    engine = Engine(Config(), client=client)
    own = 3 if client else 2
    events = engine.receive_data(
        Frame(1, Cmd.SYN, own).encode() + Frame(1, Cmd.PSH, own, b"abc").encode()
    )
    assert events[0] == StreamOpened(stream_id=own)
    sid = engine.open_stream()
    assert sid == own + 2
    peer_stream = engine.stream(own)
    assert peer_stream is not None
    assert not peer_stream.accepted
    assert peer_stream.buffered == 3
    engine.accept(own)
    engine.consumed(own, 3)
    assert engine.receive_window == engine.config.max_receive_buffer
    assert engine.open_stream() == own + 4


@pytest.mark.parametrize("target", ["decoder", "engine"])
def test_seed_corpus_passes(target: str) -> None:
    """The seeds (every vector and recorded session) pass the harness's oracles."""
    run = engine_one_input if target == "engine" else decoder_one_input
    count = 0
    for seed in seeds(target):
        run(seed)
        count += 1
    assert count > 300, f"only {count} seeds from {ROOT / 'vectors'}"
