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
from cortex.search.batching import BACKGROUND_NICE, EmbeddingBatcher, Lane, lower_thread_priority
from cortex.search.embedder import MiniLMEmbedder


class Recording:
    """The real model, noting the size of every batch it is given (and failing on request)."""

    def __init__(self, inner: MiniLMEmbedder, poison: str | None = None) -> None:
        self.inner = inner
        self.dim = inner.dim
        self.model_id = inner.model_id
        self.batches: list[int] = []
        self.calls: list[list[str]] = []
        self.poison = poison

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.batches.append(len(texts))
        self.calls.append(list(texts))
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
        results = await asyncio.gather(*(batcher.embed([t], lane="query") for t in TEXTS))
        await batcher.aclose()
    alone = embedder.embed(TEXTS)
    for text_vectors, expected in zip(results, alone, strict=True):
        assert text_vectors.shape == (1, embedder.dim)
        np.testing.assert_allclose(text_vectors[0], expected, atol=1e-5)
    assert sum(recording.batches) == len(TEXTS)
    assert len(recording.batches) < len(TEXTS) / 2
    assert max(recording.batches) <= 16


async def test_writes_go_to_the_model_one_call_at_a_time_in_arrival_order(
    embedder: MiniLMEmbedder,
) -> None:
    """A write's texts are not merged with another write's (on a CPU that saves nothing, and
    every caller of a batch would wait for its last text)."""
    recording = Recording(embedder)
    with ThreadPoolExecutor(1) as pool:
        batcher = EmbeddingBatcher(recording, pool, max_batch=16)
        calls = [TEXTS[i : i + 2] for i in range(0, 12, 2)]
        results = await asyncio.gather(*(batcher.embed(texts) for texts in calls))
        await batcher.aclose()
    assert recording.calls == calls
    for texts, vectors in zip(calls, results, strict=True):
        np.testing.assert_allclose(vectors, embedder.embed(texts), atol=1e-5)


async def test_a_failing_batch_fails_only_its_callers_and_the_rest_go_on(
    embedder: MiniLMEmbedder,
) -> None:
    recording = Recording(embedder, poison="poison")
    with ThreadPoolExecutor(1) as pool:
        batcher = EmbeddingBatcher(recording, pool, max_batch=4)
        texts = ["first", "poison", "x", "y", *TEXTS[:8]]
        calls = [batcher.embed([t], lane="query") for t in texts]
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


@pytest.mark.parametrize("held_lane", ["write", "background"])
async def test_a_query_does_not_wait_for_a_write_or_background_call(
    embedder: MiniLMEmbedder, held_lane: Lane
) -> None:
    """With a pool per lane (as the engine has), a write's or background call that holds its
    thread (here: until the test lets it go) does not delay a query."""
    release = threading.Event()
    started = threading.Event()

    class Holding(Recording):
        def embed(self, texts: Sequence[str]) -> np.ndarray:
            if "held" in texts:
                started.set()
                release.wait(timeout=30)
            return super().embed(texts)

    pools = [ThreadPoolExecutor(1) for _ in range(3)]
    try:
        batcher = EmbeddingBatcher(
            Holding(embedder), pools[0], query_pool=pools[1], background_pool=pools[2]
        )
        held = asyncio.create_task(batcher.embed(["held"], lane=held_lane))
        assert await asyncio.to_thread(started.wait, 30)
        query = await asyncio.wait_for(batcher.embed(["a query"], lane="query"), timeout=10)
        assert not held.done()
        release.set()
        vectors = await held
        await batcher.aclose()
    finally:
        release.set()
        for pool in pools:
            pool.shutdown()
    assert np.allclose(query, embedder.embed(["a query"]), atol=1e-5)
    assert np.allclose(vectors, embedder.embed(["held"]), atol=1e-5)


async def test_lanes_sharing_a_pool_take_turns_queries_first(embedder: MiniLMEmbedder) -> None:
    """On one pool, queries go before writes and writes before vectors written in the
    background, whatever the order they arrived in."""
    recording = Recording(embedder)
    with ThreadPoolExecutor(1) as pool:
        batcher = EmbeddingBatcher(recording, pool, max_batch=2)
        first = asyncio.create_task(batcher.embed(["running first"]))
        await asyncio.sleep(0)  # the first call is on the model thread now
        calls = [
            asyncio.create_task(batcher.embed([f"{lane} {i}"], lane=lane))
            for i in range(2)
            for lane in ("background", "write", "query")
        ]
        await asyncio.gather(first, *calls)
        await batcher.aclose()
    assert [text for call in recording.calls for text in call] == [
        "running first", "query 0", "query 1", "write 0", "write 1", "background 0", "background 1"
    ]  # fmt: skip


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
