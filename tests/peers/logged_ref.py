"""The reference peer, logging each start (for tests that count starts)."""

import sys

from _contract import log_start

from smuxref.peer import main

log_start(sys.argv[1:])
sys.exit(main())
