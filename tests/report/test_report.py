"""The report's numbers equal what was done; tampering and bad checkpoints are reported by seq."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import apsw
import jsonschema
import pytest

import cortex
from cortex import Cortex, Settings
from cortex.canonical import parse_ts
from cortex.crypto.keys import load_signing_key
from cortex.errors import ApprovalRequired
from cortex.ledger.checkpoint import sign_checkpoint
from cortex.report import REPORT_SCHEMA, body_digest, build_report, parse_period, render
from tests.report.scenario import (
    API_KEY_ACTOR,
    EXPECTED_BY_OP,
    EXPECTED_ENTRIES,
    Scenario,
    populate,
)


def _tamper(settings: Settings, sql: str, *params: object) -> None:
    conn = apsw.Connection(str(settings.database_path))
    try:
        with conn:
            conn.execute(sql, params)
    finally:
        conn.close()


async def test_every_number_of_the_report_equals_what_was_done(
    populated: tuple[Cortex, Scenario],
) -> None:
    engine, scenario = populated

    report = await engine.report()

    body = report.body
    activity = body["activity"]
    assert activity["entries"] == EXPECTED_ENTRIES == report.header["ledger_size"]
    assert activity["by_op"] == EXPECTED_BY_OP
    assert activity["facts"] == {"stored": 20, "superseded": 1, "deprecated": 3, "purged": 1}
    assert activity["first_entry"]["seq"] == 0
    assert activity["last_entry"]["seq"] == EXPECTED_ENTRIES - 1
    assert activity["timeline"]["unit"] == "day"
    assert sum(b["total"] for b in activity["timeline"]["buckets"]) == EXPECTED_ENTRIES

    actors = {a["actor"]: a for a in body["actors"]["items"]}
    assert actors["agent-a"]["by_op"] == {"gate_request": 4, "store": 12, "supersede": 1, "vote": 1}
    assert actors["agent-b"]["by_op"] == {"store": 8, "vote": 3}
    assert actors[API_KEY_ACTOR] == {
        "actor": API_KEY_ACTOR,
        "kind": "api_key",
        "total": 3,
        "by_op": {"deprecate": 3},
    }
    assert actors["admin-1"]["by_op"] == {"gate_decision": 1, "gate_used": 1, "purge": 1}
    assert body["actors"]["count"] == 7
    assert body["actors"]["by_kind"] == {"agent": 6, "api_key": 1}

    (purge,) = body["purges"]["items"]
    assert purge["fact_id"] == scenario.purged
    assert purge["reason"] == "erasure request #12"
    assert purge["approval"] == scenario.approvals["used"]
    assert (purge["approval_decision"], purge["approved_by"]) == ("approve", "admin-1")

    gate = body["gate"]
    assert gate["requests"] == 4
    assert gate["by_status"] == {
        "pending": 1,
        "approved": 0,
        "used": 1,
        "denied": 1,
        "expired": 1,
        "unknown": 0,
    }
    assert gate["decisions"] == {"approve": 1, "deny": 1}
    assert gate["used"] == 1
    status = {g["approval_id"]: g["status"] for g in gate["items"]}
    assert status == {scenario.approvals[outcome]: outcome for outcome in status.values()}
    denied = next(g for g in gate["items"] if g["status"] == "denied")
    assert (denied["action"], denied["decided_by"]) == ("export", "admin-2")

    rotations = body["key_rotations"]
    assert rotations["by_kind"] == {"data": 1, "master": 1}
    assert [(r["kind"], r["version"]) for r in rotations["items"]] == [("master", 2), ("data", 2)]

    votes = body["votes"]
    assert (votes["count"], votes["up"], votes["down"]) == (4, 2, 2)
    assert (votes["voters"], votes["facts"]) == (2, 2)
    assert votes["contested"] == [{"fact_id": scenario.contested, "up": 1, "down": 1}]

    retention = body["retention"]
    assert retention["ledger_entries"] == EXPECTED_ENTRIES
    assert retention["purged_facts"] == 1
    assert retention["checkpoint_every"] == engine.settings.checkpoint_every
    assert retention["backend"] == "sqlite"
    assert retention["facts"]["total"] == 21


async def test_a_clean_store_reports_integrity_ok_with_its_latest_signed_checkpoint(
    populated: tuple[Cortex, Scenario],
) -> None:
    engine, _ = populated

    report = await engine.report()

    integrity = report.body["integrity"]
    assert report.ok
    assert integrity["status"] == "ok"
    assert integrity["verify"]["ok"]
    latest = integrity["checkpoints"]["latest"]
    stored = (await engine.checkpoints())[-1]
    assert latest["tree_size"] == stored.tree_size == EXPECTED_ENTRIES
    assert latest["root"] == stored.root.hex()
    assert latest["signature_valid"] is True
    assert integrity["checkpoints"]["current_tree"]["root"] == stored.root.hex()


async def test_the_json_form_validates_against_the_schema_and_carries_its_body_digest(
    populated: tuple[Cortex, Scenario],
) -> None:
    engine, _ = populated
    report = await engine.report()

    data = json.loads(render(report, "json"))

    jsonschema.Draft202012Validator.check_schema(REPORT_SCHEMA)
    jsonschema.Draft202012Validator(REPORT_SCHEMA).validate(data)
    assert data["header"]["body_sha256"] == body_digest(data["body"])
    assert data["header"]["tenant"] == "default"
    assert data["header"]["cortex_version"]
    for fmt in ("md", "html"):
        assert data["header"]["body_sha256"] in render(report, fmt)


async def test_changed_fact_content_makes_the_report_say_failed_and_name_the_seq(
    populated: tuple[Cortex, Scenario], settings: Settings
) -> None:
    engine, scenario = populated
    target = scenario.facts[7]
    _tamper(settings, "UPDATE facts SET content = 'rewritten' WHERE id = ?", target.id)

    report = await engine.report()

    assert not report.ok
    problems = report.body["integrity"]["verify"]["problems"]
    assert {"seq": target.seq, "kind": "content_changed"}.items() <= problems[0].items()
    text = render(report, "md")
    assert "Integrity: FAILED" in text
    assert f"at seq {target.seq}" in text


async def test_a_changed_transaction_makes_the_report_say_failed_and_name_the_seq(
    populated: tuple[Cortex, Scenario], settings: Settings
) -> None:
    engine, _ = populated
    _tamper(settings, "UPDATE transactions SET actor = 'mallory' WHERE seq = 24")

    report = await engine.report()

    assert report.body["integrity"]["status"] == "failed"
    kinds = {(p["seq"], p["kind"]) for p in report.body["integrity"]["verify"]["problems"]}
    assert (24, "entry_altered") in kinds
    assert "mallory" in {a["actor"] for a in report.body["actors"]["items"]}


async def test_a_deleted_transaction_is_reported_as_unreadable_and_the_rest_still_counted(
    populated: tuple[Cortex, Scenario], settings: Settings
) -> None:
    engine, _ = populated
    _tamper(settings, "DELETE FROM transactions WHERE seq = 30")

    report = await engine.report()

    assert not report.ok
    assert report.body["integrity"]["unreadable_entries"] == {"count": 1, "seqs": [30]}
    assert report.body["activity"]["entries"] == EXPECTED_ENTRIES - 1


async def test_a_checkpoint_inconsistent_with_a_later_one_is_reported(
    engine: Cortex, settings: Settings
) -> None:
    await engine.store_many([{"content": f"early {i}"} for i in range(10)])
    await engine.checkpoint()
    await engine.store_many([{"content": f"later {i}"} for i in range(10)])
    await engine.checkpoint()
    # A checkpoint of 10 entries, validly signed, over a root that no ledger of ours had:
    # as if history had been rewritten after it was handed to an auditor.
    key = load_signing_key(settings.signing_key_path)
    forged = sign_checkpoint(key, "default", 10, bytes(range(32)), "2026-01-01T00:00:00.000000Z")
    _tamper(
        settings,
        "UPDATE checkpoints SET root = ?, ts = ?, signature = ? WHERE tree_size = 10",
        forged.root,
        forged.ts,
        forged.signature,
    )

    report = await engine.report()

    checkpoints = report.body["integrity"]["checkpoints"]
    assert not report.ok
    assert checkpoints["signatures_valid"] == 2  # the forger holds the key: only proofs tell
    assert checkpoints["pairs_checked"] == 2 - 1
    assert checkpoints["pairs_consistent"] == 0
    assert checkpoints["current_tree"]["checkpoints_consistent"] == 1
    assert {(f["old_size"], f["new_size"], f["against"]) for f in checkpoints["failures"]} == {
        (10, 20, "next"),
        (10, 20, "current"),
    }
    assert "checkpoint size 10" in render(report, "md")


async def test_a_checkpoint_with_a_bad_signature_is_reported(
    engine: Cortex, settings: Settings
) -> None:
    await engine.store_many([{"content": f"fact {i}"} for i in range(5)])
    await engine.checkpoint()
    _tamper(settings, "UPDATE checkpoints SET signature = ?", bytes(64))

    report = await engine.report()

    checkpoints = report.body["integrity"]["checkpoints"]
    assert checkpoints["signatures_invalid"] == [5]
    assert checkpoints["latest"]["signature_valid"] is False
    assert not report.ok


async def test_the_period_counts_only_the_entries_inside_it(engine: Cortex) -> None:
    early = await engine.store_many([{"content": f"early {i}"} for i in range(5)])
    later = await engine.store_many([{"content": f"later {i}"} for i in range(3)])
    await engine.deprecate(later[0].id, "moved")
    boundary = later[0].created_at  # the first entry of the second batch

    after = await engine.report(start=boundary)
    before = await engine.report(end=boundary - timedelta(microseconds=1))
    today = datetime.now(UTC).date()
    whole_days = await engine.report(start=today.isoformat(), end=today.isoformat())
    future = await engine.report(start=(today + timedelta(days=1)).isoformat())

    assert after.body["activity"]["by_op"] == {"deprecate": 1, "store": 3}
    assert after.body["activity"]["first_entry"]["seq"] == len(early)
    assert before.body["activity"]["by_op"] == {"store": 5}
    assert before.body["activity"]["last_entry"]["seq"] == len(early) - 1
    assert whole_days.body["activity"]["entries"] == 9
    assert future.body["activity"]["entries"] == 0
    assert future.body["activity"]["first_entry"] is None
    assert after.header["period"]["start"] == parse_period(boundary, None).start_ts
    assert future.body["retention"]["ledger_entries"] == 9  # retention covers the whole ledger
    assert "No entries in this period." in render(future, "md")


async def test_votes_cast_before_the_period_still_stand_in_it(engine: Cortex) -> None:
    (fact,) = await engine.store_many([{"content": "db-2 is the staging database"}])
    first = await engine._append_event(
        "vote", fact.id, {"value": 1, "reason": None}, tenant="default", actor="agent-a"
    )
    await engine._append_event(
        "vote", fact.id, {"value": -1, "reason": None}, tenant="default", actor="agent-b"
    )

    report = await engine.report(start=parse_ts(first.ts) + timedelta(microseconds=1))

    votes = report.body["votes"]
    assert (votes["count"], votes["down"]) == (1, 1)
    assert votes["contested"] == [{"fact_id": fact.id, "up": 1, "down": 1}]


@pytest.mark.parametrize(
    ("start", "end"),
    [("2026-03-31", "2026-03-01"), ("not a date", None), (None, "1969-12-31")],
)
async def test_a_bad_or_empty_period_is_a_validation_error(
    engine: Cortex, start: str | None, end: str | None
) -> None:
    await engine.store("one fact")
    with pytest.raises(cortex.ValidationError):
        await engine.report(start=start, end=end)


async def test_a_tenant_without_a_ledger_is_not_found(engine: Cortex) -> None:
    with pytest.raises(cortex.NotFound):
        await engine.report(tenant="nobody")


async def test_entries_of_many_unknown_ops_are_each_counted_once(engine: Cortex) -> None:
    await engine.store("a fact between the notes")
    for number in range(70):  # more op names than the scan asks for by name (64)
        await engine._append_event(f"note_{number:02d}", None, {}, tenant="default")
        await engine._append_event(f"note_{number:02d}", None, {}, tenant="default")
    await engine.store("a last fact")

    report = await engine.report()

    by_op = report.body["activity"]["by_op"]
    assert by_op.pop("store") == 2
    assert by_op == {f"note_{n:02d}": 2 for n in range(70)}
    assert report.ok


async def test_small_pages_give_the_same_report_as_large_ones(
    populated: tuple[Cortex, Scenario],
) -> None:
    engine, _ = populated
    moment = datetime.now(UTC)

    def build(page: int) -> Any:
        return build_report(
            engine,
            "default",
            public_key=engine._public_key,
            settings=engine.settings,
            entry_at=lambda seq: engine._store.transaction("default", seq),
            now=moment,
            page=page,
        )

    small, large = await build(3), await build(1000)

    assert small.body == large.body
    assert small.header["body_sha256"] == large.header["body_sha256"]


async def test_progress_is_reported_for_the_scan_the_verification_and_the_checkpoints(
    populated: tuple[Cortex, Scenario],
) -> None:
    engine, _ = populated
    calls: list[tuple[str, int, int]] = []

    await engine.report(progress=lambda step, done, total: calls.append((step, done, total)))

    assert calls[-1] == ("checkpoints", 1, 1)
    assert ("scan", EXPECTED_ENTRIES, EXPECTED_ENTRIES) in calls
    assert ("verify", 1, 1) in calls
    assert [step for step, _, _ in calls] == sorted(
        (step for step, _, _ in calls), key=["scan", "verify", "checkpoints"].index
    )


async def test_another_tenants_entries_never_reach_the_report(engine: Cortex) -> None:
    await populate(engine, tenant="acme")
    await engine.store_many([{"content": "globex only", "source": "globex-bot"}], tenant="globex")

    report = await engine.report(tenant="acme")

    assert report.tenant == "acme"
    assert report.body["activity"]["entries"] == EXPECTED_ENTRIES
    assert "globex-bot" not in json.dumps(report.to_dict())


def test_the_blocking_handle_has_the_report_too(settings: Settings) -> None:
    with cortex.connect(settings) as memory:
        memory.store("one fact", source="agent-a")
        report = memory.report()
    assert report.body["activity"]["by_op"] == {"store": 1}


async def test_disputed_facts_are_those_the_consensus_feature_marks_disputed(
    engine: Cortex,
) -> None:
    facts = await engine.store_many([{"content": f"claim {i}"} for i in range(3)])
    for number in range(6):
        await engine._append_event(
            "vote", facts[0].id, {"value": -1, "reason": None}, tenant="default", actor=f"v{number}"
        )
    await engine._append_event(
        "vote", facts[1].id, {"value": 1, "reason": None}, tenant="default", actor="v0"
    )
    status = {f.id: (await engine.consensus(f.id)).status for f in facts}
    assert status[facts[0].id] == "disputed"

    disputed = (await engine.report()).body["votes"]["disputed"]

    assert disputed["available"] is True
    assert [item["fact_id"] for item in disputed["items"]] == [
        fact_id for fact_id, found in status.items() if found == "disputed"
    ]
    assert disputed["items"][0]["score"] <= engine.settings.consensus_disputed


async def test_retention_states_the_settings_that_bound_the_store(
    populated: tuple[Cortex, Scenario],
) -> None:
    engine, _ = populated

    report = await engine.report()

    retention = report.body["retention"]
    assert retention["encrypted"] is False
    assert retention["settings"]["checkpoint_every"] == engine.settings.checkpoint_every
    assert retention["settings"]["gate_ttl"] == engine.settings.gate_ttl
    assert retention["settings"]["gated_actions"] == list(engine.settings.gated_actions)
    text = render(report, "md")
    assert f"expires {engine.settings.gate_ttl:g} s after" in text
    assert "stored unencrypted" in text


async def test_an_encrypted_store_is_reported_as_encrypted(tmp_path: Path) -> None:
    settings = Settings.load(tmp_path / "home", embedder="none", encrypted_search="vector")
    cortex.init_home(settings, encrypt=True)
    async with await cortex.open(settings) as engine:
        await engine.store("a secret-free but private fact", source="agent-a")
        report = await engine.report()

    assert report.ok
    assert report.body["retention"]["encrypted"] is True
    assert "the search indexes keep: vector" in render(report, "md")


async def test_a_purge_through_the_real_gate_is_reported_with_its_approval(engine: Cortex) -> None:
    """End to end with the gate and purge features: request, approval, purge, report."""
    (fact,) = await engine.store_many([{"content": "Jane Roe lives at 1 Main St"}])
    with pytest.raises(ApprovalRequired) as asked:
        await engine.purge(fact.id, "erasure request #7", actor="dpo")
    decision = await engine.approve(asked.value.approval_id, reason="verified", actor="admin-9")
    await engine.purge(fact.id, "erasure request #7", approval=decision.token, actor="dpo")

    report = await engine.report()

    assert report.ok
    (purge,) = report.body["purges"]["items"]
    assert (purge["fact_id"], purge["reason"]) == (fact.id, "erasure request #7")
    assert (purge["approval"], purge["approved_by"]) == (asked.value.approval_id, "admin-9")
    (request,) = report.body["gate"]["items"]
    assert (request["action"], request["status"]) == ("purge", "used")
    assert (request["decided_by"], request["decision_reason"]) == ("admin-9", "verified")
    assert report.body["retention"]["purged_facts"] == 1
