"""The pytest plugin of the conformance suite (entry point ``smux``).

It turns the command line (which peers, which protocol versions, how slow the machine
is) into parametrized cases - every case against every ``--peer``, for every selected
version and, where the case takes a ``role``, with the peer as server and as client -
and hands cases connections to running peers.  Test ids name the peer, the version and
the peer's role: ``test_x[go@v1.0.7-v2-client]``.

This module holds the hooks (options, markers, parametrization, stderr sections) and
is the one pytest registers, so the fixtures of :mod:`.fixtures` are imported here.
:mod:`.gate` and :mod:`.collector` are the plugin objects of the verdict chain;
:mod:`.case_selection` selects cases by id; :mod:`.shard` splits a run between CI jobs.

The plugin is loaded by every pytest run of the project, so importing and configuring
it costs nothing: peers, Docker and the run directory are touched only when a case
asks for a peer.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Generator
from typing import Any, Final

import pytest

from .. import deadlines
from ..errors import HarnessError
from ..judge.checks import OWN_STDERR, PEER_STDERR
from ..peers.cmdline import Role
from ..peers.docker import close_client, docker_client
from ..peers.run_context import RunContext
from ..peers.specs import PeerSpec, parse_peer, unique_ids
from ..stateful import profiles as hypothesis_profiles
from ..wire import RawConnection
from . import case_selection, gate, shard
from .access import PeerServer
from .fixtures import (
    RUN,
    keepalive_factor,
    peer,
    peer_options,
    peer_server,
    raw_conn,
    role,
    smux_check,
    smux_pool,
    smux_run,
    smux_strict,
    smux_version,
)

# The fixtures are attributes of this module, the one pytest registers (entry point smux).
__all__ = [
    "PeerServer",
    "keepalive_factor",
    "peer",
    "peer_options",
    "peer_server",
    "raw_conn",
    "role",
    "smux_check",
    "smux_pool",
    "smux_run",
    "smux_strict",
    "smux_version",
]

PEERS: Final = pytest.StashKey[list[PeerSpec]]()
VERSIONS: Final = pytest.StashKey[list[int]]()
ROLES: Final = pytest.StashKey[list[Role]]()
_WORKER_KEY: Final = "smuxref_run_id"

MARKERS: Final = (
    "smux_case(id, **meta): a conformance case; id and metadata (SPEC.md sections, "
    "level) are read by reports and expectations",
    "roles(*roles): the roles the peer plays in this case ('server', 'client'); default both",
    "versions(*versions): the protocol versions this case applies to; default all selected",
    "peer_config(**options): peer command-line options (smuxref_conformance.peers.cmdline keys)",
    "local_config(**fields): smuxref.config.Config fields of the suite's own session",
    "fresh_peer: start a server peer for this case alone instead of reusing a pooled one",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("smux", "smux conformance suite")
    group.addoption(
        "--peer",
        action="append",
        dest="smux_peers",
        metavar="PEER",
        help="peer under test, repeatable: ref, go, go@TAG, docker:IMAGE, exec:'CMD ARGS', "
        "tcp:HOST:PORT (server role only). Default: ref",
    )
    group.addoption(
        "--smux-version", default="1,2", metavar="1,2", help="protocol versions (default 1,2)"
    )
    group.addoption(
        "--smux-roles",
        default="server,client",
        metavar="R,R",
        help="peer roles to run (default both)",
    )
    group.addoption(
        "--smux-timeout-scale",
        type=float,
        default=1.0,
        metavar="FLOAT",
        help="multiply every deadline of the suite by FLOAT (default 1.0)",
    )
    group.addoption(
        "--smux-strict", action="store_true", help="treat should-level deviations as failures"
    )
    group.addoption(
        "--smux-expectations",
        action="append",
        metavar="PATH",
        help="expectations JSON file or directory, repeatable; 'none' for none "
        "(default: the shipped conformance/expectations/, each file for the peers it names)",
    )
    group.addoption(
        "--smux-report-dir", metavar="DIR", help="write the conformance report into DIR"
    )
    group.addoption(
        "--smux-docker-network",
        choices=("auto", "bridge", "host"),
        default="auto",
        help="container networking: auto (servers published on loopback, clients on the host "
        "network), bridge (clients dial host.docker.internal), host (both on the host network)",
    )
    hypothesis_profiles.add_options(group)
    case_selection.add_option(group)
    shard.add_option(group)


def _csv(config: pytest.Config, option: str, allowed: dict[str, Any]) -> list[Any]:
    text = str(config.getoption(option))
    values = [allowed.get(item.strip()) for item in text.split(",") if item.strip()]
    if not values or None in values:
        raise pytest.UsageError(
            f"--{option.replace('_', '-')}={text!r}: use a comma list of {', '.join(allowed)}"
        )
    return list(dict.fromkeys(values))


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    try:
        deadlines.set_scale(float(config.getoption("smux_timeout_scale")))
        config.stash[PEERS] = unique_ids(
            [parse_peer(p) for p in config.getoption("smux_peers") or ["ref"]]
        )
        config.stash[shard.SHARD] = shard.parse_shard(config.getoption("smux_shard"))
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[VERSIONS] = _csv(config, "smux_version", {"1": 1, "2": 2})
    config.stash[ROLES] = _csv(config, "smux_roles", {"server": "server", "client": "client"})
    config.stash[case_selection.CASES] = tuple(config.getoption("smux_cases") or ())
    gate.install(config, config.stash[PEERS])  # verdicts, expectations, reports
    config.pluginmanager.register(case_selection, "smux-case-selection")
    config.pluginmanager.register(shard, "smux-shard")
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    run = RunContext.create(workerinput.get(_WORKER_KEY) if workerinput else None)
    config.stash[RUN] = run
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(run.run_id), "smux-xdist")


class _XdistHooks:
    """Hands the controller's run id to every xdist worker."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[_WORKER_KEY] = self.run_id


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Fail at once, in one line, when containerized peers are asked for and no engine runs."""
    config = session.config
    if config.option.collectonly or not any(s.containerized for s in config.stash[PEERS]):
        return
    try:
        docker_client()
    except HarnessError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_unconfigure(config: pytest.Config) -> None:
    close_client()
    if RUN in config.stash:
        config.stash[RUN].remove()


def pytest_report_header(config: pytest.Config) -> str:
    peers = ", ".join(s.id for s in config.stash[PEERS])
    selected: list[int] = config.stash[VERSIONS]
    versions = ",".join(map(str, selected))
    return f"smux: peers {peers}; versions {versions}; timeout scale {deadlines.get_scale():g}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed case shows what its peers wrote on stderr while it ran."""
    report: pytest.TestReport = yield
    if report.failed and report.when == "call":
        own = item.stash.get(OWN_STDERR, set())
        for name, peer, mark in item.stash.get(PEER_STDERR, []):
            text = peer.capture.stderr_since(mark).decode("utf-8", "replace").rstrip()
            if text:
                title, lines = _stderr_section(item, name, name in own, text.splitlines())
                report.sections.append((title, "\n".join(lines[-60:])))
    return report


