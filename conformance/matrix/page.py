"""Render the interop matrix as one self-contained HTML page and as a Markdown table.

In the manner of quic-interop-runner: first each implementation's conformance (per
protocol version and role: passes, deviations the expectations file explains, unexpected
results, unsupported), then per protocol version a client x server grid whose cells say
pass or fail, which side was at fault and why, and link to the pair's transcript and pcap.
No script, no external resource: the page opens from disk or as a CI artifact.
"""

from __future__ import annotations

import html
from typing import Any, Final

__all__ = ["render_html", "render_markdown"]

_COLUMNS: Final = ("v1-server", "v1-client", "v2-server", "v2-client")
_STYLE: Final = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0}
th,td{border:1px solid #bbb;padding:.35em .6em;vertical-align:top}
th{background:#f2f2f2;text-align:left}
td.c{min-width:9em}
.pass{background:#c8ecc8}.expected{background:#f5e7a8}.fail{background:#f4b6b0}
.unsupported,.none{background:#e4e4e4;color:#555}.error{background:#e9b3e9}
small{color:#444}code{font-size:.95em}
td a{margin-right:.5em}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _conformance_cell(cell: dict[str, int] | None) -> tuple[str, str]:
    """(css class, text) of one conformance cell."""
    if not cell:
        return "none", "-"
    total = sum(v for k, v in cell.items() if k not in ("unexpected", "expected_fail"))
    unsupported = cell.get("unsupported", 0)
    # Not judged: the peer lacks the feature, or the case's prerequisite failed or was not run.
    unjudged = unsupported + cell.get("not_run", 0) + cell.get("inconclusive", 0)
    if unsupported and unjudged == total:
        return "unsupported", "unsupported"
    passed = cell.get("pass", 0) + cell.get("info", 0)
    unexpected = cell.get("unexpected", 0)
    explained = cell.get("expected_fail", 0)
    text = f"{passed}/{total - unjudged} pass"
    if explained:
        text += f", {explained} known"
    if unexpected:
        text += f", {unexpected} unexpected"
    css = "fail" if unexpected else ("expected" if explained else "pass")
    return css, text


def _conformance_table(doc: dict[str, Any]) -> str:
    rows = []
    for impl, summary in sorted(doc["conformance"].items()):
        info = summary.get("info") or {}
        label = f"<code>{_e(impl)}</code>"
        if info:
            label += f"<br><small>{_e(info.get('implementation', ''))} "
            label += f"{_e(info.get('smux_version') or info.get('version') or '')}</small>"
        cells = []
        for col in _COLUMNS:
            css, text = _conformance_cell(summary["cells"].get(col))
            link = (
                f'<a href="{_e(summary["report"])}">{_e(text)}</a>' if summary["report"] else text
            )
            cells.append(f'<td class="c {css}">{link}</td>')
        rows.append(f"<tr><th>{label}</th>{''.join(cells)}</tr>")
    for name, reason in sorted(doc.get("unservable", {}).items()):
        rows.append(
            f'<tr><th><code>{_e(name)}</code></th><td class="c none" colspan="4">'
            f"no peer: {_e(reason)}</td></tr>"
        )
    head = "".join(f"<th>{c.replace('-', ' ')}</th>" for c in _COLUMNS)
    return (
        f'<table class="conformance"><tr><th>implementation</th>{head}</tr>{"".join(rows)}</table>'
    )


def _pair_cell(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return '<td class="c none">-</td>'
    verdict = entry["verdict"]
    text = verdict
    if verdict == "fail" and entry.get("at_fault"):
        text = f"fail: {entry['at_fault']}"
    elif verdict == "pass":
        text = f"pass {entry['exchanges_ok']}/{entry['exchanges']}"
    links = ""
    if entry.get("transcript"):
        links += f'<a href="{_e(entry["transcript"])}">transcript</a>'
    if entry.get("pcap"):
        links += f'<a href="{_e(entry["pcap"])}">pcap</a>'
    title = _e(entry.get("summary", ""))
    detail = ""
    if verdict != "pass":
        detail = f"<br><small>{_e(entry.get('summary', ''))[:240]}</small>"
    return (
        f'<td class="c {_e(verdict)}" title="{title}" data-pair="{_e(entry["client"])}|'
        f'{_e(entry["server"])}|{entry["version"]}"><b>{_e(text)}</b> {links}{detail}</td>'
    )


def _grid(doc: dict[str, Any], version: int) -> str:
    entries = {(e["client"], e["server"]): e for e in doc["pairwise"] if e["version"] == version}
    if not entries:
        return ""
    impls = sorted({c for c, _ in entries} | {s for _, s in entries})
    head = "".join(f"<th>server <code>{_e(s)}</code></th>" for s in impls)
    rows = []
    for client in impls:
        cells = "".join(_pair_cell(entries.get((client, server))) for server in impls)
        rows.append(f"<tr><th>client <code>{_e(client)}</code></th>{cells}</tr>")
    return (
        f"<h2>Pairwise, protocol version {version}</h2>"
        f'<table class="grid" data-version="{version}"><tr><th></th>{head}</tr>'
        f"{''.join(rows)}</table>"
    )


def render_html(doc: dict[str, Any]) -> str:
    runs = doc.get("runs", [])
    meta = "".join(
        f"<li><code>{_e(r.get('command', ''))}</code>: {_e(r.get('date', ''))}, "
        f"{_e(r.get('wall_seconds', '?'))} s wall on {_e(r.get('cores', '?'))} cores</li>"
        for r in runs
    )
    grids = "".join(_grid(doc, v) for v in (1, 2))
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<title>smux interop matrix</title>"
        f"<style>{_STYLE}</style></head><body>"
        "<h1>smux interop matrix</h1>"
        f"<ul>{meta}</ul>"
        "<h2>Conformance (the smuxref suite against each implementation)</h2>"
        "<p><small>green: every result as SPEC.md requires; yellow: deviations explained by "
        "the implementation's expectations file; red: unexpected results. Each cell links "
        "to the suite's report.</small></p>"
        f"{_conformance_table(doc)}"
        "<p><small>Pairwise: the client runs the exchanges of CONTRACT.md rules 20-22 "
        "(SINK, ECHO, SOURCE, and RUN so that the server opens streams too) through the "
        "suite's relay, which judges every frame against SPEC.md and checks the data by "
        "SHA-256. A failing cell names the side at fault; its transcript shows the "
        "frames.</small></p>"
        f"{grids}</body></html>\n"
    )


def render_markdown(doc: dict[str, Any]) -> str:
    lines = ["| implementation | " + " | ".join(_COLUMNS) + " |", "|---" * 5 + "|"]
    for impl, summary in sorted(doc["conformance"].items()):
        cells = [_conformance_cell(summary["cells"].get(c))[1] for c in _COLUMNS]
        lines.append(f"| `{impl}` | " + " | ".join(cells) + " |")
    for name, reason in sorted(doc.get("unservable", {}).items()):
        lines.append(f"| `{name}` | no peer: {reason.split(':')[0]} | | | |")
    for version in (1, 2):
        entries = {
            (e["client"], e["server"]): e for e in doc["pairwise"] if e["version"] == version
        }
        if not entries:
            continue
        impls = sorted({c for c, _ in entries} | {s for _, s in entries})
        lines += ["", f"Pairwise, protocol {version} (rows: client, columns: server):", ""]
        lines.append("| client \\ server | " + " | ".join(f"`{s}`" for s in impls) + " |")
        lines.append("|---" * (len(impls) + 1) + "|")
        for client in impls:
            cells = []
            for server in impls:
                e = entries.get((client, server))
                if e is None:
                    cells.append("-")
                elif e["verdict"] == "fail":
                    cells.append(f"fail ({e.get('at_fault') or '?'})")
                else:
                    cells.append(e["verdict"])
            lines.append(f"| `{client}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
