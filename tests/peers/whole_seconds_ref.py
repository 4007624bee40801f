"""The reference peer behind a library whose keepalive timers count whole seconds: a
keepalive value that is not a whole number of seconds is refused with exit 127."""

import sys

from smuxref.peer import main

args = sys.argv[1:]
for option in ("--keepalive-interval", "--keepalive-timeout"):
    if option in args and int(args[args.index(option) + 1]) % 1000:
        sys.stderr.write(f"unsupported: {option} must be whole seconds\n")
        sys.exit(127)
sys.exit(main())
