"""smux on anyio: sessions over any ``anyio.abc.ByteStream``, on asyncio or Trio.

    async with await anyio.connect_tcp("127.0.0.1", 7000) as tcp:
        async with smuxref.anyio.Session(tcp, Config(version=2), client=True) as session:
            stream = await session.open_stream()
            await stream.send(b"hello")
            await stream.send_eof()
            reply = await stream.receive()

A second adapter over the same sans-IO :class:`~smuxref.engine.Engine` as
:mod:`smuxref.aio`, written only against the engine's public interface: the engine
keeps every stream's state, this package maps its events to anyio primitives.
Streams are ``anyio.abc.ByteStream`` objects themselves, so anything that runs on a
byte stream (TLS with ``anyio.streams.tls``, buffered readers) runs on a smux stream.
Needs the ``anyio`` extra (``pip install smuxref[anyio]``; Trio is optional).
"""

from __future__ import annotations

from ._session import Session, Stream

__all__ = ["Session", "Stream"]
