"""The stream state table (SPEC.md 10.5), checked as data and through the Engine API.

Every row is driven through the public Engine methods and the observable outcome (bytes
on the wire, events, buffer accounting, exception) is classified independently of the
table, then compared with the expected row written out here.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import fin, psh, syn, upd

from smuxref import (
    TRANSITIONS,
    Config,
    DataReceived,
    Engine,
    Event,
    StreamClosedError,
    StreamEnded,
    StreamInput,
    StreamOpened,
    StreamState,
    WindowUpdated,
)
from smuxref._state import Effect, transition

S = StreamState
In = StreamInput
E = Effect

#: SPEC.md 10.5, written out independently of smuxref._state.
EXPECTED: dict[tuple[StreamState, StreamInput], tuple[Effect, StreamState]] = {
    (S.UNKNOWN, In.SEND_SYN): (E.SEND, S.OPEN),
    (S.UNKNOWN, In.RECV_SYN): (E.ACCEPT, S.OPEN),
    (S.UNKNOWN, In.SEND_PSH): (E.REFUSE, S.UNKNOWN),
    (S.UNKNOWN, In.RECV_PSH): (E.DROP, S.UNKNOWN),
    (S.UNKNOWN, In.RECV_EMPTY_PSH): (E.DROP, S.UNKNOWN),
    (S.UNKNOWN, In.SEND_FIN): (E.REFUSE, S.UNKNOWN),
    (S.UNKNOWN, In.RECV_FIN): (E.DROP, S.UNKNOWN),
    (S.UNKNOWN, In.SEND_UPD): (E.DROP, S.UNKNOWN),
    (S.UNKNOWN, In.RECV_UPD): (E.DROP, S.UNKNOWN),
    (S.UNKNOWN, In.CLOSE): (E.DROP, S.UNKNOWN),
    (S.OPEN, In.SEND_SYN): (E.REFUSE, S.OPEN),
    (S.OPEN, In.RECV_SYN): (E.DROP, S.OPEN),
    (S.OPEN, In.SEND_PSH): (E.SEND, S.OPEN),
    (S.OPEN, In.RECV_PSH): (E.DELIVER, S.OPEN),
    (S.OPEN, In.RECV_EMPTY_PSH): (E.DROP, S.OPEN),
    (S.OPEN, In.SEND_FIN): (E.SEND, S.LOCAL_CLOSED),
    (S.OPEN, In.RECV_FIN): (E.END, S.REMOTE_CLOSED),
    (S.OPEN, In.SEND_UPD): (E.SEND, S.OPEN),
    (S.OPEN, In.RECV_UPD): (E.WINDOW, S.OPEN),
    (S.OPEN, In.CLOSE): (E.FIN_AND_DISCARD, S.CLOSED),
    (S.LOCAL_CLOSED, In.SEND_SYN): (E.REFUSE, S.LOCAL_CLOSED),
    (S.LOCAL_CLOSED, In.RECV_SYN): (E.DROP, S.LOCAL_CLOSED),
    (S.LOCAL_CLOSED, In.SEND_PSH): (E.REFUSE, S.LOCAL_CLOSED),
    (S.LOCAL_CLOSED, In.RECV_PSH): (E.DELIVER, S.LOCAL_CLOSED),
    (S.LOCAL_CLOSED, In.RECV_EMPTY_PSH): (E.DROP, S.LOCAL_CLOSED),
    (S.LOCAL_CLOSED, In.SEND_FIN): (E.REFUSE, S.LOCAL_CLOSED),
    (S.LOCAL_CLOSED, In.RECV_FIN): (E.END, S.CLOSED),
    (S.LOCAL_CLOSED, In.SEND_UPD): (E.SEND, S.LOCAL_CLOSED),
    (S.LOCAL_CLOSED, In.RECV_UPD): (E.WINDOW, S.LOCAL_CLOSED),
    (S.LOCAL_CLOSED, In.CLOSE): (E.DISCARD, S.CLOSED),
    (S.REMOTE_CLOSED, In.SEND_SYN): (E.REFUSE, S.REMOTE_CLOSED),
    (S.REMOTE_CLOSED, In.RECV_SYN): (E.DROP, S.REMOTE_CLOSED),
    (S.REMOTE_CLOSED, In.SEND_PSH): (E.SEND, S.REMOTE_CLOSED),
    (S.REMOTE_CLOSED, In.RECV_PSH): (E.DELIVER, S.REMOTE_CLOSED),
    (S.REMOTE_CLOSED, In.RECV_EMPTY_PSH): (E.DROP, S.REMOTE_CLOSED),
    (S.REMOTE_CLOSED, In.SEND_FIN): (E.SEND, S.CLOSED),
    (S.REMOTE_CLOSED, In.RECV_FIN): (E.DROP, S.REMOTE_CLOSED),
    (S.REMOTE_CLOSED, In.SEND_UPD): (E.SEND, S.REMOTE_CLOSED),
    (S.REMOTE_CLOSED, In.RECV_UPD): (E.WINDOW, S.REMOTE_CLOSED),
    (S.REMOTE_CLOSED, In.CLOSE): (E.FIN_AND_DISCARD, S.CLOSED),
    (S.CLOSED, In.SEND_SYN): (E.REFUSE, S.CLOSED),
    (S.CLOSED, In.RECV_SYN): (E.DROP, S.CLOSED),
    (S.CLOSED, In.SEND_PSH): (E.REFUSE, S.CLOSED),
    (S.CLOSED, In.RECV_PSH): (E.DROP, S.CLOSED),
    (S.CLOSED, In.RECV_EMPTY_PSH): (E.DROP, S.CLOSED),
    (S.CLOSED, In.SEND_FIN): (E.REFUSE, S.CLOSED),
    (S.CLOSED, In.RECV_FIN): (E.DROP, S.CLOSED),
    (S.CLOSED, In.SEND_UPD): (E.DROP, S.CLOSED),
    # Data written before a close still goes out as the window opens (its FIN after it).
    (S.CLOSED, In.RECV_UPD): (E.WINDOW, S.CLOSED),
    (S.CLOSED, In.CLOSE): (E.DISCARD, S.CLOSED),
}

#: Rows the application cannot reach through the API (open_stream never picks a known
#: id) or that arrive as frames for a stream already held; tested on their own below.
SYN_INPUTS = (In.SEND_SYN, In.RECV_SYN)

SID = 3
#: Bytes delivered to the stream before it is driven into the state under test, so that
#: discarding and UPD emission are observable and a CLOSED stream is still tracked.
UNREAD = b"hello"
LIMIT = 4194304
V = 2  # version 2, so that SEND_UPD and RECV_UPD exist


def test_table_is_total() -> None:
    """SPEC.md 10.5: every StreamState x StreamInput pair has exactly one row."""
    assert set(TRANSITIONS) == set(itertools.product(StreamState, StreamInput))
    assert len(TRANSITIONS) == len(StreamState) * len(StreamInput) == 50


def test_table_matches_spec() -> None:
    """SPEC.md 10.5: the engine's table is the one the SPEC states, row for row."""
    assert dict(TRANSITIONS) == EXPECTED


