"""Peers run as containers (``--peer=go``, ``--peer=docker:IMAGE``).

Addressing, as verified against Docker 20.10 started with ``--iptables=false``:

* server role, ``bridge`` networking (the default): the peer listens on 0.0.0.0:7000 in
  its own network namespace; the port is published to 127.0.0.1 on a free host port
  (``docker-proxy`` does the forwarding, since there are no iptables rules).  The proxy
  accepts connections before the peer listens, so readiness is judged by a real ECHO
  round trip, never by a successful connect.
* client role: the container shares the host's network (``network_mode="host"``) and
  dials the suite's listener on 127.0.0.1.  With ``--smux-docker-network=bridge`` it
  dials ``host.docker.internal`` instead (``extra_hosts`` ``host-gateway``, Docker
  20.10+) and the suite listens on the bridge gateway address.
* ``--smux-docker-network=host`` puts servers on the host network too (they then
  listen on 127.0.0.1:0 like a local process).

Every container runs with ``init=True`` (docker-init is PID 1 and forwards signals), so
the peer sees SIGTERM exactly as it would outside a container, and carries labels
naming the run and the owning process; :func:`sweep_containers` removes those whose
owner is gone, and :func:`remove_own` everything of this process (at exit, Ctrl-C).
"""

from __future__ import annotations

import atexit
import contextlib
import ipaddress
import os
import socket
from typing import TYPE_CHECKING, Any, Final

from ..deadlines import DOCKER_OP, Deadline, scaled
from ..errors import HarnessError
from .capture import OutputCapture
from .run_context import owner_alive, owner_tag
from .specs import RunningPeer

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

__all__ = [
    "CONTAINER_PORT",
    "LABEL",
    "DockerPeer",
    "bridge_gateway",
    "docker_client",
    "engine_unreachable",
    "remove_own",
    "sweep_containers",
]

LABEL: Final = "smuxref"
LABEL_RUN: Final = "smuxref.run"
LABEL_OWNER: Final = "smuxref.owner"
LABEL_HOST: Final = "smuxref.host"
CONTAINER_PORT: Final = 7000
ENGINE_HINT: Final = (
    "start one with `dockerd --storage-driver=vfs --iptables=false &` (as root), or run `.ci/run`"
)

#: The process's client, once made (a dict, so no ``global`` statement is needed).
_clients: dict[str, docker.DockerClient] = {}


