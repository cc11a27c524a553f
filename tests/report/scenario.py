"""A tenant's recorded life for the report tests: facts, votes, gate traffic, a purge, rotations.

Votes, gate events and key rotations are appended with `Cortex._append_event` and exactly the
payloads of the shared vocabulary (issue 6), so these tests do not depend on how the consensus,
gate and crypto features call it; the purge goes through the store's `Purge` write request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cortex import Cortex, Fact
from cortex.canonical import format_ts, to_micros
from cortex.store.base import Purge

API_KEY_ACTOR = "key-0123456789abcdef"
HOSTILE = "<script>alert('x')</script> | **bold** [link](http://evil.example)"

# Entries the scenario writes, by op: what every report of the whole ledger must count.
EXPECTED_BY_OP = {
    "audit_note": 2,
    "deprecate": 3,
    "gate_decision": 2,
    "gate_request": 4,
    "gate_used": 1,
    "key_rotate": 2,
    "purge": 1,
    "store": 20,
    "supersede": 1,
    "vote": 4,
}
EXPECTED_ENTRIES = sum(EXPECTED_BY_OP.values())


@dataclass(frozen=True)
class Scenario:
    """What the scenario wrote: its facts, the approval ids by outcome, the purged fact."""

    facts: list[Fact]
    approvals: dict[str, str]
    purged: str
    contested: str


def _ts(moment: datetime) -> str:
    return format_ts(to_micros(moment))


async def populate(engine: Cortex, tenant: str = "default") -> Scenario:
    """Write the scenario into `tenant` (see EXPECTED_BY_OP) and sign a checkpoint."""
    items = [
        {"content": f"fact {i} of {tenant}", "source": "agent-a" if i < 12 else "agent-b"}
        for i in range(20)
    ]
    facts = await engine.store_many(items, tenant=tenant)
    for fact in facts[:3]:
        await engine.deprecate(fact.id, "no longer true", actor=API_KEY_ACTOR, tenant=tenant)
    await engine.supersede(facts[5].id, "fact 5, corrected", reason="typo", tenant=tenant)

    async def event(op: str, subject: str | None, payload: dict[str, object], actor: str) -> None:
        await engine._append_event(op, subject, payload, tenant=tenant, actor=actor)

    await event("vote", facts[10].id, {"value": 1, "reason": None}, "agent-a")
    await event("vote", facts[10].id, {"value": -1, "reason": "wrong host"}, "agent-b")
    await event("vote", facts[11].id, {"value": 1, "reason": None}, "agent-b")
    await event("vote", facts[11].id, {"value": -1, "reason": "changed my mind"}, "agent-b")

    now = datetime.now(UTC)
    approvals = {
        "used": "01JZ00000000000000000000A1",
        "denied": "01JZ00000000000000000000A2",
        "pending": "01JZ00000000000000000000A3",
        "expired": "01JZ00000000000000000000A4",
    }
    requests = {
        "used": ("purge", {"fact_id": facts[15].id}, now + timedelta(hours=1)),
        "denied": ("export", {}, now + timedelta(hours=1)),
        "pending": ("bulk_deprecate", {"count": 40}, now + timedelta(days=1)),
        "expired": ("rotate_data", {"tenant": tenant}, now - timedelta(seconds=1)),
    }
    for outcome, (action, params, expires) in requests.items():
        payload = {
            "action": action,
            "params": params,
            "params_digest": "ab" * 32,
            "expires_at": _ts(expires),
        }
        await event("gate_request", approvals[outcome], payload, "agent-a")
    await engine._append_event(
        "gate_decision",
        approvals["used"],
        {"decision": "approve", "reason": None},
        tenant=tenant,
        actor="admin-1",
        unique=True,
    )
    await engine._append_event(
        "gate_decision",
        approvals["denied"],
        {"decision": "deny", "reason": HOSTILE},
        tenant=tenant,
        actor="admin-2",
        unique=True,
    )
    await engine._append_event(
        "gate_used",
        approvals["used"],
        {"action": "purge"},
        tenant=tenant,
        actor="admin-1",
        unique=True,
    )
    await engine._write(
        Purge(
            tenant, facts[15].id, "erasure request #12", actor="admin-1", approval=approvals["used"]
        )
    )
    await event("key_rotate", None, {"kind": "master", "tenant": None, "version": 2}, "ops")
    await event("key_rotate", None, {"kind": "data", "tenant": tenant, "version": 2}, "ops")
    # An op of no feature known to the report: found by the gaps it leaves in the known ops.
    await event("audit_note", None, {"note": "quarterly review"}, "auditor")
    await event("audit_note", None, {"note": "follow-up"}, "auditor")
    await engine.checkpoint(tenant=tenant)
    return Scenario(facts, approvals, facts[15].id, facts[10].id)
