"""Closing the engine finishes queued writes: every write either returned a Fact (and is in the
store after reopening) or raised `StoreClosed` -- none is lost silently, none hangs."""

from __future__ import annotations

import asyncio
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import cortex
from cortex import Fact, Settings, StoreClosed


def _reopened_contents(settings: Settings) -> list[str]:
    contents: list[str] = []
    with cortex.connect(settings) as mem:
        cursor = None
        while True:
            page = mem.list(include_inactive=True, limit=1000, cursor=cursor)
            contents += [fact.content for fact in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        report = mem.verify()
        assert report.problems == ()
        assert mem.stats().transactions == len(contents)
    return contents


def _check(outcomes: dict[str, Any], contents: list[str]) -> int:
    """Every outcome is a Fact (present, once) or StoreClosed (absent); return the Fact count."""
    assert len(contents) == len(set(contents)), "a write was committed twice"
    stored = set(contents)
    facts = 0
    for content, outcome in outcomes.items():
        if isinstance(outcome, Fact):
            facts += 1
            assert outcome.content == content
            assert content in stored, f"{content!r} was acknowledged but is gone after close"
        else:
            assert isinstance(outcome, StoreClosed), f"{content!r}: {outcome!r}"
            assert content not in stored, f"{content!r} raised StoreClosed but was committed"
    unexpected = stored - set(outcomes) - {"warm-up"}
    assert not unexpected, f"committed without anyone being told: {sorted(unexpected)[:5]}"
    return facts


async def _close_while_writing(settings: Settings, producers: int, rng: random.Random) -> None:
    engine = await cortex.open(settings)
    await engine.store("warm-up")
    outcomes: dict[str, Any] = {}

    async def produce(content: str, delay: float | None) -> None:
        if delay is not None:
            await asyncio.sleep(delay)
        try:
            outcomes[content] = await engine.store(content)
        except StoreClosed as exc:
            outcomes[content] = exc

    # Half the writes are submitted before aclose() is called, the rest race with it.
    early = [asyncio.create_task(produce(f"early {i}", None)) for i in range(producers // 2)]
    racing = [
        asyncio.create_task(produce(f"racing {i}", rng.uniform(0, 0.02)))
        for i in range(producers - len(early))
    ]
    await asyncio.sleep(rng.uniform(0, 0.02))
    await asyncio.wait_for(engine.aclose(), timeout=30)
    done, pending = await asyncio.wait(early + racing, timeout=10)
    assert not pending, f"{len(pending)} writes neither finished nor failed after aclose()"
    for task in done:
        task.result()  # anything but Fact/StoreClosed fails here
    assert not engine.writer.running
    with pytest.raises(StoreClosed):
        await engine.store("after close")
    contents = await asyncio.to_thread(_reopened_contents, settings)
    facts = _check(outcomes, contents)
    assert len(contents) == facts + 1
    not_finished = [
        c for c, o in outcomes.items() if c.startswith("early") and not isinstance(o, Fact)
    ]
    assert not not_finished, f"writes queued before aclose() were dropped: {not_finished[:5]}"


@pytest.mark.timeout(90)
@pytest.mark.parametrize(("queue_size", "producers"), [(1024, 400), (8, 200)])
async def test_closing_the_engine_finishes_queued_writes(
    make_home: Callable[..., Settings], queue_size: int, producers: int
) -> None:
    rng = random.Random()
    for round_number in range(5):
        settings = await asyncio.to_thread(
            make_home, f"home-{round_number}", write_queue_size=queue_size, write_timeout=30.0
        )
        await _close_while_writing(settings, producers, rng)


@pytest.mark.timeout(90)
async def test_closing_the_engine_waits_for_a_blocked_writer_and_its_queue(
    make_home: Callable[..., Settings], write_lock: Callable[..., Any]
) -> None:
    """aclose() while the writer is stuck on another connection's lock: close waits, and every
    queued write is committed once the lock goes away."""
    settings = await asyncio.to_thread(make_home, write_queue_size=16, write_timeout=30.0)
    engine = await cortex.open(settings)
    await engine.store("warm-up")
    outcomes: dict[str, Any] = {}

    async def produce(content: str) -> None:
        try:
            outcomes[content] = await engine.store(content)
        except StoreClosed as exc:
            outcomes[content] = exc

    with write_lock(settings.database_path):
        tasks = [asyncio.create_task(produce(f"w{i}")) for i in range(100)]
        await asyncio.sleep(0.1)
        closing = asyncio.create_task(engine.aclose())
        await asyncio.sleep(0.5)
        assert not closing.done(), "aclose() returned while writes were still queued"
    await asyncio.wait_for(closing, timeout=30)
    done, pending = await asyncio.wait(tasks, timeout=10)
    assert not pending
    for task in done:
        task.result()
    contents = await asyncio.to_thread(_reopened_contents, settings)
    facts = _check(outcomes, contents)
    assert facts == 100, "writes queued before aclose() must be committed, not dropped"


@contextmanager
def _frequent_thread_switches() -> Iterator[None]:
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


def _close_sync_handle_while_writing(settings: Settings, rng: random.Random, where: str) -> None:
    mem = cortex.connect(settings)
    mem.store("warm-up")
    outcomes: dict[str, Any] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def worker(name: str) -> None:
        # Keep calling through close() and a little after it, so that calls race with every
        # step of closing the handle.
        n = 0
        while not stop.is_set():
            n += 1
            content = f"{name} {n}"
            try:
                outcome: Any = mem.store(content)
            except Exception as exc:  # noqa: BLE001 - every outcome is checked below
                outcome = exc
            with lock:
                outcomes[content] = outcome

    threads = [threading.Thread(target=worker, args=(f"t{i}",), daemon=True) for i in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(rng.uniform(0.005, 0.03))
    mem.close()
    time.sleep(0.01)
    stop.set()
    deadline = time.monotonic() + 10
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    hung = sum(thread.is_alive() for thread in threads)
    assert hung == 0, f"{where}: {hung} of 8 threads hang in a call made while close() ran"
    with pytest.raises(StoreClosed):
        mem.store("after close")
    with lock:
        _check(dict(outcomes), _reopened_contents(settings))


@pytest.mark.timeout(120)
def test_closing_a_sync_handle_while_threads_write_answers_every_call_with_a_fact_or_store_closed(
    make_home: Callable[..., Settings],
) -> None:
    """Threads keep calling `store` on one CortexSync while another thread closes it. A call that
    races with close() must end in a Fact or StoreClosed, never hang or raise RuntimeError."""
    rng = random.Random()
    with _frequent_thread_switches():
        for round_number in range(25):
            settings = make_home(f"home-{round_number}")
            _close_sync_handle_while_writing(settings, rng, f"round {round_number}")
