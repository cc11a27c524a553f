"""The `search` and `reindex` commands: find facts by meaning and by words; rebuild indexes."""

from __future__ import annotations

from typing import Annotated

import typer
from rich import box
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from cortex.cli.options import (
    AsJson,
    AsOf,
    FactType,
    Home,
    Project,
    Source,
    Tags,
    Tenant,
    open_memory,
)
from cortex.cli.output import fact_preview, print_json, print_table, stderr_console
from cortex.model import SearchHit

__all__ = ["reindex", "search"]


def _hits_table(hits: list[SearchHit]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("SCORE", justify="right", no_wrap=True)
    table.add_column("RANKS", no_wrap=True)
    table.add_column("ID", no_wrap=True)
    table.add_column("SEQ", justify="right", no_wrap=True)
    table.add_column("CONTENT", overflow="fold")
    for number, hit in enumerate(hits, start=1):
        ranks = " ".join(f"{method[0]}{rank}" for method, rank in sorted(hit.ranks.items()))
        table.add_row(
            str(number),
            f"{hit.score:.4f}",
            ranks,
            hit.fact.id,
            str(hit.seq),
            fact_preview(hit.fact.content),
        )
    return table


def search(
    query: Annotated[str, typer.Argument(metavar="QUERY", help="What to look for.")],
    k: Annotated[int, typer.Option("-k", metavar="N", help="How many hits (1-1000).")] = 10,
    mode: Annotated[
        str,
        typer.Option(
            "--mode", metavar="MODE", help="hybrid (default), vector (meaning) or text (words)."
        ),
    ] = "hybrid",
    project: Project = None,
    fact_type: FactType = None,
    tag: Tags = None,
    source: Source = None,
    min_confidence: Annotated[
        float | None,
        typer.Option("--min-confidence", metavar="0..1", help="Only facts at least this sure."),
    ] = None,
    include_inactive: Annotated[
        bool, typer.Option("--all", help="Include deprecated and superseded facts.")
    ] = False,
    as_of: AsOf = None,
    consensus: Annotated[
        str | None,
        typer.Option(
            "--consensus",
            metavar="STATUS",
            help="Only facts whose consensus is 'verified', or 'not_disputed'.",
        ),
    ] = None,
    consensus_boost: Annotated[
        float,
        typer.Option(
            "--consensus-boost",
            metavar="B",
            help="Re-rank by normalised score + B x consensus score (0-10; 0: off).",
        ),
    ] = 0.0,
    home: Home = None,
    tenant: Tenant = None,
    as_json: AsJson = False,
) -> None:
    """Search facts by meaning and by words, best first; filters combine with AND.

    Hybrid mode fuses a vector search (local all-MiniLM-L6-v2 embeddings) with BM25 full-text
    search by Reciprocal Rank Fusion. RANKS shows each method's rank (v = vector, t = text); SEQ
    is the fact's ledger entry, for `cortex proof SEQ`. With --as-of, only facts valid at that
    instant are searched, as they were recorded then. --consensus and --consensus-boost act on
    the best fused candidates by the facts' consensus (see `cortex consensus`).

    Examples:

        cortex search "which port does the staging cache use?"
        cortex search "retry_backoff_ms" --mode text --project infra -k 5 --json
        cortex search "staging database" --consensus not_disputed --consensus-boost 0.5
    """
    if mode not in ("hybrid", "vector", "text"):
        raise typer.BadParameter("choose hybrid, vector or text", param_hint="--mode")
    with open_memory(home, tenant) as memory:
        hits = memory.search(
            query,
            k=k,
            mode=mode,  # type: ignore[arg-type]
            project=project,
            fact_type=fact_type,
            tags=tag or (),
            source=source,
            min_confidence=min_confidence,
            include_inactive=include_inactive,
            as_of=as_of,
            consensus=consensus,  # type: ignore[arg-type]
            consensus_boost=consensus_boost,
        )
    if as_json:
        print_json([hit.to_dict() for hit in hits])
    elif hits:
        print_table(_hits_table(hits))
    else:
        typer.echo("no facts match", err=True)


def reindex(
    full: Annotated[
        bool,
        typer.Option(
            "--full", help="Rebuild the text index and every vector, not just missing ones."
        ),
    ] = False,
    home: Home = None,
    tenant: Tenant = None,
) -> None:
    """Rebuild the search indexes from the stored facts, with a progress bar.

    By default, embeds every fact that lacks a vector from the current model: after the
    embedding model changed, or for facts stored while the embedder was 'none'. Interrupting it
    is safe: committed batches stay done and a rerun continues with the rest. --full also
    rebuilds the full-text index of every fact. The ledger is not touched: indexes are derived.

    Examples:

        cortex reindex
        cortex reindex --full --tenant acme
    """
    console = stderr_console()
    columns = (
        TextColumn("reindex"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with (
        open_memory(home, tenant) as memory,
        Progress(*columns, console=console, disable=not console.is_terminal) as progress,
    ):
        task = progress.add_task("reindex", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        count = memory.reindex(full=full, progress=advance)
    typer.echo(f"reindexed {count} facts")
