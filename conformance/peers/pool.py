"""Per-process registry of peers: launchers, compliance verdicts, reusable servers.

Starting a peer is the slow part of a case (a Python interpreter, a container on vfs
storage), and by contract a server runs an independent session on every connection
(CONTRACT.md rule 6), so one server per (peer, version, options) serves all the cases
that want that command line; it is checked (alive, answers ECHO) before each reuse, and
stopped - with the SIGTERM check of rule 6 - at the end of the session.  Client peers
make one session each and are started per case.  What cannot change during a run is
remembered: a peer refused by the compliance check (once per peer per run, shared by
xdist workers through the run directory), a build failure, an exit 127.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from ..deadlines import STARTUP, Deadline
from ..errors import ContractViolation, HarnessError, PeerUnsupported
from .cmdline import PeerConfig, Role, config_key
from .docker import CONTAINER_PORT, DockerPeer, bridge_gateway, docker_client
from .go_build import ensure_image, ensure_native
from .lifecycle import (
    ClientHandle,
    Launcher,
    ServerHandle,
    check_compliance,
    start_client,
    start_server,
    stop_server,
)
from .readiness import echo_probe
from .run_context import RunContext
from .specs import ExecPeer, PeerSpec, RunningPeer
from .thirdparty import ensure_binary

__all__ = ["PeerPool"]

Key = tuple[str, str, int, tuple[str, ...]]
#: Servers kept running at once per process; the least recently used is stopped beyond.
MAX_POOLED = 6


def _key(spec: PeerSpec, role: Role, version: int, config: PeerConfig) -> Key:
    return (spec.raw, role, version, config_key(config))


@dataclass
class PeerPool:
    run: RunContext
    docker_network: str = "auto"  #: auto, bridge or host (see smuxref_conformance.peers.docker)
    _launchers: dict[str, Launcher | HarnessError] = field(default_factory=dict)
    _servers: dict[Key, ServerHandle] = field(default_factory=dict)
    _unsupported: dict[Key, PeerUnsupported] = field(default_factory=dict)
    _stop_errors: list[HarnessError] = field(default_factory=list)

    # -- launchers ---------------------------------------------------------------------
    def launcher(self, spec: PeerSpec) -> Launcher:
        """The launcher of ``spec``, after its compliance check (raises if refused)."""
        known = self._launchers.get(spec.raw)
        if isinstance(known, HarnessError):
            raise known
        if known is not None:
            return known
        try:
            launcher = self._make_launcher(spec)
            self._check(launcher)
        except HarnessError as exc:
            self._launchers[spec.raw] = exc
            raise
        self._launchers[spec.raw] = launcher
        return launcher

    def _make_launcher(self, spec: PeerSpec) -> Launcher:
        if spec.kind in ("ref", "exec", "thirdparty") or spec.native:
            command = [ensure_native(spec.tag, self.run)] if spec.native else list(spec.command)
            env = dict(spec.env)
            if spec.kind == "thirdparty":
                command = ensure_binary(spec.raw.partition("@")[0], spec.tag)[0]
            return Launcher(
                spec, lambda _role, argv: ExecPeer(spec.id, command, argv, self.run.run_id, env)
            )
        if spec.kind == "tcp":
            raise AssertionError("tcp: peers have no launcher")
        image = ensure_image(spec.tag, self.run) if spec.kind == "go" else spec.image
        servers_on_host = self.docker_network == "host"
        clients_on_host = self.docker_network != "bridge"

        def start(role: Role, argv: list[str]) -> RunningPeer:
            on_host = servers_on_host if role == "server" else clients_on_host
            return DockerPeer(
                spec.id,
                image,
                argv,
                self.run.run_id,
                host_network=on_host,
                publish=role == "server",
            )

        launcher = Launcher(spec, start)
        if not servers_on_host:
            launcher.server_addr = f"0.0.0.0:{CONTAINER_PORT}"
        if not clients_on_host:
            launcher.client_listen = bridge_gateway(docker_client())
            launcher.client_dial = "host.docker.internal"
        return launcher

    def _check(self, launcher: Launcher) -> None:
        """Compliance check, once per peer per run: the first worker runs it, others read it."""
        digest = hashlib.sha256(launcher.spec.raw.encode()).hexdigest()[:16]
        lock, path = self.run.memo(f"compliance-{digest}")
        with lock:
            memo = RunContext.read_memo(path)
            if memo is None:
                try:
                    check_compliance(launcher)
                    memo = {"ok": True}
                except ContractViolation as exc:
                    prefix = f"CONTRACT.md rule {exc.rule}: "
                    memo = {"ok": False, "rule": exc.rule, "error": str(exc).removeprefix(prefix)}
                RunContext.write_memo(path, memo)
        if not memo.get("ok"):
            raise ContractViolation(int(memo.get("rule", 3)), str(memo.get("error", "")))

    # -- servers and clients -----------------------------------------------------------
    def server(
        self, spec: PeerSpec, version: int, config: PeerConfig, *, fresh: bool = False
    ) -> ServerHandle:
        """A ready server; pooled unless ``fresh`` (then the caller must :meth:`stop` it)."""
        key = _key(spec, "server", version, config)
        if key in self._unsupported:
            raise self._unsupported[key]
        if spec.kind == "tcp":
            return self._tcp(spec, version, config, key)
        pooled = None if fresh else self._servers.get(key)
        if pooled is not None:
            try:
                pooled.check_alive()
            except ContractViolation:
                del self._servers[key]
                self._stop_quietly(pooled)
                raise
            self._servers[key] = self._servers.pop(key)  # most recently used last
            return pooled
        try:
            handle = start_server(self.launcher(spec), version, config)
        except PeerUnsupported as exc:
            self._unsupported[key] = exc
            raise
        if not fresh:
            self._servers[key] = handle
            self._evict()
        return handle

    def _evict(self) -> None:
        """Stop the least recently used servers beyond MAX_POOLED (rule 6 still checked)."""
        while len(self._servers) > MAX_POOLED:
            oldest = next(iter(self._servers))
            try:
                stop_server(self._servers.pop(oldest))
            except HarnessError as exc:
                self._stop_errors.append(exc)

    def _tcp(self, spec: PeerSpec, version: int, config: PeerConfig, key: Key) -> ServerHandle:
        if config:
            raise PeerUnsupported(
                spec.id,
                [f"{k}={v}" for k, v in config.items()],
                b"a tcp: peer cannot be configured",
            )
        handle = self._servers.get(key)
        if handle is None:
            error = echo_probe(spec.address, version, peer=spec.id, deadline=Deadline(STARTUP))
            if error is not None:
                raise HarnessError(
                    f"{spec.id}: no ECHO round trip with the running server: {error}"
                )
            handle = self._servers[key] = ServerHandle(spec, version, spec.address, None)
        return handle

    def client(self, spec: PeerSpec, version: int, config: PeerConfig) -> ClientHandle:
        """Start a client peer toward a fresh listener of the suite (one per case)."""
        key = _key(spec, "client", version, config)
        if key in self._unsupported:
            raise self._unsupported[key]
        try:
            return start_client(self.launcher(spec), version, config)
        except PeerUnsupported as exc:
            self._unsupported[key] = exc
            raise

    def stop(self, handle: ServerHandle) -> None:
        """Stop a server (rule 6 checked); raises its ContractViolation if any."""
        stop_server(handle)

    def discard(self, handle: ServerHandle) -> None:
        """Forget and kill a pooled server a case saw crash (smuxref_conformance.judge.oracle):
        the next case starts a new one instead of erroring on the dead one's rule-6 check."""
        for key, pooled in list(self._servers.items()):
            if pooled is handle:
                del self._servers[key]
        self._stop_quietly(handle)

    @staticmethod
    def _stop_quietly(handle: ServerHandle) -> None:
        if handle.peer is not None:
            handle.peer.kill()
            handle.peer.release()

    def close(self) -> list[HarnessError]:
        """Stop every pooled server; return the violations seen while stopping."""
        errors, self._stop_errors = self._stop_errors, []
        while self._servers:
            _, handle = self._servers.popitem()
            try:
                stop_server(handle)
            except HarnessError as exc:
                errors.append(exc)
            except BaseException:
                self._stop_quietly(handle)
                for rest in self._servers.values():
                    self._stop_quietly(rest)
                raise
        return errors
