"""The module structure: in smuxref no import cycle (type-only imports count too), the
test switches live outside the shipped package, and the asyncio stream keeps no copy of
the engine's stream state; in the suite, the layers of its two chains."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import smuxref
import smuxref_conformance
from smuxref.aio import Stream
from smuxref.engine import Engine

PACKAGE = Path(smuxref.__file__).parent
SUITE = Path(smuxref_conformance.__file__).parent


def _module_name(path: Path, root: Path, name: str) -> str:
    parts = [name, *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(root: Path = PACKAGE, package_name: str = "smuxref") -> dict[str, set[str]]:
    """module -> modules of the same package it imports, at run time or for type checking."""
    modules = {_module_name(p, root, package_name): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - node.level + 1]
                    stem = ".".join(base + ([node.module] if node.module else []))
                else:
                    stem = node.module or ""
                targets = [stem, *(f"{stem}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            edges |= {t for t in targets if t in modules and t != name}
        graph[name] = edges
    return graph


def test_no_import_cycle_in_smuxref() -> None:
    """A module never imports, directly or through others, one that imports it: the
    asyncio stream reaches its session through the StreamHost protocol."""
    graph = _imports()
    # A package's __init__ re-exports its modules; only module-to-module edges count.
    packages = {name for name in graph if (PACKAGE.parent / name.replace(".", "/")).is_dir()}
    for start in graph:
        if start in packages:
            continue
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in graph[node] - packages:
                assert nxt != start, "import cycle: " + " -> ".join([*path, nxt])
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))


def test_no_test_switches_in_the_shipped_package() -> None:
    """The deliberate-bug engines belong to the suite (conformance/bugs), and nothing in
    smuxref rebinds a module attribute to install them."""
    assert not any(p.name == "bugs.py" for p in PACKAGE.rglob("*.py"))
    for path in PACKAGE.rglob("*.py"):
        assert "setattr(_session" not in path.read_text(), path
    assert "type(self)" not in inspect.getsource(Engine._queue)


def test_asyncio_stream_keeps_no_stream_state() -> None:
    """The asyncio Stream's attributes: its record in the engine, its session, the
    bytes not read yet and the futures its tasks wait on - no state of its own."""
    assert set(Stream.__slots__) == {
        "_chunks",
        "_host",
        "_info",
        "_read_waiter",
        "_write_waiter",
        "id",
    }


def _suite_layers() -> dict[str, set[str]]:
    """Each part of the suite (subpackage, or top-level module) -> the parts it imports."""
    layers: dict[str, set[str]] = {}
    for module, imported in _imports(SUITE, "smuxref_conformance").items():
        part = module.split(".")[1] if "." in module else "(package)"
        targets = {m.split(".")[1] for m in imported if "." in m} - {part}
        layers.setdefault(part, set()).update(targets)
    return layers


def test_suite_layers_follow_the_chains() -> None:
    """The fixture and verdict chains of smuxref_conformance (its package docstring):
    the plugin sits on top, so nothing it uses imports it back; errors and deadlines
    are the ground every other part stands on."""
    layers = _suite_layers()
    assert {"plugin", "peers", "judge", "stateful", "wire", "errors"} <= set(layers)
    for part in ("errors", "deadlines"):
        assert layers[part] == set(), f"{part} imports {layers[part]}"
    for part in ("wire", "peers", "judge", "stateful", "recording", "report"):
        assert "plugin" not in layers[part], f"{part} imports the plugin"
        assert "cases" not in layers[part], f"{part} imports the cases"
    assert layers["wire"] <= {"errors", "deadlines", "recording"}, layers["wire"]
    assert "stateful" not in layers["judge"] | layers["peers"]
