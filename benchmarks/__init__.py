"""Benchmarks: ``python -m benchmarks.run`` (the side-by-side table) and ``benchmarks/codec.py``."""
