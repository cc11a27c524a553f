"""Encryption at rest in SQLite: the master key record, wrapped data keys, sealed fact rows.

The SQL of the `FieldCipher` side of the store (see `cortex.store.base.FieldCipher`): which data
key is current for a tenant (read inside the write transaction, so processes sharing the file
agree), loading wrapped keys into the cipher, re-sealing rows under the current key, retiring
keys no row uses any more, and recording (or rotating) the master key. The cipher does the
cryptography; nothing here sees a key in the clear.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import apsw

from cortex.errors import ConfigError, Conflict, NotFound
from cortex.store.base import FieldCipher, MasterRecord, WrappedKey, open_fact_fields

__all__ = [
    "FactOpener",
    "create_data_key",
    "current_key_version",
    "data_keys",
    "load_tenant_keys",
    "read_master_record",
    "reseal_facts",
    "retire_data_keys",
    "set_master_key",
    "stale_rowids",
]


def read_master_record(conn: apsw.Connection) -> MasterRecord | None:
    """The master key record, or None for a plaintext store (or a schema before encryption)."""
    try:
        rows = list(
            conn.execute("SELECT version, source, kdf, check_value FROM crypto_master WHERE id = 1")
        )
    except apsw.SQLError:
        return None  # no crypto_master table yet: a database from before migration 3
    if not rows:
        return None
    version, source, kdf, check = rows[0]
    return MasterRecord(int(version), source, kdf, bytes(check))


def current_key_version(conn: apsw.Connection, tenant_id: int) -> int | None:
    """The tenant's current (highest) data key version, None when it has none."""
    value = list(
        conn.execute("SELECT max(version) FROM data_keys WHERE tenant_id = ?", (tenant_id,))
    )
    return None if value[0][0] is None else int(value[0][0])


def _load_key(
    conn: apsw.Connection, cipher: FieldCipher, tenant: str, tenant_id: int, version: int
) -> None:
    rows = list(
        conn.execute(
            "SELECT wrapped FROM data_keys WHERE tenant_id = ? AND version = ?",
            (tenant_id, version),
        )
    )
    if not rows:
        raise ConfigError(
            f"data key {version} of tenant {tenant!r} is not in the store: facts sealed with it"
            " cannot be read"
        )
    cipher.load_key(tenant, version, bytes(rows[0][0]))


def load_tenant_keys(
    conn: apsw.Connection, cipher: FieldCipher, tenant: str, tenant_id: int
) -> None:
    """Load every stored data key of the tenant that the cipher does not hold yet."""
    for version, wrapped in conn.execute(
        "SELECT version, wrapped FROM data_keys WHERE tenant_id = ? ORDER BY version",
        (tenant_id,),
    ):
        if not cipher.has_key(tenant, version):
            cipher.load_key(tenant, version, bytes(wrapped))


def create_data_key(
    conn: apsw.Connection,
    cipher: FieldCipher,
    tenant: str,
    tenant_id: int,
    version: int,
    now: int,
) -> None:
    """Create data key `version` of the tenant, wrapped by the cipher's master key.

    Refused when the stored master record is not the cipher's (another process rotated the
    master key since this one opened): a key wrapped by a retired master could not be read.
    """
    record = read_master_record(conn)
    if record is None or record.check != cipher.check:
        raise ConfigError(
            "the store's master key changed since this process opened it (a rotation by another"
            " process); reopen with the new key"
        )
    conn.execute(
        "INSERT INTO data_keys(tenant_id, version, wrapped, created_at) VALUES (?, ?, ?, ?)",
        (tenant_id, version, cipher.new_key(tenant, version), now),
    )


class FactOpener:
    """Opens sealed fact rows read on one connection, loading data keys as they are needed."""

    __slots__ = ("_cipher", "_conn", "_tenant_ids")

    def __init__(self, cipher: FieldCipher | None, conn: apsw.Connection) -> None:
        self._cipher = cipher
        self._conn = conn
        self._tenant_ids: dict[str, int] = {}

    def load(self, tenant: str, tenant_id: int | None, version: int) -> None:
        """Load data key `version` of the tenant into the cipher from the store."""
        if self._cipher is None:
            raise ConfigError("this store is not encrypted: it has no data keys")
        if tenant_id is None:
            tenant_id = self._tenant_ids.get(tenant)
        if tenant_id is None:
            found = list(self._conn.execute("SELECT id FROM tenants WHERE name = ?", (tenant,)))
            if not found:
                raise NotFound(f"tenant {tenant!r} has no ledger yet")
            tenant_id = int(found[0][0])
        self._tenant_ids[tenant] = tenant_id
        _load_key(self._conn, self._cipher, tenant, tenant_id, version)

    def fields(
        self, tenant: str, fact_id: str, version: int | None, content: str, meta_json: str
    ) -> tuple[str, str]:
        """Content and meta JSON of one stored row, in the clear."""
        cipher = self._cipher
        if cipher is not None and version is not None and not cipher.has_key(tenant, version):
            self.load(tenant, None, version)
        return open_fact_fields(cipher, tenant, fact_id, version, content, meta_json)


