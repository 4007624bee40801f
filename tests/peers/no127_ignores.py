"""Broken: ignores unknown options and serves anyway (rule 3)."""

from _contract import block_forever

print("LISTENING 127.0.0.1:1", flush=True)
block_forever()
