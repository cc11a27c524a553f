"""Specification of cortex.search.fusion: weighted Reciprocal Rank Fusion (Cormack et al., 2009)."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from cortex.errors import ValidationError
from cortex.search.fusion import reciprocal_rank_fusion

METHODS = ["vector", "text", "graph"]

rankings_strategy = st.dictionaries(
    st.sampled_from(METHODS), st.lists(st.integers(0, 40), unique=True, max_size=25)
)
weights_strategy = st.dictionaries(
    st.sampled_from(METHODS), st.just(0.0) | st.floats(min_value=0.01, max_value=100.0)
)
k_strategy = st.integers(min_value=1, max_value=1000)


def weight_of(weights: dict[str, float], method: str) -> float:
    return weights.get(method, 1.0)


def scores_of(
    rankings: dict[str, list[int]], weights: dict[str, float], k: int
) -> dict[int, float]:
    fused = reciprocal_rank_fusion(rankings, k=k, weights=weights, limit=10_000)
    return {item: score for item, score, _ in fused}


# ---- examples ----


def test_scores_follow_the_rrf_formula_with_ranks_from_one() -> None:
    fused = reciprocal_rank_fusion({"vector": ["a", "b", "c"], "text": ["c", "a"]}, limit=10)
    assert fused == [
        ("a", 1 / 61 + 1 / 62, {"text": 2, "vector": 1}),
        ("c", 1 / 61 + 1 / 63, {"text": 1, "vector": 3}),
        ("b", 1 / 62, {"vector": 2}),
    ]


def test_weights_scale_each_methods_contribution() -> None:
    fused = reciprocal_rank_fusion(
        {"vector": ["a", "b"], "text": ["b", "a"]}, k=10, weights={"vector": 3.0}, limit=2
    )
    assert fused == [
        ("a", 3.0 / 11 + 1.0 / 12, {"text": 2, "vector": 1}),
        ("b", 3.0 / 12 + 1.0 / 11, {"text": 1, "vector": 2}),
    ]


def test_at_most_limit_results_are_returned_best_first() -> None:
    fused = reciprocal_rank_fusion({"text": [5, 4, 3, 2, 1]}, limit=2)
    assert [item for item, _, _ in fused] == [5, 4]


def test_an_equal_score_goes_first_to_the_best_single_rank() -> None:
    # k = 1: "early" scores 1 / (1 + 1); "late", third at twice the weight, 2 / (1 + 3).
    fused = reciprocal_rank_fusion(
        {"vector": ["early"], "text": ["x", "y", "late"]},
        k=1,
        weights={"text": 2.0},
        limit=4,
    )
    assert [(item, score) for item, score, _ in fused][2:] == [("early", 0.5), ("late", 0.5)]


def test_an_equal_score_and_best_rank_goes_first_to_the_smaller_id() -> None:
    fused = reciprocal_rank_fusion({"vector": ["q", "p"], "text": ["p", "q"]}, limit=2)
    assert [item for item, _, _ in fused] == ["p", "q"]
    assert fused[0][1] == fused[1][1]


def test_an_id_listed_twice_by_one_method_keeps_its_first_rank() -> None:
    fused = reciprocal_rank_fusion({"text": ["a", "b", "a"]}, limit=10)
    assert fused == [("a", 1 / 61, {"text": 1}), ("b", 1 / 62, {"text": 2})]


def test_a_method_weighing_zero_is_left_out_of_scores_and_ranks() -> None:
    fused = reciprocal_rank_fusion(
        {"vector": ["a"], "text": ["b", "a"]}, weights={"text": 0.0}, limit=10
    )
    assert fused == [("a", 1 / 61, {"vector": 1})]


def test_no_rankings_fuse_to_nothing() -> None:
    assert reciprocal_rank_fusion({}, limit=5) == []
    assert reciprocal_rank_fusion({"vector": [], "text": []}, limit=5) == []


@pytest.mark.parametrize(
    ("k", "weights", "limit", "message"),
    [
        (0, None, 10, "k must be at least 1"),
        (60, None, 0, "limit must be at least 1"),
        (60, {"text": -1.0}, 10, "weight of method 'text'"),
        (60, {"text": math.nan}, 10, "finite number"),
        (60, {"vector": math.inf}, 10, "finite number"),
    ],
)
def test_impossible_parameters_are_validation_errors(
    k: int, weights: dict[str, float] | None, limit: int, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        reciprocal_rank_fusion({"text": [1, 2]}, k=k, weights=weights, limit=limit)


# ---- properties ----


@given(rankings=rankings_strategy, weights=weights_strategy, k=k_strategy)
def test_every_score_is_positive_and_at_most_the_weight_sum_over_k_plus_one(
    rankings: dict[str, list[int]], weights: dict[str, float], k: int
) -> None:
    ceiling = sum(weight_of(weights, method) for method in rankings) / (k + 1)
    for score in scores_of(rankings, weights, k).values():
        assert 0 < score <= ceiling * (1 + 1e-12)


@given(rankings=rankings_strategy, weights=weights_strategy, k=k_strategy)
def test_an_id_ranked_first_by_every_method_is_ranked_first(
    rankings: dict[str, list[int]], weights: dict[str, float], k: int
) -> None:
    assume(any(weight_of(weights, method) > 0 for method in rankings))
    champion = -1
    everywhere_first = {method: [champion, *ranked] for method, ranked in rankings.items()}
    fused = reciprocal_rank_fusion(everywhere_first, k=k, weights=weights, limit=1)
    assert fused[0][0] == champion


@given(rankings=rankings_strategy, weights=weights_strategy, k=k_strategy, data=st.data())
def test_moving_an_id_up_in_one_ranking_never_lowers_its_score(
    rankings: dict[str, list[int]], weights: dict[str, float], k: int, data: st.DataObject
) -> None:
    candidates = [(method, ranked) for method, ranked in rankings.items() if len(ranked) >= 2]
    assume(candidates)
    method, ranked = data.draw(st.sampled_from(candidates))
    old_position = data.draw(st.integers(1, len(ranked) - 1))
    new_position = data.draw(st.integers(0, old_position - 1))
    moved = list(ranked)
    item = moved.pop(old_position)
    moved.insert(new_position, item)
    before = scores_of(rankings, weights, k)
    after = scores_of({**rankings, method: moved}, weights, k)
    assert after.get(item, 0.0) >= before.get(item, 0.0)


@given(rankings=rankings_strategy, weights=weights_strategy, k=k_strategy, limit=st.integers(1, 50))
def test_a_method_weighing_zero_changes_nothing(
    rankings: dict[str, list[int]], weights: dict[str, float], k: int, limit: int
) -> None:
    muted = [method for method in rankings if weight_of(weights, method) == 0]
    without_muted = {m: ranked for m, ranked in rankings.items() if m not in muted}
    assert reciprocal_rank_fusion(
        rankings, k=k, weights=weights, limit=limit
    ) == reciprocal_rank_fusion(without_muted, k=k, weights=weights, limit=limit)


@given(rankings=rankings_strategy, weights=weights_strategy, k=k_strategy, limit=st.integers(1, 50))
def test_the_result_has_min_of_limit_and_the_number_of_distinct_ids(
    rankings: dict[str, list[int]], weights: dict[str, float], k: int, limit: int
) -> None:
    distinct = {
        item
        for method, ranked in rankings.items()
        if weight_of(weights, method) > 0
        for item in ranked
    }
    fused = reciprocal_rank_fusion(rankings, k=k, weights=weights, limit=limit)
    assert len(fused) == min(limit, len(distinct))
    assert len({item for item, _, _ in fused}) == len(fused)


@given(rankings=rankings_strategy, weights=weights_strategy, k=k_strategy, limit=st.integers(1, 50))
def test_the_result_depends_only_on_the_input_not_on_mapping_order(
    rankings: dict[str, list[int]], weights: dict[str, float], k: int, limit: int
) -> None:
    reordered = dict(reversed(rankings.items()))
    first = reciprocal_rank_fusion(rankings, k=k, weights=weights, limit=limit)
    assert reciprocal_rank_fusion(reordered, k=k, weights=weights, limit=limit) == first
    assert reciprocal_rank_fusion(rankings, k=k, weights=weights, limit=limit) == first


@given(rankings=rankings_strategy, weights=weights_strategy, k=k_strategy)
def test_results_are_sorted_by_score_then_best_rank_then_id(
    rankings: dict[str, list[int]], weights: dict[str, float], k: int
) -> None:
    fused = reciprocal_rank_fusion(rankings, k=k, weights=weights, limit=10_000)
    keys = [(-score, min(ranks.values()), item) for item, score, ranks in fused]
    assert keys == sorted(keys)
