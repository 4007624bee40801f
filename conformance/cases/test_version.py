"""SPEC.md 4.1: the version byte, received and sent.

Received: a frame whose VER is not the session's version is a protocol error, whatever
the command.  The cases send each class of wrong byte - 0, 3, 255 and the other valid
version (2 in a version 1 session, 1 in a version 2 session) - once on a SYN for a new
stream and once on a PSH for a stream that is open and working.  A canary stream follows
the bad frame in the same write: a peer that echoes it went on reading after the error
(4.6).  Sent: every frame the peer sends (SYN, PSH, FIN, NOP, UPD) must carry the
session's version.
"""

from __future__ import annotations

from typing import Final

import pytest

from smuxref import Cmd, Frame, encode_raw
from smuxref_conformance.deadlines import EXPECT
from smuxref_conformance.errors import WireAssertion
from smuxref_conformance.judge.case import case
from smuxref_conformance.judge.checks import SmuxCheck
from smuxref_conformance.wire import RawConnection

from ._helpers import (
    PEER_OPENS,
    PROTOCOL_ERROR,
    canary,
    check_canary,
    collect,
    echo_round_trip,
    expect_opened_syn,
    frames_for,
    psh,
)

_RECEIVER: Final = (
    "A receiver MUST treat a frame whose VER differs from the session's version as a "
    "protocol error."
)
_SENDER: Final = (
    "A sender MUST put its session's configured version in VER of every frame, NOP included."
)
#: Wrong version bytes by class; "other" is the other valid version.
WRONG: Final = ("0", "3", "255", "other")


def _wrong_byte(name: str, version: int) -> int:
    return 3 - version if name == "other" else int(name)


@case(
    "smux/4.1/wrong-version-syn",
    title="A SYN with a wrong version byte is a protocol error",
    spec="4.1",
    requirement=_RECEIVER,
    level="must",
)
@pytest.mark.parametrize("wrong", WRONG)
def test_wrong_version_syn(raw_conn: RawConnection, smux_check: SmuxCheck, wrong: str) -> None:
    """SYN for a new stream with VER 0, 3, 255 or the other version, then a canary."""
    bad = _wrong_byte(wrong, raw_conn.version)
    canary_sid, canary_bytes = canary(raw_conn)
    raw_conn.send_raw(encode_raw(bad, Cmd.SYN, 0, raw_conn.next_sid()) + canary_bytes)
    smux_check.reaction(PROTOCOL_ERROR)
    check_canary(smux_check, raw_conn, canary_sid)


@case(
    "smux/4.1/wrong-version-psh",
    title="A PSH with a wrong version byte on an open stream is a protocol error",
    spec="4.1",
    requirement=_RECEIVER,
    level="must",
)
@pytest.mark.parametrize("wrong", WRONG)
def test_wrong_version_psh(raw_conn: RawConnection, smux_check: SmuxCheck, wrong: str) -> None:
    """An ECHO stream answers once; then a PSH on it with a wrong VER (its data must never
    be echoed), then a canary."""
    sid = raw_conn.open_stream(b"ECHO\n")
    got = echo_round_trip(raw_conn, sid, b"hello")
    smux_check.expect(
        got == b"hello",
        expected="the ECHO stream works before the bad frame",
        actual=repr(got),
    )
    bad = _wrong_byte(wrong, raw_conn.version)
    canary_sid, canary_bytes = canary(raw_conn)
    raw_conn.send_raw(encode_raw(bad, Cmd.PSH, 4, sid, b"bad!") + canary_bytes)
    smux_check.reaction(PROTOCOL_ERROR)
    echoed = b"".join(f.data for f in frames_for(raw_conn, sid, [Cmd.PSH]))
    smux_check.expect(
        echoed == b"hello",
        expected="the payload of the PSH with the wrong version is not delivered (not echoed)",
        actual=f"stream {sid} echoed {echoed!r}",
    )
    check_canary(smux_check, raw_conn, canary_sid)


