"""A raw, frame-level TCP connection to a peer, for plain synchronous test functions.

Cases that test the protocol itself must send bytes no correct implementation would
send and see exactly what the peer answers, so this is not a smux session: the test
writes frames (or any bytes), and reads what the peer sent, decoded leniently (any
version byte, command or length is shown as it is).  Every wait has a deadline
(seconds before ``--smux-timeout-scale``), and every failure message carries the
frames waited among and a hex transcript of the connection, so a failing case explains
itself without a packet capture.

Frames are kept in arrival order in :attr:`RawConnection.pending` until an
``expect_frame`` takes one: frames that do not match are left there for later
expectations, never dropped.  NOP and UPD are passed over unless ``control=True``.
"""

from __future__ import annotations

import select
import socket
import struct
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Final, NamedTuple

from smuxref import HEADER_SIZE, Cmd, Frame, FrameDecoder, ProtocolError
from smuxref.dissect import HEADING, Header, format_headers

from .deadlines import CONNECT, EXPECT, Deadline, scaled
from .errors import ConnectionNotClosed, FrameTimeout, UnexpectedFrame

__all__ = ["RawConnection", "TranscriptEntry", "dial", "fin_owed_streams"]

CONTROL: Final = (Cmd.NOP, Cmd.UPD)
_SHOW_ENTRIES: Final = 40
_SHOW_FRAMES: Final = 60
_HEADER: Final = struct.Struct("<BBHI")
_SHOW_BYTES: Final = 96
#: How long (before scaling) the peer's bytes may stop inside a frame before a wait for a
#: frame gives up: the gate blames a failure on such a stall (``stalled_mid_frame``, 0.5 s
#: of real time) whatever the case waited for, so waiting on changes nothing but the time.
STALL_GIVE_UP: Final = 0.5
#: How long (before scaling) a connection may stay quiet, with no FIN from the peer on any
#: stream although it wrote on streams the suite had finished, before a wait for such a
#: stream's FIN gives up: the gate blames a failure then on the missing FIN (its "no FIN
#: at all" rule).  A correct peer sends its FIN right after its last data.
FIN_GIVE_UP: Final = 1.0


class TranscriptEntry(NamedTuple):
    """``direction`` is ``send``, ``recv``, ``eof``, ``reset`` or ``unsent`` (a send the
    peer's close refused); ``time`` is monotonic."""

    direction: str
    time: float
    data: bytes


