"""Broken: a working server that ignores SIGTERM (rule 6)."""

import _server

_server.run(ignore_sigterm=True)
