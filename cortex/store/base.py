"""The storage contract: write requests, listing filters and the async `Store` protocol.

Every backend implements `Store`; the engine and the group-commit writer speak only to this.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from numpy.typing import NDArray

from cortex.errors import ConfigError, CortexError, IntegrityError, ValidationError
from cortex.model import (
    Checkpoint,
    ConsistencyProof,
    Fact,
    FactDraft,
    FactVersion,
    InclusionProof,
    Page,
    Stats,
    Transaction,
    VerifyReport,
)

__all__ = [
    "FACT_OPS",
    "AddDataKey",
    "AppendEvent",
    "Deprecate",
    "FieldCipher",
    "ListFilter",
    "MakeCheckpoint",
    "MasterRecord",
    "Purge",
    "Purged",
    "ReindexFacts",
    "ResealFacts",
    "RetireDataKeys",
    "SearchData",
    "Store",
    "StoreFacts",
    "StoreVectorSearch",
    "Supersede",
    "WrappedKey",
    "WriteOutcome",
    "WriteRequest",
    "check_event",
    "open_fact_fields",
]


@dataclass(frozen=True, slots=True)
class SearchData:
    """What the search indexes keep of one fact: the text to index and, optionally, its vector.

    `vector` is float32 bytes from the embedder `model_id`; None for a text-only engine.
    """

    text: str
    tags: str
    vector: bytes | None = None
    model_id: str | None = None


@dataclass(frozen=True, slots=True)
class StoreFacts:
    """Append new facts (one `store` transaction each) to `tenant`'s ledger.

    `search`, when given, has one entry per draft, in order.
    """

    tenant: str
    drafts: tuple[FactDraft, ...]
    actor: str | None = None
    search: tuple[SearchData, ...] | None = None

    @property
    def weight(self) -> int:
        """How many rows this request writes (for group sizing)."""
        return len(self.drafts)


@dataclass(frozen=True, slots=True)
class Deprecate:
    """Mark a fact deprecated, with a reason (one `deprecate` transaction)."""

    tenant: str
    fact_id: str
    reason: str
    actor: str | None = None
    weight: int = 1


@dataclass(frozen=True, slots=True)
class Supersede:
    """Store `draft` as a new fact that replaces `fact_id` (one `supersede` transaction)."""

    tenant: str
    fact_id: str
    draft: FactDraft
    reason: str | None = None
    actor: str | None = None
    search: SearchData | None = None
    weight: int = 1


@dataclass(frozen=True, slots=True)
class MakeCheckpoint:
    """Sign and store a checkpoint of `tenant`'s tree at its current size."""

    tenant: str
    weight: int = 1


@dataclass(frozen=True, slots=True)
class ReindexFacts:
    """Replace the search data (text row, vector) of existing facts; no ledger entry.

    Search indexes are derived data: rebuilding them changes no fact and logs nothing.
    """

    tenant: str
    rowids: tuple[int, ...]
    search: tuple[SearchData, ...]
    text: bool = True
    """Replace the full-text rows too; False writes the vectors alone (vectors written behind
    facts whose text rows were written with them: rewriting those is wasted index work)."""

    @property
    def weight(self) -> int:
        """How many rows this request writes (for group sizing)."""
        return len(self.rowids)


@dataclass(frozen=True, slots=True)
class AppendEvent:
    """Append one ledger transaction that changes no fact row (a vote, a gate request...).

    `payload` must have a canonical JSON form (it is hashed into the entry). With
    `require_fact`, `subject` must name a fact of the tenant (NotFound otherwise). With `unique`,
    the append is a Conflict when the tenant's ledger already holds a transaction with the same
    `op` and `subject`; the check runs inside the write transaction, so two processes racing for
    the same (op, subject) cannot both succeed. A tenant without a ledger gets one.
    """

    tenant: str
    op: str
    subject: str | None
    actor: str | None
    payload: Mapping[str, Any] = field(default_factory=dict)
    require_fact: bool = False
    unique: bool = False
    weight: int = 1


