"""The stream state machine, as one table (SPEC.md 10.5).

smux has no SYN-ACK and no reset, so a stream is born OPEN (on the SYN either side
sends) and dies when both directions are finished or the local side closes it::

                                 send / recv SYN
                   UNKNOWN ------------------------> OPEN
                                                      |
                         send FIN                     |          recv FIN
            +-----------------------------------------+------------------------+
            v                                         | close()                v
      LOCAL_CLOSED                                    v                  REMOTE_CLOSED
   (we sent FIN; peer may     recv FIN              CLOSED     send FIN   (peer sent FIN; we
    still send data)     ------------------------> (forgotten: <--------   may still send)
                                                    UNKNOWN again)

UNKNOWN stands for every id the engine tracks no stream for: never opened, or finished
and forgotten.  Every (state, input) pair has a row, and the engine decides nothing
about a stream outside this table: it classifies what happened as a
:class:`StreamInput` (a frame that arrived, a call of the application), looks the pair
up and performs the named :class:`Effect`.  Rows where the Go library is lenient (data
after FIN delivered, duplicate SYN or FIN ignored, frames for unknown ids dropped) cite
the SPEC section that says so.

"Send" rows describe the stream's ordered output: a FIN the application asks for goes
out after the data it wrote before, which in version 2 may still wait for the peer's
window (SPEC.md 9.3).  The state changes when the application asks, so a write after
close_write is refused at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Final

__all__ = ["TRANSITIONS", "Effect", "StreamInput", "StreamState", "transition"]


class StreamState(Enum):
    #: No stream with this id: never opened, or finished and forgotten (SPEC.md 5.5).
    UNKNOWN = "unknown"
    OPEN = "open"
    #: We sent FIN (close_write); the peer may still send.
    LOCAL_CLOSED = "local_closed"
    #: The peer sent FIN; we may still send.
    REMOTE_CLOSED = "remote_closed"
    #: Both directions finished, or closed locally.  Kept only while the application
    #: still has unread data or written data still waits for the peer's window.
    CLOSED = "closed"

    # Members are singletons compared by identity, so identity hashing is consistent;
    # Enum's default hashes the name in Python code, and the table is looked up per frame.
    __hash__ = object.__hash__


class StreamInput(Enum):
    #: The application opens a stream (Go's OpenStream).
    SEND_SYN = "send_syn"
    #: The peer opens a stream.
    RECV_SYN = "recv_syn"
    SEND_PSH = "send_psh"
    RECV_PSH = "recv_psh"
    #: A PSH without payload arrived (SPEC.md 6.3).
    RECV_EMPTY_PSH = "recv_empty_psh"
    SEND_FIN = "send_fin"
    RECV_FIN = "recv_fin"
    SEND_UPD = "send_upd"
    RECV_UPD = "recv_upd"
    #: The application closes the stream for good (Go's Stream.Close).
    CLOSE = "close"

    __hash__ = object.__hash__  # as StreamState's


class Effect(Enum):
    #: Put the frame on the stream's output (behind data still waiting for the window).
    SEND = "send"
    #: The application may not do this any more: raise StreamClosedError.
    REFUSE = "refuse"
    #: A new stream of the peer's: report it for accepting (subject to the
    #: ``reject_own_parity_syn`` hardening option, SPEC.md 5.4).
    ACCEPT = "accept"
    #: Hand the data to the application and charge the receive buffer.
    DELIVER = "deliver"
    #: Nothing happens: an arriving frame is dropped silently (no event, no buffer
    #: charge, SPEC.md 5.5), an outgoing one is not sent.
    DROP = "drop"
    #: Report the peer's FIN to the application.
    END = "end"
    #: Record the peer's UPD (version 2 window) and send what waited for it.
    WINDOW = "window"
    #: Send FIN (behind the data already written), then discard unread data.
    FIN_AND_DISCARD = "fin_and_discard"
    #: Discard unread data (FIN already sent or queued).
    DISCARD = "discard"


S = StreamState
I = StreamInput  # noqa: E741
E = Effect

#: (state, input) -> (effect, next state).  Total over all pairs; see test_state_table.
TRANSITIONS: Final[Mapping[tuple[StreamState, StreamInput], tuple[Effect, StreamState]]] = {
    # No such stream: only a SYN creates one; anything else for the id is dropped
    # (SPEC.md 5.5) or, asked by the application, refused.
    (S.UNKNOWN, I.SEND_SYN): (E.SEND, S.OPEN),
    (S.UNKNOWN, I.RECV_SYN): (E.ACCEPT, S.OPEN),
    (S.UNKNOWN, I.SEND_PSH): (E.REFUSE, S.UNKNOWN),
    (S.UNKNOWN, I.RECV_PSH): (E.DROP, S.UNKNOWN),
    (S.UNKNOWN, I.RECV_EMPTY_PSH): (E.DROP, S.UNKNOWN),
    (S.UNKNOWN, I.SEND_FIN): (E.REFUSE, S.UNKNOWN),
    (S.UNKNOWN, I.RECV_FIN): (E.DROP, S.UNKNOWN),
    (S.UNKNOWN, I.SEND_UPD): (E.DROP, S.UNKNOWN),
    (S.UNKNOWN, I.RECV_UPD): (E.DROP, S.UNKNOWN),
    (S.UNKNOWN, I.CLOSE): (E.DROP, S.UNKNOWN),
    # Open both ways.  A known id is never opened again: the id allocator skips ids
    # in use (SPEC.md 5.1) and a duplicate SYN is ignored (SPEC.md 5.4).
    (S.OPEN, I.SEND_SYN): (E.REFUSE, S.OPEN),
    (S.OPEN, I.RECV_SYN): (E.DROP, S.OPEN),
    (S.OPEN, I.SEND_PSH): (E.SEND, S.OPEN),
    (S.OPEN, I.RECV_PSH): (E.DELIVER, S.OPEN),
    (S.OPEN, I.RECV_EMPTY_PSH): (E.DROP, S.OPEN),
    (S.OPEN, I.SEND_FIN): (E.SEND, S.LOCAL_CLOSED),
    (S.OPEN, I.RECV_FIN): (E.END, S.REMOTE_CLOSED),
    (S.OPEN, I.SEND_UPD): (E.SEND, S.OPEN),
    (S.OPEN, I.RECV_UPD): (E.WINDOW, S.OPEN),
    (S.OPEN, I.CLOSE): (E.FIN_AND_DISCARD, S.CLOSED),
    # Half-closed by us (v1.5.54+ CloseWrite): writing is over, reading goes on.
    (S.LOCAL_CLOSED, I.SEND_SYN): (E.REFUSE, S.LOCAL_CLOSED),
    (S.LOCAL_CLOSED, I.RECV_SYN): (E.DROP, S.LOCAL_CLOSED),
    (S.LOCAL_CLOSED, I.SEND_PSH): (E.REFUSE, S.LOCAL_CLOSED),
    (S.LOCAL_CLOSED, I.RECV_PSH): (E.DELIVER, S.LOCAL_CLOSED),
    (S.LOCAL_CLOSED, I.RECV_EMPTY_PSH): (E.DROP, S.LOCAL_CLOSED),
    (S.LOCAL_CLOSED, I.SEND_FIN): (E.REFUSE, S.LOCAL_CLOSED),
    (S.LOCAL_CLOSED, I.RECV_FIN): (E.END, S.CLOSED),
    (S.LOCAL_CLOSED, I.SEND_UPD): (E.SEND, S.LOCAL_CLOSED),
    (S.LOCAL_CLOSED, I.RECV_UPD): (E.WINDOW, S.LOCAL_CLOSED),
    (S.LOCAL_CLOSED, I.CLOSE): (E.DISCARD, S.CLOSED),
    # Half-closed by the peer: we may still write (SPEC.md 10.2); data that arrives
    # after the FIN is still delivered, as Go does (SPEC.md 10.3).
    (S.REMOTE_CLOSED, I.SEND_SYN): (E.REFUSE, S.REMOTE_CLOSED),
    (S.REMOTE_CLOSED, I.RECV_SYN): (E.DROP, S.REMOTE_CLOSED),
    (S.REMOTE_CLOSED, I.SEND_PSH): (E.SEND, S.REMOTE_CLOSED),
    (S.REMOTE_CLOSED, I.RECV_PSH): (E.DELIVER, S.REMOTE_CLOSED),
    (S.REMOTE_CLOSED, I.RECV_EMPTY_PSH): (E.DROP, S.REMOTE_CLOSED),
    (S.REMOTE_CLOSED, I.SEND_FIN): (E.SEND, S.CLOSED),
    (S.REMOTE_CLOSED, I.RECV_FIN): (E.DROP, S.REMOTE_CLOSED),
    (S.REMOTE_CLOSED, I.SEND_UPD): (E.SEND, S.REMOTE_CLOSED),
    (S.REMOTE_CLOSED, I.RECV_UPD): (E.WINDOW, S.REMOTE_CLOSED),
    (S.REMOTE_CLOSED, I.CLOSE): (E.FIN_AND_DISCARD, S.CLOSED),
    # Finished: the peer's frames are dropped as for an unknown stream (SPEC.md 5.5),
    # except UPD, which still lets out data written before the close (and the FIN
    # behind it); the application can do nothing but release the stream.
    (S.CLOSED, I.SEND_SYN): (E.REFUSE, S.CLOSED),
    (S.CLOSED, I.RECV_SYN): (E.DROP, S.CLOSED),
    (S.CLOSED, I.SEND_PSH): (E.REFUSE, S.CLOSED),
    (S.CLOSED, I.RECV_PSH): (E.DROP, S.CLOSED),
    (S.CLOSED, I.RECV_EMPTY_PSH): (E.DROP, S.CLOSED),
    (S.CLOSED, I.SEND_FIN): (E.REFUSE, S.CLOSED),
    (S.CLOSED, I.RECV_FIN): (E.DROP, S.CLOSED),
    (S.CLOSED, I.SEND_UPD): (E.DROP, S.CLOSED),
    (S.CLOSED, I.RECV_UPD): (E.WINDOW, S.CLOSED),
    (S.CLOSED, I.CLOSE): (E.DISCARD, S.CLOSED),
}


def transition(state: StreamState, event: StreamInput) -> tuple[Effect, StreamState]:
    """Look up one row; the table is total, so this never fails for valid enums."""
    return TRANSITIONS[state, event]
