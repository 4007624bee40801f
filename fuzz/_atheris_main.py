"""What the atheris entry points share: instrument smuxref, seed the corpus, fuzz."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import atheris

__all__ = ["TARGET_MODULES", "run"]

#: The harness's modules: instrumented with smuxref, so that coverage of the oracles
#: (which paths of the model an input reaches) guides the search too.
TARGET_MODULES = (
    "fuzz.shared",
    "fuzz.decoder_target",
    "fuzz.engine_model",
    "fuzz.engine_target",
)


def run(target: str, argv: list[str]) -> NoReturn:
    """Fuzz ``target`` ("decoder" or "engine") with libFuzzer arguments ``argv``.

    smuxref and the harness are imported under atheris's instrumentation, so coverage
    guides the search through both.  Corpus directories named in ``argv`` are seeded
    from vectors/ when they are empty or missing (fuzz/build_corpus.py).
    """
    with atheris.instrument_imports(include=["smuxref", *TARGET_MODULES]):
        # Imported here, not at the top: only imports inside this block are instrumented.
        from fuzz import decoder_target, engine_target  # noqa: PLC0415

    from fuzz.build_corpus import ensure  # noqa: PLC0415 - after the instrumented import

    one_input = {
        "decoder": decoder_target.decoder_one_input,
        "engine": engine_target.engine_one_input,
    }
    for arg in argv[1:]:
        if not arg.startswith("-"):
            ensure(target, Path(arg))
    atheris.Setup(argv, one_input[target])
    atheris.Fuzz()
    sys.exit(0)  # pragma: no cover - atheris.Fuzz() exits the process itself