def engine_unreachable() -> str | None:
    """Why nothing answers at ``$DOCKER_HOST`` (a local socket or TCP address), or None.

    Asked before the SDK is: docker-py leaks the socket of a failed connect (its
    ``UnixHTTPConnection.connect`` never closes it), which is a ResourceWarning - an
    error under ``filterwarnings = error`` - on every machine without an engine.
    Other schemes (ssh://, npipe://) are left to the SDK.
    """
    where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    scheme, _, rest = where.partition("://")
    try:
        if scheme == "unix":
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(scaled(DOCKER_OP))
                sock.connect(rest)
        elif scheme == "tcp":
            host, _, port = rest.partition("/")[0].rpartition(":")
            with socket.create_connection((host.strip("[]"), int(port)), scaled(DOCKER_OP)):
                pass
    except (OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def docker_client() -> docker.DockerClient:
    """The process's Docker client; a clear one-line error when no engine answers."""
    if "client" in _clients:
        return _clients["client"]
    try:
        import docker as docker_sdk  # noqa: PLC0415 - optional dependency, imported on use
    except ImportError as exc:
        raise HarnessError(
            f"containerized peers need the Docker SDK for Python: pip install 'docker>=7' ({exc})"
        ) from None
    where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    unreachable = engine_unreachable()
    if unreachable is not None:
        raise HarnessError(f"no Docker engine reachable at {where} ({unreachable}); {ENGINE_HINT}")
    try:
        client = docker_sdk.from_env(timeout=max(1, round(scaled(DOCKER_OP))))
        try:
            client.ping()
        except BaseException:
            client.close()
            raise
    except docker_sdk.errors.DockerException as exc:
        reason = str(exc).splitlines()[0][:160]
        raise HarnessError(
            f"no Docker engine reachable at {where} ({reason}); {ENGINE_HINT}"
        ) from None
    _clients["client"] = client
    sweep_containers(client)
    atexit.register(close_client)
    return client


def close_client() -> None:
    """Remove this process's containers and close the client (atexit, unconfigure)."""
    client = _clients.pop("client", None)
    if client is not None:
        with contextlib.suppress(Exception):
            remove_own(client)
        client.close()


def _labels(run_id: str) -> dict[str, str]:
    return {
        LABEL: "1",
        LABEL_RUN: run_id,
        LABEL_OWNER: owner_tag(),
        LABEL_HOST: socket.gethostname(),
    }


def _remove(client: docker.DockerClient, filters: dict[str, Any], keep: Any = None) -> list[str]:
    removed: list[str] = []
    # ignore_removed: another process (an xdist worker, a concurrent run) may remove a
    # listed container before it is inspected.
    for container in client.containers.list(all=True, filters=filters, ignore_removed=True):
        if keep is not None and keep(container.labels):
            continue
        with contextlib.suppress(Exception):
            container.remove(force=True)
            removed.append(container.id or "")
    return removed


def sweep_containers(client: docker.DockerClient) -> list[str]:
    """Remove containers of earlier runs (this host) whose owning process is gone."""
    host = socket.gethostname()
    return _remove(
        client,
        {"label": [f"{LABEL}=1", f"{LABEL_HOST}={host}"]},
        keep=lambda labels: owner_alive(labels.get(LABEL_OWNER, "")),
    )


def remove_own(client: docker.DockerClient) -> list[str]:
    """Remove every container this process started, known to it or not (Ctrl-C mid-create)."""
    return _remove(client, {"label": f"{LABEL_OWNER}={owner_tag()}"})


def bridge_gateway(client: docker.DockerClient) -> str:
    """The host's address on the default bridge, what ``host-gateway`` resolves to.

    The default bridge often declares only a subnet; its gateway is then the subnet's
    first address (docker0 itself).
    """
    ipam = client.networks.get("bridge").attrs.get("IPAM", {}).get("Config") or [{}]
    gateway = ipam[0].get("Gateway")
    subnet = ipam[0].get("Subnet")
    if isinstance(gateway, str):
        return gateway
    if isinstance(subnet, str):
        return str(next(ipaddress.ip_network(subnet, strict=False).hosts()))
    raise HarnessError("the Docker bridge network has neither a gateway nor a subnet")


class DockerPeer(RunningPeer):
    """One container; stdout/stderr come from an attach stream opened before start."""

    def __init__(
        self,
        name: str,
        image: str,
        argv: list[str],
        run_id: str,
        *,
        host_network: bool,
        publish: bool,
    ) -> None:
        import docker as docker_sdk  # noqa: PLC0415 - optional dependency, imported on use

        self.name = name
        self.argv = argv
        self.capture = OutputCapture(name)
        self._status: int | None = None
        client = docker_client()
        options: dict[str, Any] = {"labels": _labels(run_id), "init": True}
        if host_network:
            options["network_mode"] = "host"
        else:
            options["extra_hosts"] = {"host.docker.internal": "host-gateway"}
            if publish:
                options["ports"] = {f"{CONTAINER_PORT}/tcp": ("127.0.0.1", None)}
        try:
            self.container: Container = client.containers.create(image, argv, **options)
        except docker_sdk.errors.ImageNotFound:
            raise HarnessError(
                f"{name}: image {image!r} is not on this Docker engine, and no registry is "
                "reachable: build it first (docker build -t IMAGE ...)"
            ) from None
        try:
            # Attach before start (attaching to a running container with logs=True can
            # hang), and without logs=True, as `docker run` does: the daemon subscribes the
            # live streams and then replays the log, so a line written in between came
            # twice (a duplicated CONNECTED/LISTENING line broke CONTRACT.md rule 4).
            self._stream: Any = self.container.attach(
                stdout=True, stderr=True, stream=True, logs=False, demux=True
            )
            self.capture.read_chunks(self._stream, done=lambda: None)
            self.container.start()
        except BaseException as exc:
            with contextlib.suppress(Exception):
                self.container.remove(force=True)
            if isinstance(exc, docker_sdk.errors.APIError):
                raise HarnessError(f"{name}: Docker could not start {image}: {exc}") from None
            raise

    def exit_fd(self) -> int:
        return self.capture.ended_fd

    def wait_exit(self, deadline: Deadline) -> int | None:
        if self._status is not None:
            return self._status
        if not self.capture.wait_ended(deadline):
            return None
        result = self.container.wait(timeout=max(1, round(scaled(DOCKER_OP))))
        self._status = int(result.get("StatusCode", -1))
        return self._status

    def terminate(self) -> None:
        with contextlib.suppress(Exception):
            self.container.kill(signal="SIGTERM")

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.container.kill()

    def release(self) -> None:
        with contextlib.suppress(Exception):
            self.container.remove(force=True)
        self.capture.close(Deadline(2.0))  # the attach stream ends with the container
        # CancellableStream.close() shuts the socket but leaves the HTTP response (and the
        # file object holding the socket) open: close that too, or a ResourceWarning follows.
        with contextlib.suppress(Exception):
            self._stream.close()
        with contextlib.suppress(Exception):
            self._stream._response.close()

    def connect_address(self, listening: tuple[str, int]) -> tuple[str, int]:
        self.container.reload()
        bindings = (self.container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(
            f"{CONTAINER_PORT}/tcp"
        )
        if bindings:
            return ("127.0.0.1", int(bindings[0]["HostPort"]))
        host = listening[0]
        return ("127.0.0.1" if host in ("0.0.0.0", "::", "") else host, listening[1])
