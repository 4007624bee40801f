"""Start, check and stop peers according to CONTRACT.md, whatever they run in.

Every way a peer can break the launch contract ends here as a
:class:`~smuxref_conformance.errors.ContractViolation` naming the rule, with the peer's stderr,
within a deadline - never as a hang and never as a protocol verdict - and every peer
started here is stopped and released on every path, Ctrl-C included.
"""

from __future__ import annotations

import re
import secrets
import select
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from smuxref import Frame

from ..deadlines import COMPLIANCE, STARTUP, STOP, Deadline, scaled
from ..errors import (
    RULE_CLIENT_END,
    RULE_CLIENT_START,
    RULE_SERVER_LIFE,
    RULE_SERVER_START,
    RULE_STDOUT,
    RULE_UNSUPPORTED,
    ContractViolation,
    PeerUnsupported,
)
from ..wire import RawConnection, dial
from .cmdline import PeerConfig, Role, peer_argv
from .readiness import probe_echo
from .specs import PeerSpec, RunningPeer, describe_status

#: Seconds (before scaling) one readiness ECHO attempt may take (see _await_echo).
ATTEMPT: Final = 2.0
#: Seconds between looks at the listener while a client peer starts (see start_client).
_POLL = 0.01

__all__ = [
    "CLIENT_EXITS",
    "ClientHandle",
    "Launcher",
    "ServerHandle",
    "check_compliance",
    "client_exit_deadline",
    "start_client",
    "start_server",
]

UNSUPPORTED = 127
_LISTENING = re.compile(r"LISTENING (\[[0-9A-Fa-f:.]+\]|[^\s:]+):(\d{1,5})")


@dataclass
class Launcher:
    """How to start one peer spec: the command or image, and its addressing."""

    spec: PeerSpec
    start: Callable[[Role, list[str]], RunningPeer]  #: (role, argv) -> a started peer
    server_addr: str = "127.0.0.1:0"  #: --addr of a server
    client_listen: str = "127.0.0.1"  #: where the suite listens for a client peer
    client_dial: str = "127.0.0.1"  #: the host a client peer dials


@dataclass(frozen=True)
class Unready:
    """A server that printed LISTENING and answers, but whose readiness ECHO round trip
    went wrong.  A protocol failure, not a contract one: which case it blames is the
    judge's business (smuxref_conformance.judge.blame), so the frames are kept."""

    frames: tuple[Frame, ...]  #: what the server sent instead of the echo
    what: str  #: what happened, for the message of every case that depends on it


@dataclass
class ServerHandle:
    """A ready server peer (``peer`` is None for ``tcp:``, which the suite did not start)."""

    spec: PeerSpec
    version: int
    address: tuple[str, int]
    peer: RunningPeer | None
    unready: Unready | None = None

    def connect(self) -> RawConnection:
        """A new raw connection (a new, independent smux session on the peer)."""
        return dial(self.address, self.version, peer=self.spec.id)

    def check_alive(self) -> None:
        """Raise if the server has exited, or no longer answers ECHO (rules 6, 10)."""
        if self.peer is not None:
            code = self.peer.wait_exit(Deadline(0))
            if code is not None:
                raise ContractViolation(
                    RULE_SERVER_LIFE,
                    f"the server {describe_status(code)} without SIGTERM",
                    peer=self.spec.id,
                    stderr=self.peer.capture.stderr(),
                )
        probe = probe_echo(
            self.address,
            self.version,
            peer=self.spec.id,
            deadline=Deadline(STARTUP),
            any_answer=self.unready is not None,
        )
        if probe.error is not None and not (self.unready and probe.answered):
            raise ContractViolation(
                RULE_SERVER_LIFE, f"the server stopped answering ECHO: {probe.error}"
            )


@dataclass
class ClientHandle:
    """A client peer and the connection it made to the suite."""

    spec: PeerSpec
    peer: RunningPeer
    conn: RawConnection


def _violation(peer: RunningPeer, rule: int, message: str) -> ContractViolation:
    """Kill and release ``peer``, then describe what it did, stderr included."""
    peer.kill()
    peer.release()
    return ContractViolation(rule, message, peer=peer.name, stderr=peer.capture.stderr())


def _unsupported_or(peer: RunningPeer, rule: int, what: str) -> Exception:
    """The peer has ended its stdout: exit 127 is "unsupported", anything else a violation."""
    code = peer.wait_exit(Deadline(STOP))
    if code == UNSUPPORTED:
        peer.release()
        return PeerUnsupported(peer.name, peer.argv, peer.capture.stderr())
    if code is None:
        return _violation(peer, rule, f"the peer closed its stdout {what}, and kept running")
    return _violation(peer, rule, f"the peer {describe_status(code)} {what}")


