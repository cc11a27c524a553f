"""Votes, consensus and reputation through the engine, on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest

import cortex
from cortex import CortexSync, Settings
from cortex.consensus import Consensus, Reputation, Vote
from cortex.errors import Conflict, NotFound, ShieldBlocked, ValidationError


def _verify(memory: CortexSync, fact_id: str, *agents: str) -> None:
    for agent in agents:
        memory.vote(fact_id, 1, agent=agent)


def test_a_vote_is_a_ledger_entry_that_verifies(voters: CortexSync) -> None:
    fact = voters.store("the staging database is db-2", source="alice")
    vote = voters.vote(fact.id, 1, agent="bob", reason="  checked the DNS  ")
    assert isinstance(vote, Vote)
    assert (vote.fact_id, vote.agent, vote.value, vote.reason) == (
        fact.id,
        "bob",
        1,
        "checked the DNS",
    )
    (entry,) = voters.events(["vote"])
    assert (entry.seq, entry.subject, entry.actor) == (vote.seq, fact.id, "bob")
    assert dict(entry.payload) == {"value": 1, "reason": "checked the DNS"}
    assert voters.verify().ok


@pytest.mark.parametrize("value", [0, 2, -2, True, False, 1.0, "up", None])
def test_a_vote_is_plus_or_minus_one_and_nothing_else(memory: CortexSync, value: object) -> None:
    fact = memory.store("a fact")
    with pytest.raises(ValidationError, match=r"\+1 or -1"):
        memory.vote(fact.id, value, agent="bob")  # type: ignore[arg-type]
    assert memory.events(["vote"]) == []


def test_agent_and_reason_are_checked(voters: CortexSync) -> None:
    fact = voters.store("a fact")
    for agent in ("", "has space", "x" * 65, None):
        with pytest.raises(ValidationError, match="agent"):
            voters.vote(fact.id, 1, agent=agent)  # type: ignore[arg-type]
    for reason in ("", "   ", "r" * 2001):
        with pytest.raises(ValidationError, match="reason"):
            voters.vote(fact.id, 1, agent="bob", reason=reason)
    assert voters.events(["vote"]) == []


def test_voting_on_an_unknown_or_inactive_fact_is_refused(voters: CortexSync) -> None:
    with pytest.raises(NotFound):
        voters.vote("01ZZZZZZZZZZZZZZZZZZZZZZZZ", 1, agent="bob")
    old = voters.store("port 8080")
    newer = voters.supersede(old.id, "port 8081")
    with pytest.raises(Conflict, match=f"superseded.*vote on {newer.id}"):
        voters.vote(old.id, 1, agent="bob")
    gone = voters.store("obsolete")
    voters.deprecate(gone.id, "wrong")
    with pytest.raises(Conflict, match="deprecated"):
        voters.vote(gone.id, -1, agent="bob")
    assert voters.events(["vote"]) == []


def test_a_reason_holding_a_secret_is_blocked_and_nothing_is_logged(voters: CortexSync) -> None:
    fact = voters.store("the deploy key rotates monthly")
    with pytest.raises(ShieldBlocked) as caught:
        voters.vote(fact.id, 1, agent="bob", reason="works with AKIAIOSFODNN7EXAMPLF")
    assert caught.value.field == "reason"
    assert "AKIA" not in str(caught.value)
    assert voters.events(["vote"]) == []


def test_a_new_vote_replaces_the_agents_old_one_and_both_stay_in_the_ledger(
    voters: CortexSync,
) -> None:
    fact = voters.store("the cache listens on 6379")
    voters.vote(fact.id, 1, agent="bob")
    voters.vote(fact.id, 1, agent="carol")
    second = voters.vote(fact.id, -1, agent="bob", reason="changed my mind")
    found = voters.consensus(fact.id)
    assert [(v.agent, v.value) for v in found.votes] == [("carol", 1), ("bob", -1)]
    assert found.votes[-1].seq == second.seq
    assert found.votes[-1].reason == "changed my mind"
    assert found.votes_cast == 3
    assert len(voters.events(["vote"], subject=fact.id)) == 3
    assert found.score == pytest.approx(0.0)


def test_agreeing_agents_verify_a_fact_and_disagreeing_ones_dispute_it(
    voters: CortexSync,
) -> None:
    good = voters.store("the staging database is db-2", source="alice")
    bad = voters.store("the staging database is db-9", source="mallory")
    _verify(voters, good.id, "bob", "carol", "dave")
    for agent in ("bob", "carol", "dave"):
        voters.vote(bad.id, -1, agent=agent)
    verified = voters.consensus(good.id)
    assert isinstance(verified, Consensus)
    assert (verified.status, verified.outcome) == ("verified", "confirmed")
    assert 0.5 <= verified.score < 1
    assert verified.support > 0
    assert verified.opposition == 0
    disputed = voters.consensus(bad.id)
    assert (disputed.status, disputed.outcome) == ("disputed", "refuted")
    assert disputed.score == pytest.approx(-verified.score)
    untouched = voters.consensus(voters.store("nobody voted").id)
    assert (untouched.score, untouched.status, untouched.votes) == (0.0, "unverified", ())


def test_reputations_follow_how_facts_and_votes_fared(voters: CortexSync) -> None:
    good = voters.store("the staging database is db-2", source="alice")
    bad = voters.store("the staging database is db-9", source="mallory")
    _verify(voters, good.id, "bob", "carol", "dave")
    for agent in ("bob", "carol"):
        voters.vote(bad.id, -1, agent=agent)
    voters.vote(bad.id, 1, agent="dave")
    voters.deprecate(bad.id, "db-9 never existed")
    alice, mallory, bob, dave = (voters.reputation(a) for a in ("alice", "mallory", "bob", "dave"))
    assert isinstance(alice, Reputation)
    assert (alice.facts_verified, alice.facts_refuted) == (1, 0)
    assert (mallory.facts_verified, mallory.facts_refuted) == (0, 1)
    assert alice.score > 0.5 > mallory.score
    assert (bob.votes_agreed, bob.votes_disagreed, bob.votes_standing) == (2, 0, 2)
    assert (dave.votes_agreed, dave.votes_disagreed) == (1, 1)
    assert bob.score > dave.score
    assert bob.weight > voters.reputation("newcomer").weight
    assert "score = (good + 1) / (n + 2) = (2 + 1) / (2 + 2)" in bob.formula
    newcomer = voters.reputation("newcomer")
    assert (newcomer.score, newcomer.good, newcomer.bad, newcomer.established) == (
        0.5,
        0,
        0,
        False,
    )
    with pytest.raises(ValidationError):
        voters.reputation("not a name")


def test_an_authors_own_vote_is_shown_but_not_counted(voters: CortexSync) -> None:
    fact = voters.store("my own fact", source="alice")
    voters.vote(fact.id, 1, agent="alice")
    found = voters.consensus(fact.id)
    (own,) = found.votes
    assert (own.agent, own.counted, own.weight) == ("alice", False, 0.0)
    assert found.score == 0.0


def test_another_tenants_fact_is_not_found_and_votes_stay_in_their_tenant(
    voters: CortexSync,
) -> None:
    theirs = voters.store("globex secret plan", tenant="globex")
    with pytest.raises(NotFound):
        voters.vote(theirs.id, -1, agent="spy")
    with pytest.raises(NotFound):
        voters.consensus(theirs.id)
    voters.vote(theirs.id, 1, agent="insider", tenant="globex")
    assert voters.reputation("insider").votes_standing == 0
    assert voters.reputation("insider", tenant="globex").votes_standing == 1


def test_votes_logged_by_another_handle_are_seen_on_the_next_read(
    backend_settings: Settings, voters: CortexSync
) -> None:
    fact = voters.store("the queue holds 1024 items")
    assert voters.consensus(fact.id).votes == ()
    with cortex.connect(backend_settings) as other:
        _verify(other, fact.id, "bob", "carol", "dave")
    found = voters.consensus(fact.id)
    assert [v.agent for v in found.votes] == ["bob", "carol", "dave"]
    assert found.status == "verified"
    assert found.tree_size == voters.stats().transactions


def test_the_view_is_recomputed_when_the_ledger_grows_and_reused_when_it_does_not(
    voters: CortexSync,
) -> None:
    fact = voters.store("the cron runs at 02:00", source="alice")
    _verify(voters, fact.id, "bob", "carol")
    first = voters.consensus(fact.id)
    assert first.status == "unverified"
    assert voters.consensus(fact.id) == first
    voters.vote(fact.id, 1, agent="dave")
    assert voters.consensus(fact.id).status == "verified"
    voters.deprecate(fact.id, "the cron moved")
    after = voters.consensus(fact.id)
    assert after.outcome == "refuted"
    assert voters.reputation("alice").facts_refuted == 1


def test_thresholds_come_from_settings(backend_settings: Settings) -> None:
    strict = backend_settings.with_overrides(consensus_verified=0.9)
    with cortex.connect(strict) as memory:
        fact = memory.store("needs many voices")
        _verify(memory, fact.id, "a", "b", "c")
        found = memory.consensus(fact.id)
        assert (found.status, found.verified_at) == ("unverified", 0.9)


def test_a_purged_fact_takes_no_votes_and_is_evidence_for_nobody(
    backend_settings: Settings,
) -> None:
    with cortex.connect(backend_settings.with_overrides(gated_actions=())) as memory:
        fact = memory.store("an address that must be erased", source="alice")
        _verify(memory, fact.id, "bob", "carol", "dave")
        assert memory.reputation("alice").facts_verified == 1
        memory.purge(fact.id, "erasure request")
        assert memory.consensus(fact.id).outcome is None
        assert memory.reputation("alice").good == 0
        assert memory.reputation("bob").good == 0
        with pytest.raises(Conflict, match="purged"):
            memory.vote(fact.id, 1, agent="erin")
