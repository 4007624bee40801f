"""Coverage-guided fuzzing of the smuxref codec and sans-IO engine (see fuzz/README.md).

The targets and their oracles are plain Python, so that a crash input replays without
atheris (tests/test_fuzz_regressions.py): ``decoder_target.py``, ``engine_target.py``
(with ``engine_model.py``, the adapter and application it plays) and ``shared.py`` (the
input reader and the failed-oracle exception).  ``fuzz_decoder.py`` and
``fuzz_engine.py`` are the atheris entry points; ``build_corpus.py`` turns vectors/ into
seed inputs; ``replay.py`` runs inputs without atheris.
"""
