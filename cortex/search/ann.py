"""Approximate nearest neighbours for large tenants: a usearch HNSW graph, persisted to a file.

Derived data, like `VectorIndex`: the vectors in the database are the source of truth. The
graph is saved under `<home>/index/` so that a restart does not rebuild it (building took
17 s for 100,000 vectors and 322 s for 1,000,000 on 2 busy cores); a missing, damaged or stale
file is rebuilt from the store.

A saved index is a pair: the graph file `<stem>-<generation>-<writer>.usearch` and a JSON manifest
`<stem>.json` naming it, with the model, dimension, vector count and highest rowid covered. The
manifest is replaced atomically after the graph file is complete and synced, so a crash at any
moment leaves either the old pair or the new one, never a manifest that names a half-written
graph.

Concurrency: usearch lets searches run while vectors are added, except while it grows its
capacity. `AnnIndex` therefore takes a shared lock for searches and for adds that fit in the
current capacity, and an exclusive one only for the add that makes it grow.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import sys
import threading
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

# onnxruntime (the default embedder's runtime) must be loaded before usearch: the other order
# crashes the process (both bundle pybind11; seen with onnxruntime 1.31 and usearch 2.26). When
# a program loaded usearch first, the embedder refuses to load with a ConfigError instead.
if "usearch.compiled" not in sys.modules:
    with contextlib.suppress(ImportError):
        import onnxruntime  # noqa: F401

from usearch.index import Index

from cortex.fsutil import fsync_path

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["AnnIndex", "AnnParams", "index_stem"]

logger = logging.getLogger(__name__)

_FORMAT = 1
_ADD_CHUNK = 1024


class AnnParams:
    """HNSW build and search parameters (measured in bench/search.py: recall@10 >= 0.99)."""

    connectivity = 16
    expansion_add = 64
    expansion_search = 64
    dtype = "f16"


class _SharedExclusiveLock:
    """Many shared holders or one exclusive holder (writers wait for readers to leave)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._shared = 0
        self._exclusive = False

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._exclusive:
                self._cond.wait()
            self._shared += 1
        try:
            yield
        finally:
            with self._cond:
                self._shared -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            while self._exclusive or self._shared:
                self._cond.wait()
            self._exclusive = True
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()


def index_stem(tenant: str, model_id: str) -> str:
    """A file-name-safe stem naming one tenant's index for one model."""
    digest = hashlib.sha256(f"{tenant}\0{model_id}".encode()).hexdigest()[:24]
    return f"ann-{digest}"


