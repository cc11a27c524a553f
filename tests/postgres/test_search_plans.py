"""How PostgreSQL plans the store's search statements: from the indexes, whatever its statistics.

Each statement is explained on the store's own cursor, inside the store's own transaction (so
with the settings the store made there), just before the store runs it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import psycopg
import pytest

import cortex
from cortex import Settings


def _explain_each(memory: Any, marker: str) -> list[str]:
    """Have the store explain each of its statements holding `marker`; the plans, in order."""
    store = memory.engine._store
    plans: list[str] = []
    run: Callable[..., Awaitable[list[Any]]] = store._rows

    async def explained(cur: Any, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        if marker in sql:
            await cur.execute("EXPLAIN " + sql, params)
            plans.append("\n".join(row[0] for row in await cur.fetchall()))
        return await run(cur, sql, params)

    store._rows = explained  # this store only (an attribute of the instance)
    return plans


def test_text_matches_are_read_through_the_gin_index_even_when_a_scan_looks_cheaper(
    pg_settings: Settings, pg_url: str
) -> None:
    # Every fact holds "common", two hold "rare": with fresh statistics the planner believes a
    # query naming "common" matches every row, and under the statement's LIMIT it would read
    # fact_text from the start, which for the rare word alone is a whole-table read.
    with cortex.connect(pg_settings) as memory:
        memory.store_many([{"content": f"common note number {i}"} for i in range(3000)])
        rare = memory.store_many([{"content": f"common and rare finding {i}"} for i in range(2)])
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("ANALYZE")
        plans = _explain_each(memory, "ts_rank(")
        hits = memory.search("rare common", k=5, mode="text")
    assert {h.fact.id for h in hits[:2]} == {f.id for f in rare}
    assert plans, "the store ran no ranking statement"
    for plan in plans:
        assert "Seq Scan on fact_text" not in plan, plan
        assert "fact_text_doc" in plan, plan


@pytest.mark.parametrize("setting", ["on", "off"])
def test_the_planner_would_scan_fact_text_here_without_the_stores_setting(
    pg_settings: Settings, pg_url: str, setting: str
) -> None:
    """The case above is one where the plan depends on the setting (else it proves nothing)."""
    with cortex.connect(pg_settings) as memory:
        memory.store_many([{"content": f"common note number {i}"} for i in range(3000)])
        memory.store_many([{"content": f"common and rare finding {i}"} for i in range(2)])
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("ANALYZE")
        with conn.transaction():
            conn.execute(f"SET LOCAL enable_seqscan = {setting}")
            plan = "\n".join(
                row[0]
                for row in conn.execute(
                    "EXPLAIN SELECT x.fact_rowid FROM to_tsquery('cortex', 'rare | common') AS q,"
                    " LATERAL (SELECT x.fact_rowid FROM fact_text x WHERE x.doc @@ q LIMIT 2001)"
                    " AS x"
                ).fetchall()
            )
    assert ("Seq Scan on fact_text" in plan) == (setting == "on"), plan


def test_facts_found_by_rowid_are_looked_up_by_key_before_the_table_has_statistics(
    pg_settings: Settings, pg_url: str
) -> None:
    # A fresh database: nothing has analyzed `facts` yet. Without the store's fence the planner
    # ANDs the tenant index (all 3,000 of the tenant's entries) with the key lookups.
    with cortex.connect(pg_settings) as memory:
        memory.store_many(
            [
                {"content": f"deploy note {i}", "project": "ops" if i % 3 else "web"}
                for i in range(3000)
            ]
        )
        with psycopg.connect(pg_url, autocommit=True) as conn:
            analyzed = conn.execute(
                "SELECT coalesce(last_analyze, last_autoanalyze) FROM pg_stat_user_tables"
                " WHERE relname = 'facts'"
            ).fetchone()
        assert analyzed is not None
        assert analyzed[0] is None  # the case this test is about
        plans = _explain_each(memory, "rowid_ = ANY(")
        hits = memory.search("deploy note", k=5, mode="text", project="web")
    assert len(hits) == 5
    assert all(h.fact.project == "web" for h in hits)
    assert len(plans) >= 2, plans  # the filter of the matches and the facts of the hits
    for plan in plans:
        assert "facts_pkey" in plan, plan
        assert "facts_by_tenant_seq" not in plan, plan
