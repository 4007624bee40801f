"""The Markdown summary (``summary.md``): the same facts as the HTML report, as text.

Meant for a CI job summary or a pull-request comment: the gate, per-peer totals, the
matrix of cases x peers with one letter per verdict (``!`` marks an unexpected result,
a leading ``x`` an expected deviation), the unexpected results, and for every failure,
deviation and error the Requirement / Expected / Actual text and the hex transcript.
"""

from __future__ import annotations

from typing import Final

from .html_report import column_label
from .results import LETTERS, VERDICTS, ResultSet, Row, headline, rerun_hint

__all__ = ["render_markdown"]

_TALLY_KEYS: Final = (*VERDICTS, "expected", "unexpected")


def _cell_text(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _where(row: Row) -> str:
    bits = [row["peer"], f"v{row['version']}" if row.get("version") else "", row.get("role") or ""]
    if row.get("variant"):
        bits.append(f"[{row['variant']}]")
    return " ".join(b for b in bits if b)


def _fence(text: str) -> str:
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}text\n{text.rstrip()}\n{fence}"


def render_markdown(results: ResultSet) -> str:
    """The whole summary for ``results``."""
    summary = results.summary()
    passed = results.gate_passed()
    out = ["# smux conformance report", ""]
    if passed:
        out.append(f"**Gate: PASS**: {summary['total']} results, none unexpected.")
    elif results.judged() == 0:
        out.append(
            "**Gate: FAIL**: no case was judged (nothing ran, or all unsupported or inconclusive)."
        )
    else:
        out.append(
            f"**Gate: FAIL**: {summary['unexpected']} unexpected of {summary['total']} results."
        )
    for run in results.runs:
        options = run.get("options", {})
        out.append(
            f"\nRun {run.get('date', '?')}, suite {run.get('suite_version', '?')}: peers "
            f"{', '.join(options.get('peers', []))}; versions "
            f"{','.join(map(str, options.get('versions', [])))}"
            + ("; --smux-strict" if options.get("strict") else "")
        )
    out += ["", "## Peers", "", "| peer | runs | INFO line | expectations |", "|---|---|---|---|"]
    for name in results.peer_order():
        peer = results.peers.get(name, {})
        info = "; ".join(f"v{v}: `{i}`" for v, i in sorted((peer.get("info") or {}).items()))
        files = ", ".join(f"`{f.get('file', '')}`" for f in peer.get("expectations", []))
        runtime = peer.get("runtime") or "?"
        info = _cell_text(info) or "unknown"
        out.append(f"| `{name}` | {runtime} | {info} | {files or 'none'} |")
    out += ["", "## Totals", "", "| peer | " + " | ".join(_TALLY_KEYS) + " |"]
    out.append("|---" * (len(_TALLY_KEYS) + 1) + "|")
    for name, counts in results.tallies().items():
        out.append(f"| `{name}` | " + " | ".join(str(counts.get(k, 0)) for k in _TALLY_KEYS) + " |")
    out += _matrix(results)
    out += ["", "## Root causes", ""]
    causes = results.root_causes()
    if not causes:
        out.append("No inconclusive result: every case ran its own check.")
    for cause in causes:
        cases = ", ".join(f"`{c}`" for c in sorted({r["case"] for r in cause.inconclusive}))
        out.append(f"- `{cause.case}`{cause.sentence().removeprefix(cause.case)}: {cases}")
    out += ["", "## Unexpected results", ""]
    unexpected = results.unexpected()
    if not unexpected:
        out.append("None: every result is the expected one.")
    for row in unexpected:
        first = headline(row)
        out.append(
            f"- `{row['case']}` {_where(row)}: expected **{row['expected']}**, got "
            f"**{row['actual']}**" + (f": {first}" if first else "")
        )
    if unexpected:
        hint = rerun_hint(str(row["case"]) for row in unexpected)
        out += ["", f"Rerun them alone (with the cases they rely on): `{hint}`"]
    out += ["", "## Failures, deviations and errors", ""]
    shown = [
        r for r in results.rows if r["unexpected"] or r["actual"] in ("fail", "non_strict", "error")
    ]
    if not shown:
        out.append("None.")
    for row in shown:
        tag = "unexpected" if row["unexpected"] else f"expected {row['expected']}"
        out += ["", f"### `{row['case']}`: {_where(row)}: {row['actual']} ({tag})", ""]
        if row.get("reason"):
            out.append(f"Expectation `{row.get('expectation', '')}`: {row['reason']}\n")
        out.append(_fence(row.get("message") or "(no message)"))
        if row.get("transcript"):
            out += ["", "Transcript (decoded frames, then hex):", "", _fence(row["transcript"])]
        if row.get("pcap"):
            out += ["", f"Capture: [{row['pcap']}]({row['pcap']}) (Wireshark, tshark)"]
    return "\n".join(out) + "\n"


def _matrix(results: ResultSet) -> list[str]:
    columns = results.columns()
    out = [
        "",
        "## Matrix",
        "",
        "Letters: " + ", ".join(f"{LETTERS[v]} {v}" for v in VERDICTS) + "; `!` unexpected "
        "(breaks the gate), leading `x` an expected deviation, `(n)` n variants in one cell "
        "(the worst shown), `·` not run.",
        "",
    ]
    if not columns:
        return [*out, "No results."]
    heads = [f"{peer} {column_label(c)}" for c in columns for peer in [c[0]]]
    out.append("| case | level | " + " | ".join(heads) + " |")
    out.append("|---|---|" + "---|" * len(columns))
    for meta in results.cases():
        cells = []
        for column in columns:
            cell = results.cell(meta["case"], column)
            if cell is None:
                cells.append("·")
            else:
                text = cell.text + (f" ({len(cell.rows)})" if len(cell.rows) > 1 else "")
                cells.append(f"**{text}**" if cell.unexpected else text)
        out.append(f"| `{meta['case']}` | {meta.get('level', '')} | " + " | ".join(cells) + " |")
    return out
