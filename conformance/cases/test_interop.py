"""Interoperability: a complete smuxref session talks to the peer through the contract.

Every case runs against every peer, in both roles (the peer as server: a smuxref client
session dials it; the peer as client: it dials the suite, which runs a smuxref server
session) and in both protocol versions; the ``smux_session`` fixture sets that up.  The
peer's side is its real application API: streams carry the contract's commands
(conformance/CONTRACT.md: ECHO, SINK, SOURCE, OPEN, EXIT), and the suite checks the bytes
end to end - byte for byte, or by count and SHA-256.

What the cases cover: one stream, and a hundred concurrent streams each way; transfers
of 0 bytes to 64 MiB through SINK (upload) and SOURCE (download); ECHO with seeded random
write sizes in frames up to 65535 bytes; half-close; the stream ids the peer allocates;
the peer closing the session (EXIT) and the suite closing it in the middle of a transfer.

Every wait has a deadline (:func:`smuxref_conformance.deadlines.scaled`); a wait that runs out,
or a stream that ends early, is reported through ``smux_check`` as the step that did not
happen, with what was seen instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
from typing import Final

import pytest

from smuxref import aio
from smuxref.errors import SmuxError
from smuxref_conformance.judge.case import case
from smuxref_conformance.judge.checks import SmuxCheck
from smuxref_conformance.peers.cmdline import Role

from ._interop_steps import (
    FIN_CASE,
    KIB,
    MIB,
    PEER_OPENS,
    PERIOD,
    WRITE_CHUNK,
    bodies_then_eof,
    budget,
    describe_end,
    echo_round_trip,
    expect_echo,
    open_with_line,
    pattern_digest,
    payload,
    read_all,
    require_opened,
    sha256_hex,
    step,
    write_all,
)

#: Sizes moved through SINK and SOURCE: empty, one byte, one largest frame, one byte
#: more than a frame can carry, and two bulk sizes.
SIZES: Final = (0, 1, 65535, 65536, MIB, 64 * MIB)
_SIZE_IDS: Final = ("0B", "1B", "65535B", "65536B", "1MiB", "64MiB")

# Sentences quoted from SPEC.md, one per case.
_ACCEPTOR_BUFFERS: Final = (
    "The acceptor MUST buffer data that arrives for a stream before the application accepts it."
)
_MULTIPLEX: Final = (
    "A session multiplexes streams over one reliable, ordered byte stream (the transport: "
    "TCP, KCP, a pipe)."
)
_NO_REUSE: Final = "An opener MUST NOT reuse an id within a session."
_ANY_LEN: Final = (
    "A receiver MUST accept a PSH with any LEN from 0 to 65535, whatever its own MaxFrameSize."
)
_DELIVER_BEFORE_FIN: Final = (
    "A receiver of FIN MUST deliver all data that arrived before the FIN, and then signal end "
    "of stream to its application."
)
_FIN_AFTER_DATA: Final = "The FIN MUST come after all data previously written on the stream."
_SEND_AFTER_FIN: Final = (
    "After receiving FIN, an implementation MUST still let its application send data on the stream."
)
_SERVER_IDS: Final = (
    "A server SHOULD give its first stream id 2, and each later stream the previous id plus 2."
)
_CLIENT_IDS: Final = (
    "A client SHOULD give its first stream id 3, and each later stream the previous id plus 2."
)
_END_STREAMS: Final = (
    "On the end of the transport, an implementation MUST end every stream after its buffered "
    "data has been read or discarded."
)
_SESSION_ENDED: Final = "A receiver MUST treat the session as ended in both cases (section 11)."


# -- streams ---------------------------------------------------------------------------
@case(
    "smux/10.1/interop-one-stream",
    title="One stream: SYN, command and data sent at once, echoed back",
    spec="10.1",
    requirement=_ACCEPTOR_BUFFERS,
    level="must",
)
async def test_one_stream(smux_session: aio.Session, smux_check: SmuxCheck) -> None:
    """The suite opens a stream and writes ``ECHO`` and 4 KiB without waiting for
    anything; the peer must have buffered them until it accepted the stream."""
    stream = await open_with_line(smux_session, b"ECHO\n")
    await expect_echo(smux_check, stream, [payload(1, 4 * KIB)], "one stream")
    stream.close()


@case(
    "smux/2.1/interop-100-streams",
    title="A hundred concurrent streams opened by the suite, each echoed",
    spec="2.1",
    requirement=_MULTIPLEX,
    level="must",
)
async def test_hundred_streams(smux_session: aio.Session, smux_check: SmuxCheck) -> None:
    """100 ECHO streams at once, each with its own seeded payload of 1 to 16 KiB; every
    stream must get back exactly its own bytes."""
    rng = random.Random(100)
    payloads = [payload(rng.randrange(1 << 30), rng.randint(1, 16 * KIB)) for _ in range(100)]
    streams = [await open_with_line(smux_session, b"ECHO\n") for _ in payloads]
    total = sum(map(len, payloads))
    async with step(smux_check, f"100 streams echo {total} bytes in all", budget(total)):
        results = await asyncio.gather(
            *(echo_round_trip(s, [p]) for s, p in zip(streams, payloads, strict=True)),
            return_exceptions=True,
        )
    wrong = [
        f"stream {s.id}: {r!r}" if isinstance(r, BaseException) else f"stream {s.id}: {len(r)} B"
        for s, p, r in zip(streams, payloads, results, strict=True)
        if r != p
    ]
    smux_check.expect(
        not wrong,
        expected="each of the 100 streams echoes exactly its own payload",
        actual=f"{len(wrong)} streams differ: " + "; ".join(wrong[:5]),
    )
    for stream in streams:
        stream.close()


@case(
    "smux/5.1/interop-100-peer-streams",
    title="A hundred concurrent streams opened by the peer (OPEN 100 SOURCE)",
    spec="5.1",
    requirement=_NO_REUSE,
    level="must",
    relies_on=(FIN_CASE, PEER_OPENS),
)
async def test_hundred_peer_streams(
    smux_session: aio.Session, smux_check: SmuxCheck, role: Role
) -> None:
    """``OPEN 100 SOURCE 4096``: the peer opens 100 streams, each sending 4096 pattern
    bytes; the suite accepts all of them, with distinct ids of the peer's parity."""
    control = await open_with_line(smux_session, b"OPEN 100 SOURCE 4096\n")
    accepted: list[aio.Stream] = []
    async with step(
        smux_check, "100 streams opened by the peer are accepted", prerequisite=PEER_OPENS
    ):
        for _ in range(100):
            accepted.append(await smux_session.accept_stream())
    async with step(smux_check, "the OPEN reply line"):
        line = await control.readline()
    ids = [s.id for s in accepted]
    parity = 0 if role == "server" else 1
    smux_check.expect(
        len(set(ids)) == 100 and all(i % 2 == parity for i in ids),
        expected=f"100 distinct stream ids, all {'even' if parity == 0 else 'odd'}",
        actual=f"ids {ids}",
    )
    # OPENED lists the ids in the order the peer allocated them; its SYNs may reach the
    # wire in another order (a shaper that round-robins streams, as smux_rust's does),
    # which no receiver depends on (SPEC.md 5.4 accepts any new id).
    words = line.split()
    smux_check.expect(
        words[:1] == [b"OPENED"] and sorted(words[1:]) == sorted(str(i).encode() for i in ids),
        expected="OPENED followed by the ids of the accepted streams",
        actual=describe_end(line, 200),
    )
    bodies = await bodies_then_eof(smux_check, accepted, 4096)
    want = PERIOD[:4096]
    wrong = [
        f"stream {s.id}: {len(b)} B" for s, b in zip(accepted, bodies, strict=True) if b != want
    ]
    smux_check.expect(
        not wrong,
        expected="every stream carries the 4096 pattern bytes, then EOF",
        actual=f"{len(wrong)} streams differ: " + "; ".join(wrong[:5]),
    )
    for stream in [control, *accepted]:
        stream.close()


