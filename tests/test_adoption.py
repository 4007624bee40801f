"""The gate as another project adopts it: a wheel in a fresh virtualenv, and the CI recipe.

The wheel is built from this checkout and installed with its ``gate`` extra into a new
virtualenv; the installed ``smux-conformance`` then runs from an empty directory, and
its verdicts must be those of the same run made from the checkout.  ``pytest --pyargs``
must keep working under a calling project's own configuration (strict asyncio mode,
warnings as errors, strict markers).  The CI recipe in examples/github-actions/ is run
step by step as a script.  Each run is a bounded selection (``-k``), since the point is
the packaging and the plumbing, not the cases.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from filelock import FileLock
from plugin_harness import REPO, SCALE, inner_env, scaled
from test_gate_command import gate, results_of

import smuxref_conformance.cli
from smuxref_conformance.peers.go_build import GO_PEER_DIR, source_hash
from smuxref_conformance.peers.thirdparty import IMPLEMENTATIONS, THIRDPARTY_DIR, shim_hash

RECIPE = REPO / "examples" / "github-actions" / "smux-conformance.yml"
SELECTION = ("--smux-version=2", "-k", "test_version or test_one_stream")
#: The installed package of the suite, whatever this checkout calls its folder.
SUITE_PACKAGE = smuxref_conformance.cli.__package__ or ""


def run(argv: list[str], cwd: Path, timeout: float, **env: str) -> subprocess.CompletedProcess[str]:
    environment = inner_env(**env)
    environment.pop("PYTHONPATH", None)  # only what is installed in the virtualenv
    environment.pop("VIRTUAL_ENV", None)
    return subprocess.run(
        argv,
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=scaled(timeout),
        check=False,
    )


def _shared(tmp_path_factory: pytest.TempPathFactory, name: str) -> tuple[Path, FileLock]:
    """A directory shared by the xdist workers of this session, and its lock: the wheel
    and the virtualenv are made once, not once per worker."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    return root / name, FileLock(str(root / f"{name}.lock"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out, lock = _shared(tmp_path_factory, "smuxref-wheel")
    with lock:
        built = sorted(out.glob("smuxref-*.whl"))
        if built:
            return built[0]
        # Built from a copy of what goes into it: setuptools writes build/ and egg-info
        # into the source tree, which must stay as it is.
        source = out.parent / "smuxref-wheel-source"
        shutil.rmtree(source, ignore_errors=True)
        source.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy(REPO / name, source)
        junk = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
        shutil.copytree(REPO / "smuxref", source / "smuxref", ignore=junk)
        # The suite's folder, under the name it is installed as.
        shutil.copytree(REPO / "conformance", source / SUITE_PACKAGE, ignore=junk)
        argv = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out)]
        proc = run([*argv, str(source)], out.parent, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        (built_one,) = out.glob("smuxref-*.whl")
        return built_one


def fresh_venv(where: Path) -> Path:
    """A new virtualenv (no system site-packages); returns its bin directory."""
    proc = run([sys.executable, "-m", "venv", str(where)], where.parent, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return where / "bin"


@pytest.fixture(scope="module")
def gate_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel and its gate extra installed."""
    where, lock = _shared(tmp_path_factory, "smuxref-gate-venv")
    with lock:
        bin_dir = where / "bin"
        if (bin_dir / "smux-conformance").is_file():
            return bin_dir
        shutil.rmtree(where, ignore_errors=True)
        fresh_venv(where)
        proc = run(
            [str(bin_dir / "python"), "-m", "pip", "install", "-q", f"{wheel}[gate]"],
            wheel.parent,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return bin_dir


def test_nothing_imports_the_suite_by_its_folder_name() -> None:
    """One name for the suite's modules: an import of ``conformance`` (or, in the cases,
    one relative to the suite) would load a second copy of them beside the plugin's."""
    offenders = []
    for folder in ("conformance", "tests", "benchmarks", "fuzz", "vectors", "scripts"):
        for path in sorted((REPO / folder).rglob("*.py")):
            in_cases = path.parent.name == "cases"
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if re.match(r"\s*(from conformance(\.| import )|import conformance\b)", line) or (
                    in_cases and re.match(r"\s*from \.\.", line)
                ):
                    offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert SUITE_PACKAGE == "smuxref_conformance"
    assert not offenders, "run scripts/rename-suite-package.py:\n" + "\n".join(offenders)


def test_wheel_installs_only_this_projects_modules(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"smuxref", SUITE_PACKAGE}
    for shipped in ("suite.ini", "CONTRACT.md", "expectations/go-v1.5.57.json"):
        assert f"{SUITE_PACKAGE}/{shipped}" in names
    assert any(n.startswith(f"{SUITE_PACKAGE}/hypothesis-db/") for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    with zipfile.ZipFile(wheel) as archive:
        text = archive.read(entry_points).decode()
    assert f"smux-conformance = {SUITE_PACKAGE}.cli:main" in text


def test_wheel_ships_the_sources_of_the_peers_it_builds(wheel: Path, tmp_path: Path) -> None:
    """--peer=go and the third-party peers are built from sources the suite ships, so an
    installed gate builds them as a checkout does: the same files, hence the same cache
    keys (a lost file would break the build or fork the cache)."""
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tmp_path, [n for n in archive.namelist() if "/sources/" in n])
        build_sh = archive.getinfo(f"{SUITE_PACKAGE}/sources/go-peer/build.sh")
    shipped = tmp_path / SUITE_PACKAGE / "sources"
    assert source_hash(shipped / "go-peer") == source_hash(GO_PEER_DIR)
    for name, impl in IMPLEMENTATIONS.items():
        copy, original = shipped / "thirdparty" / impl.directory, THIRDPARTY_DIR / impl.directory
        assert shim_hash(copy) == shim_hash(original), name
        assert impl.pinned(copy) == impl.pinned(original)
    assert build_sh.external_attr >> 16 & 0o111, "build.sh lost its executable bits"


def test_installed_command_gives_the_verdicts_of_the_checkout(
    gate_venv: Path, tmp_path: Path
) -> None:
    """From an empty directory, against the reference peer and an ``exec:`` peer."""
    empty = tmp_path / "empty"
    empty.mkdir()
    peers = ["--peer=ref", f"--peer=exec:{gate_venv / 'python'} -m smuxref.peer"]
    argv = [str(gate_venv / "smux-conformance"), f"--smux-timeout-scale={SCALE}"]
    installed = run([*argv, *peers, *SELECTION], empty, timeout=300)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert f"reports in {empty / 'smux-reports'}" in installed.stdout
    assert sorted(p.name for p in empty.iterdir()) == ["smux-reports"]  # nothing else left
    here = Path(sys.executable).parent / "python"
    in_repo = gate(
        tmp_path / "repo-run", peers[0], f"--peer=exec:{here} -m smuxref.peer", *SELECTION
    )
    assert in_repo.returncode == 0, in_repo.stdout + in_repo.stderr
    expected = results_of(tmp_path / "repo-run" / "smux-reports")
    assert {k[2] for k in expected} == {"ref", "exec:python"}
    assert results_of(empty / "smux-reports") == expected


FOREIGN_INI = """\
[pytest]
asyncio_mode = strict
asyncio_default_fixture_loop_scope = module
filterwarnings = error
addopts = --strict-markers -p no:cacheprovider
xfail_strict = true
markers =
    slow: a marker of the calling project
"""


def test_pytest_pyargs_under_a_foreign_configuration(gate_venv: Path, tmp_path: Path) -> None:
    """Strict asyncio mode: every async case would fail unless it is marked itself."""
    (tmp_path / "pytest.ini").write_text(FOREIGN_INI)
    argv = [str(gate_venv / "python"), "-m", "pytest", "--pyargs", SUITE_PACKAGE, "-q"]
    proc = run(
        [*argv, "--peer=ref", f"--smux-timeout-scale={SCALE}", "-k", "test_one_stream"],
        tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 passed" in proc.stdout, proc.stdout
    assert (tmp_path / "reports" / "smux-results.json").is_file()  # the shipped cases ran


# -- the CI recipe ----------------------------------------------------------------------------
def _local_action(step: dict[str, Any], workspace: Path, env: dict[str, str], python: Path) -> None:
    """What a ``uses:`` step does on GitHub, done here; unknown actions fail the test.

    setup-python puts the virtualenv of the wheel test on PATH (made fresh there), so
    the recipe's install step runs for real without a second install of everything.
    """
    action = str(step["uses"]).split("@")[0]
    if action == "actions/checkout":
        # The checkout of "your project": the Go peer and your expectations file.
        shutil.copytree(
            REPO / "go-peer", workspace / "go-peer", ignore=shutil.ignore_patterns("bin")
        )
        shutil.copy(RECIPE.parent / "smux-expectations.json", workspace)
    elif action == "actions/setup-python":
        env["PATH"] = f"{python}{os.pathsep}{env['PATH']}"
    elif action == "actions/setup-go":
        assert shutil.which("go", path=env["PATH"]), "the recipe needs Go on the runner"
    elif action == "actions/upload-artifact":
        path = workspace / str(step["with"]["path"])
        for name in ("report.html", "summary.md", "smux-results.json", "junit.xml"):
            assert (path / name).is_file(), f"the artifact lacks {name}"
    else:
        raise AssertionError(f"the recipe uses {action}, which this test cannot stand in for")


def test_ci_recipe_steps_run(wheel: Path, gate_venv: Path, tmp_path: Path) -> None:
    workflow = yaml.safe_load(RECIPE.read_text())
    (job,) = workflow["jobs"].values()
    workspace = tmp_path / "workspace"
    runner_temp = tmp_path / "runner-temp"
    workspace.mkdir()
    runner_temp.mkdir()
    env = inner_env(**{k: str(v) for k, v in workflow["env"].items()})
    env.pop("PYTHONPATH", None)
    env.update(
        SMUXREF=f"{wheel}[gate]",  # this checkout's wheel instead of the published one
        SMUX_GATE_ARGS=f"{workflow['env']['SMUX_GATE_ARGS']} --smux-timeout-scale={SCALE} "
        "-k interop",
        GITHUB_WORKSPACE=str(workspace),
        RUNNER_TEMP=str(runner_temp),
        CI="true",
    )
    ran = []
    for step in job["steps"]:
        if "uses" in step:
            _local_action(step, workspace, env, gate_venv)
            ran.append(str(step["uses"]))
            continue
        script = str(step["run"])
        assert "${{" not in script, "run steps must not need GitHub expressions"
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=scaled(600),
            check=False,
        )
        assert proc.returncode == 0, f"step {step.get('name')}:\n{proc.stdout}{proc.stderr}"
        ran.append(str(step["name"]))
    assert ran[-1].startswith("actions/upload-artifact")
    results = results_of(workspace / "smux-reports")
    assert {k[2] for k in results} == {"exec:smux-peer-v1.5.57"}
    assert len(results) > 20
    assert all(v == ("pass", "pass", False) or v[0] == "unsupported" for v in results.values())
