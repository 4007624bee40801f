"""The gate's power, measured by mutation: ``python -m smuxref_conformance.mutation run``.

Cosmic Ray generates mutants of smuxref's codec, decoder, state table and engine; each
one runs as the reference peer (``--peer=ref``) through the conformance suite alone,
while the suite itself keeps the unmutated codec.  The mutated copy lives in a work
directory that only the peer's processes import (``SMUXREF_REF_PEER_SOURCE``), so a
mutant can never be "caught" by the harness decoding with the same bug.  Each mutant
runs only the cases whose peer executed the mutated statement, per one instrumented run
(:mod:`.casemap`), with ``-x``.  Results and the survivor triage: ``RESULTS.md`` and
``triage.toml`` beside this file.
"""
