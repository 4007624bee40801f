"""The fixtures cases ask for: the run, the pool, the peer, connections, checks.

Registered by :mod:`smuxref_conformance.plugin` (the hooks parametrize ``peer``,
``smux_version`` and ``role``; these fixtures turn the parameters into running peers).
A harness outcome inside a fixture goes through :func:`~.access.verdicts`, so a peer
that breaks its contract ends the case ``error``, never ``fail``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import pytest

from ..errors import HarnessError, PreconditionFailed
from ..judge.blame import READINESS_CASE, READINESS_EXEMPT, blame_frames
from ..judge.case import case_meta
from ..judge.checks import CHECK, SmuxCheck
from ..peers.cmdline import CONFIG_KEYS, Role, config_args
from ..peers.info import fetch_info
from ..peers.lifecycle import finish_client
from ..peers.pool import PeerPool
from ..peers.run_context import RunContext
from ..peers.specs import PeerSpec, sweep_processes
from ..wire import RawConnection
from .access import (
    TIME_FACTOR,
    PeerServer,
    start_adapting,
    start_client_peer,
    verdicts,
    watch_stderr,
)

#: The run of this process, set by the plugin's ``pytest_configure``.
RUN: Final = pytest.StashKey[RunContext]()


@pytest.fixture(scope="session")
def smux_run(pytestconfig: pytest.Config) -> RunContext:
    """The run: its id (shared by xdist workers) and its shared directory."""
    return pytestconfig.stash[RUN]


@pytest.fixture(scope="session")
def smux_pool(pytestconfig: pytest.Config, smux_run: RunContext) -> Iterator[PeerPool]:
    """Running peers of this process; stopped (rule 6 checked) at the end of the session."""
    sweep_processes()
    pool = PeerPool(smux_run, str(pytestconfig.getoption("smux_docker_network")))
    yield pool
    errors = pool.close()
    if errors:
        pytest.fail("\n\n".join(str(e) for e in errors), pytrace=False)


@pytest.fixture
def peer(request: pytest.FixtureRequest) -> PeerSpec:
    """The peer under test (parametrized from ``--peer``)."""
    spec: PeerSpec = request.param
    return spec


@pytest.fixture
def smux_version(request: pytest.FixtureRequest) -> int:
    """The protocol version under test (from ``--smux-version`` and ``@versions``)."""
    version: int = request.param
    return version


@pytest.fixture
def role(request: pytest.FixtureRequest) -> Role:
    """The role the *peer* plays: ``server`` (the suite dials it) or ``client``."""
    value: Role = request.param
    return value


@pytest.fixture
def smux_strict(pytestconfig: pytest.Config) -> bool:
    return bool(pytestconfig.getoption("smux_strict"))


def _marker_kwargs(request: pytest.FixtureRequest, name: str) -> dict[str, Any]:
    marker = request.node.get_closest_marker(name)
    return dict(marker.kwargs) if marker is not None else {}


@pytest.fixture
def peer_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Peer options from ``@peer_config(...)`` (version excluded: it is ``smux_version``)."""
    options = _marker_kwargs(request, "peer_config")
    options.pop("version", None)
    try:
        config_args(options)
    except ValueError as exc:
        raise pytest.fail.Exception(
            f"@peer_config: {exc} (keys: {sorted(CONFIG_KEYS)})", pytrace=False
        ) from None
    return options


@pytest.fixture
def peer_server(
    request: pytest.FixtureRequest,
    peer: PeerSpec,
    smux_version: int,
    peer_options: dict[str, Any],
    smux_pool: PeerPool,
) -> Iterator[PeerServer]:
    """The peer running as a server (pooled unless ``@fresh_peer``)."""
    fresh = request.node.get_closest_marker("fresh_peer") is not None
    with verdicts():
        handle = start_adapting(
            request.node,
            lambda options: smux_pool.server(peer, smux_version, options, fresh=fresh),
            peer_options,
        )
    watch_stderr(request.node, handle.peer, own=fresh)
    meta = case_meta(request.node)
    if handle.unready is not None and meta is not None and meta.id not in READINESS_EXEMPT:
        if fresh:
            with verdicts():
                smux_pool.stop(handle)
        malformed = blame_frames(handle.unready.frames, smux_version)
        blame = malformed[0] if malformed else READINESS_CASE
        step = "the server's readiness ECHO round trip"
        raise PreconditionFailed(meta.id, blame, step, handle.unready.what)
    server = PeerServer(handle)
    yield server
    server.close()
    if fresh:
        with verdicts():
            smux_pool.stop(handle)


@pytest.fixture
def raw_conn(  # noqa: PLR0917 - pytest passes fixtures positionally
    request: pytest.FixtureRequest,
    peer: PeerSpec,
    smux_version: int,
    role: Role,
    peer_options: dict[str, Any],
    smux_pool: PeerPool,
) -> Iterator[RawConnection]:
    """A raw frame-level connection to the peer playing ``role``.

    role ``server``: the suite dials the peer's server.  Role ``client``: the suite
    listens, starts the peer as a client toward it and accepts its connection; at
    teardown the connection is closed and the client must exit 0 (rule 8).
    """
    if role == "server":
        server: PeerServer = request.getfixturevalue("peer_server")
        with verdicts():
            conn = server.connect()
        yield conn
        conn.close()
        return
    handle = start_client_peer(smux_pool, peer, smux_version, peer_options, request.node)
    watch_stderr(request.node, handle.peer, own=True)
    try:
        yield handle.conn
    finally:
        with verdicts():
            finish_client(handle)


@pytest.fixture
def keepalive_factor(request: pytest.FixtureRequest, raw_conn: RawConnection) -> int:
    """How many times slower than asked the peer's keepalive runs: 1, or the factor
    that made its values whole seconds after it refused them with exit 127 (the case
    multiplies its intervals and deadlines by it)."""
    factor: int = request.node.stash.get(TIME_FACTOR, 1)
    return factor


@pytest.fixture
def smux_check(request: pytest.FixtureRequest) -> SmuxCheck:
    """Record and grade the checks of a ``@case``; see :class:`SmuxCheck`."""
    meta = case_meta(request.node)
    if meta is None:
        raise HarnessError(f"{request.node.nodeid}: smux_check is for functions declared @case")
    fetch_info(request)
    check = SmuxCheck(request, meta)
    request.node.stash[CHECK] = check
    return check
