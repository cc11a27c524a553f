"""Which process writes the background vectors of a store (`vector_writes = "background"`).

Several processes may serve one store (`cortex serve --workers N`, servers on several machines
sharing PostgreSQL). Each would otherwise sweep for facts without vectors and embed the same
ones; the model is the most expensive part of a write, so one process at a time holds this
lease and embeds for all. A process that does not hold it keeps trying at each sweep, so when
the holder ends (or dies: the operating system or the database frees the lease) another takes
over. Nothing is lost either way: which facts lack a vector is a query on the store.

- A data directory (SQLite): an exclusive `flock` on `<database>.vectors.lock`, freed when the
  file is closed or the process ends. Without `fcntl` (Windows) every process holds it.
- PostgreSQL: a session-level advisory lock on a connection of its own, freed when that
  connection ends (process exit, network loss).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import Protocol

import psycopg

__all__ = ["FileLease", "Lease", "PostgresLease"]

logger = logging.getLogger(__name__)

# The advisory lock key of the PostgreSQL lease (any constant bigint, distinct from the
# migration lock's).
VECTOR_LEASE_KEY = 0x43_4F_52_54_56_45_43  # "CORTVEC"


class Lease(Protocol):
    """Held by at most one process of a store at a time."""

    async def acquire(self) -> bool:
        """True if this process holds the lease (taking it now if it is free)."""
        ...

    async def release(self) -> None:
        """Let another process take it. Idempotent."""
        ...


class FileLease:
    """An exclusive, non-blocking `flock` on `path`."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None
        # One attempt at a time: two would open two descriptors, and the one that lost could
        # overwrite the winner's (whose lock then nobody could free).
        self._attempt = asyncio.Lock()

    async def acquire(self) -> bool:
        async with self._attempt:
            if self._fd is None:
                taking = asyncio.ensure_future(asyncio.to_thread(self._take))
                try:
                    self._fd = await asyncio.shield(taking)
                except asyncio.CancelledError:
                    # The thread takes the lock (or not) all the same: free it once it has.
                    taking.add_done_callback(_close_taken)
                    raise
            return self._fd is not None

    def _take(self) -> int | None:
        try:
            import fcntl
        except ImportError:  # no flock here: every process embeds (duplicate work, same vectors)
            return -1
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    async def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None and fd >= 0:
            os.close(fd)  # frees the flock


def _close_taken(taking: asyncio.Future[int | None]) -> None:
    """Close the descriptor a cancelled FileLease attempt got (freeing its lock)."""
    if not taking.cancelled() and taking.exception() is None:
        fd = taking.result()
        if fd is not None and fd >= 0:
            os.close(fd)


class PostgresLease:
    """A session-level advisory lock on a connection of its own to `url`."""

    def __init__(self, url: str, *, timeout: float = 5.0, recheck_seconds: float = 5.0) -> None:
        self._url = url
        self._timeout = timeout
        self._recheck_seconds = recheck_seconds
        self._checked_at = 0.0  # monotonic time the held session last answered
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._attempt = asyncio.Lock()  # one attempt at a time (as FileLease)

    async def acquire(self) -> bool:
        async with self._attempt:
            return await self._acquire()

    async def _acquire(self) -> bool:
        if self._conn is not None:
            if time.monotonic() - self._checked_at < self._recheck_seconds:
                return True  # asked after every write: the session is checked now and then
            try:
                await self._conn.execute("SELECT 1")  # still connected: still held
                self._checked_at = time.monotonic()
                return True
            except psycopg.Error:
                await self.release()  # the session ended, and the lock with it
        try:
            conn = await psycopg.AsyncConnection.connect(
                self._url, autocommit=True, connect_timeout=max(1, int(self._timeout))
            )
        except psycopg.Error as exc:
            logger.warning("cannot reach the database for the vector lease: %s", exc)
            return False
        try:
            row = await (
                await conn.execute("SELECT pg_try_advisory_lock(%s)", (VECTOR_LEASE_KEY,))
            ).fetchone()
        except psycopg.Error as exc:
            await conn.close()
            logger.warning("cannot take the vector lease: %s", exc)
            return False
        except asyncio.CancelledError:
            await asyncio.shield(conn.close())  # a session left open would keep the lock
            raise
        if row is None or row[0] is not True:
            await conn.close()
            return False
        self._conn = conn
        self._checked_at = time.monotonic()
        return True

    async def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()  # ends the session: the advisory lock is freed
