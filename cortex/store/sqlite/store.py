"""The SQLite backend (apsw, WAL): the only code that speaks SQL to SQLite.

Threads: one dedicated writer thread owns the write connection (all writes arrive as groups from
the `GroupCommitWriter`); a bounded pool of reader threads each use their own connection. In WAL
mode readers never block on the writer. Blocking SQLite calls never run on the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import queue
import random
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple, ParamSpec, TypeVar

import apsw
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cortex.canonical import (
    ZERO_HASH,
    StampText,
    canonical_json,
    canonical_record,
    format_ts,
    from_micros,
    new_fact_id,
    sha256,
    to_micros,
)
from cortex.errors import (
    ConfigError,
    Conflict,
    CortexError,
    IntegrityError,
    NotFound,
    StoreClosed,
    StoreError,
    ValidationError,
    WrongKey,
)
from cortex.ledger import bundle
from cortex.ledger.chain import link_entry, transaction_entry
from cortex.ledger.merkle import (
    Frontier,
    consistency_proof_from_subtrees,
    extend_frontier,
    frontier_keys,
    frontier_root,
    inclusion_proof_from_subtrees,
    last_leaf,
    leaf_hash,
    root_from_subtrees,
    subtree_keys_for_consistency,
    subtree_keys_for_inclusion,
    subtree_keys_for_root,
)
from cortex.ledger.verify import checkpoint_problems, head_problems
from cortex.model import (
    Checkpoint,
    ConsistencyProof,
    Fact,
    FactDraft,
    FactVersion,
    InclusionProof,
    Page,
    Problem,
    Stats,
    Transaction,
    VerifyReport,
)
from cortex.store.base import (
    AddDataKey,
    AppendEvent,
    Deprecate,
    FieldCipher,
    ListFilter,
    MakeCheckpoint,
    MasterRecord,
    Purge,
    Purged,
    ReindexFacts,
    ResealFacts,
    RetireDataKeys,
    SearchData,
    StoreFacts,
    Supersede,
    WrappedKey,
    WriteOutcome,
    WriteRequest,
    check_event,
)
from cortex.store.sqlite import scan, sealing
from cortex.store.sqlite.schema import MIGRATIONS

__all__ = ["Signer", "SqliteStore", "open_for_reading"]

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")
Signer = Callable[[str, int, bytes, str], Checkpoint]

_HEAD_CACHE_TENANTS = 1024
_MAX_CHAIN = 10_000
_PARALLEL_MIN = 200_000
# BM25 column weights of fact_text (content, tags): a tag match counts like two content matches.
_BM25_CONTENT_WEIGHT = 1.0
_BM25_TAGS_WEIGHT = 2.0
_FACT_COLUMNS = (
    "f.id, t.name, f.project, f.content, f.fact_type, f.tags, f.source, f.confidence, "
    "f.valid_from, f.valid_until, f.supersedes, f.created_at, f.meta, f.seq, "
    "f.deprecated_at, f.deprecation_reason, f.superseded_by, f.key_version, "
    "f.purged_at, f.purge_reason"
)
_TX_COLUMNS = "seq, op, subject, actor, ts, payload, payload_digest, prev_hash, hash"


class _Head(NamedTuple):
    """A tenant's ledger head: next seq, last hash and the right edge of its Merkle tree.

    A named tuple: one is made per fact appended (a frozen dataclass cost ~3 times as much)."""

    tenant_id: int
    next_seq: int
    head_hash: bytes
    frontier: tuple[tuple[int, int, bytes], ...]  # (level, index, hash), left to right


Row = tuple[Any, ...]


def _rows(conn: apsw.Connection, sql: str, params: Sequence[Any] = ()) -> list[Row]:
    """Run a query and return its rows (typed loosely: columns are checked where they are read)."""
    return list(conn.execute(sql, params))


def _iter_rows(conn: apsw.Connection, sql: str, params: Sequence[Any] = ()) -> Iterator[Row]:
    """Run a query and stream its rows."""
    return iter(conn.execute(sql, params))


@dataclass(slots=True)
class _Rows:
    """Rows staged by one write request, inserted with one executemany per table."""

    transactions: list[Row] = field(default_factory=list)
    nodes: list[Row] = field(default_factory=list)
    facts: list[Row] = field(default_factory=list)
    tags: list[Row] = field(default_factory=list)
    texts: list[Row] = field(default_factory=list)
    vectors: list[Row] = field(default_factory=list)

    def extend(self, other: _Rows) -> None:
        """Stage everything `other` staged."""
        self.transactions += other.transactions
        self.nodes += other.nodes
        self.facts += other.facts
        self.tags += other.tags
        self.texts += other.texts
        self.vectors += other.vectors

    def flush(self, conn: apsw.Connection) -> None:
        """Insert everything staged, then forget it."""
        if self.transactions:
            conn.executemany(
                f"INSERT INTO transactions(tenant_id, {_TX_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                self.transactions,
            )
        if self.nodes:
            conn.executemany(
                "INSERT INTO merkle_nodes(tenant_id, last_leaf, level, hash) VALUES (?, ?, ?, ?)",
                self.nodes,
            )
        if self.facts:
            conn.executemany(
                "INSERT INTO facts(rowid_, id, tenant_id, project, content, fact_type, tags,"
                " source, confidence, valid_from, valid_until, supersedes, created_at, meta, seq,"
                " key_version) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                self.facts,
            )
        if self.tags:
            conn.executemany(
                "INSERT INTO fact_tags(tenant_id, tag, fact_id) VALUES (?, ?, ?)", self.tags
            )
        if self.texts:
            conn.executemany(
                "INSERT INTO fact_text(rowid, content, tags) VALUES (?, ?, ?)", self.texts
            )
        if self.vectors:
            conn.executemany(
                "INSERT INTO fact_vectors(fact_rowid, tenant_id, model_id, vector)"
                " VALUES (?, ?, ?, ?)",
                self.vectors,
            )
        self.transactions, self.nodes, self.facts, self.tags = [], [], [], []
        self.texts, self.vectors = [], []


def _fact_from_row(row: Sequence[Any], opener: sealing.FactOpener) -> Fact:
    """A Fact from a `_FACT_COLUMNS` row; `opener` decrypts a sealed row's content and meta."""
    if row[18] is not None:  # purged: its content and meta were destroyed, nothing to open
        content, meta_json = "", "{}"
    else:
        content, meta_json = opener.fields(row[1], row[0], row[17], row[3], row[12])
    return Fact(
        id=row[0],
        tenant=row[1],
        project=row[2],
        content=content,
        fact_type=row[4],
        tags=tuple(json.loads(row[5])),
        source=row[6],
        confidence=row[7],
        valid_from=from_micros(row[8]),
        valid_until=None if row[9] is None else from_micros(row[9]),
        supersedes=row[10],
        created_at=from_micros(row[11]),
        meta=json.loads(meta_json),
        seq=row[13],
        deprecated_at=None if row[14] is None else from_micros(row[14]),
        deprecation_reason=row[15],
        superseded_by=row[16],
        purged_at=None if row[18] is None else from_micros(row[18]),
        purge_reason=row[19],
    )


def _tx_from_row(tenant: str, row: Sequence[Any]) -> Transaction:
    return Transaction(
        tenant=tenant,
        seq=row[0],
        op=row[1],
        subject=row[2],
        actor=row[3],
        ts=row[4],
        payload=json.loads(row[5]),
        payload_digest=row[6],
        prev_hash=row[7],
        hash=row[8],
    )


def _as_of_view(fact: Fact, as_of: datetime | None) -> Fact:
    """The fact as its record stood at `as_of` (later deprecation/supersession not yet visible)."""
    if as_of is None or fact.deprecated_at is None or fact.deprecated_at <= as_of:
        return fact
    return replace(fact, deprecated_at=None, deprecation_reason=None, superseded_by=None)


def _visible_at(fact: Fact, as_of: datetime) -> bool:
    return (
        fact.created_at <= as_of
        and fact.valid_from <= as_of
        and (fact.valid_until is None or as_of < fact.valid_until)
        and (fact.deprecated_at is None or as_of < fact.deprecated_at)
    )


def _filter_sql(
    tenant_id: int, filters: ListFilter, *, by_rowid: bool = False
) -> tuple[str, list[Any]]:
    """A WHERE condition on `facts f` (and its parameters) for one tenant and `filters`.

    `by_rowid`: the query also names the rows by rowid; the tenant term is then kept away from
    the planner (unary +) so that it looks the rows up by rowid instead of scanning the tenant.
    """
    sql = ["+f.tenant_id = ?" if by_rowid else "f.tenant_id = ?"]
    params: list[Any] = [tenant_id]
    for column in ("project", "fact_type", "source"):
        value = getattr(filters, column)
        if value is not None:
            sql.append(f"f.{column} = ?")
            params.append(value)
    for tag in filters.tags:
        if by_rowid:  # a few named rows: probe the tag index per row
            sql.append(
                "EXISTS (SELECT 1 FROM fact_tags g WHERE g.tenant_id = ? AND g.tag = ?"
                " AND g.fact_id = f.id)"
            )
        else:  # scanning the tenant: the tag's fact list, once
            sql.append("f.id IN (SELECT fact_id FROM fact_tags WHERE tenant_id = ? AND tag = ?)")
        params += [tenant_id, tag]
    if filters.min_confidence is not None:
        sql.append("f.confidence >= ?")
        params.append(filters.min_confidence)
    if filters.as_of is not None:
        t = to_micros(filters.as_of)
        sql.append(
            "f.created_at <= ? AND f.valid_from <= ?"
            " AND (f.valid_until IS NULL OR ? < f.valid_until)"
            " AND (f.deprecated_at IS NULL OR ? < f.deprecated_at)"
        )
        params += [t, t, t, t]
    elif not filters.include_inactive:
        sql.append("f.deprecated_at IS NULL AND f.purged_at IS NULL")
    if by_rowid and (filters.as_of is not None or filters.include_inactive):
        sql.append("f.purged_at IS NULL")  # search never finds a purged fact
    return " AND ".join(sql), params


# Ranking full-text matches alone, then filtering, is cheap up to this many ranked rows; beyond
# it (a very selective filter) the joined query is faster.
_TEXT_RANK_ALONE_MAX = 20_000


