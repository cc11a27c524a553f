"""The `migrate-store` command: copy every tenant from one store to another, then prove it.

Sources: a data directory (SQLite) or a PostgreSQL URL. Target: a PostgreSQL URL. A SQLite
target is refused: the SQLite store can load a bundle only for verification (no Merkle subtree
hashes, no tag index, no clock), so the copy would not be a working store. Encrypted stores are
refused too (see `_refuse_encrypted`).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from cortex.cli.exit_codes import EXIT_INTEGRITY
from cortex.cli.options import AsJson, Home
from cortex.cli.output import print_json, print_table, stderr_console
from cortex.config import Settings
from cortex.engine import Cortex
from cortex.errors import ConfigError, Conflict, IntegrityError, ValidationError
from cortex.store.postgres import PostgresStore, is_database_url, redact_url
from cortex.store.sqlite import SqliteStore

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


async def _refuse_encrypted(source: Settings, target: Settings) -> None:
    """Raise ConfigError if either store is encrypted at rest.

    The copy goes through a tenant export, which holds plaintext: an encrypted source would
    arrive in the clear, and plaintext rows in an encrypted target would sit beside sealed
    ones. Carrying sealed rows and wrapped data keys across is not implemented.
    """
    for role, settings in (("source", source), ("target", target)):
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


async def _copy_vectors(
    source: SqliteStore | PostgresStore, target: PostgresStore, tenant: str
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
    """Copy every tenant of `source` into `target` (PostgreSQL); check every root.

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
        raw_target = await PostgresStore.open(str(target.database_url), pool_size=2)
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
            metavar="URL",
            help="Target: a postgresql:// URL (a database without the source's tenants).",
        ),
    ],
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Copy every tenant's facts, ledger and checkpoints to another store, then prove the copy.

    The source is a data directory (SQLite) or a postgresql:// URL; the target a postgresql://
    URL (SQLite to PostgreSQL, or PostgreSQL to another PostgreSQL database). Entries, facts and
    checkpoints are copied byte for byte (Merkle subtree hashes are rebuilt from the entries),
    the full-text index is rebuilt and stored vectors are copied, with a progress bar on a
    terminal. Afterwards the target must verify and every tenant's Merkle root must equal the
    source's: the exit code is 1 otherwise. The target must not hold any of the source's
    tenants yet.

    Refused (exit 2 or 4, nothing copied): a data directory as the target (the SQLite store
    cannot restore a ledger with its Merkle subtree hashes yet), and an encrypted source or
    target (the copy goes through a plaintext export; sealed rows and wrapped keys are not
    carried).

    Keys stay where they are: the signing key of a data directory (--from PATH) signs the
    target's future checkpoints too, so use that directory as CORTEX_HOME with the new URL. With
    --from URL, --home names the directory holding the signing key.

    Examples:

        cortex migrate-store --from ~/.cortex --to postgresql://cortex@db/cortex
        cortex migrate-store --home ~/.cortex --from postgresql://db1/cortex \\
            --to postgresql://db2/cortex
        CORTEX_HOME=~/.cortex CORTEX_DATABASE_URL=postgresql://cortex@db/cortex cortex stats
    """
    if not is_database_url(target):
        raise ValidationError(
            f"--to {target}: the target must be a postgresql:// URL; copying into a SQLite data"
            " directory is not supported (its store loads a bundle for verification only, without"
            " Merkle subtree hashes or the tag index, so the copy would not be a working store)"
        )
    src = _source_settings(source, home)
    dst = Settings.load(src.home, database_url=target, embedder="none")
    if src.database_url == dst.database_url:
        raise ValidationError("--from and --to name the same store")
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
