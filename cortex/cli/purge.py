"""The `purge` command: destroy a fact's content for good, keeping its ledger entries."""

from __future__ import annotations

from typing import Annotated

import typer

from cortex.cli.gate import ApprovalToken
from cortex.cli.options import AsJson, Home, Tenant, open_memory
from cortex.cli.output import print_json

__all__ = ["purge"]


def purge(
    fact_id: Annotated[str, typer.Argument(metavar="ID", help="Fact id.", show_default=False)],
    reason: Annotated[
        str,
        typer.Option("--reason", "-r", metavar="TEXT", help="Why it must be erased (logged)."),
    ],
    approval: ApprovalToken = None,
    all_versions: Annotated[
        bool,
        typer.Option("--all-versions", help="Purge every version of its supersession chain."),
    ] = False,
    actor: Annotated[
        str, typer.Option("--actor", metavar="NAME", help="Who purges (kept in the ledger).")
    ] = "cli",
    home: Home = None,
    tenant: Tenant = None,
    as_json: AsJson = False,
) -> None:
    """Erase a fact (right to erasure): its content, tags and meta are destroyed for good.

    Its ledger entries stay, so `cortex verify` still passes and counts it as purged; `get`,
    `list --all` and `history` show it as "purged" with empty content; search never finds it.
    Only this version is purged: add --all-versions for the versions it superseded or that
    superseded it. Purging waits for an admin's approval (unless `purge` is not among
    gated_actions): the first run prints the approval id and exits with code 5; once
    `cortex gate approve ID` printed a token, run the same command again with --approval TOKEN.

    Examples:

        cortex purge 01JNZ3Q8V4K2M7T9X1B5C6D8EF --reason "GDPR art. 17 request #42"
        cortex purge 01JNZ3Q8V4K2M7T9X1B5C6D8EF --reason "GDPR art. 17 request #42" \\
            --approval gate1.eyJ...
    """
    with open_memory(home, tenant) as memory:
        purged = memory.purge(
            fact_id, reason, approval=approval, all_versions=all_versions, actor=actor
        )
    if as_json:
        print_json([fact.to_dict() for fact in purged])
        return
    for fact in purged:
        typer.echo(f"purged {fact.id}")
