"""One tenant's vector index: exact search while small, HNSW plus an exact tail when large.

Below `threshold` vectors, every vector sits in an exact `VectorIndex` (a matrix product is
fast and perfect there). Once the tenant reaches `threshold`, its vectors move into an
`AnnIndex` (HNSW); vectors written later first land in a small exact tail, which is merged into
the graph whenever it reaches `merge_at` vectors. A search asks both and keeps the best of each
rowid, so a vector is findable from the moment it is loaded, merged or not.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

import numpy as np

from cortex.search.ann import AnnIndex
from cortex.search.vectors import VectorIndex

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["TenantVectors"]


class TenantVectors:
    """The exact index, the HNSW graph (when large) and the rule that moves rows between them."""

    def __init__(
        self,
        dim: int,
        model_id: str,
        *,
        threshold: int,
        merge_at: int,
        ann: AnnIndex | None = None,
    ) -> None:
        self.dim = dim
        self.model_id = model_id
        self.threshold = threshold
        self.merge_at = merge_at
        # One tuple, replaced whole: a search on another thread sees both parts of one state.
        self._parts: tuple[AnnIndex | None, VectorIndex] = (ann, VectorIndex(dim, model_id))
        # Rowids of purged facts dropped here: a merge that snapshotted one before it was dropped
        # must not bring it back (as many as this process purged in the tenant).
        self._dropped: set[int] = set()

    @property
    def ann(self) -> AnnIndex | None:
        """The HNSW graph, once the tenant has reached the threshold."""
        return self._parts[0]

    @property
    def exact(self) -> VectorIndex:
        """Rows searched exactly: all of them below the threshold, the unmerged tail above."""
        return self._parts[1]

    def __len__(self) -> int:
        return (len(self.ann) if self.ann is not None else 0) + len(self.exact)

    @property
    def last_rowid(self) -> int:
        """The highest rowid held, in the graph or the tail; 0 when empty."""
        ann_last = self.ann.last_rowid if self.ann is not None else 0
        return max(ann_last, self.exact.last_rowid)

    @property
    def nbytes(self) -> int:
        """Memory held by both parts."""
        return self.exact.nbytes + (self.ann.nbytes if self.ann is not None else 0)

    def add(self, rowids: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        """Append vectors for ascending rowids above `last_rowid` (to the exact part)."""
        self.exact.add(rowids, vectors)

    def wants_merge(self) -> bool:
        """True when the exact part has grown enough to move into the graph."""
        limit = self.threshold if self.ann is None else self.merge_at
        return len(self.exact) >= limit

    def build_merged(self, threads: int) -> tuple[AnnIndex, int]:
        """Add the exact part's rows (as now) to the graph, creating it if needed.

        Returns the graph and the highest rowid it now covers. Runs off the event loop, one
        merge at a time; searches go on meanwhile (a row briefly in both parts is deduplicated
        by `search`). The caller then calls `finish_merge` on the event loop.
        """
        ann = self.ann or AnnIndex(self.dim, self.model_id)
        rowids, matrix = self.exact.snapshot()
        fresh = rowids > ann.last_rowid
        if fresh.any():
            ann.add(rowids[fresh], matrix[fresh], threads=threads)
        return ann, ann.last_rowid

    def finish_merge(self, ann: AnnIndex, covered: int) -> None:
        """Use `ann` and keep in the exact part only the rows above `covered`."""
        if self._dropped:
            ann.remove(self._dropped)
        self._parts = (ann, self.exact.rows_after(covered))

    def drop(self, rowids: Collection[int]) -> int:
        """Stop finding the vectors of `rowids` (purged facts); return how many were held.

        The exact part is rebuilt without them; the graph marks them removed and is never saved
        again (usearch keeps a removed vector's bytes: see `AnnIndex.remove`).
        """
        wanted = set(rowids)
        self._dropped |= wanted
        ann, exact = self._parts
        removed = ann.remove(wanted) if ann is not None else 0
        rest = exact.without(wanted)
        self._parts = (ann, rest)
        return removed + len(exact) - len(rest)

    def search(
        self, query: NDArray[np.float32], k: int
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """About the `k` rowids most similar to `query` and their cosine scores, best first."""
        ann, exact = self._parts
        rowids, sims = exact.search(query, k)
        if ann is None:
            return rowids, sims
        ann_rowids, ann_sims = ann.search(query, k)
        if len(rowids) == 0:
            return ann_rowids, ann_sims
        both_rowids = np.concatenate([ann_rowids, rowids])
        both_sims = np.concatenate([ann_sims, sims])
        order = np.argsort(-both_sims, kind="stable")
        both_rowids, both_sims = both_rowids[order], both_sims[order]
        _, first = np.unique(both_rowids, return_index=True)
        keep = np.sort(first)[:k]
        return both_rowids[keep], both_sims[keep]
