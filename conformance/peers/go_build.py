"""Build the Go peer (go-peer/build.sh) and its FROM-scratch image, once per run.

``--peer=go`` runs the binary in that image; ``--peer=go-native`` runs the same binary
on the host, for machines where no Docker engine can be had.

No image registry is reachable, so the image is built locally from a binary built on
the host by ``go-peer/build.sh TAG OUTDIR``.  Both steps are slow (a Go build, an image
layer on vfs storage), so results are cached across runs, keyed by the smux tag and a
hash of every go-peer source file: editing the peer rebuilds it, re-running does not.
Under pytest-xdist all workers ask at once; a file lock makes one of them build while
the others wait and then reuse the result, and a failure is remembered for the run so
it is reported once per worker instead of rebuilt by each.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

from ..deadlines import GO_BUILD, IMAGE_BUILD, Deadline, scaled
from ..errors import HarnessError
from .docker import LABEL, docker_client
from .run_context import RunContext

if TYPE_CHECKING:
    import docker

__all__ = [
    "GO_PEER_DIR",
    "build_binary",
    "cache_dir",
    "ensure_image",
    "ensure_native",
    "source_hash",
]

#: The Go peer's sources: ``sources/go-peer`` of the suite (a link to the checkout's
#: go-peer/, a copy in the wheel, so an installed gate builds --peer=go too);
#: ``$SMUXREF_GO_PEER_DIR`` points elsewhere (to try a fork).
GO_PEER_DIR: Final = Path(
    os.environ.get("SMUXREF_GO_PEER_DIR")
    or (Path(__file__).resolve().parents[1] / "sources" / "go-peer").resolve()
)
IMAGE_REPO: Final = "smuxref-go-peer"
_SKIP_DIRS: Final = {"bin", ".git", "__pycache__"}
_memo: dict[str, str | HarnessError] = {}


def cache_dir() -> Path:
    """``$SMUXREF_CACHE_DIR``, else ``$XDG_CACHE_HOME/smuxref``, else ``~/.cache/smuxref``."""
    explicit = os.environ.get("SMUXREF_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "smuxref"


def source_hash(root: Path = GO_PEER_DIR) -> str:
    """SHA-256 over the relative path and content of every go-peer source file."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and not _SKIP_DIRS & set(rel.parts):
            digest.update(str(rel).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _run(argv: list[str], cwd: Path, deadline: Deadline) -> tuple[int | None, str]:
    """Run a build command in its own process group; kill the group on timeout or Ctrl-C."""
    with subprocess.Popen(
        argv,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    ) as proc:
        try:
            out, _ = proc.communicate(timeout=deadline.remaining())
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            if not isinstance(proc.returncode, int) or proc.returncode >= 0:
                raise
            return None, ""
        return proc.returncode, out.decode("utf-8", "replace")


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join("    " + ln for ln in text.rstrip().splitlines()[-lines:])


def build_binary(tag: str, digest: str) -> Path:
    """The cached binary for ``tag``, building it with go-peer/build.sh if needed.

    The caller holds the lock for ``(tag, digest)``.
    """
    out = cache_dir() / "go-peer" / f"{tag}-{digest[:16]}"
    done = out / ".complete"
    if done.exists():
        return _single_binary(out)
    script = GO_PEER_DIR / "build.sh"
    if not script.is_file():
        raise HarnessError(
            f"--peer=go needs {script}, which does not exist: the Go peer's sources are "
            "missing (SMUXREF_GO_PEER_DIR names a folder without them, or the installation "
            "lost the suite's sources/go-peer)"
        )
    if shutil.which("go") is None:
        raise HarnessError("--peer=go builds go-peer on the host, but no `go` toolchain is on PATH")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    deadline = Deadline(GO_BUILD)
    code, output = _run(["bash", str(script), tag, str(out)], GO_PEER_DIR, deadline)
    if code != 0:
        what = f"timed out after {deadline.budget:.0f} s" if code is None else f"exited {code}"
        raise HarnessError(f"go-peer/build.sh {tag} {what}:\n{_tail(output)}")
    binary = _single_binary(out)
    done.write_text(tag)
    return binary


def _single_binary(out: Path) -> Path:
    found = [
        p
        for p in out.iterdir()
        if p.is_file() and not p.name.startswith(".") and os.access(p, os.X_OK)
    ]
    if len(found) != 1:
        raise HarnessError(f"go-peer/build.sh left {len(found)} executables in {out}; expected one")
    return found[0]


def _expand(text: str, values: dict[str, str]) -> str:
    """Dockerfile variable expansion, the ``$NAME`` and ``${NAME}`` forms."""
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: values.get(m[1] or m[2], ""), text)


