"""Search: vector and BM25 candidates made at once, fused (scores or RRF), filtered in the store.

`Searcher` belongs to one engine. It keeps one `TenantVectors` per tenant (at most
`max_tenants`, least recently used dropped first): exact search below `ann_threshold` vectors,
an HNSW graph plus an exact tail above it. It brings the index up to date from the store before
each vector search (so writes by other processes are seen too), merges the tail into the graph
in the background, saves graphs under `index_dir` so that a restart loads instead of rebuilding,
and embeds queries off the event loop on the engine's embedding thread.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import OrderedDict
from collections.abc import Awaitable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from cortex.errors import ConfigError, ValidationError
from cortex.model import SearchHit
from cortex.search.ann import AnnIndex, index_stem
from cortex.search.batching import EmbeddingBatcher
from cortex.search.embedder import Embedder
from cortex.search.fusion import reciprocal_rank_fusion, score_fusion
from cortex.search.tenant_vectors import TenantVectors
from cortex.search.text import fts5_query
from cortex.search.vectors import VectorIndex
from cortex.store.base import ListFilter, Store, StoreVectorSearch

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["MAX_QUERY_CHARS", "MAX_TOP_K", "SearchMode", "SearchOptions", "Searcher"]

SearchMode = Literal["hybrid", "vector", "text"]
MAX_TOP_K = 1000
MAX_QUERY_CHARS = 100_000
_LOAD_BATCH = 20_000
# Vector search with a filter widens its candidate list until enough pass; past this many
# candidates on a graph, the facts passing the filter are scored exactly instead, if at most
# _EXACT_FILTER_LIMIT pass.
_EXACT_FILTER_AFTER = 4000
_EXACT_FILTER_LIMIT = 20_000

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SearchOptions:
    """How to fuse (max-normalised scores or RRF with `rrf_k`), method weights, candidates."""

    fusion: Literal["score", "rrf"] = "score"
    rrf_k: int = 60
    vector_weight: float = 0.6
    text_weight: float = 0.4
    min_candidates: int = 100


class Searcher:
    """Runs searches for one engine over its store and embedder."""

    def __init__(
        self,
        store: Store,
        embedder: Embedder | None,
        embed_pool: ThreadPoolExecutor,
        *,
        options: SearchOptions | None = None,
        batcher: EmbeddingBatcher | None = None,
        max_tenants: int = 64,
        index_dir: Path | None = None,
        ann_threshold: int = 20_000,
        merge_at: int = 10_000,
    ) -> None:
        self._store = store
        # A store that searches vectors itself (pgvector) is asked first: see _vector_candidates.
        self._store_vectors = store if isinstance(store, StoreVectorSearch) else None
        self._embedder = embedder
        self._pool = embed_pool
        self._batcher = batcher
        self._options = options or SearchOptions()
        self._indexes: OrderedDict[str, TenantVectors] = OrderedDict()
        self._max_tenants = max_tenants
        self._refresh_lock = asyncio.Lock()
        self._index_dir = index_dir
        self._ann_threshold = ann_threshold
        self._merge_at = merge_at
        self._build_threads = max(1, os.cpu_count() or 1)
        # Graph builds and saves run here, away from query embedding and SQLite reads.
        self._index_pool = ThreadPoolExecutor(1, thread_name_prefix="cortex-index")
        self._merging: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def forget(self, tenant: str) -> None:
        """Drop the tenant's index, in memory and on disk (rebuilt from the store when needed)."""
        async with self._refresh_lock:
            self._indexes.pop(tenant, None)
            if self._index_dir is not None and self._embedder is not None:
                stem = index_stem(tenant, self._embedder.model_id)
                await asyncio.get_running_loop().run_in_executor(
                    self._index_pool, AnnIndex.discard, self._index_dir, stem
                )

    async def drop(self, tenant: str, rowids: Collection[int]) -> None:
        """Forget the vectors of purged facts: in the tenant's index now, and on disk.

        The saved graph is deleted (it holds the vectors); the graph in memory stops returning
        them and is never saved again, so the next process rebuilds it from the store.
        """
        if not rowids or self._embedder is None:
            return
        loop = asyncio.get_running_loop()
        async with self._refresh_lock:
            index = self._indexes.get(tenant)
            if index is not None:
                await asyncio.to_thread(index.drop, rowids)
            if self._index_dir is not None:
                stem = index_stem(tenant, self._embedder.model_id)
                await loop.run_in_executor(
                    self._index_pool, AnnIndex.discard, self._index_dir, stem
                )

    async def search(
        self, tenant: str, query: str, *, k: int, mode: SearchMode, filters: ListFilter
    ) -> list[SearchHit]:
        """The `k` best facts of `tenant` for `query` that pass `filters`."""
        if not isinstance(query, str):
            raise ValidationError("query must be a string")
        if len(query) > MAX_QUERY_CHARS:
            raise ValidationError(
                f"query is {len(query)} characters; the limit is {MAX_QUERY_CHARS}"
            )
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_TOP_K:
            raise ValidationError(f"k must be between 1 and {MAX_TOP_K}")
        if mode not in ("hybrid", "vector", "text"):
            raise ValidationError("mode must be 'hybrid', 'vector' or 'text'")
        if mode == "vector" and self._embedder is None:
            raise ValidationError(
                "this engine has no embedder (embedder = 'none'); search with mode='text'"
            )
        if not query.strip():
            return []
        pool = max(k * 4, self._options.min_candidates)
        # Both candidate lists are made at once: the text query runs on a reader thread while
        # the vector side embeds and searches on the embedding thread.
        methods: dict[str, Awaitable[list[tuple[int, float]]]] = {}
        if mode in ("hybrid", "vector") and self._embedder is not None:
            methods["vector"] = self._vector_candidates(tenant, query, pool, filters)
        if mode in ("hybrid", "text"):
            methods["text"] = self._text_candidates(tenant, query, pool, filters)
        results = await asyncio.gather(*methods.values())
        rankings: dict[str, list[int]] = {}
        scores: dict[str, dict[int, float]] = {}
        for method, ranked in zip(methods, results, strict=True):
            rankings[method] = [r for r, _ in ranked]
            scores[method] = dict(ranked)
        fused = self._fuse(rankings, scores, k)
        facts = await self._store.facts_by_rowid(tenant, [r for r, _, _ in fused], filters.as_of)
        return [
            SearchHit(facts[rowid], score, ranks)
            for rowid, score, ranks in fused
            if rowid in facts and facts[rowid].purged_at is None  # never a purged fact
        ]

    def _fuse(
        self, rankings: Mapping[str, list[int]], scores: Mapping[str, Mapping[int, float]], k: int
    ) -> list[tuple[int, float, dict[str, int]]]:
        if len(rankings) == 1:
            ((method, ranked),) = rankings.items()
            return [
                (r, float(scores[method][r]), {method: i + 1}) for i, r in enumerate(ranked[:k])
            ]
        options = self._options
        weights = {"vector": options.vector_weight, "text": options.text_weight}
        if options.fusion == "rrf":
            return reciprocal_rank_fusion(rankings, k=options.rrf_k, weights=weights, limit=k)
        return score_fusion(scores, weights=weights, limit=k)

    async def _text_candidates(
        self, tenant: str, query: str, pool: int, filters: ListFilter
    ) -> list[tuple[int, float]]:
        """Up to `pool` (rowid, BM25 score, higher is better) passing `filters`, best first."""
        match = fts5_query(query)
        if match is None:
            return []
        ranked = await self._store.text_candidates(tenant, match, filters, pool)
        return [(r, -score) for r, score in ranked]

    async def _vector_candidates(
        self, tenant: str, query: str, pool: int, filters: ListFilter
    ) -> list[tuple[int, float]]:
        """Up to `pool` (rowid, cosine) passing `filters`, best first."""
        assert self._embedder is not None
        embedder = self._embedder
        loop = asyncio.get_running_loop()
        embedding: Awaitable[NDArray[np.float32]]
        if self._batcher is not None:
            embedding = self._batcher.embed([query], lane="query")
        else:
            embedding = loop.run_in_executor(self._pool, embedder.embed, [query])
        if self._store_vectors is not None:
            vector = (await embedding)[0]
            direct = await self._store_vectors.vector_candidates(
                tenant, vector, embedder.model_id, filters, pool
            )
            if direct is not None:
                return direct
            index = await self._fresh_index(tenant)
        else:
            # The index's freshness check (a read of the store) runs while the query embeds.
            matrix, index = await asyncio.gather(embedding, self._fresh_index(tenant))
            vector = matrix[0]
        wanted = pool
        while True:
            # The scan is CPU work proportional to the index: never on the event loop.
            rowids, sims = await loop.run_in_executor(self._pool, index.search, vector, wanted)
            passing = await self._store.filter_rowids(tenant, rowids.tolist(), filters)
            if len(passing) >= pool or wanted >= len(index):
                by_rowid = dict(zip(rowids.tolist(), sims.tolist(), strict=True))
                return [(r, by_rowid[r]) for r in passing[:pool]]
            # Widen by what the share that passed says is needed (at least 2x, at most 16x).
            share = max(len(passing), 1) / max(len(rowids), 1)
            wanted = int(wanted * min(16.0, max(2.0, 1.5 * pool / share / wanted)))
            if index.ann is not None and wanted > _EXACT_FILTER_AFTER:
                # A selective filter: its facts are few, so score all of them exactly.
                exact = await self._filtered_exact(tenant, index.model_id, vector, pool, filters)
                if exact is not None:
                    return exact

    async def _filtered_exact(
        self, tenant: str, model_id: str, vector: Any, pool: int, filters: ListFilter
    ) -> list[tuple[int, float]] | None:
        """Exact scores of every fact passing `filters`, or None when too many pass."""
        rows = await self._store.filtered_vectors(tenant, model_id, filters, _EXACT_FILTER_LIMIT)
        if rows is None:
            return None
        index = VectorIndex(len(vector), model_id)
        rows.sort()
        rowids = np.fromiter((r for r, _ in rows), dtype=np.int64, count=len(rows))
        matrix = np.frombuffer(b"".join(v for _, v in rows), dtype=np.float32)
        index.add(rowids, matrix.reshape(len(rows), len(vector)))
        loop = asyncio.get_running_loop()
        found, sims = await loop.run_in_executor(self._pool, index.search, vector, pool)
        return list(zip(found.tolist(), sims.tolist(), strict=True))

    async def _fresh_index(self, tenant: str) -> TenantVectors:
        """The tenant's index, with every vector the store holds now."""
        assert self._embedder is not None
        loop = asyncio.get_running_loop()
        index = self._indexes.get(tenant)
        if index is not None and await self._store.last_vector_rowid(tenant) <= index.last_rowid:
            # Nothing new (the usual case): no lock, so concurrent searches do not queue here.
            # Rows are only ever appended to an index, and below the lock at that.
            if tenant in self._indexes:
                self._indexes.move_to_end(tenant)
            return index
        async with self._refresh_lock:
            index = self._indexes.get(tenant)
            if index is None:
                index = await self._open_index(tenant)
                self._indexes[tenant] = index
                while len(self._indexes) > self._max_tenants:
                    evicted, dropped = self._indexes.popitem(last=False)
                    if dropped.ann is not None and len(dropped.ann) > dropped.ann.saved_size:
                        self._tasks.add(loop.create_task(self._save_later(evicted, dropped)))
            self._indexes.move_to_end(tenant)
            while await self._store.last_vector_rowid(tenant) > index.last_rowid:
                rows = await self._store.vectors_after(tenant, index.last_rowid, _LOAD_BATCH)
                stale = {model for _, model, _ in rows if model != index.model_id}
                if stale:
                    raise ConfigError(
                        f"facts of tenant {tenant!r} were embedded with {', '.join(sorted(stale))};"
                        f" this engine embeds with {index.model_id}: run `cortex reindex`"
                    )
                rowids = np.fromiter((r for r, _, _ in rows), dtype=np.int64, count=len(rows))
                matrix = np.frombuffer(b"".join(v for _, _, v in rows), dtype=np.float32)
                index.add(rowids, matrix.reshape(len(rows), index.dim))
                if index.wants_merge() and len(rows) == _LOAD_BATCH and tenant not in self._merging:
                    # Catching up on many stored vectors: build the graph now, on every core,
                    # so that memory holds at most one batch of them as a matrix.
                    if index.ann is None:
                        logger.warning(
                            "building the vector index of tenant %r from its stored vectors"
                            " (20-30 s per 100,000 on 2 cores); it is saved under %s for"
                            " the next start",
                            tenant,
                            self._index_dir,
                        )
                    ann, covered = await loop.run_in_executor(
                        self._index_pool, index.build_merged, self._build_threads
                    )
                    index.finish_merge(ann, covered)
            if index.wants_merge() and tenant not in self._merging:
                self._start_merge(tenant, index)
            return index

    async def _open_index(self, tenant: str) -> TenantVectors:
        """A tenant's index: its saved graph when valid, else empty (filled from the store)."""
        assert self._embedder is not None
        dim, model_id = self._embedder.dim, self._embedder.model_id
        ann = None
        if self._index_dir is not None:
            loop = asyncio.get_running_loop()
            stem = index_stem(tenant, model_id)
            ann = await loop.run_in_executor(
                self._index_pool, AnnIndex.load, self._index_dir, stem, dim, model_id
            )
            if ann is not None and ann.last_rowid > await self._store.last_vector_rowid(tenant):
                # The store has fewer vectors than the graph: it was replaced or reindexed.
                ann = None
            if ann is not None and ann.remove(await self._store.purged_rowids(tenant)):
                # Saved (by another process) with vectors of facts purged since: never reused.
                await loop.run_in_executor(
                    self._index_pool, AnnIndex.discard, self._index_dir, stem
                )
                ann = None
        return TenantVectors(
            dim, model_id, threshold=self._ann_threshold, merge_at=self._merge_at, ann=ann
        )

    def _start_merge(self, tenant: str, index: TenantVectors) -> None:
        """Merge the tenant's exact tail into its graph in the background, then maybe save."""
        self._merging.add(tenant)
        task = asyncio.get_running_loop().create_task(self._merge(tenant, index))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _merge(self, tenant: str, index: TenantVectors) -> None:
        loop = asyncio.get_running_loop()
        try:
            ann, covered = await loop.run_in_executor(self._index_pool, index.build_merged, 1)
            async with self._refresh_lock:
                index.finish_merge(ann, covered)
            if len(ann) - ann.saved_size >= max(self._merge_at, len(ann) // 10):
                await self._save_checked(tenant, index)
        except (RuntimeError, ValueError, OSError, MemoryError):
            # Searches stay correct on the exact tail; the next refresh tries again.
            logger.exception("merging the vector index of tenant %r failed", tenant)
        finally:
            self._merging.discard(tenant)

    async def _save_later(self, tenant: str, index: TenantVectors) -> None:
        try:
            await self._save_checked(tenant, index)
        except OSError:
            logger.exception("saving the vector index of tenant %r failed", tenant)

    async def _save_checked(self, tenant: str, index: TenantVectors) -> None:
        """Save the tenant's graph unless it holds a vector of a purged fact.

        Another process may have purged a fact whose vector this one still holds: the store
        says which facts are purged, and such a graph drops them and is not saved.
        """
        if index.ann is None:
            return
        purged = await self._store.purged_rowids(tenant)
        if purged:
            async with self._refresh_lock:
                await asyncio.to_thread(index.drop, purged)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._index_pool, self._save, tenant, index)

    def _save(self, tenant: str, index: TenantVectors) -> None:
        if self._index_dir is not None and index.ann is not None:
            index.ann.save(self._index_dir, index_stem(tenant, index.model_id))

    async def aclose(self) -> None:
        """Wait for background merges, save graphs with unsaved rows, stop the index thread."""
        try:
            if self._tasks:
                await asyncio.gather(*self._tasks)
            for tenant, index in list(self._indexes.items()):
                if index.ann is not None and len(index.ann) > index.ann.saved_size:
                    await self._save_checked(tenant, index)
        finally:
            self._index_pool.shutdown(wait=True)
