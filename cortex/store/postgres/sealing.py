"""Encryption at rest in PostgreSQL: the master key record, wrapped data keys, sealed fact rows.

The same contract as `cortex.store.sqlite.sealing`, over psycopg's async cursors. A tenant's
current data key version is read in each write group under the tenant's row lock, so servers
sharing the database always seal with the key that is current; creating a tenant's key reads
the master record `FOR SHARE`, so it waits for (and then refuses to race) a master rotation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg import AsyncCursor

from cortex.errors import ConfigError, Conflict
from cortex.store.base import FieldCipher, MasterRecord, WrappedKey, open_fact_fields

__all__ = [
    "create_data_key",
    "current_key_versions",
    "data_keys",
    "load_keys",
    "load_tenant_keys",
    "read_master_record",
    "reseal_facts",
    "retire_data_keys",
    "set_master_key",
    "stale_rowids",
]

Row = tuple[Any, ...]


async def _rows(cur: AsyncCursor[Row], sql: str, params: Sequence[Any] = ()) -> list[Row]:
    await cur.execute(sql, params)
    return await cur.fetchall()


async def read_master_record(
    cur: AsyncCursor[Row], *, for_share: bool = False
) -> MasterRecord | None:
    """The master key record, or None for a plaintext store."""
    lock = " FOR SHARE" if for_share else ""
    rows = await _rows(
        cur, f"SELECT version, source, kdf, check_value FROM crypto_master WHERE id = 1{lock}"
    )
    if not rows:
        return None
    version, source, kdf, check = rows[0]
    return MasterRecord(int(version), source, kdf, bytes(check))


async def read_master_record_at(url: str, timeout: float) -> MasterRecord | None:
    """The record of the database at `url` before it is opened (None: plaintext or no schema)."""
    async with await psycopg.AsyncConnection.connect(
        url, autocommit=True, connect_timeout=max(1, int(timeout))
    ) as conn:
        found = await conn.execute("SELECT to_regclass('crypto_master')")
        row = await found.fetchone()
        if row is None or row[0] is None:
            return None
        async with conn.cursor() as cur:
            return await read_master_record(cur)


async def current_key_versions(cur: AsyncCursor[Row], tenant_ids: Sequence[int]) -> dict[int, int]:
    """The current (highest) data key version of each tenant that has one."""
    if not tenant_ids:
        return {}
    rows = await _rows(
        cur,
        "SELECT tenant_id, max(version) FROM data_keys WHERE tenant_id = ANY(%s)"
        " GROUP BY tenant_id",
        (list(tenant_ids),),
    )
    return {int(t): int(v) for t, v in rows}


async def load_keys(
    cur: AsyncCursor[Row], cipher: FieldCipher | None, wanted: Iterable[tuple[str, int | None]]
) -> None:
    """Load the (tenant, version) data keys the cipher does not hold yet (None: in the clear)."""
    if cipher is None:
        return
    missing = {(t, v) for t, v in wanted if v is not None and not cipher.has_key(t, v)}
    if not missing:
        return
    names = sorted({t for t, _ in missing})
    for name, version, wrapped in await _rows(
        cur,
        "SELECT t.name, k.version, k.wrapped FROM data_keys k JOIN tenants t ON t.id = k.tenant_id"
        " WHERE t.name = ANY(%s)",
        (names,),
    ):
        if (name, int(version)) in missing:
            cipher.load_key(name, int(version), bytes(wrapped))
            missing.discard((name, int(version)))
    if missing:
        tenant, version = sorted(missing)[0]
        raise ConfigError(
            f"data key {version} of tenant {tenant!r} is not in the store: facts sealed with it"
            " cannot be read"
        )


async def load_tenant_keys(cur: AsyncCursor[Row], cipher: FieldCipher | None, tenant: str) -> None:
    """Load every stored data key of `tenant` that the cipher does not hold yet."""
    if cipher is None:
        return
    for version, wrapped in await _rows(
        cur,
        "SELECT k.version, k.wrapped FROM data_keys k JOIN tenants t ON t.id = k.tenant_id"
        " WHERE t.name = %s",
        (tenant,),
    ):
        if not cipher.has_key(tenant, int(version)):
            cipher.load_key(tenant, int(version), bytes(wrapped))


async def create_data_key(
    cur: AsyncCursor[Row],
    cipher: FieldCipher,
    tenant: str,
    tenant_id: int,
    version: int,
    now: int,
) -> None:
    """Create data key `version` of the tenant (refused if the master key was rotated since)."""
    record = await read_master_record(cur, for_share=True)
    if record is None or record.check != cipher.check:
        raise ConfigError(
            "the store's master key changed since this process opened it (a rotation by another"
            " process); reopen with the new key"
        )
    await cur.execute(
        "INSERT INTO data_keys(tenant_id, version, wrapped, created_at) VALUES (%s, %s, %s, %s)",
        (tenant_id, version, cipher.new_key(tenant, version), now),
    )


async def stale_rowids(
    cur: AsyncCursor[Row], tenant_id: int, after_rowid: int, limit: int | None
) -> list[int]:
    """Rowids above `after_rowid` of the tenant's facts sealed with an older key than current."""
    current = (await current_key_versions(cur, [tenant_id])).get(tenant_id)
    if current is None:
        return []
    sql = (
        "SELECT rowid_ FROM facts WHERE tenant_id = %s AND rowid_ > %s AND key_version < %s"
        " ORDER BY rowid_"
    )
    params: list[Any] = [tenant_id, after_rowid, current]
    if limit is not None:
        sql += " LIMIT %s"
        params.append(limit)
    return [int(r[0]) for r in await _rows(cur, sql, params)]


