"""smuxref.aio against hostile peers: raw frames over loopback TCP, written to hurt.

Each test plays a peer that breaks no framing rule but abuses the protocol - a SYN flood,
a peer that never reads, endless full-size frames to a stream nobody reads, a slowloris,
UPD frames that lie, stream-id exhaustion, data for closed streams - and checks three
things: smuxref's memory stays within what its configuration allows (a numeric bound,
measured with tracemalloc), the session fails or carries on as SPEC.md says, and other
streams keep working where the protocol allows.

The SYN flood sends ``$SMUXREF_FLOOD_SYNS`` SYNs (default 100,000 in CI; the full run is
``SMUXREF_FLOOD_SYNS=1000000 pytest tests/test_hostile_peers.py -k flood -rP``).  Every
test prints its figures as ``RELIABILITY ...`` lines (``-rP`` shows them).
"""

from __future__ import annotations

import asyncio
import os
import struct
from typing import TYPE_CHECKING, Any

import pytest
from reliability_support import Memory, RawFrames, cpu_seconds, report

from smuxref import (
    HEADER_SIZE,
    INITIAL_PEER_WINDOW,
    MAX_PAYLOAD,
    Cmd,
    Engine,
    FlowControlError,
    GoAwayError,
    KeepAliveTimeoutError,
    SessionClosedError,
    Upd,
    encode_raw,
)
from smuxref.aio import Session, Stream
from smuxref.aio._links import READ_SIZE, ProtocolLink, StreamsLink

if TYPE_CHECKING:
    from conftest import Deadline, RawLink

KiB = 1 << 10
MiB = 1 << 20
#: The most an asyncio selector transport reads per data_received (selector_events.py).
TRANSPORT_READ = 256 * KiB
#: Whatever either link hands the session at once.
READ_CHUNK = max(READ_SIZE, TRANSPORT_READ)
#: What a decoded frame costs in Python objects (a Frame tuple, its ints, its payload
#: object), measured at about 120 bytes; one read of SYNs decodes READ_CHUNK / 8 of them.
FRAME_COST = 160
#: What one stream costs while it waits in the accept queue: StreamInfo, aio.Stream,
#: table entries (measured at about 450 bytes).
STREAM_COST = 1 * KiB
#: What a link may hold besides the engine: StreamsLink keeps the StreamReader's buffer
#: and the chunk it read; ProtocolLink only the chunk in data_received.
LINK_BUFFERS = 2 * READ_CHUNK
#: The hostile peer runs in this process: its transport buffer (high-water mark plus one
#: write) is in every measurement.
PEER_SIDE = 64 * KiB + 2 * (MAX_PAYLOAD + 8)
#: Interpreter noise in any window: asyncio debug mode records a traceback for every
#: handle, which also fills linecache; the event loop's own structures.
SLACK = 512 * KiB

FLOOD_SYNS = int(os.environ.get("SMUXREF_FLOOD_SYNS") or "100000")


async def stalled(task: asyncio.Future[Any], deadline: Deadline) -> bool:
    """True if ``task`` is still blocked after a short wait: how a writer learns that
    the other end stopped reading (the wait is the observation, not a pause)."""
    done, _ = await asyncio.wait({task}, timeout=deadline.scaled(0.3))
    if done:
        task.result()
    return not done


async def write_until_stalled(
    stream: Stream, chunk: bytes, deadline: Deadline, limit: int = 1 << 30
) -> tuple[int, asyncio.Task[None]]:
    """Write ``chunk`` again and again until a drain stays blocked."""
    written = 0
    while written < limit:
        stream.write(chunk)
        written += len(chunk)
        drain = asyncio.create_task(stream.drain())
        if await stalled(drain, deadline):
            return written, drain
    raise AssertionError(f"the writer never stalled in {written} bytes")


def syns(version: int, first: int, count: int) -> bytes:
    """``count`` coalesced SYN frames for ids first, first + 2, ..."""
    return b"".join(struct.pack("<BBHI", version, Cmd.SYN, 0, first + 2 * i) for i in range(count))


def paused(session: Session) -> bool:
    return session.engine.reading_paused


