"""The engine: `Cortex` (async) composes settings, store, writer and keys; `CortexSync` wraps it.

`await Cortex.open(settings)` (or `await cortex.open(path)`) returns an engine that owns its store,
its group-commit writer and their threads, and releases all of them in `aclose()`.
`cortex.connect(path)` returns `CortexSync`, the same methods for scripts and the CLI, run on a
private event loop thread that the handle owns.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import os
import secrets
import tempfile
import threading
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Concatenate, Literal, ParamSpec, Protocol, TypeVar

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from numpy.typing import NDArray

from cortex.canonical import parse_ts
from cortex.config import Settings
from cortex.consensus import (
    Consensus,
    ConsensusFilter,
    ConsensusPolicy,
    ConsensusTally,
    Reputation,
    Vote,
    check_search,
    rank_by_consensus,
    vote_payload,
)
from cortex.crypto import (
    KEY_ROTATE_OP,
    DataRotation,
    EnvelopeCipher,
    MasterRotation,
    enable_encryption,
    open_cipher,
    rotate_data,
    rotate_master,
)
from cortex.crypto.keys import (
    create_signing_key,
    load_public_key,
    load_signing_key,
    write_private_file,
)
from cortex.errors import (
    ConfigError,
    Conflict,
    IntegrityError,
    NotFound,
    SearchDisabled,
    ShieldBlocked,
    StoreClosed,
    ValidationError,
)
from cortex.gate import Approval, ApprovalGate, Decision
from cortex.gate.tokens import GATE_KEY_BYTES
from cortex.ledger.checkpoint import sign_checkpoint
from cortex.model import (
    Checkpoint,
    ConsistencyProof,
    Fact,
    FactDraft,
    FactVersion,
    InclusionProof,
    Page,
    SearchHit,
    Stats,
    Transaction,
    VerifyReport,
    check_name,
)
from cortex.report.build import ComplianceReport, FactConsensus, build_report
from cortex.report.build import Progress as ReportProgress
from cortex.report.tally import parse_period
from cortex.search.backfill import VectorBackfill
from cortex.search.batching import EmbeddingBatcher, lower_thread_priority
from cortex.search.embedder import Embedder, make_embedder
from cortex.search.lease import FileLease, Lease, PostgresLease
from cortex.search.searcher import MAX_TOP_K, Searcher, SearchMode, SearchOptions
from cortex.search.text import index_text
from cortex.shield.scanner import Shield, position, redact
from cortex.store.base import (
    AppendEvent,
    Deprecate,
    ListFilter,
    MakeCheckpoint,
    MasterRecord,
    Purge,
    Purged,
    ReindexFacts,
    SearchData,
    StoreFacts,
    Supersede,
    WriteOutcome,
)
from cortex.store.postgres import PostgresStore, is_database_url
from cortex.store.sqlite import SqliteStore
from cortex.store.writer import GroupCommitWriter

__all__ = [
    "Cortex",
    "CortexSync",
    "InitResult",
    "connect",
    "draft_from_mapping",
    "init_home",
    "open",
    "verify_export",
    "verify_export_sync",
]

P = ParamSpec("P")
T = TypeVar("T")
MAX_REASON = 2000
_BACKGROUND_CHUNK = 1
"""Texts per model call when vectors are written in the background (see `_search_data`): a
query waits for one fact's embedding at most (api_load, 50 clients: search p50 138-168 ms with
4 texts per call, 56-57 ms with 1; batching gains nothing on a CPU)."""
_INLINE_INDEX_TEXTS = 16
_INLINE_SCREEN_CHARS = 65_536
MAX_PAGE = 1000
# What an encrypted store with encrypted_search = "none" indexes of a fact: nothing.
_NO_SEARCH_DATA = SearchData("", "")
_SEARCH_OFF = (
    "search is off for this encrypted store (encrypted_search = 'none': no index keeps its"
    " facts' words or meaning); set encrypted_search = 'vector' or 'full' and run"
    " `cortex reindex --full` to enable it (docs/encryption.md says what each reveals)"
)
MAX_BULK_DEPRECATE = 10_000
_BULK_CHUNK = 500
_DRAFT_FIELDS = frozenset(
    {
        "content",
        "project",
        "fact_type",
        "tags",
        "source",
        "confidence",
        "valid_from",
        "valid_until",
        "meta",
    }
)


@dataclass(frozen=True, slots=True)
class InitResult:
    """What `init_home` did."""

    home: Path
    created: bool
    public_key_pem: bytes
    # Encryption at rest: "file" or "passphrase" when the store is encrypted, else None.
    encryption: str | None = None


def init_home(
    settings: Settings, *, encrypt: bool = False, passphrase: str | None = None
) -> InitResult:
    """Create the data directory, its signing key and server secret (0600) and database.

    A no-op for what is already present. With `encrypt` (or a `passphrase`), a new store is
    encrypted at rest: its master key is a new key file (`settings.master_key_path`, 0600) or is
    derived from `passphrase`; see docs/encryption.md. A store that already holds data in the
    clear cannot be encrypted afterwards (Conflict).
    """
    home = settings.home
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    created = False
    if not settings.signing_key_path.exists():
        if settings.database_path.exists():
            raise ConfigError(
                f"{home} has a database but no signing key ({settings.signing_key_path});"
                " restore the key from backup: a new key cannot vouch for old checkpoints"
            )
        create_signing_key(settings.signing_key_path)
        created = True
    if not settings.server_secret_path.exists():
        if settings.service_database_path.exists():
            raise ConfigError(
                f"{home} has API keys but no server secret ({settings.server_secret_path});"
                " restore it from backup: without it no stored API key can be checked"
            )
        # Keys the HMAC of every API key (`cortex serve`); never defaulted, never replaced.
        write_private_file(settings.server_secret_path, secrets.token_bytes(32))
    if not settings.gate_key_path.exists():
        # Signs approval tokens (docs/gate.md); made here, on an existing home too, never on use.
        write_private_file(settings.gate_key_path, secrets.token_bytes(GATE_KEY_BYTES))
    key = load_signing_key(settings.signing_key_path)
    if settings.database_url is None:  # a PostgreSQL schema is migrated when the engine opens
        SqliteStore.create(settings.database_path)
    record = None
    if encrypt or passphrase is not None:
        # The stores are async: run the one-off setup on a private loop (callers may be async).
        _run_private(_enable_encryption(settings, passphrase))
        record = _run_private(_master_record(settings))
    elif settings.database_url is None:
        record = SqliteStore.read_master_record(settings.database_path)
    encryption = None if record is None else record.source
    return InitResult(home, created, _public_pem(key.public_key()), encryption)


def _run_private(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a private event loop thread (from blocking code)."""
    with ThreadPoolExecutor(1, thread_name_prefix="cortex-init") as pool:
        return pool.submit(asyncio.run, coro).result()


