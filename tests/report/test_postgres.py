"""The report on PostgreSQL: the same numbers as on SQLite, and tampering reported by seq."""

from __future__ import annotations

import json

import jsonschema
import psycopg

from cortex import Cortex, Settings
from cortex.report import REPORT_SCHEMA, render
from tests.report.scenario import EXPECTED_BY_OP, EXPECTED_ENTRIES, populate


async def test_the_report_on_postgresql_counts_what_was_done_and_verifies(
    pg_engine: Cortex,
) -> None:
    scenario = await populate(pg_engine, tenant="acme")

    report = await pg_engine.report(tenant="acme")

    data = json.loads(render(report, "json"))
    jsonschema.Draft202012Validator(REPORT_SCHEMA).validate(data)
    body = report.body
    assert report.ok, body["integrity"]
    assert body["activity"]["by_op"] == EXPECTED_BY_OP
    assert body["integrity"]["checkpoints"]["latest"]["tree_size"] == EXPECTED_ENTRIES
    assert body["integrity"]["checkpoints"]["latest"]["signature_valid"] is True
    assert body["retention"]["backend"] == "postgresql"
    assert body["purges"]["items"][0]["approved_by"] == "admin-1"
    assert body["votes"]["contested"] == [{"fact_id": scenario.contested, "up": 1, "down": 1}]
    assert body["gate"]["by_status"]["expired"] == 1


async def test_a_changed_fact_on_postgresql_makes_the_report_fail_at_its_seq(
    pg_engine: Cortex, pg_settings: Settings
) -> None:
    scenario = await populate(pg_engine, tenant="acme")
    target = scenario.facts[4]
    assert pg_settings.database_url is not None
    with psycopg.connect(pg_settings.database_url, autocommit=True) as conn:
        conn.execute("UPDATE facts SET content = 'rewritten' WHERE id = %s", (target.id,))

    report = await pg_engine.report(tenant="acme")

    assert not report.ok
    kinds = {(p["seq"], p["kind"]) for p in report.body["integrity"]["verify"]["problems"]}
    assert (target.seq, "content_changed") in kinds