def _first_line(peer: RunningPeer, expected: str, rule: int, deadline: Deadline) -> str:
    first = peer.capture.wait_first_line(deadline)
    if first is None:
        raise _violation(
            peer, rule, f"no `{expected}` line on stdout within {deadline.budget:.3g} s"
        )
    if first.overflow:
        raise _violation(
            peer,
            RULE_STDOUT,
            f"{len(first.raw)} bytes on stdout without a newline (starting "
            f"{first.raw[:40]!r}); stdout carries only the `{expected}` line",
        )
    if first.line is None:
        shown = f" (stdout: {first.raw!r})" if first.raw else ""
        raise _unsupported_or(peer, rule, f"before printing `{expected}`{shown}")
    return first.line


def _launch(launcher: Launcher, role: Role, argv: list[str]) -> RunningPeer:
    try:
        return launcher.start(role, argv)
    except FileNotFoundError as exc:
        raise ContractViolation(1, str(exc)) from None


def check_compliance(launcher: Launcher) -> None:
    """Run the peer with a made-up option; it must exit 127 in time (rule 3)."""
    option = f"--smux-made-up-option-{secrets.token_hex(4)}"
    argv = [*peer_argv("server", launcher.server_addr, {"version": 1}), option]
    peer = _launch(launcher, "server", argv)
    try:
        deadline = Deadline(COMPLIANCE)
        code = peer.wait_exit(deadline)
        if code == UNSUPPORTED:
            return
        what = (
            f"was still running after {deadline.budget:.3g} s"
            if code is None
            else describe_status(code)
        )
        raise _violation(
            peer,
            RULE_UNSUPPORTED,
            f"refusing peer {launcher.spec.id}: given the made-up option "
            f"{option} it must exit with status 127 at once; it {what}",
        )
    finally:
        peer.kill()
        peer.release()


def start_server(launcher: Launcher, version: int, config: PeerConfig) -> ServerHandle:
    """Start a server peer; return once it printed LISTENING and answered ECHO."""
    argv = peer_argv("server", launcher.server_addr, {**config, "version": version})
    peer = _launch(launcher, "server", argv)
    try:
        deadline = Deadline(STARTUP)
        line = _first_line(peer, "LISTENING HOST:PORT", RULE_SERVER_START, deadline)
        match = _LISTENING.fullmatch(line)
        if match is None:
            raise _violation(
                peer,
                RULE_SERVER_START,
                f"the first stdout line must be `LISTENING HOST:PORT`, got {line!r}",
            )
        address = peer.connect_address((match[1].strip("[]"), int(match[2])))
        unready = _await_echo(peer, address, version, deadline)
        return ServerHandle(launcher.spec, version, address, peer, unready)
    except BaseException:
        peer.kill()
        peer.release()
        raise


def _await_echo(
    peer: RunningPeer, address: tuple[str, int], version: int, deadline: Deadline
) -> Unready | None:
    """Retry an ECHO round trip until it works; back off by waiting on the peer's exit.

    None once a round trip worked.  A server that answered with frames, only not with
    the echo, is returned as unready: it speaks, and what it says wrong is a protocol
    verdict.  One that never answered breaks rule 5.
    """
    backoff = scaled(0.02)
    while True:
        # Each attempt gets a share of the deadline: a server that is up answers an
        # ECHO in milliseconds, and one that answers wrongly need not cost it all.
        attempt = Deadline(min(deadline.remaining(), scaled(ATTEMPT)), already_scaled=True)
        probe = probe_echo(address, version, peer=peer.name, deadline=attempt)
        if probe.error is None:
            return None
        if deadline.expired or probe.answered:  # a wrong answer is no startup delay
            if probe.answered:
                frames = ", ".join(repr(f) for f in probe.frames[:4])
                what = f"the readiness ECHO round trip failed: {probe.error} (frames: {frames})"
                return Unready(tuple(probe.frames), what)
            raise _violation(
                peer,
                RULE_SERVER_START,
                f"printed LISTENING, but no ECHO round trip on "
                f"{address[0]}:{address[1]} succeeded within {deadline.budget:.3g} s: "
                f"{probe.error}",
            )
        exited, _, _ = select.select([peer.exit_fd()], [], [], min(backoff, deadline.remaining()))
        if exited:
            raise _unsupported_or(peer, RULE_SERVER_LIFE, "right after printing LISTENING")
        backoff = min(backoff * 2, scaled(0.5))


