"""The `keys` commands: API keys of the REST service; rotation of the encryption keys."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from cortex.cli.gate import ApprovalToken
from cortex.cli.options import AsJson, Home, Project, Tenant, open_memory
from cortex.cli.output import print_json, print_table, stderr_console
from cortex.config import Settings
from cortex.errors import ConfigError

__all__ = ["create", "list_keys", "revoke", "rotate_data", "rotate_master"]

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
    agent: Annotated[
        str | None,
        typer.Option(
            "--agent",
            metavar="NAME",
            help="Bind the key to this agent: it votes as NAME and its facts have NAME as"
            " source; keys not bound to NAME cannot use it.",
        ),
    ] = None,
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

    The key acts for --tenant only (and for --project only, when given). With --agent it acts
    as that agent: votes are cast as NAME, stored facts get source NAME, and no key without
    --agent NAME may use the name (so an agent's reputation is its own). Without --agent the
    key votes as `key-<key id>`. The key goes to stdout, the notes to stderr:
    `KEY=$(cortex keys create --tenant acme)` keeps the key only.

    Examples:

        cortex keys create --tenant acme --role writer --project infra --expires 2027-01-31
        cortex keys create --tenant acme --role writer --agent planner
    """
    from cortex.api.keys import KeyStore

    with KeyStore.open(Settings.load(home)) as store:
        if if_missing:
            now = datetime.now(UTC)
            existing = [
                k
                for k in store.list_keys(tenant)
                if k.role == role
                and k.project == project
                and k.agent == agent
                and k.state(now) == "active"
            ]
            if existing:
                typer.echo(
                    f"tenant {tenant} has an active {role} key ({existing[0].key_id});"
                    " none created (`cortex keys list` shows them)",
                    err=True,
                )
                return
        issued = store.create(tenant, role, project=project, expires=expires, agent=agent)
    if as_json:
        print_json({"key": issued.key, "record": issued.record.to_dict()})
        return
    record = issued.record
    typer.echo(issued.key)
    typer.echo(
        f"key id {record.key_id}: role {record.role}, tenant {record.tenant}"
        + (f", project {record.project}" if record.project else "")
        + (f", agent {record.agent}" if record.agent else "")
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
    columns = ("key_id", "tenant", "role", "project", "agent", "created", "expires", "state")
    table = Table(*(name.replace("_", " ") for name in columns))
    for row in rows:
        table.add_row(*(Text(str(row[name] or "-")) for name in columns))
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


def rotate_master(
    new_passphrase_env: Annotated[
        str | None,
        typer.Option(
            "--new-passphrase-env",
            metavar="VAR",
            help="Derive the new master key from the passphrase in this environment variable"
            " (default: a new random key file).",
        ),
    ] = None,
    approval: ApprovalToken = None,
    tenant: Tenant = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Rotate the master key of an encrypted store: re-wrap every data key, rewrite no fact.

    The current key comes from the key file or passphrase the settings name. The new one is a
    new key file (replacing keys/master.key once the store has committed to it: back it up) or,
    with --new-passphrase-env VAR, the passphrase in $VAR (set passphrase_env to VAR for later
    commands unless VAR is CORTEX_PASSPHRASE). A crash at any point leaves a store that opens
    with the old key or the new one. Logged as a key_rotate ledger event in every tenant.

    Rotation waits for an admin's approval (unless rotate_master is not among gated_actions),
    asked for in --tenant (default: the settings' tenant): the first run prints the approval id
    and exits with code 5; after `cortex gate approve ID`, run it again with --approval TOKEN.

    Examples:

        cortex keys rotate-master --home /srv/vault
        cortex keys rotate-master --home /srv/vault --approval gate1.eyJ...
        NEW_PASS='...' cortex keys rotate-master --new-passphrase-env NEW_PASS
    """
    passphrase = None
    if new_passphrase_env is not None:
        passphrase = os.environ.get(new_passphrase_env)
        if not passphrase:
            raise ConfigError(
                f"--new-passphrase-env {new_passphrase_env}: that variable is not set"
            )
    with open_memory(home, tenant) as memory:
        rotation = memory.rotate_master_key(passphrase=passphrase, approval=approval)
    if as_json:
        print_json(
            {
                "version": rotation.version,
                "source": rotation.source,
                "rewrapped": rotation.rewrapped,
                "tenants": list(rotation.tenants),
            }
        )
        return
    typer.echo(
        f"master key version {rotation.version} ({rotation.source}):"
        f" {rotation.rewrapped} data keys re-wrapped in {len(rotation.tenants)} tenants"
    )
    if rotation.source == "file":
        typer.echo("back up the new key file now: the old one no longer opens the store", err=True)


def rotate_data(
    tenant: Tenant = None,
    batch: Annotated[
        int,
        typer.Option("--batch", metavar="N", help="Facts re-encrypted per write (1-10000)."),
    ] = 500,
    approval: ApprovalToken = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Give a tenant a new data key and re-encrypt its facts with it, with a progress bar.

    The facts are re-encrypted in batches through the writer, so writes go on meanwhile (new
    facts are sealed with the new key). Interrupting it is safe: run it again and it resumes
    with the facts still under the old key. Then the old key is deleted and the rotation is
    logged as a key_rotate ledger event.

    A new rotation waits for an admin's approval (unless rotate_data is not among
    gated_actions): the first run prints the approval id and exits with code 5; after
    `cortex gate approve ID`, run it again with --approval TOKEN. Resuming needs no approval.

    Examples:

        cortex keys rotate-data --tenant acme
        cortex keys rotate-data --tenant acme --approval gate1.eyJ...
    """
    console = stderr_console()
    columns = (TextColumn("re-encrypt"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with (
        open_memory(home, tenant) as memory,
        Progress(*columns, console=console, disable=not console.is_terminal) as progress,
    ):
        task = progress.add_task("re-encrypt", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        rotation = memory.rotate_data_key(progress=advance, batch=batch, approval=approval)
    if as_json:
        print_json(
            {
                "tenant": rotation.tenant,
                "version": rotation.version,
                "resealed": rotation.resealed,
                "retired": rotation.retired,
                "resumed": rotation.resumed,
            }
        )
        return
    verb = "resumed and finished" if rotation.resumed else "rotated"
    typer.echo(
        f"tenant {rotation.tenant}: {verb} to data key version {rotation.version};"
        f" {rotation.resealed} facts re-encrypted, {rotation.retired} old keys deleted"
    )
