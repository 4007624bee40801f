"""The interop matrix: every implementation judged, every client against every server.

``python -m conformance.matrix run`` (see ``__main__``).
"""
