"""The `cortex` Typer application: every command, registered with its error-to-exit-code mapping."""

from __future__ import annotations

from collections.abc import Callable

import typer

from cortex.cli import (
    consensus,
    facts,
    gate,
    home,
    keys,
    ledger,
    mcp,
    migrate,
    purge,
    scan,
    search,
    serve,
)
from cortex.cli.exit_codes import reports_errors
from cortex.cli.report import report

__all__ = ["app", "main"]

_COMMANDS: tuple[tuple[str, Callable[..., None]], ...] = (
    ("init", home.init),
    ("store", facts.store),
    ("get", facts.get),
    ("list", facts.list_facts),
    ("deprecate", facts.deprecate),
    ("supersede", facts.supersede),
    ("history", facts.history),
    ("purge", purge.purge),
    ("search", search.search),
    ("vote", consensus.vote),
    ("consensus", consensus.consensus),
    ("reputation", consensus.reputation),
    ("reindex", search.reindex),
    ("verify", ledger.verify),
    ("proof", ledger.proof),
    ("consistency", ledger.consistency),
    ("checkpoint", ledger.checkpoint),
    ("export", ledger.export),
    ("verify-export", ledger.verify_export),
    ("stats", ledger.stats),
    ("report", report),
    ("scan", scan.scan),
    ("mcp", mcp.mcp),
    ("serve", serve.serve),
    ("migrate-store", migrate.migrate_store),
)
_KEYS_COMMANDS: tuple[tuple[str, Callable[..., None]], ...] = (
    ("create", keys.create),
    ("list", keys.list_keys),
    ("revoke", keys.revoke),
    ("rotate-master", keys.rotate_master),
    ("rotate-data", keys.rotate_data),
)

_GATE_COMMANDS: tuple[tuple[str, Callable[..., None]], ...] = (
    ("list", gate.list_approvals),
    ("approve", gate.approve),
    ("deny", gate.deny),
)

app = typer.Typer(
    name="cortex",
    help=(
        "CORTEX: tamper-evident memory for AI agents. Every command takes --home DIR (or the"
        " CORTEX_HOME environment variable; default ~/.cortex); data commands take --tenant."
        " Exit codes: 0 ok, 1 integrity failure, 2 usage error, 3 not found, 4 other error,"
        " 5 approval required (see `cortex gate`)."
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
    help=(
        "API keys of the REST service: create (shown once), list, revoke. Encryption keys of"
        " an encrypted store: rotate-master, rotate-data."
    ),
    no_args_is_help=True,
)
for _name, _command in _KEYS_COMMANDS:
    keys_app.command(_name)(reports_errors(_command, f"keys {_name}"))
app.add_typer(keys_app)
gate_app = typer.Typer(
    name="gate",
    help=(
        "The approval gate: risky actions (purge, export, bulk deprecation, key rotation) wait"
        " for an admin. list, approve (prints a single-use token), deny."
    ),
    no_args_is_help=True,
)
for _name, _command in _GATE_COMMANDS:
    gate_app.command(_name)(reports_errors(_command, f"gate {_name}"))
app.add_typer(gate_app)


def main() -> None:
    """Run the `cortex` command line (the console script's entry point)."""
    app(prog_name="cortex")
