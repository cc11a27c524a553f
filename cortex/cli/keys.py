"""The `keys` commands: create, list and revoke API keys of the REST service."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from cortex.cli.options import AsJson, Home, Project
from cortex.cli.output import print_json, print_table
from cortex.config import Settings

__all__ = ["create", "list_keys", "revoke"]

Role = Annotated[
    str,
    typer.Option(
        "--role", metavar="ROLE", help="reader (reads), writer (+ writes) or admin (+ keys)."
    ),
]
TenantName = Annotated[str, typer.Option("--tenant", metavar="NAME", help="Tenant of the key.")]
Expires = Annotated[
    datetime | None,
    typer.Option(
        "--expires",
        metavar="DATE",
        formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"],
        help="Expiry instant (UTC unless an offset is given), e.g. 2027-01-31.",
    ),
]


def create(
    tenant: TenantName,
    role: Role = "reader",
    project: Project = None,
    expires: Expires = None,
    if_missing: Annotated[
        bool,
        typer.Option(
            "--if-missing", help="Create nothing if the tenant has an active key of this role."
        ),
    ] = False,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Create an API key and print it once: only its HMAC is stored, it cannot be shown again.

    The key acts for --tenant only (and for --project only, when given). The key goes to
    stdout, the notes to stderr: `KEY=$(cortex keys create --tenant acme)` keeps the key only.

    Example: cortex keys create --tenant acme --role writer --project infra --expires 2027-01-31
    """
    from cortex.api.keys import KeyStore

    with KeyStore.open(Settings.load(home)) as store:
        if if_missing:
            now = datetime.now(UTC)
            existing = [
                k
                for k in store.list_keys(tenant)
                if k.role == role and k.project == project and k.state(now) == "active"
            ]
            if existing:
                typer.echo(
                    f"tenant {tenant} has an active {role} key ({existing[0].key_id});"
                    " none created (`cortex keys list` shows them)",
                    err=True,
                )
                return
        issued = store.create(tenant, role, project=project, expires=expires)
    if as_json:
        print_json({"key": issued.key, "record": issued.record.to_dict()})
        return
    record = issued.record
    typer.echo(issued.key)
    typer.echo(
        f"key id {record.key_id}: role {record.role}, tenant {record.tenant}"
        + (f", project {record.project}" if record.project else "")
        + (f", expires {record.to_dict()['expires']}" if record.expires else ""),
        err=True,
    )
    typer.echo(
        "shown once: store it now. Use it as:\n"
        f"  curl -H 'Authorization: Bearer {issued.key}' http://127.0.0.1:8420/v1/facts\n"
        f"  cortex.client.Client('http://127.0.0.1:8420', '{issued.key}')",
        err=True,
    )


def list_keys(
    tenant: Annotated[
        str | None, typer.Option("--tenant", metavar="NAME", help="Only this tenant's keys.")
    ] = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """List API keys (ids, tenants, roles, projects, states; never the keys themselves).

    Example: cortex keys list --tenant acme
    """
    from cortex.api.keys import KeyStore

    with KeyStore.open(Settings.load(home)) as store:
        records = store.list_keys(tenant)
    rows = [record.to_dict() for record in records]
    if as_json:
        print_json(rows)
        return
    table = Table("key id", "tenant", "role", "project", "created", "expires", "state")
    for row in rows:
        table.add_row(
            *(
                Text(str(row[name] or "-"))
                for name in ("key_id", "tenant", "role", "project", "created", "expires", "state")
            )
        )
    print_table(table)


def revoke(
    key_id: Annotated[str, typer.Argument(metavar="KEY_ID", help="The key id to revoke.")],
    home: Home = None,
) -> None:
    """Revoke an API key: a running server refuses it within key_cache_seconds (default 5 s).

    Example: cortex keys revoke 9f2c4e1a7b3d5f60
    """
    from cortex.api.keys import KeyStore

    with KeyStore.open(Settings.load(home)) as store:
        record = store.revoke(key_id)
    typer.echo(f"revoked {record.key_id} (tenant {record.tenant}, role {record.role})")
