"""Reports: the results JSON, the JUnit XML, the HTML page and the Markdown summary.

One child pytest runs a case file with one case per kind of verdict against the
reference peer (once serially, once with ``-n 2``); the tests read what it left in the
report directory.  The generator (``python -m smuxref_conformance.report``) merges two runs
into one matrix, and headless Chromium renders the page (skipped without Chromium).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from plugin_harness import REPO, InnerRun, inner_env, run_inner, scaled

from smuxref_conformance.report import ResultSet, load_results, render_html, render_markdown
from smuxref_conformance.report.results import Cell, section_key

MIXED = """\
from smuxref_conformance.errors import HarnessError
from smuxref_conformance.judge.oracle import Reaction
from smuxref_conformance.judge.case import case
from smuxref import Cmd, Frame, encode_raw

REQ = ("A receiver MUST treat a frame whose VER differs from the session's version as a "
       "protocol error.")
PROTOCOL_ERROR = {Reaction.CLOSED: "pass", Reaction.SILENT: "pass", Reaction.IGNORED: "fail"}


@case("smux/4.1/bad-version", title="VER 0 is refused", spec="4.1", requirement=REQ, level="must")
def test_pass(raw_conn, smux_check):
    raw_conn.send_raw(encode_raw(0, Cmd.SYN, 0, raw_conn.next_sid()))
    smux_check.reaction(PROTOCOL_ERROR)


@case("smux/7.1/nop-closes", title="A NOP <ends> & the session", spec="7.1", requirement=REQ,
      level="must")
def test_fail(raw_conn, smux_check):
    raw_conn.send_frame(Frame(raw_conn.version, Cmd.NOP, 0))
    smux_check.reaction({Reaction.CLOSED: "pass"})


@case("smux/7.2/should-x", title="should", spec="7.2", requirement=REQ, level="should")
def test_non_strict(raw_conn, smux_check):
    smux_check.expect(False, expected="a NOP within 1 s", actual="none")


@case("smux/7.3/info-x", title="info", spec="7.3", requirement=REQ, level="info")
def test_info(raw_conn, smux_check):
    smux_check.info("observed: the peer answered")


@case("smux/12/harness-x", title="harness", spec="12", requirement=REQ, level="must")
def test_error(raw_conn, smux_check):
    raise HarnessError("the harness broke on purpose")


@case("smux/4.3/known-x", title="known", spec="4.3", requirement=REQ, level="must")
def test_expected(raw_conn, smux_check):
    smux_check.expect(False, expected="LEN 0", actual="LEN 4")