@given(state=st.sampled_from(StreamState), what=st.sampled_from(StreamInput))
def test_transition_is_a_lookup(state: StreamState, what: StreamInput) -> None:
    """SPEC.md 10.5: transition() never fails and returns a valid (effect, state)."""
    effect, after = transition(state, what)
    assert isinstance(effect, Effect)
    assert isinstance(after, StreamState)
    assert (effect, after) == EXPECTED[state, what]


def _stream_in(state: StreamState) -> Engine:
    """A v2 client with stream 3 in ``state``, ``UNREAD`` delivered and unread, wire empty."""
    engine = Engine(Config(version=V), client=True)
    assert engine.open_stream() == SID
    assert engine.receive_data(psh(SID, UNREAD, V)) == [DataReceived(stream_id=SID, data=UNREAD)]
    if state is S.LOCAL_CLOSED:
        engine.close_write(SID)
    elif state is S.REMOTE_CLOSED:
        assert engine.receive_data(fin(SID, V)) == [StreamEnded(stream_id=SID)]
    elif state is S.CLOSED:
        engine.close_write(SID)
        assert engine.receive_data(fin(SID, V)) == [StreamEnded(stream_id=SID)]
    engine.data_to_send()
    info = engine.stream(SID)
    assert info is not None
    assert info.state is state
    assert info.buffered == len(UNREAD)
    assert engine.receive_window == LIMIT - len(UNREAD)
    return engine


