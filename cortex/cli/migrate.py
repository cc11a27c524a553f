"""The `migrate-store` command: copy every tenant from one store to another, then prove it.

Source and target: a data directory (SQLite) or a PostgreSQL URL, in any combination but the
same store twice. A data directory as the target must be new: it is made with the source's key
files (see `_prepare_directory`). Encrypted stores are refused (see `_refuse_encrypted`).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import apsw
import typer
from rich import box
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from cortex.cli.exit_codes import EXIT_INTEGRITY
from cortex.cli.options import AsJson, Home
from cortex.cli.output import print_json, print_table, stderr_console
from cortex.config import Settings
from cortex.crypto.keys import read_private_file, write_private_file
from cortex.engine import Cortex, init_home
from cortex.errors import ConfigError, Conflict, IntegrityError, StoreError, ValidationError
from cortex.store.postgres import PostgresStore, is_database_url, redact_url
from cortex.store.sqlite import SqliteStore, open_for_reading

__all__ = ["migrate_store"]

_VECTOR_BATCH = 2000


@dataclass(frozen=True, slots=True)
class _Copied:
    """One tenant as copied: its size and Merkle root in the source and in the target."""

    tenant: str
    entries: int
    facts: int
    vectors: int
    source_root: bytes
    target_root: bytes

    @property
    def ok(self) -> bool:
        return self.source_root == self.target_root


def _source_settings(source: str, home: Path | None) -> Settings:
    if is_database_url(source):
        return Settings.load(home, database_url=source, embedder="none")
    settings = Settings.load(Path(source), embedder="none")
    return settings.with_overrides(database_url=None)  # a path means its SQLite file


async def _refuse_encrypted(source: Settings, target: Settings | None) -> None:
    """Raise ConfigError if either store is encrypted at rest.

    The copy goes through a tenant export, which holds plaintext: an encrypted source would
    arrive in the clear, and plaintext rows in an encrypted target would sit beside sealed
    ones. Carrying sealed rows and wrapped data keys across is not implemented.
    """
    for role, settings in (("source", source), ("target", target)):
        if settings is None:
            continue
        if settings.database_url is not None:
            record = await PostgresStore.read_master_record(settings.database_url)
            where = redact_url(settings.database_url)
        else:
            record = await asyncio.to_thread(SqliteStore.read_master_record, settings.database_path)
            where = str(settings.home)
        if record is not None:
            raise ConfigError(
                f"the {role} store {where} is encrypted at rest: migrate-store copies through a"
                " plaintext export and does not carry sealed rows or wrapped data keys, so it"
                " refuses encrypted stores; nothing was copied"
            )


async def _root(engine: Cortex, tenant: str) -> tuple[int, bytes]:
    proof = await engine.consistency_proof(0, tenant=tenant)
    return proof.new_size, proof.new_root


def _prepare_directory(source: Settings, directory: Path) -> Settings:
    """Make `directory` a new data directory for the copy of `source`; its settings.

    The key files come from the source's home: the signing key (the copied checkpoints are
    signed with it, and the target's next ones must be too), the server secret and the API key
    store (the service's keys keep working), the gate key (pending approval tokens stay valid).
    Refused (ValidationError) when the directory already holds a database.
    """
    target = Settings.load(directory, embedder="none").with_overrides(database_url=None)
    if target.home.resolve() == source.home.resolve() and source.database_url is None:
        raise ValidationError("--from and --to name the same store")
    if target.database_path.exists():
        raise ValidationError(
            f"--to {directory}: it already holds a database; the target of a copy must be a new"
            " data directory"
        )
    for name, src, dst in (
        ("signing key", source.signing_key_path, target.signing_key_path),
        ("server secret", source.server_secret_path, target.server_secret_path),
        ("gate key", source.gate_key_path, target.gate_key_path),
    ):
        if src.exists() and not dst.exists():
            write_private_file(dst, read_private_file(src, name, f"{name} {src} is missing"))
    if source.public_key_path.exists() and not target.public_key_path.exists():
        write_private_file(target.public_key_path, source.public_key_path.read_bytes())
        target.public_key_path.chmod(0o644)  # the public half, for auditors
    if source.service_database_path.exists() and not target.service_database_path.exists():
        # SQLite's online backup: a consistent copy even while a server uses the source.
        try:
            reader = open_for_reading(source.service_database_path)
            writer = apsw.Connection(str(target.service_database_path))
            try:
                with writer.backup("main", reader, "main") as backup:
                    backup.step()
            finally:
                writer.close()
                reader.close()
        except apsw.Error as exc:
            raise StoreError(
                f"cannot copy the API keys of {source.service_database_path}: {exc}"
            ) from exc
    init_home(target)
    return target


async def _copy_vectors(
    source: SqliteStore | PostgresStore, target: SqliteStore | PostgresStore, tenant: str
) -> int:
    """Copy the stored vectors of `tenant`, matched by fact id (rowids differ between stores)."""
    after, copied = 0, 0
    while rows := await source.vectors_after(tenant, after, _VECTOR_BATCH):
        facts = await source.facts_by_rowid(tenant, [r for r, _, _ in rows], None)
        copied += await target.import_vectors(
            tenant, [(facts[r].id, model, vector) for r, model, vector in rows if r in facts]
        )
        after = rows[-1][0]
    return copied


async def _open_raw(settings: Settings) -> SqliteStore | PostgresStore:
    if settings.database_url is not None:
        return await PostgresStore.open(settings.database_url, pool_size=2)
    return await SqliteStore.open(settings.database_path, read_threads=1, create=False)


async def _migrate(
    source: Settings, target: Settings, advance: Callable[[str, int, int], None]
) -> list[_Copied]:
    """Copy every tenant of `source` into `target` (an initialised store); check every root.

    `advance(tenant, entries copied, entries in all)` reports progress after each tenant.
    """
    await _refuse_encrypted(source, target)
    copied: list[_Copied] = []
    # Moving the whole store between the operator's own backends is not a tenant export (the
    # gated action that lets data leave): whoever runs this holds the data directory anyway.
    ungated = tuple(action for action in source.gated_actions if action != "export")
    async with (
        await Cortex.open(source.with_overrides(gated_actions=ungated), embedder=None) as src,
        await Cortex.open(target, embedder=None) as dst,
    ):
        tenants = await src.tenants()
        clash = sorted(set(tenants) & set(await dst.tenants()))
        if clash:
            raise Conflict(f"the target already has tenant(s) {', '.join(clash)}; nothing copied")
        total = sum([(await src.stats(tenant=tenant)).transactions for tenant in tenants])
        done = 0
        advance("", 0, total)
        raw_source = await _open_raw(source)
        raw_target = await _open_raw(target)
        try:
            for tenant in tenants:
                with tempfile.TemporaryDirectory(prefix="cortex-migrate-") as tmp:
                    bundle = Path(tmp) / "tenant.jsonl"
                    entries = await src.export(bundle, tenant=tenant)
                    await raw_target.import_bundle(bundle)
                done += entries
                advance(tenant, done, total)
                facts = await dst.reindex(full=True, tenant=tenant)
                vectors = await _copy_vectors(raw_source, raw_target, tenant)
                (_, source_root), (size, target_root) = await asyncio.gather(
                    _root(src, tenant), _root(dst, tenant)
                )
                copied.append(_Copied(tenant, size, facts, vectors, source_root, target_root))
        finally:
            await raw_source.close()
            await raw_target.close()
        report = await dst.verify()
        if not report.ok:
            raise IntegrityError(
                f"the target does not verify after the copy: {report.problems[0].detail}"
            )
    return copied


def migrate_store(
    source: Annotated[
        str,
        typer.Option(
            "--from", metavar="PATH_OR_URL", help="Source: a data directory or postgresql:// URL."
        ),
    ],
    target: Annotated[
        str,
        typer.Option(
            "--to",
            metavar="PATH_OR_URL",
            help="Target: a postgresql:// URL (a database without the source's tenants) or a"
            " new data directory.",
        ),
    ],
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Copy every tenant's facts, ledger and checkpoints to another store, then prove the copy.

    Source and target are each a data directory (SQLite) or a postgresql:// URL: SQLite to
    PostgreSQL, PostgreSQL to another PostgreSQL database or back to SQLite, SQLite to a new
    SQLite file. Entries, facts and checkpoints are copied byte for byte (Merkle subtree hashes
    are rebuilt from the entries), the full-text index is rebuilt and stored vectors are copied,
    with a progress bar on a terminal. Afterwards the target must verify and every tenant's
    Merkle root must equal the source's: the exit code is 1 otherwise. A PostgreSQL target must
    not hold any of the source's tenants yet; a data directory target must not hold a database.

    Keys: with a PostgreSQL target they stay where they are: the signing key of a data directory
    (--from PATH) signs the target's future checkpoints too, so use that directory as
    CORTEX_HOME with the new URL. With --from URL, --home names the directory holding the keys.
    A new data directory as the target gets the source home's signing key, server secret, API
    keys and gate key, so it is a complete home of its own.

    Refused (exit 2 or 4, nothing copied): an encrypted source or target (the copy goes through
    a plaintext export; sealed rows and wrapped keys are not carried).

    Examples:

        cortex migrate-store --from ~/.cortex --to postgresql://cortex@db/cortex
        cortex migrate-store --home ~/.cortex --from postgresql://db1/cortex \\
            --to postgresql://db2/cortex
        cortex migrate-store --home ~/.cortex --from postgresql://db1/cortex --to ~/cortex-local
        CORTEX_HOME=~/.cortex CORTEX_DATABASE_URL=postgresql://cortex@db/cortex cortex stats
    """
    src = _source_settings(source, home)
    if is_database_url(target):
        dst = Settings.load(src.home, database_url=target, embedder="none")
        if src.database_url == dst.database_url:
            raise ValidationError("--from and --to name the same store")
    else:
        asyncio.run(_refuse_encrypted(src, None))  # before the new directory is made
        dst = _prepare_directory(src, Path(target).expanduser())
    console = stderr_console()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(
        *columns, TimeRemainingColumn(), console=console, disable=not console.is_terminal
    ) as progress:
        task = progress.add_task("migrate", total=None)

        def advance(tenant: str, done: int, total: int) -> None:
            label = f"migrate {tenant}" if tenant else "migrate"
            progress.update(task, description=label, completed=done, total=total)

        copied = asyncio.run(_migrate(src, dst, advance))
    if as_json:
        print_json(
            [
                {
                    "tenant": c.tenant,
                    "entries": c.entries,
                    "facts": c.facts,
                    "vectors": c.vectors,
                    "source_root": c.source_root.hex(),
                    "target_root": c.target_root.hex(),
                    "ok": c.ok,
                }
                for c in copied
            ]
        )
    else:
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        for column in ("TENANT", "ENTRIES", "FACTS", "VECTORS", "ROOT", "SAME ROOT"):
            table.add_column(column, no_wrap=True)
        for c in copied:
            table.add_row(
                c.tenant,
                str(c.entries),
                str(c.facts),
                str(c.vectors),
                c.target_root.hex()[:16],
                "yes" if c.ok else "NO",
            )
        print_table(table)
    if not all(c.ok for c in copied):
        raise typer.Exit(EXIT_INTEGRITY)