def _check_versions(check: SmuxCheck, conn: RawConnection, frames: list[Frame], what: str) -> None:
    wrong = [f for f in frames if f.version != conn.version]
    check.expect(
        bool(frames) and not wrong,
        expected=f"{what} carry version byte {conn.version}",
        actual=f"{len(frames)} frames, with another version: {wrong[:5]}" if frames else "none",
    )


@case(
    "smux/4.1/version-on-syn-psh-fin",
    title="SYN, PSH and FIN sent by the peer carry the session's version",
    spec="4.1",
    requirement=_SENDER,
    level="must",
    relies_on=(PEER_OPENS,),
)
def test_version_on_stream_frames(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """``OPEN 1 SOURCE 10``: the peer opens a stream (SYN), sends 10 bytes (PSH) and closes
    it (FIN), and answers on the control stream (PSH, FIN); all carry our version."""
    control = raw_conn.open_stream(b"OPEN 1 SOURCE 10\n")
    try:
        opened = expect_opened_syn(raw_conn, smux_check, control, EXPECT)
    except WireAssertion as exc:
        smux_check.expect(False, expected="the peer opens a stream (SYN)", actual=str(exc))
        return
    # Both streams end on their own: a peer that sends no FIN at all ends the waits
    # after FIN_GIVE_UP (scaled) and the gate blames the FIN case for the missing FINs.
    raw_conn.owe_fin(opened.sid, 10)
    raw_conn.owe_fin(control, len(f"OPENED {opened.sid}\n"))
    collect(raw_conn, opened.sid, 1 << 20)
    collect(raw_conn, control, 1 << 20)
    frames = [f for f in raw_conn.frames if f.sid in (opened.sid, control)]
    for cmd in (Cmd.SYN, Cmd.PSH, Cmd.FIN):
        _check_versions(
            smux_check, raw_conn, [f for f in frames if f.cmd == cmd], f"the peer's {cmd.name}s"
        )


@case(
    "smux/4.1/version-on-nop",
    title="Keepalive NOPs carry the session's version",
    spec="4.1",
    requirement=_SENDER,
    level="must",
    relies_on=("smux/7.1/nop-interval",),
)
@pytest.mark.peer_config(keepalive_interval=100, keepalive_timeout=2000)
def test_version_on_nop(
    raw_conn: RawConnection, smux_check: SmuxCheck, keepalive_factor: int
) -> None:
    """With a 100 ms keepalive interval (times keepalive_factor) the peer sends NOPs; the
    first two are checked."""
    nops: list[Frame] = []
    wait = 2.0 * keepalive_factor
    try:
        for _ in range(2):
            nops.append(
                raw_conn.expect_frame(lambda f: f.cmd == Cmd.NOP, wait, control=True, what="NOP")
            )
    except WireAssertion as exc:
        smux_check.require(
            False,
            prerequisite="smux/7.1/nop-interval",
            what=f"two keepalive NOPs within {wait:g} s",
            actual=str(exc).splitlines()[0],
        )
        return
    _check_versions(smux_check, raw_conn, nops, "the peer's NOPs")


@case(
    "smux/4.1/version-on-upd",
    title="UPD frames carry version byte 2",
    spec="4.1",
    requirement=_SENDER,
    level="must",
    versions=(2,),
)
def test_version_on_upd(raw_conn: RawConnection, smux_check: SmuxCheck) -> None:
    """Data on an ECHO stream makes the peer acknowledge it with UPD (9.2)."""
    sid = raw_conn.open_stream(b"ECHO\n")
    raw_conn.send_raw(psh(raw_conn, sid, b"x" * 1000))
    try:
        update = raw_conn.expect_frame(
            lambda f: f.cmd == Cmd.UPD and f.sid == sid, control=True, what="a UPD"
        )
    except WireAssertion as exc:
        smux_check.expect(False, expected="a UPD for the ECHO stream", actual=str(exc))
        return
    _check_versions(smux_check, raw_conn, [update], "the peer's UPDs")