@dataclass
class Outcome:
    wire: bytes = b""
    events: list[Event] = field(default_factory=list)
    refused: bool = False


def _apply(engine: Engine, what: StreamInput) -> Outcome:
    """Drive one input through the public API."""
    out = Outcome()
    try:
        if what is In.SEND_PSH:
            assert engine.send(SID, b"x") == 1
        elif what is In.RECV_PSH:
            out.events = list(engine.receive_data(psh(SID, b"abc", V)))
        elif what is In.RECV_EMPTY_PSH:
            out.events = list(engine.receive_data(psh(SID, b"", V)))
        elif what is In.SEND_FIN:
            engine.close_write(SID)
        elif what is In.RECV_FIN:
            out.events = list(engine.receive_data(fin(SID, V)))
        elif what is In.SEND_UPD:
            # The first read of a v2 stream always triggers a UPD (SPEC.md 9.2).
            out.events = list(engine.consumed(SID, 2))
        elif what is In.RECV_UPD:
            out.events = list(engine.receive_data(upd(SID, 0, 1000, V)))
        else:
            out.events = list(engine.close_stream(SID))
    except StreamClosedError:
        out.refused = True
    out.wire = engine.data_to_send()
    return out


def _classify(engine: Engine, what: StreamInput, out: Outcome) -> Effect:
    """Name the effect from what was observed, not from the table."""
    info = engine.stream(SID)
    if out.refused:
        assert (out.wire, out.events) == (b"", [])
        return E.REFUSE
    if what is In.CLOSE:
        assert out.events == []
        assert info is None, "a closed stream is forgotten"
        assert engine.receive_window == LIMIT, "unread bytes are returned to the bucket"
        return {fin(SID, V): E.FIN_AND_DISCARD, b"": E.DISCARD}[out.wire]
    assert info is not None
    if out.events:
        assert out.wire == b""
        assert len(out.events) == 1
        effect = {
            DataReceived(stream_id=SID, data=b"abc"): E.DELIVER,
            StreamEnded(stream_id=SID): E.END,
            WindowUpdated(stream_id=SID, consumed=0, window=1000): E.WINDOW,
        }[out.events[0]]
        if effect is E.DELIVER:
            assert info.buffered == len(UNREAD) + 3
            assert engine.receive_window == LIMIT - len(UNREAD) - 3
        elif effect is E.WINDOW:
            assert engine.send_window(SID) == 1000
        return effect
    if what is In.SEND_UPD:
        # The tokens come back whether or not a UPD may be sent.
        assert engine.receive_window == LIMIT - len(UNREAD) + 2
        return {upd(SID, 2, 65536, V): E.SEND, b"": E.DROP}[out.wire]
    effect = {psh(SID, b"x", V): E.SEND, fin(SID, V): E.SEND, b"": E.DROP}[out.wire]
    if effect is E.DROP:
        assert engine.receive_window == LIMIT - len(UNREAD), "a dropped frame charges nothing"
        assert info.buffered == len(UNREAD)
    return effect


@pytest.mark.parametrize(
    ("state", "what"),
    [
        (state, what)
        for state, what in itertools.product(StreamState, StreamInput)
        if state is not S.UNKNOWN and what not in SYN_INPUTS
    ],
    ids=lambda v: v.value,
)
def test_row_through_engine(state: StreamState, what: StreamInput) -> None:
    """SPEC.md 10.5: each (state, input) row has its effect and next state in the Engine."""
    engine = _stream_in(state)
    expected_effect, expected_state = EXPECTED[state, what]
    out = _apply(engine, what)
    assert _classify(engine, what, out) is expected_effect
    info = engine.stream(SID)
    if info is not None:
        assert info.state is expected_state
    else:
        assert expected_state is S.CLOSED
    assert not engine.is_closed


