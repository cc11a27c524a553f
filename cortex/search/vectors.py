"""The in-process vector index: exact inner-product search over unit vectors (numpy).

Derived data: it is filled from the vectors stored in the database and can be rebuilt from them
at any time. Appends never move rows that a concurrent search is reading: a search takes a
snapshot (the arrays and a length) and works on that.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from typing import TYPE_CHECKING

import numpy as np

from cortex.errors import ValidationError

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["VectorIndex", "use_one_blas_thread"]


def use_one_blas_thread() -> None:
    """Limit the BLAS library under numpy to one thread, for the whole process.

    For the long-running servers (`cortex serve`, `cortex mcp`). Their numpy work is small and
    frequent (a query's scores against up to `ann_threshold` vectors take ~0.2 ms); OpenBLAS
    splits each such call over its own threads, which then spin, waiting for the next one.
    Measured in bench/api_load.py (10k facts, 50 clients): that spinning took 0.84 of the 2
    cores, and with one thread store/search p95 went from 27/64 to 18/41 ms. The parallel work
    of a server lives elsewhere (requests, SQLite readers, the model's threads).
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


_INITIAL_CAPACITY = 1024


class VectorIndex:
    """Append-only exact search over the vectors of one tenant, keyed by fact rowid."""

    def __init__(self, dim: int, model_id: str) -> None:
        self.dim = dim
        self.model_id = model_id
        self._rowids: NDArray[np.int64] = np.empty(_INITIAL_CAPACITY, dtype=np.int64)
        self._matrix: NDArray[np.float32] = np.empty((_INITIAL_CAPACITY, dim), dtype=np.float32)
        self._size = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._size

    @property
    def last_rowid(self) -> int:
        """The highest rowid indexed (rows arrive in rowid order); 0 when empty."""
        return int(self._rowids[self._size - 1]) if self._size else 0

    @property
    def nbytes(self) -> int:
        """Memory held by the index's arrays."""
        return int(self._rowids.nbytes + self._matrix.nbytes)

    def add(self, rowids: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        """Append vectors (shape (n, dim)) for ascending rowids above `last_rowid`."""
        if vectors.ndim != 2 or vectors.shape[1] != self.dim or len(rowids) != len(vectors):
            raise ValidationError(f"expected {len(rowids)} vectors of dimension {self.dim}")
        with self._lock:
            needed = self._size + len(rowids)
            if needed > len(self._rowids):
                # Grow by a quarter: while copying, old and new arrays are both resident.
                capacity = max(needed, len(self._rowids) + len(self._rowids) // 4)
                rows = np.empty(capacity, dtype=np.int64)
                matrix = np.empty((capacity, self.dim), dtype=np.float32)
                rows[: self._size] = self._rowids[: self._size]
                matrix[: self._size] = self._matrix[: self._size]
                self._rowids, self._matrix = rows, matrix
            self._rowids[self._size : needed] = rowids
            self._matrix[self._size : needed] = vectors
            self._size = needed

    def search(
        self, query: NDArray[np.float32], k: int
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """The `k` rowids most similar to `query` (a unit vector) and their cosine scores."""
        with self._lock:
            size, rowids, matrix = self._size, self._rowids, self._matrix
        if size == 0 or k <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        scores = matrix[:size] @ query
        k = min(k, size)
        top = np.argpartition(scores, size - k)[size - k :] if k < size else np.arange(size)
        order = top[np.argsort(-scores[top], kind="stable")]
        return rowids[:size][order], scores[order]

    def snapshot(self) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """The indexed rowids and vectors now (views that later appends never change)."""
        with self._lock:
            return self._rowids[: self._size], self._matrix[: self._size]

    def rows_after(self, rowid: int) -> VectorIndex:
        """A new index holding only the rows above `rowid` (what an ANN index does not cover)."""
        rowids, matrix = self.snapshot()
        start = int(np.searchsorted(rowids, rowid, side="right"))
        tail = VectorIndex(self.dim, self.model_id)
        tail.add(rowids[start:], matrix[start:])
        return tail

    def without(self, rowids: Collection[int]) -> VectorIndex:
        """A new index holding every row but those of `rowids` (purged facts)."""
        held, matrix = self.snapshot()
        keep = ~np.isin(held, np.fromiter(rowids, dtype=np.int64, count=len(rowids)))
        rest = VectorIndex(self.dim, self.model_id)
        rest.add(held[keep], matrix[keep])
        return rest
