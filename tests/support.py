"""Test support for the sans-IO engine: a client/server pair on a fake wire and a fake clock,
and builders for raw frames.

``SessionPair`` plays the adapter's part for both ends: it moves ``data_to_send()`` across,
optionally cut into arbitrary segments, withholds bytes from a side whose
``reading_paused`` is set (as an adapter that stops reading its socket would), collects the
events of each side, and runs the keepalive timers on a clock that only moves when the test
says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from smuxref import (
    Cmd,
    Config,
    Engine,
    Event,
    Frame,
    FrameDecoder,
    Upd,
    encode_raw,
)

__all__ = [
    "Segmenter",
    "SessionPair",
    "decode_all",
    "fin",
    "header",
    "nop",
    "psh",
    "syn",
    "upd",
]

#: Cuts the bytes one side sent into the segments the other side receives.
Segmenter = Callable[[bytes], Iterable[bytes]]


def header(version: int, cmd: int, length: int, sid: int) -> bytes:
    """The 8 header bytes exactly as given (LEN need not match any payload)."""
    return encode_raw(version, cmd, length, sid)


def syn(sid: int, version: int = 1) -> bytes:
    return Frame(version, Cmd.SYN, sid).encode()


def fin(sid: int, version: int = 1) -> bytes:
    return Frame(version, Cmd.FIN, sid).encode()


def psh(sid: int, data: bytes, version: int = 1) -> bytes:
    return Frame(version, Cmd.PSH, sid, data).encode()


def nop(sid: int = 0, version: int = 1) -> bytes:
    return Frame(version, Cmd.NOP, sid).encode()


def upd(sid: int, consumed: int, window: int, version: int = 2) -> bytes:
    return Frame(version, Cmd.UPD, sid, Upd(consumed, window).encode()).encode()


def decode_all(wire: bytes, version: int) -> list[Frame]:
    """Every frame in ``wire``, which must end on a frame boundary."""
    decoder = FrameDecoder(version)
    frames = decoder.feed(wire)
    assert decoder.buffered == 0, f"{decoder.buffered} trailing bytes in {wire.hex()}"
    return frames


def _whole(data: bytes) -> Iterable[bytes]:
    return (data,)


def _not_reading(engine: Engine) -> bool:
    """What an adapter checks before reading its transport."""
    return engine.is_closed or engine.reading_paused


class SessionPair:
    """A client Engine and a server Engine with the same Config, joined by a fake wire.

    ``sent["client"]`` / ``sent["server"]`` record every byte each side emitted, in order;
    ``events["client"]`` / ``events["server"]`` every event each side reported.  Bytes
    for a side that has paused reading stay on the wire (``in_flight``) until it resumes.
    """

    SIDES = ("client", "server")

    def __init__(
        self,
        config: Config | None = None,
        *,
        server_config: Config | None = None,
        now: float = 0.0,
        segmenter: Segmenter = _whole,
    ) -> None:
        self.config = config if config is not None else Config()
        self.now = now
        self.client = Engine(self.config, client=True, now=now)
        self.server = Engine(
            server_config if server_config is not None else self.config, client=False, now=now
        )
        self.segmenter = segmenter
        self.events: dict[str, list[Event]] = {"client": [], "server": []}
        self.sent: dict[str, bytearray] = {"client": bytearray(), "server": bytearray()}
        #: Bytes on the wire towards each side, not yet handed to its engine.
        self.in_flight: dict[str, bytearray] = {"client": bytearray(), "server": bytearray()}
        #: Called with (side, events) after every batch of events, for invariant checks.
        self.observers: list[Callable[[str, list[Event]], None]] = []

    def engine(self, side: str) -> Engine:
        return self.client if side == "client" else self.server

    @staticmethod
    def peer_of(side: str) -> str:
        return "server" if side == "client" else "client"

    def record(self, side: str, events: list[Event]) -> list[Event]:
        """Collect events a test obtained by calling an engine method directly."""
        self.events[side].extend(events)
        for observer in self.observers:
            observer(side, events)
        return events

    def take_events(self, side: str) -> list[Event]:
        """The events collected for ``side`` since the last call, removing them."""
        events, self.events[side] = self.events[side], []
        return events

    def _flush(self, side: str) -> bool:
        out = self.engine(side).data_to_send()
        if not out:
            return False
        self.sent[side] += out
        self.in_flight[self.peer_of(side)] += out
        return True

    def _deliver(self, side: str) -> bool:
        engine = self.engine(side)
        wire = self.in_flight[side]
        if not wire or _not_reading(engine):
            return False
        data = bytes(wire)
        wire.clear()
        segments = list(self.segmenter(data))
        assert b"".join(segments) == data, "segmenter must not lose or add bytes"
        for index, segment in enumerate(segments):
            if _not_reading(engine):
                # The adapter stops reading: the rest stays on the wire, in order.
                wire[:0] = b"".join(segments[index:])
                break
            if segment:
                self.record(side, engine.receive_data(segment))
        return True

    def pump(self, max_rounds: int = 1000) -> int:
        """Move bytes both ways until neither side has anything to send or to read.

        Returns the number of rounds that moved something; fails if the pair is still
        busy after ``max_rounds`` (an engine that keeps producing frames is a bug).
        """
        for rounds in range(max_rounds):
            moved = False
            for side in self.SIDES:
                moved |= self._flush(side)
            for side in self.SIDES:
                moved |= self._deliver(side)
            if not moved:
                return rounds
        raise AssertionError(f"pair still busy after {max_rounds} rounds")

    def connection_lost(self, side: str) -> list[Event]:
        """``side``'s transport reports EOF (everything already on the wire is delivered)."""
        self.pump()
        return self.record(side, self.engine(side).connection_lost())

    # ------------------------------------------------------------------ clock

    def next_timer(self) -> float | None:
        timers = [t for t in (self.client.next_timer(), self.server.next_timer()) if t is not None]
        return min(timers) if timers else None

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass: every due timer fires at its own time, and the wire is
        pumped after each, so a NOP sent at t arrives at t."""
        assert seconds >= 0
        target = self.now + seconds
        self.pump()
        while True:
            due = self.next_timer()
            if due is None or due > target:
                break
            self.now = due
            for side in self.SIDES:
                engine = self.engine(side)
                timer = engine.next_timer()
                if timer is not None and timer <= self.now:
                    self.record(side, engine.handle_timer(self.now))
                    after = engine.next_timer()
                    assert after is None or after > self.now, f"{side} timer stuck at {after}"
            self.pump()
        self.now = target
