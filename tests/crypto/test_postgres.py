"""Encryption at rest on PostgreSQL: the same round trip as SQLite, on the session's pg server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

import cortex
from cortex import Settings
from cortex.errors import ConfigError, DecryptionError, WrongKey
from tests.crypto.conftest import SECRET, without_rotation_gate
from tests.postgres.server import shared_server


@pytest.fixture
def pg_encrypted(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Settings]:
    """An encrypted store in a fresh PostgreSQL database (the key file in a temporary home)."""
    server = shared_server(request.config)
    name = server.create_database()
    home = tmp_path / "home"
    settings = Settings.load(home, embedder="none", database_url=server.url(name))
    assert cortex.init_home(settings, encrypt=True).encryption == "file"
    without_rotation_gate(home)
    yield Settings.load(home, embedder="none", database_url=server.url(name))
    server.drop_database(name)


def _sql(settings: Settings, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    assert settings.database_url is not None
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else []


def test_facts_are_sealed_in_postgres_and_read_back_in_the_clear(pg_encrypted: Settings) -> None:
    with cortex.connect(pg_encrypted) as memory:
        fact = memory.store(f"the safe opens with {SECRET}", meta={"where": SECRET})
        other = memory.store("another tenant's fact", tenant="globex")
        assert memory.get(fact.id).content == f"the safe opens with {SECRET}"
        assert memory.get(fact.id).meta == {"where": SECRET}
        assert memory.get(other.id, tenant="globex").content == "another tenant's fact"
        assert memory.verify().ok
    rows = _sql(pg_encrypted, "SELECT content, meta, key_version FROM facts")
    assert len(rows) == 2
    assert all(SECRET not in str(c) and SECRET not in str(m) and v == 1 for c, m, v in rows)
    (text_rows,) = _sql(pg_encrypted, "SELECT count(*) FROM fact_text WHERE doc::text <> ''")
    assert text_rows == (0,)  # search off: the text index holds no words


def test_a_ciphertext_copied_to_another_row_fails_in_postgres_too(pg_encrypted: Settings) -> None:
    with cortex.connect(pg_encrypted) as memory:
        first = memory.store("first")
        second = memory.store("second")
    _sql(
        pg_encrypted,
        "UPDATE facts SET content = (SELECT content FROM facts WHERE id = %s) WHERE id = %s",
        (first.id, second.id),
    )
    with cortex.connect(pg_encrypted) as memory:
        with pytest.raises(DecryptionError, match=second.id):
            memory.get(second.id)
        assert [p.kind for p in memory.verify().problems] == ["content_changed"]


async def test_rotations_round_trip_on_postgres(pg_encrypted: Settings) -> None:
    async with await cortex.open(pg_encrypted, embedder=None) as engine:
        await engine.store_many([{"content": f"fact {i}"} for i in range(120)])
        stop = asyncio.Event()

        async def writer() -> int:
            count = 0
            while not stop.is_set():
                await engine.store(f"during rotation {count}")
                count += 1
            return count

        task = asyncio.create_task(writer())
        rotation = await engine.rotate_data_key(batch=25)
        stop.set()
        during = await task
        assert rotation.version == 2
        assert (await engine.verify()).ok
        assert (await engine.stats()).facts == 120 + during
    assert _sql(pg_encrypted, "SELECT DISTINCT key_version FROM facts") == [(2,)]
    assert _sql(pg_encrypted, "SELECT version FROM data_keys") == [(2,)]
    old_key = pg_encrypted.master_key_path.read_bytes()
    with cortex.connect(pg_encrypted) as memory:
        assert memory.rotate_master_key().rewrapped == 1
    with cortex.connect(pg_encrypted) as memory:
        assert memory.get(memory.list(limit=1).items[0].id).content == "fact 0"
        assert [e.payload["kind"] for e in memory.events(["key_rotate"])] == ["data", "master"]
    pg_encrypted.master_key_path.write_bytes(old_key)
    with pytest.raises(WrongKey):
        cortex.connect(pg_encrypted)
    pg_encrypted.master_key_path.unlink()
    with pytest.raises(ConfigError, match="missing"):
        cortex.connect(pg_encrypted)
