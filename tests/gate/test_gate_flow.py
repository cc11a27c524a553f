"""The approval gate through the engine: request, list, decide, redeem once; on a real store."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from pathlib import Path

import pytest

import cortex
from cortex import CortexSync, Settings
from cortex.canonical import parse_ts
from cortex.errors import (
    ApprovalDenied,
    ApprovalExpired,
    ApprovalForeignTenant,
    ApprovalInvalid,
    ApprovalMismatch,
    ApprovalReplayed,
    ApprovalRequired,
    ConfigError,
    Conflict,
    GateFull,
    NotFound,
)
from cortex.gate import TokenClaims, load_gate_key, params_digest, sign_token


def _ask_purge(memory: CortexSync, fact_id: str, reason: str = "erasure request") -> str:
    with pytest.raises(ApprovalRequired) as asked:
        memory.purge(fact_id, reason)
    assert asked.value.action == "purge"
    return asked.value.approval_id


def _token(memory: CortexSync, approval_id: str, **options: str) -> str:
    token = memory.approve(approval_id, **options).token
    assert token is not None
    return token


def test_request_list_approve_redeem_runs_the_action_once(memory: CortexSync) -> None:
    fact = memory.store("Jane Doe lives at 12 Elm Street")

    approval_id = _ask_purge(memory, fact.id)
    pending = memory.approvals()
    assert [(a.id, a.state, a.action) for a in pending] == [(approval_id, "pending", "purge")]
    assert pending[0].params == {
        "fact_id": fact.id,
        "reason": "erasure request",
        "all_versions": False,
    }
    assert memory.get(fact.id).content == "Jane Doe lives at 12 Elm Street"  # nothing ran yet

    decision = memory.approve(approval_id, reason="checked the request", actor="dpo")
    assert (decision.approval.state, decision.approval.decided_by) == ("approved", "dpo")
    assert decision.token is not None
    purged = memory.purge(fact.id, "erasure request", approval=decision.token)

    assert [f.status for f in purged] == ["purged"]
    assert memory.get(fact.id).content == ""
    assert memory.approvals() == []
    (used,) = memory.approvals(include_all=True)
    assert used.state == "used"
    with pytest.raises(Conflict):  # already purged: nothing left to run, token or not
        memory.purge(fact.id, "erasure request", approval=decision.token)


def test_every_request_and_decision_is_a_ledger_entry_and_verify_passes(
    memory: CortexSync,
) -> None:
    fact = memory.store("to erase")
    approval_id = _ask_purge(memory, fact.id)
    token = _token(memory, approval_id)
    memory.purge(fact.id, "erasure request", approval=token)
    denied_id = _ask_purge(memory, memory.store("to keep").id, "not really")
    memory.deny(denied_id, reason="no legal basis")

    ops = [(tx.op, tx.subject) for tx in memory.events(["gate_request", "gate_decision"])]
    used = memory.events(["gate_used"])
    purge = memory.events(["purge"])
    report = memory.verify()

    assert ops == [
        ("gate_request", approval_id),
        ("gate_decision", approval_id),
        ("gate_request", denied_id),
        ("gate_decision", denied_id),
    ]
    assert [tx.subject for tx in used] == [approval_id]
    assert [(tx.subject, tx.payload["approval"]) for tx in purge] == [(fact.id, approval_id)]
    decisions = memory.events(["gate_decision"])
    assert [tx.payload["decision"] for tx in decisions] == ["approve", "deny"]
    assert report.ok, report.problems
    assert report.purged == 1


def test_a_denied_approval_gives_no_token_and_asking_again_makes_a_new_one(
    memory: CortexSync,
) -> None:
    fact = memory.store("keep me")
    first = _ask_purge(memory, fact.id)

    decision = memory.deny(first, reason="not a valid request")
    second = _ask_purge(memory, fact.id)

    assert (decision.approval.state, decision.token) == ("denied", None)
    assert second != first
    assert memory.get(fact.id).content == "keep me"


def test_asking_twice_before_a_decision_reuses_the_pending_approval(memory: CortexSync) -> None:
    fact = memory.store("twice")

    assert _ask_purge(memory, fact.id) == _ask_purge(memory, fact.id)
    assert len(memory.approvals()) == 1


def test_a_second_decision_is_a_conflict(memory: CortexSync) -> None:
    approval_id = _ask_purge(memory, memory.store("x").id)
    memory.approve(approval_id)

    with pytest.raises(Conflict, match="already decided"):
        memory.deny(approval_id)
    with pytest.raises(Conflict):
        memory.approve(approval_id)


async def test_two_admins_deciding_at_once_get_one_decision(engine: cortex.Cortex) -> None:
    fact = await engine.store("raced")
    with pytest.raises(ApprovalRequired) as asked:
        await engine.purge(fact.id, "race")
    approval_id = asked.value.approval_id

    results = await asyncio.gather(
        engine.approve(approval_id, actor="alice"),
        engine.deny(approval_id, actor="bob"),
        return_exceptions=True,
    )

    assert sum(isinstance(r, Conflict) for r in results) == 1
    assert len(await engine.events(["gate_decision"], subject=approval_id)) == 1


def test_pending_approvals_survive_a_restart(settings: Settings) -> None:
    with cortex.connect(settings) as memory:
        fact = memory.store("survives")
        approval_id = _ask_purge(memory, fact.id)

    with cortex.connect(settings) as reopened:
        assert [a.id for a in reopened.approvals()] == [approval_id]
        token = _token(reopened, approval_id)

    with cortex.connect(settings) as again:
        assert [a.state for a in again.approvals()] == ["approved"]
        again.purge(fact.id, "erasure request", approval=token)
        assert again.get(fact.id).status == "purged"


def test_an_approval_expires_undecided_and_cannot_be_approved(settings: Settings) -> None:
    with cortex.connect(settings, gate_ttl=0.5) as memory:
        approval_id = _ask_purge(memory, memory.store("soon stale").id)
        time.sleep(0.6)

        (expired,) = memory.approvals(include_all=True)
        with pytest.raises(ApprovalExpired):
            memory.approve(approval_id)
        assert memory.approvals() == []

    assert expired.state == "expired"
    assert parse_ts(expired.expires_at) > parse_ts(expired.requested_at)


def test_a_token_used_after_the_expiry_is_refused(settings: Settings) -> None:
    with cortex.connect(settings, gate_ttl=0.5) as memory:
        fact = memory.store("approved too late")
        token = _token(memory, _ask_purge(memory, fact.id))
        time.sleep(0.6)

        with pytest.raises(ApprovalExpired):
            memory.purge(fact.id, "erasure request", approval=token)
        assert memory.get(fact.id).status == "active"


def test_pending_approvals_are_bounded_per_tenant(settings: Settings) -> None:
    with cortex.connect(settings, gate_max_pending=3) as memory:
        facts = memory.store_many([{"content": f"fact {i}"} for i in range(5)])
        for fact in facts[:3]:
            _ask_purge(memory, fact.id)

        with pytest.raises(GateFull, match="3 pending"):
            memory.purge(facts[3].id, "one too many")
        _ask_purge(memory, facts[0].id)  # the same request again is not a new one
        with pytest.raises(ApprovalRequired):  # another tenant has a bound of its own
            memory.purge(memory.store("elsewhere", tenant="acme").id, "r", tenant="acme")
        memory.deny(memory.approvals()[0].id)
        _ask_purge(memory, facts[3].id)  # a decision frees a place

        assert len(memory.approvals()) == 3


def test_a_forged_token_is_refused(memory: CortexSync) -> None:
    fact = memory.store("guarded")
    approval_id = _ask_purge(memory, fact.id)
    claims = TokenClaims(
        "default",
        approval_id,
        "purge",
        params_digest({"fact_id": fact.id, "reason": "erasure request", "all_versions": False}),
        memory.approvals()[0].expires_at,
    )

    with pytest.raises(ApprovalInvalid, match="signature"):
        memory.purge(fact.id, "erasure request", approval=sign_token(os.urandom(32), claims))
    assert memory.get(fact.id).status == "active"


def test_an_altered_token_is_refused(memory: CortexSync) -> None:
    fact = memory.store("guarded")
    token = _token(memory, _ask_purge(memory, fact.id))
    prefix, claims, mac = token.split(".")
    flipped = claims[:10] + ("A" if claims[10] != "A" else "B") + claims[11:]

    with pytest.raises(ApprovalInvalid):
        memory.purge(fact.id, "erasure request", approval=f"{prefix}.{flipped}.{mac}")
    assert memory.get(fact.id).status == "active"


def test_a_token_for_purging_one_fact_cannot_purge_another(memory: CortexSync) -> None:
    a, b = memory.store("fact A"), memory.store("fact B")
    token = _token(memory, _ask_purge(memory, a.id))

    with pytest.raises(ApprovalMismatch, match="other parameters"):
        memory.purge(b.id, "erasure request", approval=token)
    with pytest.raises(ApprovalMismatch, match="other parameters"):
        memory.purge(a.id, "another reason", approval=token)
    assert memory.get(b.id).status == "active"
    memory.purge(a.id, "erasure request", approval=token)  # still unspent: it works for A


def test_a_token_for_one_action_cannot_run_another(memory: CortexSync, tmp_path: Path) -> None:
    fact = memory.store("fact A")
    token = _token(memory, _ask_purge(memory, fact.id))

    with pytest.raises(ApprovalMismatch, match="allows 'purge', not 'export'"):
        memory.export(tmp_path / "bundle.jsonl", approval=token)
    assert not (tmp_path / "bundle.jsonl").exists()


def test_a_token_of_another_tenant_is_refused(memory: CortexSync) -> None:
    memory.store("acme's", tenant="acme")
    memory.store("globex's", tenant="globex")
    with pytest.raises(ApprovalRequired) as asked:
        memory.export("/nonexistent/never-written.jsonl", tenant="acme")
    token = _token(memory, asked.value.approval_id, tenant="acme")

    with pytest.raises(ApprovalForeignTenant):
        memory.export("/nonexistent/never-written.jsonl", approval=token, tenant="globex")
    with pytest.raises(NotFound):  # acme's approval is not globex's to decide either
        memory.approve(asked.value.approval_id, tenant="globex")


def test_a_replayed_token_is_refused(memory: CortexSync, tmp_path: Path) -> None:
    memory.store("exported once")
    with pytest.raises(ApprovalRequired) as asked:
        memory.export(tmp_path / "a.jsonl")
    token = _token(memory, asked.value.approval_id)
    memory.export(tmp_path / "a.jsonl", approval=token)

    with pytest.raises(ApprovalReplayed, match="already used"):
        memory.export(tmp_path / "b.jsonl", approval=token)
    assert not (tmp_path / "b.jsonl").exists()
    assert len(memory.events(["gate_used"])) == 1


def test_a_token_of_a_denied_approval_is_refused_even_if_signed(
    memory: CortexSync, settings: Settings
) -> None:
    fact = memory.store("denied")
    approval_id = _ask_purge(memory, fact.id)
    approval = memory.approvals()[0]
    memory.deny(approval_id)
    # A token minted with the real key (as a stolen key could): the ledger still says no.
    claims = TokenClaims(
        "default", approval_id, "purge", approval.params_digest, approval.expires_at
    )
    token = sign_token(load_gate_key(settings.gate_key_path), claims)

    with pytest.raises(ApprovalDenied):
        memory.purge(fact.id, "erasure request", approval=token)


def test_ungated_actions_run_without_approval(settings: Settings, tmp_path: Path) -> None:
    with cortex.connect(settings, gated_actions=("purge",)) as memory:
        fact = memory.store("exported freely")
        assert memory.export(tmp_path / "b.jsonl") == 1
    with cortex.connect(settings, gated_actions=()) as memory:
        assert [f.status for f in memory.purge(fact.id, "no gate")] == ["purged"]
        assert memory.events(["gate_request"]) == []


def test_bulk_deprecation_checks_every_fact_before_asking(settings: Settings) -> None:
    with cortex.connect(settings, gate_bulk_threshold=3) as memory:
        facts = memory.store_many([{"content": f"old fact {i}"} for i in range(8)])
        ids = [f.id for f in facts]
        memory.deprecate(ids[0], "gone")

        with pytest.raises(Conflict, match="already deprecated"):
            memory.deprecate_many(ids, "cleanup")
        with pytest.raises(NotFound):
            memory.deprecate_many([*ids[1:], "01JQ3ZK4W8M2T6X9B1C5D7E0FG"], "cleanup")
        assert memory.events(["gate_request"]) == []
        few = memory.deprecate_many(ids[1:4], "cleanup")  # 3, the threshold: no approval
        with pytest.raises(ApprovalRequired):
            memory.deprecate_many(ids[4:], "cleanup")  # 4: bulk

        assert [f.status for f in few] == ["deprecated"] * 3
        assert {memory.get(i).status for i in ids[4:]} == {"active"}


def test_bulk_deprecation_runs_with_its_token(settings: Settings) -> None:
    with cortex.connect(settings, gate_bulk_threshold=3) as memory:
        ids = [f.id for f in memory.store_many([{"content": f"f{i}"} for i in range(8)])]
        with pytest.raises(ApprovalRequired) as asked:
            memory.deprecate_many(ids, "migration to v2")
        assert memory.approvals()[0].params == {
            "fact_ids": sorted(ids),
            "reason": "migration to v2",
        }
        token = _token(memory, asked.value.approval_id)

        done = memory.deprecate_many(ids, "migration to v2", approval=token)

        assert [f.id for f in done] == ids
        assert {memory.get(i).status for i in ids} == {"deprecated"}
        assert memory.verify().ok


def test_without_a_gate_key_a_gated_action_says_to_run_init(settings: Settings) -> None:
    settings.gate_key_path.unlink()
    with cortex.connect(settings) as memory:
        fact = memory.store("no key")
        with pytest.raises(ConfigError, match="cortex init"):
            memory.purge(fact.id, "erasure request")
        assert memory.events(["gate_request"]) == []  # nothing recorded without a key


def test_init_creates_a_missing_gate_key_once_private_and_never_replaces_it(
    settings: Settings,
) -> None:
    key = settings.gate_key_path.read_bytes()
    cortex.init_home(settings)
    assert settings.gate_key_path.read_bytes() == key

    settings.gate_key_path.unlink()
    cortex.init_home(settings)

    made = settings.gate_key_path
    assert len(made.read_bytes()) == 32
    assert made.read_bytes() != key
    assert stat.S_IMODE(made.stat().st_mode) == 0o600


def test_a_gate_key_readable_by_others_is_refused(settings: Settings) -> None:
    settings.gate_key_path.chmod(0o644)
    with cortex.connect(settings) as memory:
        fact = memory.store("guarded")
        with pytest.raises(ConfigError, match="chmod 600"):
            memory.purge(fact.id, "erasure request")
