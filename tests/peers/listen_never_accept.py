"""Broken: listens, prints LISTENING, and never accepts a connection (rule 5).

The kernel completes the first handshakes into the backlog, so the suite's connect may
succeed and its ECHO go unanswered; once the backlog is full, connects hang.
"""

import socket

from _contract import block_forever, parse, split_addr

args = parse()
if args.role != "server":
    raise SystemExit(127)
listener = socket.socket()
listener.bind(split_addr(args.addr))
listener.listen(0)
host, port = listener.getsockname()[:2]
print(f"LISTENING {host}:{port}", flush=True)
block_forever()
