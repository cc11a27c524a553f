"""The PostgreSQL backend (psycopg 3 async, bounded pool, pgvector): the scale-out store's SQL.

Several CORTEX processes (on several machines) may share one database. Each write group is one
database transaction that locks the row of every tenant it appends to (`SELECT ... FOR NO KEY
UPDATE`, in name order so that two groups never deadlock), reads that tenant's head fresh (next
seq, last hash, Merkle right edge, clock), appends, updates the head and commits. New facts are
prepared before the lock (stamps, ids, digests, sealing, text index rows) and only chained under
it, then copied in with `COPY`. Within one process up to three groups overlap
(`write_concurrency`): the next one is prepared, and its fact and tag rows copied in, while the
previous one holds its rows and commits; they plan and lock in the order the writer handed them
over, so each tenant's ledger gets them in that order. Nothing about a ledger is trusted from an
earlier group (the seq rows are copied ahead at is a guess, checked under the lock), so appends
from any number of processes interleave without gaps, forks or clocks that go backwards. Hashes,
digests, Merkle nodes and checkpoints are computed by the same functions as on SQLite, so the bytes
are identical for the same operations.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import numpy as np
import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from numpy.typing import NDArray
from pgvector.psycopg import register_vector_async
from psycopg import AsyncConnection, AsyncCursor
from psycopg.adapt import PyFormat
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from cortex.canonical import (
    ZERO_HASH,
    StampText,
    canonical_json,
    format_ts,
    from_micros,
    new_fact_id,
    parse_ts,
    sha256,
    to_micros,
)
from cortex.errors import (
    ConfigError,
    Conflict,
    CortexError,
    NotFound,
    StoreClosed,
    StoreError,
    StoreUnavailable,
    ValidationError,
    WrongKey,
)
from cortex.ledger import bundle
from cortex.ledger.chain import build_transaction, link_entry, transaction_entry
from cortex.ledger.merkle import (
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
from cortex.ledger.verify import (
    LedgerRow,
    TenantVerifier,
    checkpoint_problems,
    head_problems,
    opened_fact_digest,
    stored_fact_digest,
)
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
    open_fact_fields,
)
from cortex.store.postgres import sealing
from cortex.store.postgres.schema import (
    MIGRATION_LOCK,
    MIGRATIONS,
    TEXT_CONFIG,
    VECTOR_INDEX_DIMS,
)

__all__ = ["PostgresStore", "Signer", "is_database_url", "redact_url"]

T = TypeVar("T")
Signer = Callable[[str, int, bytes, str], Checkpoint]
Row = tuple[Any, ...]

_MAX_CHAIN = 10_000
_FETCH = 2000
_HEAD_HINTS = 1024  # tenants whose last head a store remembers (see `_head_hints`)
# ts_rank weights for {D, C, B, A}: content is indexed with weight B, tags with A, so a tag
# match counts twice a content match (as the BM25 column weights on SQLite). Normalisation 1
# divides by 1 + log(document length): longer texts need more matches, as with BM25. ts_rank
# (term frequencies) rather than ts_rank_cd (cover density): 2.5x cheaper on common words.
_RANK_WEIGHTS = "{0.1, 0.2, 0.5, 1.0}"
_RANK_NORMALIZATION = 1
# At most this many text matches are ranked per query (see `text_candidates`).
_TEXT_RANK_MAX = 2000
# The facts of a list of rowids (the first parameter) as `f`, found by primary key before any
# other condition of the statement applies. Without the fence (OFFSET 0), a table without
# statistics (after a bulk load, before the first ANALYZE) gets the tenant condition planned as
# an index scan ANDed with the key lookups: every index entry of the tenant read for a few
# hundred rows (docs/postgres.md, "Text search plans").
_FACTS_BY_ROWIDS = "(SELECT * FROM facts WHERE rowid_ = ANY(%s) OFFSET 0) AS f"
_FACT_COLUMNS = (
    "f.id, t.name, f.project, f.content, f.fact_type, f.tags, f.source, f.confidence, "
    "f.valid_from, f.valid_until, f.supersedes, f.created_at, f.meta, f.seq, "
    "f.deprecated_at, f.deprecation_reason, f.superseded_by, f.key_version, "
    "f.purged_at, f.purge_reason"
)
_TX_COLUMNS = "seq, op, subject, actor, ts, payload, payload_digest, prev_hash, hash"
# Column types of the staged rows (unnest needs each array's type).
_TX_TYPES = ("int8", "int8", "text", "text", "text", "text", "text", "bytea", "bytea", "bytea")
_FACT_INSERT_COLUMNS = (
    "rowid_, id, tenant_id, project, content, fact_type, tags, source, confidence, valid_from,"
    " valid_until, supersedes, created_at, meta, seq, key_version"
)
_FACT_TYPES = (
    *("int8", "text", "int8", "text", "text", "text", "text", "text"),
    *("float8", "int8", "int8", "text", "int8", "text", "int8", "int4"),
)
_ROWS_SQL = (
    "SELECT x.seq, x.op, x.subject, x.actor, x.ts, x.payload, x.payload_digest,"
    " x.prev_hash, x.hash, f.id, f.project, f.content, f.fact_type, f.tags, f.source,"
    " f.confidence, f.valid_from, f.valid_until, f.supersedes, f.created_at, f.meta,"
    " f.key_version, f.purged_at"
    " FROM transactions x LEFT JOIN facts f ON f.tenant_id = x.tenant_id AND f.seq = x.seq"
    " WHERE x.tenant_id = %s ORDER BY x.seq"
)
_NODES_SQL = (
    "SELECT last_leaf, level, hash FROM merkle_nodes WHERE tenant_id = %s ORDER BY last_leaf, level"
)
# One FTS5 string of `cortex.search.text.fts5_query`: "..." with "" inside, maybe a * after it.
_FTS5_TERM = re.compile(r'"((?:[^"]|"")*)"(\*?)')
_URL_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")


def is_database_url(value: object) -> bool:
    """True for a PostgreSQL connection URL (`postgresql://...` or `postgres://...`)."""
    return isinstance(value, str) and value.startswith(("postgresql://", "postgres://"))


def redact_url(url: str) -> str:
    """The URL with its password (if any) replaced by `***`, for messages and logs."""
    return _URL_PASSWORD.sub(r"\1***@", url)


@dataclass(frozen=True, slots=True)
class _Head:
    """A tenant's ledger head, read under its row lock: next seq, last hash, tree edge, clock."""

    tenant_id: int
    next_seq: int
    head_hash: bytes
    frontier: tuple[tuple[int, int, bytes], ...]  # (level, index, hash), left to right
    last_ts: int
    # The data key version new rows are sealed with (encrypted stores; None: none yet).
    key_version: int | None = None

    @property
    def position(self) -> tuple[int, int, bytes]:
        """Where the ledger stands (tenant id, next seq, last hash): what rows chained on a
        guessed head must find under the lock."""
        return (self.tenant_id, self.next_seq, self.head_hash)


class _Link(NamedTuple):
    """A plan's ledger rows chained on a head (`_link`): its transaction and Merkle node rows
    and the head they leave. `base` is the (tenant id, next seq, head hash) they follow."""

    base: tuple[int, int, bytes]
    transactions: list[Row]
    nodes: list[Row]
    next_seq: int
    head_hash: bytes
    frontier: tuple[tuple[int, int, bytes], ...]


@dataclass(slots=True)
class _FactPlan:
    """One StoreFacts request prepared outside the tenant's lock (see `_plan_facts`).

    `rows` are fact rows without tenant id, seq and key version; `payloads` their ledger
    payloads (canonical text, its digest, the entry's timestamp text); `stamps` their
    timestamps. `first_seq` is set when the facts are chained. `ahead_seq` is the first seq
    their fact and tag rows were copied in with before the tenant's row was locked (None: they
    are copied under the lock; see `_copy_ahead`). `hint` is the head this process expects to
    find under the lock (the one its last group left) and `link` the ledger rows chained on it
    ahead of the lock; both are used only if the locked head is that head (`_chain_facts`).
    """

    request: StoreFacts
    key_version: int | None
    rowids: list[int]
    tenant_id: int
    randoms: list[int] = field(default_factory=list)
    stamps: list[int] = field(default_factory=list)
    payloads: list[tuple[str, bytes, str]] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    first_seq: int = -1
    ahead_seq: int | None = None
    hint: tuple[int, int, bytes] | None = None
    link: _Link | None = None

    def facts(self) -> list[Fact]:
        """The stored facts, as the caller gets them (after the commit)."""
        tenant = self.request.tenant
        out = []
        for seq, row, draft in zip(
            itertools.count(self.first_seq), self.rows, self.request.drafts, strict=False
        ):
            created = from_micros(row[11])
            out.append(draft.as_fact(fact_id=row[1], tenant=tenant, created=created, seq=seq))
        return out


@dataclass(slots=True)
class _Rows:
    """Rows staged by write requests, inserted with one statement per table."""

    transactions: list[Row] = field(default_factory=list)
    nodes: list[Row] = field(default_factory=list)
    facts: list[Row] = field(default_factory=list)
    tags: list[Row] = field(default_factory=list)
    texts: list[Row] = field(default_factory=list)
    vectors: list[Row] = field(default_factory=list)

    def add_facts(
        self, plan: _FactPlan, tenant_id: int, first_seq: int, version: int | None
    ) -> None:
        """Stage `plan`'s fact rows, at seqs from `first_seq`, and their tag rows."""
        facts, tags = self.facts, self.tags
        for seq, (row, draft) in enumerate(
            zip(plan.rows, plan.request.drafts, strict=True), first_seq
        ):
            facts.append((row[0], row[1], tenant_id, *row[2:], seq, version))
            tags.extend((tenant_id, tag, row[1]) for tag in draft.tags)

    async def flush(self, cur: AsyncCursor[Row]) -> None:
        """Write everything staged: `COPY` for plain rows, one `INSERT` for texts and vectors.

        COPY's rows are formatted by psycopg's C code; arrays for `unnest` are dumped in Python,
        element by element, which cost more than the server's insert did.
        """
        if self.transactions:
            await _copy(
                cur, f"transactions(tenant_id, {_TX_COLUMNS})", _TX_TYPES, self.transactions
            )
        if self.nodes:
            await _copy(
                cur,
                "merkle_nodes(tenant_id, last_leaf, level, hash)",
                ("int8", "int8", "int4", "bytea"),
                self.nodes,
            )
        if self.facts:
            await _copy(cur, f"facts({_FACT_INSERT_COLUMNS})", _FACT_TYPES, self.facts)
        if self.tags:
            await _copy(
                cur, "fact_tags(tenant_id, tag, fact_id)", ("int8", "text", "text"), self.tags
            )
        if self.texts:
            await _insert_texts(cur, self.texts)
        if self.vectors:
            await _insert_vectors(cur, self.vectors)
        self.transactions, self.nodes, self.facts, self.tags = [], [], [], []
        self.texts, self.vectors = [], []