# -- transfers ---------------------------------------------------------------------------
def _random_writes(seed: int, total: int, largest: int) -> list[bytes]:
    """Seeded chunks adding up to ``total``: half tiny (1-64 bytes), half 1..``largest``."""
    rng = random.Random(seed)
    chunks: list[bytes] = []
    left = total
    while left:
        size = min(left, rng.choice((rng.randint(1, 64), rng.randint(1, largest))))
        chunks.append(rng.randbytes(size))
        left -= size
    return chunks


@case(
    "smux/6.2/interop-echo-random-writes",
    title="ECHO of seeded random writes, in frames above the peer's own MaxFrameSize",
    spec="6.2",
    requirement=_ANY_LEN,
    level="must",
)
async def test_echo_random_writes(smux_session: aio.Session, smux_check: SmuxCheck) -> None:
    """1 MiB in writes of seeded random sizes from 1 byte to 96 KiB.  The suite sends
    them in PSH frames of up to its default MaxFrameSize, 32768 bytes; a peer must
    accept them whatever its own MaxFrameSize (Go up to v1.0.7: 4096), and the echo
    must come back unchanged."""
    chunks = _random_writes(62, MIB, 96 * KIB)
    stream = await open_with_line(smux_session, b"ECHO\n")
    await expect_echo(smux_check, stream, chunks, f"{len(chunks)} random writes")
    stream.close()


