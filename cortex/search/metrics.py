"""Retrieval quality measures (graded relevance), as used by TREC and BEIR. Pure."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

__all__ = ["ndcg_at_k", "recall_at_k"]


def ndcg_at_k(ranked: Sequence[str], relevance: Mapping[str, int], k: int) -> float:
    """Normalised discounted cumulative gain of the first `k` results (0 when nothing is relevant).

    DCG = sum over ranks i = 1..k of rel_i / log2(i + 1), with graded rel_i (the linear gain used
    by trec_eval and BEIR); nDCG divides by the DCG of the ideal ordering.
    """
    gains = sorted((g for g in relevance.values() if g > 0), reverse=True)[:k]
    ideal = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    if ideal == 0:
        return 0.0
    dcg = sum(relevance.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]))
    return dcg / ideal


def recall_at_k(ranked: Sequence[str], relevance: Mapping[str, int], k: int) -> float:
    """The share of relevant documents (grade > 0) among the first `k` results."""
    relevant = {doc for doc, grade in relevance.items() if grade > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)
