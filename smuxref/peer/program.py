"""The reference peer program (see conformance/CONTRACT.md).

:func:`main` takes the engine to run as an argument, so a harness can build the same
program around a variant engine (the suite's ``--bug`` switches do) without touching
any module of smuxref.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable, Iterable, Sequence

from .. import aio
from ..engine import Engine
from .commands import serve_session
from .exchange import run_exchange
from .options import PeerOptions, parse_options

__all__ = ["main"]

#: Builds the engine factory for the ``--bug`` names given (none for the plain peer).
EngineChooser = Callable[[Iterable[str]], aio.EngineFactory]


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def _server(opts: PeerOptions, engine: aio.EngineFactory) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    server = await aio.serve(serve_session, opts.host, opts.port, opts.config, engine=engine)
    host, port = server.sockets[0].getsockname()[:2]
    _say(f"LISTENING {host}:{port}")
    await stop.wait()
    server.close()
    await server.wait_closed(grace=0)  # the contract's stop ends every session now


async def _client(opts: PeerOptions, engine: aio.EngineFactory) -> None:
    session = await aio.connect(opts.host, opts.port, opts.config, engine=engine)
    loop = asyncio.get_running_loop()
    # Before CONNECTED: a SIGTERM sent as soon as the line is read must be handled.
    loop.add_signal_handler(signal.SIGTERM, session.close)
    _say("CONNECTED")
    serving = asyncio.create_task(serve_session(session))
    if opts.runs:  # CONTRACT.md rule 22
        results = await asyncio.gather(*(run_exchange(session, r) for r in opts.runs))
        for result in results:
            _say(result.line())
        _say("DONE")
        session.close()
    await serving
    session.close()
    await session.wait_closed()


def _plain(names: Iterable[str]) -> aio.EngineFactory:
    return Engine


def main(
    argv: list[str] | None = None,
    *,
    bug_names: Sequence[str] = (),
    engine_for: EngineChooser = _plain,
) -> int:
    """Run the peer.  ``bug_names`` are the values ``--bug`` accepts (none: the option
    refuses every value, as an unsupported option) and ``engine_for`` turns the chosen
    ones into the engine every session runs."""
    opts = parse_options(sys.argv[1:] if argv is None else argv, sorted(bug_names))
    engine = engine_for(opts.bugs)
    try:
        asyncio.run(_server(opts, engine) if opts.role == "server" else _client(opts, engine))
    except OSError as exc:
        sys.stderr.write(f"smuxref.peer: {exc}\n")
        return 1
    return 0