@case(
    "smux/6.2/interop-echo-65535-frames",
    title="ECHO over PSH frames of the largest length, 65535 bytes",
    spec="6.2",
    requirement=_ANY_LEN,
    level="must",
)
@pytest.mark.local_config(max_frame_size=65535)
async def test_echo_largest_frames(smux_session: aio.Session, smux_check: SmuxCheck) -> None:
    """With the suite's MaxFrameSize at 65535, 1 MiB of seeded random writes (most of
    them several frames long) goes out in frames of up to 65535 bytes, and must be
    echoed unchanged.  If not, the peer process is probed: a peer that died on such a
    frame is reported as crashed (and a pooled server is replaced for later cases)."""
    chunks = _random_writes(65535, MIB, 4 * 65535)
    stream = await open_with_line(smux_session, b"ECHO\n")
    try:
        await expect_echo(smux_check, stream, chunks, f"{len(chunks)} writes in frames to 65535 B")
    except AssertionError:
        smux_check.alive()  # a crash is the worse finding: it replaces the echo's failure
        raise
    stream.close()


async def _upload(stream: aio.Stream, data: bytes) -> None:
    """Write ``data`` in chunks of :data:`WRITE_CHUNK`, then close the write side."""
    view = memoryview(data)
    await write_all(stream, [view[i : i + WRITE_CHUNK] for i in range(0, len(data), WRITE_CHUNK)])
    stream.close_write()


@case(
    "smux/10.2/interop-sink",
    title="Upload through SINK: the peer replies with count and SHA-256 after the FIN",
    spec="10.2",
    requirement=_SEND_AFTER_FIN,
    level="must",
    relies_on=(FIN_CASE,),
)
@pytest.mark.parametrize("size", SIZES, ids=_SIZE_IDS)
async def test_sink(smux_session: aio.Session, smux_check: SmuxCheck, size: int) -> None:
    """``SINK``, ``size`` seeded bytes, FIN (half-close); the peer must report the count
    and SHA-256 of exactly those bytes, then end the stream.  The reply comes after the
    suite's FIN, so the peer must also still write after it (10.2)."""
    data = payload(size, size)
    stream = await open_with_line(smux_session, b"SINK\n")
    async with step(smux_check, f"SINK accepts {size} bytes and a FIN", budget(size)):
        await _upload(stream, data)
    async with step(smux_check, "the SINK reply line after the FIN"):
        reply = await stream.readline()
    want = f"{size} {sha256_hex(data)}\n".encode()
    smux_check.expect(
        reply == want,
        expected=f"SINK reply {want!r}",
        actual=f"{reply!r}" if reply else "end of stream without a reply",
    )
    async with step(smux_check, "end of stream after the SINK reply", prerequisite=FIN_CASE):
        rest = await stream.read()
    smux_check.expect(
        rest == b"",
        expected="end of stream after the SINK reply",
        actual=describe_end(rest),
    )
    stream.close()