def _context(binary: Path, tag: str, into: Path) -> dict[str, str]:
    """A build context: go-peer/Dockerfile, plus the binary wherever it COPYs/ADDs from.

    ``ARG`` values are expanded in the COPY sources; every declared ARG whose name
    contains ``TAG`` is given the smux tag.  Returns the build args to pass.
    """
    dockerfile = GO_PEER_DIR / "Dockerfile"
    if not dockerfile.is_file():
        raise HarnessError(f"--peer=go needs {dockerfile}, which does not exist (yet)")
    text = dockerfile.read_text()
    shutil.copy(dockerfile, into / "Dockerfile")
    declared = re.findall(r"^\s*ARG\s+(\w+)(?:=(\S*))?\s*$", text, re.M | re.I)
    buildargs = {name: tag for name, _ in declared if "TAG" in name.upper()}
    values: dict[str, str] = {}
    for name, default in declared:  # in order: a default may use the ARGs before it
        values[name] = buildargs.get(name, _expand(default.strip("\"'"), values))
    sources = re.findall(r"^\s*(?:COPY|ADD)\s+(?:--\S+\s+)*(\S+)\s+\S+\s*$", text, re.M | re.I)
    if not sources:
        raise HarnessError(f"{dockerfile} copies nothing into the image: where does the binary go?")
    for raw in sources:
        src = _expand(raw, values)
        rel = src.lstrip("/")
        target = into / rel / binary.name if src.endswith("/") else into / rel
        if into.resolve() not in target.resolve().parents:
            raise HarnessError(f"{dockerfile}: COPY source {raw!r} lies outside the build context")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(binary, target)
    return buildargs


def _build(tag: str, digest: str) -> str:
    import docker as docker_sdk  # noqa: PLC0415 - optional dependency, imported on use

    client = docker_client()
    name = f"{IMAGE_REPO}:{tag}-{digest[:12]}"
    with contextlib.suppress(docker_sdk.errors.ImageNotFound):
        client.images.get(name)
        return name
    binary = build_binary(tag, digest)
    with tempfile.TemporaryDirectory(prefix="smuxref-image-") as tmp:
        buildargs = _context(binary, tag, Path(tmp))
        try:
            client.images.build(
                path=tmp,
                buildargs=buildargs,
                tag=name,
                rm=True,
                forcerm=True,
                labels={LABEL: "1", "smuxref.smux-tag": tag, "smuxref.source-hash": digest},
                timeout=max(1, round(scaled(IMAGE_BUILD))),
            )
        except docker_sdk.errors.BuildError as exc:
            log = "".join(
                str(chunk.get("stream", chunk.get("error", ""))) for chunk in exc.build_log
            )
            raise HarnessError(f"building image {name} failed: {exc.msg}\n{_tail(log)}") from None
    _prune(client, tag, digest)
    return name


def _prune(client: docker.DockerClient, tag: str, digest: str) -> None:
    """Remove images of ``tag`` built from older go-peer sources (best effort)."""
    for image in client.images.list(filters={"label": [f"{LABEL}=1", f"smuxref.smux-tag={tag}"]}):
        if image.labels.get("smuxref.source-hash") != digest:
            with contextlib.suppress(Exception):
                client.images.remove(image.id)


def ensure_image(tag: str, run: RunContext) -> str:
    """The image of the Go peer on smux ``tag``: built at most once per run and source state."""
    digest = source_hash()
    return _once(f"{tag}-{digest[:16]}", "go-image", run, lambda: _build(tag, digest))


def ensure_native(tag: str, run: RunContext) -> str:
    """The Go peer binary on smux ``tag``, to run on the host (``--peer=go-native``).

    The same binary as the image's, so the same contract: only the runtime differs.
    """
    digest = source_hash()
    return _once(f"{tag}-{digest[:16]}", "go-binary", run, lambda: str(build_binary(tag, digest)))


def _once(key: str, what: str, run: RunContext, build: Callable[[], str]) -> str:
    """``build()`` at most once per run and key, serialized across processes by a file
    lock; a failure is remembered (in this process and the run directory) and re-raised."""
    cached = _memo.get(f"{what}-{key}")
    if isinstance(cached, HarnessError):
        raise cached
    if cached is not None:
        return cached
    lock_path = cache_dir() / "go-peer" / f"{key}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock, Timeout  # noqa: PLC0415 - test extra, imported on use

    memo_path = run.memo(f"{what}-{key}")[1]
    try:
        with FileLock(str(lock_path), timeout=scaled(GO_BUILD + IMAGE_BUILD)):
            failure = RunContext.read_memo(memo_path)
            if failure is not None:
                raise HarnessError(str(failure.get("error")))
            try:
                result = build()
            except HarnessError as exc:
                RunContext.write_memo(memo_path, {"error": str(exc)})
                raise
    except Timeout:
        error = HarnessError(f"waited too long for another process building {key} ({lock_path})")
        _memo[f"{what}-{key}"] = error
        raise error from None
    except HarnessError as exc:
        _memo[f"{what}-{key}"] = exc
        raise
    _memo[f"{what}-{key}"] = result
    return result
