"""Rendering for people (Rich tables) and scripts (JSON on stdout).

User data is wrapped in `Text` so that brackets in a fact are never read as Rich markup.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cortex.model import (
    Checkpoint,
    ConsistencyProof,
    Fact,
    FactVersion,
    InclusionProof,
    Page,
    Stats,
    VerifyReport,
)

__all__ = [
    "checkpoint_fields",
    "consistency_fields",
    "fact_fields",
    "fact_preview",
    "facts_table",
    "history_table",
    "inclusion_fields",
    "page_json",
    "print_fields",
    "print_json",
    "print_table",
    "problems_table",
    "stats_fields",
    "stderr_console",
    "stdout_console",
    "versions_json",
]

_CONTENT_PREVIEW = 120
_PIPE_WIDTH = 4096


def stdout_console() -> Console:
    """A console on the current stdout, without automatic highlighting.

    A pipe or a file has no width: rows are printed whole instead of squeezed into 80 columns.
    """
    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = _PIPE_WIDTH
    return console


def stderr_console() -> Console:
    """A console on the current stderr (progress bars, hints)."""
    return Console(stderr=True, highlight=False)


def print_json(value: Any) -> None:
    """Print `value` as indented JSON on stdout."""
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def print_table(table: Table) -> None:
    """Print a Rich table on stdout."""
    stdout_console().print(table)


def _text(value: object) -> Text:
    if value is None:
        return Text("-", style="dim")
    if isinstance(value, list | tuple):
        return Text(", ".join(str(item) for item in value))
    if isinstance(value, Mapping):
        return Text(json.dumps(value, ensure_ascii=False, sort_keys=True))
    return Text(str(value))


def fact_preview(content: str) -> Text:
    """One line of a fact's content, shortened for a table cell."""
    line = " ".join(content.split())
    if len(line) > _CONTENT_PREVIEW:
        line = line[: _CONTENT_PREVIEW - 1] + "…"
    return Text(line)


def print_fields(rows: Iterable[tuple[str, object]]) -> None:
    """Print `name: value` rows as a two-column table on stdout."""
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for name, value in rows:
        table.add_row(name, _text(value))
    print_table(table)


def fact_fields(fact: Fact) -> list[tuple[str, object]]:
    """The fields of a fact worth showing to a person, in reading order."""
    data = fact.to_dict()
    shown = [
        "id", "status", "content", "project", "fact_type", "tags", "source", "confidence",
        "valid_from", "valid_until", "created_at", "supersedes", "superseded_by",
        "deprecated_at", "deprecation_reason", "meta", "seq", "tenant",
    ]  # fmt: skip
    return [(name, data[name]) for name in shown if data[name] not in (None, [], {})]


def facts_table(facts: Sequence[Fact], *, with_status: bool) -> Table:
    """One row per fact: id, project, type, status (if asked), tags and its content."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("ID", no_wrap=True)
    table.add_column("PROJECT", no_wrap=True)
    table.add_column("TYPE", no_wrap=True)
    if with_status:
        table.add_column("STATUS", no_wrap=True)
    table.add_column("TAGS", overflow="fold")
    table.add_column("CONTENT", overflow="fold")
    for fact in facts:
        status = [fact.status] if with_status else []
        table.add_row(
            fact.id,
            _text(fact.project),
            _text(fact.fact_type),
            *status,
            _text(fact.tags),
            fact_preview(fact.content),
        )
    return table


def page_json(page: Page) -> dict[str, Any]:
    """A listing page as JSON: its facts and the cursor of the next page (or null)."""
    return {"items": [fact.to_dict() for fact in page.items], "next_cursor": page.next_cursor}


def versions_json(versions: Sequence[FactVersion]) -> list[dict[str, Any]]:
    """A supersession chain as JSON: each version's fact and its transactions."""
    return [
        {"fact": v.fact.to_dict(), "transactions": [tx.to_dict() for tx in v.transactions]}
        for v in versions
    ]


def history_table(versions: Sequence[FactVersion]) -> Table:
    """One row per transaction of each version, oldest first, with what it recorded."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("FACT", no_wrap=True)
    table.add_column("STATUS", no_wrap=True)
    table.add_column("SEQ", justify="right", no_wrap=True)
    table.add_column("OP", no_wrap=True)
    table.add_column("TS", no_wrap=True)
    table.add_column("DETAIL", overflow="fold")
    for version in versions:
        fact = version.fact
        for tx in version.transactions:
            detail = fact.content if tx.seq == fact.seq else tx.payload.get("reason")
            table.add_row(fact.id, fact.status, str(tx.seq), tx.op, tx.ts, _text(detail))
    return table


def problems_table(report: VerifyReport) -> Table:
    """One row per integrity problem: tenant, seq, kind and detail."""
    table = Table(title="integrity problems", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("TENANT", no_wrap=True)
    table.add_column("SEQ", justify="right", no_wrap=True)
    table.add_column("KIND", no_wrap=True)
    table.add_column("DETAIL", overflow="fold")
    for problem in report.problems:
        seq = "-" if problem.seq is None else str(problem.seq)
        table.add_row(_text(problem.tenant), seq, problem.kind, _text(problem.detail))
    return table


def inclusion_fields(proof: InclusionProof) -> list[tuple[str, object]]:
    """The parts of an inclusion proof, hashes in hex."""
    return [
        ("tenant", proof.tenant),
        ("seq", proof.seq),
        ("tree_size", proof.tree_size),
        ("entry", proof.entry.decode()),
        ("leaf_hash", proof.leaf_hash.hex()),
        ("path", "\n".join(h.hex() for h in proof.path) or "(empty)"),
        ("root", proof.root.hex()),
    ]


def consistency_fields(proof: ConsistencyProof) -> list[tuple[str, object]]:
    """The parts of a consistency proof, hashes in hex."""
    return [
        ("tenant", proof.tenant),
        ("old_size", proof.old_size),
        ("old_root", proof.old_root.hex()),
        ("new_size", proof.new_size),
        ("new_root", proof.new_root.hex()),
        ("path", "\n".join(h.hex() for h in proof.path) or "(empty)"),
    ]


def checkpoint_fields(checkpoint: Checkpoint) -> list[tuple[str, object]]:
    """The parts of a signed checkpoint, binary values in hex."""
    return list(checkpoint.to_dict().items())


def stats_fields(stats: Stats) -> list[tuple[str, object]]:
    """The counts of a tenant."""
    return list(stats.to_dict().items())