def _passing_rowids(
    conn: apsw.Connection, rowids: Sequence[int], where: str, params: Sequence[Any]
) -> list[int]:
    """Those of `rowids` whose fact passes `where` (a `_filter_sql(..., by_rowid=True)`)."""
    passing: list[int] = []
    for start in range(0, len(rowids), 500):
        chunk = rowids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        passing += (
            r[0]
            for r in conn.execute(
                f"SELECT f.rowid_ FROM facts f WHERE f.rowid_ IN ({marks}) AND {where}",
                [*chunk, *params],
            )
        )
    return passing


_IMPORT_FLUSH = 5000
"""Rows of entries, nodes and tags staged by a bundle import before they are inserted."""


def _node_key(level: int, index: int) -> tuple[int, int]:
    return last_leaf(level, index), level


def open_for_reading(path: Path) -> apsw.Connection:
    """A connection that reads the existing database at `path`: read-only, unless a process
    killed in mid-write left what only a writer may repair (a hot rollback journal, e.g. from a
    kill while `init` switched the new file to WAL; or a WAL index to rebuild). Then it is
    read-write, never creating the file, and its first read rolls the journal back, as any
    later open of the store would. apsw errors propagate (the caller names the file).
    """
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    conn.set_busy_timeout(10_000)
    try:
        conn.execute("SELECT count(*) FROM sqlite_schema").fetchall()
        return conn
    except apsw.ReadOnlyError:
        conn.close()
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READWRITE)
    conn.set_busy_timeout(10_000)
    return conn


