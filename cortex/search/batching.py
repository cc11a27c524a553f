"""Coalescing concurrent embedding calls into model batches.

A service embeds one text per request (a stored fact, a query), many requests at a time. The
model embeds a batch of 32 short texts in about the time of three single ones, so texts that
arrive while the embedding thread is busy wait for it together and go through the model as one
batch. An idle engine pays nothing: a text that arrives alone is embedded at once. Background
work (vectors written behind the facts, setting `vector_writes = "background"`) waits until no
caller does: a query never queues behind it for more than the batch being embedded.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Executor
from typing import TYPE_CHECKING

import numpy as np

from cortex.errors import Overloaded

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from cortex.search.embedder import Embedder

__all__ = ["EmbeddingBatcher"]


class EmbeddingBatcher:
    """Runs `embedder.embed` on `pool`, one batch at a time, merging the calls that wait."""

    def __init__(
        self,
        embedder: Embedder,
        pool: Executor,
        *,
        max_batch: int = 64,
        max_waiting: int = 8192,
    ) -> None:
        self.embedder = embedder
        self._pool = pool
        self._max_batch = max_batch
        self._max_waiting = max_waiting
        self._waiting: deque[tuple[Sequence[str], asyncio.Future[NDArray[np.float32]]]] = deque()
        self._background: deque[tuple[Sequence[str], asyncio.Future[NDArray[np.float32]]]] = deque()
        self._waiting_texts = 0
        self._runner: asyncio.Task[None] | None = None

    async def embed(self, texts: Sequence[str], *, background: bool = False) -> NDArray[np.float32]:
        """Vectors of `texts` (float32, one row each), computed with whatever else is waiting.

        `background` calls run only when no other call waits. Raises `Overloaded` when more
        than `max_waiting` texts already wait.
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
        if self._runner is None or self._runner.done():
            self._runner = loop.create_task(self._run())
        return await future

    async def aclose(self) -> None:
        """Stop: calls still waiting are cancelled; the batch being embedded finishes first."""
        runner, self._runner = self._runner, None
        if runner is not None and not runner.done():
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)

    def _next_batch(self) -> list[tuple[Sequence[str], asyncio.Future[NDArray[np.float32]]]]:
        """Waiting calls in arrival order, up to `max_batch` texts (at least one call); the
        background calls only when no other call waits."""
        queue = self._waiting if self._waiting else self._background
        batch = [queue.popleft()]
        size = len(batch[0][0])
        while queue and size + len(queue[0][0]) <= self._max_batch:
            batch.append(queue.popleft())
            size += len(batch[-1][0])
        self._waiting_texts -= size
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting or self._background:
            batch = [(t, f) for t, f in self._next_batch() if not f.cancelled()]
            if not batch:
                continue
            texts = [text for part, _ in batch for text in part]
            try:
                vectors = await loop.run_in_executor(self._pool, self.embedder.embed, texts)
            except asyncio.CancelledError:
                # The engine is closing: nobody will run the rest either.
                for _, future in [*batch, *self._waiting, *self._background]:
                    future.cancel()
                self._waiting.clear()
                self._background.clear()
                self._waiting_texts = 0
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
