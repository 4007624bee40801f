"""Peers: what ``--peer`` names, how each kind is built and run, and its contract checks.

The fixture chain's lower half (see :mod:`smuxref_conformance`): :mod:`.pool` keeps the
peers of one process and reuses servers; :mod:`.lifecycle` starts, checks and stops one
by CONTRACT.md, asking :mod:`.readiness` whether a server answers ECHO; :mod:`.specs`
parses ``--peer`` and runs local processes, with :mod:`.docker` (containers),
:mod:`.go_build` (the Go peer and its image), :mod:`.thirdparty` (shims around other
libraries), :mod:`.cmdline` (the option spelling), :mod:`.capture` (stdout and stderr),
:mod:`.run_context` (which run owns what) and :mod:`.info` (each peer's INFO line).
Nothing here grades a peer: a broken contract is a
:class:`~smuxref_conformance.errors.ContractViolation`.
"""
