"""Rendering a `ComplianceReport` as JSON, Markdown or HTML, and writing it to a file atomically.

Markdown and HTML render the same `cortex.report.document.Document`; the HTML is one
self-contained file (`cortex.report.html`). User text (actors, reasons, ids) is escaped for the
target format: a reason cannot add Markdown table cells or HTML elements.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Literal

from cortex.errors import ValidationError
from cortex.fsutil import fsync_path
from cortex.report.build import ComplianceReport
from cortex.report.document import Bullets, Chart, Paragraph, Table, document
from cortex.report.html import render_html

__all__ = [
    "FORMATS",
    "ReportFormat",
    "check_format",
    "media_type",
    "render",
    "render_json",
    "render_markdown",
    "write_report",
]

ReportFormat = Literal["md", "json", "html"]
FORMATS: tuple[ReportFormat, ...] = ("md", "json", "html")
_MEDIA_TYPES: dict[ReportFormat, str] = {
    "md": "text/markdown; charset=utf-8",
    "json": "application/json",
    "html": "text/html; charset=utf-8",
}
_MD_SPECIAL = str.maketrans({c: f"\\{c}" for c in "\\|*`[]<>"})


def check_format(value: str) -> ReportFormat:
    """`value` if it names a format (md, json, html); ValidationError otherwise."""
    for name in FORMATS:
        if value == name:
            return name
    raise ValidationError(f"format {value!r} is not one of {', '.join(FORMATS)}")


def media_type(fmt: ReportFormat) -> str:
    """The HTTP media type of a rendering."""
    return _MEDIA_TYPES[fmt]


def render(report: ComplianceReport, fmt: ReportFormat) -> str:
    """The report as text in `fmt`."""
    if fmt == "json":
        return render_json(report)
    if fmt == "html":
        return render_html(report)
    return render_markdown(report)


def render_json(report: ComplianceReport) -> str:
    """The JSON form (schema `cortex-report/1`), indented, ending with a newline."""
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"


def _md(value: object) -> str:
    """A value as Markdown text: special characters escaped, on one line; "-" for null."""
    if value is None:
        return "-"
    return " ".join(str(value).split()).translate(_MD_SPECIAL)


def _md_table(table: Table) -> list[str]:
    lines = ["| " + " | ".join(_md(h) for h in table.headers) + " |"]
    lines.append("|" + "---|" * len(table.headers))
    lines += ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in table.rows]
    lines.append("")
    if table.more:
        lines += [f"_and {table.more} more_", ""]
    return lines


def render_markdown(report: ComplianceReport) -> str:
    """The report as Markdown for people: the header as a table, then sections 1-8."""
    doc = document(report)
    out = [f"# {_md(doc.title)}", ""]
    out += _md_table(Table(("Field", "Value"), doc.fields))
    out += [f"**{_md(doc.verdict)}**", ""]
    for section in doc.sections:
        out += [f"## {_md(section.title)}", ""]
        for block in section.blocks:
            if isinstance(block, Paragraph):
                text = _md(block.text)
                out += [f"**{text}**" if block.strong else text, ""]
            elif isinstance(block, Bullets):
                out += [*(f"- {_md(item)}" for item in block.items), ""]
            elif isinstance(block, Table):
                out += _md_table(block)
            elif isinstance(block, Chart):
                continue  # the table next to it holds the same figures
    out += ["---", "", _md(doc.note), ""]
    return "\n".join(out)


def write_report(path: Path, text: str) -> None:
    """Write `text` to `path` atomically: a temporary file beside it, fsynced, then renamed."""
    folder = path.parent
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_path(Path(folder))
