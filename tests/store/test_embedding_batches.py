"""Concurrent embedding calls share model batches and each gets exactly its own vectors."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from cortex.errors import Overloaded
from cortex.search.batching import BACKGROUND_NICE, EmbeddingBatcher, lower_thread_priority
from cortex.search.embedder import MiniLMEmbedder


class Recording:
    """The real model, noting the size of every batch it is given (and failing on request)."""

    def __init__(self, inner: MiniLMEmbedder, poison: str | None = None) -> None:
        self.inner = inner
        self.dim = inner.dim
        self.model_id = inner.model_id
        self.batches: list[int] = []
        self.poison = poison

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.batches.append(len(texts))
        if self.poison in texts:
            raise ValueError("this batch cannot be embedded")
        return self.inner.embed(texts)


TEXTS = [f"note {i}: the deploy of service {i % 7} failed on step {i % 5}" for i in range(40)]


async def test_concurrent_calls_share_batches_and_get_their_own_vectors(
    embedder: MiniLMEmbedder,
) -> None:
    recording = Recording(embedder)
    with ThreadPoolExecutor(1) as pool:
        batcher = EmbeddingBatcher(recording, pool, max_batch=16)
        results = await asyncio.gather(*(batcher.embed([t]) for t in TEXTS))
        await batcher.aclose()
    alone = embedder.embed(TEXTS)
    for text_vectors, expected in zip(results, alone, strict=True):
        assert text_vectors.shape == (1, embedder.dim)
        np.testing.assert_allclose(text_vectors[0], expected, atol=1e-5)
    assert sum(recording.batches) == len(TEXTS)
    assert len(recording.batches) < len(TEXTS) / 2
    assert max(recording.batches) <= 16


async def test_a_failing_batch_fails_only_its_callers_and_the_rest_go_on(
    embedder: MiniLMEmbedder,
) -> None:
    recording = Recording(embedder, poison="poison")
    with ThreadPoolExecutor(1) as pool:
        batcher = EmbeddingBatcher(recording, pool, max_batch=4)
        calls = [batcher.embed([t]) for t in ["first", "poison", "x", "y", *TEXTS[:8]]]
        results = await asyncio.gather(*calls, return_exceptions=True)
        await batcher.aclose()
    failed = [r for r in results if isinstance(r, ValueError)]
    assert 1 <= len(failed) <= 4
    assert isinstance(results[1], ValueError)
    assert all(isinstance(r, np.ndarray) for r in results[-8:])


async def test_a_cancelled_caller_does_not_disturb_the_others(embedder: MiniLMEmbedder) -> None:
    with ThreadPoolExecutor(1) as pool:
        batcher = EmbeddingBatcher(Recording(embedder), pool, max_batch=8)
        tasks = [asyncio.create_task(batcher.embed([t])) for t in TEXTS[:20]]
        await asyncio.sleep(0)
        tasks[5].cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await batcher.aclose()
    assert isinstance(results[5], asyncio.CancelledError)
    assert all(isinstance(r, np.ndarray) for i, r in enumerate(results) if i != 5)


async def test_too_many_waiting_texts_is_overloaded(embedder: MiniLMEmbedder) -> None:
    with ThreadPoolExecutor(1) as pool:
        batcher = EmbeddingBatcher(Recording(embedder), pool, max_batch=4, max_waiting=10)
        first = asyncio.create_task(batcher.embed(TEXTS[:8]))
        await asyncio.sleep(0)
        with pytest.raises(Overloaded):
            await batcher.embed(TEXTS[8:12])
        assert (await first).shape == (8, embedder.dim)
        await batcher.aclose()


async def test_background_calls_wait_until_no_other_call_does(embedder: MiniLMEmbedder) -> None:
    """Queries and inline writes go before vectors written in the background."""
    seen: list[str] = []

    class Noting(Recording):
        def embed(self, texts: Sequence[str]) -> np.ndarray:
            seen.extend(texts)
            return super().embed(texts)

    with ThreadPoolExecutor(1) as pool:
        batcher = EmbeddingBatcher(Noting(embedder), pool, max_batch=2)
        first = asyncio.create_task(batcher.embed(["running first"]))
        await asyncio.sleep(0)  # the first batch is on the model thread now
        behind = [
            asyncio.create_task(batcher.embed([f"bg {i}"], background=True)) for i in range(4)
        ]
        queries = [asyncio.create_task(batcher.embed([f"query {i}"])) for i in range(4)]
        await asyncio.gather(first, *behind, *queries)
        await batcher.aclose()
    assert seen[0] == "running first"
    assert seen[1:5] == [f"query {i}" for i in range(4)]
    assert seen[5:] == [f"bg {i}" for i in range(4)]


async def test_with_a_background_pool_a_query_does_not_wait_for_background_work(
    embedder: MiniLMEmbedder,
) -> None:
    """A background call that holds its thread (here: until the test lets it go) does not
    delay a query: the query runs on the callers' thread meanwhile."""
    release = threading.Event()
    started = threading.Event()

    class Holding(Recording):
        def embed(self, texts: Sequence[str]) -> np.ndarray:
            if "held" in texts:
                started.set()
                release.wait(timeout=30)
            return super().embed(texts)

    with ThreadPoolExecutor(1) as pool, ThreadPoolExecutor(1) as background:
        batcher = EmbeddingBatcher(Holding(embedder), pool, background_pool=background)
        held = asyncio.create_task(batcher.embed(["held"], background=True))
        assert await asyncio.to_thread(started.wait, 30)
        query = await asyncio.wait_for(batcher.embed(["a query meanwhile"]), timeout=10)
        assert not held.done()
        release.set()
        vectors = await held
        await batcher.aclose()
    assert np.allclose(query, embedder.embed(["a query meanwhile"]), atol=1e-5)
    assert np.allclose(vectors, embedder.embed(["held"]), atol=1e-5)


def test_the_background_thread_runs_at_a_lower_priority() -> None:
    """On Linux the thread's nice value goes up by BACKGROUND_NICE (capped at 19); elsewhere
    a thread cannot be named alone, so nothing changes."""

    def nice() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    with ThreadPoolExecutor(1, initializer=lower_thread_priority) as background:
        lowered = background.submit(nice).result()
    if sys.platform == "linux":
        assert lowered == min(19, nice() + BACKGROUND_NICE)
    else:
        assert lowered == nice()
