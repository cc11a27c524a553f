"""Coalescing concurrent embedding calls into model batches.

A service embeds one text per request (a stored fact, a query), many requests at a time. The
model embeds a batch of 32 short texts in about the time of three single ones, so texts that
arrive while the embedding thread is busy wait for it together and go through the model as one
batch. An idle engine pays nothing: a text that arrives alone is embedded at once.

Background work (vectors written behind the facts, setting `vector_writes = "background"`) never
delays a caller. Given a `background_pool`, it runs there, beside the callers' batches, on a
thread at a lower scheduling priority (`lower_thread_priority`): a query does not wait for a
background text to finish (at 65 tokens one takes ~16 ms, four queries' worth), and the
operating system gives the CPU to callers first. Without one, background calls run on `pool`
only when no caller waits (a caller then waits for one background call at most).
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
from typing import TYPE_CHECKING

import numpy as np

from cortex.errors import Overloaded

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from cortex.search.embedder import Embedder

__all__ = ["BACKGROUND_NICE", "EmbeddingBatcher", "lower_thread_priority"]

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


class EmbeddingBatcher:
    """Runs `embedder.embed` on `pool`, one batch at a time, merging the calls that wait."""

    def __init__(
        self,
        embedder: Embedder,
        pool: Executor,
        *,
        background_pool: Executor | None = None,
        max_batch: int = 64,
        max_waiting: int = 8192,
    ) -> None:
        self.embedder = embedder
        self._pool = pool
        self._background_pool = background_pool
        self._max_batch = max_batch
        self._max_waiting = max_waiting
        self._waiting: deque[tuple[Sequence[str], asyncio.Future[NDArray[np.float32]]]] = deque()
        self._background: deque[tuple[Sequence[str], asyncio.Future[NDArray[np.float32]]]] = deque()
        self._waiting_texts = 0
        self._runner: asyncio.Task[None] | None = None
        self._background_runner: asyncio.Task[None] | None = None

    async def embed(self, texts: Sequence[str], *, background: bool = False) -> NDArray[np.float32]:
        """Vectors of `texts` (float32, one row each), computed with whatever else is waiting.

        `background` calls run on the background pool when there is one, else only when no
        other call waits. Raises `Overloaded` when more than `max_waiting` texts already wait.
        """
        if not texts:
            return np.empty((0, self.embedder.dim), dtype=np.float32)
        busy = self._waiting or self._background
        if self._waiting_texts + len(texts) > self._max_waiting and busy:
            raise Overloaded(
                f"{self._waiting_texts} texts are waiting to be embedded; retry shortly",
                retry_after=1.0,
            )
        loop = asyncio.get_running_loop()
        future: asyncio.Future[NDArray[np.float32]] = loop.create_future()
        (self._background if background else self._waiting).append((texts, future))
        self._waiting_texts += len(texts)
        if background and self._background_pool is not None:
            if self._background_runner is None or self._background_runner.done():
                self._background_runner = loop.create_task(
                    self._run(self._background_pool, (self._background,))
                )
        elif self._runner is None or self._runner.done():
            queues = (
                (self._waiting,) if self._background_pool else (self._waiting, self._background)
            )
            self._runner = loop.create_task(self._run(self._pool, queues))
        return await future

    async def aclose(self) -> None:
        """Stop: calls still waiting are cancelled; the batches being embedded finish first."""
        runners = [self._runner, self._background_runner]
        self._runner = self._background_runner = None
        for runner in runners:
            if runner is not None and not runner.done():
                runner.cancel()
        await asyncio.gather(*(r for r in runners if r is not None), return_exceptions=True)
        for _, future in [*self._waiting, *self._background]:
            future.cancel()
        self._waiting.clear()
        self._background.clear()
        self._waiting_texts = 0

    def _next_batch(
        self, queues: Sequence[deque[tuple[Sequence[str], asyncio.Future[NDArray[np.float32]]]]]
    ) -> list[tuple[Sequence[str], asyncio.Future[NDArray[np.float32]]]]:
        """Waiting calls of the first non-empty queue of `queues`, in arrival order, up to
        `max_batch` texts (at least one call)."""
        queue = next(q for q in queues if q)
        batch = [queue.popleft()]
        size = len(batch[0][0])
        while queue and size + len(queue[0][0]) <= self._max_batch:
            batch.append(queue.popleft())
            size += len(batch[-1][0])
        self._waiting_texts -= size
        return batch

    async def _run(
        self,
        pool: Executor,
        queues: Sequence[deque[tuple[Sequence[str], asyncio.Future[NDArray[np.float32]]]]],
    ) -> None:
        loop = asyncio.get_running_loop()
        while any(queues):
            batch = [(t, f) for t, f in self._next_batch(queues) if not f.cancelled()]
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