@dataclass(frozen=True, slots=True)
class AddDataKey:
    """Give `tenant` a new current data key (version = highest + 1); the outcome is its version.

    Facts written after it commits are sealed with the new key; older rows keep theirs until
    `ResealFacts` moves them (encrypted stores only).
    """

    tenant: str
    weight: int = 1


@dataclass(frozen=True, slots=True)
class ResealFacts:
    """Re-encrypt these facts of `tenant` with its current data key; the outcome is how many.

    Rows already at the current version are left alone, so a batch may be sent twice.
    """

    tenant: str
    rowids: tuple[int, ...]

    @property
    def weight(self) -> int:
        """How many rows this request writes (for group sizing)."""
        return len(self.rowids)


@dataclass(frozen=True, slots=True)
class RetireDataKeys:
    """Delete `tenant`'s data keys older than the current one that no fact uses any more.

    The outcome is how many were deleted.
    """

    tenant: str
    weight: int = 1


@dataclass(frozen=True, slots=True)
class Purge:
    """Destroy a fact's content, tags and meta, keeping its ledger entries (right to erasure).

    One `purge` transaction per version purged, payload `{"reason", "approval"}` (never the
    content). The fact row keeps its id, tenant, seq, times and names; its content becomes "",
    tags [] and meta {}; its text row and vector are deleted, and nothing of it is left in the
    database file or its journal (see docs/gate.md). With `all_versions`, every version of its
    supersession chain that is not purged yet is purged too. Conflict when nothing is left to
    purge; the outcome is `Purged`.
    """

    tenant: str
    fact_id: str
    reason: str
    actor: str | None = None
    approval: str | None = None
    all_versions: bool = False
    weight: int = 1


@dataclass(frozen=True, slots=True)
class Purged:
    """What a `Purge` destroyed: the purged versions as they read now, and their rowids."""

    facts: tuple[Fact, ...]
    rowids: tuple[int, ...]


WriteRequest = (
    StoreFacts
    | Deprecate
    | Supersede
    | MakeCheckpoint
    | ReindexFacts
    | AppendEvent
    | AddDataKey
    | ResealFacts
    | RetireDataKeys
    | Purge
)
WriteOutcome = list[Fact] | Fact | Checkpoint | int | Transaction | Purged | CortexError

# Ops that the stores write themselves; an AppendEvent may not use them.
FACT_OPS = frozenset({"store", "deprecate", "supersede", "purge"})
_EVENT_OP = re.compile(r"[a-z][a-z0-9_]{0,31}")


def check_event(request: AppendEvent) -> None:
    """Refuse an event whose op is not a lowercase name or is one of the fact ops."""
    if not isinstance(request.op, str) or not _EVENT_OP.fullmatch(request.op):
        raise ValidationError(f"event op {request.op!r} must be a lowercase name of 1-32 chars")
    if request.op in FACT_OPS:
        raise ValidationError(f"op {request.op!r} is written by the store itself, not as an event")
    if request.require_fact and not request.subject:
        raise ValidationError("an event about a fact needs the fact id as its subject")


@dataclass(frozen=True, slots=True)
class MasterRecord:
    """What an encrypted store records about its master key (nothing secret).

    `source` is "file" (a key file) or "passphrase" (Argon2id over a passphrase, with the salt
    and costs in `kdf`); `check` is a value only the right master key opens; `version` counts
    rotations from 1.
    """

    version: int
    source: str
    kdf: str | None
    check: bytes


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """One data key of a tenant, encrypted ("wrapped") by the master key."""

    tenant: str
    version: int
    wrapped: bytes


