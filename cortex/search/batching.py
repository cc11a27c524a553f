"""Coalescing concurrent embedding calls into model batches, in three lanes.

A service embeds one text per request (a stored fact, a query), many requests at a time. Queries
that arrive while the model is busy wait for it together and go through it as one call. An idle
engine pays nothing: a text that arrives alone is embedded at once.

Calls come in three lanes: `query` (a search's query), `write` (the facts of a write that waits
for its vectors) and `background` (vectors written behind the facts, setting `vector_writes =
"background"`). A lane given a pool of its own runs beside the others, so a query never waits
for a write's texts (at 65 tokens one fact takes ~16 ms, four queries' worth) nor for background
work; the background pool's thread runs at a lower scheduling priority
(`lower_thread_priority`), so the operating system gives the CPU to callers first. Lanes that
share a pool take turns in that order of priority: a call then waits for the batch being
embedded at most.

Only queries are merged into batches: short texts of similar length batch well (4 queries of
~12 tokens: 3.0 ms each instead of 4.3 alone). Facts gain nothing on a CPU (15.4 ms each alone,
17.9 in fours, padding included), and in a batch every caller waits for the last text, so a
write's texts (and each background text) go to the model as one call of their own, first come
first served.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Literal

import numpy as np

from cortex.errors import Overloaded

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from cortex.search.embedder import Embedder

__all__ = ["BACKGROUND_NICE", "EmbeddingBatcher", "Lane", "lower_thread_priority"]

logger = logging.getLogger(__name__)

BACKGROUND_NICE = 10
"""How much lower a background embedding thread's priority is (Linux nice increment): under
contention the scheduler gives it about a tenth of the CPU time of a caller's thread."""


def lower_thread_priority() -> None:
    """Lower the calling thread's scheduling priority by `BACKGROUND_NICE` (Linux only: there a
    thread id names one thread; elsewhere nothing changes). A thread pool initializer."""
    if sys.platform != "linux":
        return
    try:
        current = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), current + BACKGROUND_NICE)
    except OSError as exc:  # e.g. a sandbox forbidding it: background work runs at normal priority
        logger.warning("could not lower the background embedding thread's priority: %s", exc)


Lane = Literal["query", "write", "background"]
_LANES: tuple[Lane, ...] = ("query", "write", "background")
_Call = tuple[Sequence[str], "asyncio.Future[NDArray[np.float32]]"]


class EmbeddingBatcher:
    """Runs `embedder.embed` on thread pools, one call at a time per pool, merging the queries
    that wait together. `pool` serves writes, and every lane not given its own pool."""

    def __init__(
        self,
        embedder: Embedder,
        pool: Executor,
        *,
        query_pool: Executor | None = None,
        background_pool: Executor | None = None,
        max_batch: int = 64,
        max_waiting: int = 8192,
    ) -> None:
        self.embedder = embedder
        self._max_batch = max_batch
        self._max_waiting = max_waiting
        self._queues: dict[Lane, deque[_Call]] = {lane: deque() for lane in _LANES}
        pools: dict[Lane, Executor] = {
            "query": query_pool or pool,
            "write": pool,
            "background": background_pool or pool,
        }
        # One runner per pool, serving its lanes in priority order.
        self._groups: list[tuple[Executor, tuple[Lane, ...]]] = []
        for lane in _LANES:
            for i, (shared, lanes) in enumerate(self._groups):
                if shared is pools[lane]:
                    self._groups[i] = (shared, (*lanes, lane))
                    break
            else:
                self._groups.append((pools[lane], (lane,)))
        self._group_of = {lane: i for i, (_, lanes) in enumerate(self._groups) for lane in lanes}
        self._runners: list[asyncio.Task[None] | None] = [None] * len(self._groups)
        self._waiting_texts = 0

    async def embed(self, texts: Sequence[str], *, lane: Lane = "write") -> NDArray[np.float32]:
        """Vectors of `texts` (float32, one row each), computed with whatever else waits in
        `lane`. Raises `Overloaded` when more than `max_waiting` texts already wait."""
        if not texts:
            return np.empty((0, self.embedder.dim), dtype=np.float32)
        if lane not in self._queues:
            raise ValueError(f"no embedding lane {lane!r}")
        busy = any(self._queues.values())
        if self._waiting_texts + len(texts) > self._max_waiting and busy:
            raise Overloaded(
                f"{self._waiting_texts} texts are waiting to be embedded; retry shortly",
                retry_after=1.0,
            )
        loop = asyncio.get_running_loop()
        future: asyncio.Future[NDArray[np.float32]] = loop.create_future()
        self._queues[lane].append((texts, future))
        self._waiting_texts += len(texts)
        group = self._group_of[lane]
        runner = self._runners[group]
        if runner is None or runner.done():
            self._runners[group] = loop.create_task(self._run(*self._groups[group]))
        return await future

    async def aclose(self) -> None:
        """Stop: calls still waiting are cancelled; the batches being embedded finish first."""
        runners = [r for r in self._runners if r is not None]
        self._runners = [None] * len(self._groups)
        for runner in runners:
            if not runner.done():
                runner.cancel()
        await asyncio.gather(*runners, return_exceptions=True)
        for queue in self._queues.values():
            for _, future in queue:
                future.cancel()
            queue.clear()
        self._waiting_texts = 0

    def _next_batch(self, lanes: Sequence[Lane]) -> list[_Call]:
        """Waiting calls of the first of `lanes` with any, in arrival order: queries up to
        `max_batch` texts (at least one call), other lanes one call at a time."""
        lane = next(lane for lane in lanes if self._queues[lane])
        queue = self._queues[lane]
        batch = [queue.popleft()]
        size = len(batch[0][0])
        while lane == "query" and queue and size + len(queue[0][0]) <= self._max_batch:
            batch.append(queue.popleft())
            size += len(batch[-1][0])
        self._waiting_texts -= size
        return batch

    async def _run(self, pool: Executor, lanes: Sequence[Lane]) -> None:
        loop = asyncio.get_running_loop()
        while any(self._queues[lane] for lane in lanes):
            batch = [(t, f) for t, f in self._next_batch(lanes) if not f.cancelled()]
            if not batch:
                continue
            texts = [text for part, _ in batch for text in part]
            try:
                vectors = await loop.run_in_executor(pool, self.embedder.embed, texts)
            except asyncio.CancelledError:
                # The engine is closing (aclose cancels what still waits).
                for _, future in batch:
                    future.cancel()
                raise
            except Exception as exc:  # noqa: BLE001 - handed to every caller of the batch
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            start = 0
            for part, future in batch:
                if not future.done():
                    future.set_result(vectors[start : start + len(part)])
                start += len(part)
