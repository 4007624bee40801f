"""Broken: prints LISTENING, accepts every connection, reads what comes and never answers
(rule 5: no ECHO round trip)."""

import socket
import threading

from _contract import parse, split_addr

args = parse()
if args.role != "server":
    raise SystemExit(127)
listener = socket.socket()
listener.bind(split_addr(args.addr))
listener.listen(16)
host, port = listener.getsockname()[:2]
print(f"LISTENING {host}:{port}", flush=True)


def swallow(conn: socket.socket) -> None:
    with conn:
        while conn.recv(65536):
            pass


while True:
    conn, _ = listener.accept()
    threading.Thread(target=swallow, args=(conn,), daemon=True).start()