class FieldCipher(Protocol):
    """Seals and opens the free-text fields of facts (`content`, `meta`) for a store.

    Passed to a store at open; None means the store is plaintext. The store keeps the wrapped
    data keys and decides which version is current (inside its write transactions, so several
    processes agree); the cipher holds the master key and the unwrapped data keys. Implemented
    by `cortex.crypto.EnvelopeCipher`.
    """

    @property
    def check(self) -> bytes:
        """The check value of the master key in use (what the store's MasterRecord holds)."""
        ...

    def has_key(self, tenant: str, version: int) -> bool:
        """True when the data key `version` of `tenant` is loaded."""
        ...

    def new_key(self, tenant: str, version: int) -> bytes:
        """Create and load a data key; return it wrapped, for the store to keep."""
        ...

    def load_key(self, tenant: str, version: int, wrapped: bytes) -> None:
        """Unwrap and load a stored data key (WrongKey when the master key does not fit)."""
        ...

    def seal(self, tenant: str, version: int, fact_id: str, field: str, plaintext: str) -> str:
        """`plaintext` encrypted for this tenant, fact, field and key version (text to store)."""
        ...

    def open(self, tenant: str, version: int, fact_id: str, field: str, sealed: str) -> str:
        """The plaintext of a sealed field; DecryptionError naming the fact if it does not fit."""
        ...


def open_fact_fields(
    cipher: FieldCipher | None,
    tenant: str,
    fact_id: str,
    version: int | None,
    content: str,
    meta_json: str,
) -> tuple[str, str]:
    """A stored fact row's content and meta JSON in the clear (`version` None: stored so).

    ConfigError when the row is sealed and the store has no cipher; DecryptionError (naming the
    fact) when a sealed field does not open.
    """
    if version is None:
        if cipher is not None:
            raise IntegrityError(
                f"fact {fact_id} is stored in the clear in an encrypted store: it was altered"
            )
        return content, meta_json
    if cipher is None:
        raise ConfigError(
            f"fact {fact_id} is encrypted; open the store with its master key (cortex.open)"
        )
    return (
        cipher.open(tenant, version, fact_id, "content", content),
        cipher.open(tenant, version, fact_id, "meta", meta_json),
    )


@dataclass(frozen=True, slots=True)
class ListFilter:
    """Filters for listing facts; None means "any"."""

    project: str | None = None
    fact_type: str | None = None
    tags: tuple[str, ...] = ()
    source: str | None = None
    include_inactive: bool = False
    as_of: datetime | None = None
    min_confidence: float | None = None