"""
EXPECTATIONS = {
    "implementation": "the reference, with one made-up known deviation",
    "peers": ["ref"],
    "expectations": [
        {"cases": "smux/4.3/known-*", "expect": "fail", "reason": "SPEC.md 13: for the test"}
    ],
}
#: case id -> (verdict, unexpected)
WANT = {
    "smux/4.1/bad-version": ("pass", False),
    "smux/7.1/nop-closes": ("fail", True),
    "smux/7.2/should-x": ("non_strict", False),
    "smux/7.3/info-x": ("info", False),
    "smux/12/harness-x": ("error", True),
    "smux/4.3/known-x": ("fail", False),
}
NOP_V1 = "01 03 00 00 00 00 00 00"


def mixed_run(directory: Path, *args: str) -> InnerRun:
    exp = directory / "exp.json"
    exp.write_text(json.dumps(EXPECTATIONS))
    return run_inner(
        directory,
        MIXED,
        "--smux-version=1",
        "--smux-report-dir=out",
        f"--smux-expectations={exp}",
        *args,
        timeout=120,
    )


@pytest.fixture(scope="module")
def serial(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("serial")
    run = mixed_run(directory)
    assert run.returncode == 1, run.output
    last = run.output.splitlines()[-1]
    for words in ("2 failed", "2 passed", "2 errors", "2 non_strict", "2 info", "2 xfailed"):
        assert words in last, run.output
    return directory / "out"


def rows_of(out: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads((out / "smux-results.json").read_text())["results"]
    return rows


def test_results_json_rows_and_metadata(serial: Path) -> None:
    data = json.loads((serial / "smux-results.json").read_text())
    assert data["schema"] == "smux-results/1"
    assert data["suite_version"]
    assert data["date"].endswith("+00:00")
    assert data["options"]["peers"] == ["ref"]
    assert data["options"]["versions"] == [1]
    assert data["options"]["expectations"][0].endswith("exp.json")
    info = data["peers"]["ref"]["info"]["1"]
    assert info["implementation"] == "smuxref"
    assert data["peers"]["ref"]["expectations"][0]["implementation"].startswith("the reference")
    rows = data["results"]
    assert len(rows) == 12  # 6 cases x 2 roles
    for row in rows:
        assert (row["actual"], row["unexpected"]) == WANT[row["case"]], row
        assert row["peer"] == "ref"
        assert row["version"] == 1
        assert row["role"] in ("server", "client")
        assert row["requirement"].startswith("A receiver MUST")
        assert row["duration"] > 0
        assert row["expected"] == ("fail" if row["case"] == "smux/4.3/known-x" else "pass")
    failed = next(r for r in rows if r["case"] == "smux/7.1/nop-closes")
    assert failed["message"].splitlines()[:3] == [
        "Requirement: A receiver MUST treat a frame whose VER differs from the session's version "
        "as a protocol error. [SPEC.md 7.1, must; smux/7.1/nop-closes]",
        "Expected: one of the reactions closed (pass)",
        failed["message"].splitlines()[2],
    ]
    assert failed["message"].splitlines()[2].startswith("Actual: ignored: the same session")
    assert NOP_V1 in failed["transcript"]
    assert failed["reaction"] == "ignored"
    known = next(r for r in rows if r["case"] == "smux/4.3/known-x")
    assert (known["reason"], known["expectation"]) == ("SPEC.md 13: for the test", "exp.json#0")
    error = next(r for r in rows if r["case"] == "smux/12/harness-x")
    assert error["message"].startswith("smuxref_conformance.errors.HarnessError: the harness broke")
    assert data["summary"] == {
        "total": 12,
        "verdicts": {
            "pass": 2,
            "non_strict": 2,
            "fail": 4,
            "info": 2,
            "unsupported": 0,
            "inconclusive": 0,
            "not_run": 0,
            "error": 2,
        },
        "unexpected": 4,
        "gate": "fail",
        "root_causes": [],
    }


VERSION_2_ONLY = """\
import pytest
from smuxref_conformance.judge.case import case


@case("smux/9.1/v2-only", title="v2 only", spec="9.1", requirement="R", level="must")
@pytest.mark.versions(2)
def test_v2_only(raw_conn):
    pass


@case("smux/4.1/any", title="any version", spec="4.1", requirement="R", level="must")
def test_any(raw_conn):
    pass
