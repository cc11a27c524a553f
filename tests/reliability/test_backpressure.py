"""A full write queue makes producers wait up to `write_timeout`, then raises `Overloaded`.

The writer is made slow deterministically: another connection holds SQLite's write lock
(`BEGIN IMMEDIATE`), so the store's writer sits in its busy handler with one group in flight while
the bounded queue fills. Every call must end as a Fact or as `Overloaded` -- never hang, never
vanish -- and exactly the Facts returned are in the store afterwards.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import cortex
from cortex import Fact, Overloaded, Settings

PRODUCERS = 40
WRITE_TIMEOUT = 0.2
LOCK_HELD = 1.0  # seconds the writer is blocked; far longer than WRITE_TIMEOUT


def _all_contents(mem: cortex.CortexSync) -> list[str]:
    contents: list[str] = []
    cursor = None
    while True:
        page = mem.list(include_inactive=True, limit=1000, cursor=cursor)
        contents += [fact.content for fact in page.items]
        if page.next_cursor is None:
            return contents
        cursor = page.next_cursor


Outcome = tuple[Fact | Overloaded, float, float]  # result, started, finished (monotonic s)


def _check_outcomes(
    outcomes: dict[int, Outcome], queue_size: int, released: float
) -> tuple[set[str], int]:
    """Common assertions; return the contents that were acknowledged and the Overloaded count."""
    assert sorted(outcomes) == list(range(PRODUCERS)), "some producer never finished"
    overloaded = {i: o[0] for i, o in outcomes.items() if isinstance(o[0], Overloaded)}
    facts = {i: o[0] for i, o in outcomes.items() if isinstance(o[0], Fact)}
    assert len(overloaded) + len(facts) == PRODUCERS  # no third kind of outcome
    # Capacity while the writer is stuck: the queue, the group in flight, and the producers the
    # drain let in when it emptied the queue into that group. Everyone else must be refused.
    assert 1 <= len(facts) <= 3 * queue_size + 1, (len(facts), queue_size)
    assert len(overloaded) >= PRODUCERS - (3 * queue_size + 1)
    for i, exc in overloaded.items():
        _, started, finished = outcomes[i]
        assert exc.retry_after > 0
        assert "queue" in str(exc)
        # Refused after waiting about write_timeout, while the writer was still stuck: not
        # left hanging until the writer moved again.
        assert finished - started >= WRITE_TIMEOUT * 0.9
        assert finished < released, "Overloaded came only after the writer was unblocked"
    for i, fact in facts.items():
        assert fact.content == f"producer {i}"
        # Nobody is acknowledged while the transaction cannot commit.
        assert outcomes[i][2] > released
    return {fact.content for fact in facts.values()}, len(overloaded)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("queue_size", [1, 2, 4])
async def test_full_queue_raises_overloaded_not_hang(
    make_home: Callable[..., Settings], write_lock: Callable[..., Any], queue_size: int
) -> None:
    settings = await asyncio.to_thread(
        make_home, write_queue_size=queue_size, write_timeout=WRITE_TIMEOUT, write_batch_max=2000
    )
    outcomes: dict[int, Outcome] = {}

    async def produce(i: int) -> None:
        started = time.monotonic()
        try:
            result: Fact | Overloaded = await engine.store(f"producer {i}")
        except Overloaded as exc:
            result = exc
        outcomes[i] = (result, started, time.monotonic())

    async with await cortex.open(settings) as engine:
        await engine.store("warm-up")
        with write_lock(settings.database_path):
            tasks = [asyncio.create_task(produce(i)) for i in range(PRODUCERS)]
            await asyncio.sleep(LOCK_HELD)
            assert engine.writer.running
            waiting = [t for t in tasks if not t.done()]
            assert 1 <= len(waiting) <= 3 * queue_size + 1
            released = time.monotonic()
        # Released: the blocked group and what is queued commit promptly.
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=20)
        acknowledged, refused = _check_outcomes(outcomes, queue_size, released)
        assert engine.writer.stats.overloaded == refused
        assert engine.writer.queue_depth == 0
        # The queue is usable again.
        after = await asyncio.wait_for(engine.store("after the flood"), timeout=10)
        assert after.content == "after the flood"
        report = await engine.verify()
        assert report.problems == ()

    def check_on_disk() -> None:
        with cortex.connect(settings) as mem:
            contents = _all_contents(mem)
            assert sorted(contents) == sorted({"warm-up", "after the flood"} | acknowledged)
            assert mem.stats().transactions == len(contents)
            assert mem.verify().ok

    await asyncio.to_thread(check_on_disk)


@pytest.mark.timeout(60)
def test_full_queue_raises_overloaded_not_hang_for_threads_on_a_sync_handle(
    make_home: Callable[..., Settings], write_lock: Callable[..., Any]
) -> None:
    queue_size = 2
    settings = make_home(write_queue_size=queue_size, write_timeout=WRITE_TIMEOUT)
    outcomes: dict[int, Outcome] = {}

    with cortex.connect(settings) as mem:
        mem.store("warm-up")

        def produce(i: int) -> None:
            started = time.monotonic()
            try:
                result: Fact | Overloaded = mem.store(f"producer {i}")
            except Overloaded as exc:
                result = exc
            outcomes[i] = (result, started, time.monotonic())

        with ThreadPoolExecutor(PRODUCERS) as pool:
            with write_lock(settings.database_path):
                futures = [pool.submit(produce, i) for i in range(PRODUCERS)]
                time.sleep(LOCK_HELD)
                released = time.monotonic()
            for future in futures:
                future.result(timeout=20)  # re-raises anything but Fact/Overloaded
        acknowledged, refused = _check_outcomes(outcomes, queue_size, released)
        assert mem.engine.writer.stats.overloaded == refused
        contents = _all_contents(mem)
        assert sorted(contents) == sorted({"warm-up"} | acknowledged)
        assert mem.verify().ok