class RawConnection:
    """One TCP connection; ``peer_role`` is the role the *peer* plays on it."""

    def __init__(
        self,
        sock: socket.socket,
        version: int,
        *,
        peer: str,
        peer_role: str,
        not_before: float | None = None,
    ) -> None:
        self.sock = sock
        self.version = version
        self.peer = peer
        self.peer_role = peer_role
        self.transcript: list[TranscriptEntry] = []
        self.frames: list[Frame] = []  #: every frame received, in order
        self.pending: list[Frame] = []  #: received frames no expectation has taken yet
        self.closed: str | None = None  #: "eof" or "reset" once the peer closed
        self.trailing = b""  #: bytes of an incomplete frame left at the end
        self._decoder = FrameDecoder(strict=False)
        self._last_recv = time.monotonic()  #: when the peer's last bytes arrived
        self._last_send = self._last_recv  #: when the suite last sent bytes
        self._fin_received = False  #: whether the peer sent a FIN on any stream
        #: Streams whose FIN comes without the suite's, after so many bytes (owe_fin).
        self.fin_owed: dict[int, int] = {}
        #: Set when a wait gave up because the peer's bytes stopped inside a frame.
        self.gave_up: str | None = None
        #: The suite's port of the connection (the peer's view of the remote port).
        name = sock.getsockname()  # a (host, port) tuple; '' for a socketpair in tests
        self.local_port: int = name[1] if isinstance(name, tuple) else 0
        self._next_sid = 1 if peer_role == "server" else 2
        #: When the connection was made (``time.monotonic()``; the transcript's origin).
        #: The peer's session began at about this time, perhaps a little later.
        self.started_at = time.monotonic()
        #: A time the peer's session certainly did not begin before (the connection did
        #: not exist yet): what a case uses to prove that the peer acted *too early*,
        #: because ``started_at`` may lag the peer's session on a loaded host.
        self.not_before = self.started_at if not_before is None else not_before
        sock.settimeout(scaled(EXPECT))  # bounds sendall (see send_raw); reads select first

    # -- sending -----------------------------------------------------------------------
    def send_raw(self, data: bytes, timeout: float = EXPECT) -> None:
        """Send bytes as they are (recorded in the transcript before sending).

        A peer that stops reading makes this block once the socket buffers are full:
        after ``timeout`` seconds (before scaling) it raises :class:`TimeoutError`.
        """
        self._last_send = time.monotonic()
        entry = TranscriptEntry("send", self._last_send, bytes(data))
        self.transcript.append(entry)
        self.sock.settimeout(scaled(timeout))
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError) as exc:
            # The peer had closed the connection: these bytes reached no session, so
            # they must not count as sent (a FIN the peer never saw is owed nothing),
            # and the message says what happened rather than only "Broken pipe".
            self.transcript[-1] = entry._replace(direction="unsent")
            raise type(exc)(
                exc.errno,
                f"{exc.strerror}: the peer had closed the connection when the suite "
                f"wrote {len(data)} more bytes (the frames below end with what it saw)",
            ) from exc

    def send_frame(self, frame: Frame, timeout: float = EXPECT) -> None:
        self.send_raw(frame.encode(), timeout)

    def next_sid(self) -> int:
        """A fresh stream id of the suite's side: odd as client, even as server."""
        sid, self._next_sid = self._next_sid, self._next_sid + 2
        return sid

    def open_stream(self, command: bytes | None = None) -> int:
        """Send SYN on a fresh id, then ``command`` (e.g. ``b"ECHO\\n"``) as one PSH."""
        sid = self.next_sid()
        data = Frame(self.version, Cmd.SYN, sid).encode()
        if command is not None:
            data += Frame(self.version, Cmd.PSH, sid, command).encode()
        self.send_raw(data)
        return sid

    # -- receiving ---------------------------------------------------------------------
    def transcript_received(self) -> bool:
        """Whether the peer sent any byte on this connection."""
        return any(e.direction == "recv" and e.data for e in self.transcript)

    def wait_for_answer(self, deadline: Deadline) -> bool:
        """Wait until the peer sends a byte, closes, or ``deadline`` passes; whether it
        sent any: for a probe that asks only whether the peer speaks at all."""
        while self.closed is None and not deadline.expired and not self.transcript_received():
            self._read(deadline.remaining())
        return self.transcript_received()

    def _read(self, timeout: float, limit: int = 65536) -> list[Frame]:
        """Wait up to ``timeout`` s for at most ``limit`` bytes; decode them; note EOF or
        reset."""
        if self.closed is not None:
            return []
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if not ready:
            return []
        try:
            data = self.sock.recv(limit)
        except (ConnectionResetError, ConnectionAbortedError):
            self._ended("reset")
            return []
        if not data:
            self._ended("eof")
            return []
        self._last_recv = time.monotonic()
        self.transcript.append(TranscriptEntry("recv", self._last_recv, data))
        try:
            frames = self._decoder.feed(data)
        except ProtocolError:  # pragma: no cover - a lenient decoder accepts any header
            frames = []
        self.frames += frames
        self.pending += frames
        self._fin_received = self._fin_received or any(f.cmd == Cmd.FIN for f in frames)
        return frames

    def _ended(self, how: str) -> None:
        self.closed = how
        self.transcript.append(TranscriptEntry(how, time.monotonic(), b""))
        try:
            self._decoder.close()
        except ProtocolError as exc:
            self.trailing = bytes(exc.header)

    def _stalled_for(self) -> float:
        """Seconds the peer's bytes have stopped inside a frame whose header came whole
        (0 between frames): cheap enough to ask on every turn of a wait."""
        if self._decoder.buffered < HEADER_SIZE or not self._decoder.missing:
            return 0.0
        return time.monotonic() - self._last_recv

    def owe_fin(self, sid: int, after: int = 0) -> None:
        """The peer's FIN on ``sid`` comes without the suite's FIN, once it has sent
        ``after`` bytes (SOURCE; HALFCLOSE: 0): a wait for it ends early as one for the
        FIN of a finished stream does (:meth:`no_fin_decided`)."""
        self.fin_owed[sid] = after

    def no_fin_decided(self) -> str | None:
        """After :data:`FIN_GIVE_UP` s (scaled) of quiet, the gate's no-FIN rule
        (judge.blame_missing_fin, which blames any failure of the case on the FIN case):
        the peer wrote on streams whose FIN it owed (:func:`fin_owed_streams`) and sent
        no FIN on any.  A correct peer sends its FIN right after its last data."""
        quiet = time.monotonic() - max(self._last_recv, self._last_send)
        if self._fin_received or quiet < max(scaled(FIN_GIVE_UP), FIN_GIVE_UP):
            return None
        answered = fin_owed_streams(self.frames, self.sent_frames(), self.fin_owed)
        if not answered:
            return None
        return (
            f"{quiet:.3g} s without a byte, no FIN on any stream although the peer wrote on "
            f"streams {answered[:5]}, whose FIN it owed"
        )

    def _fin_never_came(self, sids: Collection[int]) -> str | None:
        """:meth:`no_fin_decided`, for a wait for the FIN of one of ``sids`` that the peer
        owes: the suite finished it, or :meth:`owe_fin` (else the wait is for data)."""
        reason = self.no_fin_decided()  # cheap until the connection has been quiet
        if reason is None:
            return None
        owed = {*self.fin_owed, *(f.sid for f in self.sent_frames() if f.cmd == Cmd.FIN)}
        return reason if any(sid in owed for sid in sids) else None

    def _take(self, pred: Callable[[Frame], bool] | None, control: bool) -> Frame | None:
        for i, frame in enumerate(self.pending):
            if (control or frame.cmd not in CONTROL) and (pred is None or pred(frame)):
                return self.pending.pop(i)
        return None

    def expect_frame(
        self,
        pred: Callable[[Frame], bool] | None = None,
        timeout: float | Deadline = EXPECT,
        *,
        control: bool = False,
        what: str = "",
        patient: bool = False,
        fin_of: int | Collection[int] | None = None,
    ) -> Frame:
        """The first pending or arriving frame matching ``pred`` (any frame if None).

        NOP and UPD are passed over unless ``control``.  ``timeout`` is in seconds
        before scaling (or a :class:`Deadline`).  Raises :class:`FrameTimeout` at the
        deadline, when the peer closes the connection first, or (unless ``patient``:
        for a caller to whom the time passing is the point, a silence or a pacing
        interval) as soon as the peer's bytes have stopped inside a frame for
        :data:`STALL_GIVE_UP` s (scaled): no frame can match before that one completes.
        ``fin_of``: the wait is for that stream's (or those streams') data and FIN; it
        also gives up when that FIN will not come (:meth:`_fin_never_came`).
        """
        __tracebackhide__ = True
        deadline = timeout if isinstance(timeout, Deadline) else Deadline(timeout)
        give_up = max(scaled(STALL_GIVE_UP), STALL_GIVE_UP)
        while True:
            frame = self._take(pred, control)
            if frame is not None:
                return frame
            if self.closed is not None or deadline.expired:
                break
            stalled = self._stalled_for()
            # Nothing can match until a stalled frame completes, and a failure now is
            # blamed on the stall (gate: stalled_mid_frame) as it would be later; the
            # same for a FIN that will not come.  Bytes already in the socket first.
            reason = None
            if not patient and stalled >= give_up:
                reason = self.stalled_mid_frame() or "stalled inside a frame"
            elif not patient and fin_of is not None:
                reason = self._fin_never_came([fin_of] if isinstance(fin_of, int) else fin_of)
            if reason is not None:
                heard = self._last_recv
                self._read(0)
                if heard == self._last_recv and self.closed is None:
                    self.gave_up = reason
                    break
                continue
            wait = deadline.remaining()
            if fin_of is not None and not patient:
                wait = min(wait, max(scaled(FIN_GIVE_UP), FIN_GIVE_UP) / 2)
            self._read(wait if stalled == 0 or patient else min(wait, give_up - stalled))
        if self.closed:
            why = f"the peer closed the connection ({self.closed})"
        elif not deadline.expired and self.gave_up:
            why = f"stopped waiting: {self.gave_up}"
        else:
            why = "timeout"
        raise FrameTimeout(
            self.describe(f"expected {what or 'a frame'} within {deadline.budget:.3g} s: {why}")
        )

    def read_to_frame_boundary(self, timeout: float | Deadline = EXPECT) -> None:
        """Read exactly the rest of the frame the peer's bytes stop in, and no further.

        For a case that stops reading while the peer still writes (a SOURCE it left
        unread): the connection then ends on a whole frame, so its unread tail is not
        mistaken for a peer that stalled inside a frame (``stalled_mid_frame``).
        """
        deadline = timeout if isinstance(timeout, Deadline) else Deadline(timeout)
        give_up = max(scaled(STALL_GIVE_UP), STALL_GIVE_UP)
        while self._decoder.missing and self.closed is None and not deadline.expired:
            stalled = self._stalled_for()
            if stalled >= give_up:
                self.gave_up = self.stalled_mid_frame() or "stalled inside a frame"
                return
            wait = deadline.remaining() if stalled == 0 else min(deadline.remaining(), give_up)
            self._read(wait, self._decoder.missing)

    def expect_closed(self, timeout: float = EXPECT) -> list[Frame]:
        """Wait until the peer closes the connection (EOF or reset); return the frames
        received meanwhile.  Raises :class:`ConnectionNotClosed` at the deadline."""
        __tracebackhide__ = True
        deadline = Deadline(timeout)
        first = len(self.frames)
        while self.closed is None and not deadline.expired:
            self._read(deadline.remaining())
        if self.closed is None:
            raise ConnectionNotClosed(
                self.describe(
                    f"expected the peer to close the connection within {deadline.budget:.3g} s",
                    first,
                )
            )
        return self.frames[first:]

    def expect_silence(self, duration: float, *, control: bool = False) -> None:
        """Assert that no frame (NOP/UPD excepted unless ``control``) arrives, and the
        connection stays open, for ``duration`` seconds before scaling."""
        __tracebackhide__ = True
        deadline = Deadline(duration)
        first = len(self.frames)
        while not deadline.expired:
            frames = self._read(deadline.remaining())
            if any(control or f.cmd not in CONTROL for f in frames) or self.closed is not None:
                what = f"connection closed ({self.closed})" if self.closed else "a frame arrived"
                raise UnexpectedFrame(
                    self.describe(f"expected {deadline.budget:.3g} s of silence: {what}", first)
                )

    def read_stream(self, sid: int, timeout: float | Deadline = EXPECT) -> bytes:
        """Collect PSH payloads of ``sid`` until its FIN (one deadline for all); the bytes."""
        __tracebackhide__ = True
        timeout = timeout if isinstance(timeout, Deadline) else Deadline(timeout)
        data = bytearray()
        while True:
            frame = self.expect_frame(
                lambda f: f.sid == sid and f.cmd in (Cmd.PSH, Cmd.FIN),
                timeout,
                what=f"PSH/FIN on stream {sid}",
                fin_of=sid,
            )
            if frame.cmd == Cmd.FIN:
                return bytes(data)
            data += frame.data

    # -- reporting and closing ---------------------------------------------------------
    def describe(self, headline: str, since: int | None = None) -> str:
        """``headline``, the frames concerned, and the transcript in hex."""
        frames = self.pending if since is None else self.frames[since:]
        label = "pending (unmatched) frames" if since is None else "frames received meanwhile"
        lines = [f"{headline} [peer {self.peer}, role {self.peer_role}, v{self.version}]"]
        lines.append(f"{label}: {len(frames)}")
        lines += [f"    {f!r}" for f in frames[-_SHOW_ENTRIES:]]
        if self.trailing:
            lines.append(f"incomplete frame at the end: {self.trailing.hex(' ')}")
        lines.append(self.format_transcript())
        return "\n".join(lines)

    def format_transcript(self, last: int = _SHOW_ENTRIES) -> str:
        """The frames both sides sent, decoded as ``python -m smuxref.dissect`` prints
        them, then the last ``last`` transcript entries in hex (time since connect,
        direction, bytes) for what the decoding cannot show."""
        return self.format_frames(_SHOW_FRAMES) + "\n" + self.format_hex(last)

    def format_frames(self, last: int = _SHOW_FRAMES) -> str:
        """The last ``last`` frames of both directions, one line each, in time order."""
        suite, peer = ("c>s", "s>c") if self.peer_role == "server" else ("s>c", "c>s")
        lines: list[tuple[float, int, str]] = []
        for n, (direction, label) in enumerate((("send", suite), ("recv", peer))):
            data, marks = bytearray(), []
            for entry in self.transcript:
                if entry.direction == direction and entry.data:
                    data += entry.data
                    marks.append((len(data), entry.time - self.started_at))
            headers, rest = _split_headers(bytes(data))
            client = label == "c>s"
            for t, line in format_headers(
                bytes(data), headers, rest, marks, label, self.version, client=client
            ):
                lines.append((t, n, line))
        for entry in self.transcript:
            t = entry.time - self.started_at
            if entry.direction in ("eof", "reset"):
                lines.append((t, 2, f"{t:9.6f}  {peer}  -- {entry.direction.upper()}"))
            elif entry.direction == "unsent":
                what = f"-- NOT SENT: {len(entry.data)} bytes, the connection was closed"
                lines.append((t, 2, f"{t:9.6f}  {suite}  {what}"))
        lines.sort(key=lambda x: (x[0], x[1]))
        shown = [line for _, _, line in lines[-last:]]
        who = "the suite" if suite == "c>s" else "the peer"
        head = (
            f"frames ({len(shown)} of {len(lines)}; c>s: from the client, {who}; "
            f"time since connect; ~ a leniency, !! a protocol error):"
        )
        return "\n".join([head, "  " + HEADING, *("  " + line for line in shown)])

    def format_hex(self, last: int = _SHOW_ENTRIES) -> str:
        """The last ``last`` transcript entries: time since connect, direction, hex."""
        shown = self.transcript[-last:]
        out = [
            f"transcript ({len(shown)} of {len(self.transcript)} entries; > sent, < received, "
            "x> refused by the peer's close):"
        ]
        for entry in shown:
            arrow = {"send": ">", "recv": "<", "unsent": "x>"}.get(entry.direction, "x")
            data = entry.data[:_SHOW_BYTES].hex(" ")
            more = f" ... ({len(entry.data)} bytes)" if len(entry.data) > _SHOW_BYTES else ""
            body = data + more if entry.data else entry.direction.upper()
            out.append(f"  {entry.time - self.started_at:+9.4f} {arrow} {body}")
        return "\n".join(out)

    def pcap(self) -> bytes:
        """The connection as a pcap (Ethernet/IPv4/TCP, synthesized by the recording's
        writer), so a failure opens in Wireshark or tshark; client to server is the
        suite's direction when the peer is the server."""
        from .recording.pcap import pcap_bytes  # noqa: PLC0415 - only for failures
        from .recording.transcript import Direction, Transcript  # noqa: PLC0415

        out = Transcript()
        sent: Direction = "c2s" if self.peer_role == "server" else "s2c"
        received: Direction = "s2c" if sent == "c2s" else "c2s"
        for entry in self.transcript:
            t = max(0.0, entry.time - self.started_at)
            if entry.direction == "send":
                out.add(sent, t, entry.data)
            elif entry.direction == "recv":
                out.add(received, t, entry.data)
            elif entry.direction in ("eof", "reset"):
                out.end(received, t, "fin" if entry.direction == "eof" else "rst")
        return pcap_bytes(out)

    def take_in(self, seconds: float = 0.2) -> None:
        """Read what the peer has already sent (for ``seconds`` of real time at most),
        so a verdict about the connection sees frames no expectation waited for."""
        end = time.monotonic() + seconds
        while self.closed is None and self.sock.fileno() >= 0:
            left = end - time.monotonic()
            if left <= 0 or not self._read(left):
                break

    def sent_frames(self, *, while_open: bool = False) -> list[Frame]:
        """The frames the suite sent on this connection (decoded leniently); with
        ``while_open``, only those sent before the suite saw the peer close it: a frame
        sent after that reached no session, so the peer owed it nothing."""
        sends: list[bytes] = []
        for entry in self.transcript:
            if while_open and entry.direction in ("eof", "reset"):
                break
            if entry.direction == "send":
                sends.append(entry.data)
        data = b"".join(sends)
        decoder = FrameDecoder(strict=False)
        try:
            return decoder.feed(data)
        except ProtocolError:  # lenient decoding refuses nothing but a hostile LEN
            return []

    def stalled_mid_frame(self, quiet: float = 0.5) -> str | None:
        """When the peer's bytes stop inside a frame whose header came ``quiet`` seconds
        (real time) or more ago, or the connection ended inside it: what that header
        said.  A correct peer writes whole frames, so one that stays incomplete that long
        means its LEN and its bytes disagree (the byte stream is out of step)."""
        received = [e for e in self.transcript if e.direction == "recv" and e.data]
        data = b"".join(e.data for e in received)
        _, rest = _split_headers(data)
        if rest < HEADER_SIZE:
            return None
        start, total = len(data) - rest, 0
        began = received[-1].time
        for entry in received:
            total += len(entry.data)
            if total > start:
                began = entry.time
                break
        # A connection that ended inside the frame needs no wait: no byte can follow.
        if self.closed is None and time.monotonic() - began < quiet:
            return None
        ver, cmd, length, sid = _HEADER.unpack_from(data, start)
        ended = f", then the connection ended ({self.closed})" if self.closed else ""
        return (
            f"the peer's bytes stop {rest - HEADER_SIZE} bytes into a frame whose header says "
            f"VER {ver} CMD {cmd} LEN {length} SID {sid} ({data[start : start + 8].hex(' ')})"
            + ended
        )

    def abort(self) -> None:
        """Close with a TCP reset (SO_LINGER 0) instead of an orderly FIN."""
        if self.sock.fileno() >= 0:
            self.sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
        self.close()

    def close(self) -> None:
        self.sock.close()


