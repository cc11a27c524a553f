"""The group-commit writer: one per store, bounded queue, backpressure, supervision.

Producers `submit()` a request and wait for its outcome. One task drains the queue into groups (up
to `batch_max` rows) and hands each group to the store, which commits it in one durable
transaction; only then are the producers answered. Up to `concurrency` groups are with the store at
once (1 for SQLite, whose single writer thread commits one after another; PostgreSQL prepares the
next group while the previous one holds its tenants' rows and commits). A full queue makes
producers wait up to `timeout` seconds, then raises `Overloaded`. A group that fails unexpectedly
answers its callers with `WriterCrashed` and the drain task starts afresh; groups already with the
store when the drain task dies answer their callers with what they actually did, so the write path
never hangs.
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
        concurrency: int = 1,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._apply = apply
        self._concurrency = concurrency
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(maxsize=queue_size)
        self._batch_max = batch_max
        self._timeout = timeout
        self._max_restarts = max_restarts
        self._task: asyncio.Task[None] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        # The groups with the store, by their apply future (at most `concurrency`).
        self._active: dict[asyncio.Future[list[WriteOutcome]], list[_Pending]] = {}
        self._wakeup = asyncio.Event()  # a request was queued or a group ended
        self._crash: BaseException | None = None  # a group's failure, for the drain to raise
        self._final_error: CortexError | None = None
        self._closed = False
        self.stats = WriterStats()

    @property
    def queue_depth(self) -> int:
        """Requests waiting in the queue (not counting the group being committed)."""
        return self._queue.qsize()

    @property
    def _in_flight(self) -> list[_Pending]:
        """The requests of every group the store holds."""
        return [pending for group in self._active.values() for pending in group]

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
            self._wakeup.set()
        except asyncio.QueueFull:
            try:
                # Not `asyncio.wait_for`, which on Python 3.11 can swallow a cancellation that
                # arrives in the loop pass where room appears (see VectorBackfill._run).
                async with asyncio.timeout(self._timeout):
                    await self._queue.put(pending)
            except TimeoutError:
                self.stats.overloaded += 1
                raise Overloaded(
                    f"write queue full ({self._queue.maxsize} requests) for {self._timeout:g}s;"
                    " retry later or raise write_queue_size",
                    retry_after=max(1.0, self._timeout),
                ) from None
            self._wakeup.set()
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
                # Only the drain task was cancelled: treat it as a crash and restart. The groups
                # it handed to the store answer their callers when they end (`_on_applied`).
                self.stats.errors += 1
            except Exception as exc:  # noqa: BLE001 - supervision boundary: report and restart
                log.error("writer crashed: %r; restarting", exc)
                self.stats.errors += 1
            else:
                return
            self.stats.restarts += 1
            if self.stats.restarts > self._max_restarts:
                log.error("writer restarted %d times; giving up", self.stats.restarts)
                self._closed = True
                self._fail_queue(WriterCrashed("the writer keeps crashing; the store is unusable"))
                return
            await asyncio.sleep(min(1.0, 0.01 * self.stats.restarts))

    def _on_applied(self, applying: asyncio.Future[list[WriteOutcome]]) -> None:
        """A group ended: answer its callers; a failure is left for the drain task to raise."""
        group = self._active.pop(applying, None)
        self._wakeup.set()
        if group is None:
            return
        failure: BaseException | None
        if applying.cancelled():
            failure = WriterCrashed("the group's transaction was cancelled; not committed")
        else:
            failure = applying.exception()
        if failure is not None:
            self._crash = failure
            crashed = (
                failure
                if isinstance(failure, WriterCrashed)
                else WriterCrashed(
                    f"the writer crashed ({type(failure).__name__}: {failure}); not committed"
                )
            )
            for pending in group:
                if not pending.future.done():
                    pending.future.set_result(crashed)
            return
        outcomes = applying.result()
        self.stats.groups += 1
        self.stats.requests += len(group)
        self.stats.last_group_size = sum(p.request.weight for p in group)
        for pending, outcome in zip(group, outcomes, strict=True):
            if isinstance(outcome, CortexError):
                self.stats.errors += 1
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
            if self._crash is not None:
                # A group failed unexpectedly (its callers have been told): die, so that the
                # supervisor logs it, counts it and starts afresh.
                crash, self._crash = self._crash, None
                raise crash
            if len(self._active) >= self._concurrency:
                await asyncio.wait(list(self._active), return_when=asyncio.FIRST_COMPLETED)
                continue
            if self._queue.empty():
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            first = self._queue.get_nowait()
            group = [first]
            rows = first.request.weight
            while rows < self._batch_max and not self._queue.empty():
                nxt = self._queue.get_nowait()
                group.append(nxt)
                rows += nxt.request.weight
            applying = asyncio.ensure_future(self._apply([p.request for p in group]))
            self._active[applying] = group
            applying.add_done_callback(self._on_applied)

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
        self._fail_queue(StoreClosed("the engine closed before this write was committed"))
        self._supervisor = None
