"""The background-vector lease: one holder at a time, freed on release, safe to ask twice."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cortex.search.lease import FileLease


async def test_a_file_lease_has_one_holder_even_when_asked_concurrently(tmp_path: Path) -> None:
    path = tmp_path / "cortex.db.vectors.lock"
    mine, theirs = FileLease(path), FileLease(path)
    # Two attempts at once by the same holder: both see it held, and only one descriptor exists.
    assert await asyncio.gather(mine.acquire(), mine.acquire()) == [True, True]
    assert not await theirs.acquire()
    await mine.release()
    assert await theirs.acquire()
    assert not await mine.acquire()
    await theirs.release()
    await theirs.release()  # idempotent
    assert await mine.acquire()
    await mine.release()