def _stderr_section(
    item: pytest.Item, name: str, own: bool, lines: list[str]
) -> tuple[str, list[str]]:
    """A peer's stderr lines for a failed case, and how far they are the case's own.

    A peer that served this case alone (a client, a fresh server) wrote only about it.
    A pooled server serves other connections too: when its log lines name the remote
    port (go-peer writes ``HOST:PORT: ...``), only those of this case's connections are
    kept; otherwise the section says that the lines are shared.
    """
    if own:
        return f"stderr of peer {name} (it served this case alone)", lines
    ports: set[int] = set()
    conn = getattr(item, "funcargs", {}).get("raw_conn")
    if isinstance(conn, RawConnection):
        ports.add(conn.local_port)
    server = getattr(item, "funcargs", {}).get("peer_server")
    if isinstance(server, PeerServer):
        ports |= server.ports
    marks = tuple(f":{port}" for port in ports)
    mine = [ln for ln in lines if marks and any(m in ln for m in marks)]
    if mine:
        where = ", ".join(str(p) for p in sorted(ports))
        return f"stderr of peer {name}: the lines naming this case's port ({where})", mine
    return (
        f"stderr of peer {name} during the case (shared: this server also serves other "
        "connections, and its lines do not say which)",
        lines,
    )


def _already_parametrized(metafunc: pytest.Metafunc, name: str) -> bool:
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0] if mark.args else ""
        if name in ([n.strip() for n in names.split(",")] if isinstance(names, str) else names):
            return True
    return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    config = metafunc.config
    names = metafunc.fixturenames
    if "peer" in names and not _already_parametrized(metafunc, "peer"):
        specs = config.stash[PEERS]
        metafunc.parametrize("peer", specs, ids=[s.id for s in specs], indirect=True)
    if "smux_version" in names and not _already_parametrized(metafunc, "smux_version"):
        marker = metafunc.definition.get_closest_marker("versions")
        selected: list[int] = config.stash[VERSIONS]
        versions = [v for v in selected if marker is None or v in marker.args]
        metafunc.parametrize(
            "smux_version", versions, ids=[f"v{v}" for v in versions], indirect=True
        )
    if "role" in names and not _already_parametrized(metafunc, "role"):
        marker = metafunc.definition.get_closest_marker("roles")
        roles = [r for r in config.stash[ROLES] if marker is None or r in marker.args]
        metafunc.parametrize("role", roles, ids=roles, indirect=True)


if importlib.util.find_spec("pytest_asyncio") is not None:
    # smux_session is an asyncio fixture: offered only where pytest-asyncio runs it.
    from .smux_session import smux_session

    _ = smux_session
