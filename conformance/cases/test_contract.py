"""CONTRACT.md rules judged as results of their own, once per peer and version.

Most of the contract is checked where it is used (a server that never prints LISTENING
cannot be tested at all, so that is a harness error).  Two rules are different: a peer
that breaks them can still be tested, so they get a result of their own instead of
turning every case into an error.

* Rule 8: a client peer exits with status 0 when its session ends.  Judged here, on a
  client of its own; every other client-role case waits for its client only briefly
  once this is known to fail (smuxref_conformance.peers.lifecycle.CLIENT_EXITS), and never
  reports it.  A second case ends the session with EXIT while a new stream arrives in
  the same write: accepting that stream from a session already closed must not crash
  the client.
* Rule 15: the INFO reply is one JSON line that the schema
  ``conformance/schema/info.schema.json`` accepts, and that names the session's version;
  and every other version it lists is one the peer serves when started with it (not
  exit 127, rule 3), since the suite reports a refused version unsupported and tests
  nothing in it.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any, Final, NamedTuple

import jsonschema  # type: ignore[import-untyped, unused-ignore]
import pytest

from smuxref import Cmd
from smuxref_conformance.deadlines import EXPECT, Deadline
from smuxref_conformance.errors import (
    ContractViolation,
    PeerUnsupported,
    WireAssertion,
    format_tail,
)
from smuxref_conformance.judge.blame import FIN_AFTER_DATA, READINESS_CASE
from smuxref_conformance.judge.case import case
from smuxref_conformance.judge.checks import SmuxCheck, not_run
from smuxref_conformance.peers.lifecycle import finish_client
from smuxref_conformance.peers.pool import PeerPool
from smuxref_conformance.peers.specs import PeerSpec
from smuxref_conformance.plugin.access import PeerServer, start_client_peer, verdicts
from smuxref_conformance.wire import RawConnection

from ._helpers import echo_round_trip, psh, syn

_CLIENT_END: Final = (
    "The client exits with status 0 when its session ends (the connection is closed by "
    "either side)."
)
_INFO: Final = (
    "INFO: write one line of JSON (implementation name and version, protocol versions "
    "supported, the configuration in effect) and close the stream."
)
_INFO_VERSIONS: Final = (
    "Every version in INFO's protocol_versions is one the peer accepts: started with "
    "--version set to it, the peer does not exit 127 (rule 3); a listed version it "
    "refused would be reported unsupported, and the suite would test nothing in it."
)
INFO_SCHEMA_CASE: Final = "contract/15/info-json-schema"


@cache
def info_schema() -> dict[str, Any]:
    """The JSON Schema of the INFO reply (shipped with the package)."""
    text = files("smuxref_conformance").joinpath("schema/info.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


@case(
    "contract/8/client-exits-when-session-ends",
    title="A client peer exits 0 within 5 s of the end of its session",
    spec="8",
    requirement=_CLIENT_END,
    level="must",
)
@pytest.mark.roles("client")
def test_client_exits(  # noqa: PLR0917 - pytest passes fixtures positionally
    peer: PeerSpec,
    smux_version: int,
    role: str,
    peer_options: dict[str, Any],
    smux_pool: PeerPool,
    smux_check: SmuxCheck,
) -> None:
    """Start a client, close its connection at once, and wait for its exit status."""
    handle = start_client_peer(smux_pool, peer, smux_version, peer_options)
    try:
        finish_client(handle, judge=True)
    except ContractViolation as exc:
        smux_check.expect(
            False,
            expected="exit status 0 within 5 s (times the timeout scale)",
            actual=str(exc).splitlines()[0],
        )


@case(
    "contract/8/client-exits-after-exit-with-new-stream",
    title="A client peer exits 0 after EXIT when a new stream arrives in the same write",
    spec="8",
    requirement=_CLIENT_END,
    level="must",
    relies_on=(READINESS_CASE,),
)
@pytest.mark.roles("client")
def test_client_exits_after_exit(  # noqa: PLR0917 - pytest passes fixtures positionally
    peer: PeerSpec,
    smux_version: int,
    role: str,
    peer_options: dict[str, Any],
    smux_pool: PeerPool,
    smux_check: SmuxCheck,
) -> None:
    """A stream with no command yet, then an ECHO stream that answers (so the client has
    accepted the first and waits for its command line); then, in one write, ``EXIT`` on
    the first stream and a SYN for a new one.  The new stream reaches the client's accept
    queue as EXIT closes the session (rule 17), and the client's accept loop takes it
    from a closed session; the client must still exit 0 once its connection is gone."""
    handle = start_client_peer(smux_pool, peer, smux_version, peer_options)
    conn = handle.conn
    echoed = b""
    violation = ""
    try:
        exit_sid = conn.next_sid()
        conn.send_raw(syn(conn, exit_sid))
        echoed = echo_round_trip(conn, conn.open_stream(b"ECHO\n"), b"ready")
        if echoed == b"ready":
            conn.send_raw(psh(conn, exit_sid, b"EXIT\n") + syn(conn, conn.next_sid()))
    finally:
        try:
            finish_client(handle, judge=True)
        except ContractViolation as exc:
            violation = str(exc).splitlines()[0]
    # Setup, not this rule: without the echo the client may not have accepted the first
    # stream, so the exit it is judged on would be another case's (rule 8's first).
    smux_check.require(
        echoed == b"ready",
        prerequisite=READINESS_CASE,
        what="the client's ECHO stream answers",
        actual=repr(echoed),
    )
    smux_check.expect(
        not violation,
        expected="exit status 0 within 5 s (times the timeout scale) after EXIT",
        actual=violation,
    )


class InfoReply(NamedTuple):
    """INFO's reply: the document, or (``document`` None) what was wrong with it."""

    document: dict[str, Any] | None
    expected: str = ""
    actual: str = ""


