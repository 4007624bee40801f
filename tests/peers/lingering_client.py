"""Broken: a client that connects, prints CONNECTED, and never exits (rule 8)."""

import socket

from _contract import block_forever, parse, split_addr

args = parse()
if args.role != "client":
    raise SystemExit(127)
sock = socket.create_connection(split_addr(args.addr))
print("CONNECTED", flush=True)
block_forever()
