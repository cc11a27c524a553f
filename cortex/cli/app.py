"""The `cortex` Typer application: every command, registered with its error-to-exit-code mapping."""

from __future__ import annotations

from collections.abc import Callable

import typer

from cortex.cli import facts, home, keys, ledger, mcp, migrate, scan, search, serve
from cortex.cli.exit_codes import reports_errors

__all__ = ["app", "main"]

_COMMANDS: tuple[tuple[str, Callable[..., None]], ...] = (
    ("init", home.init),
    ("store", facts.store),
    ("get", facts.get),
    ("list", facts.list_facts),
    ("deprecate", facts.deprecate),
    ("supersede", facts.supersede),
    ("history", facts.history),
    ("search", search.search),
    ("reindex", search.reindex),
    ("verify", ledger.verify),
    ("proof", ledger.proof),
    ("consistency", ledger.consistency),
    ("checkpoint", ledger.checkpoint),
    ("export", ledger.export),
    ("verify-export", ledger.verify_export),
    ("stats", ledger.stats),
    ("scan", scan.scan),
    ("mcp", mcp.mcp),
    ("serve", serve.serve),
    ("migrate-store", migrate.migrate_store),
)
_KEYS_COMMANDS: tuple[tuple[str, Callable[..., None]], ...] = (
    ("create", keys.create),
    ("list", keys.list_keys),
    ("revoke", keys.revoke),
)

app = typer.Typer(
    name="cortex",
    help=(
        "CORTEX: tamper-evident memory for AI agents. Every command takes --home DIR (or the"
        " CORTEX_HOME environment variable; default ~/.cortex); data commands take --tenant."
        " Exit codes: 0 ok, 1 integrity failure, 2 usage error, 3 not found, 4 other error."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="markdown",
)
for _name, _command in _COMMANDS:
    app.command(_name)(reports_errors(_command, _name))
keys_app = typer.Typer(
    name="keys",
    help="API keys of the REST service: create (shown once), list, revoke.",
    no_args_is_help=True,
)
for _name, _command in _KEYS_COMMANDS:
    keys_app.command(_name)(reports_errors(_command, f"keys {_name}"))
app.add_typer(keys_app)


def main() -> None:
    """Run the `cortex` command line (the console script's entry point)."""
    app(prog_name="cortex")