"""


def test_case_deselected_by_version_is_no_result(tmp_path: Path) -> None:
    """A case whose versions all fall outside --smux-version is pytest's empty parameter
    set: a plain skip, no row (its sentinel parameters once broke the JSON writer)."""
    run = run_inner(tmp_path, VERSION_2_ONLY, "--smux-version=1", "--smux-report-dir=out")
    assert run.returncode == 0, run.output
    assert "Traceback" not in run.output, run.output
    rows = rows_of(tmp_path / "out")
    assert {(r["case"], r["version"]) for r in rows} == {("smux/4.1/any", 1)}, rows


def test_junit_has_requirement_expected_actual(serial: Path) -> None:
    root = ET.parse(serial / "junit.xml").getroot()
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert len(cases) == 12
    failure = cases["test_fail[ref-v1-server]"].find("failure")
    assert failure is not None
    message = failure.get("message", "")
    assert "Requirement: A receiver MUST treat a frame" in message
    assert "Expected: one of the reactions closed (pass)" in message
    assert "Actual: ignored" in message
    assert NOP_V1 in (failure.text or "")
    error = cases["test_error[ref-v1-server]"]
    assert error.find("failure") is None
    assert error.find("error") is not None
    xfail = cases["test_expected[ref-v1-client]"].find("skipped")
    assert xfail is not None
    assert xfail.get("type") == "pytest.xfail"
    for name in ("test_pass", "test_non_strict", "test_info"):
        assert list(cases[f"{name}[ref-v1-server]"]) == [], name
    suite = next(root.iter("testsuite"))
    assert (suite.get("failures"), suite.get("errors")) == ("2", "2")


def test_html_report_is_self_contained_and_shows_the_matrix(serial: Path) -> None:
    page = (serial / "report.html").read_text()
    for forbidden in ("<script", "<link", "src=", "@import", "http://", "https://"):
        assert forbidden not in page, forbidden
    assert '<table class="matrix">' in page
    assert 'data-case="smux/7.1/nop-closes" data-column="ref|1|server"' in page
    assert 'data-verdict="fail" data-unexpected="1"' in page
    assert "Gate: <strong>FAIL</strong>" in page
    assert "A NOP &lt;ends&gt; &amp; the session" in page  # escaped
    assert "Expected: one of the reactions closed (pass)" in page
    assert NOP_V1 in page
    assert "SPEC.md 13: for the test" in page
    assert "observed: the peer answered" in page


def test_markdown_summary(serial: Path) -> None:
    text = (serial / "summary.md").read_text()
    assert "**Gate: FAIL**: 4 unexpected of 12 results." in text
    assert "| case | level | ref v1 server | ref v1 client |" in text
    assert "| `smux/7.1/nop-closes` | must | **F!** | **F!** |" in text
    assert "| `smux/4.3/known-x` | must | xF | xF |" in text
    assert "| `smux/7.2/should-x` | should | N | N |" in text
    assert "| `smux/12/harness-x` | must | **E!** | **E!** |" in text
    assert "- `smux/7.1/nop-closes` ref v1 server: expected **pass**, got **fail**: Actual:" in text
    assert "Transcript (decoded frames, then hex):" in text
    assert NOP_V1 in text


def test_xdist_workers_results_are_merged(serial: Path, tmp_path: Path) -> None:
    run = mixed_run(tmp_path, "-n", "2")
    assert run.returncode == 1, run.output
    parallel = {(r["nodeid"], r["actual"], r["unexpected"]) for r in rows_of(tmp_path / "out")}
    alone = {(r["nodeid"], r["actual"], r["unexpected"]) for r in rows_of(serial)}
    assert parallel == alone
    assert json.loads((tmp_path / "out" / "smux-results.json").read_text())["peers"]["ref"]["info"]
    root = ET.parse(tmp_path / "out" / "junit.xml").getroot()
    assert sum(1 for _ in root.iter("error")) == 2


# -- the generator --------------------------------------------------------------------------
def as_other_peer(source: Path, target: Path, peer: str) -> Path:
    """A copy of a results file as if another peer had produced it (all passing)."""
    data = json.loads(source.read_text())
    data["options"]["peers"] = [peer]
    data["peers"] = {peer: {**data["peers"]["ref"], "raw": peer}}
    for row in data["results"]:
        row.update(peer=peer, actual="pass", unexpected=False, expected="pass")
    target.write_text(json.dumps(data))
    return target


def generate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smuxref_conformance.report", *args],
        cwd=REPO,
        env=inner_env(),
        capture_output=True,
        text=True,
        timeout=scaled(60),
        check=False,
    )


def test_generator_merges_runs_into_one_matrix(serial: Path, tmp_path: Path) -> None:
    other = as_other_peer(serial / "smux-results.json", tmp_path / "go.json", "go@v1.5.57")
    proc = generate(str(serial / "smux-results.json"), str(other), "-o", str(tmp_path / "m"))
    assert proc.returncode == 1, proc.stdout + proc.stderr  # ref has unexpected results
    assert "24 results, 4 unexpected, gate fail" in proc.stdout
    page = (tmp_path / "m" / "report.html").read_text()
    assert 'data-column="ref|1|server"' in page
    assert 'data-column="go@v1.5.57|1|client"' in page
    text = (tmp_path / "m" / "summary.md").read_text()
    assert "| ref v1 server | ref v1 client | go@v1.5.57 v1 server | go@v1.5.57 v1 client |" in text
    proc = generate(str(other), "-o", str(tmp_path / "g"), "--json", "merged.json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert load_results([tmp_path / "g" / "merged.json"]).gate_passed()
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    proc = generate(str(bad))
    assert proc.returncode == 2
    assert "not a smux-results/1 file" in proc.stderr


def test_merge_replaces_the_same_result_and_keeps_runs() -> None:
    def one(actual: str, date: str) -> ResultSet:
        row = {"case": "smux/4.1/a", "peer": "ref", "version": 1, "role": "server"}
        row.update(actual=actual, unexpected=actual == "fail", expected="pass", spec="4.1")
        return ResultSet([row], [{"date": date, "options": {"peers": ["ref"]}}], {"ref": {}})

    merged = ResultSet()
    merged.add(one("fail", "1"))
    merged.add(one("pass", "2"))
    assert [r["actual"] for r in merged.rows] == ["pass"]
    assert [r["date"] for r in merged.runs] == ["1", "2"]
    assert merged.gate_passed()
    assert ResultSet.from_json(merged.to_json()).runs == merged.runs
    failed = one("fail", "3")
    assert "Rerun them alone (with the cases they rely on): `--smux-case=smux/4.1/a`" in (
        render_markdown(failed)
    )
    assert "Rerun them alone" not in render_markdown(merged)


def test_cells_sections_and_letters() -> None:
    assert sorted(["4.10", "4.9", "12", "4.1"], key=section_key) == ["4.1", "4.9", "4.10", "12"]

    def row(actual: str, unexpected: bool = False, expected: str = "pass") -> dict[str, Any]:
        return {"actual": actual, "unexpected": unexpected, "expected": expected, "variant": "v"}

    assert Cell([row("pass"), row("pass")]).text == "P"
    assert Cell([row("pass"), row("fail", True)]).text == "F!"
    assert Cell([row("fail", expected="fail"), row("pass")]).text == "xF"
    assert Cell([row("non_strict")]).text == "N"
    assert Cell([row("pass", True, "fail")]).text == "P!"
    assert Cell([row("unsupported"), row("pass")]).text == "P"
    assert Cell([row("error", True), row("fail", True)]).text == "E!"
    empty = ResultSet()
    assert "No results." in render_html(empty)
    assert "no case was judged" in render_markdown(empty)


# -- Chromium --------------------------------------------------------------------------------
def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def run_chromium(*args: str) -> subprocess.CompletedProcess[str]:
    binary = chromium()
    assert binary is not None
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={profile}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=scaled(120),
            check=False,
            env={**os.environ, "HOME": profile},
        )


NO_CHROMIUM = "chromium is not installed (apt-get install chromium)"


@pytest.mark.skipif(chromium() is None, reason=NO_CHROMIUM)
def test_chromium_renders_the_matrix(serial: Path, tmp_path: Path) -> None:
    other = as_other_peer(serial / "smux-results.json", tmp_path / "go.json", "go@v1.5.57")
    proc = generate(str(serial / "smux-results.json"), str(other), "-o", str(tmp_path))
    assert proc.returncode == 1, proc.stderr
    url = (tmp_path / "report.html").as_uri()
    dom = run_chromium("--dump-dom", url)
    assert dom.returncode == 0, dom.stderr
    html = dom.stdout
    assert '<table class="matrix">' in html
    assert html.count('data-case="smux/7.1/nop-closes"') == 4
    assert html.count('class="v v-fail unexpected"') == 2  # ref, both roles
    assert html.count('class="v v-fail expected"') == 2
    assert html.count('class="v v-pass"') >= 12  # every go@v1.5.57 cell
    assert "<code>go@v1.5.57</code></th>" in html
    shot = tmp_path / "report.png"
    proc = run_chromium("--window-size=1280,1600", f"--screenshot={shot}", url)
    assert proc.returncode == 0, proc.stderr
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one


FAILING_WITH_FRAMES = """\
from smuxref_conformance.judge.case import case
from smuxref import Cmd

