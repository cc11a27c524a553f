"""vector_writes = "background": facts are acknowledged before their vectors exist, and get them."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import apsw
import numpy as np
import pytest

import cortex
from cortex import Settings
from cortex.engine import _IndexDraft
from cortex.errors import ConfigError
from cortex.search.backfill import VectorBackfill
from cortex.search.embedder import MiniLMEmbedder
from cortex.store.base import ReindexFacts, SearchData

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


class Counting:
    """The real model, counting the texts it embeds."""

    def __init__(self, inner: MiniLMEmbedder) -> None:
        self.inner = inner
        self.dim = inner.dim
        self.model_id = inner.model_id
        self.texts = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.texts += len(texts)
        return self.inner.embed(texts)


async def _until(condition: Callable[[], Awaitable[bool]], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        await asyncio.sleep(0.05)


async def _wait_until_embedded(engine: cortex.Cortex, model_id: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while await engine._store.facts_to_index("default", model_id=model_id, after_rowid=0, limit=1):
        assert time.monotonic() < deadline, "the background vectors were not written"
        await asyncio.sleep(0.05)


async def test_one_process_at_a_time_writes_the_background_vectors(
    settings: Settings, embedder: MiniLMEmbedder
) -> None:
    """Two engines on one store (as two server workers): the one holding the lease embeds the
    facts written through the other, which embeds nothing; when the holder closes, the other
    takes over at its next sweep."""
    background = settings.with_overrides(vector_writes="background")
    first, second = Counting(embedder), Counting(embedder)
    holder = await cortex.open(background, embedder=first)
    try:
        assert holder._backfill is not None
        await _until(holder._backfill.leading)  # opened first: takes the lease at once
        async with await cortex.open(background, embedder=second) as later:
            assert later._backfill is not None
            await later.store_many([{"content": text} for text in FACTS])
            await _wait_until_embedded(holder, embedder.model_id, 60)  # at its next sweep
            assert first.texts == len(FACTS)
            assert second.texts == 0
            # The holder closes and frees the lease: `later` takes it at its next try (made
            # now rather than in up to 5 s) and embeds its own writes from then on.
            await holder.aclose()
            later._backfill._next_try = 0.0
            one = await later.store("written after the holder closed")
            await _wait_until_embedded(later, embedder.model_id, 60)
            assert second.texts == 1
            hits = await later.search("after the holder closed", mode="vector", k=1)
            assert hits[0].fact == one
    finally:
        await holder.aclose()


async def test_vectors_written_behind_leave_the_text_index_alone(
    settings: Settings, embedder: MiniLMEmbedder
) -> None:
    """A vectors-only reindex (what the background task writes) changes no text row: given
    empty text, the fact is still found by its words; a full reindex would have emptied them."""
    async with await cortex.open(settings) as engine:
        fact = await engine.store("the nightly backup job writes to bucket cold-7")
        (row,) = await engine._store.facts_to_index(
            "default", model_id=embedder.model_id, after_rowid=0, limit=10
        )
        vector = embedder.embed([fact.content])[0].tobytes()
        blank = SearchData("", "", vector, embedder.model_id)
        assert await engine._write(ReindexFacts("default", (row[0],), (blank,), text=False)) == 1
        assert [h.fact.id for h in await engine.search("cold-7 bucket", mode="text")] == [fact.id]
        assert await engine._store.last_vector_rowid("default") == row[0]
        assert await engine._write(ReindexFacts("default", (row[0],), (blank,))) == 1
        assert await engine.search("cold-7 bucket", mode="text") == []


async def test_closing_right_after_a_wake_up_stops_the_task() -> None:
    """`aclose` cancels the task in the loop pass where a write's wake-up lands: the task must
    stop (with `asyncio.wait_for` on Python 3.11 the cancellation was swallowed and `aclose`
    waited forever; a PostgreSQL store test hung in CI this way)."""

    async def no_tenants() -> list[str]:
        return []

    async def nothing_pending(tenant: str, after: int, limit: int) -> list[Any]:
        return []

    async def index(tenant: str, rows: Any) -> None:
        raise AssertionError("nothing to index")

    backfill = VectorBackfill(
        tenants=no_tenants, pending=nothing_pending, index=index, sweep_seconds=3600
    )
    backfill.start()
    for _ in range(5):  # the first sweep runs, then the task waits for a wake-up
        await asyncio.sleep(0)
    backfill.wake("default")
    await asyncio.sleep(0)  # the wake-up is delivered; the task has not resumed yet
    async with asyncio.timeout(5):
        await backfill.aclose()


async def test_closing_stops_the_task_even_if_a_call_swallows_the_cancellation() -> None:
    """Third-party code (a driver's connect on Python 3.11) may lose a cancellation: the task
    is also asked to stop, and ends at its next check instead of running on."""
    reading = asyncio.Event()

    async def tenants() -> list[str]:
        return ["default"]

    async def swallowing(tenant: str, after: int, limit: int) -> list[Any]:
        reading.set()
        with contextlib.suppress(asyncio.CancelledError):  # a cancellation lost on the way
            await asyncio.Event().wait()  # of a read that never answers
        return []

    async def index(tenant: str, rows: Any) -> None:
        raise AssertionError("nothing to index")

    backfill = VectorBackfill(tenants=tenants, pending=swallowing, index=index, sweep_seconds=3600)
    backfill.start()
    await reading.wait()
    async with asyncio.timeout(5):
        await backfill.aclose()
