"""``python -m smuxref.peer``: run the reference peer (see conformance/CONTRACT.md)."""

from __future__ import annotations

import asyncio
import signal
import sys

from .. import aio
from .bugs import BUGS, install
from .commands import serve_session
from .options import PeerOptions, parse_options


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def _server(opts: PeerOptions) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    sessions: set[aio.Session] = set()

    async def handler(session: aio.Session) -> None:
        sessions.add(session)
        try:
            await serve_session(session)
        finally:
            sessions.discard(session)

    server = await aio.serve(handler, opts.host, opts.port, opts.config)
    host, port = server.sockets[0].getsockname()[:2]
    _say(f"LISTENING {host}:{port}")
    await stop.wait()
    server.close()
    for session in list(sessions):
        session.close()
    await server.wait_closed()


async def _client(opts: PeerOptions) -> None:
    session = await aio.connect(opts.host, opts.port, opts.config)
    loop = asyncio.get_running_loop()
    # Before CONNECTED: a SIGTERM sent as soon as the line is read must be handled.
    loop.add_signal_handler(signal.SIGTERM, session.close)
    _say("CONNECTED")
    await serve_session(session)
    session.close()
    await session.wait_closed()


def main(argv: list[str] | None = None) -> int:
    opts = parse_options(sys.argv[1:] if argv is None else argv, sorted(BUGS))
    install(opts.bugs)
    try:
        asyncio.run(_server(opts) if opts.role == "server" else _client(opts))
    except OSError as exc:
        sys.stderr.write(f"smuxref.peer: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
