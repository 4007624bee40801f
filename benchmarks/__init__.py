"""Benchmarks: ``python -m benchmarks.run`` (the speed table; ``--check`` against
``published.json``), the codec on pyperf, the soak and the profiles."""
