"""The stream state machine, as one table (SPEC.md 10.5).

smux has no SYN-ACK and no reset, so a stream is born OPEN (on the SYN either side
sends) and dies when both directions are finished or the local side closes it::

                         send FIN                       recv FIN
            +------------------------ OPEN ------------------------+
            v                          |                           v
      LOCAL_CLOSED                     | close()             REMOTE_CLOSED
   (we sent FIN; peer may              |                  (peer sent FIN; we
    still send data)                   v                   may still send)
            |        recv FIN        CLOSED        send FIN        |
            +--------------------->  (removed) <-------------------+

Every (state, input) pair has a row, so nothing is decided outside this table: the
engine looks the pair up and performs the named effect.  Rows where the Go library is
lenient (data after FIN delivered, duplicate FIN ignored) cite the SPEC section that
says so.
"""

from __future__ import annotations

from enum import Enum
from typing import Final

__all__ = ["TRANSITIONS", "Effect", "StreamInput", "StreamState", "transition"]


class StreamState(Enum):
    OPEN = "open"
    #: We sent FIN (close_write); the peer may still send.
    LOCAL_CLOSED = "local_closed"
    #: The peer sent FIN; we may still send.
    REMOTE_CLOSED = "remote_closed"
    #: Both directions finished, or closed locally.  Kept only while the application
    #: still has unread data; frames that arrive for it are dropped.
    CLOSED = "closed"

    # Members are singletons compared by identity, so identity hashing is consistent;
    # Enum's default hashes the name in Python code, and the table is looked up per frame.
    __hash__ = object.__hash__


class StreamInput(Enum):
    SEND_PSH = "send_psh"
    RECV_PSH = "recv_psh"
    SEND_FIN = "send_fin"
    RECV_FIN = "recv_fin"
    SEND_UPD = "send_upd"
    RECV_UPD = "recv_upd"
    #: The application closes the stream for good (Go's Stream.Close).
    CLOSE = "close"

    __hash__ = object.__hash__  # as StreamState's


class Effect(Enum):
    #: Put the frame on the wire.
    SEND = "send"
    #: The application may not do this any more: raise StreamClosedError.
    REFUSE = "refuse"
    #: Hand the data to the application and charge the receive buffer.
    DELIVER = "deliver"
    #: Drop the frame silently (SPEC.md 5.5): no event, no buffer charge.
    DROP = "drop"
    #: Report the peer's FIN to the application.
    END = "end"
    #: Record the peer's UPD (version 2 window).
    WINDOW = "window"
    #: Send FIN, then discard unread data.
    FIN_AND_DISCARD = "fin_and_discard"
    #: Discard unread data (FIN already sent).
    DISCARD = "discard"


S = StreamState
I = StreamInput  # noqa: E741
E = Effect

#: (state, input) -> (effect, next state).  Total over all pairs; see test_state_table.
TRANSITIONS: Final[dict[tuple[StreamState, StreamInput], tuple[Effect, StreamState]]] = {
    (S.OPEN, I.SEND_PSH): (E.SEND, S.OPEN),
    (S.OPEN, I.RECV_PSH): (E.DELIVER, S.OPEN),
    (S.OPEN, I.SEND_FIN): (E.SEND, S.LOCAL_CLOSED),
    (S.OPEN, I.RECV_FIN): (E.END, S.REMOTE_CLOSED),
    (S.OPEN, I.SEND_UPD): (E.SEND, S.OPEN),
    (S.OPEN, I.RECV_UPD): (E.WINDOW, S.OPEN),
    (S.OPEN, I.CLOSE): (E.FIN_AND_DISCARD, S.CLOSED),
    # Half-closed by us (v1.5.54+ CloseWrite): writing is over, reading goes on.
    (S.LOCAL_CLOSED, I.SEND_PSH): (E.REFUSE, S.LOCAL_CLOSED),
    (S.LOCAL_CLOSED, I.RECV_PSH): (E.DELIVER, S.LOCAL_CLOSED),
    (S.LOCAL_CLOSED, I.SEND_FIN): (E.REFUSE, S.LOCAL_CLOSED),
    (S.LOCAL_CLOSED, I.RECV_FIN): (E.END, S.CLOSED),
    (S.LOCAL_CLOSED, I.SEND_UPD): (E.SEND, S.LOCAL_CLOSED),
    (S.LOCAL_CLOSED, I.RECV_UPD): (E.WINDOW, S.LOCAL_CLOSED),
    (S.LOCAL_CLOSED, I.CLOSE): (E.DISCARD, S.CLOSED),
    # Half-closed by the peer: we may still write (SPEC.md 10.2); data that arrives
    # after the FIN is still delivered, as Go does (SPEC.md 10.3).
    (S.REMOTE_CLOSED, I.SEND_PSH): (E.SEND, S.REMOTE_CLOSED),
    (S.REMOTE_CLOSED, I.RECV_PSH): (E.DELIVER, S.REMOTE_CLOSED),
    (S.REMOTE_CLOSED, I.SEND_FIN): (E.SEND, S.CLOSED),
    (S.REMOTE_CLOSED, I.RECV_FIN): (E.DROP, S.REMOTE_CLOSED),
    (S.REMOTE_CLOSED, I.SEND_UPD): (E.SEND, S.REMOTE_CLOSED),
    (S.REMOTE_CLOSED, I.RECV_UPD): (E.WINDOW, S.REMOTE_CLOSED),
    (S.REMOTE_CLOSED, I.CLOSE): (E.FIN_AND_DISCARD, S.CLOSED),
    # Finished: the peer's frames are dropped as for an unknown stream (SPEC.md 5.5),
    # the application can do nothing but release it.
    (S.CLOSED, I.SEND_PSH): (E.REFUSE, S.CLOSED),
    (S.CLOSED, I.RECV_PSH): (E.DROP, S.CLOSED),
    (S.CLOSED, I.SEND_FIN): (E.REFUSE, S.CLOSED),
    (S.CLOSED, I.RECV_FIN): (E.DROP, S.CLOSED),
    (S.CLOSED, I.SEND_UPD): (E.DROP, S.CLOSED),
    (S.CLOSED, I.RECV_UPD): (E.DROP, S.CLOSED),
    (S.CLOSED, I.CLOSE): (E.DISCARD, S.CLOSED),
}


def transition(state: StreamState, event: StreamInput) -> tuple[Effect, StreamState]:
    """Look up one row; the table is total, so this never fails for valid enums."""
    return TRANSITIONS[state, event]