@pytest.mark.parametrize(
    "state", [s for s in StreamState if s is not S.UNKNOWN], ids=lambda v: v.value
)
def test_recv_syn_row(state: StreamState) -> None:
    """SPEC.md 10.5, 5.4: a SYN for a stream the session still holds is ignored in every
    state (the RECV_SYN rows of the known states)."""
    engine = _stream_in(state)
    info = engine.stream(SID)
    assert engine.receive_data(syn(SID, V)) == []
    assert engine.stream(SID) is info
    assert info is not None
    assert info.state is state
    assert info.buffered == len(UNREAD)
    assert engine.data_to_send() == b""


@pytest.mark.parametrize("what", list(StreamInput), ids=lambda v: v.value)
def test_unknown_id_row(what: StreamInput) -> None:
    """SPEC.md 10.5, 5.5: for an id with no stream only a SYN (either side's) opens
    one; frames are dropped without a trace, the application's sends are refused."""
    engine = Engine(Config(version=V), client=True)
    effect, after = EXPECTED[S.UNKNOWN, what]
    refused = False
    events: list[Event] = []
    try:
        if what is In.SEND_SYN:
            assert engine.open_stream() == SID
        elif what is In.RECV_SYN:
            events = engine.receive_data(syn(SID, V))
        elif what is In.RECV_PSH:
            events = engine.receive_data(psh(SID, b"abc", V))
        elif what is In.RECV_EMPTY_PSH:
            events = engine.receive_data(psh(SID, b"", V))
        elif what is In.RECV_FIN:
            events = engine.receive_data(fin(SID, V))
        elif what is In.RECV_UPD:
            events = engine.receive_data(upd(SID, 0, 1000, V))
        elif what is In.SEND_PSH:
            engine.send(SID, b"x")
        elif what is In.SEND_FIN:
            engine.close_write(SID)
        elif what is In.SEND_UPD:
            events = engine.consumed(SID, 2)
        else:
            events = engine.close_stream(SID)
    except StreamClosedError:
        refused = True
    wire = engine.data_to_send()
    assert engine.stream_state(SID) is after
    assert engine.receive_window == LIMIT
    if effect is E.REFUSE:
        assert refused
        assert (wire, events) == (b"", [])
    elif effect is E.SEND:
        assert wire == syn(SID, V)
    elif effect is E.ACCEPT:
        assert events == [StreamOpened(stream_id=SID)]
        assert wire == b""
    else:
        assert (effect, wire, events, refused) == (E.DROP, b"", [], False)


def test_send_syn_never_reuses_an_id() -> None:
    """SPEC.md 10.5, 5.1: open_stream never sends SYN for an id already used."""
    engine = Engine(client=True)
    first = engine.open_stream()
    engine.close_stream(first)
    assert engine.open_stream() == first + 2


def test_local_close_write_then_send_refused() -> None:
    """SPEC.md 10.2, 10.5: after close_write, send and close_write raise StreamClosedError."""
    engine = Engine(client=True)
    sid = engine.open_stream()
    engine.close_write(sid)
    assert engine.data_to_send() == syn(sid) + fin(sid)
    with pytest.raises(StreamClosedError):
        engine.send(sid, b"data")
    with pytest.raises(StreamClosedError):
        engine.close_write(sid)
    assert engine.data_to_send() == b""


def _local_ops(engine: Engine, sid: int) -> dict[str, Callable[[], object]]:
    return {
        "send": lambda: engine.send(sid, b"x"),
        "close_write": lambda: engine.close_write(sid),
        "send_window": lambda: engine.send_window(sid),
    }


@pytest.mark.parametrize("op", ["send", "close_write", "send_window"])
def test_operations_on_unknown_stream_refused(op: str) -> None:
    """SPEC.md 10.5: local operations on an id with no stream raise StreamClosedError."""
    engine = Engine(Config(version=2), client=True)
    call = _local_ops(engine, 7)[op]
    with pytest.raises(StreamClosedError):
        call()
    assert engine.data_to_send() == b""