async def reseal_facts(
    cur: AsyncCursor[Row],
    cipher: FieldCipher,
    tenant: str,
    tenant_id: int,
    current: int,
    rowids: Sequence[int],
) -> int:
    """Seal the named facts of the tenant again under key `current`; return how many changed."""
    rows = await _rows(
        cur,
        "SELECT rowid_, id, key_version, content, meta FROM facts"
        " WHERE tenant_id = %s AND rowid_ = ANY(%s) AND key_version < %s",
        (tenant_id, list(rowids), current),
    )
    await load_keys(cur, cipher, [(tenant, current), *((tenant, int(r[2])) for r in rows)])
    changed = []
    for rowid, fact_id, version, content, meta in rows:
        plain, meta_json = open_fact_fields(cipher, tenant, fact_id, version, content, meta)
        changed.append(
            (
                int(rowid),
                cipher.seal(tenant, current, fact_id, "content", plain),
                cipher.seal(tenant, current, fact_id, "meta", meta_json),
            )
        )
    if changed:
        await cur.execute(
            "UPDATE facts f SET content = u.c, meta = u.m, key_version = %s"
            " FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS u(r, c, m)"
            " WHERE f.rowid_ = u.r",
            (
                current,
                [c[0] for c in changed],
                [c[1] for c in changed],
                [c[2] for c in changed],
            ),
        )
    return len(changed)


async def retire_data_keys(cur: AsyncCursor[Row], tenant_id: int, current: int) -> int:
    """Delete the tenant's data keys older than `current` that no fact row uses."""
    await cur.execute(
        "DELETE FROM data_keys k WHERE k.tenant_id = %s AND k.version < %s"
        " AND NOT EXISTS (SELECT 1 FROM facts f WHERE f.tenant_id = k.tenant_id"
        " AND f.key_version = k.version)",
        (tenant_id, current),
    )
    return int(cur.rowcount)


async def data_keys(cur: AsyncCursor[Row], tenant: str | None) -> list[WrappedKey]:
    """Every wrapped data key (of `tenant`, when given), by tenant name and version."""
    sql = (
        "SELECT t.name, k.version, k.wrapped FROM data_keys k JOIN tenants t ON t.id = k.tenant_id"
    )
    params: tuple[Any, ...] = ()
    if tenant is not None:
        sql += " WHERE t.name = %s"
        params = (tenant,)
    sql += " ORDER BY t.name, k.version"
    return [WrappedKey(n, int(v), bytes(w)) for n, v, w in await _rows(cur, sql, params)]


async def set_master_key(
    cur: AsyncCursor[Row],
    record: MasterRecord,
    previous: bytes | None,
    rewrapped: Iterable[WrappedKey],
    now: int,
) -> int:
    """Record a master key (inside the caller's transaction); see `Store.set_master_key`."""
    keys = list(rewrapped)
    if previous is None:
        if await _rows(cur, "SELECT 1 FROM tenants LIMIT 1"):
            raise Conflict(
                "the store already holds data in the clear: encryption is chosen when a store is"
                " created (cortex init --encrypt on a new database)"
            )
        if keys:
            raise Conflict("a new master key has no data keys to re-wrap")
        await cur.execute(
            "INSERT INTO crypto_master(id, version, source, kdf, check_value, created_at)"
            " VALUES (1, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
            (record.version, record.source, record.kdf, record.check, now),
        )
        if cur.rowcount != 1:
            raise Conflict("the store is already encrypted")
        return 0
    rows = await _rows(cur, "SELECT check_value FROM crypto_master WHERE id = 1 FOR UPDATE")
    if not rows:
        raise Conflict("the store is not encrypted: there is no master key to rotate")
    if bytes(rows[0][0]) != previous:
        raise Conflict("the master key was rotated meanwhile (by another process); retry")
    await cur.execute("LOCK TABLE data_keys IN EXCLUSIVE MODE")
    current = {(k.tenant, k.version) for k in await data_keys(cur, None)}
    if current != {(k.tenant, k.version) for k in keys} or len(keys) != len(current):
        raise Conflict("the set of data keys changed during the rotation; retry")
    if keys:
        await cur.execute(
            "UPDATE data_keys k SET wrapped = u.w FROM unnest(%s::text[], %s::integer[],"
            " %s::bytea[]) AS u(n, v, w), tenants t"
            " WHERE t.name = u.n AND k.tenant_id = t.id AND k.version = u.v",
            ([k.tenant for k in keys], [k.version for k in keys], [k.wrapped for k in keys]),
        )
    await cur.execute(
        "UPDATE crypto_master SET version = %s, source = %s, kdf = %s, check_value = %s,"
        " created_at = %s WHERE id = 1",
        (record.version, record.source, record.kdf, record.check, now),
    )
    return len(keys)