async def _copy(
    cur: AsyncCursor[Row], target: str, types: Sequence[str], rows: Sequence[Row]
) -> None:
    """Insert `rows` into `target` with one binary `COPY` (columns of the given types)."""
    async with cur.copy(f"COPY {target} FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(list(types))
        write = copy.write_row
        for row in rows:
            await write(row)


async def _discard_search_rows(cur: AsyncCursor[Row], rowids: Sequence[int]) -> None:
    """Delete the text and vector rows sent for facts that were then refused (no fact rows)."""
    if rowids:
        await cur.execute("DELETE FROM fact_text WHERE fact_rowid = ANY(%s)", (list(rowids),))
        await cur.execute("DELETE FROM fact_vectors WHERE fact_rowid = ANY(%s)", (list(rowids),))


async def _discard_ahead(cur: AsyncCursor[Row], plan: _FactPlan) -> None:
    """Delete the fact and tag rows `_copy_ahead` copied in for `plan` (none: nothing)."""
    if plan.ahead_seq is None:
        return
    await cur.execute("DELETE FROM facts WHERE rowid_ = ANY(%s)", (plan.rowids,))
    if any(draft.tags for draft in plan.request.drafts):
        await cur.execute(
            "DELETE FROM fact_tags WHERE tenant_id = %s AND fact_id = ANY(%s)",
            (plan.tenant_id, [row[1] for row in plan.rows]),
        )
    plan.ahead_seq = None


def _link(plan: _FactPlan, head: _Head) -> _Link:
    """The transaction and Merkle node rows of `plan`'s facts appended at `head`."""
    tenant, tenant_id, actor = plan.request.tenant, head.tenant_id, plan.request.actor
    seq, prev, frontier = head.next_seq, head.head_hash, head.frontier
    transactions: list[Row] = []
    nodes: list[Row] = []
    for row, (payload, payload_digest, stamp), draft in zip(
        plan.rows, plan.payloads, plan.request.drafts, strict=True
    ):
        fact_id = row[1]
        who = actor or draft.source
        entry, tx_hash = link_entry(
            tenant=tenant,
            seq=seq,
            op="store",
            subject=fact_id,
            actor=who,
            ts=stamp,
            payload_digest=payload_digest,
            prev_hash=prev,
        )
        transactions.append(
            (tenant_id, seq, "store", fact_id, who, stamp, payload, payload_digest, prev, tx_hash)
        )
        done, frontier = extend_frontier(frontier, seq, leaf_hash(entry))
        nodes.extend((tenant_id, last_leaf(lv, i), lv, h) for lv, i, h in done)
        seq, prev = seq + 1, tx_hash
    return _Link(head.position, transactions, nodes, seq, prev, frontier)


def _seq_hints(
    requests: Sequence[WriteRequest],
    plans: dict[int, _FactPlan | CortexError],
    heads: dict[str, _Head | None],
) -> dict[str, int]:
    """Each tenant's next seq once this group commits, where only new facts append to it."""
    counts: dict[str, int] = {}
    for position, request in enumerate(requests):
        plan = plans.get(position)
        if isinstance(plan, _FactPlan):
            counts[request.tenant] = counts.get(request.tenant, 0) + len(plan.rows)
    others = {r.tenant for r in requests if not isinstance(r, StoreFacts)}
    return {
        tenant: head.next_seq + count
        for tenant, count in counts.items()
        if tenant not in others and (head := heads.get(tenant)) is not None
    }


async def _insert_vectors(cur: AsyncCursor[Row], rows: Sequence[Row]) -> None:
    """Insert (rowid, tenant id, model id, vector) rows in one statement."""
    arrays = [list(column) for column in zip(*rows, strict=True)]
    await cur.execute(
        "INSERT INTO fact_vectors(fact_rowid, tenant_id, model_id, embedding)"
        " SELECT * FROM unnest(%b::bigint[], %b::bigint[], %b::text[], %b::vector[])",
        arrays,
    )


async def _insert_texts(
    cur: AsyncCursor[Row], rows: Sequence[Row], *, replace: bool = False
) -> None:
    """Index (rowid, tenant id, text, tags) rows: content weighted B, tags weighted A."""
    arrays = [list(column) for column in zip(*rows, strict=True)]
    conflict = " ON CONFLICT (fact_rowid) DO UPDATE SET doc = excluded.doc" if replace else ""
    await cur.execute(
        "INSERT INTO fact_text(fact_rowid, tenant_id, doc)"
        f" SELECT r, t, setweight(to_tsvector('{TEXT_CONFIG}', c), 'B')"
        f" || setweight(to_tsvector('{TEXT_CONFIG}', g), 'A')"
        " FROM unnest(%b::bigint[], %b::bigint[], %b::text[], %b::text[]) AS u(r, t, c, g)"
        + conflict,
        arrays,
    )


def _fact_from_row(row: Sequence[Any], cipher: FieldCipher | None) -> Fact:
    """A Fact from a `_FACT_COLUMNS` row, decrypted by `cipher` (its keys loaded beforehand)."""
    if row[18] is not None:  # purged: its content and meta were destroyed, nothing to open
        content, meta_json = "", "{}"
    else:
        content, meta_json = open_fact_fields(cipher, row[1], row[0], row[17], row[3], row[12])
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
        payload_digest=bytes(row[6]),
        prev_hash=bytes(row[7]),
        hash=bytes(row[8]),
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


def _filter_sql(tenant_id: int, filters: ListFilter) -> tuple[str, list[Any]]:
    """A WHERE condition on `facts f` (and its parameters) for one tenant and `filters`."""
    sql = ["f.tenant_id = %s"]
    params: list[Any] = [tenant_id]
    for column in ("project", "fact_type", "source"):
        value = getattr(filters, column)
        if value is not None:
            sql.append(f"f.{column} = %s")
            params.append(value)
    for tag in filters.tags:
        sql.append(
            "EXISTS (SELECT 1 FROM fact_tags g WHERE g.tenant_id = f.tenant_id AND g.tag = %s"
            " AND g.fact_id = f.id)"
        )
        params.append(tag)
    if filters.min_confidence is not None:
        sql.append("f.confidence >= %s")
        params.append(filters.min_confidence)
    if filters.as_of is not None:
        t = to_micros(filters.as_of)
        sql.append(
            "f.created_at <= %s AND f.valid_from <= %s"
            " AND (f.valid_until IS NULL OR %s < f.valid_until)"
            " AND (f.deprecated_at IS NULL OR %s < f.deprecated_at)"
        )
        params += [t, t, t, t]
    elif not filters.include_inactive:
        sql.append("f.deprecated_at IS NULL AND f.purged_at IS NULL")
    return " AND ".join(sql), params


def _tsquery_terms(match: str) -> list[str]:
    """The `to_tsquery` terms of an FTS5 expression made by `fts5_query` (none: no term).

    Each quoted FTS5 string becomes a quoted lexeme (a phrase of several words becomes their
    `<->` phrase, through `to_tsquery`'s own parsing) and a trailing `*` a prefix match (`:*`).
    Quoting makes any text a valid query.
    """
    terms = []
    for text, star in _FTS5_TERM.findall(match):
        words = text.replace('""', '"')
        if words.strip():
            quoted = "'" + words.replace("\\", "\\\\").replace("'", "''") + "'"
            terms.append(quoted + (":*" if star else ""))
    return terms


def _tsquery_text(match: str) -> str | None:
    """The `to_tsquery` text of an FTS5 expression: its terms joined by `|` (OR) or `&` (AND)."""
    terms = _tsquery_terms(match)
    if not terms:
        return None
    joiner = " & " if '" AND "' in match or '* AND "' in match else " | "
    return joiner.join(terms)


def _vector_bytes(value: Any) -> bytes:
    """float32 bytes of a vector as pgvector returns it."""
    return np.asarray(value.to_numpy(), dtype=np.float32).tobytes()


def _as_vector(data: bytes) -> NDArray[np.float32]:
    return np.frombuffer(data, dtype=np.float32)


def _node_key(level: int, index: int) -> tuple[int, int]:
    return last_leaf(level, index), level


def _pull(loop: asyncio.AbstractEventLoop, cursor: AsyncCursor[Row]) -> Iterator[Row]:
    """Stream a server-side cursor's rows into blocking code running on another thread."""
    while True:
        rows = asyncio.run_coroutine_threadsafe(cursor.fetchmany(_FETCH), loop).result()
        if not rows:
            return
        yield from rows


async def _configure(conn: AsyncConnection[Row]) -> None:
    await register_vector_async(conn)
    # `COPY ... set_types` picks dumpers by type oid, and for bytea that is psycopg's Python
    # dumper of its DB-API `Binary` wrapper (registered last for the oid); registering the
    # dumper of `bytes` again makes its (C) dumper the oid's: 1.2 -> 0.7 us per value, about
    # 2.5 us per fact (hashes in ledger rows and Merkle nodes).
    conn.adapters.register_dumper(bytes, conn.adapters.get_dumper(bytes, PyFormat.BINARY))


class PostgresStore:
    """A CORTEX store in one PostgreSQL database. Open with `await PostgresStore.open(url)`."""

    # The writer hands over the next group while the previous one is locked and committing.
    write_concurrency = 3

    def __init__(
        self,
        url: str,
        pool: AsyncConnectionPool[AsyncConnection[Row]],
        *,
        checkpoint_every: int,
        signer: Signer | None,
        cipher: FieldCipher | None = None,
    ) -> None:
        self._url = url
        self._cipher = cipher  # encryption at rest (None: plaintext)
        self._pool = pool
        self._checkpoint_every = checkpoint_every
        self._signer = signer
        # Randomness of fact ids: seeded from the OS once (ids are unique, not secret).
        self._random = random.Random(secrets.token_bytes(32))
        # The last fact timestamp this store handed out (the next one is later; see _plan_facts).
        self._last_ts = 0
        # Overlapping groups plan, then lock their tenants' rows, one at a time and in the order
        # they arrived (asyncio locks are fair): a later group's stamps are later and it takes
        # the rows after the earlier group, so its plan never goes stale on this process's
        # account (`_append_plan`).
        self._planning = asyncio.Lock()
        self._locking = asyncio.Lock()
        # Tenant -> the seq after the last group this process locked, if that group only
        # stored facts there (a hint for the next group's `_copy_ahead`; checked under the lock).
        self._seq_hints: dict[str, int] = {}
        # Tenant -> its head after the last group of this process that committed there (at
        # most _HEAD_HINTS): with no other group of this process open, the next group chains
        # its facts on it while the server indexes them, and `_lock_heads` takes its Merkle
        # edge; both only if the locked head is that head. `_link_ahead` is off after a miss
        # (another process appended) until a locked head matches its hint again.
        self._head_hints: dict[str, _Head] = {}
        self._groups_open = 0
        self._link_ahead = True
        self._closed = False

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        pool_size: int = 4,
        checkpoint_every: int = 1000,
        signer: Signer | None = None,
        timeout: float = 10.0,
        cipher: FieldCipher | None = None,
    ) -> PostgresStore:
        """Connect to the database at `url`, apply pending migrations and open a bounded pool.

        `pool_size` connections at most; a request waits up to `timeout` seconds for one, then
        fails with StoreUnavailable (as does any request while the database cannot be reached).
        An encrypted database needs `cipher` (ConfigError without; WrongKey for another key's).
        """
        if not is_database_url(url):
            raise ValidationError("a database URL starts with postgresql:// or postgres://")
        await cls.migrate(url, timeout=timeout)
        pool: AsyncConnectionPool[AsyncConnection[Row]] = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=max(1, pool_size),
            kwargs={"autocommit": True},
            configure=_configure,
            check=AsyncConnectionPool.check_connection,
            timeout=timeout,
            reconnect_timeout=0,  # keep trying to reconnect for as long as the store is open
            open=False,
            name="cortex",
        )
        try:
            await pool.open(wait=True, timeout=timeout)
        except PoolTimeout as exc:
            await pool.close()
            raise StoreUnavailable(f"cannot connect to {redact_url(url)}: {exc}") from exc
        store = cls(url, pool, checkpoint_every=checkpoint_every, signer=signer, cipher=cipher)
        try:
            record = await store.master_record()
            if record is not None and cipher is None:
                raise ConfigError(
                    f"{redact_url(url)} is encrypted: open it with its master key (cortex.open"
                    " reads the key file or passphrase named in the settings)"
                )
            if record is None and cipher is not None:
                raise ConfigError(f"{redact_url(url)} is not encrypted; open it without a cipher")
            if record is not None and cipher is not None and record.check != cipher.check:
                raise WrongKey(f"the master key given does not open {redact_url(url)}")
        except BaseException:
            await store.close()
            raise
        return store

    @staticmethod
    async def read_master_record(url: str, *, timeout: float = 10.0) -> MasterRecord | None:
        """The master key record of the database at `url` (None: plaintext or not created)."""
        try:
            return await sealing.read_master_record_at(url, timeout)
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(f"cannot connect to {redact_url(url)}: {exc}") from exc
        except psycopg.Error as exc:
            raise StoreError(f"cannot read {redact_url(url)}: {exc}") from exc

    @staticmethod
    async def migrate(url: str, *, timeout: float = 10.0) -> int:
        """Apply pending migrations (under an advisory lock); return the schema version."""
        try:
            async with (
                await AsyncConnection.connect(
                    url, autocommit=True, connect_timeout=max(1, int(timeout))
                ) as conn,
                conn.transaction(),
            ):
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS cortex_schema (version integer NOT NULL)"
                )
                cur = await conn.execute("SELECT max(version) FROM cortex_schema")
                row = await cur.fetchone()
                version = int(row[0] or 0) if row else 0
                if version > len(MIGRATIONS):
                    raise StoreError(
                        f"database schema version {version} is newer than this CORTEX"
                        f" supports ({len(MIGRATIONS)}); upgrade CORTEX"
                    )
                for number in range(version, len(MIGRATIONS)):
                    await conn.execute(MIGRATIONS[number])
                    await conn.execute(
                        "INSERT INTO cortex_schema(version) VALUES (%s)", (number + 1,)
                    )
                return len(MIGRATIONS)
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(f"cannot connect to {redact_url(url)}: {exc}") from exc
        except psycopg.Error as exc:
            raise StoreError(f"cannot migrate {redact_url(url)}: {exc}") from exc

    async def close(self) -> None:
        """Close every connection of the pool. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._pool.close()

    # ------------------------------------------------------------------ connection plumbing

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection[Row]]:
        """A pooled connection; driver failures become StoreUnavailable / StoreError."""
        if self._closed:
            raise StoreClosed("the store is closed")
        try:
            async with self._pool.connection() as conn:
                yield conn
        except PoolTimeout as exc:
            raise StoreUnavailable(
                f"no database connection within {self._pool.timeout:g}s"
                f" ({redact_url(self._url)}); retry later"
            ) from exc
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(f"the database connection failed: {exc}; retry later") from exc
        except psycopg.errors.QueryCanceled as exc:
            raise StoreUnavailable(f"the database cancelled the query: {exc}") from exc
        except psycopg.Error as exc:
            raise StoreError(f"database error: {exc}") from exc

    async def _read(
        self, fn: Callable[[AsyncCursor[Row]], Awaitable[T]], *, snapshot: bool = False
    ) -> T:
        """Run `fn` in one read-only transaction (one snapshot for all of it when `snapshot`)."""
        async with self._connection() as conn, conn.transaction():
            if snapshot:
                await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            async with conn.cursor() as cur:
                return await fn(cur)

    @staticmethod
    async def _rows(cur: AsyncCursor[Row], sql: str, params: Sequence[Any] = ()) -> list[Row]:
        await cur.execute(sql, params)
        return await cur.fetchall()

    async def _tenant_id(self, cur: AsyncCursor[Row], tenant: str) -> tuple[int, int] | None:
        rows = await self._rows(cur, "SELECT id, next_seq FROM tenants WHERE name = %s", (tenant,))
        return None if not rows else (int(rows[0][0]), int(rows[0][1]))

    async def _sizes(self, cur: AsyncCursor[Row], tenant: str) -> tuple[int, int]:
        ident = await self._tenant_id(cur, tenant)
        if ident is None:
            raise NotFound(f"tenant {tenant!r} has no ledger yet")
        return ident

    # ------------------------------------------------------------------ writes

    async def apply_writes(self, requests: Sequence[WriteRequest]) -> list[WriteOutcome]:
        """Apply a group of write requests in one durable transaction (see `Store`).

        New facts are prepared before any tenant is locked (`_plan_facts`); under the locks only
        seqs, chain hashes and Merkle nodes are computed and the rows are copied in.

        If the database fails (connection lost, server down), every request of the group gets
        that StoreUnavailable/StoreError in place: the writer keeps running and the next group
        tries again on a fresh connection. A failure while committing may leave the caller
        unsure whether the group committed: the error says so.
        """
        self._groups_open += 1
        try:
            async with self._connection() as conn, conn.transaction(), conn.cursor() as cur:
                async with self._planning:
                    plans = await self._plan_facts(cur, requests)
                # No await in between: this group queues for `_locking` before the next one
                # can finish planning (asyncio locks are first come, first served).
                await self._locking.acquire()
                try:
                    await self._copy_ahead(cur, requests, plans)
                    heads = await self._lock_heads(cur, requests)
                    self._seq_hints = _seq_hints(requests, plans, heads)
                finally:
                    self._locking.release()
                outcomes = await self._apply_group(cur, requests, plans, heads)
        except StoreError as exc:
            return [exc] * len(requests)
        finally:
            self._groups_open -= 1
        self._remember_heads(heads)
        # Committed: only now are the new facts' values built for the callers.
        return [o.facts() if isinstance(o, _FactPlan) else o for o in outcomes]

    async def _plan_facts(
        self, cur: AsyncCursor[Row], requests: Sequence[WriteRequest]
    ) -> dict[int, _FactPlan | CortexError]:
        """Prepare every StoreFacts request of the group before any tenant row is locked.

        Creates missing tenants, draws rowids, sends the full-text (and vector) rows, which
        depend on neither seq nor clock, and while the server indexes them prepares each fact
        (`_prepare_facts`). Keyed by the request's position in `requests`.
        """
        wanted = [(i, r) for i, r in enumerate(requests) if isinstance(r, StoreFacts)]
        if not wanted:
            return {}
        names = sorted({r.tenant for _, r in wanted})
        find = "SELECT name, id FROM tenants WHERE name = ANY(%s)"
        ids: dict[str, int] = dict(await self._rows(cur, find, (names,)))
        if len(ids) < len(names):
            # Only then an INSERT: one on an existing row waits for any transaction that has
            # updated it (the previous group of this process, committing).
            await cur.execute(
                "INSERT INTO tenants(name, created_at, last_ts, head_hash)"
                " SELECT n, %s, %s, %s FROM unnest(%s::text[]) AS n ORDER BY n"
                " ON CONFLICT (name) DO NOTHING",
                (*(time.time_ns() // 1000,) * 2, ZERO_HASH, names),
            )
            ids = dict(await self._rows(cur, find, (names,)))
        versions: dict[str, int] = {}
        refused: dict[str, CortexError] = {}
        if self._cipher is not None:
            # Read without the lock: `_apply_group` prepares again if the key changed meanwhile.
            versions = {
                name: int(version)
                for name, version in await self._rows(
                    cur,
                    "SELECT t.name, max(k.version) FROM data_keys k JOIN tenants t"
                    " ON t.id = k.tenant_id WHERE t.name = ANY(%s) GROUP BY t.name",
                    (names,),
                )
            }
            for name, version in versions.items():
                try:
                    await sealing.load_keys(cur, self._cipher, [(name, version)])
                except CortexError as exc:  # that tenant's requests fail, the others go on
                    refused[name] = exc
        needed = sum(len(r.drafts) for _, r in wanted)
        pool = [
            int(row[0])
            for row in await self._rows(
                cur, "SELECT nextval('fact_rowids') FROM generate_series(1, %s)", (needed,)
            )
        ]
        plans: dict[int, _FactPlan | CortexError] = {}
        texts: list[Row] = []
        vectors: list[Row] = []
        for i, request in wanted:
            rowids, pool = pool[: len(request.drafts)], pool[len(request.drafts) :]
            if request.search is not None and len(request.search) != len(request.drafts):
                plans[i] = ValidationError("search data must have one entry per fact")
                continue
            if request.tenant in refused:
                plans[i] = refused[request.tenant]
                continue
            tenant_id = int(ids[request.tenant])
            plans[i] = _FactPlan(request, versions.get(request.tenant), rowids, tenant_id)
            for rowid, data in zip(rowids, request.search or (), strict=True):
                texts.append((rowid, tenant_id, data.text, data.tags))
                if data.vector is not None:
                    vectors.append((rowid, tenant_id, data.model_id, _as_vector(data.vector)))
        failed: list[int] = []
        async with cur.connection.pipeline():
            # Sent without waiting: the server indexes while this process prepares the facts.
            if texts:
                await _insert_texts(cur, texts)
            if vectors:
                await _insert_vectors(cur, vectors)
            for i, plan in plans.items():
                if isinstance(plan, _FactPlan):
                    try:
                        self._last_ts = self._prepare_facts(plan, self._last_ts)
                    except CortexError as exc:
                        plans[i] = exc
                        failed += plan.rowids
            self._plan_links(requests, plans)
        await _discard_search_rows(cur, failed)
        return plans

    def _plan_links(
        self, requests: Sequence[WriteRequest], plans: dict[int, _FactPlan | CortexError]
    ) -> None:
        """Give prepared plans the head they should find under the lock and, while the last
        guess was right, their ledger rows chained on it (see `_head_hints`).

        Only when no other group of this process is open (one that is would append first) and
        for tenants this group only stores facts in; several plans of a tenant chain in turn.
        """
        if self._groups_open != 1 or not self._head_hints:
            return
        others = {r.tenant for r in requests if not isinstance(r, StoreFacts)}
        running = {t: h for t, h in self._head_hints.items() if t not in others}
        for plan in plans.values():
            if not isinstance(plan, _FactPlan):
                continue
            head = running.get(plan.request.tenant)
            if head is None:
                continue
            plan.hint = head.position
            if not self._link_ahead:
                running.pop(plan.request.tenant)  # the next plan's base is unknown
                continue
            plan.link = link = _link(plan, head)
            running[plan.request.tenant] = replace(
                head, next_seq=link.next_seq, head_hash=link.head_hash, frontier=link.frontier
            )

    def _remember_heads(self, heads: dict[str, _Head | None]) -> None:
        """After a commit: the heads it left are the hints for the next group."""
        hints = self._head_hints
        for name, head in heads.items():
            if head is not None:
                hints.pop(name, None)
                hints[name] = head
        while len(hints) > _HEAD_HINTS:
            del hints[next(iter(hints))]  # the oldest

    async def _copy_ahead(
        self,
        cur: AsyncCursor[Row],
        requests: Sequence[WriteRequest],
        plans: dict[int, _FactPlan | CortexError],
    ) -> None:
        """Copy in the fact and tag rows of prepared facts before their tenant's row is locked.

        Their seq is predicted from `_seq_hints` (the group before this one, which is locked
        or committing meanwhile); under the lock `_append_plan` shifts them if the ledger's
        head says otherwise, or replaces them if the facts had to be prepared again. Tenants
        this group also sends other requests for (whose transactions come in between) and
        tenants without a hint get their rows under the lock.
        """
        hints = dict(self._seq_hints)
        for request in requests:
            if not isinstance(request, StoreFacts):
                hints.pop(request.tenant, None)
        ahead = _Rows()
        encrypted = self._cipher is not None
        for position, request in enumerate(requests):
            plan = plans.get(position)
            seq = hints.get(request.tenant)
            if not isinstance(plan, _FactPlan) or seq is None:
                continue
            plan.ahead_seq = seq
            hints[request.tenant] = seq + len(plan.rows)
            ahead.add_facts(plan, plan.tenant_id, seq, plan.key_version if encrypted else None)
        await ahead.flush(cur)

    def _prepare_facts(self, plan: _FactPlan, floor: int) -> int:
        """Fill `plan` with its facts stamped after `floor` (microseconds); return the last stamp.

        Stamps come from the wall clock but always increase; a fact's id, record digest, ledger
        payload and (encrypted stores) sealed fields all follow from its stamp.
        """
        request, cipher = plan.request, self._cipher
        tenant, version = request.tenant, plan.key_version or 0
        seal = cipher.seal if cipher is not None and plan.key_version is not None else None
        if not plan.randoms:  # drawn once: a plan made again keeps its ids' random parts
            plan.randoms = [self._random.getrandbits(70) for _ in request.drafts]
        plan.stamps, plan.payloads, plan.rows = [], [], []
        plan.hint = plan.link = None  # chained on the old stamps
        now, ts = time.time_ns, floor
        stamp_text = StampText()
        for rowid, bits, draft in zip(plan.rowids, plan.randoms, request.drafts, strict=True):
            ts = max(now() // 1000, ts + 1)
            fact_id = new_fact_id(ts, bits)
            valid_from = ts if draft.valid_from is None else to_micros(draft.valid_from)
            valid_until = None if draft.valid_until is None else to_micros(draft.valid_until)
            digest = draft.digest(fact_id=fact_id, tenant=tenant, created_at=ts)
            content, meta = draft.content, draft.meta_json
            if seal is not None:
                # Sealed after the digest: the ledger covers the plaintext, the row ciphertext.
                content = seal(tenant, version, fact_id, "content", content)
                meta = seal(tenant, version, fact_id, "meta", meta)
            payload = f'{{"fact_digest":"{digest.hex()}"}}'
            plan.stamps.append(ts)
            plan.payloads.append((payload, sha256(payload.encode()), stamp_text(ts)))
            plan.rows.append(
                (
                    rowid,
                    fact_id,
                    draft.project,
                    content,
                    draft.fact_type,
                    draft.tags_json,
                    draft.source,
                    draft.confidence,
                    valid_from,
                    valid_until,
                    None,
                    ts,
                    meta,
                )
            )
        return ts

    def _chain_facts(self, staged: _Rows, plan: _FactPlan, head: _Head) -> _Head:
        """Stage `plan`'s facts at the head of the ledger: seqs, chain hashes, Merkle nodes.

        The rows chained ahead of the lock (`plan.link`) are used when they follow this head;
        whether the plan's guess was right tells whether the next group should guess.
        """
        base = head.position
        if plan.hint is not None:
            self._link_ahead = plan.hint == base
        link = plan.link
        if link is None or link.base != base:
            link = _link(plan, head)
        plan.first_seq = head.next_seq
        staged.transactions += link.transactions
        staged.nodes += link.nodes
        if plan.ahead_seq is None:  # not copied in ahead: staged here, at the seqs just given
            version = head.key_version if self._cipher is not None else None
            staged.add_facts(plan, head.tenant_id, plan.first_seq, version)
        return replace(
            head,
            next_seq=link.next_seq,
            head_hash=link.head_hash,
            frontier=link.frontier,
            last_ts=max(head.last_ts, plan.stamps[-1]) if plan.stamps else head.last_ts,
        )

    async def _append_plan(
        self, cur: AsyncCursor[Row], staged: _Rows, plan: _FactPlan, heads: dict[str, _Head | None]
    ) -> _Head:
        """Stage a prepared request at its tenant's locked head (prepared again if stale)."""
        tenant = plan.request.tenant
        head = heads[tenant]
        assert head is not None  # created by _plan_facts
        head = await self._sealing_head(cur, tenant, head, create=True)
        if (plan.stamps and plan.stamps[0] <= head.last_ts) or (
            self._cipher is not None and plan.key_version != head.key_version
        ):
            # Another writer appended (or a data key changed) since the plan was made: new ids
            # and stamps, so rows copied ahead are replaced by rows staged under the lock.
            await _discard_ahead(cur, plan)
            plan.key_version = head.key_version
            self._last_ts = max(self._last_ts, self._prepare_facts(plan, head.last_ts))
        head = self._chain_facts(staged, plan, head)
        if plan.ahead_seq is not None and plan.ahead_seq != plan.first_seq:
            # Copied ahead at a seq that another writer (or a failed group) has changed.
            await cur.execute(
                "UPDATE facts SET seq = seq + %s WHERE rowid_ = ANY(%s)",
                (plan.first_seq - plan.ahead_seq, plan.rowids),
            )
            plan.ahead_seq = plan.first_seq
        return head

    async def _apply_group(
        self,
        cur: AsyncCursor[Row],
        requests: Sequence[WriteRequest],
        plans: dict[int, _FactPlan | CortexError],
        heads: dict[str, _Head | None],
    ) -> list[WriteOutcome | _FactPlan]:
        if self._cipher is not None:
            await self._read_key_versions(cur, heads)
        needed = sum(isinstance(r, Supersede) for r in requests)
        rowids: list[int] = []
        if needed:
            rowids = [
                int(r[0])
                for r in await self._rows(
                    cur, "SELECT nextval('fact_rowids') FROM generate_series(1, %s)", (needed,)
                )
            ]
        rowids.reverse()  # pop() hands them out in ascending order
        staged = _Rows()
        outcomes: list[WriteOutcome | _FactPlan] = []
        changed: set[str] = set()
        for position, request in enumerate(requests):
            if isinstance(request, StoreFacts):
                plan = plans[position]
                if isinstance(plan, _FactPlan):
                    try:
                        heads[request.tenant] = await self._append_plan(cur, staged, plan, heads)
                        changed.add(request.tenant)
                    except CortexError as exc:
                        await _discard_search_rows(cur, plan.rowids)
                        await _discard_ahead(cur, plan)
                        plan = exc
                outcomes.append(plan)
                continue
            await staged.flush(cur)
            before = dict(heads)
            try:
                async with cur.connection.transaction():  # a savepoint: undoes only this request
                    outcome = await self._apply_one(cur, request, heads, rowids)
            except CortexError as exc:
                heads.clear()  # in place: apply_writes remembers these heads after the commit
                heads.update(before)
                outcomes.append(exc)
                continue
            outcomes.append(outcome)
            if not isinstance(request, MakeCheckpoint | ReindexFacts):
                changed.add(request.tenant)
        await staged.flush(cur)
        written = [(name, head) for name in sorted(changed) if (head := heads[name]) is not None]
        if written:
            await cur.execute(
                "UPDATE tenants t SET next_seq = u.n, head_hash = u.h, last_ts = u.ts"
                " FROM unnest(%s::bigint[], %s::bigint[], %s::bytea[], %s::bigint[])"
                " AS u(id, n, h, ts) WHERE t.id = u.id",
                [
                    [h.tenant_id for _, h in written],
                    [h.next_seq for _, h in written],
                    [h.head_hash for _, h in written],
                    [h.last_ts for _, h in written],
                ],
            )
        for name, head in written:
            await self._maybe_checkpoint(cur, name, head)
        return outcomes

    async def _lock_heads(
        self, cur: AsyncCursor[Row], requests: Sequence[WriteRequest]
    ) -> dict[str, _Head | None]:
        """Create missing tenants that get events, lock every named tenant's row, read heads.

        Rows are locked in name order, so concurrent groups naming the same tenants queue
        behind each other instead of deadlocking. A tenant without a ledger maps to None.
        """
        names = sorted({r.tenant for r in requests})
        creating = sorted(
            {r.tenant for r in requests if isinstance(r, AppendEvent) and not r.require_fact}
        )
        if creating:
            # The tenant's clock starts at its creation (as the SQLite store's clock ticks).
            now = time.time_ns() // 1000
            await cur.execute(
                "INSERT INTO tenants(name, created_at, last_ts, head_hash)"
                " SELECT n, %s, %s, %s FROM unnest(%s::text[]) AS n ORDER BY n"
                " ON CONFLICT (name) DO NOTHING",
                (now, now, ZERO_HASH, creating),
            )
        rows = await self._rows(
            cur,
            "SELECT id, name, next_seq, head_hash, last_ts FROM tenants WHERE name = ANY(%s)"
            " ORDER BY name FOR NO KEY UPDATE",
            (names,),
        )
        heads: dict[str, _Head | None] = dict.fromkeys(names)
        known: dict[str, tuple[tuple[int, int, bytes], ...]] = {}
        keys: list[tuple[int, int, int]] = []
        for tenant_id, name, next_seq, head_hash, _ in rows:
            hint = self._head_hints.get(name)
            if hint is not None and hint.position == (tenant_id, next_seq, bytes(head_hash)):
                known[name] = hint.frontier  # the head this process left: its tree edge too
                continue
            keys += [(tenant_id, *_node_key(lv, ix)) for lv, ix in frontier_keys(next_seq)]
        found: dict[tuple[int, int, int], bytes] = {}
        if keys:
            for tid, last_leaf, level, h in await self._rows(
                cur,
                "SELECT m.tenant_id, m.last_leaf, m.level, m.hash FROM merkle_nodes m"
                " JOIN unnest(%s::bigint[], %s::bigint[], %s::integer[]) AS k(t, l, v)"
                " ON m.tenant_id = k.t AND m.last_leaf = k.l AND m.level = k.v",
                [list(column) for column in zip(*keys, strict=True)],
            ):
                found[(int(tid), int(last_leaf), int(level))] = bytes(h)
        for tenant_id, name, next_seq, head_hash, last_ts in rows:
            frontier = known.get(name)
            if frontier is None:
                edge = []
                for level, index in frontier_keys(next_seq):
                    node = found.get((tenant_id, *_node_key(level, index)))
                    if node is None:
                        raise StoreError(
                            f"tenant {name!r}: Merkle node ({level}, {index}) is missing"
                        )
                    edge.append((level, index, node))
                frontier = tuple(edge)
            heads[name] = _Head(
                int(tenant_id), int(next_seq), bytes(head_hash), frontier, int(last_ts)
            )
        return heads

    async def _read_key_versions(
        self, cur: AsyncCursor[Row], heads: dict[str, _Head | None]
    ) -> None:
        """Put each locked tenant's current data key version into its head."""
        locked = {h.tenant_id: name for name, h in heads.items() if h is not None}
        for tenant_id, version in (await sealing.current_key_versions(cur, sorted(locked))).items():
            head = heads[locked[tenant_id]]
            assert head is not None
            heads[locked[tenant_id]] = replace(head, key_version=version)

    async def _sealing_head(
        self, cur: AsyncCursor[Row], tenant: str, head: _Head, *, create: bool
    ) -> _Head:
        """`head` with the data key that new rows of `tenant` get (created first, if `create`)."""
        cipher = self._cipher
        if cipher is None:
            return head
        if head.key_version is None:
            if not create:
                raise ConfigError(f"tenant {tenant!r} has no data key")
            await sealing.create_data_key(
                cur, cipher, tenant, head.tenant_id, 1, time.time_ns() // 1000
            )
            head = replace(head, key_version=1)
        await sealing.load_keys(cur, cipher, [(tenant, head.key_version)])
        return head

    async def _apply_key_request(
        self,
        cur: AsyncCursor[Row],
        request: AddDataKey | ResealFacts | RetireDataKeys,
        heads: dict[str, _Head | None],
    ) -> int:
        """A new data key, a batch of re-sealed facts, or retired old keys (see base.py)."""
        cipher = self._cipher
        if cipher is None:
            raise ConfigError("this store is not encrypted: it has no data keys")
        head = self._existing_head(heads, request.tenant)
        if isinstance(request, AddDataKey):
            version = (head.key_version or 0) + 1
            await sealing.create_data_key(
                cur, cipher, request.tenant, head.tenant_id, version, time.time_ns() // 1000
            )
            heads[request.tenant] = replace(head, key_version=version)
            return version
        if head.key_version is None:
            raise NotFound(f"tenant {request.tenant!r} has no data key")
        if isinstance(request, ResealFacts):
            return await sealing.reseal_facts(
                cur, cipher, request.tenant, head.tenant_id, head.key_version, request.rowids
            )
        return await sealing.retire_data_keys(cur, head.tenant_id, head.key_version)

    @staticmethod
    def _tick(head: _Head) -> tuple[int, _Head]:
        """The next timestamp of the tenant's clock: wall time, but always after the last one."""
        ts = max(time.time_ns() // 1000, head.last_ts + 1)
        return ts, replace(head, last_ts=ts)

    @staticmethod
    def _append(
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
        tx, entry, payload_bytes = build_transaction(
            tenant=tenant,
            seq=seq,
            op=op,
            subject=subject,
            actor=actor,
            ts=format_ts(ts),
            payload=payload,
            prev_hash=head.head_hash,
            payload_bytes=payload_bytes,
        )
        rows.transactions.append(
            (
                head.tenant_id,
                seq,
                op,
                subject,
                actor,
                tx.ts,
                payload_bytes.decode(),
                tx.payload_digest,
                tx.prev_hash,
                tx.hash,
            )
        )
        done, frontier = extend_frontier(head.frontier, seq, leaf_hash(entry))
        rows.nodes.extend((head.tenant_id, last_leaf(lv, i), lv, h) for lv, i, h in done)
        return replace(head, next_seq=seq + 1, head_hash=tx.hash, frontier=frontier), seq

    def _insert_fact(
        self,
        rows: _Rows,
        tenant: str,
        head: _Head,
        draft: FactDraft,
        supersedes: str | None,
        actor: str | None,
        rowids: list[int],
        reason: str | None = None,
        *,
        search: SearchData | None = None,
    ) -> tuple[Fact, _Head]:
        ts, head = self._tick(head)
        rowid = rowids.pop()
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
        valid_from = to_micros(fact.valid_from)
        valid_until = None if fact.valid_until is None else to_micros(fact.valid_until)
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
        if self._cipher is not None and head.key_version is not None:
            # Sealed after the digest: the ledger covers the plaintext, the row holds ciphertext.
            seal = self._cipher.seal
            stored_content = seal(tenant, head.key_version, fact.id, "content", fact.content)
            stored_meta = seal(tenant, head.key_version, fact.id, "meta", meta_json)
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
                head.key_version if self._cipher is not None else None,
            )
        )
        rows.tags.extend((head.tenant_id, tag, fact.id) for tag in fact.tags)
        if search is not None:
            rows.texts.append((rowid, head.tenant_id, search.text, search.tags))
            if search.vector is not None:
                rows.vectors.append(
                    (rowid, head.tenant_id, search.model_id, _as_vector(search.vector))
                )
        return fact, head

    def _existing_head(
        self, heads: dict[str, _Head | None], tenant: str, fact_id: str | None = None
    ) -> _Head:
        head = heads.get(tenant)
        if head is None:
            if fact_id is not None:
                raise NotFound(f"no fact {fact_id!r} in tenant {tenant!r}")
            raise NotFound(f"tenant {tenant!r} has no ledger yet")
        return head

    async def _apply_one(
        self,
        cur: AsyncCursor[Row],
        request: WriteRequest,
        heads: dict[str, _Head | None],
        rowids: list[int],
    ) -> WriteOutcome:
        rows = _Rows()
        if isinstance(request, Deprecate):
            head = self._existing_head(heads, request.tenant, request.fact_id)
            old = await self._active_fact(cur, head.tenant_id, request.tenant, request.fact_id)
            ts, head = self._tick(head)
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
            await rows.flush(cur)
            await cur.execute(
                "UPDATE facts SET deprecated_at = %s, deprecation_reason = %s"
                " WHERE tenant_id = %s AND id = %s",
                (ts, request.reason, head.tenant_id, old.id),
            )
            heads[request.tenant] = head
            return replace(old, deprecated_at=from_micros(ts), deprecation_reason=request.reason)
        if isinstance(request, Supersede):
            head = self._existing_head(heads, request.tenant, request.fact_id)
            old = await self._active_fact(cur, head.tenant_id, request.tenant, request.fact_id)
            head = await self._sealing_head(cur, request.tenant, head, create=False)
            fact, head = self._insert_fact(
                rows,
                request.tenant,
                head,
                request.draft,
                old.id,
                request.actor,
                rowids,
                request.reason,
                search=request.search,
            )
            await rows.flush(cur)
            await cur.execute(
                "UPDATE facts SET deprecated_at = %s, deprecation_reason = %s, superseded_by = %s"
                " WHERE tenant_id = %s AND id = %s",
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
            head = self._existing_head(heads, request.tenant)
            checkpoint, head = await self._checkpoint(cur, request.tenant, head)
            heads[request.tenant] = head
            return checkpoint
        if isinstance(request, ReindexFacts):
            return await self._reindex(cur, request, self._existing_head(heads, request.tenant))
        if isinstance(request, AddDataKey | ResealFacts | RetireDataKeys):
            return await self._apply_key_request(cur, request, heads)
        if isinstance(request, AppendEvent):
            return await self._append_event(cur, request, heads)
        if isinstance(request, Purge):
            return await self._purge(cur, request, heads)
        raise ValidationError(f"unknown write request {type(request).__name__}")

    async def _purge(
        self, cur: AsyncCursor[Row], request: Purge, heads: dict[str, _Head | None]
    ) -> Purged:
        """Destroy the content, tags and meta of a fact (or of its whole chain); log a `purge`.

        The rows' old versions stay in the table files as dead tuples until VACUUM reclaims
        them (SQL never sees them again): see docs/gate.md.
        """
        head = self._existing_head(heads, request.tenant, request.fact_id)
        tenant_id = head.tenant_id

        async def load(fact_id: str) -> Row | None:
            found = await self._rows(
                cur,
                "SELECT rowid_, id, supersedes, superseded_by, purged_at FROM facts"
                " WHERE tenant_id = %s AND id = %s FOR UPDATE",
                (tenant_id, fact_id),
            )
            return found[0] if found else None

        start = await load(request.fact_id)
        if start is None:
            raise NotFound(f"no fact {request.fact_id!r} in tenant {request.tenant!r}")
        chain = [start]
        while request.all_versions and chain[0][2] is not None and len(chain) < _MAX_CHAIN:
            older = await load(chain[0][2])
            if older is None:
                break
            chain.insert(0, older)
        while request.all_versions and chain[-1][3] is not None and len(chain) < _MAX_CHAIN:
            newer = await load(chain[-1][3])
            if newer is None:
                break
            chain.append(newer)
        targets = [r for r in chain if r[4] is None]
        if not targets:
            what = "every version of fact" if request.all_versions else "fact"
            raise Conflict(f"{what} {request.fact_id} is already purged")
        rows = _Rows()
        for rowid, fact_id, *_ in targets:
            ts, head = self._tick(head)
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
            await cur.execute(
                "UPDATE facts SET content = '', tags = '[]', meta = '{}', key_version = NULL,"
                " purged_at = %s, purge_reason = %s WHERE rowid_ = %s",
                (ts, request.reason, rowid),
            )
            await cur.execute(
                "DELETE FROM fact_tags WHERE tenant_id = %s AND fact_id = %s", (tenant_id, fact_id)
            )
            await cur.execute("DELETE FROM fact_text WHERE fact_rowid = %s", (rowid,))
            await cur.execute("DELETE FROM fact_vectors WHERE fact_rowid = %s", (rowid,))
        await rows.flush(cur)
        heads[request.tenant] = head
        found = await self._rows(
            cur,
            f"SELECT {_FACT_COLUMNS} FROM facts f JOIN tenants t ON t.id = f.tenant_id"
            " WHERE f.rowid_ = ANY(%s) ORDER BY f.rowid_",
            ([r[0] for r in targets],),
        )
        facts = tuple(_fact_from_row(r, self._cipher) for r in found)
        return Purged(facts, tuple(int(r[0]) for r in targets))

    async def _append_event(
        self, cur: AsyncCursor[Row], request: AppendEvent, heads: dict[str, _Head | None]
    ) -> Transaction:
        check_event(request)
        head = self._existing_head(
            heads, request.tenant, request.subject if request.require_fact else None
        )
        if request.require_fact and not await self._rows(
            cur,
            "SELECT 1 FROM facts WHERE tenant_id = %s AND id = %s",
            (head.tenant_id, request.subject),
        ):
            raise NotFound(f"no fact {request.subject!r} in tenant {request.tenant!r}")
        if request.unique and await self._rows(
            cur,
            "SELECT seq FROM transactions WHERE tenant_id = %s AND subject IS NOT DISTINCT FROM %s"
            " AND op = %s AND op <> 'store' LIMIT 1",
            (head.tenant_id, request.subject, request.op),
        ):
            raise Conflict(
                f"tenant {request.tenant!r} already has a {request.op!r} entry for"
                f" {request.subject!r}"
            )
        rows = _Rows()
        ts, head = self._tick(head)
        head, seq = self._append(
            rows,
            request.tenant,
            head,
            op=request.op,
            subject=request.subject,
            actor=request.actor,
            ts=ts,
            payload=dict(request.payload),
        )
        await rows.flush(cur)
        heads[request.tenant] = head
        found = await self._rows(
            cur,
            f"SELECT {_TX_COLUMNS} FROM transactions x WHERE x.tenant_id = %s AND x.seq = %s",
            (head.tenant_id, seq),
        )
        return _tx_from_row(request.tenant, found[0])

    async def _reindex(self, cur: AsyncCursor[Row], request: ReindexFacts, head: _Head) -> int:
        """Replace text rows and vectors of existing facts of the tenant; return how many."""
        if len(request.rowids) != len(request.search):
            raise ValidationError("search data must have one entry per fact")
        # FOR SHARE: a purge of these facts waits for this transaction, and one committed
        # before it shows in purged_at (the text was read before the purge: skip those).
        found = {
            int(r[0]): r[1] is not None
            for r in await self._rows(
                cur,
                "SELECT rowid_, purged_at FROM facts WHERE tenant_id = %s AND rowid_ = ANY(%s)"
                " FOR SHARE",
                (head.tenant_id, list(request.rowids)),
            )
        }
        if set(found) != set(request.rowids):
            raise NotFound(f"some facts to reindex are not in tenant {request.tenant!r}")
        pairs = [
            (r, d) for r, d in zip(request.rowids, request.search, strict=True) if not found[r]
        ]
        if not pairs:
            return 0
        if request.text:
            await _insert_texts(
                cur, [(r, head.tenant_id, d.text, d.tags) for r, d in pairs], replace=True
            )
        vectors = [
            (r, head.tenant_id, d.model_id, _as_vector(d.vector))
            for r, d in pairs
            if d.vector is not None
        ]
        if vectors:
            await cur.execute(
                "INSERT INTO fact_vectors(fact_rowid, tenant_id, model_id, embedding)"
                " SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::vector[])"
                " ON CONFLICT (fact_rowid) DO UPDATE"
                " SET model_id = excluded.model_id, embedding = excluded.embedding",
                [list(column) for column in zip(*vectors, strict=True)],
            )
        return len(pairs)

    async def _active_fact(
        self, cur: AsyncCursor[Row], tenant_id: int, tenant: str, fact_id: str
    ) -> Fact:
        rows = await self._rows(
            cur,
            f"SELECT {_FACT_COLUMNS} FROM facts f JOIN tenants t ON t.id = f.tenant_id"
            " WHERE f.tenant_id = %s AND f.id = %s",
            (tenant_id, fact_id),
        )
        if not rows:
            raise NotFound(f"no fact {fact_id!r} in tenant {tenant!r}")
        await sealing.load_keys(cur, self._cipher, [(tenant, rows[0][17])])
        fact = _fact_from_row(rows[0], self._cipher)
        if fact.status != "active":
            raise Conflict(f"fact {fact_id} is already {fact.status}; only active facts can change")
        return fact

    async def _checkpoint(
        self, cur: AsyncCursor[Row], tenant: str, head: _Head, *, after_group: bool = False
    ) -> tuple[Checkpoint, _Head]:
        """Sign the tenant's tree at its head; the signature's time ticks the tenant's clock.

        `after_group` (the checkpoint every N transactions, signed at the end of a write group):
        stamped with the time of the tenant's last transaction, which it is the state after,
        and the clock does not tick: the next group, prepared while this one committed, stays
        in date (a wall-time stamp would be later than the stamps it was prepared with).
        """
        if self._signer is None:
            raise StoreError("this store was opened without a signing key; cannot sign checkpoints")
        existing = await self._rows(
            cur,
            "SELECT tree_size, root, ts, signature, key_id FROM checkpoints"
            " WHERE tenant_id = %s AND tree_size = %s",
            (head.tenant_id, head.next_seq),
        )
        if existing:
            size, root, ts, signature, kid = existing[0]
            return Checkpoint(tenant, size, bytes(root), ts, bytes(signature), kid), head
        root = frontier_root(head.frontier, head.next_seq)
        stamp, head = (head.last_ts, head) if after_group else self._tick(head)
        checkpoint = self._signer(tenant, head.next_seq, root, format_ts(stamp))
        await cur.execute(
            "INSERT INTO checkpoints(tenant_id, tree_size, root, ts, signature, key_id)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (
                head.tenant_id,
                checkpoint.tree_size,
                checkpoint.root,
                checkpoint.ts,
                checkpoint.signature,
                checkpoint.key_id,
            ),
        )
        if not after_group:
            await cur.execute(
                "UPDATE tenants SET last_ts = %s WHERE id = %s", (stamp, head.tenant_id)
            )
        return checkpoint, head

    async def _maybe_checkpoint(self, cur: AsyncCursor[Row], tenant: str, head: _Head) -> None:
        """Sign a checkpoint when this group carried the tenant across a multiple of N."""
        if self._signer is None or head.next_seq == 0:
            return
        rows = await self._rows(
            cur, "SELECT max(tree_size) FROM checkpoints WHERE tenant_id = %s", (head.tenant_id,)
        )
        last = int(rows[0][0] or 0)
        every = self._checkpoint_every
        if last // every < head.next_seq // every:
            await self._checkpoint(cur, tenant, head, after_group=True)

    # ------------------------------------------------------------------ reads

    async def get_fact(self, tenant: str, fact_id: str, as_of: datetime | None = None) -> Fact:
        """Return one fact of `tenant`; with `as_of`, only if it was valid at that instant."""

        async def read(cur: AsyncCursor[Row]) -> Fact:
            rows = await self._rows(
                cur,
                f"SELECT {_FACT_COLUMNS} FROM facts f JOIN tenants t ON t.id = f.tenant_id"
                " WHERE t.name = %s AND f.id = %s",
                (tenant, fact_id),
            )
            if not rows:
                raise NotFound(f"no fact {fact_id!r} in tenant {tenant!r}")
            await sealing.load_keys(cur, self._cipher, [(tenant, rows[0][17])])
            fact = _fact_from_row(rows[0], self._cipher)
            if as_of is not None and not _visible_at(fact, as_of):
                raise NotFound(f"fact {fact_id} was not valid at {as_of.isoformat()}")
            return _as_of_view(fact, as_of)

        return await self._read(read)

    async def list_facts(
        self, tenant: str, filters: ListFilter, limit: int, cursor: str | None
    ) -> Page:
        """Return one page of `tenant`'s facts in creation order, filtered."""

        async def read(cur: AsyncCursor[Row]) -> Page:
            ident = await self._tenant_id(cur, tenant)
            if ident is None:
                return Page((), None)
            where, params = _filter_sql(ident[0], filters)
            sql = [f"SELECT {_FACT_COLUMNS} FROM facts f JOIN tenants t ON t.id = f.tenant_id"]
            sql.append(f"WHERE {where}")
            if cursor is not None:
                sql.append("AND f.id > %s")
                params.append(cursor)
            sql.append("ORDER BY f.id LIMIT %s")
            params.append(limit + 1)
            rows = await self._rows(cur, " ".join(sql), params)
            await sealing.load_keys(cur, self._cipher, [(tenant, r[17]) for r in rows])
            facts = [
                _as_of_view(_fact_from_row(r, self._cipher), filters.as_of) for r in rows[:limit]
            ]
            next_cursor = facts[-1].id if len(rows) > limit and facts else None
            return Page(tuple(facts), next_cursor)

        return await self._read(read)

    async def history(self, tenant: str, fact_id: str) -> list[FactVersion]:
        """Every version of the fact's supersession chain, oldest first, with their transactions."""

        async def read(cur: AsyncCursor[Row]) -> list[FactVersion]:
            async def load(fid: str) -> Fact | None:
                rows = await self._rows(
                    cur,
                    f"SELECT {_FACT_COLUMNS} FROM facts f JOIN tenants t ON t.id = f.tenant_id"
                    " WHERE t.name = %s AND f.id = %s",
                    (tenant, fid),
                )
                if not rows:
                    return None
                await sealing.load_keys(cur, self._cipher, [(tenant, rows[0][17])])
                return _fact_from_row(rows[0], self._cipher)

            start = await load(fact_id)
            if start is None:
                raise NotFound(f"no fact {fact_id!r} in tenant {tenant!r}")
            chain = [start]
            while chain[0].supersedes is not None and len(chain) < _MAX_CHAIN:
                older = await load(chain[0].supersedes)
                if older is None:
                    break
                chain.insert(0, older)
            while chain[-1].superseded_by is not None and len(chain) < _MAX_CHAIN:
                newer = await load(chain[-1].superseded_by)
                if newer is None:
                    break
                chain.append(newer)
            tenant_id = (await self._sizes(cur, tenant))[0]
            versions = []
            for fact in chain:
                # The entry that created the fact (at its seq), then every later change of it.
                rows = await self._rows(
                    cur,
                    f"SELECT {_TX_COLUMNS} FROM transactions WHERE tenant_id = %s AND seq = %s"
                    " AND subject = %s",
                    (tenant_id, fact.seq, fact.id),
                )
                rows += await self._rows(
                    cur,
                    f"SELECT {_TX_COLUMNS} FROM transactions"
                    " WHERE tenant_id = %s AND op <> 'store' AND subject = %s AND seq <> %s"
                    " ORDER BY seq",
                    (tenant_id, fact.id, fact.seq),
                )
                versions.append(FactVersion(fact, tuple(_tx_from_row(tenant, r) for r in rows)))
            return versions

        return await self._read(read, snapshot=True)

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

        async def read(cur: AsyncCursor[Row]) -> list[Transaction]:
            found = await self._tenant_id(cur, tenant)
            if found is None:
                return []
            sql = (
                f"SELECT {_TX_COLUMNS} FROM transactions x WHERE x.tenant_id = %s"
                " AND x.op = ANY(%s) AND x.seq > %s"
            )
            params: list[Any] = [found[0], list(ops), after_seq]
            if subject is not None:
                sql += " AND x.subject = %s AND x.op <> 'store'"
                params.append(subject)
            sql += " ORDER BY x.seq LIMIT %s"
            params.append(limit)
            return [_tx_from_row(tenant, row) for row in await self._rows(cur, sql, params)]

        return await self._read(read)

    async def transaction(self, tenant: str, seq: int) -> Transaction:
        """Return the transaction at `seq` of `tenant`'s ledger."""

        async def read(cur: AsyncCursor[Row]) -> Transaction:
            rows = await self._rows(
                cur,
                f"SELECT {_TX_COLUMNS} FROM transactions x JOIN tenants t ON t.id = x.tenant_id"
                " WHERE t.name = %s AND x.seq = %s",
                (tenant, seq),
            )
            if not rows:
                raise NotFound(f"tenant {tenant!r} has no transaction {seq}")
            return _tx_from_row(tenant, rows[0])

        return await self._read(read)

    async def tree_size(self, tenant: str) -> int:
        """The number of entries in `tenant`'s ledger (0 for an unknown tenant)."""

        async def read(cur: AsyncCursor[Row]) -> int:
            ident = await self._tenant_id(cur, tenant)
            return 0 if ident is None else ident[1]

        return await self._read(read)

    async def _fetch_nodes(
        self, cur: AsyncCursor[Row], tenant_id: int, keys: set[tuple[int, int]]
    ) -> dict[tuple[int, int], bytes]:
        """Read the stored subtree hashes for `keys` ((level, index) pairs) in one query."""
        if not keys:
            return {}
        wanted = [_node_key(level, index) for level, index in keys]
        rows = await self._rows(
            cur,
            "SELECT m.last_leaf, m.level, m.hash FROM merkle_nodes m"
            " JOIN unnest(%s::bigint[], %s::integer[]) AS k(l, v)"
            " ON m.last_leaf = k.l AND m.level = k.v WHERE m.tenant_id = %s",
            ([w[0] for w in wanted], [w[1] for w in wanted], tenant_id),
        )
        found = {}
        for last, level, h in rows:
            found[(level, ((last + 1) >> level) - 1)] = bytes(h)
        if len(found) != len(keys):
            raise StoreError("the ledger's Merkle nodes are incomplete; run `cortex verify`")
        return found

    async def inclusion_proof(self, tenant: str, seq: int, tree_size: int | None) -> InclusionProof:
        """RFC 9162 inclusion proof of entry `seq`, from O(log n) stored subtree hashes."""

        async def read(cur: AsyncCursor[Row]) -> InclusionProof:
            tenant_id, current = await self._sizes(cur, tenant)
            size = current if tree_size is None else tree_size
            if not 0 < size <= current:
                raise ValidationError(f"tree_size must be between 1 and {current}, got {size}")
            if not 0 <= seq < size:
                raise NotFound(f"tenant {tenant!r} has no entry {seq} in a tree of size {size}")
            keys = subtree_keys_for_inclusion(seq, size) | subtree_keys_for_root(size) | {(0, seq)}
            nodes = await self._fetch_nodes(cur, tenant_id, keys)
            get = lambda level, index: nodes[(level, index)]  # noqa: E731
            rows = await self._rows(
                cur,
                f"SELECT {_TX_COLUMNS} FROM transactions WHERE tenant_id = %s AND seq = %s",
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

        return await self._read(read, snapshot=True)

    async def consistency_proof(
        self, tenant: str, old_size: int, new_size: int | None
    ) -> ConsistencyProof:
        """RFC 9162 consistency proof between two sizes, from O(log n) stored subtree hashes."""

        async def read(cur: AsyncCursor[Row]) -> ConsistencyProof:
            tenant_id, current = await self._sizes(cur, tenant)
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
            nodes = await self._fetch_nodes(cur, tenant_id, keys)
            get = lambda level, index: nodes[(level, index)]  # noqa: E731
            return ConsistencyProof(
                tenant=tenant,
                old_size=old_size,
                new_size=new,
                old_root=root_from_subtrees(old_size, get),
                new_root=root_from_subtrees(new, get),
                path=tuple(consistency_proof_from_subtrees(old_size, new, get)),
            )

        return await self._read(read, snapshot=True)

    async def checkpoints(self, tenant: str) -> list[Checkpoint]:
        """Every stored checkpoint of `tenant`, by tree size."""
        return await self._read(lambda cur: self._checkpoints(cur, tenant))

    async def _checkpoints(self, cur: AsyncCursor[Row], tenant: str) -> list[Checkpoint]:
        rows = await self._rows(
            cur,
            "SELECT c.tree_size, c.root, c.ts, c.signature, c.key_id FROM checkpoints c"
            " JOIN tenants t ON t.id = c.tenant_id WHERE t.name = %s ORDER BY c.tree_size",
            (tenant,),
        )
        return [
            Checkpoint(tenant, int(size), bytes(root), ts, bytes(sig), kid)
            for size, root, ts, sig, kid in rows
        ]

    async def tenants(self) -> list[str]:
        """Names of every tenant with a ledger."""

        async def read(cur: AsyncCursor[Row]) -> list[str]:
            return [r[0] for r in await self._rows(cur, "SELECT name FROM tenants ORDER BY name")]

        return await self._read(read)

    async def stats(self, tenant: str) -> Stats:
        """Counts of facts, transactions and checkpoints for `tenant`; the database's size."""

        async def read(cur: AsyncCursor[Row]) -> Stats:
            ident = await self._tenant_id(cur, tenant)
            tid = -1 if ident is None else ident[0]
            facts, deprecated, superseded, purged = (
                await self._rows(
                    cur,
                    "SELECT count(*),"
                    " count(*) FILTER (WHERE purged_at IS NULL AND deprecated_at IS NOT NULL"
                    "   AND superseded_by IS NULL),"
                    " count(*) FILTER (WHERE purged_at IS NULL AND superseded_by IS NOT NULL),"
                    " count(purged_at) FROM facts WHERE tenant_id = %s",
                    (tid,),
                )
            )[0]
            cps = (
                await self._rows(
                    cur,
                    "SELECT count(*), max(tree_size) FROM checkpoints WHERE tenant_id = %s",
                    (tid,),
                )
            )[0]
            size = (await self._rows(cur, "SELECT pg_database_size(current_database())"))[0][0]
            return Stats(
                tenant=tenant,
                facts=facts,
                active=facts - deprecated - superseded - purged,
                deprecated=deprecated,
                superseded=superseded,
                transactions=0 if ident is None else ident[1],
                checkpoints=cps[0],
                latest_checkpoint_size=None if cps[1] is None else int(cps[1]),
                database_bytes=int(size),
                purged=purged,
            )

        return await self._read(read, snapshot=True)

    # ------------------------------------------------------------------ search

    async def text_candidates(
        self, tenant: str, match: str, filters: ListFilter, limit: int
    ) -> list[tuple[int, float]]:
        """(rowid, -rank: lower is better) of facts matching an FTS5 expression, best first.

        The expression (from `fts5_query`) is translated to a tsquery and matched against the
        GIN-indexed tsvectors; matches are ranked by `ts_rank` (term frequency, tags weighted
        twice content, normalised by document length), not BM25. Filters apply in the query.

        Ranking reads every match, so it is bounded: when more than `_TEXT_RANK_MAX` facts match
        (common words in a large tenant), the facts holding *every* term are ranked first and
        the rest of the list comes from `_TEXT_RANK_MAX` of the matches.
        """
        query = _tsquery_text(match)
        if query is None:
            return []
        every_term = " & ".join(_tsquery_terms(match))

        async def read(cur: AsyncCursor[Row]) -> list[tuple[int, float]]:
            ident = await self._tenant_id(cur, tenant)
            if ident is None:
                return []
            # Every statement here is meant to run from an index (the GIN index for the
            # matches, primary keys for the filters). The planner otherwise picks a sequential
            # scan of fact_text under the LIMIT whenever it believes matches are common, which
            # it does while GIN's pending list is long or its statistics are older than the
            # table's (after a bulk load, until VACUUM): a whole-table read for any query
            # whose words are rare (docs/postgres.md, "Text search plans").
            await cur.execute("SET LOCAL enable_seqscan = off")
            ranked, truncated = await self._rank_text(cur, query, ident[0], filters, limit)
            if not truncated or every_term == query:
                return ranked
            strict, _ = await self._rank_text(cur, every_term, ident[0], filters, limit)
            first = {r for r, _ in strict}
            # Facts with every term go first: their scores are moved below (better than) all.
            best = [(r, score - 1.0) for r, score in strict]
            return (best + [(r, score) for r, score in ranked if r not in first])[:limit]

        try:
            return await self._read(read)
        except StoreError as exc:
            if isinstance(exc.__cause__, psycopg.errors.SyntaxError):
                raise ValidationError(f"the text query cannot be searched: {exc}") from exc
            raise

    async def _rank_text(
        self, cur: AsyncCursor[Row], query: str, tenant_id: int, filters: ListFilter, limit: int
    ) -> tuple[list[tuple[int, float]], bool]:
        """The `limit` best of at most `_TEXT_RANK_MAX` matches; True if there were more.

        As on SQLite: the text index ranks its matches alone first (no join per match) and the
        best few are filtered; only when too few of them pass does the joined query run.
        """
        where, params = _filter_sql(tenant_id, filters)
        wanted = max(4 * limit, 400)
        for _ in range(2):
            rows = await self._rows(
                cur,
                f"SELECT m.fact_rowid, ts_rank(%s, m.doc, q, {_RANK_NORMALIZATION}) AS rank,"
                " count(*) OVER () AS matched"
                f" FROM to_tsquery('{TEXT_CONFIG}', %s) AS q, LATERAL ("
                "   SELECT x.fact_rowid, x.doc FROM fact_text x"
                "   WHERE x.doc @@ q AND x.tenant_id = %s LIMIT %s) AS m"
                " ORDER BY rank DESC, m.fact_rowid LIMIT %s",
                [_RANK_WEIGHTS, query, tenant_id, _TEXT_RANK_MAX + 1, wanted],
            )
            truncated = bool(rows) and int(rows[0][2]) > _TEXT_RANK_MAX
            passing = await self._passing(cur, [int(r[0]) for r in rows], where, params)
            if len(passing) >= limit or len(rows) < wanted:
                ranked = [(int(r[0]), -float(r[1])) for r in rows if int(r[0]) in passing]
                return ranked[:limit], truncated
            # Once more, with as many as the share that passed says are needed.
            wanted = int(1.5 * limit * len(rows) / max(len(passing), 1))
            if wanted > _TEXT_RANK_MAX:
                break
        rows = await self._rows(
            cur,
            f"SELECT m.fact_rowid, ts_rank(%s, m.doc, q, {_RANK_NORMALIZATION}) AS rank,"
            " count(*) OVER () AS matched"
            f" FROM to_tsquery('{TEXT_CONFIG}', %s) AS q, LATERAL ("
            "   SELECT x.fact_rowid, x.doc FROM fact_text x JOIN facts f ON f.rowid_ = x.fact_rowid"
            f"  WHERE x.doc @@ q AND x.tenant_id = %s AND {where} LIMIT %s) AS m"
            " ORDER BY rank DESC, m.fact_rowid LIMIT %s",
            [_RANK_WEIGHTS, query, tenant_id, *params, _TEXT_RANK_MAX + 1, limit],
        )
        truncated = bool(rows) and int(rows[0][2]) > _TEXT_RANK_MAX
        return [(int(r[0]), -float(r[1])) for r in rows], truncated

    async def filter_rowids(
        self, tenant: str, rowids: Sequence[int], filters: ListFilter
    ) -> list[int]:
        """The subset of `rowids` (facts of `tenant`) that pass `filters`, in the given order."""

        async def read(cur: AsyncCursor[Row]) -> list[int]:
            ident = await self._tenant_id(cur, tenant)
            if ident is None or not rowids:
                return []
            where, params = _filter_sql(ident[0], filters)
            passing = {
                int(r[0])
                for r in await self._rows(
                    cur,
                    f"SELECT f.rowid_ FROM {_FACTS_BY_ROWIDS} WHERE {where}"
                    " AND f.purged_at IS NULL",  # search never finds a purged fact
                    [list(rowids), *params],
                )
            }
            return [r for r in rowids if r in passing]

        return await self._read(read)

    async def facts_by_rowid(
        self, tenant: str, rowids: Sequence[int], as_of: datetime | None
    ) -> dict[int, Fact]:
        """The facts of `tenant` with these rowids (as recorded at `as_of`, when given)."""

        async def read(cur: AsyncCursor[Row]) -> dict[int, Fact]:
            if not rowids:
                return {}
            rows = await self._rows(
                cur,
                f"SELECT f.rowid_, {_FACT_COLUMNS} FROM {_FACTS_BY_ROWIDS}"
                " JOIN tenants t ON t.id = f.tenant_id WHERE t.name = %s",
                (list(rowids), tenant),
            )
            await sealing.load_keys(cur, self._cipher, [(tenant, r[18]) for r in rows])
            return {
                int(r[0]): _as_of_view(_fact_from_row(r[1:], self._cipher), as_of) for r in rows
            }

        return await self._read(read)

    async def vector_candidates(
        self,
        tenant: str,
        vector: NDArray[np.float32],
        model_id: str,
        filters: ListFilter,
        limit: int,
    ) -> list[tuple[int, float]] | None:
        """Up to `limit` (rowid, cosine similarity) of facts passing `filters`, best first.

        Answered by the database: an HNSW scan (pgvector, iterative with relaxed order, so
        filters keep `limit` hits coming) for indexed sizes; when that yields fewer than `limit`
        (a selective filter, a small tenant beside large ones) or the size has no index, the
        facts passing the filters are scored exactly.
        """
        dim = len(vector)
        query = np.asarray(vector, dtype=np.float32)

        async def read(cur: AsyncCursor[Row]) -> list[tuple[int, float]]:
            ident = await self._tenant_id(cur, tenant)
            if ident is None:
                return []
            stale = await self._rows(
                cur,
                "SELECT model_id FROM fact_vectors WHERE tenant_id = %s AND model_id < %s"
                " UNION ALL (SELECT model_id FROM fact_vectors WHERE tenant_id = %s"
                " AND model_id > %s LIMIT 1) LIMIT 1",
                (ident[0], model_id, ident[0], model_id),
            )
            if stale:
                raise ConfigError(
                    f"facts of tenant {tenant!r} were embedded with {stale[0][0]};"
                    f" this engine embeds with {model_id}: run `cortex reindex`"
                )
            where, params = _filter_sql(ident[0], filters)
            base = (
                " FROM fact_vectors v JOIN facts f ON f.rowid_ = v.fact_rowid"
                f" WHERE v.tenant_id = %s AND v.model_id = %s AND vector_dims(v.embedding) = {dim}"
                f" AND {where}"
            )
            args = [query, ident[0], model_id, *params, query, limit]
            rows: list[Row] = []
            if dim in VECTOR_INDEX_DIMS:
                ef = min(1000, max(40, limit))
                await cur.execute(f"SET LOCAL hnsw.ef_search = {ef}")
                await cur.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
                nearest = await self._nearest_then_filter(
                    cur, query, ident[0], model_id, where, params, limit
                )
                if nearest is not None:
                    rows = nearest
                else:  # too few of the nearest pass: the filter runs inside the scan
                    rows = await self._rows(
                        cur,
                        f"SELECT v.fact_rowid, v.embedding::vector({dim}) <=> %s AS d{base}"
                        f" ORDER BY v.embedding::vector({dim}) <=> %s LIMIT %s",
                        args,
                    )
            if len(rows) < limit:
                rows = await self._rows(
                    cur,
                    f"SELECT v.fact_rowid, v.embedding <=> %s AS d{base}"
                    " ORDER BY v.embedding <=> %s LIMIT %s",
                    args,
                )
            ranked = sorted((float(d), int(r)) for r, d in rows)
            return [(r, 1.0 - d) for d, r in ranked]

        return await self._read(read)

    async def _nearest_then_filter(
        self,
        cur: AsyncCursor[Row],
        query: NDArray[np.float32],
        tenant_id: int,
        model_id: str,
        where: str,
        params: Sequence[Any],
        limit: int,
    ) -> list[Row] | None:
        """(rowid, distance) of the nearest facts passing `where`, or None if too few pass.

        The HNSW scan runs alone (no join per candidate) for twice `limit` neighbours, and only
        those are filtered: enough pass unless the filter is selective. When too few do, the
        caller's scan with the filter inside (iterative, a join per candidate) is cheaper than
        a wider unfiltered one: pgvector's cost grows with the neighbours returned (about 3 ms
        per 100 here), and the wider scan needs half again as many as the filtered one visits
        and sometimes still falls short (docs/postgres.md, "Filtered search").
        """
        dim = len(query)
        wanted = 2 * limit
        rows = await self._rows(
            cur,
            f"SELECT v.fact_rowid, v.embedding::vector({dim}) <=> %s AS d FROM fact_vectors v"
            f" WHERE v.tenant_id = %s AND v.model_id = %s AND vector_dims(v.embedding) = {dim}"
            f" ORDER BY v.embedding::vector({dim}) <=> %s LIMIT %s",
            [query, tenant_id, model_id, query, wanted],
        )
        passing = await self._passing(cur, [int(r[0]) for r in rows], where, params)
        if len(passing) >= limit or len(rows) < wanted:
            return [r for r in rows if int(r[0]) in passing][:limit]
        return None

    async def _passing(
        self, cur: AsyncCursor[Row], rowids: list[int], where: str, params: Sequence[Any]
    ) -> set[int]:
        """Those of `rowids` whose facts pass `where` (a `_filter_sql` condition)."""
        if not rowids:
            return set()
        rows = await self._rows(
            cur,
            f"SELECT f.rowid_ FROM {_FACTS_BY_ROWIDS} WHERE {where}",
            [rowids, *params],
        )
        return {int(r[0]) for r in rows}

    async def vectors_after(
        self, tenant: str, after_rowid: int, limit: int
    ) -> list[tuple[int, str, bytes]]:
        """Up to `limit` stored vectors of `tenant` with rowid > `after_rowid`, by rowid."""

        async def read(cur: AsyncCursor[Row]) -> list[tuple[int, str, bytes]]:
            ident = await self._tenant_id(cur, tenant)
            if ident is None:
                return []
            rows = await self._rows(
                cur,
                "SELECT fact_rowid, model_id, embedding FROM fact_vectors"
                " WHERE tenant_id = %s AND fact_rowid > %s ORDER BY fact_rowid LIMIT %s",
                (ident[0], after_rowid, limit),
            )
            return [(int(r[0]), r[1], _vector_bytes(r[2])) for r in rows]

        return await self._read(read)

    async def filtered_vectors(
        self, tenant: str, model_id: str, filters: ListFilter, limit: int
    ) -> list[tuple[int, bytes]] | None:
        """(rowid, vector) of every fact passing `filters` with a vector of `model_id`.

        None when more than `limit` facts pass.
        """

        async def read(cur: AsyncCursor[Row]) -> list[tuple[int, bytes]] | None:
            ident = await self._tenant_id(cur, tenant)
            if ident is None:
                return []
            where, params = _filter_sql(ident[0], filters)
            rows = await self._rows(
                cur,
                "SELECT v.fact_rowid, v.embedding FROM facts f"
                " JOIN fact_vectors v ON v.fact_rowid = f.rowid_"
                f" WHERE {where} AND v.model_id = %s LIMIT %s",
                [*params, model_id, limit + 1],
            )
            if len(rows) > limit:
                return None
            return [(int(r[0]), _vector_bytes(r[1])) for r in rows]

        return await self._read(read)

    async def facts_to_index(
        self, tenant: str, *, model_id: str | None, after_rowid: int, limit: int
    ) -> list[tuple[int, str, str]]:
        """(rowid, content, tags JSON) of facts after `after_rowid`, by rowid, `limit` at most.

        With `model_id`, only facts without a vector from that model; without, every fact.
        """

        async def read(cur: AsyncCursor[Row]) -> list[tuple[int, str, str]]:
            ident = await self._tenant_id(cur, tenant)
            if ident is None:
                return []
            if model_id is None:
                rows = await self._rows(
                    cur,
                    "SELECT f.rowid_, f.content, f.tags, f.id, f.key_version, f.meta, f.purged_at"
                    " FROM facts f"
                    " WHERE f.tenant_id = %s AND f.rowid_ > %s ORDER BY f.rowid_ LIMIT %s",
                    (ident[0], after_rowid, limit),
                )
            else:
                rows = await self._rows(
                    cur,
                    "SELECT f.rowid_, f.content, f.tags, f.id, f.key_version, f.meta, f.purged_at"
                    " FROM facts f"
                    " LEFT JOIN fact_vectors v ON v.fact_rowid = f.rowid_"
                    " WHERE f.tenant_id = %s AND f.rowid_ > %s"
                    " AND (v.model_id IS NULL OR v.model_id <> %s) ORDER BY f.rowid_ LIMIT %s",
                    (ident[0], after_rowid, model_id, limit),
                )
            await sealing.load_keys(cur, self._cipher, [(tenant, r[4]) for r in rows])
            return [
                # A purged fact's words are gone: nothing to open (and nothing to index).
                (int(r[0]), "" if r[6] is not None else self._plain_content(tenant, r), r[2])
                for r in rows
            ]

        return await self._read(read)

    def _plain_content(self, tenant: str, row: Sequence[Any]) -> str:
        """The content of a (rowid, content, tags, id, key_version, meta) row, in the clear."""
        return open_fact_fields(self._cipher, tenant, row[3], row[4], row[1], row[5])[0]

    async def count_facts(self, tenant: str) -> int:
        """How many facts `tenant` has (any status)."""

        async def read(cur: AsyncCursor[Row]) -> int:
            rows = await self._rows(
                cur,
                "SELECT count(*) FROM facts f JOIN tenants t ON t.id = f.tenant_id"
                " WHERE t.name = %s",
                (tenant,),
            )
            return int(rows[0][0])

        return await self._read(read)

    async def purged_rowids(self, tenant: str) -> list[int]:
        """Rowids of `tenant`'s purged facts, ascending."""

        async def read(cur: AsyncCursor[Row]) -> list[int]:
            rows = await self._rows(
                cur,
                "SELECT f.rowid_ FROM facts f JOIN tenants t ON t.id = f.tenant_id"
                " WHERE t.name = %s AND f.purged_at IS NOT NULL ORDER BY f.rowid_",
                (tenant,),
            )
            return [int(r[0]) for r in rows]

        return await self._read(read)

    async def last_vector_rowid(self, tenant: str) -> int:
        """The highest rowid with a stored vector in `tenant` (0 if none)."""

        async def read(cur: AsyncCursor[Row]) -> int:
            rows = await self._rows(
                cur,
                "SELECT max(v.fact_rowid) FROM fact_vectors v JOIN tenants t"
                " ON t.id = v.tenant_id WHERE t.name = %s",
                (tenant,),
            )
            return int(rows[0][0] or 0)

        return await self._read(read)

    # ------------------------------------------------------------------ encryption at rest

    async def master_record(self) -> MasterRecord | None:
        """The master key record; None for a plaintext store."""
        return await self._read(sealing.read_master_record)

    async def data_keys(self, tenant: str | None = None) -> list[WrappedKey]:
        """Every wrapped data key (of `tenant`, when given), by tenant and version."""
        return await self._read(lambda cur: sealing.data_keys(cur, tenant))

    async def set_master_key(
        self, record: MasterRecord, previous: bytes | None, rewrapped: Sequence[WrappedKey]
    ) -> int:
        """Record a master key, re-wrapping every data key (see `Store.set_master_key`)."""
        async with self._connection() as conn, conn.transaction(), conn.cursor() as cur:
            return await sealing.set_master_key(
                cur, record, previous, rewrapped, time.time_ns() // 1000
            )

    async def facts_to_reseal(self, tenant: str, after_rowid: int, limit: int) -> list[int]:
        """Rowids above `after_rowid` of facts sealed with an older key than the current one."""

        async def read(cur: AsyncCursor[Row]) -> list[int]:
            ident = await self._tenant_id(cur, tenant)
            if ident is None:
                return []
            return await sealing.stale_rowids(cur, ident[0], after_rowid, limit)

        return await self._read(read)

    async def count_facts_to_reseal(self, tenant: str) -> int:
        """How many facts of `tenant` are sealed with an older key than the current one."""

        async def read(cur: AsyncCursor[Row]) -> int:
            ident = await self._tenant_id(cur, tenant)
            if ident is None:
                return 0
            return len(await sealing.stale_rowids(cur, ident[0], 0, None))

        return await self._read(read)

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

        Each tenant is scanned in one snapshot, streamed (bounded memory); the hashing runs on a
        worker thread. `workers` is accepted for the protocol and ignored: the scan is one pass.
        """
        del workers

        async def read(cur: AsyncCursor[Row]) -> VerifyReport:
            if tenant is not None:
                names = [tenant]
            else:
                rows = await self._rows(cur, "SELECT name FROM tenants ORDER BY name")
                names = [r[0] for r in rows]
            problems: list[Problem] = []
            entries = facts = checkpoints = purged = 0
            truncated = False
            for name in names:
                found, counts, cut = await self._verify_tenant(
                    cur, name, public_keys, check_stored_nodes, max_problems - len(problems)
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

        return await self._read(read, snapshot=True)

    async def _verify_tenant(
        self,
        cur: AsyncCursor[Row],
        tenant: str,
        public_keys: Sequence[Ed25519PublicKey],
        check_nodes: bool,
        max_problems: int,
    ) -> tuple[list[Problem], tuple[int, int, int, int], bool]:
        rows = await self._rows(
            cur, "SELECT id, next_seq, head_hash FROM tenants WHERE name = %s", (tenant,)
        )
        if not rows:
            raise NotFound(f"tenant {tenant!r} has no ledger")
        tenant_id, next_seq, head_hash = int(rows[0][0]), int(rows[0][1]), bytes(rows[0][2])
        checkpoints = await self._checkpoints(cur, tenant)
        await sealing.load_tenant_keys(cur, self._cipher, tenant)
        cipher = self._cipher
        conn = cur.connection
        loop = asyncio.get_running_loop()
        entries_cur = conn.cursor(name="cortex_verify_entries")
        nodes_cur = conn.cursor(name="cortex_verify_nodes")
        try:
            await entries_cur.execute(_ROWS_SQL, (tenant_id,))
            if check_nodes:
                await nodes_cur.execute(_NODES_SQL, (tenant_id,))

            def scan() -> TenantVerifier:
                stored = (
                    ((int(a), int(b), bytes(c)) for a, b, c in _pull(loop, nodes_cur))
                    if check_nodes
                    else None
                )
                verifier = TenantVerifier(
                    tenant=tenant,
                    wanted_sizes=frozenset(c.tree_size for c in checkpoints),
                    stored_nodes=stored,
                    max_problems=max(1, max_problems),
                )
                for row in _pull(loop, entries_cur):
                    verifier.feed(_ledger_row(tenant, row, cipher))
                verifier.close_range(next_seq)
                return verifier

            verifier = await asyncio.to_thread(scan)
        finally:
            await entries_cur.close()
            await nodes_cur.close()
        problems = list(verifier.problems)
        problems += head_problems(
            tenant, verifier.position, verifier.last_hash, next_seq, head_hash
        )
        problems += checkpoint_problems(
            tenant, checkpoints, public_keys, verifier.roots, verifier.position
        )
        problems += [p async for p in self._state_problems(cur, tenant, tenant_id)]
        counts = (verifier.entries, verifier.facts, len(checkpoints), verifier.purged)
        return problems, counts, verifier.truncated

    async def _state_problems(
        self, cur: AsyncCursor[Row], tenant: str, tenant_id: int
    ) -> AsyncIterator[Problem]:
        """Facts whose deprecation/supersession state disagrees with the ledger, and orphans."""
        for fid, seq in await self._rows(
            cur,
            "SELECT f.id, f.seq FROM facts f LEFT JOIN transactions x"
            " ON x.tenant_id = f.tenant_id AND x.seq = f.seq"
            " WHERE f.tenant_id = %s AND (x.seq IS NULL OR x.subject IS DISTINCT FROM f.id)",
            (tenant_id,),
        ):
            yield Problem(tenant, seq, "fact_unlogged", f"fact {fid} has no matching store entry")
        # Every deprecate/supersede entry must be reflected in the fact it changed ...
        for seq, op, subject, ts, payload, fid, dep_at, reason, sup_by in await self._rows(
            cur,
            "SELECT x.seq, x.op, x.subject, x.ts, x.payload, f.id, f.deprecated_at,"
            " f.deprecation_reason, f.superseded_by"
            " FROM transactions x"
            " LEFT JOIN facts f ON f.tenant_id = x.tenant_id AND f.id = CASE x.op"
            "   WHEN 'deprecate' THEN x.subject ELSE x.payload::jsonb ->> 'supersedes' END"
            " WHERE x.tenant_id = %s AND x.op <> 'store' AND x.op IN ('deprecate', 'supersede')",
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
        for fid, seq in await self._rows(
            cur,
            "SELECT f.id, f.seq FROM facts f WHERE f.tenant_id = %s AND f.deprecated_at IS NOT NULL"
            " AND NOT EXISTS (SELECT 1 FROM transactions x"
            "   WHERE x.tenant_id = f.tenant_id AND x.op <> 'store' AND x.subject = f.id"
            "   AND x.op = 'deprecate')"
            " AND NOT EXISTS (SELECT 1 FROM transactions x"
            "   WHERE x.tenant_id = f.tenant_id AND x.op <> 'store' AND x.subject = f.superseded_by"
            "   AND x.op = 'supersede')",
            (tenant_id,),
        ):
            yield Problem(
                tenant, seq, "state_changed", f"fact {fid} is marked inactive without an entry"
            )
        # A purge entry must match its fact's purge mark, and a purge mark needs its entry: a
        # fact blanked without one was altered (its digest cannot be checked any more).
        for seq, subject, ts, fid, purged_at in await self._rows(
            cur,
            "SELECT x.seq, x.subject, x.ts, f.id, f.purged_at FROM transactions x"
            " LEFT JOIN facts f ON f.tenant_id = x.tenant_id AND f.id = x.subject"
            " WHERE x.tenant_id = %s AND x.op <> 'store' AND x.op = 'purge'",
            (tenant_id,),
        ):
            if fid is None:
                yield Problem(tenant, seq, "fact_missing", f"fact {subject} is missing")
            elif purged_at is None or format_ts(purged_at) != ts:
                yield Problem(
                    tenant, seq, "state_changed", f"fact {fid} no longer shows this purge"
                )
        for fid, seq in await self._rows(
            cur,
            "SELECT f.id, f.seq FROM facts f WHERE f.tenant_id = %s AND f.purged_at IS NOT NULL"
            " AND NOT EXISTS (SELECT 1 FROM transactions x"
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

    # ------------------------------------------------------------------ export

    async def export(self, tenant: str, path: Path, public_key_pem: bytes) -> int:
        """Write `tenant`'s bundle (entries, facts, checkpoints, public key) atomically."""

        async def read(cur: AsyncCursor[Row]) -> int:
            tenant_id, size = await self._sizes(cur, tenant)
            rows = await self._rows(
                cur, "SELECT head_hash FROM tenants WHERE id = %s", (tenant_id,)
            )
            head_hash = bytes(rows[0][0])
            checkpoints = await self._checkpoints(cur, tenant)
            await sealing.load_tenant_keys(cur, self._cipher, tenant)
            cipher = self._cipher
            conn = cur.connection
            loop = asyncio.get_running_loop()
            txs_cur = conn.cursor(name="cortex_export_transactions")
            facts_cur = conn.cursor(name="cortex_export_facts")
            try:
                await txs_cur.execute(
                    f"SELECT {_TX_COLUMNS} FROM transactions WHERE tenant_id = %s ORDER BY seq",
                    (tenant_id,),
                )
                await facts_cur.execute(
                    f"SELECT {_FACT_COLUMNS} FROM facts f JOIN tenants t ON t.id = f.tenant_id"
                    " WHERE f.tenant_id = %s ORDER BY f.seq",
                    (tenant_id,),
                )

                def write() -> None:
                    bundle.write_bundle(
                        path,
                        tenant=tenant,
                        tree_size=size,
                        head_hash=head_hash,
                        public_key_pem=public_key_pem,
                        transactions=(_tx_from_row(tenant, r) for r in _pull(loop, txs_cur)),
                        facts=(_fact_from_row(r, cipher) for r in _pull(loop, facts_cur)),
                        checkpoints=checkpoints,
                    )

                await asyncio.to_thread(write)
            finally:
                await txs_cur.close()
                await facts_cur.close()
            return size

        return await self._read(read, snapshot=True)

    # ------------------------------------------------------------------ import (migrate-store)

    async def import_bundle(self, path: Path) -> bundle.BundleHeader:
        """Load a tenant's bundle verbatim (entries, facts, checkpoints) as a new tenant.

        Entries, facts and checkpoints keep their bytes; Merkle subtree hashes are recomputed from
        the entries as they are loaded. One transaction: a failure leaves nothing behind. The
        tenant must not exist yet (Conflict). Search data is not in a bundle: reindex after.
        """
        header, reader = await asyncio.to_thread(bundle.read_bundle, path)
        try:
            async with self._connection() as conn, conn.transaction(), conn.cursor() as cur:
                await self._import(cur, header, reader)
        finally:
            close = getattr(reader, "close", None)
            if close is not None:
                await asyncio.to_thread(close)
        return header

    async def _import(
        self, cur: AsyncCursor[Row], header: bundle.BundleHeader, reader: Iterator[Any]
    ) -> None:
        found = await self._rows(cur, "SELECT 1 FROM tenants WHERE name = %s", (header.tenant,))
        if found:
            raise Conflict(f"tenant {header.tenant!r} already exists in the target store")
        rows = await self._rows(
            cur,
            "INSERT INTO tenants(name, created_at, next_seq, head_hash)"
            " VALUES (%s, %s, %s, %s) RETURNING id",
            (header.tenant, time.time_ns() // 1000, header.tree_size, header.head_hash),
        )
        tenant_id = int(rows[0][0])
        head = _Head(tenant_id, 0, ZERO_HASH, (), 0)
        staged = _Rows()
        checkpoints: list[Row] = []
        inactive: list[Row] = []  # (fact id, deprecated_at, reason, superseded_by)
        purged: list[Row] = []  # (fact id, purged_at, purge reason)
        while batch := await asyncio.to_thread(lambda: list(itertools.islice(reader, _FETCH))):
            facts = [r for r in batch if isinstance(r, Fact)]
            rowids: list[int] = []
            if facts:
                rowids = [
                    int(r[0])
                    for r in await self._rows(
                        cur,
                        "SELECT nextval('fact_rowids') FROM generate_series(1, %s)",
                        (len(facts),),
                    )
                ]
            for record in batch:
                if isinstance(record, Transaction):
                    head = self._import_entry(staged, head, record)
                elif isinstance(record, Fact):
                    staged.facts.append(_fact_row(rowids.pop(), tenant_id, record))
                    staged.tags.extend((tenant_id, tag, record.id) for tag in record.tags)
                    if record.deprecated_at is not None:
                        inactive.append(
                            (
                                record.id,
                                to_micros(record.deprecated_at),
                                record.deprecation_reason,
                                record.superseded_by,
                            )
                        )
                    if record.purged_at is not None:
                        purged.append((record.id, to_micros(record.purged_at), record.purge_reason))
                else:
                    checkpoints.append(
                        (
                            tenant_id,
                            record.tree_size,
                            record.root,
                            record.ts,
                            record.signature,
                            record.key_id,
                        )
                    )
            await staged.flush(cur)
        if inactive:
            await cur.execute(
                "UPDATE facts f SET deprecated_at = u.at, deprecation_reason = u.why,"
                " superseded_by = u.by FROM unnest(%s::text[], %s::bigint[], %s::text[],"
                " %s::text[]) AS u(id, at, why, by)"
                " WHERE f.tenant_id = %s AND f.id = u.id",
                [*(list(column) for column in zip(*inactive, strict=True)), tenant_id],
            )
        if purged:
            await cur.execute(
                "UPDATE facts f SET purged_at = u.at, purge_reason = u.why"
                " FROM unnest(%s::text[], %s::bigint[], %s::text[]) AS u(id, at, why)"
                " WHERE f.tenant_id = %s AND f.id = u.id",
                [*(list(column) for column in zip(*purged, strict=True)), tenant_id],
            )
        if checkpoints:
            await _copy(
                cur,
                "checkpoints(tenant_id, tree_size, root, ts, signature, key_id)",
                ("int8", "int8", "bytea", "text", "bytea", "text"),
                checkpoints,
            )
        await cur.execute(
            "UPDATE tenants SET last_ts = %s WHERE id = %s", (head.last_ts, tenant_id)
        )

    @staticmethod
    def _import_entry(staged: _Rows, head: _Head, tx: Transaction) -> _Head:
        """Stage a bundle's entry as it is, with the Merkle nodes its leaf completes."""
        payload = canonical_json(dict(tx.payload)).decode()
        staged.transactions.append(
            (
                head.tenant_id,
                tx.seq,
                tx.op,
                tx.subject,
                tx.actor,
                tx.ts,
                payload,
                tx.payload_digest,
                tx.prev_hash,
                tx.hash,
            )
        )
        done, frontier = extend_frontier(head.frontier, tx.seq, leaf_hash(transaction_entry(tx)))
        staged.nodes.extend((head.tenant_id, last_leaf(lv, i), lv, h) for lv, i, h in done)
        ts = max(head.last_ts, to_micros(parse_ts(tx.ts)))
        return _Head(head.tenant_id, tx.seq + 1, tx.hash, frontier, ts)

    async def import_vectors(self, tenant: str, vectors: Sequence[tuple[str, str, bytes]]) -> int:
        """Store (fact id, model id, float32 bytes) vectors for facts of `tenant`; return how many.

        Derived data (as `ReindexFacts`): a fact's existing vector is replaced; no ledger entry.
        """
        if not vectors:
            return 0

        async def write(cur: AsyncCursor[Row]) -> int:
            await cur.execute(
                "INSERT INTO fact_vectors(fact_rowid, tenant_id, model_id, embedding)"
                " SELECT f.rowid_, f.tenant_id, u.m, u.e"
                " FROM unnest(%s::text[], %s::text[], %s::vector[]) AS u(id, m, e)"
                " JOIN tenants t ON t.name = %s"
                " JOIN facts f ON f.tenant_id = t.id AND f.id = u.id"
                " ON CONFLICT (fact_rowid) DO UPDATE"
                " SET model_id = excluded.model_id, embedding = excluded.embedding",
                (
                    [v[0] for v in vectors],
                    [v[1] for v in vectors],
                    [_as_vector(v[2]) for v in vectors],
                    tenant,
                ),
            )
            return int(cur.rowcount)

        async with self._connection() as conn, conn.transaction(), conn.cursor() as cur:
            return await write(cur)


def _fact_row(rowid: int, tenant_id: int, fact: Fact) -> Row:
    """A `facts` row of a fact read back from a bundle, with its canonical tags and meta text."""
    return (
        rowid,
        fact.id,
        tenant_id,
        fact.project,
        fact.content,
        fact.fact_type,
        canonical_json(list(fact.tags)).decode(),
        fact.source,
        fact.confidence,
        to_micros(fact.valid_from),
        None if fact.valid_until is None else to_micros(fact.valid_until),
        fact.supersedes,
        to_micros(fact.created_at),
        canonical_json(dict(fact.meta)).decode(),
        fact.seq,
        None,  # key_version: a bundle's facts are in the clear
    )


def _ledger_row(tenant: str, row: Sequence[Any], cipher: FieldCipher | None) -> LedgerRow:
    """A verifier row from a `_ROWS_SQL` row, with the stored fact's digest recomputed.

    An encrypted store's rows are decrypted by `cipher` first: the digest covers the plaintext.
    """
    fact_id = row[9]
    if cipher is None or fact_id is None:
        digest = stored_fact_digest(tenant, row)
    else:
        digest = opened_fact_digest(
            tenant, row, lambda t, f, v, c, m: open_fact_fields(cipher, t, f, v, c, m)
        )
    return LedgerRow(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        row[5],
        bytes(row[6]),
        bytes(row[7]),
        bytes(row[8]),
        fact_id,
        digest,
        row[22] is not None,
    )
