"""The `report` command: a tenant's record-keeping report as Markdown, JSON or HTML."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from cortex.cli.exit_codes import EXIT_INTEGRITY
from cortex.cli.options import Home, Tenant, open_memory
from cortex.cli.output import stderr_console
from cortex.report import check_format, render, write_report
from cortex.report.document import summary_line

__all__ = ["report"]

_STEPS = {
    "scan": "reading the ledger",
    "verify": "verifying the ledger",
    "checkpoints": "checking checkpoints",
}


def report(
    tenant: Tenant = None,
    start: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="DATE",
            help="First day (or ISO 8601 instant) of the period, inclusive (default: the first"
            " entry).",
            show_default=False,
        ),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option(
            "--to",
            metavar="DATE",
            help="Last day (or instant) of the period, inclusive (default: the last entry).",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format", "-f", metavar="md|json|html", help="Markdown, JSON or a single HTML file."
        ),
    ] = "md",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            dir_okay=False,
            help="Write the report to FILE (atomically) instead of stdout.",
            show_default=False,
        ),
    ] = None,
    home: Home = None,
) -> None:
    """Write the tenant's record-keeping report for a period (EU AI Act Art. 12 in spirit).

    What was logged and when, by which agents and API keys; integrity (the ledger verified, the
    latest signed checkpoint, each checkpoint's consistency with the next and with the current
    tree); purges with reasons and approvals; gate requests and decisions; key rotations;
    votes; retention. The exit code is 1 when integrity FAILED (the report is written anyway).
    The JSON form follows the schema in docs/report.md.

    Examples:

        cortex report --tenant acme --from 2026-01-01 --to 2026-03-31
        cortex report --tenant acme --format html --output acme-2026-q1.html
    """
    chosen = check_format(fmt)
    console = stderr_console()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with (
        open_memory(home, tenant) as memory,
        Progress(*columns, console=console, disable=not console.is_terminal) as progress,
    ):
        task = progress.add_task(_STEPS["scan"], total=None)

        def advance(step: str, done: int, total: int) -> None:
            progress.update(task, description=_STEPS.get(step, step), completed=done, total=total)

        found = memory.report(start=start, end=end, progress=advance)
    text = render(found, chosen)
    if output is None:
        typer.echo(text, nl=False)
    else:
        write_report(output, text)
        typer.echo(f"wrote the report of tenant {found.tenant!r} to {output}", err=True)
    if not found.ok:
        typer.echo(summary_line(found), err=True)
        raise typer.Exit(EXIT_INTEGRITY)