def stale_rowids(
    conn: apsw.Connection, tenant_id: int, after_rowid: int, limit: int | None
) -> list[int]:
    """Rowids above `after_rowid` of the tenant's facts sealed with an older key than current."""
    current = current_key_version(conn, tenant_id)
    if current is None:
        return []
    sql = (
        "SELECT rowid_ FROM facts WHERE tenant_id = ? AND rowid_ > ? AND key_version < ?"
        " ORDER BY rowid_"
    )
    params: list[Any] = [tenant_id, after_rowid, current]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [int(r[0]) for r in conn.execute(sql, params)]


def reseal_facts(
    conn: apsw.Connection, cipher: FieldCipher, tenant: str, tenant_id: int, rowids: Sequence[int]
) -> int:
    """Seal the named facts of the tenant again under its current key; return how many changed."""
    current = current_key_version(conn, tenant_id)
    if current is None:
        raise NotFound(f"tenant {tenant!r} has no data key")
    opener = FactOpener(cipher, conn)
    if not cipher.has_key(tenant, current):
        opener.load(tenant, tenant_id, current)
    changed: list[tuple[str, str, int, int]] = []
    for start in range(0, len(rowids), 500):
        chunk = rowids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for rowid, fact_id, version, content, meta in conn.execute(
            f"SELECT rowid_, id, key_version, content, meta FROM facts"
            f" WHERE tenant_id = ? AND rowid_ IN ({marks}) AND key_version < ?",
            (tenant_id, *chunk, current),
        ):
            plain, meta_json = opener.fields(tenant, fact_id, version, content, meta)
            changed.append(
                (
                    cipher.seal(tenant, current, fact_id, "content", plain),
                    cipher.seal(tenant, current, fact_id, "meta", meta_json),
                    current,
                    rowid,
                )
            )
    conn.executemany(
        "UPDATE facts SET content = ?, meta = ?, key_version = ? WHERE rowid_ = ?", changed
    )
    return len(changed)


def retire_data_keys(conn: apsw.Connection, tenant_id: int) -> int:
    """Delete the tenant's data keys older than its current one that no fact row uses."""
    current = current_key_version(conn, tenant_id)
    if current is None:
        return 0
    used = {
        int(r[0])
        for r in conn.execute(
            "SELECT DISTINCT key_version FROM facts WHERE tenant_id = ? AND key_version < ?",
            (tenant_id, current),
        )
    }
    old = [
        int(r[0])
        for r in conn.execute(
            "SELECT version FROM data_keys WHERE tenant_id = ? AND version < ?",
            (tenant_id, current),
        )
    ]
    retired = [v for v in old if v not in used]
    conn.executemany(
        "DELETE FROM data_keys WHERE tenant_id = ? AND version = ?",
        [(tenant_id, v) for v in retired],
    )
    return len(retired)


def data_keys(conn: apsw.Connection, tenant: str | None) -> list[WrappedKey]:
    """Every wrapped data key (of `tenant`, when given), by tenant name and version."""
    sql = (
        "SELECT t.name, k.version, k.wrapped FROM data_keys k JOIN tenants t ON t.id = k.tenant_id"
    )
    params: tuple[Any, ...] = ()
    if tenant is not None:
        sql += " WHERE t.name = ?"
        params = (tenant,)
    sql += " ORDER BY t.name, k.version"
    return [WrappedKey(name, int(v), bytes(w)) for name, v, w in conn.execute(sql, params)]


def set_master_key(
    conn: apsw.Connection,
    record: MasterRecord,
    previous: bytes | None,
    rewrapped: Iterable[WrappedKey],
    now: int,
) -> int:
    """Record a master key (inside the caller's write transaction); see `Store.set_master_key`."""
    stored = read_master_record(conn)
    keys = list(rewrapped)
    if previous is None:
        if stored is not None:
            raise Conflict("the store is already encrypted")
        if list(conn.execute("SELECT 1 FROM tenants LIMIT 1")):
            raise Conflict(
                "the store already holds data in the clear: encryption is chosen when a data"
                " directory is created (cortex init --encrypt on a new one)"
            )
        if keys:
            raise Conflict("a new master key has no data keys to re-wrap")
        conn.execute(
            "INSERT INTO crypto_master(id, version, source, kdf, check_value, created_at)"
            " VALUES (1, ?, ?, ?, ?, ?)",
            (record.version, record.source, record.kdf, record.check, now),
        )
        return 0
    if stored is None:
        raise Conflict("the store is not encrypted: there is no master key to rotate")
    if stored.check != previous:
        raise Conflict("the master key was rotated meanwhile (by another process); retry")
    current = {(k.tenant, k.version) for k in data_keys(conn, None)}
    if current != {(k.tenant, k.version) for k in keys} or len(keys) != len(current):
        raise Conflict("the set of data keys changed during the rotation; retry")
    conn.executemany(
        "UPDATE data_keys SET wrapped = ? WHERE version = ?"
        " AND tenant_id = (SELECT id FROM tenants WHERE name = ?)",
        [(k.wrapped, k.version, k.tenant) for k in keys],
    )
    conn.execute(
        "UPDATE crypto_master SET version = ?, source = ?, kdf = ?, check_value = ?,"
        " created_at = ? WHERE id = 1",
        (record.version, record.source, record.kdf, record.check, now),
    )
    return len(keys)
