"""Expectations files: their format, how a result finds its expectation, what the gate
makes of it, and the lint over the shipped files and the shipped cases.

The lint collects every case of the suite (``pytest conformance --collect-only -q``,
which also writes the case catalog ``smux-cases.json``) and checks that every shipped
glob matches at least one case id, that every reason is given and cites SPEC.md, and
that every case's requirement is a sentence quoted from the SPEC.md section it names.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from plugin_harness import REPO, inner_env, run_inner, scaled

from smuxref_conformance.errors import ExpectationError
from smuxref_conformance.judge.case import Verdict
from smuxref_conformance.judge.expectations import (
    EXPECT_VALUES,
    SHIPPED_DIR,
    ExpectationFile,
    Expectations,
    is_expected_deviation,
    is_unexpected,
    peer_names,
)
from smuxref_conformance.peers.specs import parse_peer

GO_TAGS = ("v1.5.58", "v1.5.57", "v1.0.7")


def write(tmp_path: Path, data: Any, name: str = "exp.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def entry(**fields: Any) -> dict[str, Any]:
    return {"cases": "smux/4.1/*", "expect": "fail", "reason": "SPEC.md 13: why", **fields}


# -- format -------------------------------------------------------------------------------
def test_a_valid_file_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "implementation": "x",
            "peers": ["go@v1.0.7"],
            "expectations": [entry(versions=[1], roles=["server"], peers=["go*"])],
        },
    )
    loaded = ExpectationFile.load(path)
    assert loaded.implementation == "x"
    assert loaded.peers == ("go@v1.0.7",)
    (only,) = loaded.entries
    assert (only.cases, only.versions, only.roles, only.source) == (
        ("smux/4.1/*",),
        (1,),
        ("server",),
        "exp.json#0",
    )


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ([], "the top level must be a JSON object"),
        ({"expectations": []}, "'implementation'"),
        ({"implementation": "x"}, "'expectations' must be a list"),
        ({"implementation": "x", "expectations": [], "extra": 1}, "unknown keys ['extra']"),
        ({"implementation": "x", "expectations": [entry(reason="")]}, "'reason' is mandatory"),
        ({"implementation": "x", "expectations": [entry(reason=" ")]}, "'reason' is mandatory"),
        ({"implementation": "x", "expectations": [{"cases": "a", "expect": "fail"}]}, "reason"),
        ({"implementation": "x", "expectations": [entry(expect="xfail")]}, "'expect' must be"),
        ({"implementation": "x", "expectations": [entry(expect="error")]}, "'expect' must be"),
        ({"implementation": "x", "expectations": [entry(versions=[3])]}, "'versions' must be"),
        ({"implementation": "x", "expectations": [entry(roles=["peer"])]}, "'roles' must be"),
        ({"implementation": "x", "expectations": [entry(cases=[])]}, "'cases' must be"),
        ({"implementation": "x", "expectations": [entry(tag="x")]}, "unknown keys ['tag']"),
        ({"implementation": "x", "expectations": ["smux/*"]}, "must be a JSON object"),
    ],
)
def test_malformed_files_are_refused_with_the_place(tmp_path: Path, data: Any, words: str) -> None:
    with pytest.raises(ExpectationError, match=re.escape(words)):
        ExpectationFile.load(write(tmp_path, data))


def test_paths_directories_and_none(tmp_path: Path) -> None:
    write(tmp_path, {"implementation": "a", "expectations": []}, "a.json")
    write(tmp_path, {"implementation": "b", "expectations": []}, "b.json")
    assert [f.implementation for f in Expectations.from_paths([str(tmp_path)]).files] == [
        "a",
        "b",
    ]
    assert [
        f.implementation for f in Expectations.from_paths([str(tmp_path / "b.json")]).files
    ] == ["b"]
    assert Expectations.from_paths(["none"]).files == []
    shipped = {f.path.name for f in Expectations.from_paths(None).files}
    thirdparty = {"rust-smux-0.2.0.json", "async-smux-0.4.0.json", "smux-rust-0.2.1.json"}
    assert shipped == {"ref.json", *thirdparty, *(f"go-{tag}.json" for tag in GO_TAGS)}
    with pytest.raises(ExpectationError, match="no such file or directory"):
        Expectations.from_paths([str(tmp_path / "missing.json")])


# -- resolving ----------------------------------------------------------------------------
def test_peer_names_resolve_the_go_tag() -> None:
    assert peer_names(parse_peer("go")) == ("go", "go@v1.5.58")
    assert peer_names(parse_peer("go@v1.0.7")) == ("go@v1.0.7",)
    assert peer_names(parse_peer("ref")) == ("ref",)


def test_resolve_filters_and_last_entry_wins(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "implementation": "go",
            "peers": ["go@v1.5.58"],
            "expectations": [
                entry(cases="smux/4.*"),
                entry(cases="smux/4.1/b", expect="pass", reason="SPEC.md 4.1: fixed"),
                entry(cases="smux/9.*", versions=[2], roles=["client"], expect="non_strict"),
            ],
        },
    )
    exp = Expectations([ExpectationFile.load(path)])
    go = peer_names(parse_peer("go"))
    assert exp.resolve("smux/4.1/a", go, 1, "server").expect == "fail"
    assert exp.resolve("smux/4.1/b", go, 1, "server").expect == "pass"
    assert exp.resolve("smux/4.1/b", go, 1, "server").source == "exp.json#1"
    assert exp.resolve("smux/9.1/a", go, 2, "client").expect == "non_strict"
    assert exp.resolve("smux/9.1/a", go, 1, "client").expect == "pass"
    assert exp.resolve("smux/9.1/a", go, 2, "server").expect == "pass"
    # The file names go@v1.5.58 only: another tag and the reference are not covered.
    assert exp.resolve("smux/4.1/a", peer_names(parse_peer("go@v1.0.7")), 1, None).expect == "pass"
    assert exp.resolve("smux/4.1/a", ("ref",), 1, None).expect == "pass"


def test_racy_accepts_pass_and_deviation() -> None:
    for actual in (Verdict.PASS, Verdict.FAIL, Verdict.NON_STRICT):
        assert not is_unexpected(actual, "racy", strict=True)
    assert is_unexpected(Verdict.ERROR, "racy", strict=False)
    assert is_expected_deviation(Verdict.FAIL, "racy")


def test_resolve_filters_variants(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "implementation": "x",
            "expectations": [entry(cases="smux/10.2/sink", variants=["size=6553[56]"])],
        },
    )
    exp = Expectations([ExpectationFile.load(path)])
    assert exp.resolve("smux/10.2/sink", ("x",), 1, "server", "size=65535").expect == "fail"
    assert exp.resolve("smux/10.2/sink", ("x",), 1, "server", "size=1").expect == "pass"
    assert exp.resolve("smux/10.2/sink", ("x",), 1, "server").expect == "pass"


# Expectation -> verdicts that break the gate (without / with --smux-strict).
UNEXPECTED = {
    "pass": ({"fail", "error"}, {"fail", "error", "non_strict"}),
    "fail": ({"pass", "info", "error"}, {"pass", "info", "error"}),
    "non_strict": ({"pass", "info", "fail", "error"}, {"pass", "info", "fail", "error"}),
    "unsupported": (
        {"pass", "info", "fail", "non_strict", "error"},
        {"pass", "info", "fail", "non_strict", "error"},
    ),
    "racy": ({"error"}, {"error"}),
}


def test_the_gate_table() -> None:
    assert set(UNEXPECTED) == set(EXPECT_VALUES)
    for expect, (lenient, strict) in UNEXPECTED.items():
        for verdict in Verdict:
            assert is_unexpected(verdict, expect, strict=False) == (verdict in lenient), (
                expect,
                verdict,
            )
            assert is_unexpected(verdict, expect, strict=True) == (verdict in strict), (
                expect,
                verdict,
            )
    assert is_expected_deviation(Verdict.FAIL, "fail")
    assert is_expected_deviation(Verdict.NON_STRICT, "fail")
    assert is_expected_deviation(Verdict.NON_STRICT, "non_strict")
    assert not is_expected_deviation(Verdict.NON_STRICT, "pass")
    assert not is_expected_deviation(Verdict.FAIL, "non_strict")


def test_stale_globs_are_found(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "implementation": "x",
            "expectations": [entry(cases=["smux/4.1/*", "smux/99/*"]), entry(cases="smux/5.1/a")],
        },
    )
    exp = Expectations([ExpectationFile.load(path)])
    assert exp.stale_globs(["smux/4.1/x", "smux/5.1/b"]) == [
        "exp.json#0: 'smux/99/*' matches no case",
        "exp.json#1: 'smux/5.1/a' matches no case",
    ]
    assert exp.stale_globs(["smux/4.1/x", "smux/5.1/a", "smux/99/z"]) == []


# -- the gate in a run --------------------------------------------------------------------
CASES = """\
from smuxref_conformance.judge.case import case

