"""Broken: a client that connects and then says nothing - no CONNECTED line, no frames,
and it never exits (rule 7)."""

import socket

from _contract import block_forever, parse, split_addr

args = parse()
if args.role != "client":
    raise SystemExit(127)
sock = socket.create_connection(split_addr(args.addr))
block_forever()
