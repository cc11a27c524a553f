"""Commands on facts: store, get, list, deprecate, supersede, history."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from cortex.cli.jsonl import NumberedDrafts, read_fact_drafts
from cortex.cli.options import (
    AsJson,
    AsOf,
    Confidence,
    FactType,
    Home,
    Meta,
    Project,
    Source,
    Tags,
    Tenant,
    ValidFrom,
    ValidUntil,
    open_memory,
    parse_meta,
)
from cortex.cli.output import (
    fact_fields,
    facts_table,
    history_table,
    page_json,
    print_fields,
    print_json,
    print_table,
    stderr_console,
    versions_json,
)
from cortex.engine import CortexSync
from cortex.errors import CortexError, ShieldBlocked, ValidationError

__all__ = ["deprecate", "get", "history", "list_facts", "store", "supersede"]

STORE_CHUNK = 1000
"""Facts per `store_many` call (each call is committed on its own) when storing a JSONL file."""

FactId = Annotated[str, typer.Argument(metavar="ID", help="Fact id.", show_default=False)]


def store(
    text: Annotated[
        str | None,
        typer.Argument(metavar="TEXT", help="The fact to store.", show_default=False),
    ] = None,
    file: Annotated[
        typer.FileBinaryRead | None,
        typer.Option(
            "--file",
            "-f",
            metavar="FILE",
            help="JSONL file of facts, one JSON object per line; '-' reads stdin.",
        ),
    ] = None,
    project: Project = None,
    fact_type: FactType = None,
    tag: Tags = None,
    source: Source = None,
    confidence: Confidence = None,
    valid_from: ValidFrom = None,
    valid_until: ValidUntil = None,
    meta: Meta = None,
    home: Home = None,
    tenant: Tenant = None,
    as_json: AsJson = False,
) -> None:
    """Store one fact given as TEXT, or every fact of a JSONL file; print the new ids.

    Each JSONL line is an object with "content" and optionally "project", "fact_type", "tags",
    "source", "confidence", "valid_from", "valid_until" and "meta"; --project sets the project
    of lines without one. The whole file is validated, and screened by the privacy shield,
    before anything is stored: a bad line, or one the shield's policy blocks, stores nothing and
    is named by its line number.

    Examples:

        cortex store "The staging database moved to db-2" --project infra --tag db
        cortex store --file facts.jsonl
        cat facts.jsonl | cortex store --file -
    """
    if file is not None and text is None:
        per_fact = {
            "--type": fact_type,
            "--tag": tag,
            "--source": source,
            "--confidence": confidence,
            "--valid-from": valid_from,
            "--valid-until": valid_until,
            "--meta": meta,
        }
        given = [name for name, value in per_fact.items() if value is not None]
        if given:
            raise ValidationError(
                f"{', '.join(given)} apply to TEXT only; with --file, set them in each JSON line"
            )
        # Standard input may be a stream without a name (as under test runners).
        name = str(getattr(file, "name", "<stdin>"))
        read = read_fact_drafts(file, source=name, default_project=project or "default")
        with open_memory(home, tenant) as memory:
            _store_drafts(memory, read, source=name, as_json=as_json)
    elif text is not None and file is None:
        metadata = parse_meta(meta)
        with open_memory(home, tenant) as memory:
            fact = memory.store(
                text,
                project=project,
                fact_type=fact_type or "knowledge",
                tags=tag or (),
                source=source,
                confidence=confidence,
                valid_from=valid_from,
                valid_until=valid_until,
                meta=metadata,
            )
        if as_json:
            print_json(fact.to_dict())
        else:
            typer.echo(fact.id)
    else:
        raise ValidationError("give the fact as TEXT or a JSONL file with --file (not both)")


def _store_drafts(memory: CortexSync, read: NumberedDrafts, *, source: str, as_json: bool) -> None:
    """Screen every draft, then store them in chunks with a progress bar; print ids as chunks
    commit. A draft the shield blocks stops everything before the first chunk is stored."""
    drafts = read.drafts
    if not drafts:
        typer.echo("no facts in the input; nothing stored", err=True)
        if as_json:
            print_json([])
        return
    try:
        memory.screen(drafts)  # `store_many` screens each chunk again, recording redactions
    except ShieldBlocked as exc:
        raise _blocked_line(memory, read, source, exc) from exc
    console = stderr_console()
    stored: list[dict[str, Any]] = []
    columns = (
        TextColumn("storing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, disable=not console.is_terminal) as progress:
        task = progress.add_task("store", total=len(drafts))
        for start in range(0, len(drafts), STORE_CHUNK):
            try:
                facts = memory.store_many(drafts[start : start + STORE_CHUNK])
            except CortexError:
                typer.echo(f"stored {start} of {len(drafts)} facts before this error", err=True)
                raise
            if as_json:
                stored.extend(fact.to_dict() for fact in facts)
            else:
                for fact in facts:
                    typer.echo(fact.id)
            progress.advance(task, len(facts))
    if as_json:
        print_json(stored)


def _blocked_line(
    memory: CortexSync, read: NumberedDrafts, source: str, exc: ShieldBlocked
) -> ShieldBlocked:
    """`exc` for one draft of a file, named by its line instead of its index in the file."""
    index = 0 if exc.item is None else exc.item  # None: a file of one fact
    try:
        memory.screen([read.drafts[index]])  # alone: the same block, without "item N: "
    except ShieldBlocked as alone:
        return ShieldBlocked(
            f"{source}: line {read.lines[index]}: {alone}",
            kind=alone.kind,
            category=alone.category,
            field=alone.field,
            start=alone.start,
            end=alone.end,
            line=alone.line,
            column=alone.column,
            item=index,
        )
    return exc


def get(
    fact_id: FactId,
    as_of: AsOf = None,
    home: Home = None,
    tenant: Tenant = None,
    as_json: AsJson = False,
) -> None:
    """Show one fact; with --as-of, as it was recorded at that instant.

    Example: cortex get 01JNZ3Q8V4K2M7T9X1B5C6D8EF --as-of 2026-03-01
    """
    with open_memory(home, tenant) as memory:
        fact = memory.get(fact_id, as_of=as_of)
    if as_json:
        print_json(fact.to_dict())
    else:
        print_fields(fact_fields(fact))


def list_facts(
    project: Project = None,
    fact_type: FactType = None,
    tag: Tags = None,
    source: Source = None,
    include_inactive: Annotated[
        bool, typer.Option("--all", help="Include deprecated and superseded facts.")
    ] = False,
    as_of: AsOf = None,
    limit: Annotated[int, typer.Option("--limit", "-n", metavar="N", help="Page size.")] = 50,
    cursor: Annotated[
        str | None,
        typer.Option("--cursor", metavar="CURSOR", help="Continue after this cursor."),
    ] = None,
    home: Home = None,
    tenant: Tenant = None,
    as_json: AsJson = False,
) -> None:
    """List active facts in creation order, one page at a time; filters combine with AND.

    Every --tag given must be on the fact. When there are more facts, the cursor of the next
    page is printed (on stderr; in the JSON as "next_cursor").

    Examples:

        cortex list --project infra --tag db
        cortex list --all --as-of 2026-03-01T12:00:00Z --json
    """
    with open_memory(home, tenant) as memory:
        page = memory.list(
            project=project,
            fact_type=fact_type,
            tags=tag or (),
            source=source,
            include_inactive=include_inactive,
            as_of=as_of,
            limit=limit,
            cursor=cursor,
        )
    if as_json:
        print_json(page_json(page))
        return
    if page.items:
        print_table(facts_table(page.items, with_status=include_inactive))
    else:
        typer.echo("no facts match", err=True)
    if page.next_cursor is not None:
        typer.echo(f"more facts: add --cursor {page.next_cursor}", err=True)


def deprecate(
    fact_id: FactId,
    reason: Annotated[
        str,
        typer.Option("--reason", "-r", metavar="TEXT", help="Why the fact no longer holds."),
    ],
    home: Home = None,
    tenant: Tenant = None,
    as_json: AsJson = False,
) -> None:
    """Mark an active fact deprecated; it stays readable, with its history, in the ledger.

    Example: cortex deprecate 01JNZ3Q8V4K2M7T9X1B5C6D8EF --reason "db-2 was decommissioned"
    """
    with open_memory(home, tenant) as memory:
        fact = memory.deprecate(fact_id, reason)
    if as_json:
        print_json(fact.to_dict())
    else:
        typer.echo(f"deprecated {fact.id}")


def supersede(
    fact_id: FactId,
    text: Annotated[str, typer.Argument(metavar="TEXT", help="The new fact.", show_default=False)],
    reason: Annotated[
        str | None,
        typer.Option("--reason", "-r", metavar="TEXT", help="Why the old fact was replaced."),
    ] = None,
    project: Project = None,
    fact_type: FactType = None,
    tag: Tags = None,
    source: Source = None,
    confidence: Confidence = None,
    valid_from: ValidFrom = None,
    valid_until: ValidUntil = None,
    meta: Meta = None,
    home: Home = None,
    tenant: Tenant = None,
    as_json: AsJson = False,
) -> None:
    """Replace a fact with a new version and print its id; options not given keep old values.

    Example: cortex supersede 01JNZ3Q8V4K2M7T9X1B5C6D8EF "Staging runs on db-3" --reason migration
    """
    metadata = parse_meta(meta)
    with open_memory(home, tenant) as memory:
        fact = memory.supersede(
            fact_id,
            text,
            reason=reason,
            project=project,
            fact_type=fact_type,
            tags=tag,
            source=source,
            confidence=confidence,
            valid_from=valid_from,
            valid_until=valid_until,
            meta=metadata,
        )
    if as_json:
        print_json(fact.to_dict())
    else:
        typer.echo(fact.id)


def history(
    fact_id: FactId,
    home: Home = None,
    tenant: Tenant = None,
    as_json: AsJson = False,
) -> None:
    """Show every version of a fact (its supersession chain) with the ledger entries of each.

    Example: cortex history 01JNZ3Q8V4K2M7T9X1B5C6D8EF
    """
    with open_memory(home, tenant) as memory:
        versions = memory.history(fact_id)
    if as_json:
        print_json(versions_json(versions))
    else:
        print_table(history_table(versions))
