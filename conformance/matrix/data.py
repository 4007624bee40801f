"""The interop matrix as data: conformance summaries per implementation, pairwise results.

One JSON document (``matrix.json``) holds a run; documents merge (later runs replace the
entries they share with earlier ones: the same implementation's conformance, the same
client, server and version), so a matrix can be built up from runs on several machines,
or a single implementation rerun.  Paths inside are relative to the document's folder.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Final

__all__ = [
    "SCHEMA",
    "UNSERVABLE",
    "conformance_summary",
    "empty",
    "load",
    "merge",
]

SCHEMA: Final = "smuxref-matrix/1"

#: Implementations found on the reachable registries that have no shim, and why.
UNSERVABLE: Final = {
    "@hazae41/smux 1.1.3 (npm)": (
        "cannot serve the contract: one stream whose id the caller picks (SmuxDuplex "
        "{streamID: 3}, dist/esm/mods/smux/stream.mjs:55), no SYN handling on receive (a "
        "remote-opened stream is an UnknownSmuxCommandError, reader.mjs:61-74) and version 2 "
        "only (reader.mjs:62-63): no server role, and no client that accepts streams (rule 9)"
    ),
    "tokio_smux 0.2.0 (crates.io)": (
        "not shimmed yet: a message API (Stream::send_message/recv_message, src/stream.rs:88,"
        "121) over Session methods taking &mut self (src/session.rs:156,207)"
    ),
}


def empty() -> dict[str, Any]:
    return {"schema": SCHEMA, "runs": [], "conformance": {}, "pairwise": [], "unservable": {}}


def load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text())
    if doc.get("schema") != SCHEMA:
        raise ValueError(f"{path}: schema is {doc.get('schema')!r}, not {SCHEMA!r}")
    return doc


def _pair_key(entry: dict[str, Any]) -> tuple[str, str, int]:
    return (entry["client"], entry["server"], entry["version"])


def merge(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """One document from several; later documents win where they overlap."""
    out = empty()
    pairs: dict[tuple[str, str, int], dict[str, Any]] = {}
    for doc in docs:
        out["runs"] += doc.get("runs", [])
        out["conformance"].update(doc.get("conformance", {}))
        out["unservable"].update(doc.get("unservable", {}))
        for entry in doc.get("pairwise", []):
            pairs[_pair_key(entry)] = entry
    out["pairwise"] = list(pairs.values())
    return out


def conformance_summary(results_json: Path, report_rel: str) -> dict[str, Any]:
    """Counts per (version, role) from a conformance run's smux-results.json."""
    doc = json.loads(results_json.read_text())
    cells: dict[str, Counter[str]] = {}
    info: dict[str, Any] = {}
    for peer in doc.get("peers", {}).values():
        info = next(iter((peer.get("info") or {}).values()), {}) or {}
    for r in doc.get("results", []):
        key = f"v{r['version']}-{r['role']}" if r.get("role") else f"v{r['version']}"
        counts = cells.setdefault(key, Counter())
        counts[r["actual"]] += 1
        if r.get("unexpected"):
            counts["unexpected"] += 1
        elif r["actual"] in ("fail", "non_strict") and r.get("expected") != "pass":
            counts["expected_fail"] += 1
    return {
        "report": report_rel,
        "info": info,
        "date": doc.get("date", ""),
        "cells": {k: dict(v) for k, v in sorted(cells.items())},
        "total": doc.get("summary", {}).get("total", 0),
        "unexpected": doc.get("summary", {}).get("unexpected", 0),
    }