@pytest.mark.parametrize("op", ["send", "close_write"])
def test_operations_after_close_stream_refused(op: str) -> None:
    """SPEC.md 10.4: after close_stream the stream is gone; writes raise StreamClosedError."""
    engine = Engine(client=True)
    sid = engine.open_stream()
    assert engine.close_stream(sid) == []
    engine.data_to_send()
    call = _local_ops(engine, sid)[op]
    with pytest.raises(StreamClosedError):
        call()
    assert engine.data_to_send() == b""


# --------------------------------------------------------------- property test

OPS = st.sampled_from(
    ["send", "recv_psh", "close_write", "recv_fin", "consume", "recv_upd", "close"]
)


class Model:
    """The stream as SPEC.md 10.5 says it should be, next to a real Engine."""

    def __init__(self, version: int) -> None:
        self.version = version
        self.engine = Engine(Config(version=version), client=True)
        self.sid = self.engine.open_stream()
        self.engine.data_to_send()
        self.state: StreamState | None = S.OPEN  # None: forgotten by the engine
        self.unread = 0

    def row(self, what: StreamInput) -> tuple[Effect, StreamState] | None:
        return None if self.state is None else EXPECTED[self.state, what]

    def check(self) -> None:
        info = self.engine.stream(self.sid)
        if self.state is None:
            assert info is None
        else:
            assert info is not None
            assert info.state is self.state
            assert info.buffered == self.unread
        assert self.engine.receive_window == LIMIT - self.unread
        assert self.engine.data_to_send() == b""
        assert not self.engine.is_closed

    def local(self, what: StreamInput, call: Callable[[], object], wire: bytes) -> None:
        row = self.row(what)
        if row is not None and row[0] is E.SEND:
            call()
            assert self.engine.data_to_send() == wire
            self.state = row[1]
        else:
            with pytest.raises(StreamClosedError):
                call()

    def remote(self, what: StreamInput, frame: bytes, event: Event, effect: Effect) -> bool:
        row = self.row(what)
        events = self.engine.receive_data(frame)
        if row is not None and row[0] is effect:
            assert events == [event]
            self.state = row[1]
            return True
        assert events == []
        return False

    def step(self, op: str) -> None:
        engine, sid, version = self.engine, self.sid, self.version
        if op == "send":
            self.local(In.SEND_PSH, lambda: engine.send(sid, b"ab"), psh(sid, b"ab", version))
        elif op == "close_write":
            self.local(In.SEND_FIN, lambda: engine.close_write(sid), fin(sid, version))
        elif op == "recv_psh":
            delivered = DataReceived(stream_id=sid, data=b"xyz")
            if self.remote(In.RECV_PSH, psh(sid, b"xyz", version), delivered, E.DELIVER):
                self.unread += 3
        elif op == "recv_fin":
            self.remote(In.RECV_FIN, fin(sid, version), StreamEnded(stream_id=sid), E.END)
        elif op == "recv_upd" and version == 2:  # UPD is a protocol error in v1 (4.2)
            update = WindowUpdated(stream_id=sid, consumed=0, window=5000)
            self.remote(In.RECV_UPD, upd(sid, 0, 5000, version), update, E.WINDOW)
        elif op == "consume" and self.unread:
            assert engine.consumed(sid, 1) == []
            self.unread -= 1
            engine.data_to_send()  # a UPD, if any, is checked by test_row_through_engine
        elif op == "close":
            row = self.row(In.CLOSE)
            assert engine.close_stream(sid) == []
            expect_fin = row is not None and row[0] is E.FIN_AND_DISCARD
            assert engine.data_to_send() == (fin(sid, version) if expect_fin else b"")
            self.state, self.unread = None, 0
        if self.state is S.CLOSED and self.unread == 0:
            self.state = None  # a finished stream is forgotten once its data was read


@settings(max_examples=300)
@given(ops=st.lists(OPS, max_size=25), version=st.sampled_from([1, 2]))
def test_any_input_sequence_keeps_a_valid_state(ops: list[str], version: int) -> None:
    """SPEC.md 10.5: any sequence of inputs follows the table and leaves a valid state."""
    model = Model(version)
    model.check()
    for op in ops:
        model.step(op)
        model.check()
    assert model.engine.num_streams == (0 if model.state is None else 1)
