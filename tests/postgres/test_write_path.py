"""The PostgreSQL write path: facts prepared before the tenant's lock, chained under it."""

from __future__ import annotations

import asyncio
import itertools
import time

import psycopg
import pytest

import cortex
from cortex import Settings
from cortex.errors import ValidationError
from cortex.model import FactDraft
from cortex.store.base import ListFilter, SearchData, StoreFacts
from cortex.store.postgres import PostgresStore


def test_a_writer_whose_clock_is_behind_appends_after_the_tenants_clock(
    pg_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with cortex.connect(pg_settings) as ahead, cortex.connect(pg_settings) as behind:
        first = ahead.store_many([{"content": f"first writer {i}"} for i in range(40)])
        real = time.time_ns
        # The second server's clock is 10 s slow: its facts are prepared with stamps the
        # tenant's clock has passed, so they are stamped again under the lock.
        monkeypatch.setattr(time, "time_ns", lambda: real() - 10_000_000_000)
        second = behind.store_many([{"content": f"second writer {i}"} for i in range(40)])
        monkeypatch.setattr(time, "time_ns", real)
        facts = ahead.list(limit=100).items
        assert [f.seq for f in facts] == list(range(80))
        assert [f.id for f in facts] == [f.id for f in first + second]
        assert [f.id for f in facts] == sorted(f.id for f in facts)
        stamps = [f.created_at for f in facts]
        assert all(a < b for a, b in itertools.pairwise(stamps))
        assert second[0].created_at > first[-1].created_at
        assert ahead.get(second[0].id) == second[0]
        assert ahead.verify().ok


def test_concurrent_requests_for_several_tenants_each_keep_a_dense_ledger(
    pg_settings: Settings,
) -> None:
    async def run() -> None:
        async with await cortex.open(pg_settings, embedder=None) as engine:
            for round_ in range(3):
                # Submitted together: the writer groups them into one transaction.
                alpha, beta, _, _ = await asyncio.gather(
                    *(
                        engine.store_many(
                            [{"content": f"{t} {round_} {i}", "tags": [t]} for i in range(300)],
                            tenant=t,
                        )
                        for t in ("alpha", "beta")
                    ),
                    engine.store_many([{"content": f"default {round_}"}]),
                    engine.store_many([{"content": f"default {round_} again"}]),
                )
                assert (len(alpha), len(beta)) == (300, 300)
            for tenant in ("alpha", "beta"):
                listed = (await engine.list(limit=1000, tenant=tenant, tags=[tenant])).items
                assert [f.seq for f in listed] == list(range(900))
                hits = await engine.search(f"{tenant} 2 299", mode="text", k=1, tenant=tenant)
                assert hits[0].fact.content == f"{tenant} 2 299"
            assert (await engine.stats()).transactions == 6
            assert (await engine.verify()).ok

    asyncio.run(run())


def test_a_refused_request_leaves_no_index_rows_and_spares_its_group(pg_url: str) -> None:
    async def run() -> None:
        store = await PostgresStore.open(pg_url)
        try:
            good = StoreFacts(
                "acme", (FactDraft("kept fact"),), search=(SearchData("kept fact", ""),)
            )
            bad = StoreFacts(  # two drafts, one search entry: refused before anything is sent
                "acme",
                (FactDraft("refused one"), FactDraft("refused two")),
                search=(SearchData("refused one", ""),),
            )
            outcomes = await store.apply_writes([bad, good])
            assert isinstance(outcomes[0], ValidationError)
            assert isinstance(outcomes[1], list)
            assert [f.content for f in outcomes[1]] == ["kept fact"]
            assert await store.text_candidates("acme", '"refused"', ListFilter(), 10) == []
            assert await store.count_facts("acme") == 1
        finally:
            await store.close()
        with psycopg.connect(pg_url) as conn:
            orphans = conn.execute(
                "SELECT count(*) FROM fact_text x LEFT JOIN facts f ON f.rowid_ = x.fact_rowid"
                " WHERE f.rowid_ IS NULL"
            ).fetchone()
        assert orphans == (0,)

    asyncio.run(run())
