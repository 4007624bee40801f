"""Conformance reports: the results JSON, the HTML page, the Markdown summary, JUnit fixes.

A run writes ``smux-results.json`` (:mod:`.results`), from which :func:`write_reports`
renders ``report.html`` (:mod:`.html_report`) and ``summary.md`` (:mod:`.md_report`);
``python -m smuxref_conformance.report FILE... -o DIR`` renders the same from one or several
results files, so runs made one peer at a time can be shown as one matrix.
"""

from __future__ import annotations

from pathlib import Path

from .html_report import render_html
from .md_report import render_markdown
from .results import SCHEMA, ResultSet, load_results

__all__ = ["SCHEMA", "ResultSet", "load_results", "render_html", "render_markdown", "write_reports"]


def write_reports(results: ResultSet, directory: Path) -> tuple[Path, Path]:
    """Write ``report.html`` and ``summary.md`` into ``directory``; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    html_path = directory / "report.html"
    md_path = directory / "summary.md"
    html_path.write_text(render_html(results), encoding="utf-8")
    md_path.write_text(render_markdown(results), encoding="utf-8")
    return html_path, md_path
