"""The interop matrix: every implementation judged, every client against every server.

``python -m smuxref_conformance.matrix run`` (see ``__main__``).
"""
