"""vector_writes = "background": facts are acknowledged before their vectors exist, and get them."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import apsw
import pytest

import cortex
from cortex import Settings
from cortex.engine import _IndexDraft
from cortex.errors import ConfigError
from cortex.search.embedder import MiniLMEmbedder
from cortex.store.base import ReindexFacts

FACTS = [
    "the billing service is owned by the payments team",
    "staging database db-2 lives in eu-west-1",
    "Alice prefers meetings after ten in the morning",
    "deploys to production need two approvals",
]


def _settings(tmp_path: Path, **extra: object) -> Settings:
    settings = Settings.load(tmp_path / "home", vector_writes="background", **extra)
    if not settings.database_path.exists():
        cortex.init_home(settings)
    return settings


async def test_writes_are_acknowledged_first_and_vectors_follow(
    settings: Settings, embedder: MiniLMEmbedder
) -> None:
    background = settings.with_overrides(vector_writes="background")
    async with await cortex.open(background, embedder=embedder) as engine:
        stored = await engine.store_many([{"content": text} for text in FACTS])
        one = await engine.store("the cache is flushed every night at 03:00")
        # Found by its words at once, whatever the vectors' state.
        words = await engine.search("cache flushed", mode="text")
        assert [hit.fact.id for hit in words] == [one.id]
        assert await engine.flush_vectors() >= 0
        assert (
            await engine._store.facts_to_index(
                "default", model_id=embedder.model_id, after_rowid=0, limit=100
            )
            == []
        )
        meaning = await engine.search("who runs payments?", mode="vector", k=1)
        assert meaning[0].fact.id == stored[0].id
        assert await engine.flush_vectors() == 0  # nothing left to do
        assert (await engine.verify()).ok  # vectors are derived data: no ledger entries


async def test_the_background_task_catches_up_without_being_asked(
    settings: Settings, embedder: MiniLMEmbedder
) -> None:
    # Facts written by a text-only engine, then opened with background vectors: the start-up
    # sweep embeds them, and a later write is embedded soon after its acknowledgement.
    async with await cortex.open(settings) as engine:
        await engine.store_many([{"content": text} for text in FACTS], tenant="acme")
    background = settings.with_overrides(vector_writes="background")
    async with await cortex.open(background, embedder=embedder) as engine:
        await engine.store("one more fact about the release train")
        deadline = time.monotonic() + 60
        while True:
            pending = [
                await engine._store.facts_to_index(
                    tenant, model_id=embedder.model_id, after_rowid=0, limit=100
                )
                for tenant in ("acme", "default")
            ]
            if pending == [[], []]:
                break
            assert time.monotonic() < deadline, pending
            await asyncio.sleep(0.05)
        hits = await engine.search("approvals for production", mode="vector", tenant="acme")
        assert hits[0].fact.content == FACTS[3]


async def test_a_fact_purged_meanwhile_gets_no_search_data(
    settings: Settings, embedder: MiniLMEmbedder
) -> None:
    ungated = settings.with_overrides(vector_writes="background", gated_actions=())
    async with await cortex.open(ungated, embedder=embedder) as engine:
        fact = await engine.store("Jane Doe lives at 12 Elm Street")
        rows = await engine._store.facts_to_index(
            "default", model_id=embedder.model_id, after_rowid=0, limit=10
        )
        (read,) = [row for row in rows if row[1].startswith("Jane")]
        search = await engine._search_data([_IndexDraft(read[1], ())])  # what the task read
        await engine.purge(fact.id, "erasure request")
        # The background write of what was read before the purge lands after it: skipped.
        assert await engine._write(ReindexFacts("default", (read[0],), search)) == 0
        assert await engine.search("Elm Street", mode="text") == []
    counts = _counts(ungated, read[0])
    assert counts == (0, 0), counts


def _counts(settings: Settings, rowid: int) -> tuple[int, int]:
    """(text rows, vectors) the store keeps for the fact at `rowid`."""
    if settings.database_url is not None:
        import psycopg

        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            text = conn.execute("SELECT count(*) FROM fact_text WHERE fact_rowid = %s", (rowid,))
            texts = text.fetchone()
            vectors = conn.execute(
                "SELECT count(*) FROM fact_vectors WHERE fact_rowid = %s", (rowid,)
            ).fetchone()
        assert texts is not None
        assert vectors is not None
        return int(texts[0]), int(vectors[0])
    conn = apsw.Connection(str(settings.database_path))
    try:
        texts = list(conn.execute("SELECT count(*) FROM fact_text WHERE rowid = ?", (rowid,)))
        vectors = list(
            conn.execute("SELECT count(*) FROM fact_vectors WHERE fact_rowid = ?", (rowid,))
        )
    finally:
        conn.close()
    return int(texts[0][0]), int(vectors[0][0])


def test_the_setting_is_checked() -> None:
    with pytest.raises(ConfigError, match="vector_writes"):
        Settings.load("/tmp/x", vector_writes="later")
