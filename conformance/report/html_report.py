"""The HTML report: one self-contained file (inline CSS, no script, no external asset).

It must be readable wherever it is opened - a CI artefact viewer, a mail attachment, a
browser with scripts off - so everything is in the page and everything is visible
without interaction: the gate, the peers and their INFO lines, per-peer totals, the
matrix of cases x peers (split by version and role; a letter per verdict, so it also
reads without colour), and, for every failure, deviation and error, the
Requirement / Expected / Actual text and the hex transcript.  Matrix cells link to
their details with plain anchors.
"""

from __future__ import annotations

import json
from html import escape
from importlib.resources import files
from string import Template
from typing import Any, Final

from .results import LETTERS, VERDICTS, Cell, Column, ResultSet, Row, headline

__all__ = ["render_html"]

_TALLY_KEYS: Final = (*VERDICTS, "expected", "unexpected")
_LEGEND_TEXT: Final = {
    "pass": "pass",
    "non_strict": "non-strict (a SHOULD not met)",
    "fail": "fail (a MUST not met)",
    "info": "info (observed, never fails)",
    "unsupported": "unsupported (peer exit 127)",
    "inconclusive": "inconclusive (a prerequisite case failed first)",
    "not_run": "not run (the run lacks what the case needs)",
    "error": "error (the harness broke)",
}


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def column_label(column: Column) -> str:
    _, version, role = column
    parts = [f"v{version}" if version is not None else "", role or ""]
    return " ".join(p for p in parts if p) or "-"


def _detail_rows(results: ResultSet) -> list[Row]:
    shown = ("fail", "non_strict", "error")
    return [r for r in results.rows if r["unexpected"] or r["actual"] in shown]


def _anchor(row: Row, index: dict[int, str]) -> str | None:
    return index.get(id(row))


def _meta(results: ResultSet) -> str:
    lines = []
    for run in results.runs:
        options = run.get("options", {})
        bits = [
            f"suite {run.get('suite_version', '?')}",
            f"run {run.get('date', '?')}",
            f"peers {', '.join(options.get('peers', [])) or '?'}",
            f"versions {','.join(map(str, options.get('versions', []))) or '?'}",
            f"roles {','.join(options.get('roles', [])) or '?'}",
        ]
        if options.get("strict"):
            bits.append("--smux-strict")
        if options.get("timeout_scale", 1) != 1:
            bits.append(f"timeout scale {options['timeout_scale']}")
        lines.append(f'<p class="meta">{_e("; ".join(bits))}</p>')
    return "\n".join(lines)


def _peer_arg(peer: dict[str, object], name: str) -> str:
    """The ``--peer`` value and where the peer ran (a Go peer in a container or native)."""
    runtime = peer.get("runtime")
    return f"{peer.get('raw', name)} ({runtime})" if runtime else str(peer.get("raw", name))