async def _master_record(settings: Settings) -> MasterRecord | None:
    """The encryption record of the store `settings` point at (None: plaintext)."""
    if settings.database_url is not None:
        return await PostgresStore.read_master_record(
            settings.database_url, timeout=min(10.0, settings.write_timeout)
        )
    return await asyncio.to_thread(SqliteStore.read_master_record, settings.database_path)


async def _enable_encryption(settings: Settings, passphrase: str | None) -> None:
    """Record a new master key in the store (a no-op when it is already encrypted)."""
    if await _master_record(settings) is not None:
        return
    store: SqliteStore | PostgresStore
    if settings.database_url is not None:
        store = await PostgresStore.open(settings.database_url, pool_size=1)
    else:
        store = await SqliteStore.open(settings.database_path, read_threads=1, create=False)
    try:
        await enable_encryption(store, settings, passphrase)
    finally:
        await store.close()


def _public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def _reason(reason: object) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationError("a reason is required: say why the fact no longer holds")
    if len(reason) > MAX_REASON:
        raise ValidationError(f"reason is {len(reason)} characters; the limit is {MAX_REASON}")
    return reason.strip()


def _when(value: datetime | str | None, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime | str):
        raise ValidationError(f"{name} must be a timestamp")
    return parse_ts(value)


def draft_from_mapping(item: Mapping[str, Any], *, default_project: str = "default") -> FactDraft:
    """Build a FactDraft from a JSON-like mapping (as read from JSONL or an API body)."""
    if type(item) is not dict and not isinstance(item, Mapping):
        raise ValidationError("each fact must be a JSON object with at least 'content'")
    unknown = item.keys() - _DRAFT_FIELDS
    if unknown:
        raise ValidationError(f"unknown field(s): {', '.join(sorted(unknown))}")
    if "content" not in item:
        raise ValidationError("missing required field 'content'")
    tags = item.get("tags") or ()
    if isinstance(tags, str) or not isinstance(tags, list | tuple):
        raise ValidationError("tags must be a list of strings")
    return FactDraft(
        content=item["content"],
        project=item.get("project") or default_project,
        fact_type=item.get("fact_type") or "knowledge",
        tags=tuple(tags),
        source=item.get("source"),
        confidence=item.get("confidence"),
        valid_from=_when(item.get("valid_from"), "valid_from"),
        valid_until=_when(item.get("valid_until"), "valid_until"),
        meta=item.get("meta") or {},
    )


def _drafts_of(items: Iterable[FactDraft | Mapping[str, Any]]) -> list[FactDraft]:
    """Drafts of `items` (drafts or JSON-like mappings); a bad one is named by its index."""
    drafts = []
    for number, item in enumerate(items):
        try:
            drafts.append(item if isinstance(item, FactDraft) else draft_from_mapping(item))
        except ValidationError as exc:
            raise ValidationError(f"item {number}: {exc}") from exc
    return drafts


class _Indexable(Protocol):
    """What search data is made from: a fact's content and tags."""

    @property
    def content(self) -> str: ...

    @property
    def tags(self) -> tuple[str, ...]: ...


@dataclass(frozen=True, slots=True)
class _IndexDraft:
    content: str
    tags: tuple[str, ...]


