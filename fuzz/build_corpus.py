"""Seed corpora for the fuzz targets, built from the project's vectors.

    python fuzz/build_corpus.py [--out fuzz/corpus]

writes ``OUT/decoder/`` and ``OUT/engine/``, one file per seed (named by its SHA-1, as
libFuzzer names the inputs it finds):

* every codec vector of ``vectors/frames.json`` (its hex), as a decoder input with the
  group's version, strict and lenient, and as an engine input whose role is the
  vector's receiver role;
* every recorded session of ``vectors/sessions/**/*.json``: each direction's byte chunks,
  in their recorded segmentation, as the engine input of the side that received them
  (the application reading everything after each chunk), and all of a direction's bytes
  as one decoder input.

The fuzz entry points call :func:`ensure` on the corpus directories they are given, so
an empty or missing directory is seeded automatically.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fuzz.decoder_target import MAX_FRAME_SIZES  # noqa: E402
from fuzz.engine_target import engine_seed  # noqa: E402

VECTORS = ROOT / "vectors"
TARGETS = ("decoder", "engine")

__all__ = ["TARGETS", "build", "ensure", "seeds"]


def _decoder_seed(wire: bytes, version: int | None, *, strict: bool, limit: int) -> bytes:
    mode = (None, 1, 2).index(version) | (0 if strict else 0x80)
    return bytes([mode, MAX_FRAME_SIZES.index(limit), 0]) + wire


def _sessions() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted((VECTORS / "sessions").rglob("*.json")):
        if path.name == "index.json":
            continue
        yield path.relative_to(VECTORS).as_posix(), json.loads(path.read_text())


def seeds(target: str) -> Iterator[bytes]:
    """Every seed input of ``target`` ("decoder" or "engine")."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; one of {TARGETS}")
    frames = json.loads((VECTORS / "frames.json").read_text())
    for group in frames["testGroups"]:
        version: int = group["version"]
        client = group["receiverRole"] == "client"
        for test in group["tests"]:
            wire = bytes.fromhex(test["hex"])
            if target == "decoder":
                for strict in (True, False):
                    yield _decoder_seed(wire, version, strict=strict, limit=65535)
                yield _decoder_seed(wire, None, strict=True, limit=32768)
            else:
                yield engine_seed([wire], version=version, client=client)
    for _, session in _sessions():
        version = session["version"]
        for direction, receiver_is_client in (("c2s", False), ("s2c", True)):
            chunks = [bytes.fromhex(c["hex"]) for c in session["directions"][direction]["chunks"]]
            if not chunks:
                continue
            if target == "decoder":
                yield _decoder_seed(b"".join(chunks), version, strict=True, limit=65535)
            else:
                yield engine_seed(chunks, version=version, client=receiver_is_client)


def build(target: str, directory: Path) -> int:
    """Write the seeds of ``target`` into ``directory``; return how many are new."""
    directory.mkdir(parents=True, exist_ok=True)
    written = 0
    for seed in seeds(target):
        path = directory / hashlib.sha1(seed).hexdigest()
        if not path.exists():
            path.write_bytes(seed)
            written += 1
    return written


def ensure(target: str, directory: Path) -> None:
    """Seed ``directory`` unless it already holds inputs."""
    if not directory.is_dir() or not any(directory.iterdir()):
        build(target, directory)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "fuzz" / "corpus")
    args = parser.parse_args(argv)
    for target in TARGETS:
        count = build(target, args.out / target)
        print(f"{args.out / target}: {count} new seeds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