class SqliteStore:
    """A CORTEX store in one SQLite file. Open with `await SqliteStore.open(...)`."""

    # One writer thread commits the groups one after another.
    write_concurrency = 1

    def __init__(
        self,
        path: Path,
        *,
        read_threads: int,
        checkpoint_every: int,
        signer: Signer | None,
        cipher: FieldCipher | None = None,
    ) -> None:
        self._path = path
        # Encryption at rest: the cipher (None: plaintext), the stored master record's check
        # value, and each tenant's current data key version (re-read with the heads).
        self._cipher = cipher
        self._master_check: bytes | None = None
        self._key_versions: OrderedDict[str, int] = OrderedDict()
        self._checkpoint_every = checkpoint_every
        self._signer = signer
        self._writer_pool = ThreadPoolExecutor(1, thread_name_prefix="cortex-sqlite-write")
        self._reader_pool = ThreadPoolExecutor(
            read_threads, thread_name_prefix="cortex-sqlite-read"
        )
        self._readers: queue.Queue[apsw.Connection] = queue.Queue(maxsize=read_threads)
        self._reader_count = 0
        self._reader_lock = threading.Lock()
        self._all_readers: list[apsw.Connection] = []
        self._write_conn: apsw.Connection | None = None
        self._heads: OrderedDict[str, _Head] = OrderedDict()
        self._last_ts = 0
        self._stamp_text = StampText()  # the writer's stamps, as ledger text
        self._next_rowid = 1
        self._data_version = -1
        # Randomness of fact ids: seeded from the OS once (ids are unique, not secret).
        self._random = random.Random(secrets.token_bytes(32))
        self._closed = False

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        read_threads: int = 4,
        checkpoint_every: int = 1000,
        signer: Signer | None = None,
        create: bool = True,
        cipher: FieldCipher | None = None,
    ) -> SqliteStore:
        """Open (creating if `create`) the database at `path` and apply pending migrations.

        An encrypted database needs `cipher` (built from its master key): ConfigError without,
        WrongKey when the cipher's master key is not the database's.
        """
        if not create and not path.exists():
            raise NotFound(f"no CORTEX database at {path}; run `cortex init` first")
        store = cls(
            path,
            read_threads=read_threads,
            checkpoint_every=checkpoint_every,
            signer=signer,
            cipher=cipher,
        )
        try:
            await store._run_write(store._open_writer)
            await store._run_write(store._check_cipher)
        except BaseException:
            await store.close()
            raise
        return store

    @classmethod
    def create(cls, path: Path) -> None:
        """Create (or migrate) the database at `path` synchronously, then close it."""
        store = cls(path, read_threads=1, checkpoint_every=1, signer=None)
        try:
            store._open_writer()
        finally:
            store._close_writer()
            store._writer_pool.shutdown()
            store._reader_pool.shutdown()
            store._closed = True

    def _connect(self) -> apsw.Connection:
        try:
            conn = apsw.Connection(str(self._path))
        except apsw.Error as exc:
            raise StoreError(f"cannot open database {self._path}: {exc}") from exc
        conn.set_busy_timeout(10_000)
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def _open_writer(self) -> None:
        conn = self._connect()
        self._write_conn = conn
        try:
            mode = _rows(conn, "PRAGMA journal_mode = WAL")[0][0]
            if mode != "wal":
                raise StoreError(f"{self._path}: cannot enable WAL mode (got {mode!r})")
            conn.execute("PRAGMA synchronous = FULL")
            # Freed space is zeroed, so that a purged fact leaves no bytes behind (docs/gate.md).
            conn.execute("PRAGMA secure_delete = ON")
            self._migrate(conn)
            self._load_write_state(conn)
        except apsw.Error as exc:
            raise StoreError(f"cannot open database {self._path}: {exc}") from exc

    @staticmethod
    def read_master_record(path: Path) -> MasterRecord | None:
        """The master key record of the database at `path` (None: plaintext or no database)."""
        if not path.exists():
            return None
        try:
            conn = open_for_reading(path)
            try:
                return sealing.read_master_record(conn)
            finally:
                conn.close()
        except apsw.Error as exc:  # a damaged file: the typed error, naming it
            raise StoreError(f"cannot open database {path}: {exc}") from exc

    def _check_cipher(self) -> None:
        """Refuse to open an encrypted database without its key, or a plaintext one with one."""
        check = self._master_check
        if check is not None and self._cipher is None:
            raise ConfigError(
                f"{self._path} is encrypted: open it with its master key (cortex.open reads the"
                " key file or passphrase named in the settings)"
            )
        if check is None and self._cipher is not None:
            raise ConfigError(f"{self._path} is not encrypted; open it without a cipher")
        if check is not None and self._cipher is not None and self._cipher.check != check:
            raise WrongKey(f"the master key given does not open {self._path}")

    def _write_key(
        self, conn: apsw.Connection, tenant: str, tenant_id: int, *, create: bool
    ) -> int | None:
        """The data key version new rows of `tenant` are sealed with (None: a plaintext store).

        Read inside the write transaction (cached until another connection commits), so every
        process seals with the current key; with `create`, a tenant's first key is made here.
        """
        cipher = self._cipher
        if cipher is None:
            if self._master_check is not None:
                raise ConfigError("this store is encrypted and was opened without its master key")
            return None
        version = self._key_versions.get(tenant)
        if version is None:
            version = sealing.current_key_version(conn, tenant_id)
            if version is None:
                if not create:
                    raise ConfigError(f"tenant {tenant!r} has no data key")
                version = 1
                sealing.create_data_key(conn, cipher, tenant, tenant_id, version, self._now())
            self._remember_key_version(tenant, version)
        if not cipher.has_key(tenant, version):
            sealing.FactOpener(cipher, conn).load(tenant, tenant_id, version)
        return version

    def _remember_key_version(self, tenant: str, version: int) -> None:
        self._key_versions[tenant] = version
        self._key_versions.move_to_end(tenant)
        while len(self._key_versions) > _HEAD_CACHE_TENANTS:
            self._key_versions.popitem(last=False)

    def _opener(self, conn: apsw.Connection) -> sealing.FactOpener:
        """Decrypts the sealed rows read on `conn` (passes plaintext rows through)."""
        return sealing.FactOpener(self._cipher, conn)

    def _load_write_state(self, conn: apsw.Connection) -> None:
        """Read what the writer caches from the database: clock, next fact rowid, no heads.

        Called at open, after a failed group, and whenever another connection (another process
        writing the same file) has committed since this writer's last commit: SQLite's
        `data_version` tells, so several processes can share one store without forking a ledger.
        """
        self._heads.clear()
        self._key_versions.clear()
        record = sealing.read_master_record(conn)
        self._master_check = None if record is None else record.check
        row = _rows(
            conn,
            "SELECT max(x.ts) FROM tenants t JOIN transactions x"
            " ON x.tenant_id = t.id AND x.seq = t.next_seq - 1",
        )[0][0]
        if row is not None:
            stamp = to_micros(datetime.fromisoformat(row.replace("Z", "+00:00")))
            self._last_ts = max(self._last_ts, stamp)
        self._next_rowid = (_rows(conn, "SELECT max(rowid_) FROM facts")[0][0] or 0) + 1
        self._data_version = _rows(conn, "PRAGMA data_version")[0][0]

    @staticmethod
    def _migrate(conn: apsw.Connection) -> None:
        version = _rows(conn, "PRAGMA user_version")[0][0]
        if version > len(MIGRATIONS):
            raise StoreError(
                f"database schema version {version} is newer than this CORTEX supports"
                f" ({len(MIGRATIONS)}); upgrade CORTEX"
            )
        for number in range(version, len(MIGRATIONS)):
            with conn:
                conn.execute(MIGRATIONS[number])
                conn.execute(f"PRAGMA user_version = {number + 1}")

    async def close(self) -> None:
        """Close every connection and thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._writer_pool, self._close_writer)
        self._writer_pool.shutdown(wait=True)
        self._reader_pool.shutdown(wait=True)
        with self._reader_lock:
            for conn in self._all_readers:
                conn.close()
            self._all_readers.clear()

    def _close_writer(self) -> None:
        if self._write_conn is not None:
            self._write_conn.close()
            self._write_conn = None

    # ------------------------------------------------------------------ thread plumbing

    async def _run_write(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self._closed and fn is not self._close_writer:
            raise StoreClosed("the store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer_pool, lambda: fn(*args, **kwargs))

    async def _run_read(self, fn: Callable[[apsw.Connection], T]) -> T:
        if self._closed:
            raise StoreClosed("the store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reader_pool, self._with_reader, fn)

    def _with_reader(self, fn: Callable[[apsw.Connection], T]) -> T:
        try:
            conn = self._readers.get_nowait()
        except queue.Empty:
            conn = self._connect()
            with self._reader_lock:
                self._all_readers.append(conn)
        try:
            conn.execute("BEGIN")
            try:
                return fn(conn)
            finally:
                conn.execute("COMMIT")
        except apsw.Error as exc:
            raise StoreError(f"database read failed: {exc}") from exc
        finally:
            self._readers.put_nowait(conn)

    # ------------------------------------------------------------------ writes

    async def apply_writes(self, requests: Sequence[WriteRequest]) -> list[WriteOutcome]:
        """Apply a group of write requests in one durable transaction (see `Store`)."""
        return await self._run_write(self._apply_group, requests)

    def _conn(self) -> apsw.Connection:
        if self._write_conn is None:
            raise StoreClosed("the store is closed")
        return self._write_conn

    def _apply_group(self, requests: Sequence[WriteRequest]) -> list[WriteOutcome]:
        """Apply a group in one transaction: facts are staged and inserted together.

        `StoreFacts` requests cannot fail on stored state, so their rows are staged for the whole
        group (one insert per table, one head update per tenant). Requests that read stored state
        (deprecate, supersede, checkpoint) first flush what is staged, then run inside their own
        savepoint so that their failure undoes only themselves.
        """
        conn = self._conn()
        heads: dict[str, _Head] = {}
        staged = _Rows()
        outcomes: list[WriteOutcome] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            if _rows(conn, "PRAGMA data_version")[0][0] != self._data_version:
                self._load_write_state(conn)
            for request in requests:
                if isinstance(request, StoreFacts):
                    try:
                        outcomes.append(self._stage_facts(conn, staged, request, heads))
                    except CortexError as exc:  # refused before staging anything (no data key)
                        outcomes.append(exc)
                    continue
                staged.flush(conn)
                before = dict(heads)
                conn.execute("SAVEPOINT request")
                try:
                    outcome = self._apply_one(conn, request, heads)
                except CortexError as exc:
                    conn.execute("ROLLBACK TO request")
                    conn.execute("RELEASE request")
                    heads = before
                    outcomes.append(exc)
                    continue
                conn.execute("RELEASE request")
                outcomes.append(outcome)
            staged.flush(conn)
            purged = any(isinstance(outcome, Purged) for outcome in outcomes)
            if purged:
                # FTS5 keeps a deleted row's terms in its index segments until they are merged;
                # merging them all leaves none (secure_delete zeroes the freed pages).
                conn.execute("INSERT INTO fact_text(fact_text) VALUES ('optimize')")
            for tenant, head in heads.items():
                conn.execute(
                    "UPDATE tenants SET next_seq = ?, head_hash = ? WHERE id = ?",
                    (head.next_seq, head.head_hash, head.tenant_id),
                )
                self._maybe_checkpoint(conn, tenant, head)
            conn.execute("COMMIT")
        except BaseException:
            if not conn.get_autocommit():
                conn.execute("ROLLBACK")
            self._load_write_state(conn)
            raise
        for tenant, head in heads.items():
            self._remember_head(tenant, head)
        if purged:
            self._truncate_wal(conn)
        return outcomes

    def _truncate_wal(self, conn: apsw.Connection) -> None:
        """Copy the WAL into the database and empty it: no destroyed bytes stay in the journal.

        Waits (busy timeout) for readers of older snapshots; if one outlasts it, the WAL keeps
        its frames until the next purge or checkpoint, and a warning says so.
        """
        busy, _, _ = _rows(conn, "PRAGMA wal_checkpoint(TRUNCATE)")[0]
        if busy:
            log.warning(
                "%s: a reader kept the WAL from being truncated after a purge; it is truncated at"
                " the next purge",
                self._path,
            )

    def _stage_facts(
        self, conn: apsw.Connection, staged: _Rows, request: StoreFacts, heads: dict[str, _Head]
    ) -> list[Fact]:
        head = self._head(conn, request.tenant, heads, create=True)
        key_version = self._write_key(conn, request.tenant, head.tenant_id, create=True)
        mine = _Rows()
        facts = []
        search = request.search or (None,) * len(request.drafts)
        if len(search) != len(request.drafts):
            raise ValidationError("search data must have one entry per fact")
        for draft, data in zip(request.drafts, search, strict=True):
            fact, head = self._insert_fact(
                mine,
                request.tenant,
                head,
                draft,
                None,
                request.actor,
                search=data,
                key_version=key_version,
            )
            facts.append(fact)
        staged.extend(mine)
        heads[request.tenant] = head
        return facts

    def _remember_head(self, tenant: str, head: _Head) -> None:
        self._heads[tenant] = head
        self._heads.move_to_end(tenant)
        while len(self._heads) > _HEAD_CACHE_TENANTS:
            self._heads.popitem(last=False)

    def _now(self) -> int:
        self._last_ts = max(time.time_ns() // 1000, self._last_ts + 1)
        return self._last_ts

    def _head(
        self,
        conn: apsw.Connection,
        tenant: str,
        heads: dict[str, _Head],
        create: bool,
        fact_id: str | None = None,
    ) -> _Head:
        head = heads.get(tenant) or self._heads.get(tenant)
        if head is not None:
            return head
        row = _rows(conn, "SELECT id, next_seq, head_hash FROM tenants WHERE name = ?", (tenant,))
        if not row:
            if fact_id is not None:
                raise NotFound(f"no fact {fact_id!r} in tenant {tenant!r}")
            if not create:
                raise NotFound(f"tenant {tenant!r} has no ledger yet")
            conn.execute(
                "INSERT INTO tenants(name, created_at, next_seq, head_hash) VALUES (?, ?, 0, ?)",
                (tenant, self._now(), ZERO_HASH),
            )
            return _Head(conn.last_insert_rowid(), 0, ZERO_HASH, ())
        tenant_id, next_seq, head_hash = row[0]
        frontier = []
        for level, index in frontier_keys(next_seq):
            found = _rows(
                conn,
                "SELECT hash FROM merkle_nodes WHERE tenant_id = ? AND last_leaf = ? AND level = ?",
                (tenant_id, *_node_key(level, index)),
            )
            if not found:
                raise StoreError(f"tenant {tenant!r}: Merkle node ({level}, {index}) is missing")
            frontier.append((level, index, found[0][0]))
        return _Head(tenant_id, next_seq, head_hash, tuple(frontier))

    def _append(
        self,
        rows: _Rows,
        tenant: str,
        head: _Head,
        *,
        op: str,
        subject: str | None,
        actor: str | None,
        ts: int,
        payload: dict[str, Any],
        payload_bytes: bytes | None = None,
    ) -> tuple[_Head, int]:
        """Stage one transaction and its Merkle nodes; return the new head and the seq used."""
        seq = head.next_seq
        if payload_bytes is None:
            payload_bytes = canonical_record(payload)
        stamp = self._stamp_text(ts)
        payload_digest = sha256(payload_bytes)
        entry, tx_hash = link_entry(
            tenant=tenant,
            seq=seq,
            op=op,
            subject=subject,
            actor=actor,
            ts=stamp,
            payload_digest=payload_digest,
            prev_hash=head.head_hash,
        )
        rows.transactions.append(
            (
                head.tenant_id,
                seq,
                op,
                subject,
                actor,
                stamp,
                payload_bytes.decode(),
                payload_digest,
                head.head_hash,
                tx_hash,
            )
        )
        done, frontier = extend_frontier(head.frontier, seq, leaf_hash(entry))
        rows.nodes.extend((head.tenant_id, last_leaf(lv, i), lv, h) for lv, i, h in done)
        return _Head(head.tenant_id, seq + 1, tx_hash, frontier), seq

    def _apply_one(
        self, conn: apsw.Connection, request: WriteRequest, heads: dict[str, _Head]
    ) -> WriteOutcome:
        rows = _Rows()
        if isinstance(request, Deprecate):
            head = self._head(conn, request.tenant, heads, create=False, fact_id=request.fact_id)
            old = self._active_fact(conn, head.tenant_id, request.tenant, request.fact_id)
            ts = self._now()
            head, _ = self._append(
                rows,
                request.tenant,
                head,
                op="deprecate",
                subject=old.id,
                actor=request.actor,
                ts=ts,
                payload={"reason": request.reason},
            )
            rows.flush(conn)
            conn.execute(
                "UPDATE facts SET deprecated_at = ?, deprecation_reason = ?"
                " WHERE tenant_id = ? AND id = ?",
                (ts, request.reason, head.tenant_id, old.id),
            )
            heads[request.tenant] = head
            return replace(old, deprecated_at=from_micros(ts), deprecation_reason=request.reason)
        if isinstance(request, Supersede):
            head = self._head(conn, request.tenant, heads, create=False, fact_id=request.fact_id)
            old = self._active_fact(conn, head.tenant_id, request.tenant, request.fact_id)
            fact, head = self._insert_fact(
                rows,
                request.tenant,
                head,
                request.draft,
                old.id,
                request.actor,
                request.reason,
                search=request.search,
                key_version=self._write_key(conn, request.tenant, head.tenant_id, create=False),
            )
            rows.flush(conn)
            conn.execute(
                "UPDATE facts SET deprecated_at = ?, deprecation_reason = ?, superseded_by = ?"
                " WHERE tenant_id = ? AND id = ?",
                (
                    to_micros(fact.created_at),
                    request.reason or f"superseded by {fact.id}",
                    fact.id,
                    head.tenant_id,
                    old.id,
                ),
            )
            heads[request.tenant] = head
            return fact
        if isinstance(request, MakeCheckpoint):
            head = self._head(conn, request.tenant, heads, create=False)
            return self._checkpoint(conn, request.tenant, head)
        if isinstance(request, ReindexFacts):
            return self._reindex(conn, request)
        if isinstance(request, AddDataKey | ResealFacts | RetireDataKeys):
            return self._apply_key_request(conn, request, heads)
        if isinstance(request, AppendEvent):
            return self._append_event(conn, request, heads)
        if isinstance(request, Purge):
            return self._purge(conn, request, heads)
        raise ValidationError(f"unknown write request {type(request).__name__}")

    def _purge(self, conn: apsw.Connection, request: Purge, heads: dict[str, _Head]) -> Purged:
        """Destroy the content, tags and meta of a fact (or of its whole chain); log a `purge`.

        The caller (`_apply_group`) merges the text index and truncates the journal afterwards,
        once per group: only then are the destroyed bytes gone from the file and the WAL.
        """
        head = self._head(conn, request.tenant, heads, create=False, fact_id=request.fact_id)
        tenant_id = head.tenant_id

        def load(fact_id: str) -> Row | None:
            found = _rows(
                conn,
                "SELECT rowid_, id, supersedes, superseded_by, purged_at FROM facts"
                " WHERE tenant_id = ? AND id = ?",
                (tenant_id, fact_id),
            )
            return found[0] if found else None

        start = load(request.fact_id)
        if start is None:
            raise NotFound(f"no fact {request.fact_id!r} in tenant {request.tenant!r}")
        chain = [start]
        while request.all_versions and chain[0][2] is not None and len(chain) < _MAX_CHAIN:
            older = load(chain[0][2])
            if older is None:
                break
            chain.insert(0, older)
        while request.all_versions and chain[-1][3] is not None and len(chain) < _MAX_CHAIN:
            newer = load(chain[-1][3])
            if newer is None:
                break
            chain.append(newer)
        targets = [r for r in chain if r[4] is None]
        if not targets:
            what = "every version of fact" if request.all_versions else "fact"
            raise Conflict(f"{what} {request.fact_id} is already purged")
        rows = _Rows()
        for rowid, fact_id, *_ in targets:
            ts = self._now()
            head, _ = self._append(
                rows,
                request.tenant,
                head,
                op="purge",
                subject=fact_id,
                actor=request.actor,
                ts=ts,
                payload={"reason": request.reason, "approval": request.approval},
            )
            # The row keeps what the ledger and listings need (id, seq, times, names); the
            # caller's words are destroyed. A sealed row becomes plaintext "" (nothing to open).
            conn.execute(
                "UPDATE facts SET content = '', tags = '[]', meta = '{}', key_version = NULL,"
                " purged_at = ?, purge_reason = ? WHERE rowid_ = ?",
                (ts, request.reason, rowid),
            )
            conn.execute(
                "DELETE FROM fact_tags WHERE tenant_id = ? AND fact_id = ?", (tenant_id, fact_id)
            )
            conn.execute("DELETE FROM fact_text WHERE rowid = ?", (rowid,))
            conn.execute("DELETE FROM fact_vectors WHERE fact_rowid = ?", (rowid,))
        rows.flush(conn)
        heads[request.tenant] = head
        marks = ",".join("?" * len(targets))
        opener = self._opener(conn)
        facts = [
            _fact_from_row(r, opener)
            for r in _rows(
                conn,
                f"SELECT {_FACT_COLUMNS} FROM facts f JOIN tenants t ON t.id = f.tenant_id"
                f" WHERE f.rowid_ IN ({marks}) ORDER BY f.rowid_",
                [r[0] for r in targets],
            )
        ]
        return Purged(tuple(facts), tuple(r[0] for r in targets))

    def _append_event(
        self, conn: apsw.Connection, request: AppendEvent, heads: dict[str, _Head]
    ) -> Transaction:
        check_event(request)
        head = self._head(
            conn,
            request.tenant,
            heads,
            create=not request.require_fact,
            fact_id=request.subject if request.require_fact else None,
        )
        if request.require_fact and not _rows(
            conn,
            "SELECT 1 FROM facts WHERE tenant_id = ? AND id = ?",
            (head.tenant_id, request.subject),
        ):
            raise NotFound(f"no fact {request.subject!r} in tenant {request.tenant!r}")
        if request.unique and _rows(
            conn,
            "SELECT seq FROM transactions WHERE tenant_id = ? AND subject IS ? AND op = ?"
            " AND op <> 'store' LIMIT 1",
            (head.tenant_id, request.subject, request.op),
        ):
            raise Conflict(
                f"tenant {request.tenant!r} already has a {request.op!r} entry for"
                f" {request.subject!r}"
            )
        rows = _Rows()
        head, seq = self._append(
            rows,
            request.tenant,
            head,
            op=request.op,
            subject=request.subject,
            actor=request.actor,
            ts=self._now(),
            payload=dict(request.payload),
        )
        rows.flush(conn)
        heads[request.tenant] = head
        return _tx_from_row(
            request.tenant,
            _rows(
                conn,
                f"SELECT {_TX_COLUMNS} FROM transactions x WHERE x.tenant_id = ? AND x.seq = ?",
                (head.tenant_id, seq),
            )[0],
        )

    def _apply_key_request(
        self,
        conn: apsw.Connection,
        request: AddDataKey | ResealFacts | RetireDataKeys,
        heads: dict[str, _Head],
    ) -> int:
        """A new data key, a batch of re-sealed facts, or retired old keys (see base.py)."""
        cipher = self._cipher
        if cipher is None:
            raise ConfigError("this store is not encrypted: it has no data keys")
        tenant_id = self._head(conn, request.tenant, heads, create=False).tenant_id
        if isinstance(request, AddDataKey):
            version = (sealing.current_key_version(conn, tenant_id) or 0) + 1
            sealing.create_data_key(conn, cipher, request.tenant, tenant_id, version, self._now())
            self._remember_key_version(request.tenant, version)
            return version
        if isinstance(request, ResealFacts):
            return sealing.reseal_facts(conn, cipher, request.tenant, tenant_id, request.rowids)
        return sealing.retire_data_keys(conn, tenant_id)

    @staticmethod
    def _reindex(conn: apsw.Connection, request: ReindexFacts) -> int:
        """Replace text rows and vectors of existing facts of the tenant; return how many."""
        if len(request.rowids) != len(request.search):
            raise ValidationError("search data must have one entry per fact")
        tenant = _rows(conn, "SELECT id FROM tenants WHERE name = ?", (request.tenant,))
        if not tenant:
            raise NotFound(f"tenant {request.tenant!r} has no ledger yet")
        tenant_id = tenant[0][0]
        marks = ",".join("?" * len(request.rowids))
        found = {
            r[0]: r[1] is not None
            for r in conn.execute(
                f"SELECT rowid_, purged_at FROM facts WHERE tenant_id = ? AND rowid_ IN ({marks})",
                (tenant_id, *request.rowids),
            )
        }
        if set(found) != set(request.rowids):
            raise NotFound(f"some facts to reindex are not in tenant {request.tenant!r}")
        # A fact purged since its text was read keeps no search data: skip it (the reindex or
        # background vector write read it before the purge committed).
        rows = [(r, d) for r, d in zip(request.rowids, request.search, strict=True) if not found[r]]
        if request.text:
            conn.executemany("DELETE FROM fact_text WHERE rowid = ?", [(r,) for r, _ in rows])
            conn.executemany(
                "INSERT INTO fact_text(rowid, content, tags) VALUES (?, ?, ?)",
                [(r, d.text, d.tags) for r, d in rows],
            )
        conn.executemany(
            "INSERT OR REPLACE INTO fact_vectors(fact_rowid, tenant_id, model_id, vector)"
            " VALUES (?, ?, ?, ?)",
            [(r, tenant_id, d.model_id, d.vector) for r, d in rows if d.vector is not None],
        )
        return len(rows)

    def _insert_fact(
        self,
        rows: _Rows,
        tenant: str,
        head: _Head,
        draft: FactDraft,
        supersedes: str | None,
        actor: str | None,
        reason: str | None = None,
        *,
        search: SearchData | None = None,
        key_version: int | None = None,
    ) -> tuple[Fact, _Head]:
        ts = self._now()
        rowid = self._next_rowid
        self._next_rowid += 1
        created = from_micros(ts)
        fact = draft.as_fact(
            fact_id=new_fact_id(ts, self._random.getrandbits(70)),
            tenant=tenant,
            created=created,
            seq=head.next_seq,
            supersedes=supersedes,
        )
        tags_json = draft.tags_json
        meta_json = draft.meta_json
        valid_from = ts if draft.valid_from is None else to_micros(draft.valid_from)
        valid_until = None if draft.valid_until is None else to_micros(draft.valid_until)
        digest = draft.digest(fact_id=fact.id, tenant=tenant, created_at=ts, supersedes=supersedes)
        payload: dict[str, Any] = {"fact_digest": digest.hex()}
        payload_bytes = None
        if supersedes is not None:
            payload["supersedes"] = supersedes
            if reason is not None:
                payload["reason"] = reason
        else:
            payload_bytes = f'{{"fact_digest":"{payload["fact_digest"]}"}}'.encode()
        head, seq = self._append(
            rows,
            tenant,
            head,
            op="store" if supersedes is None else "supersede",
            subject=fact.id,
            actor=actor or draft.source,
            ts=ts,
            payload=payload,
            payload_bytes=payload_bytes,
        )
        stored_content, stored_meta = fact.content, meta_json
        if key_version is not None and self._cipher is not None:
            # Sealed after the digest: the ledger covers the plaintext, the row holds ciphertext.
            seal = self._cipher.seal
            stored_content = seal(tenant, key_version, fact.id, "content", fact.content)
            stored_meta = seal(tenant, key_version, fact.id, "meta", meta_json)
        rows.facts.append(
            (
                rowid,
                fact.id,
                head.tenant_id,
                fact.project,
                stored_content,
                fact.fact_type,
                tags_json,
                fact.source,
                fact.confidence,
                valid_from,
                valid_until,
                supersedes,
                ts,
                stored_meta,
                seq,
                key_version,
            )
        )
        rows.tags.extend((head.tenant_id, tag, fact.id) for tag in fact.tags)
        if search is not None:
            rows.texts.append((rowid, search.text, search.tags))
            if search.vector is not None:
                rows.vectors.append((rowid, head.tenant_id, search.model_id, search.vector))
        return fact, head

    def _active_fact(
        self, conn: apsw.Connection, tenant_id: int, tenant: str, fact_id: str
    ) -> Fact:
        rows = _rows(
            conn,
            f"SELECT {_FACT_COLUMNS} FROM facts f JOIN tenants t ON t.id = f.tenant_id"
            " WHERE f.tenant_id = ? AND f.id = ?",
            (tenant_id, fact_id),
        )
        if not rows:
            raise NotFound(f"no fact {fact_id!r} in tenant {tenant!r}")
        fact = _fact_from_row(rows[0], self._opener(conn))
        if fact.status != "active":
            raise Conflict(f"fact {fact_id} is already {fact.status}; only active facts can change")
        return fact

    def _checkpoint(
        self, conn: apsw.Connection, tenant: str, head: _Head, *, after_group: bool = False
    ) -> Checkpoint:
        """Sign the tenant's tree at its head, stamped now (the clock ticks).

        `after_group` (the checkpoint every N transactions, signed at the end of a write
        group): stamped with the time of the last transaction stamped, which it is the state
        after, without a tick (as the PostgreSQL store does, where the tick would make the next
        group's prepared stamps stale).
        """
        if self._signer is None:
            raise StoreError("this store was opened without a signing key; cannot sign checkpoints")
        existing = _rows(
            conn,
            "SELECT tree_size, root, ts, signature, key_id FROM checkpoints"
            " WHERE tenant_id = ? AND tree_size = ?",
            (head.tenant_id, head.next_seq),
        )
        if existing:
            size, root, ts, signature, kid = existing[0]
            return Checkpoint(tenant, size, root, ts, signature, kid)
        root = frontier_root(head.frontier, head.next_seq)
        stamp = self._last_ts if after_group else self._now()
        checkpoint = self._signer(tenant, head.next_seq, root, format_ts(stamp))
        conn.execute(
            "INSERT INTO checkpoints(tenant_id, tree_size, root, ts, signature, key_id)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                head.tenant_id,
                checkpoint.tree_size,
                checkpoint.root,
                checkpoint.ts,
                checkpoint.signature,
                checkpoint.key_id,
            ),
        )
        return checkpoint

    def _maybe_checkpoint(self, conn: apsw.Connection, tenant: str, head: _Head) -> None:
        """Sign a checkpoint when this group carried the tenant across a multiple of N."""
        if self._signer is None or head.next_seq == 0:
            return
        last = _rows(
            conn, "SELECT max(tree_size) FROM checkpoints WHERE tenant_id = ?", (head.tenant_id,)
        )[0][0]
        every = self._checkpoint_every
        if (last or 0) // every < head.next_seq // every:
            self._checkpoint(conn, tenant, head, after_group=True)

    # ------------------------------------------------------------------ reads

    @staticmethod
    def _tenant_id(conn: apsw.Connection, tenant: str) -> tuple[int, int] | None:
        rows = _rows(conn, "SELECT id, next_seq FROM tenants WHERE name = ?", (tenant,))
        return None if not rows else (rows[0][0], rows[0][1])

    async def get_fact(self, tenant: str, fact_id: str, as_of: datetime | None = None) -> Fact:
        """Return one fact of `tenant`; with `as_of`, only if it was valid at that instant."""

        def read(conn: apsw.Connection) -> Fact:
            rows = _rows(
                conn,
                f"SELECT {_FACT_COLUMNS} FROM facts f JOIN tenants t ON t.id = f.tenant_id"
                " WHERE t.name = ? AND f.id = ?",
                (tenant, fact_id),
            )
            if not rows:
                raise NotFound(f"no fact {fact_id!r} in tenant {tenant!r}")
            fact = _fact_from_row(rows[0], self._opener(conn))
            if as_of is not None and not _visible_at(fact, as_of):
                raise NotFound(f"fact {fact_id} was not valid at {as_of.isoformat()}")
            return _as_of_view(fact, as_of)

        return await self._run_read(read)

    async def list_facts(
        self, tenant: str, filters: ListFilter, limit: int, cursor: str | None
    ) -> Page:
        """Return one page of `tenant`'s facts in creation order, filtered."""

        def read(conn: apsw.Connection) -> Page:
            ident = self._tenant_id(conn, tenant)
            if ident is None:
                return Page((), None)
            where, params = _filter_sql(ident[0], filters)
            sql = [f"SELECT {_FACT_COLUMNS} FROM facts f JOIN tenants t ON t.id = f.tenant_id"]
            sql.append(f"WHERE {where}")
            if cursor is not None:
                sql.append("AND f.id > ?")
                params.append(cursor)
            sql.append("ORDER BY f.id LIMIT ?")
            params.append(limit + 1)
            rows = _rows(conn, " ".join(sql), params)
            opener = self._opener(conn)
            facts = [_as_of_view(_fact_from_row(r, opener), filters.as_of) for r in rows[:limit]]
            next_cursor = facts[-1].id if len(rows) > limit and facts else None
            return Page(tuple(facts), next_cursor)

        return await self._run_read(read)

    async def history(self, tenant: str, fact_id: str) -> list[FactVersion]:
        """Every version of the fact's supersession chain, oldest first, with their transactions."""

        def read(conn: apsw.Connection) -> list[FactVersion]:
            opener = self._opener(conn)

            def load(fid: str) -> Fact | None:
                rows = _rows(
                    conn,
                    f"SELECT {_FACT_COLUMNS} FROM facts f JOIN tenants t ON t.id = f.tenant_id"
                    " WHERE t.name = ? AND f.id = ?",
                    (tenant, fid),
                )
                return _fact_from_row(rows[0], opener) if rows else None

            start = load(fact_id)
            if start is None:
                raise NotFound(f"no fact {fact_id!r} in tenant {tenant!r}")
            chain = [start]
            while chain[0].supersedes is not None and len(chain) < _MAX_CHAIN:
                older = load(chain[0].supersedes)
                if older is None:
                    break
                chain.insert(0, older)
            while chain[-1].superseded_by is not None and len(chain) < _MAX_CHAIN:
                newer = load(chain[-1].superseded_by)
                if newer is None:
                    break
                chain.append(newer)
            tenant_id = self._sizes(conn, tenant)[0]
            versions = []
            for fact in chain:
                # The entry that created the fact (at its seq), then every later change of it.
                rows = _rows(
                    conn,
                    f"SELECT {_TX_COLUMNS} FROM transactions WHERE tenant_id = ? AND seq = ?"
                    " AND subject = ?",
                    (tenant_id, fact.seq, fact.id),
                ) + _rows(
                    conn,
                    f"SELECT {_TX_COLUMNS} FROM transactions INDEXED BY transactions_changes"
                    " WHERE tenant_id = ? AND op <> 'store' AND subject = ? AND seq <> ?"
                    " ORDER BY seq",
                    (tenant_id, fact.id, fact.seq),
                )
                versions.append(FactVersion(fact, tuple(_tx_from_row(tenant, r) for r in rows)))
            return versions

        return await self._run_read(read)

    async def transaction(self, tenant: str, seq: int) -> Transaction:
        """Return the transaction at `seq` of `tenant`'s ledger."""

        def read(conn: apsw.Connection) -> Transaction:
            rows = _rows(
                conn,
                f"SELECT {_TX_COLUMNS} FROM transactions x JOIN tenants t ON t.id = x.tenant_id"
                " WHERE t.name = ? AND x.seq = ?",
                (tenant, seq),
            )
            if not rows:
                raise NotFound(f"tenant {tenant!r} has no transaction {seq}")
            return _tx_from_row(tenant, rows[0])

        return await self._run_read(read)

    async def events(
        self,
        tenant: str,
        ops: Sequence[str],
        subject: str | None = None,
        after_seq: int = -1,
        limit: int = 1000,
    ) -> list[Transaction]:
        """Transactions of `tenant` by op (and subject), in seq order (see `Store.events`)."""
        if not ops or limit < 1:
            return []
        marks = ",".join("?" * len(ops))

        def read(conn: apsw.Connection) -> list[Transaction]:
            found = self._tenant_id(conn, tenant)
            if found is None:
                return []
            sql = (
                f"SELECT {_TX_COLUMNS} FROM transactions x WHERE x.tenant_id = ?"
                f" AND x.op IN ({marks}) AND x.seq > ?"
            )
            params: list[Any] = [found[0], *ops, after_seq]
            if subject is not None:
                sql += " AND x.subject = ? AND x.op <> 'store'"  # the partial index on subject
                params.append(subject)
            sql += " ORDER BY x.seq LIMIT ?"
            params.append(limit)
            return [_tx_from_row(tenant, row) for row in _iter_rows(conn, sql, params)]

        return await self._run_read(read)

    async def tree_size(self, tenant: str) -> int:
        """The number of entries in `tenant`'s ledger (0 for an unknown tenant)."""

        def read(conn: apsw.Connection) -> int:
            ident = self._tenant_id(conn, tenant)
            return 0 if ident is None else ident[1]

        return await self._run_read(read)

    @staticmethod
    def _fetch_nodes(
        conn: apsw.Connection, tenant_id: int, keys: set[tuple[int, int]]
    ) -> dict[tuple[int, int], bytes]:
        """Read the stored subtree hashes for `keys` ((level, index) pairs) in one query."""
        if not keys:
            return {}
        wanted = [_node_key(level, index) for level, index in keys]
        values = ",".join("(?, ?)" for _ in wanted)
        params: list[int] = [tenant_id]
        for last, level in wanted:
            params += [last, level]
        rows = _rows(
            conn,
            "SELECT last_leaf, level, hash FROM merkle_nodes WHERE tenant_id = ?"
            f" AND (last_leaf, level) IN (VALUES {values})",
            params,
        )
        found = {}
        for last, level, h in rows:
            found[(level, ((last + 1) >> level) - 1)] = h
        if len(found) != len(keys):
            raise StoreError("the ledger's Merkle nodes are incomplete; run `cortex verify`")
        return found

    def _sizes(self, conn: apsw.Connection, tenant: str) -> tuple[int, int]:
        ident = self._tenant_id(conn, tenant)
        if ident is None:
            raise NotFound(f"tenant {tenant!r} has no ledger yet")
        return ident

    async def inclusion_proof(self, tenant: str, seq: int, tree_size: int | None) -> InclusionProof:
        """RFC 9162 inclusion proof of entry `seq`, from O(log n) stored subtree hashes."""

        def read(conn: apsw.Connection) -> InclusionProof:
            tenant_id, current = self._sizes(conn, tenant)
            size = current if tree_size is None else tree_size
            if not 0 < size <= current:
                raise ValidationError(f"tree_size must be between 1 and {current}, got {size}")
            if not 0 <= seq < size:
                raise NotFound(f"tenant {tenant!r} has no entry {seq} in a tree of size {size}")
            keys = subtree_keys_for_inclusion(seq, size) | subtree_keys_for_root(size) | {(0, seq)}
            nodes = self._fetch_nodes(conn, tenant_id, keys)
            get = lambda level, index: nodes[(level, index)]  # noqa: E731
            rows = _rows(
                conn,
                f"SELECT {_TX_COLUMNS} FROM transactions WHERE tenant_id = ? AND seq = ?",
                (tenant_id, seq),
            )
            if not rows:
                raise StoreError(f"entry {seq} is missing from the ledger; run `cortex verify`")
            tx = _tx_from_row(tenant, rows[0])
            return InclusionProof(
                tenant=tenant,
                seq=seq,
                tree_size=size,
                entry=transaction_entry(tx),
                leaf_hash=nodes[(0, seq)],
                path=tuple(inclusion_proof_from_subtrees(seq, size, get)),
                root=root_from_subtrees(size, get),
            )

        return await self._run_read(read)

    async def consistency_proof(
        self, tenant: str, old_size: int, new_size: int | None
    ) -> ConsistencyProof:
        """RFC 9162 consistency proof between two sizes, from O(log n) stored subtree hashes."""

        def read(conn: apsw.Connection) -> ConsistencyProof:
            tenant_id, current = self._sizes(conn, tenant)
            new = current if new_size is None else new_size
            if not 0 <= new <= current:
                raise ValidationError(f"new_size must be between 0 and {current}, got {new}")
            if not 0 <= old_size <= new:
                raise ValidationError(f"old_size must be between 0 and {new}, got {old_size}")
            keys = (
                subtree_keys_for_consistency(old_size, new)
                | subtree_keys_for_root(old_size)
                | subtree_keys_for_root(new)
            )
            nodes = self._fetch_nodes(conn, tenant_id, keys)
            get = lambda level, index: nodes[(level, index)]  # noqa: E731
            return ConsistencyProof(
                tenant=tenant,
                old_size=old_size,
                new_size=new,
                old_root=root_from_subtrees(old_size, get),
                new_root=root_from_subtrees(new, get),
                path=tuple(consistency_proof_from_subtrees(old_size, new, get)),
            )

        return await self._run_read(read)

    async def checkpoints(self, tenant: str) -> list[Checkpoint]:
        """Every stored checkpoint of `tenant`, by tree size."""

        def read(conn: apsw.Connection) -> list[Checkpoint]:
            return self._checkpoints(conn, tenant)

        return await self._run_read(read)

    @staticmethod
    def _checkpoints(conn: apsw.Connection, tenant: str) -> list[Checkpoint]:
        rows = _rows(
            conn,
            "SELECT c.tree_size, c.root, c.ts, c.signature, c.key_id FROM checkpoints c"
            " JOIN tenants t ON t.id = c.tenant_id WHERE t.name = ? ORDER BY c.tree_size",
            (tenant,),
        )
        return [Checkpoint(tenant, *row) for row in rows]

    async def tenants(self) -> list[str]:
        """Names of every tenant with a ledger."""
        return await self._run_read(
            lambda conn: [r[0] for r in conn.execute("SELECT name FROM tenants ORDER BY name")]
        )

    async def stats(self, tenant: str) -> Stats:
        """Counts of facts, transactions and checkpoints for `tenant`."""

        def read(conn: apsw.Connection) -> Stats:
            ident = self._tenant_id(conn, tenant)
            tid = -1 if ident is None else ident[0]
            facts, deprecated, superseded, purged = _rows(
                conn,
                "SELECT count(*),"
                " count(*) FILTER (WHERE purged_at IS NULL AND deprecated_at IS NOT NULL"
                "   AND superseded_by IS NULL),"
                " count(*) FILTER (WHERE purged_at IS NULL AND superseded_by IS NOT NULL),"
                " count(purged_at) FROM facts WHERE tenant_id = ?",
                (tid,),
            )[0]
            cps = _rows(
                conn, "SELECT count(*), max(tree_size) FROM checkpoints WHERE tenant_id = ?", (tid,)
            )[0]
            size = sum(
                os.path.getsize(p)
                for p in (self._path, Path(f"{self._path}-wal"))
                if os.path.exists(p)
            )
            return Stats(
                tenant=tenant,
                facts=facts,
                active=facts - deprecated - superseded - purged,
                deprecated=deprecated,
                superseded=superseded,
                transactions=0 if ident is None else ident[1],
                checkpoints=cps[0],
                latest_checkpoint_size=cps[1],
                database_bytes=size,
                purged=purged,
            )

        return await self._run_read(read)

    # ------------------------------------------------------------------ search

    async def text_candidates(
        self, tenant: str, match: str, filters: ListFilter, limit: int
    ) -> list[tuple[int, float]]:
        """(rowid, BM25 score: lower is better) of facts matching an FTS5 expression, best first.

        Filters apply inside the query, so `limit` hits come back whenever that many exist.
        First the full-text index ranks its matches alone (no join per match: with a common
        word that is most of the cost) and the best few are filtered; only when too few of them
        pass (a selective filter, a small tenant among large ones) does the joined query run.
        """

        def read(conn: apsw.Connection) -> list[tuple[int, float]]:
            ident = self._tenant_id(conn, tenant)
            if ident is None:
                return []
            weights = [_BM25_CONTENT_WEIGHT, _BM25_TAGS_WEIGHT]
            wanted = max(2 * limit, 200)
            try:
                for _ in range(2):
                    ranked = [
                        (r[0], r[1])
                        for r in conn.execute(
                            "SELECT rowid, bm25(fact_text, ?, ?) AS rank FROM fact_text"
                            " WHERE fact_text MATCH ? ORDER BY rank LIMIT ?",
                            [*weights, match, wanted],
                        )
                    ]
                    where, params = _filter_sql(ident[0], filters, by_rowid=True)
                    passing = set(_passing_rowids(conn, [r for r, _ in ranked], where, params))
                    if len(passing) >= limit or len(ranked) < wanted:
                        return [(r, score) for r, score in ranked if r in passing][:limit]
                    # Once more, with as many as the share that passed says are needed.
                    share = max(len(passing), 1) / len(ranked)
                    wanted = int(1.5 * limit / share)
                    if wanted > _TEXT_RANK_ALONE_MAX:
                        break
                where, params = _filter_sql(ident[0], filters)
                sql = (
                    "SELECT f.rowid_, bm25(fact_text, ?, ?) AS rank FROM fact_text"
                    " JOIN facts f ON f.rowid_ = fact_text.rowid"
                    f" WHERE fact_text MATCH ? AND {where} ORDER BY rank LIMIT ?"
                )
                return [(r[0], r[1]) for r in conn.execute(sql, [*weights, match, *params, limit])]
            except apsw.SQLError as exc:
                raise ValidationError(f"the text query cannot be searched: {exc}") from exc

        return await self._run_read(read)

    async def filter_rowids(
        self, tenant: str, rowids: Sequence[int], filters: ListFilter
    ) -> list[int]:
        """The subset of `rowids` (facts of `tenant`) that pass `filters`, in the given order."""

        def read(conn: apsw.Connection) -> list[int]:
            ident = self._tenant_id(conn, tenant)
            if ident is None or not rowids:
                return []
            where, params = _filter_sql(ident[0], filters, by_rowid=True)
            passing = set(_passing_rowids(conn, rowids, where, params))
            return [r for r in rowids if r in passing]

        return await self._run_read(read)

    async def facts_by_rowid(
        self, tenant: str, rowids: Sequence[int], as_of: datetime | None
    ) -> dict[int, Fact]:
        """The facts of `tenant` with these rowids (as recorded at `as_of`, when given)."""

        def read(conn: apsw.Connection) -> dict[int, Fact]:
            found: dict[int, Fact] = {}
            opener = self._opener(conn)
            ident = self._tenant_id(conn, tenant)
            if ident is None:
                return found
            for start in range(0, len(rowids), 500):
                chunk = rowids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for row in conn.execute(
                    f"SELECT f.rowid_, {_FACT_COLUMNS} FROM facts f"
                    f" JOIN tenants t ON t.id = f.tenant_id"
                    f" WHERE f.rowid_ IN ({marks}) AND +f.tenant_id = ?",
                    [*chunk, ident[0]],
                ):
                    found[row[0]] = _as_of_view(_fact_from_row(row[1:], opener), as_of)
            return found

        return await self._run_read(read)

    async def vectors_after(
        self, tenant: str, after_rowid: int, limit: int
    ) -> list[tuple[int, str, bytes]]:
        """Up to `limit` stored vectors of `tenant` with rowid > `after_rowid`, by rowid."""

        def read(conn: apsw.Connection) -> list[tuple[int, str, bytes]]:
            ident = self._tenant_id(conn, tenant)
            if ident is None:
                return []
            return [
                (r[0], r[1], r[2])
                for r in conn.execute(
                    "SELECT fact_rowid, model_id, vector FROM fact_vectors"
                    " WHERE tenant_id = ? AND fact_rowid > ? ORDER BY fact_rowid LIMIT ?",
                    (ident[0], after_rowid, limit),
                )
            ]

        return await self._run_read(read)

    async def filtered_vectors(
        self, tenant: str, model_id: str, filters: ListFilter, limit: int
    ) -> list[tuple[int, bytes]] | None:
        """(rowid, vector) of every fact passing `filters` that has a vector of `model_id`.

        None when more than `limit` facts pass: the filter is not selective enough to search
        its facts exactly, and the caller should use the index instead.
        """

        def read(conn: apsw.Connection) -> list[tuple[int, bytes]] | None:
            ident = self._tenant_id(conn, tenant)
            if ident is None:
                return []
            where, params = _filter_sql(ident[0], filters)
            rows = [
                (r[0], r[1])
                for r in conn.execute(
                    "SELECT v.fact_rowid, v.vector FROM facts f"
                    " JOIN fact_vectors v ON v.fact_rowid = f.rowid_"
                    f" WHERE {where} AND v.model_id = ? LIMIT ?",
                    [*params, model_id, limit + 1],
                )
            ]
            return None if len(rows) > limit else rows

        return await self._run_read(read)

    async def facts_to_index(
        self, tenant: str, *, model_id: str | None, after_rowid: int, limit: int
    ) -> list[tuple[int, str, str]]:
        """(rowid, content, tags JSON) of facts after `after_rowid`, by rowid, `limit` at most.

        With `model_id`, only facts without a vector from that model (what a reindex must do);
        without, every fact (a full rebuild of the text index).
        """

        def read(conn: apsw.Connection) -> list[tuple[int, str, str]]:
            ident = self._tenant_id(conn, tenant)
            if ident is None:
                return []
            if model_id is None:
                sql = (
                    "SELECT f.rowid_, f.content, f.tags, f.id, f.key_version, f.meta, f.purged_at"
                    " FROM facts f"
                    " WHERE f.tenant_id = ? AND f.rowid_ > ? ORDER BY f.rowid_ LIMIT ?"
                )
                args: tuple[Any, ...] = (ident[0], after_rowid, limit)
            else:
                sql = (
                    "SELECT f.rowid_, f.content, f.tags, f.id, f.key_version, f.meta, f.purged_at"
                    " FROM facts f"
                    " LEFT JOIN fact_vectors v ON v.fact_rowid = f.rowid_"
                    " WHERE f.tenant_id = ? AND f.rowid_ > ?"
                    " AND (v.model_id IS NULL OR v.model_id <> ?) ORDER BY f.rowid_ LIMIT ?"
                )
                args = (ident[0], after_rowid, model_id, limit)
            opener = self._opener(conn)
            return [
                # A purged fact's words are gone: nothing to open (and nothing to index).
                (
                    r[0],
                    "" if r[6] is not None else opener.fields(tenant, r[3], r[4], r[1], r[5])[0],
                    r[2],
                )
                for r in conn.execute(sql, args)
            ]

        return await self._run_read(read)

    async def count_facts(self, tenant: str) -> int:
        """How many facts `tenant` has (any status)."""

        def read(conn: apsw.Connection) -> int:
            ident = self._tenant_id(conn, tenant)
            if ident is None:
                return 0
            return int(
                _rows(conn, "SELECT count(*) FROM facts WHERE tenant_id = ?", (ident[0],))[0][0]
            )

        return await self._run_read(read)

    async def purged_rowids(self, tenant: str) -> list[int]:
        """Rowids of `tenant`'s purged facts, ascending."""

        def read(conn: apsw.Connection) -> list[int]:
            ident = self._tenant_id(conn, tenant)
            if ident is None:
                return []
            return [
                int(r[0])
                for r in conn.execute(
                    "SELECT rowid_ FROM facts INDEXED BY facts_purged"
                    " WHERE tenant_id = ? AND purged_at IS NOT NULL ORDER BY rowid_",
                    (ident[0],),
                )
            ]

        return await self._run_read(read)

    async def last_vector_rowid(self, tenant: str) -> int:
        """The highest rowid with a stored vector in `tenant` (0 if none): the index's freshness."""

        def read(conn: apsw.Connection) -> int:
            ident = self._tenant_id(conn, tenant)
            if ident is None:
                return 0
            value = _rows(
                conn, "SELECT max(fact_rowid) FROM fact_vectors WHERE tenant_id = ?", (ident[0],)
            )[0][0]
            return int(value or 0)

        return await self._run_read(read)

    # ------------------------------------------------------------------ encryption at rest

    async def master_record(self) -> MasterRecord | None:
        """The master key record; None for a plaintext store."""
        return await self._run_read(sealing.read_master_record)

    async def data_keys(self, tenant: str | None = None) -> list[WrappedKey]:
        """Every wrapped data key (of `tenant`, when given), by tenant and version."""
        return await self._run_read(lambda conn: sealing.data_keys(conn, tenant))

    async def set_master_key(
        self, record: MasterRecord, previous: bytes | None, rewrapped: Sequence[WrappedKey]
    ) -> int:
        """Record a master key, re-wrapping every data key (see `Store.set_master_key`)."""
        return await self._run_write(self._set_master_key, record, previous, tuple(rewrapped))

    def _set_master_key(
        self, record: MasterRecord, previous: bytes | None, rewrapped: tuple[WrappedKey, ...]
    ) -> int:
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            count = sealing.set_master_key(conn, record, previous, rewrapped, self._now())
            conn.execute("COMMIT")  # durable: synchronous = FULL
        except BaseException as exc:
            if not conn.get_autocommit():
                conn.execute("ROLLBACK")
            if isinstance(exc, apsw.Error):
                raise StoreError(f"cannot record the master key: {exc}") from exc
            raise
        finally:
            self._load_write_state(conn)
        return count

    async def facts_to_reseal(self, tenant: str, after_rowid: int, limit: int) -> list[int]:
        """Rowids above `after_rowid` of facts sealed with an older key than the current one."""

        def read(conn: apsw.Connection) -> list[int]:
            ident = self._tenant_id(conn, tenant)
            return [] if ident is None else sealing.stale_rowids(conn, ident[0], after_rowid, limit)

        return await self._run_read(read)

    async def count_facts_to_reseal(self, tenant: str) -> int:
        """How many facts of `tenant` are sealed with an older key than the current one."""

        def read(conn: apsw.Connection) -> int:
            ident = self._tenant_id(conn, tenant)
            return 0 if ident is None else len(sealing.stale_rowids(conn, ident[0], 0, None))

        return await self._run_read(read)

    # ------------------------------------------------------------------ verification

    async def verify(
        self,
        public_keys: Sequence[Ed25519PublicKey],
        tenant: str | None = None,
        *,
        check_stored_nodes: bool = True,
        max_problems: int = 10_000,
        workers: int | None = None,
    ) -> VerifyReport:
        """Recompute chains, trees, fact digests and checkpoints; report every problem found.

        Ledgers of at least `_PARALLEL_MIN` entries are scanned in `workers` child processes
        (default: one per CPU); `workers` also forces that many ranges on a smaller ledger.
        """

        def read(conn: apsw.Connection) -> VerifyReport:
            names = (
                [tenant]
                if tenant is not None
                else [r[0] for r in conn.execute("SELECT name FROM tenants ORDER BY name")]
            )
            problems: list[Problem] = []
            entries = facts = checkpoints = purged = 0
            truncated = False
            for name in names:
                ident = self._tenant_id(conn, name)
                if ident is None:
                    raise NotFound(f"tenant {name!r} has no ledger")
                found, counts, cut = self._verify_tenant(
                    conn,
                    name,
                    ident[0],
                    public_keys,
                    check_stored_nodes,
                    max_problems - len(problems),
                    workers,
                )
                problems += found
                entries += counts[0]
                facts += counts[1]
                checkpoints += counts[2]
                purged += counts[3]
                truncated = truncated or cut
            if len(problems) > max_problems:
                problems, truncated = problems[:max_problems], True
            return VerifyReport(
                tuple(problems),
                len(names),
                entries,
                facts,
                checkpoints,
                truncated,
                purged=purged,
            )

        return await self._run_read(read)

    def _verify_tenant(
        self,
        conn: apsw.Connection,
        tenant: str,
        tenant_id: int,
        public_keys: Sequence[Ed25519PublicKey],
        check_nodes: bool,
        max_problems: int,
        workers: int | None,
    ) -> tuple[list[Problem], tuple[int, int, int, int], bool]:
        next_seq, head_hash = _rows(
            conn, "SELECT next_seq, head_hash FROM tenants WHERE id = ?", (tenant_id,)
        )[0]
        checkpoints = self._checkpoints(conn, tenant)
        wanted = frozenset(c.tree_size for c in checkpoints)
        parts = workers or (os.cpu_count() or 1)
        if workers is None and next_seq < _PARALLEL_MIN:
            parts = 1
        parts = max(1, min(parts, next_seq))
        if self._cipher is not None:
            parts = 1  # the data keys that open sealed rows never leave this process
        bounds = [next_seq * i // parts for i in range(parts)] + [None]
        specs: list[dict[str, Any]] = [
            {
                "tenant": tenant,
                "tenant_id": tenant_id,
                "start": bounds[i],
                "stop": bounds[i + 1],
                "fill_to": bounds[i + 1] if bounds[i + 1] is not None else next_seq,
                "wanted_sizes": wanted,
                "check_nodes": check_nodes,
                "max_problems": max_problems,
            }
            for i in range(parts)
        ]
        if parts == 1:
            chunks = [scan.scan_range(conn, **specs[0], opener=self._scan_opener(conn))]
            state = list(self._state_problems(conn, tenant, tenant_id))
        else:
            running = scan.scan_parallel(str(self._path), specs)
            try:
                state = list(self._state_problems(conn, tenant, tenant_id))  # meanwhile
                chunks = running.results()
            finally:
                running.stop()
        problems: list[Problem] = []
        roots: dict[int, bytes] = {}
        for i, chunk in enumerate(chunks):
            if i:
                before = chunks[i - 1]
                resume = (before.last_hash, before.end_frontier)
                if resume != (chunk.start_prev_hash, chunk.start_frontier):
                    # The stored state this range started from differs from the recomputed one
                    # (tampering upstream): scan it again from the recomputed state, here.
                    chunk = chunks[i] = scan.scan_range(conn, **specs[i], resume=resume)
            problems += chunk.problems
            roots.update(chunk.roots)
        last = chunks[-1]
        problems += head_problems(tenant, last.position, last.last_hash, next_seq, head_hash)
        problems += checkpoint_problems(tenant, checkpoints, public_keys, roots, last.position)
        problems += state
        counts = (
            sum(c.entries for c in chunks),
            sum(c.facts for c in chunks),
            len(checkpoints),
            sum(c.purged for c in chunks),
        )
        truncated = any(c.truncated for c in chunks)
        return problems, counts, truncated

    def _scan_opener(self, conn: apsw.Connection) -> sealing.FactOpener | None:
        """What verification decrypts sealed rows with (None for a plaintext store)."""
        return None if self._cipher is None else self._opener(conn)

    @staticmethod
    def _state_problems(conn: apsw.Connection, tenant: str, tenant_id: int) -> Iterator[Problem]:
        """Facts whose deprecation/supersession state disagrees with the ledger, and orphans."""
        for fid, seq in conn.execute(
            "SELECT f.id, f.seq FROM facts f LEFT JOIN transactions x"
            " ON x.tenant_id = f.tenant_id AND x.seq = f.seq"
            " WHERE f.tenant_id = ? AND (x.seq IS NULL OR x.subject IS NOT f.id)",
            (tenant_id,),
        ):
            yield Problem(tenant, seq, "fact_unlogged", f"fact {fid} has no matching store entry")
        # Every deprecate/supersede entry must be reflected in the fact it changed ...
        for seq, op, subject, ts, payload, fid, dep_at, reason, sup_by in conn.execute(
            "SELECT x.seq, x.op, x.subject, x.ts, x.payload, f.id, f.deprecated_at,"
            " f.deprecation_reason, f.superseded_by"
            " FROM transactions x INDEXED BY transactions_changes"
            " LEFT JOIN facts f ON f.tenant_id = x.tenant_id AND f.id = CASE x.op"
            "   WHEN 'deprecate' THEN x.subject ELSE json_extract(x.payload, '$.supersedes') END"
            " WHERE x.tenant_id = ? AND x.op <> 'store' AND x.op IN ('deprecate', 'supersede')",
            (tenant_id,),
        ):
            body = json.loads(payload)
            target = subject if op == "deprecate" else body.get("supersedes")
            if fid is None:
                yield Problem(tenant, seq, "fact_missing", f"fact {target} is missing")
                continue
            expected_by = subject if op == "supersede" else None
            ok = dep_at is not None and format_ts(dep_at) == ts and sup_by == expected_by
            if op == "deprecate":
                ok = ok and reason == body.get("reason")
            if not ok:
                yield Problem(
                    tenant, seq, "state_changed", f"fact {target} no longer shows this {op}"
                )
        # ... and every fact marked deprecated or superseded must have such an entry.
        for fid, seq in conn.execute(
            "SELECT f.id, f.seq FROM facts f WHERE f.tenant_id = ? AND f.deprecated_at IS NOT NULL"
            " AND NOT EXISTS (SELECT 1 FROM transactions x INDEXED BY transactions_changes"
            "   WHERE x.tenant_id = f.tenant_id AND x.op <> 'store' AND x.subject = f.id"
            "   AND x.op = 'deprecate')"
            " AND NOT EXISTS (SELECT 1 FROM transactions x INDEXED BY transactions_changes"
            "   WHERE x.tenant_id = f.tenant_id AND x.op <> 'store' AND x.subject = f.superseded_by"
            "   AND x.op = 'supersede')",
            (tenant_id,),
        ):
            yield Problem(
                tenant, seq, "state_changed", f"fact {fid} is marked inactive without an entry"
            )
        # A purge entry must match its fact's purge mark, and a purge mark needs its entry: a
        # fact blanked without one was altered (its digest cannot be checked any more).
        for seq, subject, ts, fid, purged_at in conn.execute(
            "SELECT x.seq, x.subject, x.ts, f.id, f.purged_at"
            " FROM transactions x INDEXED BY transactions_changes"
            " LEFT JOIN facts f ON f.tenant_id = x.tenant_id AND f.id = x.subject"
            " WHERE x.tenant_id = ? AND x.op <> 'store' AND x.op = 'purge'",
            (tenant_id,),
        ):
            if fid is None:
                yield Problem(tenant, seq, "fact_missing", f"fact {subject} is missing")
            elif purged_at is None or format_ts(purged_at) != ts:
                yield Problem(
                    tenant, seq, "state_changed", f"fact {fid} no longer shows this purge"
                )
        for fid, seq in conn.execute(
            "SELECT f.id, f.seq FROM facts f INDEXED BY facts_purged"
            " WHERE f.tenant_id = ? AND f.purged_at IS NOT NULL"
            " AND NOT EXISTS (SELECT 1 FROM transactions x INDEXED BY transactions_changes"
            "   WHERE x.tenant_id = f.tenant_id AND x.op <> 'store' AND x.subject = f.id"
            "   AND x.op = 'purge')",
            (tenant_id,),
        ):
            yield Problem(
                tenant,
                seq,
                "content_changed",
                f"fact {fid} is marked purged but the ledger has no purge entry for it",
            )

    # ------------------------------------------------------------------ export / import

    async def export(self, tenant: str, path: Path, public_key_pem: bytes) -> int:
        """Write `tenant`'s bundle (entries, facts, checkpoints, public key) atomically."""

        def read(conn: apsw.Connection) -> int:
            tenant_id, size = self._sizes(conn, tenant)
            head_hash = _rows(conn, "SELECT head_hash FROM tenants WHERE id = ?", (tenant_id,))[0][
                0
            ]
            txs = (
                _tx_from_row(tenant, r)
                for r in conn.execute(
                    f"SELECT {_TX_COLUMNS} FROM transactions WHERE tenant_id = ? ORDER BY seq",
                    (tenant_id,),
                )
            )
            opener = self._opener(conn)
            facts = (
                _fact_from_row(r, opener)
                for r in conn.execute(
                    f"SELECT {_FACT_COLUMNS} FROM facts f JOIN tenants t ON t.id = f.tenant_id"
                    " WHERE f.tenant_id = ? ORDER BY f.seq",
                    (tenant_id,),
                )
            )
            bundle.write_bundle(
                path,
                tenant=tenant,
                tree_size=size,
                head_hash=head_hash,
                public_key_pem=public_key_pem,
                transactions=txs,
                facts=facts,
                checkpoints=self._checkpoints(conn, tenant),
            )
            return size

        return await self._run_read(read)

    async def import_bundle(self, path: Path) -> bundle.BundleHeader:
        """Load a tenant's bundle verbatim (entries, facts, checkpoints) as a new tenant.

        Entries, facts and checkpoints keep their bytes; Merkle subtree hashes and the tag
        index are rebuilt as they are loaded, so the copy is a working store (proofs, appends):
        `verify-export` loads a bundle this way to check it, `migrate-store` to restore it. One
        transaction: a failure leaves nothing behind. The tenant must not exist yet (Conflict).
        Search data is not in a bundle: reindex after.
        """
        try:
            return await self._run_write(self._import_bundle, path)
        except apsw.ConstraintError as exc:
            raise IntegrityError(
                f"{path}: the bundle repeats or contradicts a row ({exc}); it was altered"
            ) from exc

    def _import_bundle(self, path: Path) -> bundle.BundleHeader:
        conn = self._conn()
        with conn:
            header, reader = bundle.read_bundle(path)
            if _rows(conn, "SELECT 1 FROM tenants WHERE name = ?", (header.tenant,)):
                raise Conflict(f"tenant {header.tenant!r} already exists in the target store")
            conn.execute(
                "INSERT INTO tenants(name, created_at, next_seq, head_hash) VALUES (?, ?, ?, ?)",
                (header.tenant, time.time_ns() // 1000, header.tree_size, header.head_hash),
            )
            tenant_id = conn.last_insert_rowid()
            staged = _Rows()
            frontier: Frontier = ()
            for record in reader:
                if isinstance(record, Transaction):
                    staged.transactions.append(
                        (
                            tenant_id,
                            record.seq,
                            record.op,
                            record.subject,
                            record.actor,
                            record.ts,
                            canonical_json(dict(record.payload)).decode(),
                            record.payload_digest,
                            record.prev_hash,
                            record.hash,
                        )
                    )
                    leaf = leaf_hash(transaction_entry(record))
                    done, frontier = extend_frontier(frontier, record.seq, leaf)
                    staged.nodes.extend((tenant_id, last_leaf(lv, i), lv, h) for lv, i, h in done)
                elif isinstance(record, Fact):
                    conn.execute(
                        "INSERT INTO facts(id, tenant_id, project, content, fact_type, tags,"
                        " source, confidence, valid_from, valid_until, supersedes, created_at,"
                        " meta, seq, deprecated_at, deprecation_reason, superseded_by,"
                        " purged_at, purge_reason) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (
                            record.id,
                            tenant_id,
                            record.project,
                            record.content,
                            record.fact_type,
                            json.dumps(list(record.tags), ensure_ascii=False),
                            record.source,
                            record.confidence,
                            to_micros(record.valid_from),
                            None if record.valid_until is None else to_micros(record.valid_until),
                            record.supersedes,
                            to_micros(record.created_at),
                            canonical_json(dict(record.meta)).decode(),
                            record.seq,
                            None
                            if record.deprecated_at is None
                            else to_micros(record.deprecated_at),
                            record.deprecation_reason,
                            record.superseded_by,
                            None if record.purged_at is None else to_micros(record.purged_at),
                            record.purge_reason,
                        ),
                    )
                    staged.tags.extend((tenant_id, tag, record.id) for tag in set(record.tags))
                else:
                    conn.execute(
                        "INSERT INTO checkpoints(tenant_id, tree_size, root, ts, signature, key_id)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            tenant_id,
                            record.tree_size,
                            record.root,
                            record.ts,
                            record.signature,
                            record.key_id,
                        ),
                    )
                if len(staged.transactions) + len(staged.tags) >= _IMPORT_FLUSH:
                    staged.flush(conn)
            staged.flush(conn)
        # Committed by another path than the writer's: read the clock, rowids and heads again.
        self._load_write_state(conn)
        return header

    async def import_vectors(self, tenant: str, vectors: Sequence[tuple[str, str, bytes]]) -> int:
        """Store (fact id, model id, float32 bytes) vectors for facts of `tenant`; return how many.

        Derived data (as `ReindexFacts`): a fact's existing vector is replaced; no ledger entry.
        """
        if not vectors:
            return 0

        def write() -> int:
            conn = self._conn()
            ident = self._tenant_id(conn, tenant)
            if ident is None:
                return 0
            before = conn.total_changes()
            with conn:
                conn.executemany(
                    "INSERT OR REPLACE INTO fact_vectors(fact_rowid, tenant_id, model_id, vector)"
                    " SELECT rowid_, tenant_id, ?, ? FROM facts WHERE tenant_id = ? AND id = ?",
                    [(model, vector, ident[0], fact_id) for fact_id, model, vector in vectors],
                )
            return int(conn.total_changes() - before)

        return await self._run_write(write)
