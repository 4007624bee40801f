"""Pairwise interop: one implementation's client against another's server, judged on the wire.

``judge`` checks frames against SPEC.md, ``exchanges`` checks what the exchanges of
CONTRACT.md rules 20-22 carried, ``runner`` runs a pair through the recording relay.
``python -m smuxref_conformance.pairwise --client ref --server rust-smux`` runs one pair.
"""