class Store(Protocol):
    """An async storage backend. Writes come only through `apply_writes` (the writer's group)."""

    # How many groups the writer may hand to `apply_writes` at once; groups overlapping in time
    # must still reach each tenant's ledger in the order they were handed over.
    write_concurrency: int

    async def apply_writes(self, requests: Sequence[WriteRequest]) -> list[WriteOutcome]:
        """Apply `requests` in one durable database transaction; one outcome per request.

        A request that fails validation against stored state yields its CortexError in place and
        changes nothing; the others still commit. An exception raised (instead of returned) means
        the whole group failed and nothing of it was committed.
        """
        ...

    async def get_fact(self, tenant: str, fact_id: str, as_of: datetime | None = None) -> Fact: ...

    async def list_facts(
        self, tenant: str, filters: ListFilter, limit: int, cursor: str | None
    ) -> Page: ...

    async def history(self, tenant: str, fact_id: str) -> list[FactVersion]: ...

    async def transaction(self, tenant: str, seq: int) -> Transaction: ...

    async def tree_size(self, tenant: str) -> int: ...

    async def inclusion_proof(
        self, tenant: str, seq: int, tree_size: int | None
    ) -> InclusionProof: ...

    async def consistency_proof(
        self, tenant: str, old_size: int, new_size: int | None
    ) -> ConsistencyProof: ...

    async def checkpoints(self, tenant: str) -> list[Checkpoint]: ...

    async def events(
        self,
        tenant: str,
        ops: Sequence[str],
        subject: str | None = None,
        after_seq: int = -1,
        limit: int = 1000,
    ) -> list[Transaction]:
        """Up to `limit` transactions of `tenant` with an op in `ops` (and `subject`, when
        given) and seq above `after_seq`, in seq order, payloads included."""
        ...

    async def tenants(self) -> list[str]: ...

    async def verify(
        self, public_keys: Sequence[Ed25519PublicKey], tenant: str | None
    ) -> VerifyReport: ...

    async def export(self, tenant: str, path: Path, public_key_pem: bytes) -> int: ...

    async def stats(self, tenant: str) -> Stats: ...

    async def close(self) -> None: ...

    # Search reads. Facts are named by their store-wide integer `rowid` here: the key of the
    # derived indexes. Filters apply inside each query, for `tenant` only.

    async def text_candidates(
        self, tenant: str, match: str, filters: ListFilter, limit: int
    ) -> list[tuple[int, float]]:
        """(rowid, BM25 score, lower is better) of facts matching an FTS5 expression, best first."""
        ...

    async def filter_rowids(
        self, tenant: str, rowids: Sequence[int], filters: ListFilter
    ) -> list[int]:
        """Those of `rowids` whose facts pass `filters`, in the given order."""
        ...

    async def facts_by_rowid(
        self, tenant: str, rowids: Sequence[int], as_of: datetime | None
    ) -> dict[int, Fact]: ...

    async def vectors_after(
        self, tenant: str, after_rowid: int, limit: int
    ) -> list[tuple[int, str, bytes]]:
        """(rowid, model id, float32 vector bytes) above `after_rowid`, by rowid."""
        ...

    async def filtered_vectors(
        self, tenant: str, model_id: str, filters: ListFilter, limit: int
    ) -> list[tuple[int, bytes]] | None:
        """(rowid, vector) of every fact passing `filters`; None when more than `limit` pass."""
        ...

    async def facts_to_index(
        self, tenant: str, *, model_id: str | None, after_rowid: int, limit: int
    ) -> list[tuple[int, str, str]]: ...

    async def count_facts(self, tenant: str) -> int: ...

    async def last_vector_rowid(self, tenant: str) -> int: ...

    async def purged_rowids(self, tenant: str) -> list[int]:
        """Rowids of `tenant`'s purged facts (what no derived index may keep a vector of)."""
        ...

    # Encryption at rest: the master key record and wrapped data keys (see FieldCipher).

    async def master_record(self) -> MasterRecord | None:
        """The store's master key record; None for a plaintext store."""
        ...

    async def data_keys(self, tenant: str | None = None) -> list[WrappedKey]:
        """Every wrapped data key (of `tenant`, when given), by tenant and version."""
        ...

    async def set_master_key(
        self, record: MasterRecord, previous: bytes | None, rewrapped: Sequence[WrappedKey]
    ) -> int:
        """Record a master key in one transaction; return how many data keys were re-wrapped.

        With `previous` None the store becomes encrypted (a Conflict if it already is, or has
        tenants). Otherwise the stored record must have the check value `previous` and
        `rewrapped` must hold every stored data key, re-wrapped by the new master key; else
        Conflict (another process rotated, or a tenant got its first key meanwhile: retry).
        """
        ...

    async def facts_to_reseal(self, tenant: str, after_rowid: int, limit: int) -> list[int]:
        """Rowids above `after_rowid` of facts sealed with an older key than the current one."""
        ...

    async def count_facts_to_reseal(self, tenant: str) -> int:
        """How many facts of `tenant` are sealed with an older key than the current one."""
        ...


@runtime_checkable
class StoreVectorSearch(Protocol):
    """A store that answers vector candidates itself (PostgreSQL + pgvector).

    The searcher asks such a store first and keeps no in-process index for it; None from the
    store means "not answered here" and the searcher falls back to its own index.
    """

    async def vector_candidates(
        self,
        tenant: str,
        vector: NDArray[np.float32],
        model_id: str,
        filters: ListFilter,
        limit: int,
    ) -> list[tuple[int, float]] | None:
        """Up to `limit` (rowid, cosine similarity) of facts passing `filters`, best first."""
        ...
