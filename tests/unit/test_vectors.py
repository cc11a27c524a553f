"""The exact vector index returns exactly the brute-force top k, across growth and snapshots."""

from __future__ import annotations

import numpy as np
import pytest

from cortex.errors import ValidationError
from cortex.search.vectors import VectorIndex


def _unit(rng: np.random.Generator, n: int, dim: int = 16) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("k", [1, 5, 50, 5000])
def test_search_equals_brute_force_after_many_appends(k: int) -> None:
    rng = np.random.default_rng(7)
    index = VectorIndex(16, "test")
    chunks = [_unit(rng, n) for n in (1, 700, 3000, 37)]
    start = 1
    for chunk in chunks:
        index.add(np.arange(start, start + len(chunk), dtype=np.int64), chunk)
        start += len(chunk)
    everything = np.concatenate(chunks)
    query = _unit(rng, 1)[0]
    rowids, scores = index.search(query, k)
    expected = np.argsort(-(everything @ query), kind="stable")[: min(k, len(everything))] + 1
    assert rowids.tolist() == expected.tolist()
    assert np.all(np.diff(scores) <= 0)
    assert index.last_rowid == len(everything)
    assert len(index) == len(everything)


def test_an_empty_index_finds_nothing_and_bad_shapes_are_refused() -> None:
    index = VectorIndex(4, "test")
    rowids, scores = index.search(np.ones(4, dtype=np.float32) / 2, 3)
    assert rowids.size == 0
    assert scores.size == 0
    with pytest.raises(ValidationError):
        index.add(np.arange(2, dtype=np.int64), np.zeros((2, 5), dtype=np.float32))
