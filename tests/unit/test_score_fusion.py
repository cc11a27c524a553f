"""Specification of cortex.search.fusion.score_fusion: weighted sum of max-normalised scores."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cortex.errors import ValidationError
from cortex.search.fusion import score_fusion

scores_strategy = st.dictionaries(
    st.sampled_from(["vector", "text"]),
    st.dictionaries(st.integers(0, 30), st.floats(min_value=0.01, max_value=50.0), max_size=20),
)


def test_scores_are_scaled_by_each_methods_best_and_weighted() -> None:
    fused = score_fusion(
        {"vector": {1: 0.8, 2: 0.4}, "text": {2: 10.0, 3: 5.0}},
        weights={"vector": 0.6, "text": 0.4},
        limit=10,
    )
    assert [(d, round(s, 6), r) for d, s, r in fused] == [
        (2, round(0.6 * 0.5 + 0.4 * 1.0, 6), {"vector": 2, "text": 1}),
        (1, 0.6, {"vector": 1}),
        (3, 0.2, {"text": 2}),
    ]


def test_a_method_weighted_zero_does_not_change_the_order() -> None:
    fused = score_fusion(
        {"vector": {1: 0.9, 2: 0.1}, "text": {2: 9.0, 1: 1.0}},
        weights={"vector": 1.0, "text": 0.0},
        limit=2,
    )
    assert [d for d, _, _ in fused] == [1, 2]


@given(scores_strategy, st.integers(1, 50))
def test_fused_scores_are_bounded_sorted_and_complete(
    scores: dict[str, dict[int, float]], limit: int
) -> None:
    fused = score_fusion(scores, weights={"vector": 0.6, "text": 0.4}, limit=limit)
    ids = {d for by_id in scores.values() for d in by_id}
    assert len(fused) == min(limit, len(ids))
    values = [s for _, s, _ in fused]
    assert values == sorted(values, reverse=True)
    assert all(0 <= s <= 1.0 + 1e-9 for s in values)


@given(scores_strategy)
def test_an_id_best_in_every_method_it_is_in_everywhere_comes_first(
    scores: dict[str, dict[int, float]],
) -> None:
    champion = 99
    boosted = {
        m: {**by_id, champion: max(by_id.values(), default=1.0) + 1} for m, by_id in scores.items()
    }
    if boosted:
        assert score_fusion(boosted, limit=3)[0][0] == champion


@pytest.mark.parametrize("limit", [0, -1, True])
def test_limit_must_be_positive(limit: int) -> None:
    with pytest.raises(ValidationError):
        score_fusion({"text": {1: 1.0}}, limit=limit)


def test_negative_weight_is_refused() -> None:
    with pytest.raises(ValidationError):
        score_fusion({"text": {1: 1.0}}, weights={"text": -1.0}, limit=1)
