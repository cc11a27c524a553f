"""Damaged files: a clear typed error (`StoreError`), never a crash; a torn WAL tail recovers.

The damage is done to real database files after a real engine wrote and closed them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import cortex
from cortex import Settings, StoreError

BATCHES = 10
BATCH = 50


def _fill(settings: Settings) -> None:
    with cortex.connect(settings, checkpoint_every=100) as mem:
        for batch in range(BATCHES):
            mem.store_many(
                [{"content": f"batch {batch} item {i} " + "z" * 200} for i in range(BATCH)]
            )


def _garbage_header(database: Path) -> None:
    with database.open("r+b") as handle:
        handle.write(os.urandom(100))


def _truncated(database: Path) -> None:
    os.truncate(database, database.stat().st_size // 3)


def _garbage_inside(database: Path) -> None:
    # Every page after the first three is overwritten: the ledger's tables cannot be read.
    size = database.stat().st_size
    with database.open("r+b") as handle:
        handle.seek(3 * 4096)
        handle.write(os.urandom(size - 3 * 4096))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("damage", [_garbage_header, _truncated, _garbage_inside])
def test_a_damaged_database_file_raises_store_error_not_a_crash(
    make_home: Callable[..., Settings], damage: Callable[[Path], None]
) -> None:
    settings = make_home()
    _fill(settings)
    assert not Path(f"{settings.database_path}-wal").exists()  # all of it is in the main file
    damage(settings.database_path)
    # Either opening or the first full read (verify) must fail with the typed error.
    with pytest.raises(StoreError) as raised, cortex.connect(settings) as mem:
        mem.verify()
    assert str(settings.database_path) in str(raised.value) or "malformed" in str(raised.value)


@pytest.mark.timeout(60)
def test_a_torn_wal_tail_recovers_to_the_last_complete_transaction(
    make_home: Callable[..., Settings], tmp_path: Path, ledger_census: Any
) -> None:
    """A crash while the last group was being written leaves a partial frame at the WAL's end.
    Recovery must drop exactly that (unacknowledged) group, atomically, and keep the rest."""
    settings = make_home()
    with cortex.connect(settings, checkpoint_every=100) as mem:
        for batch in range(BATCHES):
            mem.store_many([{"content": f"batch {batch} item {i}"} for i in range(BATCH)])
        # The writer is idle and every group is committed: copy the files as a crash would
        # leave them (without the shared-memory index, which recovery rebuilds).
        crashed = tmp_path / "crashed"
        shutil.copytree(settings.home, crashed, ignore=shutil.ignore_patterns("*-shm"))
    wal = crashed / f"{settings.database_path.name}-wal"
    assert wal.stat().st_size > 2 * 4096, "expected the groups to still be in the WAL"
    # Tear the last frame (the commit frame of the last group) and add garbage after it.
    os.truncate(wal, wal.stat().st_size - 1000)
    with wal.open("ab") as handle:
        handle.write(os.urandom(3000))

    recovered = settings.with_overrides(home=crashed)
    with cortex.connect(recovered) as mem:
        report = mem.verify()
        assert report.problems == ()
        contents: list[str] = []
        cursor = None
        while True:
            page = mem.list(limit=1000, cursor=cursor)
            contents += [fact.content for fact in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        by_batch = {b: sum(c.startswith(f"batch {b} ") for c in contents) for b in range(BATCHES)}
        assert all(by_batch[b] == BATCH for b in range(BATCHES - 1)), by_batch
        assert by_batch[BATCHES - 1] == 0, f"the torn group must vanish whole: {by_batch}"
        # The recovered ledger continues densely.
        fact = mem.store("after recovery")
        assert fact.seq == (BATCHES - 1) * BATCH
        assert mem.verify().ok
    assert all(t.dense for t in ledger_census(recovered.database_path).values())
