"""A correct peer of protocol 1 only: --version 2 gives exit 127 (rule 3: unsupported)."""

import sys

from _contract import parse

from smuxref.peer import main

if parse().version == 2:
    sys.stderr.write("unsupported: this peer implements protocol version 1 only\n")
    raise SystemExit(127)
sys.exit(main())
