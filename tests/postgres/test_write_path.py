"""The PostgreSQL write path: facts prepared before the tenant's lock, chained under it."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import psycopg
import pytest
from psycopg.adapt import PyFormat
from psycopg.pq import Format

import cortex
from cortex import Settings
from cortex.errors import ValidationError
from cortex.ledger.merkle import verify_inclusion
from cortex.model import FactDraft
from cortex.store.base import ListFilter, SearchData, StoreFacts
from cortex.store.postgres import PostgresStore
from cortex.store.postgres import store as store_module


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


def _count(url: str, sql: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def test_rows_copied_ahead_at_a_seq_another_writer_took_are_moved_under_the_lock(
    pg_settings: Settings,
) -> None:
    """A server copies a group's fact and tag rows in before it locks the tenant, at the seq
    its previous group left the ledger at; when another server appended in between, the rows
    are moved to the seqs the ledger gives them."""
    with cortex.connect(pg_settings) as first, cortex.connect(pg_settings) as second:
        first.store_many([{"content": f"first {i}", "tags": ["a"]} for i in range(10)])
        assert first.engine._store._seq_hints == {"default": 10}  # the next group's guess
        second.store_many([{"content": f"second {i}"} for i in range(5)])
        again = first.store_many(
            [{"content": f"first again {i}", "tags": ["c", f"n{i}"]} for i in range(10)]
        )
        assert [f.seq for f in again] == list(range(15, 25))
        assert [first.get(f.id) for f in again] == again
        assert [f.seq for f in first.list(limit=100).items] == list(range(25))
        assert [f.id for f in first.list(limit=100, tags=["c"]).items] == [f.id for f in again]
        assert first.verify().ok  # each fact row's seq is its store entry's
    url = pg_settings.database_url
    assert url is not None
    assert _count(url, "SELECT count(*) FROM fact_tags") == 10 + 2 * 10


def test_rows_copied_ahead_for_facts_stamped_again_are_replaced(pg_settings: Settings) -> None:
    """When the tenant's clock passed the stamps a group was prepared with (another server's
    clock is ahead), its facts get new stamps and ids under the lock: the rows copied in ahead
    with the old ids are deleted, none is left behind."""
    url = pg_settings.database_url
    assert url is not None
    with cortex.connect(pg_settings) as memory:
        memory.store_many([{"content": f"before {i}", "tags": ["b"]} for i in range(10)])
        with psycopg.connect(url) as conn:
            conn.execute("UPDATE tenants SET last_ts = last_ts + 10000000 WHERE name = 'default'")
            row = conn.execute("SELECT last_ts FROM tenants WHERE name = 'default'").fetchone()
        assert row is not None
        moved = int(row[0])
        again = memory.store_many(
            [{"content": f"again {i}", "tags": ["x", f"n{i}"]} for i in range(10)]
        )
        assert [f.seq for f in again] == list(range(10, 20))
        assert again[0].created_at.timestamp() * 1_000_000 > moved
        assert [memory.get(f.id) for f in again] == again
        assert [f.id for f in memory.list(limit=100, tags=["x"]).items] == [f.id for f in again]
        assert memory.verify().ok
    assert _count(url, "SELECT count(*) FROM facts") == 20
    assert _count(url, "SELECT count(*) FROM fact_tags") == 10 + 2 * 10
    assert (
        _count(
            url,
            "SELECT count(*) FROM fact_tags g LEFT JOIN facts f"
            " ON f.tenant_id = g.tenant_id AND f.id = g.fact_id WHERE f.id IS NULL",
        )
        == 0
    )


def test_overlapping_groups_of_one_server_are_prepared_once_and_appended_in_order(
    pg_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Groups of one server overlap (the next is prepared while the previous one commits) but
    lock the tenant in the order they were prepared, so none has to be stamped again."""
    prepared: list[int] = []
    original = PostgresStore._prepare_facts

    def counting(self: PostgresStore, plan: Any, floor: int) -> int:
        prepared.append(len(plan.rows) or len(plan.request.drafts))
        return original(self, plan, floor)

    monkeypatch.setattr(PostgresStore, "_prepare_facts", counting)

    async def run() -> None:
        settings = pg_settings.with_overrides(checkpoint_every=100, write_batch_max=200)
        async with await cortex.open(settings, embedder=None) as engine:
            assert engine.writer._concurrency == PostgresStore.write_concurrency > 1
            batches = await asyncio.gather(
                *(
                    engine.store_many([{"content": f"b{b} {i}", "tags": ["t"]} for i in range(200)])
                    for b in range(8)
                )
            )
            assert engine.writer.stats.groups == 8
            assert len(prepared) == 8  # each group prepared once: never stale
            facts = []
            cursor = None
            while True:
                page = await engine.list(limit=1000, cursor=cursor)
                facts += page.items
                if (cursor := page.next_cursor) is None:
                    break
            assert [f.seq for f in facts] == list(range(1600))
            assert sorted(f.id for b in batches for f in b) == [f.id for f in facts]
            stamps = [f.created_at for f in facts]
            assert all(a < b for a, b in itertools.pairwise(stamps))
            assert len(await engine.checkpoints()) == 8
            assert (await engine.verify()).ok

    asyncio.run(run())


