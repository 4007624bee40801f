"""FrameDecoder's runs: PSH frames of one length are split in C, with the same results.

After two PSH of the pinned version with one LEN, the decoder checks whether the rest
of the buffer repeats that header but for SID and, if so, splits it with
``struct.iter_unpack`` (``FrameDecoder._run``).  These tests hold that path to what
the frame-by-frame loop gives: the same frames (``cmd`` still the ``Cmd`` member), the
same errors with the same good frames before them, whatever the segmentation.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smuxref import Cmd, Frame, FrameDecoder, InvalidVersionError, ProtocolError, encode_raw


def one_by_one(wire: bytes, version: int) -> list[Frame]:
    """The reference: every frame fed on its own, so no run can form."""
    decoder = FrameDecoder(version)
    frames: list[Frame] = []
    pos = 0
    while pos < len(wire):
        length = int.from_bytes(wire[pos + 2 : pos + 4], "little")
        frames += decoder.feed(wire[pos : pos + 8 + length])
        pos += 8 + length
    return frames


def test_a_run_decodes_to_the_same_frames() -> None:
    frames = [Frame(2, Cmd.PSH, 1 + 2 * i, bytes([i % 256]) * 16) for i in range(1000)]
    got = FrameDecoder(2).feed(b"".join(f.encode() for f in frames))
    assert got == frames
    assert all(frame.cmd is Cmd.PSH for frame in got)
    assert all(type(frame) is Frame for frame in got)


def test_a_run_stops_at_a_header_that_differs_only_in_cmd() -> None:
    """An empty PSH run followed by FIN (same VER and LEN): the FIN stays a FIN."""
    frames = [Frame(1, Cmd.PSH, 3)] * 5 + [Frame(1, Cmd.FIN, 3)] + [Frame(1, Cmd.PSH, 3)] * 3
    assert FrameDecoder(1).feed(b"".join(f.encode() for f in frames)) == frames


def test_a_run_leaves_a_partial_frame_for_the_next_feed() -> None:
    frames = [Frame(2, Cmd.PSH, 5, b"abcd")] * 10
    wire = b"".join(f.encode() for f in frames)
    decoder = FrameDecoder(2)
    assert decoder.feed(wire[:-3]) == frames[:-1]
    assert decoder.buffered == 9
    assert decoder.feed(wire[-3:]) == frames[-1:]


@pytest.mark.parametrize("bad_at", [2, 3, 7, 19])
def test_bad_header_inside_a_run(bad_at: int) -> None:
    """SPEC.md 4.6: the good frames before the bad header, and nothing after it."""
    good = [Frame(2, Cmd.PSH, 9, b"xyz!")] * bad_at
    wire = b"".join(f.encode() for f in good) + encode_raw(9, Cmd.PSH, 4, 9) + b"xyz!"
    wire += Frame(2, Cmd.PSH, 9, b"xyz!").encode() * 5
    with pytest.raises(InvalidVersionError) as info:
        FrameDecoder(2).feed(wire)
    assert info.value.frames == good  # type: ignore[attr-defined]


def test_a_run_respects_the_size_limit() -> None:
    """Frames of a run share the first one's LEN, which the limit was checked against."""
    decoder = FrameDecoder(1, max_frame_size=4)
    frames = [Frame(1, Cmd.PSH, 3, b"abcd")] * 6
    assert decoder.feed(b"".join(f.encode() for f in frames)) == frames
    with pytest.raises(ProtocolError):
        FrameDecoder(1, max_frame_size=3).feed(b"".join(f.encode() for f in frames))


@given(
    version=st.sampled_from([1, 2]),
    lengths=st.lists(st.sampled_from([0, 1, 3, 16]), min_size=1, max_size=60),
    repeats=st.lists(st.integers(1, 12), min_size=1, max_size=60),
    sids=st.lists(st.integers(0, 0xFFFFFFFF), min_size=1, max_size=8),
    cuts=st.lists(st.integers(0, 4000), max_size=6),
)
def test_runs_decode_like_frames_fed_one_by_one(
    version: int, lengths: list[int], repeats: list[int], sids: list[int], cuts: list[int]
) -> None:
    frames = [
        Frame(version, Cmd.PSH, sids[(i + j) % len(sids)], bytes([j % 256]) * length)
        for i, (length, times) in enumerate(zip(lengths, repeats, strict=False))
        for j in range(times)
    ]
    wire = b"".join(f.encode() for f in frames)
    expected = one_by_one(wire, version)
    assert expected == frames
    decoder = FrameDecoder(version)
    got: list[Frame] = []
    start = 0
    for cut in sorted({c for c in cuts if c < len(wire)}):
        got += decoder.feed(wire[start:cut])
        start = cut
    got += decoder.feed(wire[start:])
    decoder.close()
    assert got == expected
    assert all(frame.cmd is Cmd.PSH for frame in got)
