"""Hypothesis strategies for smux frames and byte streams, shared by the test modules.

``frames(version)`` draws frames a strict decoder of that version accepts,
``frame_streams(version)`` lists of them, ``chunkings(data)`` the ways a transport may
cut a byte string into reads, and ``raw_headers()`` any 8 header bytes at all.
"""

from __future__ import annotations

import itertools

from hypothesis import strategies as st

from smuxref import Cmd, Frame, Upd
from smuxref._frame import VERSIONS

__all__ = [
    "DEFAULT_MAX_PAYLOAD",
    "chunkings",
    "damaged_streams",
    "frame_streams",
    "frames",
    "raw_headers",
    "sids",
    "split_at",
    "upds",
    "versions",
]

#: Payload size drawn by default: small enough for fast examples, large enough to span
#: many reads.  Pass ``max_payload=65535`` to ``frames`` to cover the whole LEN range.
DEFAULT_MAX_PAYLOAD = 300

sids = st.integers(min_value=0, max_value=0xFFFFFFFF)
versions = st.sampled_from(VERSIONS)
upds = st.builds(
    Upd,
    consumed=st.integers(min_value=0, max_value=0xFFFFFFFF),
    window=st.integers(min_value=0, max_value=0xFFFFFFFF),
)


@st.composite
def _frame(
    draw: st.DrawFn, version: int | None, max_payload: int, commands: tuple[Cmd, ...] | None
) -> Frame:
    ver = draw(versions) if version is None else version
    allowed = [c for c in Cmd if ver == 2 or c != Cmd.UPD]
    if commands is not None:
        allowed = [c for c in allowed if c in commands]
    cmd = draw(st.sampled_from(allowed))
    sid = draw(sids)
    if cmd == Cmd.PSH:
        data = draw(st.binary(max_size=max_payload))
    elif cmd == Cmd.UPD:
        data = draw(upds).encode()
    else:
        data = b""
    return Frame(ver, cmd, sid, data)


def frames(
    version: int | None = None,
    *,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
    commands: tuple[Cmd, ...] | None = None,
) -> st.SearchStrategy[Frame]:
    """Frames that a strict decoder of ``version`` accepts (``None``: version 1 or 2 each).

    SYN, FIN and NOP carry no payload, PSH carries 0..``max_payload`` bytes and UPD
    (version 2 only) an encoded :class:`Upd`.  ``commands`` limits the commands drawn.
    """
    return _frame(version, max_payload, commands)


def frame_streams(
    version: int | None = None,
    *,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
    min_size: int = 0,
    max_size: int = 12,
) -> st.SearchStrategy[list[Frame]]:
    """Lists of frames as one session sends them: every frame of the same version."""
    if version is None:
        return versions.flatmap(
            lambda v: frame_streams(
                v, max_payload=max_payload, min_size=min_size, max_size=max_size
            )
        )
    return st.lists(frames(version, max_payload=max_payload), min_size=min_size, max_size=max_size)


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    """Cut ``data`` at the given offsets (any order, repeats give empty pieces)."""
    bounds = [0, *sorted(cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def chunkings(data: bytes, *, max_cuts: int = 20) -> st.SearchStrategy[list[bytes]]:
    """The ways a transport may deliver ``data``: pieces, possibly empty, that join to it."""
    return st.lists(st.integers(min_value=0, max_value=len(data)), max_size=max_cuts).map(
        lambda cuts: split_at(data, cuts)
    )


def raw_headers() -> st.SearchStrategy[bytes]:
    """Any 8 header bytes, biased towards the interesting VER, CMD and LEN values."""
    return st.builds(
        lambda ver, cmd, length, sid: (
            ver.to_bytes(1, "little")
            + cmd.to_bytes(1, "little")
            + length.to_bytes(2, "little")
            + sid.to_bytes(4, "little")
        ),
        st.one_of(st.sampled_from([0, 1, 2, 3, 255]), st.integers(0, 255)),
        st.one_of(st.sampled_from([0, 1, 2, 3, 4, 5, 255]), st.integers(0, 255)),
        st.one_of(st.sampled_from([0, 1, 7, 8, 9, 100, 101, 0xFFFF]), st.integers(0, 0xFFFF)),
        sids,
    )


@st.composite
def _damaged(draw: st.DrawFn, version: int | None) -> bytes:
    stream = draw(frame_streams(version, max_payload=40, max_size=6))
    wire = b"".join(f.encode() for f in stream)
    how = draw(st.sampled_from(["insert-header", "flip", "truncate", "garbage"]))
    if how == "insert-header":
        at = draw(st.integers(0, len(wire)))
        tail = draw(st.binary(max_size=20))
        return wire[:at] + draw(raw_headers()) + tail + wire[at:]
    if how == "flip" and wire:
        at = draw(st.integers(0, len(wire) - 1))
        return wire[:at] + bytes([draw(st.integers(0, 255))]) + wire[at + 1 :]
    if how == "truncate":
        return wire[: draw(st.integers(0, len(wire)))]
    return wire + draw(st.binary(max_size=40))


def damaged_streams(version: int | None = None) -> st.SearchStrategy[bytes]:
    """Byte strings near a valid stream: one inserted header, one changed byte, cut short, or
    followed by random bytes.  Random bytes alone rarely get past the version byte."""
    return st.one_of(_damaged(version), st.binary(max_size=200))
