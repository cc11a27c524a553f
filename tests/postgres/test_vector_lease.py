"""The background-vector lease on PostgreSQL: a session-level advisory lock."""

from __future__ import annotations

import asyncio

from cortex.search.lease import PostgresLease


async def test_a_postgres_lease_has_one_holder_and_is_freed_with_its_session(pg_url: str) -> None:
    mine, theirs = PostgresLease(pg_url), PostgresLease(pg_url)
    try:
        assert await asyncio.gather(mine.acquire(), mine.acquire()) == [True, True]
        assert not await theirs.acquire()
        await mine.release()
        assert await theirs.acquire()
        assert not await mine.acquire()
    finally:
        await mine.release()
        await theirs.release()
