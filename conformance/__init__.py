"""The smuxref conformance suite: a pytest plugin that runs protocol cases against peers.

A *peer* is any smux implementation wrapped in a small program that follows
``conformance/CONTRACT.md`` (the reference peer ``python -m smuxref.peer``, the Go peer
built on github.com/xtaci/smux, or anything else).  The plugin (entry point ``smux``,
module :mod:`smuxref_conformance.plugin`) starts peers, checks that they keep the contract,
and hands cases raw frame-level connections or smuxref sessions to them:

    plugin       options, markers, parametrization, fixtures
    access       what fixtures hand out; harness outcomes -> pytest outcomes
    aiosession   the smux_session fixture (smuxref.aio against the peer)
    pool         per-process peers: launchers, compliance verdicts, reused servers
    lifecycle    start / check / stop a peer by the contract
    peers        --peer specs; peers as local processes
    dockerpeer   peers as containers; label sweeping
    gopeer       building the Go peer and its image, cached, once per run
    capture      a peer's stdout/stderr, read by threads, waited on with deadlines
    wire         raw frame-level connections with transcripts
    cmdline      peer command lines from configuration dicts
    deadlines    every time limit, scaled by --smux-timeout-scale
    run          run identity shared with xdist workers; owner liveness
    errors       harness errors, contract violations, unsupported
    verdict      @case, levels and verdicts, the smux_check fixture
    oracle       reactions to bad input (closed, ignored, silent, crashed), liveness
    expectations known deviations per implementation (expectations/*.json)
    gate         verdicts -> pytest outcomes (the exit status is the gate)
    collector    results JSON, reports, JUnit fix-ups, catalog (--collect-only)
    peerinfo     each peer's INFO line, for the report
    report       results model, HTML page, Markdown summary, generator CLI
    bugs         deliberate-bug engines for the self-test (python -m smuxref_conformance.bugs)
"""
