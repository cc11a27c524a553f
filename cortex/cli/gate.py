"""The `gate` commands: list, approve and deny the approvals that risky actions wait for."""

from __future__ import annotations

import shlex
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from cortex.cli.options import AsJson, Home, Tenant, open_memory
from cortex.cli.output import print_json, print_table
from cortex.gate import Approval

__all__ = ["ApprovalToken", "approve", "deny", "list_approvals", "rerun_hint"]

ApprovalToken = Annotated[
    str | None,
    typer.Option(
        "--approval",
        metavar="TOKEN",
        help="The token `cortex gate approve ID` printed for this very request.",
    ),
]

ApprovalId = Annotated[
    str, typer.Argument(metavar="ID", help="The approval id (from `cortex gate list`).")
]
Reason = Annotated[
    str | None,
    typer.Option("--reason", "-r", metavar="TEXT", help="Why (kept in the ledger)."),
]
Actor = Annotated[
    str,
    typer.Option("--actor", metavar="NAME", help="Who decides (kept in the ledger)."),
]


def list_approvals(
    include_all: Annotated[
        bool, typer.Option("--all", help="Also denied, used and expired approvals.")
    ] = False,
    home: Home = None,
    tenant: Tenant = None,
    as_json: AsJson = False,
) -> None:
    """List the tenant's approvals that wait for a decision or for their token to be used.

    Each line shows the action and its parameters (what approving it would allow), who asked,
    and until when it can be approved and used.

    Examples:

        cortex gate list
        cortex gate list --all --tenant acme --json
    """
    with open_memory(home, tenant) as memory:
        found = memory.approvals(include_all=include_all)
    if as_json:
        print_json([a.to_dict() for a in found])
        return
    if not found:
        state = "" if include_all else " pending"
        typer.echo(f"no approvals{state} in tenant '{memory.settings.tenant}'", err=True)
        return
    table = Table("id", "state", "action", "params", "requested by", "expires at", "decided by")
    for a in found:
        params = ", ".join(f"{k}={v}" for k, v in sorted(a.params.items()))
        table.add_row(
            *(
                Text(value or "-")
                for value in (
                    a.id,
                    a.state,
                    a.action,
                    params,
                    a.requested_by,
                    a.expires_at,
                    a.decided_by,
                )
            )
        )
    print_table(table)


def rerun_hint(approval: Approval, token: str) -> str:
    """The command that runs an approved action with its token (a pattern for other actions)."""
    params: dict[str, Any] = dict(approval.params)
    quoted = shlex.quote(token)
    tail = f"--approval {quoted} --tenant {approval.tenant}"
    if approval.action == "purge":
        words = ["cortex", "purge", str(params.get("fact_id")), "--reason"]
        words.append(str(params.get("reason")))
        extra = " --all-versions" if params.get("all_versions") else ""
        return f"{shlex.join(words)}{extra} {tail}"
    if approval.action == "export":
        return f"cortex export PATH {tail}"
    if approval.action == "rotate_data":
        return f"cortex keys rotate-data {tail}"
    if approval.action == "rotate_master":
        new_key = " --new-passphrase-env VAR" if params.get("source") == "passphrase" else ""
        return f"cortex keys rotate-master{new_key} {tail}"
    return f"re-run the {approval.action} request with approval {quoted}"


def approve(
    approval_id: ApprovalId,
    reason: Reason = None,
    actor: Actor = "cli",
    home: Home = None,
    tenant: Tenant = None,
    as_json: AsJson = False,
) -> None:
    """Approve a pending approval and print its token, once: the action runs with it.

    The token goes to stdout (`TOKEN=$(cortex gate approve ID)` keeps it), the command to re-run
    to stderr. It works once, for that action with those parameters, until the approval expires.

    Example: cortex gate approve 01JQ3ZK4W8M2T6X9B1C5D7E0FG --reason "GDPR request #42 checked"
    """
    with open_memory(home, tenant) as memory:
        decision = memory.approve(approval_id, reason=reason, actor=actor)
    assert decision.token is not None
    if as_json:
        print_json(decision.to_dict())
        return
    typer.echo(decision.token)
    approval = decision.approval
    typer.echo(
        f"approved {approval.id} ({approval.action}); the token above is shown once and works"
        f" once, until {approval.expires_at}. Run:\n  {rerun_hint(approval, decision.token)}",
        err=True,
    )


def deny(
    approval_id: ApprovalId,
    reason: Reason = None,
    actor: Actor = "cli",
    home: Home = None,
    tenant: Tenant = None,
    as_json: AsJson = False,
) -> None:
    """Deny a pending approval: its action may not run (asking again makes a new approval).

    Example: cortex gate deny 01JQ3ZK4W8M2T6X9B1C5D7E0FG --reason "not a valid erasure request"
    """
    with open_memory(home, tenant) as memory:
        decision = memory.deny(approval_id, reason=reason, actor=actor)
    if as_json:
        print_json(decision.to_dict())
        return
    typer.echo(f"denied {decision.approval.id} ({decision.approval.action})")