@case(
    "smux/10.4/interop-source",
    title="Download through SOURCE: every byte before the FIN",
    spec="10.4",
    requirement=_FIN_AFTER_DATA,
    level="must",
)
@pytest.mark.parametrize("size", SIZES, ids=_SIZE_IDS)
async def test_source(smux_session: aio.Session, smux_check: SmuxCheck, size: int) -> None:
    """``SOURCE size``: the peer writes ``size`` pattern bytes and closes the stream; the
    suite must read exactly those bytes (by count and SHA-256) and then EOF."""
    stream = await open_with_line(smux_session, f"SOURCE {size}\n".encode())
    digest = hashlib.sha256()
    async with step(smux_check, f"{size} SOURCE bytes, then EOF", budget(size)):
        count = await read_all(stream, digest.update)
    smux_check.expect(
        (count, digest.hexdigest()) == (size, pattern_digest(size)),
        expected=f"{size} bytes with SHA-256 {pattern_digest(size)}, then EOF",
        actual=f"{count} bytes with SHA-256 {digest.hexdigest()}",
    )
    stream.close()


# -- half-close --------------------------------------------------------------------------
@case(
    "smux/10.2/interop-half-close",
    title="Half-close: all data before the suite's FIN is echoed, then EOF",
    spec="10.2",
    requirement=_DELIVER_BEFORE_FIN,
    level="must",
    relies_on=(FIN_CASE,),
)
async def test_half_close(smux_session: aio.Session, smux_check: SmuxCheck) -> None:
    """``ECHO``, 256 KiB and FIN in one go, before reading anything: the peer sees the
    FIN while most of the echo is still to be written, and must write it all, then
    close; the suite reads the whole echo and then EOF."""
    data = payload(10_2, 256 * KIB)
    stream = await open_with_line(smux_session, b"ECHO\n")
    async with step(smux_check, "256 KiB written and the write side closed", budget(len(data))):
        await _upload(stream, data)
    (got,) = await bodies_then_eof(smux_check, [stream], len(data))
    smux_check.expect(
        got == data,
        expected=f"the {len(data)} bytes echoed back, then EOF",
        actual=f"{len(got)} bytes{', different' if got != data[: len(got)] else ''}, then EOF",
    )
    stream.close()


# -- stream ids --------------------------------------------------------------------------
async def _check_open_ids(session: aio.Session, check: SmuxCheck, want: list[int]) -> None:
    """``OPEN 3 SOURCE 10`` on a fresh session: the peer's reply names ``want`` in that
    order, the three streams it opens arrive with those ids, each with its 10 bytes."""
    control = await open_with_line(session, b"OPEN 3 SOURCE 10\n")
    async with step(check, "the OPEN reply line"):
        line = await control.readline()
    require_opened(check, line)
    check.expect(
        line == ("OPENED " + " ".join(map(str, want)) + "\n").encode(),
        expected=f"OPENED {' '.join(map(str, want))}",
        actual=describe_end(line),
    )
    async with step(check, "the 3 streams opened by the peer are accepted"):
        accepted = [await session.accept_stream() for _ in want]
    check.expect(
        sorted(s.id for s in accepted) == want,
        expected=f"SYN frames for stream ids {want} (the OPENED line gives their order)",
        actual=f"SYN frames for {[s.id for s in accepted]}",
    )
    bodies = await bodies_then_eof(check, accepted, 10)
    check.expect(
        all(b == PERIOD[:10] for b in bodies),
        expected="each opened stream carries SOURCE 10: bytes 0..9, then EOF",
        actual=repr(bodies),
    )
    for stream in [control, *accepted]:
        stream.close()


@case(
    "smux/5.1/interop-server-ids",
    title="A server peer opens streams 2, 4, 6",
    spec="5.1",
    requirement=_SERVER_IDS,
    level="should",
    relies_on=(FIN_CASE, PEER_OPENS),
)
@pytest.mark.roles("server")
async def test_server_ids(smux_session: aio.Session, smux_check: SmuxCheck) -> None:
    """``OPEN 3 SOURCE 10`` on a fresh session: the reply and the SYNs name 2, 4, 6."""
    await _check_open_ids(smux_session, smux_check, [2, 4, 6])