def stop_server(handle: ServerHandle) -> None:
    """SIGTERM; the server must exit 0 in time (rule 6) and print nothing more (rule 4)."""
    peer = handle.peer
    if peer is None:
        return
    try:
        _check_quiet_stdout(peer)
        peer.terminate()
        deadline = Deadline(STOP)
        code = peer.wait_exit(deadline)
        if code is None:
            raise _violation(
                peer,
                RULE_SERVER_LIFE,
                f"the server ignored SIGTERM: still running {deadline.budget:.3g} s "
                "later (killed with SIGKILL)",
            )
        if code != 0:
            raise _violation(
                peer, RULE_SERVER_LIFE, f"after SIGTERM the server {describe_status(code)}, not 0"
            )
    finally:
        peer.kill()
        peer.release()


def _check_quiet_stdout(peer: RunningPeer) -> None:
    extra, head = peer.capture.extra_stdout()
    if extra:
        raise _violation(
            peer,
            RULE_STDOUT,
            f"{extra} more bytes on stdout after the first line (starting {head[:40]!r})",
        )


def start_client(launcher: Launcher, version: int, config: PeerConfig) -> ClientHandle:
    """Listen, start a client peer toward the listener, accept it, wait for CONNECTED."""
    family = socket.AF_INET6 if ":" in launcher.client_listen else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as listener:
        listener.bind((launcher.client_listen, 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        host = f"[{launcher.client_dial}]" if ":" in launcher.client_dial else launcher.client_dial
        argv = peer_argv("client", f"{host}:{port}", {**config, "version": version})
        not_before = time.monotonic()
        peer = _launch(launcher, "client", argv)
        try:
            deadline = Deadline(STARTUP)
            while True:
                # Short polls: each one that finds no connection moves ``not_before``, the
                # time the peer's session cannot have begun before, close to the connect.
                polled = time.monotonic()
                fds = [listener.fileno(), peer.exit_fd()]
                ready, _, _ = select.select(fds, [], [], max(0.0, min(_POLL, deadline.remaining())))
                if fds[0] in ready:
                    sock, _ = listener.accept()
                    break
                if ready:
                    raise _unsupported_or(peer, RULE_CLIENT_START, "without connecting")
                if deadline.remaining() <= 0:
                    raise _violation(
                        peer, RULE_CLIENT_START, f"no connection within {deadline.budget:.3g} s"
                    )
                not_before = polled
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = RawConnection(
                sock, version, peer=launcher.spec.id, peer_role="client", not_before=not_before
            )
            try:
                line = _first_line(peer, "CONNECTED", RULE_CLIENT_START, deadline)
                if line != "CONNECTED":
                    raise _violation(
                        peer,
                        RULE_CLIENT_START,
                        f"the first stdout line must be `CONNECTED`, got {line!r}",
                    )
            except BaseException:
                conn.close()
                raise
            return ClientHandle(launcher.spec, peer, conn)
        except BaseException:
            peer.kill()
            peer.release()
            raise


#: Rule 8 as seen so far in this process, per (peer id, protocol version): True once a
#: client exited 0 in time after its session ended, False once one did not.  Only the
#: rule-8 case (``contract/8/...``) reports it; every other case reads it to decide how
#: long to give its client before killing it, so a client that never exits costs one
#: result and a fraction of a second per later case, not an error and 5 s each.
CLIENT_EXITS: dict[tuple[str, int], bool] = {}
#: Seconds (real time) a client is given once rule 8 is known broken for it.
LINGER: Final = 0.25


def client_exit_deadline(spec: PeerSpec, version: int) -> Deadline:
    """How long to wait for a client whose session ended (see :data:`CLIENT_EXITS`)."""
    if CLIENT_EXITS.get((spec.id, version)) is False:
        return Deadline(LINGER, already_scaled=True)
    return Deadline(STOP)


def finish_client(handle: ClientHandle, *, judge: bool = False) -> None:
    """Close the connection and end the client (quiet stdout, rule 4, always checked).

    ``judge``: the caller is the rule-8 case, and a client that does not exit 0 in time
    is its ContractViolation.  Otherwise the client is waited for (briefly, once rule 8
    is known broken for its peer and version), then killed, and nothing is raised for
    rule 8: that is judged once, as its own result, never in place of a case's verdict.
    """
    handle.conn.close()
    peer = handle.peer
    key = (handle.spec.id, handle.conn.version)
    try:
        _check_quiet_stdout(peer)
        deadline = Deadline(STOP) if judge else client_exit_deadline(handle.spec, key[1])
        code = peer.wait_exit(deadline)
        if code is not None or deadline.budget >= scaled(STOP):
            CLIENT_EXITS[key] = code == 0
        if not judge:
            return
        if code is None:
            raise _violation(
                peer,
                RULE_CLIENT_END,
                f"the client was still running {deadline.budget:.3g} s after its "
                "session ended (connection closed by the suite)",
            )
        if code != 0:
            raise _violation(
                peer, RULE_CLIENT_END, f"when its session ended the client {describe_status(code)}"
            )
    finally:
        peer.kill()
        peer.release()
