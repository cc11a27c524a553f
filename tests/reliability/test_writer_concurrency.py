"""The writer hands a store up to `concurrency` groups at once, answering each as it ends."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from cortex import WriterCrashed
from cortex.model import FactDraft
from cortex.store.base import StoreFacts, WriteOutcome, WriteRequest
from cortex.store.writer import GroupCommitWriter


def _request(text: str) -> StoreFacts:
    return StoreFacts("default", (FactDraft(content=text),))


class _GatedStore:
    """An `apply_writes` whose groups wait until the test releases them (or makes them fail)."""

    def __init__(self) -> None:
        self.started: list[list[str]] = []
        self.gates: list[asyncio.Future[None]] = []
        self.active = 0
        self.most_active = 0

    async def apply(self, requests: Sequence[WriteRequest]) -> list[WriteOutcome]:
        contents = [r.drafts[0].content for r in requests if isinstance(r, StoreFacts)]
        gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.started.append(contents)
        self.gates.append(gate)
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        try:
            await gate
        finally:
            self.active -= 1
        return [[] for _ in requests]


def _writer(store: _GatedStore, concurrency: int) -> GroupCommitWriter:
    """A started writer of one-request groups in front of `store`."""
    writer = GroupCommitWriter(
        store.apply, queue_size=100, batch_max=1, timeout=5.0, concurrency=concurrency
    )
    writer.start()
    return writer


async def _until(condition: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.002)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("concurrency", [1, 2, 3])
async def test_no_more_than_concurrency_groups_are_with_the_store_and_they_start_in_order(
    concurrency: int,
) -> None:
    store = _GatedStore()
    writer = _writer(store, concurrency)
    try:
        tasks = [asyncio.create_task(writer.submit(_request(f"w{i}"))) for i in range(6)]
        await _until(lambda: len(store.started) == concurrency)
        await asyncio.sleep(0.05)
        assert len(store.started) == concurrency, "a group started beyond the limit"
        released = 0
        while released < 6:
            store.gates[released].set_result(None)
            released += 1
            await _until(lambda n=released: len(store.started) == min(6, n + concurrency))
        assert await asyncio.gather(*tasks) == [[]] * 6
        assert store.most_active == concurrency
        assert [group[0] for group in store.started] == [f"w{i}" for i in range(6)]
        assert writer.stats.groups == 6
    finally:
        await writer.close()


@pytest.mark.timeout(30)
async def test_a_group_that_fails_tells_its_callers_while_the_group_beside_it_commits() -> None:
    store = _GatedStore()
    writer = _writer(store, 2)
    try:
        first = asyncio.create_task(writer.submit(_request("commits")))
        second = asyncio.create_task(writer.submit(_request("fails")))
        await _until(lambda: len(store.gates) == 2)
        store.gates[1].set_exception(RuntimeError("connection reset"))
        with pytest.raises(WriterCrashed, match="RuntimeError: connection reset"):
            await second
        # The failure restarts the drain task; the group beside it is still with the store.
        await _until(lambda: writer.stats.restarts == 1 and writer.running)
        assert not first.done()
        store.gates[0].set_result(None)
        assert await first == []
        third = asyncio.create_task(writer.submit(_request("after")))
        await _until(lambda: len(store.gates) == 3)
        store.gates[2].set_result(None)
        assert await third == []
    finally:
        await writer.close()


@pytest.mark.timeout(30)
async def test_closing_waits_for_every_group_with_the_store() -> None:
    store = _GatedStore()
    writer = _writer(store, 2)
    tasks = [asyncio.create_task(writer.submit(_request(f"w{i}"))) for i in range(3)]
    await _until(lambda: len(store.gates) == 2)
    closing = asyncio.create_task(writer.close())
    await asyncio.sleep(0.05)
    assert not closing.done(), "close() returned while groups were still with the store"
    for i in range(3):
        await _until(lambda i=i: len(store.gates) > i)
        store.gates[i].set_result(None)
    await asyncio.wait_for(closing, 5)
    assert await asyncio.gather(*tasks) == [[]] * 3


def test_concurrency_must_be_positive() -> None:
    async def apply(requests: Sequence[WriteRequest]) -> list[WriteOutcome]:
        return []

    with pytest.raises(ValueError, match="concurrency"):
        GroupCommitWriter(apply, queue_size=1, batch_max=1, timeout=1.0, concurrency=0)


@pytest.mark.timeout(30)
async def test_a_caller_cancelled_as_room_appears_in_a_full_queue_is_cancelled() -> None:
    """A submit waiting for room, cancelled in the loop pass where room appears, must end
    cancelled (with `asyncio.wait_for` on Python 3.11 the cancellation was swallowed and the
    caller kept waiting)."""
    writer = GroupCommitWriter(_GatedStore().apply, queue_size=1, batch_max=1, timeout=30.0)
    # Not started: nothing drains, so the first request fills the queue.
    first = asyncio.create_task(writer.submit(_request("fills the queue")))
    waiting = asyncio.create_task(writer.submit(_request("waits for room")))
    await _until(lambda: writer.queue_depth == 1)
    await asyncio.sleep(0.01)  # `waiting` is blocked in the full queue
    writer._queue.get_nowait()  # room appears...
    await asyncio.sleep(0)
    waiting.cancel()  # ...and the caller is cancelled in the same pass
    done, _ = await asyncio.wait([waiting], timeout=2)
    assert waiting in done, "the cancelled caller still waits"
    assert waiting.cancelled()
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
