"""Search: vector and BM25 candidates, fused by Reciprocal Rank Fusion, filtered in the store.

`Searcher` belongs to one engine. It keeps one `VectorIndex` per tenant (at most
`max_tenants`, least recently used dropped first), brings it up to date from the store before
each vector search (so writes by other processes are seen too), and embeds queries off the event
loop on the engine's embedding thread.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np

from cortex.errors import ConfigError, ValidationError
from cortex.model import SearchHit
from cortex.search.embedder import Embedder
from cortex.search.fusion import reciprocal_rank_fusion, score_fusion
from cortex.search.text import fts5_query
from cortex.search.vectors import VectorIndex
from cortex.store.base import ListFilter
from cortex.store.sqlite import SqliteStore

__all__ = ["MAX_QUERY_CHARS", "MAX_TOP_K", "SearchMode", "SearchOptions", "Searcher"]

SearchMode = Literal["hybrid", "vector", "text"]
MAX_TOP_K = 1000
MAX_QUERY_CHARS = 100_000
_LOAD_BATCH = 20_000


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
        store: SqliteStore,
        embedder: Embedder | None,
        embed_pool: ThreadPoolExecutor,
        *,
        options: SearchOptions | None = None,
        max_tenants: int = 64,
    ) -> None:
        self._store = store
        self._embedder = embedder
        self._pool = embed_pool
        self._options = options or SearchOptions()
        self._indexes: OrderedDict[str, VectorIndex] = OrderedDict()
        self._max_tenants = max_tenants
        self._refresh_lock = asyncio.Lock()

    def forget(self, tenant: str) -> None:
        """Drop the tenant's in-memory index (it is rebuilt from the store on the next search)."""
        self._indexes.pop(tenant, None)

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
        rankings: dict[str, list[int]] = {}
        scores: dict[str, dict[int, float]] = {}
        if mode in ("hybrid", "vector") and self._embedder is not None:
            ranked = await self._vector_candidates(tenant, query, pool, filters)
            rankings["vector"] = [r for r, _ in ranked]
            scores["vector"] = dict(ranked)
        if mode in ("hybrid", "text"):
            match = fts5_query(query)
            ranked = (
                []
                if match is None
                else await self._store.text_candidates(tenant, match, filters, pool)
            )
            rankings["text"] = [r for r, _ in ranked]
            scores["text"] = {r: -s for r, s in ranked}
        fused = self._fuse(rankings, scores, k)
        facts = await self._store.facts_by_rowid(tenant, [r for r, _, _ in fused], filters.as_of)
        return [
            SearchHit(facts[rowid], score, ranks) for rowid, score, ranks in fused if rowid in facts
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

    async def _vector_candidates(
        self, tenant: str, query: str, pool: int, filters: ListFilter
    ) -> list[tuple[int, float]]:
        """Up to `pool` (rowid, cosine) passing `filters`, best first."""
        assert self._embedder is not None
        embedder = self._embedder
        loop = asyncio.get_running_loop()
        vector = (await loop.run_in_executor(self._pool, embedder.embed, [query]))[0]
        index = await self._fresh_index(tenant)
        wanted = pool
        while True:
            # The scan is CPU work proportional to the index: never on the event loop.
            rowids, sims = await loop.run_in_executor(self._pool, index.search, vector, wanted)
            passing = await self._store.filter_rowids(tenant, rowids.tolist(), filters)
            if len(passing) >= pool or wanted >= len(index):
                by_rowid = dict(zip(rowids.tolist(), sims.tolist(), strict=True))
                return [(r, by_rowid[r]) for r in passing[:pool]]
            wanted *= 4

    async def _fresh_index(self, tenant: str) -> VectorIndex:
        """The tenant's index, with every vector the store holds now."""
        assert self._embedder is not None
        async with self._refresh_lock:
            index = self._indexes.get(tenant)
            if index is None:
                index = VectorIndex(self._embedder.dim, self._embedder.model_id)
                self._indexes[tenant] = index
                while len(self._indexes) > self._max_tenants:
                    self._indexes.popitem(last=False)
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
            return index
