"""The group-commit writer: one per store, bounded queue, backpressure, supervision.

Producers `submit()` a request and wait for its outcome. One task drains the queue into groups
(up to `batch_max` rows) and hands each group to the store, which commits it in one durable
transaction; only then are the producers answered. A full queue makes producers wait up to
`timeout` seconds, then raises `Overloaded`. If the drain task dies, every caller whose request
it held gets `WriterCrashed` and a fresh task starts, so the write path never hangs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from cortex.errors import CortexError, Overloaded, StoreClosed, WriterCrashed
from cortex.store.base import WriteOutcome, WriteRequest

__all__ = ["GroupCommitWriter", "WriterStats"]

log = logging.getLogger(__name__)

ApplyFn = Callable[[Sequence[WriteRequest]], Awaitable[list[WriteOutcome]]]


@dataclass(slots=True)
class WriterStats:
    """Counters of one writer (read by metrics and tests)."""

    groups: int = 0
    requests: int = 0
    errors: int = 0
    restarts: int = 0
    overloaded: int = 0
    last_group_size: int = 0


@dataclass(slots=True)
class _Pending:
    request: WriteRequest
    future: asyncio.Future[WriteOutcome]


class GroupCommitWriter:
    """Serialises all writes of one store into group commits. Use inside one event loop."""

    def __init__(
        self,
        apply: ApplyFn,
        *,
        queue_size: int,
        batch_max: int,
        timeout: float,
        max_restarts: int = 100,
    ) -> None:
        self._apply = apply
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(maxsize=queue_size)
        self._batch_max = batch_max
        self._timeout = timeout
        self._max_restarts = max_restarts
        self._task: asyncio.Task[None] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._in_flight: list[_Pending] = []
        self._applying: asyncio.Future[list[WriteOutcome]] | None = None
        self._final_error: CortexError | None = None
        self._closed = False
        self.stats = WriterStats()

    @property
    def queue_depth(self) -> int:
        """Requests waiting in the queue (not counting the group being committed)."""
        return self._queue.qsize()

    @property
    def running(self) -> bool:
        """True while the drain task is alive."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start the drain task and its supervisor. Idempotent."""
        if self._supervisor is None:
            self._supervisor = asyncio.get_running_loop().create_task(
                self._supervise(), name="cortex-writer-supervisor"
            )

    async def submit(self, request: WriteRequest) -> WriteOutcome:
        """Queue `request`, wait until its group committed, and return its outcome.

        Raises the request's CortexError if it was refused, `Overloaded` if the queue stayed
        full for the configured timeout, `WriterCrashed` if the writer died holding it.
        """
        if self._closed:
            raise StoreClosed("the engine is closed; open a new one")
        future: asyncio.Future[WriteOutcome] = asyncio.get_running_loop().create_future()
        pending = _Pending(request, future)
        try:
            self._queue.put_nowait(pending)
        except asyncio.QueueFull:
            try:
                await asyncio.wait_for(self._queue.put(pending), timeout=self._timeout)
            except TimeoutError:
                self.stats.overloaded += 1
                raise Overloaded(
                    f"write queue full ({self._queue.maxsize} requests) for {self._timeout:g}s;"
                    " retry later or raise write_queue_size",
                    retry_after=max(1.0, self._timeout),
                ) from None
            if self._final_error is not None:
                # The writer stopped for good while we waited for room: nobody drains the queue.
                self._fail_queue(self._final_error)
        outcome = await future
        if isinstance(outcome, CortexError):
            raise outcome
        return outcome

    async def _supervise(self) -> None:
        while not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._drain(), name="cortex-writer")
            try:
                await asyncio.shield(self._task)
            except asyncio.CancelledError:
                me = asyncio.current_task()
                if self._closed or not self._task.cancelled() or (me and me.cancelling()):
                    # The supervisor itself is being cancelled: by close(), or by the loop's
                    # end (asyncio.run cancels every task left at once, in no fixed order, so
                    # the drain task may be cancelled first). Never restart then: nobody would
                    # cancel the new drain task and the program would not exit.
                    self._task.cancel()
                    raise
                # Only the drain task was cancelled: treat it as a crash and restart.
                self._fail_in_flight(
                    WriterCrashed("the writer was cancelled; the write was not committed")
                )
            except Exception as exc:  # noqa: BLE001 - supervision boundary: report and restart
                log.error("writer crashed: %r; restarting", exc)
                self._fail_in_flight(
                    WriterCrashed(
                        f"the writer crashed ({type(exc).__name__}: {exc}); not committed"
                    )
                )
            else:
                return
            self.stats.restarts += 1
            if self.stats.restarts > self._max_restarts:
                log.error("writer restarted %d times; giving up", self.stats.restarts)
                self._closed = True
                self._fail_queue(WriterCrashed("the writer keeps crashing; the store is unusable"))
                return
            await asyncio.sleep(min(1.0, 0.01 * self.stats.restarts))

    def _fail_in_flight(self, error: CortexError) -> None:
        group, self._in_flight = self._in_flight, []
        applying, self._applying = self._applying, None
        self.stats.errors += 1
        if applying is not None and not applying.done():
            # The store's thread is still running this group's transaction (the drain task was
            # cancelled, not the thread): answer each caller with what it actually did.
            applying.add_done_callback(lambda done: self._settle(group, done, error))
            return
        for pending in group:
            if not pending.future.done():
                pending.future.set_result(error)

    @staticmethod
    def _settle(
        group: list[_Pending], applying: asyncio.Future[list[WriteOutcome]], error: CortexError
    ) -> None:
        failed = applying.cancelled() or applying.exception() is not None
        outcomes = [error] * len(group) if failed else applying.result()
        for pending, outcome in zip(group, outcomes, strict=True):
            if not pending.future.done():
                pending.future.set_result(outcome)

    def _fail_queue(self, error: CortexError) -> None:
        self._final_error = error
        while not self._queue.empty():
            pending = self._queue.get_nowait()
            if not pending.future.done():
                pending.future.set_result(error)

    async def _drain(self) -> None:
        while True:
            first = await self._queue.get()
            group = [first]
            rows = first.request.weight
            while rows < self._batch_max and not self._queue.empty():
                nxt = self._queue.get_nowait()
                group.append(nxt)
                rows += nxt.request.weight
            self._in_flight = group
            self._applying = asyncio.ensure_future(self._apply([p.request for p in group]))
            outcomes = await asyncio.shield(self._applying)
            self._in_flight = []
            self._applying = None
            self.stats.groups += 1
            self.stats.requests += len(group)
            self.stats.last_group_size = rows
            for pending, outcome in zip(group, outcomes, strict=True):
                if isinstance(outcome, CortexError):
                    self.stats.errors += 1
                if not pending.future.done():
                    pending.future.set_result(outcome)

    async def close(self) -> None:
        """Finish what is queued, then stop. New submissions raise StoreClosed."""
        if self._closed and self._supervisor is None:
            return
        self._closed = True
        while (self._in_flight or not self._queue.empty()) and self.running:
            await asyncio.sleep(0.005)
        # Only tasks still running are stopped and awaited: one that already ended (a crashed
        # drain, a supervisor that gave up) was handled by the supervisor; awaiting it here
        # would re-raise its crash out of close().
        stopping = [t for t in (self._task, self._supervisor) if t is not None and not t.done()]
        for task in stopping:
            task.cancel()
        for task in stopping:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._fail_in_flight(StoreClosed("the engine closed before this write was committed"))
        self._fail_queue(StoreClosed("the engine closed before this write was committed"))
        self._supervisor = None