@case("smux/10.2/echo-fails", title="t", spec="10.2", level="must",
      requirement="A receiver MUST NOT send FIN automatically in reply to a FIN.")
def test_echo_fails(raw_conn, smux_check):
    sid = raw_conn.open_stream(b"ECHO\\nhello")
    raw_conn.expect_frame(lambda f: f.sid == sid and f.cmd == Cmd.PSH)
    smux_check.expect(False, expected="something else", actual="the echo")
"""


def test_failure_shows_decoded_frames_and_a_pcap_tshark_opens(tmp_path: Path) -> None:
    run = run_inner(
        tmp_path,
        FAILING_WITH_FRAMES,
        "--smux-report-dir=out",
        "--smux-version=2",
        "--smux-roles=server",
    )
    assert run.returncode == 1, run.output
    out = tmp_path / "out"
    row = json.loads((out / "smux-results.json").read_text())["results"][0]
    assert row["actual"] == "fail"
    # Decoded frames (the dissector's columns) above the raw hex.
    transcript = row["transcript"]
    assert transcript.index("frames (") < transcript.index("transcript (")
    assert "c>s  v2  SYN  1" in transcript, transcript
    assert "s>c  v2  PSH  1" in transcript, transcript
    assert "b'hello'" in transcript, transcript
    pcap = out / row["pcap"]
    assert pcap.is_file(), row
    for name in ("report.html", "summary.md"):
        assert row["pcap"] in (out / name).read_text(), name
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.skip("tshark is not installed (.ci/run installs it)")
    proc = subprocess.run(
        [tshark, "-r", str(pcap), "-T", "fields", "-e", "tcp.len"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lengths = [int(x) for x in proc.stdout.split() if x]
    sent = 8 + 8 + len("ECHO\nhello")
    assert sent in lengths, lengths  # the suite's one write: SYN and PSH