REQ = "A sender MUST put its session's configured version in VER of every frame, NOP included."


@case("smux/4.1/known-bad", title="t", spec="4.1", requirement=REQ, level="must")
def test_known_bad(raw_conn, smux_check):
    smux_check.expect(False, expected="VER 1", actual="VER 0")


@case("smux/4.1/fixed-since", title="t", spec="4.1", requirement=REQ, level="must")
def test_fixed(raw_conn, smux_check):
    smux_check.expect(True, expected="VER 1", actual="VER 1")
"""


def test_expected_failure_passes_the_gate_and_unexpected_pass_fails_it(tmp_path: Path) -> None:
    exp = write(
        tmp_path,
        {
            "implementation": "the reference, pretending",
            "peers": ["ref"],
            "expectations": [
                entry(cases="smux/4.1/known-bad", reason="SPEC.md 13: known since v1.0.7")
            ],
        },
    )
    one = ("--smux-version=1", "--smux-roles=server", f"--smux-expectations={exp}")
    run = run_inner(tmp_path, CASES, *one, "-k", "known_bad")
    assert run.returncode == 0, run.output
    assert "1 xfailed" in run.output.splitlines()[-1], run.output
    assert "XFAIL test_case.py::test_known_bad[ref-v1-server] - expected fail (exp.json#0)" in (
        run.output
    )

    stale = write(
        tmp_path,
        {
            "implementation": "x",
            "expectations": [entry(cases="smux/4.1/fixed-since", reason="SPEC.md 13: gone")],
        },
        "stale.json",
    )
    run = run_inner(
        tmp_path, CASES, "--smux-version=1", "--smux-roles=server", f"--smux-expectations={stale}"
    )
    assert run.returncode == 1, run.output
    xpass = "[XPASS(strict)] smux/4.1/fixed-since: expected fail (stale.json#0: SPEC.md 13: gone)"
    assert xpass in run.output
    assert "unexpected: smux/4.1/fixed-since ref v1 server: expected fail, got pass" in run.output
    # Without any expectations the known failure is a plain, gate-failing failure.
    run = run_inner(tmp_path, CASES, *one[:2], "--smux-expectations=none", "-k", "known_bad")
    assert run.returncode == 1, run.output


def test_a_malformed_expectations_file_is_a_usage_error(tmp_path: Path) -> None:
    bad = write(tmp_path, {"implementation": "x", "expectations": [entry(reason="")]})
    run = run_inner(tmp_path, CASES, f"--smux-expectations={bad}")
    assert run.returncode == 4, run.output  # pytest's usage error
    assert "exp.json#0: 'reason' is mandatory" in run.output


# -- the lint over what is shipped ---------------------------------------------------------
@cache
def catalog(directory: str) -> list[dict[str, Any]]:
    """Every case of the suite, from ``pytest conformance --collect-only -q``."""
    out = Path(directory)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "conformance",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "--peer=ref",
            f"--smux-report-dir={out}",
        ],
        cwd=REPO,
        env=inner_env(),
        capture_output=True,
        text=True,
        timeout=scaled(300),
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cases: list[dict[str, Any]] = json.loads((out / "smux-cases.json").read_text())["cases"]
    assert cases, "no conformance case collected"
    collected = {line.split("[")[0] for line in proc.stdout.splitlines() if "::" in line}
    assert {n.split("[")[0] for c in cases for n in c["nodeids"]} <= collected
    return cases


@pytest.fixture(scope="module")
def shipped_cases(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return catalog(str(tmp_path_factory.mktemp("catalog")))


def test_shipped_files_cover_every_go_tag_and_give_reasons() -> None:
    files = Expectations.from_paths([str(SHIPPED_DIR)]).files
    names = {f.path.name: f for f in files}
    for tag in GO_TAGS:
        file = names[f"go-{tag}.json"]
        assert file.applies_to(peer_names(parse_peer(f"go@{tag}")))
        assert not file.applies_to(peer_names(parse_peer("ref")))
    assert names["go-v1.5.58.json"].applies_to(peer_names(parse_peer("go")))
    assert not names["go-v1.5.57.json"].applies_to(peer_names(parse_peer("go")))
    for file in files:
        for item in file.entries:
            assert re.search(r"SPEC\.md \d+(\.\d+)*", item.reason), (
                f"{item.source}: the reason must cite a SPEC.md section: {item.reason!r}"
            )


def test_shipped_globs_match_collected_cases(shipped_cases: list[dict[str, Any]]) -> None:
    ids = [c["id"] for c in shipped_cases]
    assert Expectations.from_paths([str(SHIPPED_DIR)]).stale_globs(ids) == []


def _normalize(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[`*_]", "", text)).strip()


def spec_sections() -> dict[str, str]:
    """SPEC.md section number -> its text (up to the next heading of any level)."""
    sections: dict[str, str] = {}
    current: str | None = None
    for line in (REPO / "SPEC.md").read_text().splitlines():
        heading = re.match(r"#+\s+(\d+(?:\.\d+)*)\.?\s", line)
        if line.startswith("#"):
            current = heading[1] if heading else None
            continue
        if current is not None:
            sections[current] = sections.get(current, "") + "\n" + line
    return {k: _normalize(v) for k, v in sections.items()}


def contract_rules() -> dict[str, str]:
    """CONTRACT.md's numbered rules, normalized, by number."""
    text = (Path(__file__).resolve().parents[1] / "conformance" / "CONTRACT.md").read_text()
    rules: dict[str, str] = {}
    for match in re.finditer(r"^(\d+)\. (.*?)(?=^\d+\. |^## |\Z)", text, re.M | re.S):
        rules[match[1]] = _normalize(re.sub(r"[*`]", "", match[2]))
    return rules


def test_every_case_quotes_its_spec_section(shipped_cases: list[dict[str, Any]]) -> None:
    sections = spec_sections()
    rules = contract_rules()
    wrong = []
    for item in shipped_cases:
        if item["id"].startswith("contract/"):
            rule = rules.get(item["spec"], "")
            if _normalize(item["requirement"]) not in rule:
                wrong.append(f"{item['id']}: not in CONTRACT.md rule {item['spec']}")
            continue
        text = sections.get(item["spec"])
        if text is None:
            wrong.append(f"{item['id']}: SPEC.md has no section {item['spec']}")
        elif _normalize(item["requirement"]) not in text:
            wrong.append(f"{item['id']}: not in SPEC.md {item['spec']}: {item['requirement']!r}")
    assert not wrong, "\n".join(wrong)


def test_case_ids_are_unique_and_well_formed(shipped_cases: list[dict[str, Any]]) -> None:
    ids = [c["id"] for c in shipped_cases]
    assert len(ids) == len(set(ids))
    for item in shipped_cases:
        namespace = "contract" if item["id"].startswith("contract/") else "smux"
        assert item["id"].startswith(f"{namespace}/{item['spec']}/")
        assert item["level"] in ("must", "should", "info")
