"""Vectors written behind the facts (setting `vector_writes = "background"`).

A write then commits its facts with their text index only and is acknowledged without waiting
for the model; this task embeds the facts that have no vector yet, oldest first, in the
embedding batcher's low-priority background lane, and writes the vectors alone as derived data
(`ReindexFacts(text=False)`: no ledger entry, the text rows untouched). Until then a fact is
found by its words but not by meaning; `Cortex.flush_vectors()` waits until every fact has its
vector.

Nothing is kept only in memory: "which facts lack a vector" is a query on the store, so a
restart, a crash or another process's writes lose nothing; the task sweeps every tenant at
start and every `sweep_seconds`, and at once for a tenant this process wrote to.

With a `lease` (see cortex.search.lease), only the process holding it embeds: several processes
serving one store would otherwise embed the same facts. The others try to take it at each sweep
(at most once per `sweep_seconds`); `drain` embeds whatever the lease says.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from cortex.search.lease import Lease

__all__ = ["PendingRows", "VectorBackfill"]

logger = logging.getLogger(__name__)

PendingRows = list[tuple[int, str, str]]
"""(rowid, content, tags JSON) of facts without a vector, by rowid."""


class VectorBackfill:
    """Embeds and stores the vectors of facts stored without one, in the background.

    `tenants()` lists the store's tenants; `pending(tenant, after_rowid, limit)` reads facts
    without a vector from the engine's model; `index(tenant, rows)` embeds and writes them.
    """

    def __init__(
        self,
        *,
        tenants: Callable[[], Awaitable[list[str]]],
        pending: Callable[[str, int, int], Awaitable[PendingRows]],
        index: Callable[[str, PendingRows], Awaitable[None]],
        batch: int = 64,
        sweep_seconds: float = 5.0,
        max_tenants: int = 4096,
        lease: Lease | None = None,
    ) -> None:
        self._tenants = tenants
        self._lease = lease
        self._next_try = 0.0  # monotonic time of the next attempt to take the lease
        self._pending = pending
        self._index = index
        self._batch = batch
        self._sweep_seconds = sweep_seconds
        self._max_tenants = max_tenants
        # Per tenant: the rowid below which every fact had a vector when last looked at. Bounded
        # (least recently used dropped: a dropped tenant is read again from its first row).
        self._cursors: OrderedDict[str, int] = OrderedDict()
        self._dirty: set[str] = set()
        self._sweep_all = True
        self._wakeup = asyncio.Event()
        self._stopping = False  # set by aclose: the task ends at its next check
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.failures = 0
        """Passes that failed (logged with the error; the facts are retried at the next pass)."""

    def start(self) -> None:
        """Start the background task (on the running event loop)."""
        if self._task is None or self._task.done():
            self._stopping = False
            self._task = asyncio.get_running_loop().create_task(self._run())

    def wake(self, tenant: str) -> None:
        """`tenant` has new facts without vectors: look at it soon."""
        if len(self._dirty) >= self._max_tenants:
            self._sweep_all = True
        else:
            self._dirty.add(tenant)
        self._wakeup.set()

    async def drain(self, tenant: str | None = None) -> int:
        """Embed every fact of `tenant` (or of every tenant) still without a vector; how many."""
        names = [tenant] if tenant is not None else await self._tenants()
        done = 0
        for name in names:
            done += await self._catch_up(name)
        return done

    async def aclose(self) -> None:
        """Stop the task and free the lease; facts still without vectors are done by the
        process that takes it next (or the next engine)."""
        task, self._task = self._task, None
        # Asked to stop as well as cancelled: a cancellation swallowed on its way (third-party
        # code on Python 3.11 can lose one) still ends the task, at its next check.
        self._stopping = True
        self._wakeup.set()
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._lease is not None:
            await self._lease.release()

    async def leading(self) -> bool:
        """True if this process may embed now: it holds the lease (taking it when free, at
        most once per `sweep_seconds`), or there is no lease."""
        if self._lease is None:
            return True
        now = time.monotonic()
        if now < self._next_try:
            return False
        if await self._lease.acquire():
            return True
        self._next_try = now + self._sweep_seconds
        return False

    async def _run(self) -> None:
        while not self._stopping:
            if not self._sweep_all and not self._dirty:
                try:
                    # Not `asyncio.wait_for`: on Python 3.11 it returns normally when the
                    # event is set in the same loop pass as the task is cancelled, swallowing
                    # the cancellation, and `aclose` then waits for this task forever.
                    async with asyncio.timeout(self._sweep_seconds):
                        await self._wakeup.wait()
                except TimeoutError:
                    self._sweep_all = True
            if self._stopping:
                return
            self._wakeup.clear()
            names = set(self._dirty)
            self._dirty.clear()
            try:
                if not await self.leading():
                    # Another process embeds for the store; look again at the next sweep.
                    self._sweep_all = False
                    continue
                if self._sweep_all:
                    self._sweep_all = False
                    names.update(await self._tenants())
                for name in sorted(names):
                    await self._catch_up(name)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A background task has no caller to raise to: log it with its traceback, count
                # it, and let the next sweep retry (the facts still lack their vectors).
                self.failures += 1
                logger.exception("writing vectors in the background failed; retrying later")
                await asyncio.sleep(min(self._sweep_seconds, 1.0))

    async def _catch_up(self, tenant: str) -> int:
        done = 0
        async with self._lock:
            cursor = self._cursors.get(tenant, 0)
            while not self._stopping and (rows := await self._pending(tenant, cursor, self._batch)):
                await self._index(tenant, rows)
                cursor = rows[-1][0]
                done += len(rows)
                self._cursors[tenant] = cursor
                self._cursors.move_to_end(tenant)
                while len(self._cursors) > self._max_tenants:
                    self._cursors.popitem(last=False)
        return done
