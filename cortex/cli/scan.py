"""The `scan` command: run the privacy shield on a file or stdin without storing anything."""

from __future__ import annotations

from pathlib import PurePath
from typing import Annotated, Literal

import typer
from rich import box
from rich.table import Table

from cortex.cli.options import AsJson, Home, Tenant
from cortex.cli.output import print_json, print_table
from cortex.config import Settings
from cortex.errors import ValidationError
from cortex.shield import Shield, Syntax, Verdict, position

__all__ = ["MAX_SCAN_BYTES", "scan"]

MAX_SCAN_BYTES = 64 * 1024 * 1024
"""The most `cortex scan` reads; split larger inputs."""

EXIT_BLOCKED = 1

# Source files by suffix: where a bare name is a variable, so `password = value` holds a secret
# only as a string literal (`code`), and the C family, where '…' is a character (`c`). Anything
# else (prose, Markdown, configuration, shell, Go's `:=` with bare values) is scanned as text.
_C_SUFFIXES = frozenset(
    {".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".hh", ".hxx", ".cs", ".m", ".mm"}
)
_CODE_SUFFIXES = frozenset(
    {".py", ".pyi", ".js", ".mjs", ".cjs", ".jsx", ".ts", ".tsx", ".java", ".kt", ".kts",
     ".scala", ".groovy", ".rb", ".php", ".swift", ".rs", ".dart", ".lua", ".tf"}
)  # fmt: skip


def syntax_of(name: str) -> Syntax:
    """The syntax `cortex scan` assumes for a file named `name` (stdin, `<stdin>`: text)."""
    suffix = PurePath(name).suffix.lower()
    if suffix in _C_SUFFIXES:
        return "c"
    if suffix in _CODE_SUFFIXES:
        return "code"
    return "text"


def _rows(text: str, verdicts: tuple[Verdict, ...]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for verdict in verdicts:
        finding = verdict.finding
        line, column = position(text, finding.start)
        rows.append(
            {
                "kind": finding.kind,
                "category": finding.category,
                "line": line,
                "column": column,
                "start": finding.start,
                "end": finding.end,
                "action": verdict.action,
            }
        )
    return rows


def _table(rows: list[dict[str, object]]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ("KIND", "CATEGORY", "LINE:COL", "LENGTH", "ACTION"):
        table.add_column(name, no_wrap=True)
    for row in rows:
        length = int(str(row["end"])) - int(str(row["start"]))
        table.add_row(
            str(row["kind"]),
            str(row["category"]),
            f"{row['line']}:{row['column']}",
            str(length),
            str(row["action"]),
        )
    return table


def scan(
    file: Annotated[
        typer.FileBinaryRead,
        typer.Argument(metavar="FILE", help="Text file to scan; '-' reads stdin."),
    ],
    project: Annotated[
        str,
        typer.Option("--project", "-p", metavar="NAME", help="Project whose policy applies."),
    ] = "default",
    syntax: Annotated[
        Literal["auto", "text", "code", "c"],
        typer.Option(
            "--syntax",
            help=(
                "What FILE is. text: any value assigned to a secret-sounding name counts;"
                " code: only a quoted string literal does (a bare name is a variable); c: only"
                " a double-quoted one ('x' is a character). auto (default): c for C, C++, C#"
                " and Objective-C files, code for Python, JavaScript, TypeScript, Java, Kotlin,"
                " Ruby, PHP, Swift, Rust and the like (by suffix), text otherwise and for stdin."
            ),
        ),
    ] = "auto",
    home: Home = None,
    tenant: Tenant = None,
    as_json: AsJson = False,
) -> None:
    """Scan FILE (or stdin) for secrets and personal data as a write would be; store nothing.

    Prints each finding's kind, category (secret or pii), LINE:COL, length and the action the
    [shield] policy of the tenant and project would take: block, redact or allow. The matched
    values are never printed. Exit code 1 when anything would be blocked (so it fits in a
    pre-commit hook or CI step), 0 otherwise; 2 for a usage error or input over 64 MiB; 4 for a
    malformed [shield] policy. The policy comes from cortex.toml in the data directory, which
    need not be initialised. See docs/shield.md for the detectors and the policy.

    Example:

        cortex scan notes.md

        cortex scan src/settings.py     # code: `password = other_name` is no secret

        git diff | cortex scan - --json --tenant acme --project billing
    """
    data = file.read(MAX_SCAN_BYTES + 1)
    if len(data) > MAX_SCAN_BYTES:
        raise ValidationError(
            f"input is larger than {MAX_SCAN_BYTES // (1024 * 1024)} MiB; split it and scan"
            " the parts"
        )
    text = data.decode("utf-8", errors="replace")
    settings = Settings.load(home, tenant=tenant)
    chosen: Syntax = syntax_of(str(getattr(file, "name", ""))) if syntax == "auto" else syntax
    verdicts = Shield(settings.shield).inspect(
        text, tenant=settings.tenant, project=project, syntax=chosen
    )
    rows = _rows(text, verdicts)
    blocked = sum(1 for v in verdicts if v.action == "block")
    if as_json:
        print_json(
            {
                "findings": rows,
                "blocked": blocked,
                "redacted": sum(1 for v in verdicts if v.action == "redact"),
                "allowed": sum(1 for v in verdicts if v.action == "allow"),
                "characters": len(text),
            }
        )
    elif rows:
        print_table(_table(rows))
    else:
        typer.echo("no secrets or personal data found")
    if blocked:
        raise typer.Exit(EXIT_BLOCKED)
