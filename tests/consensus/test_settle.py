"""Settling a tenant (cortex/consensus/settle.py): outcomes, evidence, timeliness, fixed point."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cortex.consensus import (
    CastVote,
    ConsensusPolicy,
    Evidence,
    FactRecord,
    WeightedVote,
    consensus_score,
    consensus_status,
    settle,
)


def _votes(*cast: tuple[str, str, int]) -> dict[str, dict[str, CastVote]]:
    """fact -> agent -> vote, from (fact, agent, value) in ledger order (seq = position)."""
    found: dict[str, dict[str, CastVote]] = {}
    for seq, (fact, agent, value) in enumerate(cast):
        found.setdefault(fact, {})[agent] = CastVote(value, seq)
    return found


def test_a_verified_fact_credits_its_author_and_the_voters_that_settled_it() -> None:
    facts = {"f": FactRecord("alice")}
    votes = _votes(("f", "bob", 1), ("f", "carol", 1), ("f", "dave", 1), ("f", "erin", 1))
    result = settle(facts, votes)
    score = result.score_of("f")
    assert (score.status, score.outcome) == ("verified", "confirmed")
    assert result.evidence_of("alice") == Evidence(facts_verified=1)
    for agent in ("bob", "carol", "dave"):
        assert result.evidence_of(agent) == Evidence(votes_agreed=1)
    # erin voted after the tally had reached "verified": piling on earns nothing
    assert result.evidence_of("erin") == Evidence()
    assert result.converged


def test_votes_cast_after_the_outcome_was_reached_earn_nothing() -> None:
    cast = [("f", f"early-{i}", 1) for i in range(3)] + [("f", f"late-{i}", 1) for i in range(5)]
    result = settle({"f": FactRecord(None)}, _votes(*cast))
    assert all(result.evidence_of(f"early-{i}").votes_agreed == 1 for i in range(3))
    assert all(result.evidence_of(f"late-{i}") == Evidence() for i in range(5))


def test_a_deprecated_fact_refutes_its_author_and_judges_the_votes_cast_before_it() -> None:
    facts = {
        "f": FactRecord("alice", "deprecated", 10),
        "g": FactRecord("alice", "deprecated", 11),  # no votes: still refutes its author
    }
    votes = {"f": {"bob": CastVote(1, 3), "carol": CastVote(-1, 4), "dave": CastVote(-1, 12)}}
    result = settle(facts, votes)
    assert result.score_of("f").outcome == "refuted"
    assert result.evidence_of("alice") == Evidence(facts_refuted=2)
    assert result.evidence_of("bob") == Evidence(votes_disagreed=1)
    assert result.evidence_of("carol") == Evidence(votes_agreed=1)
    assert result.evidence_of("dave") == Evidence()  # cast after the deprecation


def test_a_disputed_fact_refutes_its_author() -> None:
    votes = _votes(("f", "bob", -1), ("f", "carol", -1), ("f", "dave", -1))
    result = settle({"f": FactRecord("alice")}, votes)
    assert result.score_of("f").status == "disputed"
    assert result.evidence_of("alice") == Evidence(facts_refuted=1)
    assert result.evidence_of("bob") == Evidence(votes_agreed=1)


def test_an_authors_vote_on_its_own_fact_does_not_count() -> None:
    votes = _votes(("f", "alice", 1), ("f", "alice-sock", 1))
    result = settle({"f": FactRecord("alice")}, votes)
    alone = settle({"f": FactRecord("alice")}, _votes(("f", "alice-sock", 1)))
    assert result.score_of("f") == alone.score_of("f")
    assert result.evidence_of("alice") == Evidence()


def test_a_purged_fact_is_evidence_for_nobody() -> None:
    votes = _votes(("f", "bob", 1), ("f", "carol", 1), ("f", "dave", 1))
    result = settle({"f": FactRecord("alice", "purged", 9)}, votes)
    assert result.score_of("f").status == "verified"
    assert result.score_of("f").outcome is None
    assert result.evidence == {}


def test_a_fact_nobody_voted_on_is_unverified_with_score_0() -> None:
    result = settle({}, {})
    found = result.score_of("unknown")
    assert (found.score, found.status, found.outcome) == (0.0, "unverified", None)
    assert result.weight_of("nobody") == result.weight_of("anybody") > 0


def test_established_reviewers_hold_a_fact_against_a_flood_of_new_agents() -> None:
    """Two reviewers who settled 5 facts each (with a third) keep a fact from being disputed
    by 200 agents that never did anything else."""
    cast: list[tuple[str, str, int]] = []
    for i in range(5):
        cast += [(f"past-{i}", "rev-1", 1), (f"past-{i}", "rev-2", 1), (f"past-{i}", "rev-3", 1)]
    cast += [("target", "rev-1", 1), ("target", "rev-2", 1)]
    cast += [("target", f"sybil-{i}", -1) for i in range(200)]
    facts = {f"past-{i}": FactRecord("author") for i in range(5)}
    facts["target"] = FactRecord("author")
    result = settle(facts, _votes(*cast))
    assert result.established("rev-1")
    assert result.established("rev-2")
    assert not result.established("sybil-0")
    target = result.score_of("target")
    assert target.score > 0
    assert target.status != "disputed"
    assert target.fresh_scale < 1  # the 200 new agents shared a weight of at most 1


@given(st.randoms(use_true_random=False))
def test_settling_does_not_depend_on_the_order_of_the_inputs(rng: random.Random) -> None:
    agents = [f"agent-{i}" for i in range(8)]
    facts = {f"fact-{i}": FactRecord(rng.choice([*agents, None])) for i in range(12)}
    facts["fact-0"] = FactRecord("agent-1", "deprecated", 500)
    cast = [(rng.choice(list(facts)), rng.choice(agents), rng.choice([1, -1])) for _ in range(80)]
    votes = _votes(*cast)
    shuffled_facts = dict(rng.sample(list(facts.items()), len(facts)))
    shuffled_votes = {
        fact: dict(rng.sample(list(cast.items()), len(cast)))
        for fact, cast in rng.sample(list(votes.items()), len(votes))
    }
    assert settle(facts, votes) == settle(shuffled_facts, shuffled_votes)


def test_settling_reports_whether_it_reached_a_fixed_point() -> None:
    cast = [("f", "a", 1), ("f", "b", 1), ("f", "c", 1), ("g", "a", -1), ("g", "b", 1)]
    result = settle({"f": FactRecord("x"), "g": FactRecord("y")}, _votes(*cast))
    assert result.converged
    assert 1 <= result.rounds <= ConsensusPolicy().rounds
    capped = settle(
        {"f": FactRecord("x"), "g": FactRecord("y")}, _votes(*cast), ConsensusPolicy(rounds=1)
    )
    assert capped.rounds == 1
    assert not capped.converged


@given(st.randoms(use_true_random=False))
def test_every_settled_score_is_the_formula_applied_to_the_settled_weights(
    rng: random.Random,
) -> None:
    """The array implementation of `settle` against the scalar formula of `consensus_score`."""
    agents = [f"agent-{i}" for i in range(10)]
    facts = {f"fact-{i}": FactRecord(rng.choice([*agents, None])) for i in range(15)}
    facts["fact-1"] = FactRecord("agent-2", "deprecated", 400)
    facts["fact-2"] = FactRecord("agent-3", "purged", 10)
    cast = [(rng.choice(list(facts)), rng.choice(agents), rng.choice([1, -1])) for _ in range(150)]
    votes = _votes(*cast)
    result = settle(facts, votes)
    for fact_id, standing in votes.items():
        counted = [
            WeightedVote(vote.value, result.weight_of(agent), result.established(agent))
            for agent, vote in standing.items()
            if agent != facts[fact_id].author
        ]
        expected = consensus_score(counted)
        found = result.score_of(fact_id)
        assert found.score == pytest.approx(expected.score, abs=1e-12)
        assert found.fresh_scale == pytest.approx(expected.fresh_scale, abs=1e-12)
        assert found.status == consensus_status(found.score)
    for agent, evidence in result.evidence.items():
        assert evidence.record > 0
        assert agent in agents