class Cortex:
    """The async CORTEX engine. Create with `await Cortex.open(settings)`; close with `aclose()`."""

    def __init__(
        self,
        settings: Settings,
        store: SqliteStore | PostgresStore,
        writer: GroupCommitWriter,
        key: Ed25519PrivateKey,
        embedder: Embedder | None,
        shield: Shield | None = None,
        cipher: EnvelopeCipher | None = None,
    ) -> None:
        self.settings = settings
        # Encryption at rest: the store's cipher (None: plaintext) and what the search indexes
        # keep of encrypted facts ("full" for a plaintext store; see docs/encryption.md).
        self._cipher = cipher
        self._index_mode = "full" if cipher is None else settings.encrypted_search
        self._shield = shield if shield is not None else Shield(settings.shield)
        self._store = store
        self._writer = writer
        self._key = key
        self._public_key = key.public_key()
        self._embedder = embedder
        # Writes' texts, queries and vectors written behind the facts are embedded on threads
        # of their own (the last at a lower priority): a query never waits for a write's or the
        # background's model calls (see cortex.search.batching).
        self._embed_pool = ThreadPoolExecutor(1, thread_name_prefix="cortex-embed")
        self._query_pool = ThreadPoolExecutor(1, thread_name_prefix="cortex-query")
        self._background_pool = ThreadPoolExecutor(
            1, thread_name_prefix="cortex-embed-background", initializer=lower_thread_priority
        )
        self._batcher = (
            None
            if embedder is None
            else EmbeddingBatcher(
                embedder,
                self._embed_pool,
                query_pool=self._query_pool,
                background_pool=self._background_pool,
            )
        )
        # vector_writes = "background": writes commit without vectors, this task adds them.
        self._backfill: VectorBackfill | None = None
        if (
            settings.vector_writes == "background"
            and embedder is not None
            and self._index_mode in ("full", "vector")
        ):
            # One process at a time embeds for the store (see cortex.search.lease).
            lease: Lease = (
                PostgresLease(settings.database_url)
                if settings.database_url is not None
                else FileLease(
                    settings.database_path.with_name(f"{settings.database_path.name}.vectors.lock")
                )
            )
            self._backfill = VectorBackfill(
                tenants=store.tenants,
                pending=self._facts_without_vectors,
                index=self._write_vectors,
                lease=lease,
            )
        self._searcher = Searcher(
            store,
            embedder,
            self._query_pool,
            batcher=self._batcher,
            options=SearchOptions(
                fusion="rrf" if settings.fusion == "rrf" else "score",
                rrf_k=settings.rrf_k,
                vector_weight=settings.vector_weight,
                text_weight=settings.text_weight,
            ),
            index_dir=settings.index_dir,
            ann_threshold=settings.ann_threshold,
            merge_at=min(10_000, max(1, settings.ann_threshold // 2)),
        )
        self._consensus = ConsensusTally(
            store,
            ConsensusPolicy(
                verified_at=settings.consensus_verified, disputed_at=settings.consensus_disputed
            ),
        )
        self._gate = ApprovalGate(
            gated_actions=settings.gated_actions,
            ttl=settings.gate_ttl,
            max_pending=settings.gate_max_pending,
            key_path=settings.gate_key_path,
            append=self._append_event,
            read=self.events,
        )
        self._closed = False

    @classmethod
    async def open(
        cls,
        settings: Settings | str | os.PathLike[str] | None = None,
        *,
        embedder: Embedder | Literal["settings"] | None = "settings",
        **options: Any,
    ) -> Cortex:
        """Open the engine on an initialised data directory (see `cortex init`).

        The embedder named by `settings.embedder` is created (and loaded lazily, on first use)
        unless `embedder` passes one in, or None for a text-only engine; an engine shares a
        passed-in embedder with its other users (it holds no per-engine state).
        """
        settings = _settings(settings, options)
        has_store = settings.database_url is not None or settings.database_path.exists()
        if not has_store or not settings.signing_key_path.exists():
            raise ConfigError(
                f"{settings.home} is not an initialised CORTEX data directory;"
                f" run `cortex init --home {settings.home}` first"
            )
        shield = Shield(settings.shield)  # a bad [shield] policy fails before anything opens
        key = load_signing_key(settings.signing_key_path)

        def signer(tenant: str, size: int, root: bytes, ts: str) -> Checkpoint:
            return sign_checkpoint(key, tenant, size, root, ts)

        # An encrypted store opens only with its master key (ConfigError / WrongKey before
        # anything is served); the cipher is passed to the store explicitly.
        record = await _master_record(settings)
        cipher = None if record is None else await open_cipher(record, settings, os.environ)
        store: SqliteStore | PostgresStore
        if settings.database_url is not None:
            store = await PostgresStore.open(
                settings.database_url,
                pool_size=settings.read_threads + PostgresStore.write_concurrency,
                checkpoint_every=settings.checkpoint_every,
                signer=signer,
                timeout=min(10.0, settings.write_timeout),
                cipher=cipher,
            )
        else:
            store = await SqliteStore.open(
                settings.database_path,
                read_threads=settings.read_threads,
                checkpoint_every=settings.checkpoint_every,
                signer=signer,
                create=False,
                cipher=cipher,
            )
        writer = GroupCommitWriter(
            store.apply_writes,
            queue_size=settings.write_queue_size,
            batch_max=settings.write_batch_max,
            timeout=settings.write_timeout,
            concurrency=store.write_concurrency,
        )
        writer.start()
        chosen = (
            make_embedder(settings.embedder, threads=settings.embed_threads)
            if embedder == "settings"
            else embedder
        )
        engine = cls(settings, store, writer, key, chosen, shield=shield, cipher=cipher)
        if engine._backfill is not None:
            engine._backfill.start()
        return engine

    async def aclose(self) -> None:
        """Finish queued writes, stop the writer and close the store. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._backfill is not None:
                await self._backfill.aclose()
            await self._writer.close()
            if self._batcher is not None:
                await self._batcher.aclose()
            await self._searcher.aclose()
            await self._store.close()
        finally:
            for pool in (self._embed_pool, self._query_pool, self._background_pool):
                pool.shutdown(wait=True)

    async def __aenter__(self) -> Cortex:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def writer(self) -> GroupCommitWriter:
        """The group-commit writer (for metrics and health checks)."""
        return self._writer

    @property
    def public_key_pem(self) -> bytes:
        """The checkpoint verification key, PEM encoded."""
        return _public_pem(self._public_key)

    def _tenant(self, tenant: str | None) -> str:
        if self._closed:
            raise StoreClosed("the engine is closed; open a new one")
        return check_name("tenant", tenant) if tenant is not None else self.settings.tenant

    async def _write(self, request: Any) -> WriteOutcome:
        return await self._writer.submit(request)

    # ------------------------------------------------------------------ facts

    async def store(
        self,
        content: str,
        *,
        project: str | None = None,
        fact_type: str | None = None,
        tags: Iterable[str] = (),
        source: str | None = None,
        confidence: float | None = None,
        valid_from: datetime | str | None = None,
        valid_until: datetime | str | None = None,
        meta: Mapping[str, Any] | None = None,
        tenant: str | None = None,
    ) -> Fact:
        """Store one fact; return it once its ledger entry is durably committed."""
        draft = FactDraft(
            content=content,
            project=project or "default",
            fact_type=fact_type or "knowledge",
            tags=tuple(tags) if not isinstance(tags, str) else (tags,),
            source=source,
            confidence=confidence,
            valid_from=_when(valid_from, "valid_from"),
            valid_until=_when(valid_until, "valid_until"),
            meta=meta or {},
        )
        name = self._tenant(tenant)
        (draft,) = await self._screen(name, (draft,))
        search = await self._search_data((draft,), embed=self._backfill is None)
        facts = await self._write(StoreFacts(name, (draft,), search=search))
        assert isinstance(facts, list)
        self._vectors_later(name)
        return facts[0]

    async def store_many(
        self, items: Iterable[FactDraft | Mapping[str, Any]], *, tenant: str | None = None
    ) -> list[Fact]:
        """Store many facts in one group commit: all of them or, on any invalid item, none."""
        drafts = _drafts_of(items)
        if not drafts:
            return []
        name = self._tenant(tenant)
        drafts = list(await self._screen(name, drafts))
        search = await self._search_data(drafts, embed=self._backfill is None)
        facts = await self._write(StoreFacts(name, tuple(drafts), search=search))
        assert isinstance(facts, list)
        self._vectors_later(name)
        return facts

    async def screen(
        self, items: Iterable[FactDraft | Mapping[str, Any]], *, tenant: str | None = None
    ) -> list[FactDraft]:
        """Run the privacy shield over facts as `store_many` would, storing nothing.

        Raises ShieldBlocked (naming the item) when the tenant's policy blocks one; otherwise
        returns the drafts as they would be stored, with redactions applied. (Pass the original
        items to `store_many`, which screens them again and records the redactions.)
        """
        drafts = _drafts_of(items)
        return list(await self._screen(self._tenant(tenant), drafts)) if drafts else []

    async def get(
        self, fact_id: str, *, as_of: datetime | str | None = None, tenant: str | None = None
    ) -> Fact:
        """Return a fact; with `as_of`, as it was recorded then (NotFound if not valid then)."""
        return await self._store.get_fact(self._tenant(tenant), fact_id, _when(as_of, "as_of"))

    async def list(
        self,
        *,
        project: str | None = None,
        fact_type: str | None = None,
        tags: Iterable[str] = (),
        source: str | None = None,
        include_inactive: bool = False,
        as_of: datetime | str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        tenant: str | None = None,
    ) -> Page:
        """Return one page of facts in creation order; pass `next_cursor` back for the next."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise ValidationError(f"limit must be between 1 and {MAX_PAGE}")
        filters = ListFilter(
            project=project,
            fact_type=fact_type,
            tags=tuple(tags),
            source=source,
            include_inactive=include_inactive,
            as_of=_when(as_of, "as_of"),
        )
        return await self._store.list_facts(self._tenant(tenant), filters, limit, cursor)

    async def deprecate(
        self, fact_id: str, reason: str, *, actor: str | None = None, tenant: str | None = None
    ) -> Fact:
        """Mark an active fact deprecated with a reason; it stays readable with its history."""
        request = Deprecate(self._tenant(tenant), fact_id, _reason(reason), actor)
        fact = await self._write(request)
        assert isinstance(fact, Fact)
        return fact

    async def supersede(
        self,
        fact_id: str,
        content: str,
        *,
        reason: str | None = None,
        project: str | None = None,
        fact_type: str | None = None,
        tags: Iterable[str] | None = None,
        source: str | None = None,
        confidence: float | None = None,
        valid_from: datetime | str | None = None,
        valid_until: datetime | str | None = None,
        meta: Mapping[str, Any] | None = None,
        tenant: str | None = None,
    ) -> Fact:
        """Store a new fact that replaces `fact_id`; fields not given are taken from the old one."""
        name = self._tenant(tenant)
        old = await self._store.get_fact(name, fact_id)
        draft = FactDraft(
            content=content,
            project=project or old.project,
            fact_type=fact_type or old.fact_type,
            tags=tuple(tags) if tags is not None else old.tags,
            source=source if source is not None else old.source,
            confidence=confidence if confidence is not None else old.confidence,
            valid_from=_when(valid_from, "valid_from"),
            valid_until=_when(valid_until, "valid_until"),
            meta=meta if meta is not None else old.meta,
        )
        (draft,) = await self._screen(name, (draft,))
        (search,) = await self._search_data((draft,), embed=self._backfill is None)
        request = Supersede(
            name, fact_id, draft, _reason(reason) if reason else None, search=search
        )
        fact = await self._write(request)
        assert isinstance(fact, Fact)
        self._vectors_later(name)
        return fact

    async def history(
        self, fact_id: str, *, tenant: str | None = None
    ) -> builtins.list[FactVersion]:
        """Every version of a fact (its supersession chain), with the transactions of each."""
        return await self._store.history(self._tenant(tenant), fact_id)

    async def _screen(self, tenant: str, drafts: Sequence[FactDraft]) -> tuple[FactDraft, ...]:
        """Pass drafts through the privacy shield: ShieldBlocked, or drafts with redactions."""
        if sum(len(d.content) for d in drafts) <= _INLINE_SCREEN_CHARS:
            return self._shield.screen(tenant, drafts)  # ~15-30 µs per short fact
        return await asyncio.to_thread(self._shield.screen, tenant, drafts)

    async def _search_data(
        self, drafts: Sequence[_Indexable], *, embed: bool = True, background: bool = False
    ) -> tuple[SearchData, ...]:
        """Index text and (with an embedder, unless not `embed`) vectors for `drafts`, computed
        off the event loop.

        Vectors come from the embedding batcher: its write lane (one model call per write, on
        the writes' embedding thread) or, `background`, its low-priority background lane.
        """
        if self._index_mode == "none":  # an encrypted store that keeps no search data
            return tuple(_NO_SEARCH_DATA for _ in drafts)
        if self._batcher is None or not embed:
            if len(drafts) <= _INLINE_INDEX_TEXTS:
                # A few texts to split: cheaper here (tens of µs) than a hop to another thread.
                return self._make_search_data(drafts, None)
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(
                self._embed_pool, self._make_search_data, drafts, None
            )
        texts = [d.content for d in drafts]
        if background:
            # One text per model call (on a CPU a batch saves nothing, and the batcher may
            # interleave other background calls, e.g. another tenant's).
            parts = [
                await self._batcher.embed(texts[i : i + _BACKGROUND_CHUNK], lane="background")
                for i in range(0, len(texts), _BACKGROUND_CHUNK)
            ]
            matrix = np.vstack(parts)
        else:
            matrix = await self._batcher.embed(texts)
        if len(drafts) <= _INLINE_INDEX_TEXTS:
            return self._make_search_data(drafts, matrix)
        loop = asyncio.get_running_loop()
        pool = self._background_pool if background else self._embed_pool
        return await loop.run_in_executor(pool, self._make_search_data, drafts, matrix)

    def _make_search_data(
        self, drafts: Sequence[_Indexable], matrix: NDArray[np.float32] | None
    ) -> tuple[SearchData, ...]:
        """Index text of `drafts`, with their vectors (`matrix`, one row each) when embedded."""
        vectors: list[bytes | None] = [None] * len(drafts)
        model_id = None
        if matrix is not None and self._embedder is not None:
            vectors = [row.tobytes() for row in matrix]
            model_id = self._embedder.model_id
        if self._index_mode != "full":  # encrypted, vectors only: no words in the text index
            return tuple(SearchData("", "", vector, model_id) for vector in vectors)
        return tuple(
            SearchData(index_text(d.content), index_text(" ".join(d.tags)), vector, model_id)
            for d, vector in zip(drafts, vectors, strict=True)
        )

    def _vectors_later(self, tenant: str) -> None:
        """After a write committed without vectors: have the background task add them."""
        if self._backfill is not None:
            self._backfill.wake(tenant)

    async def _facts_without_vectors(
        self, tenant: str, after_rowid: int, limit: int
    ) -> builtins.list[tuple[int, str, str]]:
        assert self._embedder is not None
        return await self._store.facts_to_index(
            tenant, model_id=self._embedder.model_id, after_rowid=after_rowid, limit=limit
        )

    async def _write_vectors(
        self,
        tenant: str,
        rows: builtins.list[tuple[int, str, str]],
        *,
        background: bool = True,
    ) -> None:
        """Index `rows` (rowid, content, tags JSON) of `facts_to_index` again: text and vectors,
        or (`background`: vectors written behind facts stored with their text) vectors alone."""
        drafts = [_IndexDraft(content, tuple(json.loads(tags))) for _, content, tags in rows]
        search = await self._search_data(drafts, background=background)
        rowids = tuple(r[0] for r in rows)
        await self._write(ReindexFacts(tenant, rowids, search, text=not background))

    async def flush_vectors(self, *, tenant: str | None = None) -> int:
        """Wait until every fact (of `tenant`, or of every tenant) has its vector; how many
        were embedded now. Only does something with `vector_writes = "background"`."""
        if self._backfill is None:
            return 0
        return await self._backfill.drain(None if tenant is None else self._tenant(tenant))

    async def reindex(
        self,
        *,
        full: bool = False,
        batch: int = 256,
        progress: Callable[[int, int], None] | None = None,
        tenant: str | None = None,
    ) -> int:
        """Rebuild the tenant's search data from its facts; return how many facts were indexed.

        By default, embeds every fact that has no vector from this engine's model (after a model
        change, or for facts stored by a text-only engine). Resumable: an interrupted run leaves
        committed batches done, and a rerun continues with what is left. `full` rebuilds the text
        index and the vectors of every fact. `progress(done, total)` is called after each batch.
        Memory stays bounded by `batch`.
        """
        name = self._tenant(tenant)
        if self._index_mode == "none":
            raise SearchDisabled(_SEARCH_OFF)
        if self._embedder is None and not full:
            raise ValidationError(
                "this engine has no embedder: only a full rebuild of the text index applies"
            )
        if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= 10_000:
            raise ValidationError("batch must be between 1 and 10000")
        model_id = None if full or self._embedder is None else self._embedder.model_id
        total = await self._store.count_facts(name)
        after, done = 0, 0
        while rows := await self._store.facts_to_index(
            name, model_id=model_id, after_rowid=after, limit=batch
        ):
            await self._write_vectors(name, rows, background=False)
            after, done = rows[-1][0], done + len(rows)
            if progress is not None:
                progress(done, total)
        await self._searcher.forget(name)
        return done

    async def search(
        self,
        query: str,
        *,
        k: int = 10,
        mode: SearchMode = "hybrid",
        project: str | None = None,
        fact_type: str | None = None,
        tags: Iterable[str] = (),
        source: str | None = None,
        as_of: datetime | str | None = None,
        min_confidence: float | None = None,
        include_inactive: bool = False,
        consensus: ConsensusFilter | None = None,
        consensus_boost: float = 0.0,
        tenant: str | None = None,
    ) -> builtins.list[SearchHit]:
        """The `k` facts that best answer `query`, best first, by meaning and by words.

        `mode` "hybrid" fuses vector and BM25 rankings (Reciprocal Rank Fusion); "vector" and
        "text" use one of them. Filters apply while candidates are gathered, so `k` hits come
        back whenever that many facts pass them. With `as_of`, only facts valid at that instant
        are searched, as they were recorded then. A text-only engine (embedder "none") treats
        "hybrid" as "text".

        `consensus` ("verified" or "not_disputed") and `consensus_boost` (0-10) act on the
        fused candidates: the best max(4k, 100) (at most 1000) are fetched, filtered by their
        facts' consensus status as of now, and with a boost b re-ranked by their min-max
        normalised score plus b times their consensus score (the hits' new `score`); see
        `cortex.consensus.rank_by_consensus`. A fact outside those candidates is not found, so
        fewer than `k` hits may come back. Without either, results are exactly as before.
        """
        if min_confidence is not None and (
            isinstance(min_confidence, bool)
            or not isinstance(min_confidence, int | float)
            or not 0 <= min_confidence <= 1
        ):
            raise ValidationError("min_confidence must be a number between 0 and 1")
        filters = ListFilter(
            project=project,
            fact_type=fact_type,
            tags=tuple(tags) if not isinstance(tags, str) else (tags,),
            source=source,
            include_inactive=include_inactive,
            as_of=_when(as_of, "as_of"),
            min_confidence=None if min_confidence is None else float(min_confidence),
        )
        boost = check_search(consensus, consensus_boost)
        name = self._tenant(tenant)
        mode = self._encrypted_search_mode(mode)
        if consensus is None and not boost:
            return await self._searcher.search(name, query, k=k, mode=mode, filters=filters)
        pool = min(MAX_TOP_K, max(4 * k, 100)) if isinstance(k, int) and 0 < k <= MAX_TOP_K else k
        hits = await self._searcher.search(name, query, k=pool, mode=mode, filters=filters)
        settlement = (await self._consensus.snapshot(name)).settlement
        return rank_by_consensus(hits, settlement.score_of, consensus=consensus, boost=boost, k=k)

    def _encrypted_search_mode(self, mode: SearchMode) -> SearchMode:
        """The search mode an encrypted store allows for `mode` (SearchDisabled if none)."""
        if self._index_mode == "full":
            return mode
        if self._index_mode == "none":
            raise SearchDisabled(_SEARCH_OFF)
        if mode == "text":
            raise SearchDisabled(
                "text search is off for this encrypted store (encrypted_search = 'vector'):"
                " its text index keeps no words; search with mode 'vector' or 'hybrid'"
            )
        return "vector"

    # ------------------------------------------------------------------ encryption at rest

    @property
    def encrypted(self) -> bool:
        """True when fact content and meta are stored encrypted (see docs/encryption.md)."""
        return self._cipher is not None

    def _require_cipher(self) -> EnvelopeCipher:
        if self._closed:
            raise StoreClosed("the engine is closed; open a new one")
        if self._cipher is None:
            raise ConfigError(
                "this store is not encrypted: encryption is chosen at `cortex init --encrypt`"
            )
        return self._cipher

    def _key_rotate_logger(
        self, actor: str | None
    ) -> Callable[[str, Mapping[str, Any]], Coroutine[Any, Any, Transaction]]:
        async def log(tenant: str, payload: Mapping[str, Any]) -> Transaction:
            return await self._append_event(
                KEY_ROTATE_OP, None, payload, tenant=tenant, actor=actor
            )

        return log

    async def rotate_master_key(
        self,
        *,
        passphrase: str | None = None,
        approval: str | None = None,
        actor: str | None = None,
        tenant: str | None = None,
    ) -> MasterRotation:
        """Re-wrap every data key under a new master key; no fact is rewritten.

        The new key is a new key file (replacing `settings.master_key_path` once the store has
        committed to it) or, with `passphrase`, derived from that passphrase. Logged as a
        `key_rotate` event in every tenant that has a data key.

        Gated (`rotate_master` in `gated_actions`, the default): the approval is asked for and
        decided in `tenant` (default: the engine's), whose admins speak for the whole store;
        without `approval` it raises ApprovalRequired with the pending approval's id.
        """
        cipher = self._require_cipher()
        source = "passphrase" if passphrase is not None else "file"
        await self._gated(
            "rotate_master",
            {"source": source},
            approval,
            tenant=self._tenant(tenant),
            actor=actor,
        )
        return await rotate_master(
            self._store,
            cipher,
            self.settings,
            self._key_rotate_logger(actor),
            passphrase=passphrase,
        )

    async def rotate_data_key(
        self,
        tenant: str | None = None,
        *,
        progress: Callable[[int, int], None] | None = None,
        batch: int = 500,
        approval: str | None = None,
        actor: str | None = None,
    ) -> DataRotation:
        """Give the tenant a new data key and re-encrypt its facts with it, `batch` at a time.

        The batches go through the writer, so normal writes continue meanwhile (and are sealed
        with the new key). Resumable: rerun after a crash to finish. `progress(done, total)` is
        called after each batch. Logged as a `key_rotate` event.

        Gated (`rotate_data` in `gated_actions`, the default): a new rotation needs `approval`
        (else ApprovalRequired); finishing an interrupted one does not (it was approved).
        """
        self._require_cipher()
        name = self._tenant(tenant)

        async def approve() -> object:
            return await self._gated(
                "rotate_data", {"tenant": name}, approval, tenant=name, actor=actor
            )

        return await rotate_data(
            self._store,
            self._write,
            self._key_rotate_logger(actor),
            name,
            batch=batch,
            progress=progress,
            approve=approve,
        )

    # ------------------------------------------------------------------ ledger

    async def verify(
        self, *, tenant: str | None = None, workers: int | None = None
    ) -> VerifyReport:
        """Recompute chain, tree, fact digests and checkpoints; `.ok` and `.problems`.

        Without `tenant`, every tenant in the store is verified. Large ledgers are scanned by
        one child process per CPU; `workers` sets how many ranges (and processes) to use.
        """
        name = None if tenant is None else check_name("tenant", tenant)
        if workers is not None and (isinstance(workers, bool) or not 1 <= workers <= 64):
            raise ValidationError("workers must be between 1 and 64")
        return await self._store.verify([self._public_key], name, workers=workers)

    async def inclusion_proof(
        self, ref: int | str, *, tree_size: int | None = None, tenant: str | None = None
    ) -> InclusionProof:
        """Inclusion proof of a ledger entry, by `seq` or by fact id (its store entry)."""
        name = self._tenant(tenant)
        if isinstance(ref, str):
            seq = (await self._store.get_fact(name, ref)).seq
        elif isinstance(ref, int) and not isinstance(ref, bool):
            seq = ref
        else:
            raise ValidationError("ref must be a seq number or a fact id")
        return await self._store.inclusion_proof(name, seq, tree_size)

    async def consistency_proof(
        self, old_size: int, new_size: int | None = None, *, tenant: str | None = None
    ) -> ConsistencyProof:
        """Proof that the tree of `old_size` entries is a prefix of the tree of `new_size`."""
        return await self._store.consistency_proof(self._tenant(tenant), old_size, new_size)

    async def checkpoint(self, *, tenant: str | None = None) -> Checkpoint:
        """Sign and store a checkpoint of the tenant's ledger at its current size."""
        checkpoint = await self._write(MakeCheckpoint(self._tenant(tenant)))
        assert isinstance(checkpoint, Checkpoint)
        return checkpoint

    async def checkpoints(self, *, tenant: str | None = None) -> builtins.list[Checkpoint]:
        """Every stored checkpoint of the tenant, by tree size."""
        return await self._store.checkpoints(self._tenant(tenant))

    async def export(
        self,
        path: str | os.PathLike[str],
        *,
        approval: str | None = None,
        actor: str | None = None,
        tenant: str | None = None,
    ) -> int:
        """Write the tenant's self-contained bundle to `path`; return its number of entries.

        Gated (`export` in `gated_actions`, the default): without `approval` (a token from
        `approve`), ApprovalRequired names the pending approval and nothing is written.
        """
        name = self._tenant(tenant)
        if not await self._store.tree_size(name):  # no approval is asked for nothing
            raise NotFound(f"tenant {name!r} has no ledger yet")
        await self._gated("export", {}, approval, tenant=name, actor=actor)
        return await self._store.export(name, Path(path), self.public_key_pem)

    async def stats(self, *, tenant: str | None = None) -> Stats:
        """Counts of facts by status, transactions and checkpoints."""
        return await self._store.stats(self._tenant(tenant))

    async def tenants(self) -> builtins.list[str]:
        """Names of every tenant that has a ledger."""
        return await self._store.tenants()

    # ------------------------------------------------------------------ ledger events

    async def _append_event(
        self,
        op: str,
        subject: str | None,
        payload: Mapping[str, Any],
        *,
        tenant: str,
        actor: str | None = None,
        require_fact: bool = False,
        unique: bool = False,
    ) -> Transaction:
        """Append one ledger event (a vote, a gate request...) through the writer.

        For the features' use (consensus, gate, crypto), which validate their own payloads.
        """
        request = AppendEvent(
            tenant, op, subject, actor, payload, require_fact=require_fact, unique=unique
        )
        tx = await self._write(request)
        assert isinstance(tx, Transaction)
        return tx

    async def events(
        self,
        ops: Iterable[str],
        *,
        subject: str | None = None,
        after_seq: int = -1,
        limit: int = 1000,
        tenant: str | None = None,
    ) -> builtins.list[Transaction]:
        """Ledger transactions with one of `ops` (and `subject`), in seq order, after `after_seq`.

        Page through a long ledger by passing the last seq seen as `after_seq`.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
            raise ValidationError("limit must be between 1 and 10000")
        wanted = tuple(ops)
        if isinstance(ops, str) or not all(isinstance(op, str) for op in wanted):
            raise ValidationError("ops must be a list of op names")
        return await self._store.events(self._tenant(tenant), wanted, subject, after_seq, limit)

    # ---- gate and purge

    async def _gated(
        self,
        action: str,
        params: Mapping[str, Any],
        approval: str | None,
        *,
        tenant: str,
        actor: str | None = None,
    ) -> str | None:
        """Let a declared risky action run: None when `action` is not gated, else the id of the
        approval whose token (`approval`) this run spent.

        Without a token, ApprovalRequired names the pending approval it recorded (or the
        identical one already pending); a token that does not allow exactly this action and
        `params` now raises its typed error (cortex.errors, `Approval*`). Call it after the
        action's own checks and before it changes anything. For the features' use (purge,
        export, bulk deprecation, key rotation); `params` must have a canonical JSON form.
        """
        return await self._gate.check(action, params, approval, tenant=tenant, actor=actor)

    async def approvals(
        self, *, include_all: bool = False, tenant: str | None = None
    ) -> builtins.list[Approval]:
        """The tenant's approvals that await a decision or use, oldest first (`include_all`:
        every approval, denied, used and expired ones too)."""
        found = await self._gate.approvals(self._tenant(tenant))
        return found if include_all else [a for a in found if a.state in ("pending", "approved")]

    async def approve(
        self,
        approval_id: str,
        *,
        reason: str | None = None,
        actor: str | None = None,
        tenant: str | None = None,
        four_eyes: bool = False,
    ) -> Decision:
        """Approve a pending approval; the Decision's `token` (shown once) lets its action run.

        Re-run the action with `approval=token` before the approval expires; the token works
        once, for that action with those parameters only. `four_eyes`: Forbidden when `actor`
        is who requested it (the service passes it unless `gate_self_approval` is set).
        """
        return await self._gate.decide(
            approval_id,
            "approve",
            reason,
            tenant=self._tenant(tenant),
            actor=actor,
            forbid_self=four_eyes,
        )

    async def deny(
        self,
        approval_id: str,
        *,
        reason: str | None = None,
        actor: str | None = None,
        tenant: str | None = None,
    ) -> Decision:
        """Deny a pending approval: its action may not run (ask again for a new approval)."""
        return await self._gate.decide(
            approval_id, "deny", reason, tenant=self._tenant(tenant), actor=actor
        )

    async def purge(
        self,
        fact_id: str,
        reason: str,
        *,
        approval: str | None = None,
        all_versions: bool = False,
        actor: str | None = None,
        tenant: str | None = None,
    ) -> builtins.list[Fact]:
        """Destroy a fact's content, tags and meta for good; return the purged versions.

        The right to erasure without breaking the proof: the fact's ledger entries stay, so
        `verify` still passes (it counts the fact as purged), while nothing of what it said
        remains in the database, its journal or the search indexes. `get`, `list` and `history`
        show it with status "purged" and empty content; search never finds it. Only this version
        of a superseded chain is purged, unless `all_versions`. Gated (`purge`): without
        `approval`, ApprovalRequired names the pending approval and nothing changes.
        """
        name = self._tenant(tenant)
        if not isinstance(reason, str) or not reason.strip():
            raise ValidationError("a reason is required: say why the fact must be erased")
        if len(reason) > MAX_REASON:
            raise ValidationError(f"reason is {len(reason)} characters; the limit is {MAX_REASON}")
        if not isinstance(all_versions, bool):
            raise ValidationError("all_versions must be true or false")
        why = reason.strip()
        fact = await self._store.get_fact(name, fact_id)  # NotFound before approval is asked
        if fact.status == "purged" and not all_versions:
            raise Conflict(f"fact {fact.id} is already purged")
        params = {"fact_id": fact.id, "reason": why, "all_versions": all_versions}
        approval_id = await self._gated("purge", params, approval, tenant=name, actor=actor)
        purged = await self._write(Purge(name, fact.id, why, actor, approval_id, all_versions))
        assert isinstance(purged, Purged)
        await self._searcher.drop(name, purged.rowids)
        return builtins.list(purged.facts)

    async def deprecate_many(
        self,
        fact_ids: Iterable[str],
        reason: str,
        *,
        approval: str | None = None,
        actor: str | None = None,
        tenant: str | None = None,
    ) -> builtins.list[Fact]:
        """Deprecate several active facts with one reason; return them in the order given.

        Every fact is checked first (NotFound, or Conflict when one is not active): nothing
        changes unless all can be deprecated. More than `gate_bulk_threshold` facts is a bulk
        deprecation, gated (`bulk_deprecate`): without `approval`, ApprovalRequired. Each fact
        gets its own `deprecate` entry, committed in group commits; should a concurrent change
        make one fail meanwhile, the others still commit and that error is raised after them.
        """
        name = self._tenant(tenant)
        why = _reason(reason)
        if isinstance(fact_ids, str):
            raise ValidationError("fact_ids must be a list of fact ids")
        ids = builtins.list(dict.fromkeys(fact_ids))
        if not all(isinstance(i, str) for i in ids):
            raise ValidationError("fact_ids must be a list of fact ids")
        if len(ids) > MAX_BULK_DEPRECATE:
            raise ValidationError(
                f"{len(ids)} facts at once; the limit is {MAX_BULK_DEPRECATE} per call"
            )
        for start in range(0, len(ids), _BULK_CHUNK):
            chunk = ids[start : start + _BULK_CHUNK]
            for fact in await asyncio.gather(*(self._store.get_fact(name, i) for i in chunk)):
                if fact.status != "active":
                    raise Conflict(
                        f"fact {fact.id} is already {fact.status}; only active facts can change"
                    )
        if len(ids) > self.settings.gate_bulk_threshold:
            params = {"fact_ids": sorted(ids), "reason": why}
            await self._gated("bulk_deprecate", params, approval, tenant=name, actor=actor)
        done: builtins.list[Fact] = []
        failed: builtins.list[BaseException] = []
        for start in range(0, len(ids), _BULK_CHUNK):
            chunk = ids[start : start + _BULK_CHUNK]
            outcomes = await asyncio.gather(
                *(self._write(Deprecate(name, i, why, actor)) for i in chunk),
                return_exceptions=True,
            )
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    failed.append(outcome)
                else:
                    assert isinstance(outcome, Fact)
                    done.append(outcome)
        if failed:
            raise failed[0]
        return done

    # ------------------------------------------------------------------ consensus

    async def vote(
        self,
        fact_id: str,
        value: int,
        *,
        agent: str,
        reason: str | None = None,
        tenant: str | None = None,
    ) -> Vote:
        """Log `agent`'s vote (+1 or -1) on an active fact; its latest vote is the one that counts.

        One `vote` ledger entry per call; a later vote by the same agent replaces this one for
        scoring (both stay in the ledger). Voting on a deprecated or superseded fact is a
        Conflict: its outcome is settled (vote on the newer version instead). The reason passes
        through the privacy shield like a fact's content (the ledger cannot forget it).
        """
        name = self._tenant(tenant)
        agent, payload = vote_payload(value, agent, reason)
        fact = await self._store.get_fact(name, fact_id)
        if fact.status != "active":
            raise Conflict(
                f"fact {fact_id!r} is {fact.status}: votes on it no longer count"
                + (f"; vote on {fact.superseded_by}" if fact.superseded_by else "")
            )
        if payload["reason"] is not None:
            payload["reason"] = self._screen_text(name, fact.project, "reason", payload["reason"])
        tx = await self._append_event(
            "vote", fact.id, payload, tenant=name, actor=agent, require_fact=True
        )
        return Vote.from_transaction(tx)

    async def consensus(self, fact_id: str, *, tenant: str | None = None) -> Consensus:
        """A fact's consensus: score in (-1, 1), status, and the standing votes with weights.

        Computed from the ledger as it is now (docs/consensus.md has the formulas).
        """
        name = self._tenant(tenant)
        fact = await self._store.get_fact(name, fact_id)
        return await self._consensus.consensus(name, fact)

    async def reputation(self, agent: str, *, tenant: str | None = None) -> Reputation:
        """An agent's reputation in (0, 1), its vote weight and the record they come from.

        An agent that never wrote a settled fact or cast a timely vote has the prior (0.5).
        """
        name = self._tenant(tenant)
        return await self._consensus.reputation(name, check_name("agent", agent))

    def _screen_text(self, tenant: str, project: str, field: str, text: str) -> str:
        """`text` after the shield's policy: ShieldBlocked naming `field`, or redacted."""
        verdicts = self._shield.inspect(text, tenant=tenant, project=project)
        for verdict in verdicts:
            if verdict.action == "block":
                found = verdict.finding
                line, column = position(text, found.start)
                raise ShieldBlocked(
                    f"{field} holds a {found.category} ({found.kind}) at line {line}, column"
                    f" {column}; the shield policy for tenant '{tenant}', project '{project}'"
                    " blocks it: remove it, or change the [shield] policy (docs/shield.md)",
                    kind=found.kind,
                    category=found.category,
                    field=field,
                    start=found.start,
                    end=found.end,
                    line=line,
                    column=column,
                )
        return redact(text, [v.finding for v in verdicts if v.action == "redact"])

    # ------------------------------------------------------------------ report

    async def report(
        self,
        *,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        progress: ReportProgress | None = None,
        tenant: str | None = None,
    ) -> ComplianceReport:
        """The tenant's record-keeping report from `start` to `end` (see docs/report.md).

        Both bounds are inclusive and optional; a date alone means that whole day. Render the
        result with `cortex.report.render(report, "md" | "json" | "html")`.
        """
        name = self._tenant(tenant)

        async def consensus() -> Mapping[str, FactConsensus]:
            return (await self._consensus.snapshot(name)).settlement.scores

        return await build_report(
            self,
            name,
            public_key=self._public_key,
            settings=self.settings,
            entry_at=lambda seq: self._store.transaction(name, seq),
            period=parse_period(start, end),
            progress=progress,
            encrypted=self.encrypted,
            consensus=consensus,
        )


async def open(path: Settings | str | os.PathLike[str] | None = None, **options: Any) -> Cortex:
    """Open the async engine on a data directory (`cortex.open(path)`)."""
    return await Cortex.open(path, **options)


async def verify_export(
    path: str | os.PathLike[str], *, public_key_pem: bytes | None = None
) -> VerifyReport:
    """Verify an export bundle with nothing but the bundle (and optionally a pinned public key).

    The bundle's rows are loaded verbatim into a temporary database and checked by the same
    verifier as a live store: chain, tree roots against every signed checkpoint, fact digests.
    """
    with tempfile.TemporaryDirectory(prefix="cortex-verify-") as tmp:
        store = await SqliteStore.open(Path(tmp) / "bundle.db", read_threads=1)
        try:
            header = await store.import_bundle(Path(path))
            if (
                public_key_pem is not None
                and public_key_pem.strip() != header.public_key_pem.strip()
            ):
                raise IntegrityError(
                    "the bundle's public key is not the pinned key: it was not signed by that key"
                )
            key = load_public_key(header.public_key_pem)
            return await store.verify([key], header.tenant, check_stored_nodes=False)
        finally:
            await store.close()


def verify_export_sync(
    path: str | os.PathLike[str], *, public_key_pem: bytes | None = None
) -> VerifyReport:
    """Blocking `verify_export`."""
    return asyncio.run(verify_export(path, public_key_pem=public_key_pem))


class _Portal:
    """An event loop on a private thread, for calling the async engine from blocking code."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._lock = threading.Lock()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="cortex-loop", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
            # Finish what was scheduled before the stop: calls that had not started (the engine
            # is closed, so they fail fast with StoreClosed) and the hand-over of finished calls'
            # results to their waiting threads. Otherwise those threads wait forever. This runs
            # here, on the loop's own thread, so `stop` works from any thread, even one that
            # runs an event loop of its own.
            pending = asyncio.all_tasks(self.loop)
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        finally:
            self.loop.close()

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        with self._lock:
            if self._stopped:
                coro.close()
                raise StoreClosed("the handle is closed; call cortex.connect() again")
            future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()


def _blocking(
    method: Callable[Concatenate[Cortex, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[CortexSync, P], T]:
    def call(self: CortexSync, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._call(method(self.engine, *args, **kwargs))

    call.__name__ = method.__name__
    call.__qualname__ = f"CortexSync.{method.__name__}"
    call.__doc__ = method.__doc__
    # help() and IDEs show the engine method's parameters, not (*args, **kwargs).
    call.__wrapped__ = method  # type: ignore[attr-defined]
    return call


class CortexSync:
    """The blocking twin of `Cortex`: the same methods, for scripts and the CLI.

    Use as a context manager, or call `close()`. Safe to call from several threads.
    """

    def __init__(
        self, settings: Settings, *, embedder: Embedder | Literal["settings"] | None = "settings"
    ) -> None:
        self._portal = _Portal()
        try:
            self.engine: Cortex = self._portal.call(Cortex.open(settings, embedder=embedder))
        except BaseException:
            self._portal.stop()
            raise
        self.settings = settings
        self._closed = False

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coro.close()
            raise StoreClosed("the handle is closed; call cortex.connect() again")
        return self._portal.call(coro)

    def close(self) -> None:
        """Finish queued writes and release everything. Idempotent."""
        if self._closed:
            return
        try:
            self._portal.call(self.engine.aclose())
        finally:
            self._closed = True
            self._portal.stop()

    def __enter__(self) -> CortexSync:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def public_key_pem(self) -> bytes:
        """The checkpoint verification key, PEM encoded."""
        return self.engine.public_key_pem

    store = _blocking(Cortex.store)
    store_many = _blocking(Cortex.store_many)
    screen = _blocking(Cortex.screen)
    get = _blocking(Cortex.get)
    list = _blocking(Cortex.list)
    deprecate = _blocking(Cortex.deprecate)
    supersede = _blocking(Cortex.supersede)
    search = _blocking(Cortex.search)
    reindex = _blocking(Cortex.reindex)
    flush_vectors = _blocking(Cortex.flush_vectors)
    history = _blocking(Cortex.history)
    verify = _blocking(Cortex.verify)
    inclusion_proof = _blocking(Cortex.inclusion_proof)
    consistency_proof = _blocking(Cortex.consistency_proof)
    checkpoint = _blocking(Cortex.checkpoint)
    checkpoints = _blocking(Cortex.checkpoints)
    export = _blocking(Cortex.export)
    stats = _blocking(Cortex.stats)
    tenants = _blocking(Cortex.tenants)
    rotate_master_key = _blocking(Cortex.rotate_master_key)
    rotate_data_key = _blocking(Cortex.rotate_data_key)
    events = _blocking(Cortex.events)
    approvals = _blocking(Cortex.approvals)
    approve = _blocking(Cortex.approve)
    deny = _blocking(Cortex.deny)
    purge = _blocking(Cortex.purge)
    deprecate_many = _blocking(Cortex.deprecate_many)
    report = _blocking(Cortex.report)
    vote = _blocking(Cortex.vote)
    consensus = _blocking(Cortex.consensus)
    reputation = _blocking(Cortex.reputation)


def connect(
    path: Settings | str | os.PathLike[str] | None = None,
    *,
    embedder: Embedder | Literal["settings"] | None = "settings",
    **options: Any,
) -> CortexSync:
    """Open a blocking handle on a data directory: `with cortex.connect(path) as mem: ...`.

    `embedder` as for `Cortex.open`: by default the one `settings.embedder` names. A
    `postgresql://` URL instead of a path opens that database (keys from CORTEX_HOME).
    """
    return CortexSync(_settings(path, options), embedder=embedder)


def _settings(path: Settings | str | os.PathLike[str] | None, options: dict[str, Any]) -> Settings:
    """Settings from a data directory, a PostgreSQL URL or Settings, with `options` applied."""
    if isinstance(path, Settings):
        return path.with_overrides(**options) if options else path
    if is_database_url(path):
        return Settings.load(None, **{"database_url": path, **options})
    return Settings.load(path, **options)
