"""A working contract server built on smuxref.aio, with hooks to break it on purpose."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable

from _contract import parse, split_addr

from smuxref import aio
from smuxref.config import Config
from smuxref.peer.commands import serve_session


def run(*, after_listening: Callable[[], None] | None = None, ignore_sigterm: bool = False) -> None:
    args = parse()
    if args.role != "server":
        sys.stderr.write("unsupported: this test peer is a server only\n")
        raise SystemExit(127)
    host, port = split_addr(args.addr)

    async def main() -> None:
        stop = asyncio.Event()
        if ignore_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        else:
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        server = await aio.serve(serve_session, host, port, Config(version=args.version))
        bound = server.sockets[0].getsockname()
        print(f"LISTENING {bound[0]}:{bound[1]}", flush=True)
        if after_listening is not None:
            after_listening()
        await stop.wait()
        server.close()

    asyncio.run(main())