def paused_event(session: Session, monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """An event set whenever the session stops reading its transport."""
    event = asyncio.Event()
    link = session.transport
    original = link.pause_reading

    def pause_reading() -> None:
        event.set()
        original()

    monkeypatch.setattr(link, "pause_reading", pause_reading)
    return event


# ------------------------------------------------------------------------ SYN flood


@pytest.mark.parametrize("link", ["protocol"])
async def test_syn_flood_memory_is_bounded_by_accept_backlog(
    raw_link: RawLink, deadline: Deadline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SPEC.md 3.3, 5.4: beyond accept_backlog un-accepted streams smuxref stops reading,
    so a flood of SYNs costs it accept_backlog streams, whatever the flood's size; once
    the application accepts, every stream is delivered and memory stays flat."""
    session, raw = await raw_link(keepalive_disabled=True)
    backlog = session.config.accept_backlog
    peer = RawFrames(raw.reader, raw.writer, session.config.version)
    paused = paused_event(session, monkeypatch)
    # The streams held, the frames decoded from one read of SYNs, the test's own peer.
    bound = backlog * STREAM_COST + (READ_CHUNK // 8) * FRAME_COST + PEER_SIDE + SLACK
    per_write = 4096
    loop = asyncio.get_running_loop()
    with Memory() as memory:
        started = loop.time()
        written = 0
        stalled_at: int | None = None
        pending_drain: asyncio.Task[None] | None = None
        async with deadline(60):
            # Phase 1: nobody accepts.  Write as fast as the socket takes it.
            while written < FLOOD_SYNS:
                count = min(per_write, FLOOD_SYNS - written)
                raw.writer.write(syns(session.config.version, 2 + 2 * written, count))
                written += count
                drain = asyncio.ensure_future(raw.writer.drain())
                if await stalled(drain, deadline):
                    stalled_at, pending_drain = written, drain
                    break
            await paused.wait()
            held = session.engine.num_streams
            phase1_peak = memory.peak()
            assert held == backlog + 1, f"{held} streams held, backlog {backlog}"
            assert session.engine.reading_paused
            assert phase1_peak <= bound, f"{phase1_peak} bytes for {held} streams"

        reader = asyncio.create_task(peer.drain_forever())  # the FINs smuxref sends back

        async def application() -> int:
            accepted = 0
            while accepted < FLOOD_SYNS:
                stream = await session.accept_stream()
                stream.close()
                accepted += 1
            return accepted

        async with deadline(600 * FLOOD_SYNS / 1_000_000):
            app = asyncio.create_task(application())
            if pending_drain is not None:
                await pending_drain
            while written < FLOOD_SYNS:
                count = min(per_write, FLOOD_SYNS - written)
                raw.writer.write(syns(session.config.version, 2 + 2 * written, count))
                written += count
                await raw.writer.drain()
            accepted = await app
        elapsed = loop.time() - started
        peak = memory.peak()
    assert accepted == FLOOD_SYNS
    assert peak <= bound, f"peak {peak} bytes over {FLOOD_SYNS} SYNs, bound {bound}"
    assert not session.is_closed
    # Other streams still work: the peer opens one more and sends on it.
    async with deadline(10):
        last = 2 + 2 * FLOOD_SYNS
        peer.send(peer.frame(Cmd.SYN, last), peer.frame(Cmd.PSH, last, b"still here"))
        stream = await session.accept_stream()
        assert stream.id == last
        assert await stream.readexactly(10) == b"still here"
    raw.writer.close()
    async with deadline(10):
        await reader
    report(
        "syn_flood",
        version=session.config.version,
        syns=FLOOD_SYNS,
        stalled_after=stalled_at,
        streams_held=held,
        accept_backlog=backlog,
        phase1_peak=phase1_peak,
        peak=peak,
        bound=bound,
        seconds=round(elapsed, 2),
    )


# ------------------------------------------------------------ a peer that never reads


async def test_peer_that_never_reads(raw_link: RawLink, deadline: Deadline) -> None:
    """Our writes: drain blocks once the transport's high-water mark (v1) or the peer's
    window (v2) is reached; memory stays within high-water + window + one write.  The
    peer's data still reaches us meanwhile (reading is independent of writing)."""
    session, raw = await raw_link(keepalive_disabled=True)
    version = session.config.version
    peer = RawFrames(raw.reader, raw.writer, version)
    chunk = bytes(64 * KiB)
    with Memory() as memory:
        stream = await session.open_stream()
        async with deadline(60):
            written, drain = await write_until_stalled(stream, chunk, deadline)
        assert not drain.done()
        peak = memory.peak()
        queued = _write_buffer(session)
    high_water = 64 * KiB  # asyncio's default high-water mark
    window = INITIAL_PEER_WINDOW if version == 2 else 0
    bound = high_water + window + len(chunk) + PEER_SIDE + SLACK
    assert queued <= high_water + len(chunk) + MiB // 16, f"{queued} bytes in the transport"
    assert peak <= bound, f"peak {peak} bytes, bound {bound}"
    if version == 2:
        info = session.engine.stream(stream.id)
        assert info is not None
        assert info.inflight() == INITIAL_PEER_WINDOW  # exactly the window, no more
    # Reading goes on: the peer opens a stream and sends on it while ours is stuck.
    async with deadline(10):
        peer.send(peer.frame(Cmd.SYN, 2), peer.frame(Cmd.PSH, 2, b"hello"))
        other = await session.accept_stream()
        assert await other.readexactly(5) == b"hello"
    session.close()
    async with deadline(5):
        with pytest.raises(SessionClosedError):
            await drain
    report(
        "never_reads",
        version=version,
        link=raw_link.link,
        written_before_stall=written,
        transport_buffer=queued,
        peak=peak,
        bound=bound,
    )


def _write_buffer(session: Session) -> int:
    """Bytes waiting in the session's transport for the socket to take them."""
    link = session.transport
    if isinstance(link, ProtocolLink):
        assert link._transport is not None
        return link._transport.get_write_buffer_size()
    assert isinstance(link, StreamsLink)
    return link._writer.transport.get_write_buffer_size()


# ------------------------------------------- endless full-size frames nobody reads


async def test_endless_full_frames_to_an_unread_stream(
    raw_link: RawLink, deadline: Deadline
) -> None:
    """SPEC.md 8.1-8.2, 3.3: 65535-byte frames without end to a stream nobody reads fill
    the receive buffer and stop there: unread data <= max_receive_buffer - 1 + 65535, and
    memory <= that plus one transport read.  Closing the stream resumes the session; the
    rest of the flood is discarded without charge (SPEC.md 5.5, 10.4), and another stream
    works."""
    limit = 1 * MiB
    session, raw = await raw_link(
        keepalive_disabled=True, max_receive_buffer=limit, max_stream_buffer=64 * KiB
    )
    version = session.config.version
    peer = RawFrames(raw.reader, raw.writer, version)
    frame = peer.frame(Cmd.PSH, 2, bytes(MAX_PAYLOAD)).encode()
    flooding = True

    async def flood() -> int:
        sent = 0
        while flooding:
            raw.writer.write(frame)
            sent += MAX_PAYLOAD
            await raw.writer.drain()
        return sent

    # Unread data (SPEC.md 8.2), the frames decoded from the read in progress, the
    # link's buffers, the test's own peer.
    bound = limit - 1 + MAX_PAYLOAD + READ_CHUNK + LINK_BUFFERS + PEER_SIDE + SLACK
    with Memory() as memory:
        peer.send(peer.frame(Cmd.SYN, 2))
        async with deadline(10):
            hog = await session.accept_stream()
        flooder = asyncio.create_task(flood())
        async with deadline(60):
            while not await stalled(flooder, deadline):
                pass
        unread = limit - session.engine.receive_window
        peak = memory.peak()
        assert paused(session)
        assert limit <= unread <= limit - 1 + MAX_PAYLOAD, unread
        assert peak <= bound, f"peak {peak} bytes, bound {bound}"
        # Closing the hog returns its tokens; what follows for it is dropped unread.
        hog.close()
        # The held-back frames were all for the hog, so they are dropped at once.
        assert not paused(session)
        peer.send(peer.frame(Cmd.SYN, 4), peer.frame(Cmd.PSH, 4, b"other"))
        async with deadline(30):
            other = await session.accept_stream()
            assert await other.readexactly(5) == b"other"
        assert session.engine.receive_window == limit  # nothing charged for stream 2
        flooding = False
        async with deadline(30):
            sent = await flooder
        peak_after = memory.peak()
    assert not session.is_closed
    report(
        "full_frames_unread",
        version=version,
        link=raw_link.link,
        max_receive_buffer=limit,
        unread_at_stall=unread,
        peak=max(peak, peak_after),
        bound=bound,
        flood_bytes=sent,
    )


# --------------------------------------------------------------------- slowloris


@pytest.mark.parametrize("link", ["protocol"])
async def test_slowloris_headers_keep_the_session_alive(
    raw_link: RawLink, deadline: Deadline
) -> None:
    """SPEC.md 7.2: any complete header counts as traffic, so a peer trickling NOPs one
    byte at a time keeps the session alive as long as a header completes every period;
    memory stays tiny (the decoder holds at most the header in progress)."""
    timeout = deadline.scaled(0.8)
    session, raw = await raw_link(keepalive_interval=timeout / 4, keepalive_timeout=timeout)
    peer = RawFrames(raw.reader, raw.writer, session.config.version)
    nop = peer.frame(Cmd.NOP, 0).encode()
    reader = asyncio.create_task(peer.drain_forever())
    with Memory() as memory:
        # A header every timeout / 3: one byte every timeout / 24.
        for _ in range(3 * 3):
            for byte in nop:
                raw.writer.write(bytes([byte]))
                # The slowness is the behaviour under test.
                await asyncio.sleep(timeout / 24)
                assert not session.is_closed, session.error
        peak = memory.peak()
    bound = HEADER_SIZE + SLACK  # the header in progress, and noise
    assert peak <= bound, f"peak {peak} bytes, bound {bound}"
    async with deadline(5):
        peer.send(peer.frame(Cmd.SYN, 2), peer.frame(Cmd.PSH, 2, b"alive"))
        stream = await session.accept_stream()
        assert await stream.readexactly(5) == b"alive"
    session.close()
    raw.writer.close()
    await reader
    report("slowloris_headers", seconds=round(9 * timeout / 3, 2), peak=peak, bound=bound)


@pytest.mark.parametrize("link", ["protocol"])
async def test_slowloris_payload_dies_by_keepalive(raw_link: RawLink, deadline: Deadline) -> None:
    """SPEC.md 7.2: payload bytes are not headers.  A peer that sends one PSH header and
    then its payload one byte at a time completes no header after the first, so the
    session dies by keepalive timeout - between one and two periods after that header -
    although bytes keep arriving; memory stays at one frame in progress."""
    timeout = deadline.scaled(0.5)
    session, raw = await raw_link(keepalive_interval=timeout / 4, keepalive_timeout=timeout)
    peer = RawFrames(raw.reader, raw.writer, session.config.version)
    loop = asyncio.get_running_loop()
    reader = asyncio.create_task(peer.drain_forever())
    with Memory() as memory:
        # A SYN and the header of a 65535-byte PSH: the last header that will complete.
        version = session.config.version
        raw.writer.write(
            peer.frame(Cmd.SYN, 2).encode() + encode_raw(version, Cmd.PSH, MAX_PAYLOAD, 2)
        )
        header_at = loop.time()
        sent = 0
        async with deadline(5):
            while not session.is_closed:
                raw.writer.write(b"x")
                sent += 1
                await asyncio.sleep(timeout / 20)  # the trickle is the behaviour under test
        died_after = loop.time() - header_at
        peak = memory.peak()
    assert isinstance(session.error, KeepAliveTimeoutError), session.error
    assert timeout * 0.9 <= died_after <= 2 * timeout + deadline.scaled(0.5), died_after
    assert sent > 20  # bytes kept coming for more than a period
    bound = HEADER_SIZE + MAX_PAYLOAD + SLACK  # the frame in progress, and noise
    assert peak <= bound, f"peak {peak} bytes, bound {bound}"
    raw.writer.close()
    await reader
    report(
        "slowloris_payload",
        keepalive_timeout=round(timeout, 3),
        died_after=round(died_after, 3),
        bytes_trickled=sent,
        peak=peak,
        bound=bound,
    )


# --------------------------------------------------------------------- UPD lies


@pytest.mark.parametrize("version", [2])
async def test_upd_acknowledging_unsent_bytes_fails_that_stream_only(
    raw_link: RawLink, deadline: Deadline
) -> None:
    """SPEC.md 9.4: a UPD whose CONSUMED is ahead of what was sent makes the next write
    on that stream fail with FlowControlError; the session and other streams go on."""
    session, raw = await raw_link(keepalive_disabled=True)
    peer = RawFrames(raw.reader, raw.writer, 2)
    lied_to = await session.open_stream()
    honest = await session.open_stream()
    async with deadline(10):
        lied_to.write(b"hello")
        await lied_to.drain()
        assert await peer.payload(lied_to.id, 5) == b"hello"
        peer.send(
            peer.frame(Cmd.UPD, lied_to.id, Upd(1000, 65536).encode()),
            peer.frame(Cmd.PSH, honest.id, b"sync"),  # arrives after the UPD
        )
        assert await honest.readexactly(4) == b"sync"
    with pytest.raises(FlowControlError):
        lied_to.write(b"more")
    async with deadline(10):
        honest.write(b"fine")
        await honest.drain()
        assert await peer.payload(honest.id, 4) == b"fine"
        peer.send(peer.frame(Cmd.PSH, lied_to.id, b"reads go on"))
        assert await lied_to.readexactly(11) == b"reads go on"
    assert not session.is_closed


@pytest.mark.parametrize("version", [2])
async def test_upd_window_zero_blocks_the_writer_without_busy_loop(
    raw_link: RawLink, deadline: Deadline
) -> None:
    """SPEC.md 9.3: a window of 0 stops the writer; it waits for a UPD without spinning
    (little CPU while blocked), and resumes with exactly its data when the window opens."""
    session, raw = await raw_link(keepalive_disabled=True)
    peer = RawFrames(raw.reader, raw.writer, 2)
    stream = await session.open_stream()
    probe = await session.open_stream()
    async with deadline(10):
        peer.send(
            peer.frame(Cmd.UPD, stream.id, Upd(0, 0).encode()),
            peer.frame(Cmd.PSH, probe.id, b"sync"),
        )
        assert await probe.readexactly(4) == b"sync"
    data = bytes(range(256)) * 40
    stream.write(data)
    drain = asyncio.create_task(stream.drain())
    idle = deadline.scaled(0.5)
    cpu_before = cpu_seconds()
    done, _ = await asyncio.wait({drain}, timeout=idle)  # blocked time is what is measured
    cpu_used = cpu_seconds() - cpu_before
    assert not done, "the writer went past a zero window"
    assert cpu_used < 0.25 * idle, f"{cpu_used:.3f} s of CPU while blocked for {idle} s"
    async with deadline(10):
        probe.write(b"nothing before this")
        await probe.drain()
        first = await peer.next(lambda f: f.cmd == Cmd.PSH)
        assert first.sid == probe.id, f"data went out on a zero window: {first!r}"
        peer.send(peer.frame(Cmd.UPD, stream.id, Upd(0, INITIAL_PEER_WINDOW).encode()))
        await drain
        assert await peer.payload(stream.id, len(data)) == data
    report("upd_window_zero", blocked_seconds=idle, cpu_seconds=round(cpu_used, 4))


@pytest.mark.parametrize("version", [2])
async def test_upd_huge_window_sends_only_what_was_written(
    raw_link: RawLink, deadline: Deadline
) -> None:
    """SPEC.md 9.3: a window of 2**32 - 1 lets the writer send at once, but never more
    than it wrote: the peer gets exactly the bytes, in frames of at most max_frame_size."""
    session, raw = await raw_link(keepalive_disabled=True)
    peer = RawFrames(raw.reader, raw.writer, 2)
    stream = await session.open_stream()
    async with deadline(10):
        peer.send(peer.frame(Cmd.UPD, stream.id, Upd(0, 0xFFFFFFFF).encode()))
        peer.send(peer.frame(Cmd.SYN, 2), peer.frame(Cmd.PSH, 2, b"sync"))
        synced = await session.accept_stream()
        assert await synced.readexactly(4) == b"sync"
    data = os.urandom(3 * MiB)
    async with deadline(30):
        stream.write(data)
        await stream.drain()
        info = session.engine.stream(stream.id)
        assert info is not None
        assert info.inflight() == len(data)  # all of it at once, nothing invented
        assert session.engine.send_window(stream.id) == 0xFFFFFFFF - len(data)
        stream.close_write()
        got = await peer.until_fin(stream.id)
    assert got == data


# ------------------------------------------------------------- stream-id exhaustion


async def test_stream_id_exhaustion(raw_link: RawLink, deadline: Deadline) -> None:
    """SPEC.md 5.2: after its last id a session refuses to open streams (GoAwayError),
    sends nothing for the refusal, never wraps, and keeps serving existing streams."""
    session, raw = await raw_link(keepalive_disabled=True)
    version = session.config.version
    # The client's last two ids; Engine takes the first id to allocate.
    session.engine = Engine(
        session.config,
        client=True,
        now=asyncio.get_running_loop().time(),
        next_stream_id=0xFFFFFFFD,
    )
    peer = RawFrames(raw.reader, raw.writer, version)
    first = await session.open_stream()
    last = await session.open_stream()
    assert (first.id, last.id) == (0xFFFFFFFD, 0xFFFFFFFF)
    for _ in range(2):  # the refusal is sticky
        with pytest.raises(GoAwayError):
            await session.open_stream()
    async with deadline(10):
        last.write(b"after")
        await last.drain()
        frames = [await peer.next() for _ in range(3)]
        # Nothing between the two SYNs and the data: the refusal sent nothing.
        assert [(f.cmd, f.sid) for f in frames] == [
            (Cmd.SYN, 0xFFFFFFFD),
            (Cmd.SYN, 0xFFFFFFFF),
            (Cmd.PSH, 0xFFFFFFFF),
        ]
        peer.send(peer.frame(Cmd.PSH, first.id, b"both"), peer.frame(Cmd.PSH, last.id, b"ways"))
        assert await first.readexactly(4) == b"both"
        assert await last.readexactly(4) == b"ways"
        peer.send(peer.frame(Cmd.SYN, 2), peer.frame(Cmd.PSH, 2, b"accepting works"))
        accepted = await session.accept_stream()
        assert await accepted.readexactly(15) == b"accepting works"
    assert not session.is_closed


# --------------------------------------------------------- data for closed streams


async def test_data_for_closed_streams_is_dropped_without_charge(
    raw_link: RawLink, deadline: Deadline
) -> None:
    """SPEC.md 5.5, 8.1: PSH for a closed or unknown stream is read and discarded and
    never counts against the receive buffer, so any amount of it passes through a 64 KiB
    buffer without stalling the session; memory stays at one transport read."""
    limit = 64 * KiB
    session, raw = await raw_link(
        keepalive_disabled=True, max_receive_buffer=limit, max_stream_buffer=limit
    )
    version = session.config.version
    peer = RawFrames(raw.reader, raw.writer, version)
    total = 16 * MiB
    async with deadline(10):
        peer.send(peer.frame(Cmd.SYN, 2), peer.frame(Cmd.PSH, 2, b"first"))
        closed = await session.accept_stream()
        assert await closed.readexactly(5) == b"first"
        closed.close()
        await peer.next(lambda f: f.cmd == Cmd.FIN and f.sid == 2)
    frame_closed = peer.frame(Cmd.PSH, 2, bytes(MAX_PAYLOAD)).encode()
    frame_unknown = peer.frame(Cmd.PSH, 1001, bytes(MAX_PAYLOAD)).encode()
    bound = READ_CHUNK + LINK_BUFFERS + PEER_SIDE + SLACK
    with Memory() as memory:
        async with deadline(120):
            sent = 0
            while sent < total:
                raw.writer.write(frame_closed)
                raw.writer.write(frame_unknown)
                sent += 2 * MAX_PAYLOAD
                await raw.writer.drain()  # never stalls: smuxref keeps reading
                assert session.engine.receive_window == limit
            peer.send(peer.frame(Cmd.SYN, 4), peer.frame(Cmd.PSH, 4, b"after"))
            other = await session.accept_stream()
            assert await other.readexactly(5) == b"after"
        peak = memory.peak()
    assert session.engine.receive_window == limit
    assert peak <= bound, f"peak {peak} bytes, bound {bound}"
    assert not session.is_closed
    report(
        "closed_stream_data",
        version=version,
        link=raw_link.link,
        bytes_dropped=sent,
        max_receive_buffer=limit,
        peak=peak,
        bound=bound,
    )
