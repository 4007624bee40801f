"""Property-based conformance: a Hypothesis state machine against a model of the peer.

:mod:`.machine` generates frame sequences (the rules), :mod:`.model` is the session a
conforming ``ECHO`` peer must keep, :mod:`.peer_io` holds the connections, targets and
failure reports of one example, :mod:`.profiles` the Hypothesis profiles
(``--smux-hypothesis-profile``) and :mod:`.database` the example database kept in
``conformance/hypothesis-db/``.
"""
