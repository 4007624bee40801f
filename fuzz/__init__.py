"""Coverage-guided fuzzing of the smuxref codec and sans-IO engine (see fuzz/README.md).

``fuzz.harness`` holds the targets and their oracles as plain Python, so that a crash
input replays without atheris (tests/test_fuzz_regressions.py); ``fuzz_decoder.py`` and
``fuzz_engine.py`` are the atheris entry points; ``build_corpus.py`` turns vectors/ into
seed inputs.
"""
