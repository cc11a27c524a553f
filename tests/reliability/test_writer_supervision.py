"""The writer is supervised: if it dies, pending callers get an error and it restarts.

Faults are real: the drain task is cancelled while its group is blocked on SQLite's write lock
(held by another connection), or the database gains a row the writer does not expect (another
process appended to the ledger), so the group's transaction fails inside SQLite.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import apsw
import pytest

import cortex
from cortex import Cortex, Fact, Settings, StoreClosed, WriterCrashed
from cortex.model import FactDraft
from cortex.store.base import StoreFacts
from cortex.store.sqlite import SqliteStore
from cortex.store.writer import GroupCommitWriter


async def _contents(engine: Cortex) -> list[str]:
    contents: list[str] = []
    cursor = None
    while True:
        page = await engine.list(include_inactive=True, limit=1000, cursor=cursor)
        contents += [fact.content for fact in page.items]
        if page.next_cursor is None:
            return contents
        cursor = page.next_cursor


async def _eventually(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


def _intrude(conn: apsw.Connection, tenant: str = "default") -> tuple[int, int]:
    """Append a ledger row at the tenant's next seq, as another process might: the writer's own
    INSERT at that seq then violates the primary key inside SQLite and its group fails."""
    tenant_id, next_seq = conn.execute(
        "SELECT id, next_seq FROM tenants WHERE name = ?", (tenant,)
    ).fetchall()[0]
    conn.execute(
        "INSERT INTO transactions(tenant_id, seq, op, subject, actor, ts, payload,"
        " payload_digest, prev_hash, hash) VALUES (?, ?, 'store', NULL, NULL, 'x', '{}',"
        " x'00', x'00', x'00')",
        (tenant_id, next_seq),
    )
    return tenant_id, next_seq


@pytest.mark.timeout(60)
async def test_writer_that_dies_is_restarted_and_its_pending_callers_get_an_error(
    make_home: Callable[..., Settings], ledger_census: Any
) -> None:
    settings = await asyncio.to_thread(make_home)
    intruder = apsw.Connection(str(settings.database_path))
    try:
        async with await cortex.open(settings) as engine:
            await engine.store("before the fault")
            assert engine.writer.stats.restarts == 0
            tenant_id, next_seq = _intrude(intruder)
            results = await asyncio.wait_for(
                asyncio.gather(
                    *(engine.store(f"doomed {i}") for i in range(10)), return_exceptions=True
                ),
                timeout=30,
            )
            # Every pending caller is told, with the typed error (a StoreError) naming the cause.
            assert all(isinstance(r, WriterCrashed) for r in results), results
            assert isinstance(results[0], cortex.StoreError)
            assert "ConstraintError" in str(results[0])
            # The supervisor started a fresh drain task.
            assert engine.writer.stats.restarts >= 1
            assert await _eventually(lambda: engine.writer.running)

            intruder.execute(
                "DELETE FROM transactions WHERE tenant_id = ? AND seq = ?", (tenant_id, next_seq)
            )
            fact = await asyncio.wait_for(engine.store("after the fault"), timeout=20)
            assert fact.seq == next_seq  # nothing of the failed groups took a seq
            many = await asyncio.wait_for(
                engine.store_many([{"content": f"later {i}"} for i in range(20)]), timeout=20
            )
            assert [f.seq for f in many] == list(range(next_seq + 1, next_seq + 21))
            contents = await _contents(engine)
            # WriterCrashed meant "not committed": none of the doomed writes is there.
            assert not [c for c in contents if c.startswith("doomed")]
            assert len(contents) == 22
            report = await engine.verify()
            assert report.problems == ()
    finally:
        intruder.close()
    assert all(t.dense for t in ledger_census(settings.database_path).values())


@pytest.mark.timeout(60)
async def test_a_cancelled_writer_restarts_and_tells_each_pending_caller_what_became_of_its_write(
    make_home: Callable[..., Settings], write_lock: Callable[..., Any], ledger_census: Any
) -> None:
    """Cancel the drain task while its group waits for SQLite's write lock (held by another
    connection). The group's transaction keeps running in the store's writer thread and commits
    once the lock is free, so a caller may not be told `WriterCrashed` ("not committed") for a
    write that did commit -- a retry would store it twice. Each caller must get, within a bound,
    either its committed Fact or WriterCrashed for a write that is not in the store."""
    settings = await asyncio.to_thread(make_home)
    count = 8
    async with await cortex.open(settings) as engine:
        await engine.store("before")
        with write_lock(settings.database_path):
            tasks = [asyncio.create_task(engine.store(f"in flight {i}")) for i in range(count)]
            assert await _eventually(lambda: len(engine.writer._in_flight) == count), (
                "the writer never took the writes into one group"
            )
            await asyncio.sleep(0.05)  # the group is now in SQLite's busy handler
            drain = engine.writer._task
            assert drain is not None
            drain.cancel()
            # The supervisor restarts the drain task even while the old group is still blocked.
            assert await _eventually(
                lambda: engine.writer.running and engine.writer._task is not drain
            )
            assert engine.writer.stats.restarts >= 1
            await asyncio.sleep(0.2)
        # Lock released: nobody waits beyond the store's busy timeout (10 s).
        _, pending = await asyncio.wait(tasks, timeout=15)
        assert not pending, f"{len(pending)} callers still wait after their writer died"
        outcomes = [t.exception() or t.result() for t in tasks]
        assert all(isinstance(o, Fact | WriterCrashed) for o in outcomes), outcomes
        # Subsequent writes succeed.
        fact = await asyncio.wait_for(engine.store("after the crash"), timeout=20)
        assert (await engine.get(fact.id)).content == "after the crash"
        contents = set(await _contents(engine))
        report = await engine.verify()
        assert report.problems == ()
    assert all(t.dense for t in ledger_census(settings.database_path).values())
    lost = [o.content for o in outcomes if isinstance(o, Fact) and o.content not in contents]
    assert not lost, f"acknowledged but missing: {lost}"
    crashed_but_committed = [
        f"in flight {i}"
        for i, o in enumerate(outcomes)
        if isinstance(o, WriterCrashed) and f"in flight {i}" in contents
    ]
    assert not crashed_but_committed, (
        f"{len(crashed_but_committed)} of {count} callers were told WriterCrashed"
        f" ({next(o for o in outcomes if isinstance(o, WriterCrashed))}) but their writes are"
        " committed"
    )


@pytest.mark.timeout(60)
async def test_closing_the_engine_right_after_its_writer_crashed_closes_cleanly(
    make_home: Callable[..., Settings],
) -> None:
    """aclose() while the supervisor waits to restart a crashed drain task must not re-raise the
    crash (a raw apsw exception) and must still close the store."""
    settings = await asyncio.to_thread(make_home)
    intruder = apsw.Connection(str(settings.database_path))
    try:
        engine = await cortex.open(settings)
        await engine.store("before the fault")
        _intrude(intruder)
        for i in range(3):  # a few crashes, so the supervisor's back-off is tens of ms
            with pytest.raises(WriterCrashed):
                await asyncio.wait_for(engine.store(f"doomed {i}"), timeout=20)
        await asyncio.wait_for(engine.aclose(), timeout=20)
        with pytest.raises(StoreClosed):
            await engine.store("after close")
        assert not engine.writer.running
    finally:
        intruder.close()
    # The store let go of the file: it can be opened, repaired and written again.
    intruder = apsw.Connection(str(settings.database_path))
    try:
        intruder.execute("DELETE FROM transactions WHERE payload_digest = x'00'")
    finally:
        intruder.close()
    async with await cortex.open(settings) as engine:
        await engine.store("after reopening")
        assert (await engine.verify()).ok


@pytest.mark.timeout(60)
async def test_a_writer_that_gives_up_fails_every_waiting_caller_instead_of_hanging(
    make_home: Callable[..., Settings],
) -> None:
    """After `max_restarts` crashes the writer gives up; callers still waiting for room in the
    queue at that moment must get an error too (here: a real SqliteStore whose every group fails
    on a row another process appended)."""
    settings = await asyncio.to_thread(make_home)
    async with await cortex.open(settings) as engine:
        await engine.store("before the fault")
    store = await SqliteStore.open(settings.database_path, read_threads=1, create=False)
    intruder = apsw.Connection(str(settings.database_path))
    tasks: list[asyncio.Task[Any]] = []
    try:
        _intrude(intruder)
        writer = GroupCommitWriter(
            store.apply_writes, queue_size=1, batch_max=100, timeout=30.0, max_restarts=2
        )
        writer.start()
        tasks = [
            asyncio.create_task(
                writer.submit(StoreFacts("default", (FactDraft(content=f"doomed {i}"),)))
            )
            for i in range(6)
        ]
        assert await _eventually(lambda: writer.stats.restarts > 2, timeout=10)
        done, pending = await asyncio.wait(tasks, timeout=5)
        assert not pending, (
            f"{len(pending)} of {len(tasks)} callers still wait 5 s after the writer gave up"
        )
        for task in done:
            assert isinstance(task.exception(), WriterCrashed | StoreClosed), task
        await writer.close()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        intruder.close()
        await store.close()


@pytest.mark.timeout(60)
async def test_a_writer_cancelled_with_its_drain_task_in_one_sweep_stops() -> None:
    """`asyncio.run` ends a program by cancelling every task left at once, in no fixed order.
    When the drain task's cancellation lands first, the supervisor must still stop (its own
    cancellation is not a crash of the drain task to restart from): a restarted drain task is
    one nobody cancels, and the program never exits."""
    applied: list[int] = []

    async def apply(requests: Any) -> list[Any]:
        applied.append(len(requests))
        return [[] for _ in requests]

    writer = GroupCommitWriter(apply, queue_size=4, batch_max=10, timeout=1.0)
    writer.start()
    assert await _eventually(lambda: writer.running)
    drain, supervisor = writer._task, writer._supervisor
    assert drain is not None
    assert supervisor is not None
    try:
        drain.cancel()
        supervisor.cancel()
        done, _ = await asyncio.wait([supervisor], timeout=5)
        assert supervisor in done, "the supervisor swallowed its own cancellation"
        assert supervisor.cancelled()
        await asyncio.sleep(0.05)
        assert not writer.running, "a drain task was started after the supervisor was cancelled"
        assert writer.stats.restarts == 0
    finally:
        # On failure, stop what the writer left so the test fails instead of hanging.
        writer._closed = True
        for task in (writer._task, writer._supervisor):
            if task is not None:
                task.cancel()


@pytest.mark.timeout(120)
def test_a_program_that_ends_without_closing_its_engine_exits(
    make_home: Callable[..., Settings], tmp_path: Any
) -> None:
    """Leaving `asyncio.run` with an open engine (no `aclose`, here after an error) ends the
    program: the tasks the engine left are cancelled by asyncio and none of them starts again.
    Run three times: the order in which asyncio cancels the leftover tasks is not fixed."""
    import subprocess
    import sys

    settings = make_home()
    script = tmp_path / "forgets_to_close.py"
    script.write_text(
        "import asyncio, sys\n"
        "import cortex\n"
        "async def main() -> None:\n"
        "    engine = await cortex.open(sys.argv[1], embedder=None)\n"
        "    await engine.store_many([{'content': f'fact {i}'} for i in range(50)])\n"
        "    raise RuntimeError('the program fails before closing its engine')\n"
        "asyncio.run(main())\n"
    )
    for run in range(3):
        result = subprocess.run(
            [sys.executable, str(script), str(settings.home)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 1, (run, result.stderr[-2000:])
        assert "the program fails before closing its engine" in result.stderr
