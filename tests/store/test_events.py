"""Ledger events: transactions that change no fact (votes, gate requests...), on both backends."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

import cortex
from cortex import CortexSync, Settings
from cortex.engine import verify_export_sync
from cortex.errors import Conflict, NotFound, ValidationError
from cortex.ledger import merkle
from tests.gate.through_gate import export_through_gate


def _append(
    memory: CortexSync,
    op: str,
    subject: str | None,
    payload: Mapping[str, Any],
    *,
    tenant: str = "default",
    actor: str | None = None,
    require_fact: bool = False,
    unique: bool = False,
) -> cortex.Transaction:
    return memory._call(
        memory.engine._append_event(
            op,
            subject,
            payload,
            tenant=tenant,
            actor=actor,
            require_fact=require_fact,
            unique=unique,
        )
    )


def test_an_event_is_a_provable_ledger_entry_that_verifies(memory: CortexSync) -> None:
    fact = memory.store("the sky is blue")
    tx = _append(
        memory, "vote", fact.id, {"value": 1, "reason": None}, actor="agent-1", require_fact=True
    )
    assert (tx.seq, tx.op, tx.subject, tx.actor) == (1, "vote", fact.id, "agent-1")
    assert dict(tx.payload) == {"value": 1, "reason": None}
    assert memory.events(["vote"]) == [tx]
    assert memory.get(fact.id) == fact  # the fact row did not change
    proof = memory.inclusion_proof(1)
    assert proof.leaf_hash == merkle.leaf_hash(proof.entry)
    assert merkle.verify_inclusion(proof.leaf_hash, 1, proof.tree_size, proof.path, proof.root)
    report = memory.verify()
    assert report.ok, report.problems
    assert report.entries == 2


def test_events_are_read_by_op_subject_and_after_a_seq(memory: CortexSync) -> None:
    a, b = memory.store_many([{"content": "a"}, {"content": "b"}])
    votes = [
        _append(memory, "vote", fact.id, {"value": value}, actor=f"agent-{i}")
        for i, (fact, value) in enumerate([(a, 1), (b, -1), (a, -1)])
    ]
    request = _append(memory, "gate_request", "R1", {"action": "export"})
    assert memory.events(["vote"]) == votes
    assert memory.events(["vote"], subject=a.id) == [votes[0], votes[2]]
    assert memory.events(["vote", "gate_request"], after_seq=votes[1].seq) == [votes[2], request]
    assert memory.events(["vote"], limit=1) == votes[:1]
    assert memory.events(["deprecate"]) == []


def test_a_unique_event_is_refused_the_second_time(memory: CortexSync) -> None:
    first = _append(memory, "gate_decision", "R1", {"decision": "approve"}, unique=True)
    with pytest.raises(Conflict, match="gate_decision"):
        _append(memory, "gate_decision", "R1", {"decision": "deny"}, unique=True)
    _append(memory, "gate_decision", "R2", {"decision": "deny"}, unique=True)
    assert [tx.subject for tx in memory.events(["gate_decision"])] == ["R1", "R2"]
    assert memory.events(["gate_decision"], subject="R1") == [first]


def test_racing_unique_events_let_exactly_one_through(settings: Settings) -> None:
    async def race() -> list[object]:
        async with await cortex.Cortex.open(settings, embedder=None) as engine:
            attempts = [
                engine._append_event("gate_used", "R9", {"n": n}, tenant="t", unique=True)
                for n in range(8)
            ]
            results = await asyncio.gather(*attempts, return_exceptions=True)
            assert len(await engine.events(["gate_used"], tenant="t")) == 1
            return list(results)

    results = asyncio.run(race())
    assert sum(isinstance(r, cortex.Transaction) for r in results) == 1
    assert sum(isinstance(r, Conflict) for r in results) == 7


def test_bad_events_are_typed_errors_and_write_nothing(memory: CortexSync) -> None:
    memory.store("x")
    with pytest.raises(NotFound):
        _append(memory, "vote", "01NOTAFACT", {"value": 1}, require_fact=True)
    with pytest.raises(NotFound):
        _append(memory, "vote", "01NOTAFACT", {"value": 1}, tenant="empty", require_fact=True)
    for op in ("store", "supersede", "Vote", "", "x" * 40, "a b"):
        with pytest.raises(ValidationError):
            _append(memory, op, None, {})
    with pytest.raises(ValidationError):
        _append(memory, "vote", None, {"value": float("nan")})
    assert memory.stats().transactions == 1
    assert memory.verify().ok


def test_events_are_scoped_to_their_tenant(memory: CortexSync) -> None:
    _append(memory, "gate_request", "R1", {"action": "export"}, tenant="acme")
    assert memory.events(["gate_request"], tenant="acme")[0].tenant == "acme"
    assert memory.events(["gate_request"], tenant="other") == []
    assert memory.events(["gate_request"]) == []
    assert "acme" in memory.tenants()  # an event starts a tenant's ledger


def test_events_travel_in_an_exported_bundle(memory: CortexSync, settings: Settings) -> None:
    fact = memory.store("exported")
    _append(memory, "vote", fact.id, {"value": -1, "reason": "stale"}, actor="a")
    memory.checkpoint()
    bundle = settings.home / "bundle.cortex"
    assert export_through_gate(memory, bundle) == 5  # with the export's 3 gate entries
    report = verify_export_sync(bundle)
    assert report.ok, report.problems


def test_event_reads_check_their_arguments(memory: CortexSync) -> None:
    with pytest.raises(ValidationError):
        memory.events("vote")
    with pytest.raises(ValidationError):
        memory.events(["vote"], limit=0)
