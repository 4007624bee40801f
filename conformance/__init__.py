"""The smuxref conformance suite: a pytest plugin that runs protocol cases against peers.

A *peer* is any smux implementation wrapped in a small program that follows
``conformance/CONTRACT.md`` (the reference peer ``python -m smuxref.peer``, the Go peer
built on github.com/xtaci/smux, or anything else).  The plugin (entry point ``smux``,
:mod:`smuxref_conformance.plugin`) starts peers, checks that they keep the contract,
hands cases raw frame-level connections or smuxref sessions to them, and turns what
each case did into one verdict.  Two chains carry a case, and the subpackages follow
them.

Fixtures - a case asks for a peer and gets a connection to a running one::

    plugin/fixtures.py     peer_server, raw_conn, smux_check (plugin/smux_session.py:
         |                 smux_session), through plugin/access.py
         v
    peers/pool.py          per-process peers: launchers, compliance verdicts, pooled servers
         v                 (peers/docker.py, peers/go_build.py, peers/thirdparty.py)
    peers/lifecycle.py     start / check / stop a peer by CONTRACT.md
         v
    peers/specs.py         --peer specs; peers as local processes (peers/cmdline.py,
         v                 peers/capture.py, peers/run_context.py)
    wire.py                raw frame-level connections with transcripts

Verdicts - a phase of a case ends and its outcome becomes a result::

    plugin/gate.py         every phase report of a @case: verdict -> pytest outcome; a
         |                 fault another case tests makes it inconclusive (judge/blame.py)
         v
    judge/classify.py      exception + checks (judge/checks.py) -> one verdict of
         v                 judge/case.py
    judge/expectations.py  was that verdict expected for this implementation?
         v                 (expectations/*.json)
    plugin/collector.py    results JSON, reports (report/), the exit status

Beside the chains: ``errors.py`` (every exception of the suite, one hierarchy),
``deadlines.py`` (every time limit, scaled by --smux-timeout-scale), ``judge/oracle.py``
(what a peer did with bad input), ``stateful/`` (the Hypothesis state machine and its
session model), ``cases/`` (the cases), ``recording/`` (vectors), ``report/`` (results
model, HTML, Markdown, JUnit, ``smux-conformance merge``), and the commands
``cli.py`` (``smux-conformance``), ``precision.py``, ``record.py``, ``bugs/``,
``matrix/``, ``mutation/`` and ``pairwise/`` (``python -m smuxref_conformance.NAME``).
"""
