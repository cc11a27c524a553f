"""Search filtered and boosted by consensus, on SQLite and on PostgreSQL."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from cortex import CortexSync
from cortex.consensus import FactScore, rank_by_consensus
from cortex.errors import ValidationError
from cortex.model import Fact, SearchHit


def _world(memory: CortexSync) -> dict[str, Fact]:
    """Four facts about the staging database: one verified, one disputed, two without votes."""
    facts = {
        "plain": memory.store("staging database staging database staging host db-1"),
        "verified": memory.store("staging database runs on db-2"),
        "disputed": memory.store("staging database staging database runs on db-9"),
        "other": memory.store("the staging database has backups nightly"),
    }
    for agent in ("bob", "carol", "dave"):
        memory.vote(facts["verified"].id, 1, agent=agent)
        memory.vote(facts["disputed"].id, -1, agent=agent)
    return facts


def _ids(hits: list[SearchHit], facts: dict[str, Fact]) -> list[str]:
    names = {fact.id: name for name, fact in facts.items()}
    return [names[hit.fact.id] for hit in hits]


def test_default_search_is_unchanged_by_votes(voters: CortexSync) -> None:
    facts = _world(voters)
    plain = voters.search("staging database", mode="text")
    explicit = voters.search("staging database", mode="text", consensus=None, consensus_boost=0)
    assert plain == explicit
    assert set(_ids(plain, facts)) == set(facts)


def test_the_verified_filter_keeps_verified_facts_only(voters: CortexSync) -> None:
    facts = _world(voters)
    hits = voters.search("staging database", mode="text", consensus="verified")
    assert _ids(hits, facts) == ["verified"]
    unfiltered = {h.fact.id: h.score for h in voters.search("staging database", mode="text")}
    assert hits[0].score == unfiltered[facts["verified"].id]


def test_the_not_disputed_filter_drops_disputed_facts_and_keeps_the_order(
    voters: CortexSync,
) -> None:
    facts = _world(voters)
    everything = _ids(voters.search("staging database", mode="text"), facts)
    kept = _ids(voters.search("staging database", mode="text", consensus="not_disputed"), facts)
    assert kept == [name for name in everything if name != "disputed"]
    assert len(voters.search("staging database", mode="text", k=1, consensus="not_disputed")) == 1


def test_a_boost_lifts_verified_facts_and_sinks_disputed_ones(voters: CortexSync) -> None:
    facts = _world(voters)
    before = _ids(voters.search("staging database", mode="text"), facts)
    assert before.index("disputed") < before.index("verified")  # more matching words
    boosted = voters.search("staging database", mode="text", consensus_boost=2.0)
    order = _ids(boosted, facts)
    assert order[0] == "verified"
    assert order[-1] == "disputed"
    assert [h.score for h in boosted] == sorted((h.score for h in boosted), reverse=True)


@pytest.mark.parametrize(
    ("consensus", "boost"),
    [("trusted", 0.0), ("VERIFIED", 0.0), (None, -1.0), (None, 11.0), (None, True), (None, "1")],
)
def test_bad_consensus_options_are_refused(
    memory: CortexSync, consensus: object, boost: object
) -> None:
    with pytest.raises(ValidationError, match="consensus"):
        memory.search("x", mode="text", consensus=consensus, consensus_boost=boost)  # type: ignore[arg-type]


_NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _hit(fact_id: str, score: float) -> SearchHit:
    fact = Fact(
        id=fact_id, tenant="t", project="p", content=fact_id, fact_type="k", tags=(),
        source=None, confidence=None, valid_from=_NOW, valid_until=None, supersedes=None,
        created_at=_NOW, meta={}, seq=0,
    )  # fmt: skip
    return SearchHit(fact, score, {"text": 1})


def test_rank_by_consensus_normalises_scores_over_the_kept_hits() -> None:
    scores = {
        "a": FactScore(0.0, "unverified", 0, 0, 1, None),
        "b": FactScore(0.6, "verified", 1, 0, 1, "confirmed"),
        "c": FactScore(-0.6, "disputed", 0, 1, 1, "refuted"),
    }
    hits = [_hit("a", 10.0), _hit("b", 6.0), _hit("c", 2.0)]
    ranked = rank_by_consensus(hits, scores.__getitem__, consensus=None, boost=1.0, k=3)
    assert [h.fact.id for h in ranked] == ["b", "a", "c"]
    assert [h.score for h in ranked] == pytest.approx([0.5 + 0.6, 1.0, 0.0 - 0.6])
    equal = [dataclasses.replace(h, score=1.0) for h in hits]
    flat = rank_by_consensus(equal, scores.__getitem__, consensus="not_disputed", boost=0.5, k=1)
    assert [(h.fact.id, h.score) for h in flat] == [("b", pytest.approx(1.3))]
    assert rank_by_consensus([], scores.__getitem__, consensus=None, boost=1.0, k=3) == []
