"""Third-party smux implementations as peers: shims in ``thirdparty/``, built on demand.

Each shim is a small program on one library's public API (``thirdparty/NAME/README.md``
says which library and what it lacks).  ``--peer=NAME`` runs the shim at the library
version pinned in the shim's lock file, ``--peer=NAME@VERSION`` at another version:
the shim is copied to the cache, its pin rewritten, and built there.  Builds are cached
across runs, keyed by the version and a hash of the shim's sources, and serialized by a
file lock so that pytest-xdist workers build once (the scheme of :mod:`.go_build`, whose
helpers this module shares).
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ..deadlines import Deadline, scaled
from ..errors import HarnessError

__all__ = [
    "IMPLEMENTATIONS",
    "THIRDPARTY_DIR",
    "ThirdParty",
    "ensure_binary",
    "find_cargo",
    "resolved_version",
    "shim_hash",
]

#: The shims: ``sources/thirdparty`` of the suite (a link to the checkout's thirdparty/,
#: a copy in the wheel).
THIRDPARTY_DIR: Final = (Path(__file__).resolve().parents[1] / "sources" / "thirdparty").resolve()
#: A cargo build from an empty registry cache: downloads, then two cores' worth of rustc.
CARGO_BUILD: Final = 900.0
_SKIP: Final = ("target", "node_modules")


@dataclass(frozen=True)
class ThirdParty:
    """How to pin and build one shim."""

    name: str  #: the ``--peer`` name
    directory: str  #: under thirdparty/
    library: str  #: what INFO and the matrix call the library
    pinned: Callable[[Path], str]  #: the version the committed lock file resolves
    build: Callable[[Path, str, bool], list[str]]  #: (copy, version, pinned) -> argv of the peer


def _cargo_locked_version(crate: str) -> Callable[[Path], str]:
    def pinned(root: Path) -> str:
        try:
            lock = (root / "Cargo.lock").read_text()
        except OSError as exc:
            raise HarnessError(f"the shim's lock file cannot be read: {exc}") from None
        found = re.search(rf'name = "{re.escape(crate)}"\nversion = "([^"]+)"', lock)
        if found is None:
            raise HarnessError(f"{root}/Cargo.lock resolves no {crate!r} crate")
        return found[1]

    return pinned


def find_cargo() -> str | None:
    """``cargo`` on PATH, else rustup's default place (a CI shell may not have it on PATH)."""
    found = shutil.which("cargo")
    fallback = Path.home() / ".cargo" / "bin" / "cargo"
    return found or (str(fallback) if fallback.is_file() else None)


def _cargo_build(crate: str, binary: str) -> Callable[[Path, str, bool], list[str]]:
    def build(copy: Path, version: str, pinned: bool) -> list[str]:
        cargo = find_cargo()
        if cargo is None:
            raise HarnessError("this peer is built with cargo, but no `cargo` is on PATH")
        argv = [cargo, "build", "--release", "--quiet"]
        if pinned:
            argv.append("--locked")  # the committed Cargo.lock, nothing newer
        else:
            manifest = copy / "Cargo.toml"
            text = manifest.read_text()
            pin = re.compile(rf'^{re.escape(crate)} = "=[^"]+"$', re.M)
            if not pin.search(text):
                raise HarnessError(f'{manifest} has no line {crate} = "=VERSION" to re-pin')
            manifest.write_text(pin.sub(f'{crate} = "={version}"', text))
        from .go_build import _run, _tail  # noqa: PLC0415 - go_build imports specs, which imports us

        deadline = Deadline(scaled(CARGO_BUILD))
        code, output = _run(argv, copy, deadline)
        if code != 0:
            what = f"timed out after {deadline.budget:.0f} s" if code is None else f"exited {code}"
            raise HarnessError(
                f"cargo build of {copy.name} ({crate} {version}) {what}:\n{_tail(output)}"
            )
        return [str(copy / "target" / "release" / binary)]

    return build


IMPLEMENTATIONS: Final = {
    "rust-smux": ThirdParty(
        name="rust-smux",
        directory="rust-smux",
        library="smux (crates.io)",
        pinned=_cargo_locked_version("smux"),
        build=_cargo_build("smux", "rust-smux-peer"),
    ),
    "async-smux": ThirdParty(
        name="async-smux",
        directory="async-smux",
        library="async_smux (crates.io)",
        pinned=_cargo_locked_version("async_smux"),
        build=_cargo_build("async_smux", "async-smux-peer"),
    ),
    "smux-rust": ThirdParty(
        name="smux-rust",
        directory="smux-rust",
        library="smux_rust (crates.io)",
        pinned=_cargo_locked_version("smux_rust"),
        build=_cargo_build("smux_rust", "smux-rust-peer"),
    ),
}


def resolved_version(name: str, version: str) -> str:
    """``version``, or the one the shim's committed lock file pins when it is ''."""
    impl = IMPLEMENTATIONS[name]
    return version or impl.pinned(THIRDPARTY_DIR / impl.directory)


def _copy_sources(src: Path, dest: Path) -> None:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(*_SKIP))


def ensure_binary(name: str, version: str) -> tuple[list[str], str]:
    """The command line of shim ``name`` on library ``version`` ('' = pinned), and the version.

    Built at most once per (version, shim sources); concurrent callers wait on a lock.
    """
    from .go_build import cache_dir  # noqa: PLC0415 - go_build imports specs, which imports us

    impl = IMPLEMENTATIONS.get(name)
    if impl is None:
        raise HarnessError(f"no third-party peer {name!r}; known: {', '.join(IMPLEMENTATIONS)}")
    root = THIRDPARTY_DIR / impl.directory
    if not root.is_dir():
        raise HarnessError(f"--peer={name} needs {root}, which does not exist")
    pinned_version = impl.pinned(root)
    version = version or pinned_version
    digest = shim_hash(root)
    out = cache_dir() / "thirdparty" / f"{name}-{version}-{digest[:16]}"
    argv_file = out / ".argv"
    from filelock import FileLock  # noqa: PLC0415 - test extra, imported on use

    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock", timeout=scaled(CARGO_BUILD)):
        if argv_file.exists():
            return argv_file.read_text().splitlines(), version
        shutil.rmtree(out, ignore_errors=True)
        _copy_sources(root, out)
        argv = impl.build(out, version, version == pinned_version)
        argv_file.write_text("\n".join(argv) + "\n")
    return argv, version


def shim_hash(root: Path) -> str:
    """SHA-256 over the relative path and content of every shim source (no build output)."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and not set(_SKIP) & set(rel.parts):
            digest.update(str(rel).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()