def _count_links(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts of `_link` calls made while planning (ahead of the lock) and in all."""
    counts = {"ahead": 0, "all": 0}
    link, plan_links = store_module._link, PostgresStore._plan_links

    def counting_link(plan: Any, head: Any) -> Any:
        counts["all"] += 1
        return link(plan, head)

    def counting_plan_links(self: PostgresStore, requests: Any, plans: Any) -> None:
        before = counts["all"]
        plan_links(self, requests, plans)
        counts["ahead"] += counts["all"] - before

    monkeypatch.setattr(store_module, "_link", counting_link)
    monkeypatch.setattr(PostgresStore, "_plan_links", counting_plan_links)
    return counts


def test_one_server_writing_alone_chains_each_group_before_locking_the_tenant(
    pg_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no other group open, a group chains its facts on the head the last one left while
    the server indexes them; under the lock that head is found, so nothing is chained again."""
    counts = _count_links(monkeypatch)
    with cortex.connect(pg_settings.with_overrides(checkpoint_every=7)) as memory:
        batches = [
            memory.store_many([{"content": f"b{b} {i}", "tags": ["t"]} for i in range(5)])
            for b in range(6)
        ]
        assert counts == {"ahead": 5, "all": 6}  # the first had no head to go on: under the lock
        assert [f.seq for b in batches for f in b] == list(range(30))
        assert memory.verify().ok
        head = memory.checkpoint()
        proof = memory.inclusion_proof(batches[3][2].id, tree_size=head.tree_size)
        assert proof.root == head.root
        assert verify_inclusion(proof.leaf_hash, 17, head.tree_size, proof.path, head.root)


def test_a_head_another_server_moved_is_chained_under_the_lock_and_stops_guessing(
    pg_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows chained on a head another server has moved since are not used; the server chains
    under the lock, guesses no more while others append, and again once its guess holds."""
    counts = _count_links(monkeypatch)
    with cortex.connect(pg_settings) as first, cortex.connect(pg_settings) as second:
        store = first.engine._store
        first.store_many([{"content": f"first {i}"} for i in range(4)])
        second.store_many([{"content": f"second {i}"} for i in range(3)])
        counts.update(ahead=0, all=0)
        moved = first.store_many([{"content": f"moved {i}"} for i in range(4)])
        assert counts == {"ahead": 1, "all": 2}  # chained ahead on seq 4, then on seq 7
        assert [f.seq for f in moved] == [7, 8, 9, 10]
        assert store._link_ahead is False
        second.store_many([{"content": "second again"}])
        counts.update(ahead=0, all=0)
        first.store_many([{"content": "not guessed"}])
        assert counts == {"ahead": 0, "all": 1}  # the guess was wrong again: still off
        first.store_many([{"content": "alone"}])
        assert store._link_ahead is True  # this time the head it left was found
        first.store_many([{"content": "guessed"}])
        assert counts == {"ahead": 1, "all": 3}
        assert [f.seq for f in first.list(limit=100).items] == list(range(15))
        assert first.verify().ok


def test_the_stores_connections_copy_bytea_with_the_dumper_of_bytes(pg_url: str) -> None:
    """`COPY ... set_types` looks dumpers up by oid; for bytea psycopg's own pick is its Python
    dumper of DB-API `Binary`, the store's connections use the (C) dumper of `bytes`."""

    async def run() -> None:
        store = await PostgresStore.open(pg_url)
        try:
            async with store._pool.connection() as conn:
                by_oid = conn.adapters.get_dumper_by_oid(17, Format.BINARY)
                assert by_oid is conn.adapters.get_dumper(bytes, PyFormat.BINARY)
                assert by_oid is not psycopg.adapters.get_dumper_by_oid(17, Format.BINARY)
        finally:
            await store.close()

    asyncio.run(run())