@case(
    "smux/5.1/interop-client-ids",
    title="A client peer opens streams 3, 5, 7",
    spec="5.1",
    requirement=_CLIENT_IDS,
    level="should",
    relies_on=(FIN_CASE, PEER_OPENS),
)
@pytest.mark.roles("client")
async def test_client_ids(smux_session: aio.Session, smux_check: SmuxCheck) -> None:
    """``OPEN 3 SOURCE 10`` on a fresh session: the reply and the SYNs name 3, 5, 7."""
    await _check_open_ids(smux_session, smux_check, [3, 5, 7])


# -- ending sessions -----------------------------------------------------------------------
@case(
    "smux/11/interop-exit",
    title="The peer closes the session (EXIT): pending reads end, nothing hangs",
    spec="11",
    requirement=_END_STREAMS,
    level="must",
)
async def test_exit(smux_session: aio.Session, smux_check: SmuxCheck) -> None:
    """A ``SINK`` stream waits for data and a read waits on it when another stream says
    ``EXIT``: the peer closes the transport, so the read must end (EOF or an error),
    accepting must fail and the session must be over.  A server peer must go on serving
    new connections (CONTRACT.md rule 6); a client peer must exit with status 0 (rule 8).
    """
    waiting = await open_with_line(smux_session, b"SINK\n")
    pending = asyncio.ensure_future(waiting.read())
    accepting = asyncio.ensure_future(smux_session.accept_stream())
    outcomes: list[str] = []
    try:
        await open_with_line(smux_session, b"EXIT\n")
        # A peer that keeps the connection open breaks the contract, not SPEC.md 11:
        # the expected text names the rule, since the headline's requirement is 11's.
        async with step(
            smux_check, "the peer closes the transport after EXIT (CONTRACT.md rule 17)"
        ):
            await smux_session.wait_closed()
        for name, task in (("pending read", pending), ("pending accept", accepting)):
            async with step(smux_check, f"the {name} ends once the session has ended"):
                with contextlib.suppress(SmuxError, ConnectionError):
                    await task
            error = task.exception()
            outcomes.append(f"{name}: {error!r}" if error else f"{name}: {task.result()!r}")
    finally:
        for task in (pending, accepting):
            task.cancel()
        await asyncio.gather(pending, accepting, return_exceptions=True)
    smux_check.info("after EXIT: " + "; ".join(outcomes))
    smux_check.expect(
        smux_session.is_closed,
        expected="the suite's session is closed once the peer closed the transport",
        actual=f"{smux_session!r}",
    )
    smux_check.alive()  # server: a fresh connection works; client: exit status 0


@case(
    "smux/4.5/interop-close-mid-transfer",
    title="The suite closes the session in the middle of a 64 MiB SOURCE",
    spec="4.5",
    requirement=_SESSION_ENDED,
    level="must",
)
async def test_close_mid_transfer(smux_session: aio.Session, smux_check: SmuxCheck) -> None:
    """``SOURCE 67108864``; after the first MiB the suite closes its session, which only
    closes the transport (section 11).  The peer must take that as the end of the
    session: a server peer keeps serving new connections (CONTRACT.md rule 6), a client
    peer exits with status 0 (rule 8)."""
    stream = await open_with_line(smux_session, f"SOURCE {64 * MIB}\n".encode())
    async with step(smux_check, "the first MiB of SOURCE 67108864", budget(MIB)):
        first = await stream.readexactly(MIB)
    smux_check.expect(
        sha256_hex(first) == pattern_digest(MIB),
        expected="the first MiB is the SOURCE pattern",
        actual=f"SHA-256 {sha256_hex(first)}",
    )
    smux_session.close()
    async with step(smux_check, "the suite's session closes its transport"):
        await smux_session.wait_closed()
    smux_check.alive()  # server: a fresh connection works; client: exit status 0
