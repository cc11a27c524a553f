"""nDCG and recall follow their textbook definitions."""

from __future__ import annotations

import math

import pytest

from cortex.search.metrics import ndcg_at_k, recall_at_k


def test_ndcg_of_the_ideal_order_is_one_and_of_no_relevant_hit_is_zero() -> None:
    relevance = {"a": 2, "b": 1}
    assert ndcg_at_k(["a", "b", "c"], relevance, 10) == pytest.approx(1.0)
    assert ndcg_at_k(["x", "y"], relevance, 10) == 0.0
    assert ndcg_at_k(["a"], {}, 10) == 0.0


def test_ndcg_discounts_by_log_rank() -> None:
    relevance = {"a": 1}
    assert ndcg_at_k(["x", "a"], relevance, 10) == pytest.approx(1 / math.log2(3))
    assert ndcg_at_k(["x", "a"], relevance, 1) == 0.0


def test_ndcg_prefers_the_higher_grade_first() -> None:
    relevance = {"a": 2, "b": 1}
    assert ndcg_at_k(["b", "a"], relevance, 10) < ndcg_at_k(["a", "b"], relevance, 10)


def test_recall_counts_relevant_hits_within_k() -> None:
    relevance = {"a": 2, "b": 1, "c": 0}
    assert recall_at_k(["a", "c", "b"], relevance, 2) == 0.5
    assert recall_at_k(["a", "c", "b"], relevance, 3) == 1.0