def _split_headers(data: bytes) -> tuple[list[Header], int]:
    """Where the frame headers of a byte stream are, by following LEN (any field value
    accepted); and how many bytes of an incomplete frame are left at the end."""
    headers: list[Header] = []
    offset = 0
    while offset + HEADER_SIZE <= len(data):
        ver, cmd, length, sid = _HEADER.unpack_from(data, offset)
        if offset + HEADER_SIZE + length > len(data):
            break
        headers.append((offset, ver, cmd, sid, length))
        offset += HEADER_SIZE + length
    return headers, len(data) - offset


def dial(
    address: tuple[str, int], version: int, *, peer: str, timeout: float | Deadline = CONNECT
) -> RawConnection:
    """Connect to a server peer; the suite plays the client."""
    deadline = timeout if isinstance(timeout, Deadline) else Deadline(timeout)
    not_before = time.monotonic()
    sock = socket.create_connection(address, timeout=max(deadline.remaining(), 0.001))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return RawConnection(sock, version, peer=peer, peer_role="server", not_before=not_before)


def fin_owed_streams(
    frames: Iterable[Frame], sent: Iterable[Frame], owed: Mapping[int, int]
) -> list[int]:
    """The streams the peer wrote on whose FIN it owed: those the suite finished (its
    FIN in ``sent``) with a PSH from the peer, and those of ``owed`` (stream id -> bytes
    before its FIN, more than 0: SOURCE) whose data has all come."""
    finished = {f.sid for f in sent if f.cmd == Cmd.FIN}
    got: dict[int, int] = {}
    for frame in frames:
        if frame.cmd == Cmd.PSH:
            got[frame.sid] = got.get(frame.sid, 0) + len(frame.data)
    return sorted(sid for sid, n in got.items() if sid in finished or 0 < owed.get(sid, 0) <= n)
