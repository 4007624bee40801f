"""What the engine keeps per stream: its state, its read accounting, its output queue.

Kept apart from the engine so that adapters can type the record they hold on to: an
adapter's stream object is a view of one :class:`StreamInfo` and keeps no copy of it.
"""

from __future__ import annotations

from collections import deque
from typing import Final

from ._frame import INITIAL_PEER_WINDOW
from ._state import StreamState
from .errors import FlowControlError, SmuxError

__all__ = ["StreamInfo", "byte_view"]

_MASK32: Final = 0xFFFFFFFF


def byte_view(data: bytes | bytearray | memoryview) -> memoryview:
    """``data`` as a flat byte view the engine may hold until ``data_to_send``.

    Bytes, and views of bytes, are immutable and taken as they are; anything else is
    copied, since its owner may change it after ``send`` returns.
    """
    if type(data) is bytes:
        return memoryview(data)
    if type(data) is memoryview and type(data.obj) is bytes and data.c_contiguous:
        return data.cast("B")
    return memoryview(bytes(data))


class StreamInfo:
    """Per-stream bookkeeping.  Slotted: a session may hold many thousands of these.

    The engine drops a finished stream from its table, but the record itself stays
    valid: an adapter that holds it still reads the final state, ``eof`` and
    ``send_error`` from it.
    """

    __slots__ = (
        "accepted",
        "buffered",
        "eof",
        "fin_queued",
        "handle",
        "incr",
        "num_read",
        "num_written",
        "outbox",
        "peer_consumed",
        "peer_window",
        "prepaid",
        "queued",
        "send_error",
        "sid",
        "state",
    )

    def __init__(self, sid: int, *, accepted: bool) -> None:
        self.sid = sid
        self.state = StreamState.OPEN
        self.accepted = accepted
        #: Delivered to the application and not yet reported consumed.
        self.buffered = 0
        #: Bytes the application reported read, then put back (a cancelled
        #: ``readexactly``): reading them again returns no tokens a second time.
        self.prepaid = 0
        #: The peer's FIN arrived: after the delivered data, the stream is at its end.
        self.eof = False
        #: Version 2: data written beyond the peer's window, in order, and its size.
        self.outbox: deque[memoryview] | None = None
        self.queued = 0
        #: A FIN the application asked for waits behind ``outbox``.
        self.fin_queued = False
        #: Why data waiting in ``outbox`` was dropped (the peer over-acknowledged).
        self.send_error: SmuxError | None = None
        #: The adapter's object for this stream (its view); the engine never looks at it.
        self.handle: object = None
        # Version 2 accounting, all modulo 2**32 as on the wire (SPEC.md 9).
        self.num_written = 0
        self.num_read = 0
        self.incr = 0
        self.peer_consumed = 0
        self.peer_window = INITIAL_PEER_WINDOW

    def unpaid(self, n: int) -> int:
        """Of ``n`` bytes the application reported read, those whose tokens were not
        returned yet: bytes it had put back were paid for the first time."""
        skip = min(self.prepaid, n)
        self.prepaid -= skip
        return n - skip

    def count_read(self, n: int, every: int) -> bool:
        """Version 2: count ``n`` more bytes read; whether a UPD is due now, on the
        first read and then once ``every`` more bytes were read (SPEC.md 9.2)."""
        self.num_read = (self.num_read + n) & _MASK32
        self.incr += n
        if self.incr >= every or self.num_read == n:
            self.incr = 0
            return True
        return False

    def inflight(self) -> int:
        """Bytes sent and not yet acknowledged; negative when the peer over-acknowledged."""
        value = (self.num_written - self.peer_consumed) & _MASK32
        return value - (1 << 32) if value & 0x80000000 else value

    def window_left(self) -> int:
        """Version 2: bytes the peer's window takes now (SPEC.md 9.3), which may be
        negative; FlowControlError once it acknowledged more than was sent (9.4)."""
        inflight = self.inflight()
        if inflight < 0:
            raise FlowControlError(
                f"peer acknowledged {self.peer_consumed} bytes of stream {self.sid} "
                f"but only {self.num_written} were sent",
            )
        return self.peer_window - inflight

    def __repr__(self) -> str:
        return (
            f"<StreamInfo {self.sid} {self.state.value} buffered={self.buffered}"
            f" queued={self.queued}{' eof' if self.eof else ''}>"
        )