def _peers(results: ResultSet) -> str:
    rows = []
    for name in results.peer_order():
        peer = results.peers.get(name, {})
        info = peer.get("info") or {}
        info_text = "<br>".join(
            f"v{v}: <code>{_e(i if isinstance(i, str) else json.dumps(i, sort_keys=True))}</code>"
            for v, i in sorted(info.items())
        )
        files_ = ", ".join(
            f"<code>{_e(f.get('file', ''))}</code> ({_e(f.get('implementation', ''))})"
            for f in peer.get("expectations", [])
        )
        rows.append(
            f"<tr><th><code>{_e(name)}</code></th><td>{_e(_peer_arg(peer, name))}</td>"
            f"<td>{info_text or '<em>unknown</em>'}</td><td>{files_ or '<em>none</em>'}</td></tr>"
        )
    head = "<tr><th>peer</th><th>--peer</th><th>INFO line</th><th>expectations</th></tr>"
    return f'<table class="peers"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def _totals(results: ResultSet) -> str:
    tallies = results.tallies()
    head = "".join(f"<th>{_e(k)}</th>" for k in _TALLY_KEYS)
    body = []
    for name, counts in tallies.items():
        cells = "".join(f'<td class="num">{counts.get(k, 0)}</td>' for k in _TALLY_KEYS)
        body.append(f"<tr><th><code>{_e(name)}</code></th>{cells}</tr>")
    return (
        f'<table class="totals"><thead><tr><th>peer</th>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _legend() -> str:
    items = "".join(
        f'<span class="badge v-{v}">{LETTERS[v]}</span>{_e(_LEGEND_TEXT[v])} &nbsp; '
        for v in VERDICTS
    )
    return (
        f'<p class="legend">{items}</p><p class="legend">'
        '<span class="badge unexpected">F!</span>unexpected (breaks the gate) &nbsp; '
        '<span class="badge expected">xF</span>expected deviation (listed in an expectations '
        "file) &nbsp; P<sub>4</sub> four results in one cell (variants of the case, such as "
        "segmentations; the cell shows the worst) &nbsp; <code>&middot;</code> not run</p>"
    )


def _cell(cell: Cell | None, column: Column, case_id: str, anchors: dict[int, str]) -> str:
    key = "|".join("" if c is None else str(c) for c in column)
    where = f'data-case="{_e(case_id)}" data-column="{_e(key)}"'
    if cell is None:
        return f'<td class="v v-none" {where}>&middot;</td>'
    shown = cell.shown
    classes = ["v", f"v-{shown['actual']}"]
    if cell.unexpected:
        classes.append("unexpected")
    elif cell.expected_deviation:
        classes.append("expected")
    count = f"<sub>{len(cell.rows)}</sub>" if len(cell.rows) > 1 else ""
    anchor = next((anchors[id(r)] for r in cell.rows if id(r) in anchors), None)
    text = _e(cell.text) + count
    body = f'<a href="#{anchor}">{text}</a>' if anchor else text
    return (
        f'<td class="{" ".join(classes)}" {where} '
        f'data-verdict="{_e(shown["actual"])}" data-unexpected="{int(cell.unexpected)}" '
        f'title="{_e(cell.tooltip())}">{body}</td>'
    )


def _matrix(results: ResultSet, anchors: dict[int, str]) -> str:
    columns = results.columns()
    if not columns:
        return "<p><em>No results.</em></p>"
    peers: list[tuple[str, int]] = []
    for column in columns:
        if peers and peers[-1][0] == column[0]:
            peers[-1] = (column[0], peers[-1][1] + 1)
        else:
            peers.append((column[0], 1))
    top = "".join(f'<th class="peer" colspan="{n}"><code>{_e(p)}</code></th>' for p, n in peers)
    sub = "".join(f'<th class="sub">{_e(column_label(c))}</th>' for c in columns)
    head = f'<tr><th rowspan="2">case</th><th rowspan="2">level</th>{top}</tr><tr>{sub}</tr>'
    body = []
    section = None
    for meta in results.cases():
        heading = f"{meta.get('document') or 'SPEC.md'} {meta.get('spec')}"
        if heading != section:
            section = heading
            span = len(columns) + 2
            body.append(f'<tr class="section"><th colspan="{span}">{_e(section)}</th></tr>')
        cells = "".join(
            _cell(results.cell(meta["case"], c), c, meta["case"], anchors) for c in columns
        )
        body.append(
            f'<tr><th class="case"><code>{_e(meta["case"])}</code><br>'
            f'<span class="title">{_e(meta.get("title", ""))}</span></th>'
            f'<td class="level">{_e(meta.get("level", ""))}</td>{cells}</tr>'
        )
    return f'<table class="matrix"><thead>{head}</thead><tbody>{"".join(body)}</tbody></table>'


def _where(row: Row) -> str:
    bits = [row["peer"], f"v{row['version']}" if row.get("version") else "", row.get("role") or ""]
    if row.get("variant"):
        bits.append(f"[{row['variant']}]")
    return " &middot; ".join(_e(b) for b in bits if b)


def _unexpected(results: ResultSet, anchors: dict[int, str]) -> str:
    rows = results.unexpected()
    if not rows:
        return "<p>None: every result is the expected one.</p>"
    items = []
    for row in rows:
        first = headline(row)
        items.append(
            f'<li><a href="#{anchors[id(row)]}"><code>{_e(row["case"])}</code></a> '
            f"{_where(row)}: expected <strong>{_e(row['expected'])}</strong>, got "
            f'<span class="badge v-{_e(row["actual"])}">{_e(row["actual"])}</span>'
            f"{' &mdash; ' + _e(first) if first else ''}</li>"
        )
    return f'<ul class="compact">{"".join(items)}</ul>'


def _details(rows: list[Row], anchors: dict[int, str]) -> str:
    if not rows:
        return "<p>None.</p>"
    out = []
    for row in rows:
        badges = f'<span class="badge v-{_e(row["actual"])}">{_e(row["actual"].upper())}</span>'
        if row["unexpected"]:
            badges += ' <span class="badge unexpected">unexpected</span>'
        elif row["expected"] != "pass":
            badges += f' <span class="badge expected">expected {_e(row["expected"])}</span>'
        reason = (
            f"<p>Expectation <code>{_e(row.get('expectation', ''))}</code>: {_e(row['reason'])}</p>"
            if row.get("reason")
            else ""
        )
        transcript = (
            f'<h4>Transcript: decoded frames, then hex</h4><pre class="transcript">'
            f"{_e(row['transcript'])}</pre>"
            if row.get("transcript")
            else ""
        )
        if row.get("pcap"):
            transcript += (
                f'<p>Capture of the connection: <a href="{_e(row["pcap"])}">'
                f"{_e(row['pcap'])}</a> (opens in Wireshark or tshark)</p>"
            )
        classes = "detail unexpected" if row["unexpected"] else "detail"
        out.append(
            f'<article class="{classes}" id="{anchors[id(row)]}">'
            f"<h3><code>{_e(row['case'])}</code> &mdash; {_where(row)} {badges}</h3>"
            f"<p>{_e(row.get('title', ''))} ({_e(row.get('document') or 'SPEC.md')} "
            f"{_e(row.get('spec', ''))}, "
            f"{_e(row.get('level', ''))}); <code>{_e(row.get('nodeid', ''))}</code></p>{reason}"
            f'<pre class="message">{_e(row.get("message") or "(no message)")}</pre>{transcript}'
            "</article>"
        )
    return "\n".join(out)


def _root_causes(results: ResultSet, anchors: dict[int, str]) -> str:
    causes = results.root_causes()
    if not causes:
        return "<p>No inconclusive result: every case ran its own check.</p>"
    items = []
    for cause in causes:
        link = next((anchors[id(r)] for r in cause.own if id(r) in anchors), None)
        name = f"<code>{_e(cause.case)}</code>"
        name = f'<a href="#{link}">{name}</a>' if link else name
        sentence = _e(cause.sentence().removeprefix(cause.case))
        cases = ", ".join(
            f"<code>{_e(c)}</code>" for c in sorted({r["case"] for r in cause.inconclusive})
        )
        items.append(f"<li>{name}{sentence}: {cases}</li>")
    return f'<ul class="compact">{"".join(items)}</ul>'


def _observations(results: ResultSet) -> str:
    rows = [r for r in results.rows if r["actual"] == "info"]
    if not rows:
        return "<p>None.</p>"
    items = []
    for row in rows:
        notes = row.get("observations") or []
        text = "; ".join(notes) or (row.get("message") or "")
        items.append(f"<li><code>{_e(row['case'])}</code> {_where(row)}: {_e(text)}</li>")
    return f'<ul class="compact">{"".join(items)}</ul>'


def render_html(results: ResultSet) -> str:
    """The whole page for ``results``."""
    detail_rows = _detail_rows(results)
    anchors = {id(r): f"d{i}" for i, r in enumerate(detail_rows)}
    summary = results.summary()
    passed = results.gate_passed()
    if passed:
        detail = f"{summary['total']} results, none unexpected"
    elif results.judged() == 0:
        detail = "no case was judged (nothing ran, or everything was unsupported or inconclusive)"
    else:
        detail = f"{summary['unexpected']} unexpected of {summary['total']} results"
    template = Template(files("smuxref_conformance.report").joinpath("template.html").read_text())
    values: dict[str, Any] = {
        "suite_version": _e(results.runs[0].get("suite_version", "?") if results.runs else "?"),
        "gate_text": "PASS" if passed else "FAIL",
        "gate_class": "pass" if passed else "fail",
        "gate_detail": _e(detail),
        "meta": _meta(results),
        "peers": _peers(results),
        "totals": _totals(results),
        "legend": _legend(),
        "matrix": _matrix(results, anchors),
        "unexpected": _unexpected(results, anchors),
        "root_causes": _root_causes(results, anchors),
        "details": _details(detail_rows, anchors),
        "observations": _observations(results),
    }
    return template.substitute(values)
