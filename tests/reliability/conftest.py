"""Fixtures of the reliability suite: real data directories, an external SQLite write lock, and
an independent (raw SQL) census of the ledger.

Everything runs on real SQLite files under `tmp_path`; nothing of the store is mocked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apsw
import pytest

import cortex
from cortex import Settings


@pytest.fixture
def make_home(tmp_path: Path) -> Callable[..., Settings]:
    """Create an initialised data directory under tmp_path and return its Settings.

    `make_home("name", write_queue_size=2, ...)`; the environment is ignored (hermetic).
    """

    def make(name: str = "home", **overrides: Any) -> Settings:
        overrides.setdefault("embedder", "none")  # the write path, not the model, is under test
        settings = Settings.load(tmp_path / name, environ={}, **overrides)
        cortex.init_home(settings)
        return settings

    return make


@contextmanager
def _write_lock(database: Path) -> Iterator[apsw.Connection]:
    conn = apsw.Connection(str(database))
    try:
        conn.execute("BEGIN IMMEDIATE")  # takes SQLite's write lock: the store's writer now waits
        try:
            yield conn
        finally:
            conn.execute("ROLLBACK")
    finally:
        conn.close()


@pytest.fixture
def write_lock() -> Callable[[Path], Any]:
    """`with write_lock(settings.database_path): ...` holds the database's write lock from a
    separate connection (another process would do the same), so the store's writer blocks in
    its busy handler (10 s) until the block ends."""
    return _write_lock


@dataclass(frozen=True, slots=True)
class TenantCensus:
    """What the raw tables say about one tenant's ledger."""

    name: str
    next_seq: int
    transactions: int
    min_seq: int | None
    max_seq: int | None
    leaves: int

    @property
    def dense(self) -> bool:
        """Seqs are exactly 0..next_seq-1 and every entry has its Merkle leaf."""
        if self.next_seq == 0:
            return self.transactions == 0 and self.leaves == 0
        return (
            self.transactions == self.next_seq
            and self.min_seq == 0
            and self.max_seq == self.next_seq - 1
            and self.leaves == self.next_seq
        )


def _census(database: Path) -> dict[str, TenantCensus]:
    conn = apsw.Connection(str(database), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        rows = conn.execute(
            "SELECT t.name, t.next_seq,"
            " (SELECT count(*) FROM transactions x WHERE x.tenant_id = t.id),"
            " (SELECT min(seq) FROM transactions x WHERE x.tenant_id = t.id),"
            " (SELECT max(seq) FROM transactions x WHERE x.tenant_id = t.id),"
            " (SELECT count(*) FROM merkle_nodes m WHERE m.tenant_id = t.id AND m.level = 0)"
            " FROM tenants t ORDER BY t.name"
        ).fetchall()
    finally:
        conn.close()
    return {row[0]: TenantCensus(*row) for row in rows}


@pytest.fixture
def ledger_census() -> Callable[[Path], dict[str, TenantCensus]]:
    """Read the ledger's shape straight from the database file (read-only, raw SQL), as an
    independent check of what `verify()` and `stats()` report."""
    return _census


def _fact_ids(database: Path) -> dict[str, tuple[str, str | None, bool]]:
    """id -> (tenant, superseded_by, deprecated) for every fact, straight from the file."""
    conn = apsw.Connection(str(database), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        rows = conn.execute(
            "SELECT f.id, t.name, f.superseded_by, f.deprecated_at IS NOT NULL"
            " FROM facts f JOIN tenants t ON t.id = f.tenant_id"
        ).fetchall()
    finally:
        conn.close()
    return {row[0]: (row[1], row[2], bool(row[3])) for row in rows}


@pytest.fixture
def raw_facts() -> Callable[[Path], dict[str, tuple[str, str | None, bool]]]:
    """Every fact id in the file with its tenant, superseded_by and deprecated flag (raw SQL)."""
    return _fact_ids
