"""Recorded and generated test vectors of the conformance suite.

This package builds what lives under ``vectors/``: the codec vectors of
``vectors/frames.json`` (their expected results come from :mod:`.codec_rules`, an
implementation of SPEC.md's receiver rules written apart from smuxref's decoder, so the
two check each other), and the session transcripts of ``vectors/sessions/`` (a
recording relay between two contract peers, :mod:`.relay`, written out as JSON and as a
synthesized pcap, :mod:`.pcap`).  ``python -m smuxref_conformance.record`` is the command line.
"""

from __future__ import annotations
