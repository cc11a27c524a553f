"""The write-path hook: blocked writes leave no byte in the database, redactions are logged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import cortex
from cortex import Settings
from cortex.errors import ShieldBlocked

SECRET = "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"
EMAIL = "jane.doe@acme-corp.io"


def _database_bytes(settings: Settings) -> bytes:
    path = settings.database_path
    return b"".join(
        Path(f"{path}{suffix}").read_bytes()
        for suffix in ("", "-wal")
        if Path(f"{path}{suffix}").exists()
    )


def _with_shield(settings: Settings, **table: str) -> Settings:
    return settings.with_overrides(shield=table)


def test_store_of_a_secret_is_blocked_and_nothing_reaches_the_database_files(
    settings: Settings,
) -> None:
    with cortex.connect(settings) as memory:
        memory.store("harmless first fact")
        with pytest.raises(ShieldBlocked) as caught:
            memory.store(f"CI token {SECRET} for the release job")
        assert memory.stats().facts == 1
        assert memory.verify().ok

    assert caught.value.kind == "github_token"
    assert SECRET.encode() not in _database_bytes(settings)


def test_store_many_with_one_blocked_item_writes_none_of_the_batch(settings: Settings) -> None:
    items: list[dict[str, Any]] = [{"content": f"fact {n}"} for n in range(5)]
    items.insert(3, {"content": "ok", "tags": ["x"], "meta": {"token": SECRET}})

    with cortex.connect(settings) as memory:
        with pytest.raises(ShieldBlocked) as caught:
            memory.store_many(items)
        assert memory.stats().facts == 0

    assert (caught.value.item, caught.value.field) == (3, "meta.token")
    assert SECRET.encode() not in _database_bytes(settings)


def test_supersede_with_a_secret_is_blocked_and_the_old_fact_stays_active(
    settings: Settings,
) -> None:
    with cortex.connect(settings) as memory:
        old = memory.store("deploy token lives in vault")
        with pytest.raises(ShieldBlocked):
            memory.supersede(old.id, f"deploy token is {SECRET}", reason="inline it")
        assert memory.get(old.id).status == "active"

    assert SECRET.encode() not in _database_bytes(settings)


def test_redaction_is_stored_and_recorded_in_meta_covered_by_the_ledger(
    settings: Settings,
) -> None:
    redacting = _with_shield(settings, pii="redact")
    with cortex.connect(redacting) as memory:
        fact = memory.store(f"Escalate to {EMAIL} on Friday", tags=["escalation"])
        history = memory.history(fact.id)
        report = memory.verify()

    assert fact.content == "Escalate to [REDACTED:email] on Friday"
    assert fact.meta["_redactions"] == ["email"]
    assert history[0].fact.meta["_redactions"] == ["email"]
    assert report.ok
    assert EMAIL.encode() not in _database_bytes(settings)


def test_personal_data_is_stored_as_is_by_default(settings: Settings) -> None:
    with cortex.connect(settings) as memory:
        fact = memory.store(f"Escalate to {EMAIL}")

    assert fact.content == f"Escalate to {EMAIL}"
    assert "_redactions" not in fact.meta


def test_per_tenant_policy_applies_only_to_that_tenant(settings: Settings) -> None:
    scoped = settings.with_overrides(shield={"tenants": {"acme": {"pii": "block"}}})
    with cortex.connect(scoped) as memory:
        stored = memory.store(f"mail {EMAIL}", tenant="globex")
        with pytest.raises(ShieldBlocked):
            memory.store(f"mail {EMAIL}", tenant="acme")

    assert EMAIL in stored.content


async def test_async_engine_blocks_large_content_scanned_off_the_event_loop(
    settings: Settings,
) -> None:
    filler = "The staging database moved to db-2 after the review. " * 3000
    async with await cortex.open(settings) as engine:
        with pytest.raises(ShieldBlocked) as caught:
            await engine.store(filler + f"\nkey {SECRET}")

    assert caught.value.line == 2


def test_screen_says_what_a_write_would_store_and_stores_nothing(settings: Settings) -> None:
    redacting = _with_shield(settings, pii="redact")
    with cortex.connect(redacting) as memory:
        screened = memory.screen(
            [{"content": f"Escalate to {EMAIL}"}, {"content": "nothing to hide", "tags": ["a"]}]
        )
        with pytest.raises(ShieldBlocked) as caught:
            memory.screen([{"content": "fine"}, {"content": f"token {SECRET}"}])
        assert memory.screen([]) == []
        assert memory.stats().facts == 0
        stored = memory.store_many([{"content": f"Escalate to {EMAIL}"}])

    assert [d.content for d in screened] == ["Escalate to [REDACTED:email]", "nothing to hide"]
    assert screened[0].meta == {"_redactions": ["email"]}
    assert stored[0].content == screened[0].content
    assert stored[0].meta == screened[0].meta
    assert (caught.value.item, caught.value.kind) == (1, "github_token")
    assert SECRET.encode() not in _database_bytes(settings)