class AnnIndex:
    """HNSW over unit vectors (inner product), keyed by fact rowid; rows arrive in rowid order."""

    def __init__(self, dim: int, model_id: str, index: Index | None = None) -> None:
        self.dim = dim
        self.model_id = model_id
        self._index = index or Index(
            ndim=dim,
            metric="ip",
            dtype=AnnParams.dtype,
            connectivity=AnnParams.connectivity,
            expansion_add=AnnParams.expansion_add,
            expansion_search=AnnParams.expansion_search,
        )
        self._lock = _SharedExclusiveLock()
        self._last_rowid = 0
        self._generation = 0
        self.saved_size = 0
        # Set once a vector was removed: usearch keeps a removed vector's bytes in the graph (and
        # would write them into a saved file), so this graph is never saved again.
        self.holds_removed = False

    def __len__(self) -> int:
        return len(self._index)

    @property
    def last_rowid(self) -> int:
        """The highest rowid added; 0 when empty."""
        return self._last_rowid

    @property
    def nbytes(self) -> int:
        """Memory held by the graph and its vectors, as usearch reports it."""
        return int(self._index.memory_usage)

    def add(
        self, rowids: NDArray[np.int64], vectors: NDArray[np.float32], threads: int = 1
    ) -> None:
        """Add vectors for ascending rowids above `last_rowid` (call from one thread at a time)."""
        for start in range(0, len(rowids), _ADD_CHUNK):
            keys = rowids[start : start + _ADD_CHUNK]
            chunk = vectors[start : start + _ADD_CHUNK]
            grows = len(self._index) + len(keys) >= self._index.capacity
            with self._lock.exclusive() if grows else self._lock.shared():
                self._index.add(keys.astype(np.uint64), chunk, threads=threads)
            self._last_rowid = int(keys[-1])

    def search(
        self, query: NDArray[np.float32], k: int
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """About the `k` rowids most similar to `query` and their cosine scores, best first."""
        if k <= 0 or len(self._index) == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        with self._lock.shared():
            matches = self._index.search(query, k, threads=1)
        keys = np.asarray(matches.keys, dtype=np.int64)
        sims = (1.0 - np.asarray(matches.distances, dtype=np.float32)).astype(np.float32)
        return keys, sims

    def remove(self, rowids: Collection[int]) -> int:
        """Stop returning the vectors of `rowids`; return how many the graph held.

        usearch only marks them removed (their bytes stay in memory), so once anything was
        removed the graph is never saved: the next process rebuilds it from the store.
        """
        keys = [r for r in rowids if int(r) in self._index]
        if keys:
            with self._lock.exclusive():
                self._index.remove(np.asarray(keys, dtype=np.uint64))
            self.holds_removed = True
        return len(keys)

    # ------------------------------------------------------------------ persistence

    def save(self, directory: Path, stem: str) -> bool:
        """Write the graph and then its manifest atomically; remove the previous graph file.

        Returns False, writing nothing, for a graph that `remove`d vectors. Call from one
        thread, never while `add` runs.
        """
        if self.holds_removed:
            return False
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._generation += 1
        # Several processes may serve one data directory: each writes files of its own name,
        # so two saves at once cost at worst a rebuild, never a file written by both.
        token = f"{os.getpid()}-{secrets.token_hex(4)}"
        graph = directory / f"{stem}-{self._generation}-{token}.usearch"
        partial = graph.with_suffix(".partial")
        with self._lock.shared():
            self._index.save(str(partial))
            size = len(self._index)
        fsync_path(partial)
        os.replace(partial, graph)
        manifest = {
            "format": _FORMAT,
            "model_id": self.model_id,
            "dim": self.dim,
            "count": size,
            "last_rowid": self._last_rowid,
            "graph": graph.name,
            "generation": self._generation,
        }
        _write_atomic(directory / f"{stem}.json", json.dumps(manifest).encode())
        fsync_path(directory)
        self.saved_size = size
        for old in directory.glob(f"{stem}-*.usearch"):
            if _generation_of(old, stem) < self._generation:
                old.unlink(missing_ok=True)
        return True

    @classmethod
    def load(cls, directory: Path, stem: str, dim: int, model_id: str) -> AnnIndex | None:
        """The saved index, or None when it is missing, damaged or built for another model."""
        manifest_path = directory / f"{stem}.json"
        try:
            manifest: dict[str, Any] = json.loads(manifest_path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            logger.warning("vector index manifest %s is unreadable (%s); rebuilding", stem, exc)
            return None
        expected = {"format": _FORMAT, "model_id": model_id, "dim": dim}
        if any(manifest.get(key) != value for key, value in expected.items()):
            logger.info("vector index %s was built for another model or format; rebuilding", stem)
            return None
        graph = directory / str(manifest.get("graph", ""))
        try:
            index = Index.restore(str(graph), view=False)
        except (OSError, RuntimeError, ValueError) as exc:
            logger.warning("vector index %s cannot be loaded (%s); rebuilding", graph.name, exc)
            return None
        if index is None or len(index) != manifest.get("count") or index.ndim != dim:
            logger.warning("vector index %s does not match its manifest; rebuilding", graph.name)
            return None
        loaded = cls(dim, model_id, index)
        loaded._last_rowid = int(manifest["last_rowid"])
        loaded._generation = int(manifest["generation"])
        loaded.saved_size = len(index)
        return loaded

    @staticmethod
    def discard(directory: Path, stem: str) -> None:
        """Delete a saved index (its manifest first, so no reader trusts a half-deleted pair)."""
        (directory / f"{stem}.json").unlink(missing_ok=True)
        for graph in directory.glob(f"{stem}-*.usearch"):
            graph.unlink(missing_ok=True)


def _generation_of(graph: Path, stem: str) -> int:
    """The generation in a graph file's name (`<stem>-<generation>-<token>.usearch`)."""
    number = graph.name[len(stem) + 1 :].split("-", 1)[0]
    return int(number) if number.isdigit() else 0


def _write_atomic(path: Path, data: bytes) -> None:
    partial = path.with_name(f"{path.name}.{os.getpid()}-{secrets.token_hex(4)}.partial")
    with open(partial, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)
