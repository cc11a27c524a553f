"""The background-vector lease on PostgreSQL: a session-level advisory lock."""

from __future__ import annotations

import asyncio

import psycopg

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


async def test_a_lost_session_frees_the_lease_and_its_holder_takes_it_again(pg_url: str) -> None:
    mine = PostgresLease(pg_url, recheck_seconds=0)  # check the session at every ask
    theirs = PostgresLease(pg_url)
    try:
        assert await mine.acquire()
        assert mine._conn is not None
        pid = mine._conn.info.backend_pid
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as admin:
            await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        # The session (and the advisory lock with it) is gone: the next ask notices and takes
        # a new session; meanwhile anybody else could have taken it.
        assert await mine.acquire()
        assert mine._conn.info.backend_pid != pid
        assert not await theirs.acquire()
    finally:
        await mine.release()
        await theirs.release()