def read_info(conn: RawConnection, smux_check: SmuxCheck) -> InfoReply:
    """``INFO`` on a new stream of ``conn``, validated with jsonschema.  The FIN after
    the line is what smux/10.4/fin-after-all-data tests: a peer that sends none on any
    stream makes the case inconclusive (naming it), once its line is whole."""
    sid = conn.open_stream(b"INFO\n")
    deadline, raw = Deadline(EXPECT), bytearray()
    try:
        while True:
            if raw.endswith(b"\n"):
                conn.owe_fin(sid, len(raw))  # the line is whole: its FIN is owed now
            frame = conn.expect_frame(
                lambda f: f.sid == sid and f.cmd in (Cmd.PSH, Cmd.FIN),
                deadline,
                what=f"INFO's line and FIN on stream {sid}",
                fin_of=sid,
            )
            if frame.cmd == Cmd.FIN:
                break
            raw += frame.data
    except WireAssertion as exc:
        no_fin = conn.no_fin_decided() if raw.endswith(b"\n") else None
        smux_check.require(
            no_fin is None,
            prerequisite=FIN_AFTER_DATA,
            what="the peer's FIN after INFO's line",
            actual=f"none; {no_fin}",
        )
        return InfoReply(None, "one line, then FIN", str(exc).splitlines()[0])
    text = raw.decode("utf-8", "replace")
    if not text.endswith("\n") or text.count("\n") != 1:
        return InfoReply(None, "exactly one line ended by \\n", repr(text[:200]))
    try:
        info = json.loads(text)
        jsonschema.validate(info, info_schema())
    except ValueError as exc:
        return InfoReply(None, "JSON", f"{exc}: {text[:200]!r}")
    except jsonschema.ValidationError as exc:
        where = "/".join(map(str, exc.absolute_path)) or "the document"
        expected = "a document conformance/schema/info.schema.json accepts"
        return InfoReply(None, expected, f"{where}: {exc.message}")
    return InfoReply(info)


@case(
    INFO_SCHEMA_CASE,
    title="INFO replies with one JSON line that the INFO schema accepts",
    spec="15",
    requirement=_INFO,
    level="must",
    relies_on=(FIN_AFTER_DATA,),
)
def test_info_schema(peer_server: PeerServer, smux_version: int, smux_check: SmuxCheck) -> None:
    """``INFO`` on a default-configured server (:func:`read_info`)."""
    info, expected, actual = read_info(peer_server.connect(), smux_check)
    if info is None:
        smux_check.expect(False, expected=expected, actual=actual)
        return
    smux_check.expect(
        smux_version in info["protocol_versions"],
        expected=f"protocol_versions lists the session's version {smux_version}",
        actual=str(info["protocol_versions"]),
    )
    configured = info["config"].get("version", smux_version)
    smux_check.expect(
        configured == smux_version,
        expected=f"config.version is the session's version {smux_version}",
        actual=str(configured),
    )


@case(
    "contract/15/info-versions-accepted",
    title="The peer serves with --version set to each protocol version its INFO lists",
    spec="15",
    requirement=_INFO_VERSIONS,
    level="must",
    relies_on=(FIN_AFTER_DATA, INFO_SCHEMA_CASE),
)
def test_info_versions_accepted(  # noqa: PLR0917 - pytest passes fixtures positionally
    peer: PeerSpec,
    smux_version: int,
    peer_options: dict[str, Any],
    peer_server: PeerServer,
    smux_pool: PeerPool,
    smux_check: SmuxCheck,
) -> None:
    """INFO in this version's session; then a server of each other version it lists.

    The schema allows only versions 1 and 2, so a version the suite does not know is
    the schema case's failure, and this one is inconclusive.  The other version's
    server comes from the pool: a default-configured one is what that version's cases
    use anyway, the pool stops it at the end of the session (rule 6 checked), and a
    refusal is remembered, so that version's cases are unsupported without a restart.
    """
    if peer.kind == "tcp":
        not_run("a tcp: peer is already running: the suite cannot start it with --version")
    info, expected, actual = read_info(peer_server.connect(), smux_check)
    if info is None:
        smux_check.require(
            False,
            prerequisite=INFO_SCHEMA_CASE,
            what="INFO's reply",
            actual=f"{actual} (expected {expected})",
        )
        return
    for version in info["protocol_versions"]:
        if version == smux_version:
            continue  # this session runs it: the peer accepted it
        # A start that fails any other way (no LISTENING in time, an exit other than
        # 127) breaks rule 5 or 6: an error with the peer's stderr, as in every case.
        with verdicts():
            try:
                handle = smux_pool.server(peer, version, peer_options)
            except PeerUnsupported as exc:
                smux_check.expect(
                    False,
                    expected=(
                        f"INFO lists protocol version {version}, so `--version {version}` "
                        "starts a server (no exit 127)"
                    ),
                    actual=f"{exc}\n{format_tail(exc.stderr, exc.peer)}",
                )
                return
        if handle.unready is not None:  # it accepted the version; its cases judge the rest
            smux_check.info(f"the version {version} server's {handle.unready.what}")
