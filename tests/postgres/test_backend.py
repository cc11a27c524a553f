"""PostgreSQL-specific behaviour: same bytes as SQLite, tampering named, outages, migrations."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

import cortex
from cortex import CortexSync, Settings
from cortex.errors import StoreUnavailable
from cortex.store.postgres import PostgresStore, redact_url
from cortex.store.postgres.schema import MIGRATIONS
from tests.postgres.server import PgServer

_T0 = 1_780_000_000_000_000_000  # a fixed wall clock (ns): both stores then tick alike


def _same_operations(memory: CortexSync) -> None:
    facts = memory.store_many(
        [{"content": f"fact {i}", "tags": ["t", f"n{i % 3}"], "meta": {"i": i}} for i in range(37)]
    )
    memory.deprecate(facts[5].id, "obsolete")
    memory.supersede(facts[7].id, "fact 7, corrected", reason="typo")
    memory.checkpoint()
    memory.store_many([{"content": f"late {i}"} for i in range(5)])


@pytest.fixture
def both(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[CortexSync, CortexSync]]:
    """A SQLite and a PostgreSQL store with one signing key, a frozen clock and seeded ids.

    One tenant: SQLite keeps one clock per store, PostgreSQL one per tenant (several servers
    share it), so only a single tenant's timestamps tick alike on both.
    """
    monkeypatch.setattr(time, "time_ns", lambda: _T0)
    sqlite = Settings.load(tmp_path / "home", embedder="none", checkpoint_every=16)
    cortex.init_home(sqlite)
    pg = sqlite.with_overrides(database_url=pg_url)
    with cortex.connect(sqlite) as lite, cortex.connect(pg) as post:
        for handle in (lite, post):
            handle.engine._store._random = random.Random(7)  # the same fact ids on both
            _same_operations(handle)
        yield lite, post


def test_proofs_roots_and_checkpoints_equal_sqlites_for_the_same_operations(
    both: tuple[CortexSync, CortexSync],
) -> None:
    lite, post = both
    size = lite.stats().transactions
    assert size == post.stats().transactions == 44  # 37 + 2 + 5 entries
    assert lite.list(limit=100, include_inactive=True) == post.list(
        limit=100, include_inactive=True
    )
    for seq in range(size):
        assert lite.inclusion_proof(seq) == post.inclusion_proof(seq)
    for old in range(size + 1):
        assert lite.consistency_proof(old) == post.consistency_proof(old)
    assert lite.checkpoints() == post.checkpoints()
    assert lite.history(lite.list(limit=10).items[0].id) == post.history(
        post.list(limit=10).items[0].id
    )
    assert post.verify().ok


def _tamper(url: str, *statements: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for sql in statements:
            conn.execute(sql)  # type: ignore[arg-type]


@pytest.fixture
def filled(pg_settings: Settings) -> Iterator[tuple[CortexSync, list[cortex.Fact]]]:
    """A PostgreSQL store with 40 facts, one deprecation and one supersession (42 entries)."""
    with cortex.connect(pg_settings, checkpoint_every=16) as handle:
        facts = handle.store_many([{"content": f"fact {i}", "tags": ["t"]} for i in range(40)])
        handle.deprecate(facts[5].id, "obsolete")
        handle.supersede(facts[7].id, "fact 7, corrected")
        yield handle, facts


def _problems(memory: CortexSync) -> set[tuple[int | None, str]]:
    return {(p.seq, p.kind) for p in memory.verify().problems}


def test_tampering_in_the_database_is_named_by_seq(
    filled: tuple[CortexSync, list[cortex.Fact]], pg_settings: Settings
) -> None:
    memory, facts = filled
    assert memory.verify().ok
    assert pg_settings.database_url is not None
    _tamper(
        pg_settings.database_url,
        f"UPDATE facts SET content = 'rewritten' WHERE id = '{facts[12].id}'",
        "UPDATE transactions SET actor = 'mallory' WHERE seq = 20",
        "DELETE FROM transactions WHERE seq = 30",
        "UPDATE checkpoints SET signature = '\\x00'::bytea",
        f"UPDATE facts SET deprecated_at = NULL WHERE id = '{facts[5].id}'",
    )
    problems = _problems(memory)
    assert (12, "content_changed") in problems
    assert (20, "entry_altered") in problems
    assert (30, "entry_missing") in problems
    assert (39, "checkpoint_signature_invalid") in problems
    assert (40, "state_changed") in problems


def test_an_outage_fails_requests_with_a_typed_error_and_the_store_recovers(
    pg_server: PgServer, pg_settings: Settings
) -> None:
    # write_timeout also bounds how long a request waits for a database connection.
    with cortex.connect(pg_settings, write_timeout=1.0) as memory:
        memory.store("before the outage")
        pg_server.stop()
        try:
            with pytest.raises(StoreUnavailable):
                memory.store("during the outage")
            with pytest.raises(StoreUnavailable):
                memory.list()
        finally:
            pg_server.start()
        deadline = time.monotonic() + 30
        while True:
            try:
                memory.store("after the outage")
                break
            except StoreUnavailable:
                assert time.monotonic() < deadline, "the store did not recover"
                time.sleep(0.2)
        assert [f.content for f in memory.list().items] == ["before the outage", "after the outage"]
        assert memory.engine.writer.running
        assert memory.verify().ok


def test_an_unreachable_database_is_store_unavailable_without_its_password(tmp_path: Path) -> None:
    url = f"postgresql://cortex:s3cret@/nowhere?host={tmp_path}"
    with pytest.raises(StoreUnavailable) as caught:
        asyncio.run(PostgresStore.open(url, timeout=1))
    assert "s3cret" not in str(caught.value)
    assert redact_url(url) == f"postgresql://cortex:***@/nowhere?host={tmp_path}"


def test_migrations_apply_once_even_when_servers_start_together(pg_server: PgServer) -> None:
    name = f"cortex_empty_{int(time.time() * 1000) % 1_000_000}"
    pg_server.admin(f"CREATE DATABASE {name}")
    try:
        url = pg_server.url(name)

        async def start_many() -> list[int]:
            return list(await asyncio.gather(*(PostgresStore.migrate(url) for _ in range(4))))

        assert asyncio.run(start_many()) == [len(MIGRATIONS)] * 4
        with psycopg.connect(url) as conn:
            versions = conn.execute("SELECT version FROM cortex_schema ORDER BY version")
            assert [r[0] for r in versions.fetchall()] == list(range(1, len(MIGRATIONS) + 1))
    finally:
        pg_server.drop_database(name)


def test_connect_accepts_a_database_url(
    pg_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CORTEX_HOME", str(pg_settings.home))
    assert pg_settings.database_url is not None
    with cortex.connect(pg_settings.database_url, embedder=None) as memory:
        fact = memory.store("opened by URL")
        assert memory.settings.database_url == pg_settings.database_url
    with cortex.connect(pg_settings) as again:
        assert again.get(fact.id).content == "opened by URL"
