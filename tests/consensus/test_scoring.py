"""Property tests of the consensus formulas (cortex/consensus/scoring.py), as docs/consensus.md
states them."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cortex.consensus import (
    CastVote,
    ConsensusPolicy,
    WeightedVote,
    consensus_score,
    consensus_status,
    is_established,
    reputation,
    standing_votes,
    vote_weight,
)
from cortex.errors import ConfigError

POLICY = ConsensusPolicy()
# Float rounding only: the formulas are exact in the reals.
EPS = 1e-12

counts = st.integers(min_value=0, max_value=10_000)
weights = st.floats(min_value=1e-6, max_value=1.0, allow_nan=False)
votes = st.builds(WeightedVote, st.sampled_from([1, -1]), weights, st.booleans())
ballots = st.lists(votes, max_size=60)


@given(counts, counts)
def test_reputation_and_weight_are_in_0_1_and_weight_rises_with_good_and_falls_with_bad(
    good: int, bad: int
) -> None:
    r = reputation(good, bad)
    w = vote_weight(good, bad)
    assert 0 < r < 1
    assert 0 < w < 1
    assert w <= r
    assert vote_weight(good + 1, bad) > w
    assert vote_weight(good, bad + 1) < w


def test_a_new_agent_has_the_prior_and_little_weight() -> None:
    assert reputation(0, 0) == 0.5
    assert vote_weight(0, 0) == pytest.approx(0.1)
    assert not is_established(0, 0)
    assert is_established(5, 0)
    assert is_established(5, 9)
    assert not is_established(4, 0)
    assert not is_established(0, 50)  # failures do not lift an agent out of the fresh pool
    assert vote_weight(5, 0) == pytest.approx(6 / 7 * 6 / 10)
    assert vote_weight(50, 0) > 0.85


@given(ballots)
def test_the_score_is_strictly_between_minus_1_and_1(ballot: list[WeightedVote]) -> None:
    parts = consensus_score(ballot)
    assert -1 < parts.score < 1
    assert 0 < parts.fresh_scale <= 1
    fresh = sum(v.weight for v in ballot if not v.established)
    assert parts.fresh_scale * fresh <= POLICY.cap + EPS


@given(ballots, weights, st.booleans())
def test_adding_an_up_vote_never_lowers_the_score_and_a_down_vote_never_raises_it(
    ballot: list[WeightedVote], weight: float, established: bool
) -> None:
    before = consensus_score(ballot).score
    up = consensus_score([*ballot, WeightedVote(1, weight, established)]).score
    down = consensus_score([*ballot, WeightedVote(-1, weight, established)]).score
    assert up >= before - EPS
    assert down <= before + EPS


@given(ballots, st.randoms(use_true_random=False))
def test_the_score_does_not_depend_on_the_order_of_the_votes(
    ballot: list[WeightedVote], rng: random.Random
) -> None:
    shuffled = list(ballot)
    rng.shuffle(shuffled)
    assert consensus_score(shuffled) == consensus_score(ballot)


@settings(deadline=None, max_examples=40)  # up to 100,000 votes per example
@given(
    st.lists(weights, min_size=1, max_size=20),
    st.integers(min_value=0, max_value=100_000),
    weights,
    st.lists(votes.filter(lambda v: not v.established), max_size=30),
)
def test_no_number_of_fresh_votes_pushes_established_support_below_its_bound(
    established: list[float], flood: int, flood_weight: float, mixed: list[WeightedVote]
) -> None:
    """With established +1 votes of total weight W, any fresh votes (N up to 100,000 against,
    plus any mix) leave score >= (W - cap) / (W + cap + s0); so W > cap keeps it above 0, and
    the same holds mirrored for -1."""
    held = [WeightedVote(1, w, True) for w in established]
    fresh = [WeightedVote(-1, flood_weight, False)] * flood + mixed
    total = sum(established)
    score = consensus_score(held + fresh).score
    bound = (total - POLICY.cap) / (total + POLICY.cap + POLICY.s0)
    assert score >= bound - EPS
    if total > POLICY.cap:
        assert score > 0
        assert consensus_status(score) != "disputed"
    mirrored = [WeightedVote(-v.value, v.weight, v.established) for v in held + fresh]
    assert consensus_score(mirrored).score == -score


@settings(deadline=None, max_examples=40)
@given(st.integers(min_value=0, max_value=100_000))
def test_two_agents_with_a_clean_record_of_five_outweigh_any_flood_of_new_agents(
    flood: int,
) -> None:
    """The agent-level statement: 2 * vote_weight(5, 0) = 1.03 > cap, so N new agents (at the
    prior's weight 0.1) voting against cannot bring the score to 0, for any N."""
    established = WeightedVote(1, vote_weight(5, 0), is_established(5, 0))
    new = WeightedVote(-1, vote_weight(0, 0), is_established(0, 0))
    assert 2 * established.weight > POLICY.cap
    score = consensus_score([established, established] + [new] * flood).score
    assert score > 0
    assert consensus_status(score) != "disputed"


def test_one_established_agent_can_be_outvoted_by_a_flood_only_down_to_its_bound() -> None:
    one = WeightedVote(1, vote_weight(5, 0), True)
    flood = [WeightedVote(-1, 0.1, False)] * 10_000
    score = consensus_score([one, *flood]).score
    bound = (one.weight - POLICY.cap) / (one.weight + POLICY.cap + POLICY.s0)
    assert score == pytest.approx(bound)
    assert score < 0  # a single agent of weight 0.51 < cap is not enough
    assert consensus_status(score) != "disputed"  # but the flood cannot dispute it either


@pytest.mark.parametrize(
    ("score", "status"),
    [
        (0.5, "verified"),
        (0.9, "verified"),
        (0.49, "unverified"),
        (0.0, "unverified"),
        (-0.49, "unverified"),
        (-0.5, "disputed"),
        (-0.99, "disputed"),
    ],
)
def test_thresholds_mark_verified_disputed_and_unverified(score: float, status: str) -> None:
    assert consensus_status(score) == status


def test_three_new_agents_in_agreement_verify_a_fact_and_two_do_not() -> None:
    new = vote_weight(0, 0)
    assert consensus_status(consensus_score([WeightedVote(1, new, False)] * 3).score) == "verified"
    two = consensus_score([WeightedVote(1, new, False)] * 2).score
    assert consensus_status(two) == "unverified"


def test_a_policy_with_impossible_thresholds_is_refused() -> None:
    with pytest.raises(ConfigError):
        ConsensusPolicy(verified_at=-0.1)
    with pytest.raises(ConfigError):
        ConsensusPolicy(disputed_at=0.2)
    with pytest.raises(ConfigError):
        ConsensusPolicy(cap=0)


agents = st.sampled_from(["a", "b", "c", "d"])
cast_votes = st.lists(st.tuples(agents, st.sampled_from([1, -1])), max_size=40).map(
    lambda items: [(agent, CastVote(value, seq)) for seq, (agent, value) in enumerate(items)]
)


@given(cast_votes, st.randoms(use_true_random=False))
def test_each_agents_latest_vote_stands_whatever_order_the_votes_are_read_in(
    cast: list[tuple[str, CastVote]], rng: random.Random
) -> None:
    shuffled = list(cast)
    rng.shuffle(shuffled)
    standing = standing_votes(shuffled)
    latest = {agent: vote for agent, vote in cast}  # in seq order the last one wins
    assert standing == latest
    in_parts = standing_votes(
        shuffled[len(shuffled) // 2 :], standing_votes(shuffled[: len(shuffled) // 2])
    )
    assert in_parts == latest


@given(cast_votes, st.randoms(use_true_random=False))
def test_the_score_of_standing_votes_depends_only_on_each_agents_latest_vote(
    cast: list[tuple[str, CastVote]], rng: random.Random
) -> None:
    """Any interleaving that keeps each agent's own votes in order gives the same score."""
    weight = {"a": (0.9, True), "b": (0.3, False), "c": (0.1, False), "d": (0.6, True)}

    def score(items: list[tuple[str, CastVote]]) -> float:
        standing = standing_votes(items)
        return consensus_score(
            WeightedVote(v.value, *weight[agent]) for agent, v in standing.items()
        ).score

    shuffled = list(cast)
    rng.shuffle(shuffled)
    assert score(shuffled) == score(cast)
