"""The report as one self-contained HTML file: inline CSS and inline SVG charts. Pure.

No scripts, no external references (fonts, images, style sheets, links): the file renders the
same in a browser offline, years later. Every value from the ledger is HTML-escaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from cortex.report.build import ComplianceReport
from cortex.report.document import Bullets, Chart, Paragraph, Table, document

__all__ = ["render_html"]

# Okabe-Ito colours (distinguishable with colour-blindness) for the vocabulary's ops.
_OP_COLOURS = {
    "store": "#0072B2",
    "supersede": "#56B4E9",
    "deprecate": "#E69F00",
    "purge": "#D55E00",
    "vote": "#009E73",
    "gate_request": "#CC79A7",
    "gate_decision": "#B8A800",
    "gate_used": "#999999",
    "key_rotate": "#333333",
}
_OTHER_COLOURS = ("#7F3C8D", "#11A579", "#3969AC", "#F2B701", "#E73F74", "#80BA5A")

_CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d1d1f;
       max-width: 980px; margin: 2em auto; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: .3em; }
h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .6em 0 1em; font-size: .92em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f4f4f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code, .mono { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: .9em;
              word-break: break-all; }
.verdict { padding: .6em 1em; border-radius: 6px; font-weight: 600; }
.ok { background: #e6f4ea; border: 1px solid #34a853; }
.failed { background: #fce8e6; border: 1px solid #d93025; }
.more { color: #555; font-style: italic; }
.note { color: #555; font-size: .88em; margin-top: 2em; }
svg { display: block; margin: .5em 0; max-width: 100%; height: auto; }
svg text { font: 11px system-ui, sans-serif; fill: #333; }
.legend span { display: inline-block; margin-right: 1em; font-size: .88em; }
.legend i { display: inline-block; width: .8em; height: .8em; margin-right: .3em;
            vertical-align: -1px; }
@media print { body { margin: 0; max-width: none; } }
"""


def _colours(ops: Sequence[str]) -> dict[str, str]:
    others = iter(_OTHER_COLOURS * (1 + len(ops) // len(_OTHER_COLOURS)))
    return {op: _OP_COLOURS.get(op) or next(others) for op in ops}


def _e(value: object) -> str:
    return "-" if value is None else escape(str(value), quote=True)


def _cell(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<td class="num">{value}</td>'
    text = _e(value)
    if isinstance(value, str) and len(value) >= 26 and " " not in value:
        return f'<td class="mono">{text}</td>'  # ids, hashes, timestamps
    return f"<td>{text}</td>"


def _table(table: Table) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in table.headers)
    rows = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in table.rows)
    more = f'<p class="more">and {table.more} more</p>' if table.more else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>{more}"


def _legend(colours: Mapping[str, str]) -> str:
    items = "".join(
        f'<span><i style="background:{colour}"></i>{_e(op)}</span>'
        for op, colour in colours.items()
    )
    return f'<div class="legend">{items}</div>'


def _timeline_svg(timeline: Mapping[str, Any]) -> str:
    """Stacked bars of entries per bucket, one colour per op, with a tooltip per segment."""
    buckets = timeline["buckets"]
    if not buckets:
        return ""
    ops = sorted({op for b in buckets for op in b["by_op"]})
    colours = _colours(ops)
    width, height, left, bottom, top = 940, 240, 48, 36, 12
    plot_w, plot_h = width - left - 8, height - bottom - top
    peak = max(b["total"] for b in buckets) or 1
    slot = plot_w / len(buckets)
    bar = max(1.0, min(slot * 0.8, 48.0))
    parts = [
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img"'
        f' aria-label="Ledger entries per {_e(timeline["unit"])}">'
    ]
    for fraction in (0.0, 0.5, 1.0):
        y = top + plot_h * (1 - fraction)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - 8}" y2="{y:.1f}" stroke="#e3e3e3"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{round(peak * fraction)}</text>"
        )
    step = max(1, len(buckets) // 8)
    for index, bucket in enumerate(buckets):
        x = left + index * slot + (slot - bar) / 2
        y = top + plot_h
        for op in ops:
            count = bucket["by_op"].get(op, 0)
            if not count:
                continue
            h = plot_h * count / peak
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}"'
                f' fill="{colours[op]}"><title>{_e(bucket["start"])} {_e(op)}: {count}</title>'
                "</rect>"
            )
        if index % step == 0 or index == len(buckets) - 1:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{height - bottom + 16}" text-anchor="middle">'
                f"{_e(bucket['start'])}</text>"
            )
    parts.append("</svg>")
    return "".join(parts) + _legend(colours)


def _by_op_svg(by_op: Mapping[str, int]) -> str:
    """Horizontal bars of entries per op."""
    if not by_op:
        return ""
    colours = _colours(sorted(by_op))
    row, label, width = 22, 120, 940
    height = row * len(by_op) + 8
    peak = max(by_op.values()) or 1
    parts = [
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img"'
        ' aria-label="Ledger entries per op">'
    ]
    for index, (op, count) in enumerate(sorted(by_op.items(), key=lambda kv: -kv[1])):
        y = 4 + index * row
        length = (width - label - 80) * count / peak
        parts.append(
            f'<text x="{label - 8}" y="{y + 14}" text-anchor="end">{_e(op)}</text>'
            f'<rect x="{label}" y="{y + 3}" width="{max(length, 1.0):.1f}" height="{row - 8}"'
            f' fill="{colours[op]}"><title>{_e(op)}: {count}</title></rect>'
            f'<text x="{label + length + 6:.1f}" y="{y + 14}">{count}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def render_html(report: ComplianceReport) -> str:
    """The report as a single HTML5 file with its styles and charts inline."""
    doc = document(report)
    activity = report.body["activity"]
    charts = {
        "timeline": _timeline_svg(activity["timeline"]),
        "by_op": _by_op_svg(activity["by_op"]),
    }
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(doc.title)}: {_e(report.tenant)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{_e(doc.title)}</h1>",
        _table(Table(("Field", "Value"), doc.fields)),
        f'<p class="verdict {"ok" if doc.ok else "failed"}">{_e(doc.verdict)}</p>',
    ]
    for section in doc.sections:
        out.append(f"<section><h2>{_e(section.title)}</h2>")
        for block in section.blocks:
            if isinstance(block, Paragraph):
                text = _e(block.text)
                out.append(f"<p><strong>{text}</strong></p>" if block.strong else f"<p>{text}</p>")
            elif isinstance(block, Bullets):
                out.append("<ul>" + "".join(f"<li>{_e(i)}</li>" for i in block.items) + "</ul>")
            elif isinstance(block, Table):
                out.append(_table(block))
            elif isinstance(block, Chart):
                out.append(charts[block.kind])
        out.append("</section>")
    out += [f'<p class="note">{_e(doc.note)}</p>', "</body>", "</html>", ""]
    return "\n".join(out)
