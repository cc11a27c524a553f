"""Fusion of candidate lists: Reciprocal Rank Fusion and max-normalised score fusion (pure).

Cormack, Clarke & Büttcher, "Reciprocal Rank Fusion outperforms Condorcet and individual Rank
Learning Methods", SIGIR 2009: an item's fused score is ``sum over rankings r of 1 / (k + r(d))``
with ``k = 60``. It uses ranks only, so scores on different scales (cosine similarity, BM25)
need no calibration before they are combined.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Hashable, Mapping, Sequence
from operator import itemgetter
from typing import Protocol, Self, TypeVar

from cortex.errors import ValidationError

__all__ = ["RankedId", "reciprocal_rank_fusion", "score_fusion"]


class RankedId(Hashable, Protocol):
    """What fusion needs of an id: usable as a dict key and ordered, to break ties."""

    def __lt__(self, other: Self, /) -> bool: ...


K = TypeVar("K", bound=RankedId)


def reciprocal_rank_fusion(
    rankings: Mapping[str, Sequence[K]],
    *,
    k: int = 60,
    weights: Mapping[str, float] | None = None,
    limit: int,
) -> list[tuple[K, float, dict[str, int]]]:
    """Returns the `limit` best ``(id, score, {method: rank})`` of the fused rankings, best first.

    Implements Reciprocal Rank Fusion (Cormack, Clarke & Büttcher, SIGIR 2009) with weights::

        score(d) = sum over methods m ranking d of  weights[m] / (k + rank_m(d))

    `rankings` maps a method name ("vector", "text") to its ids, best first; ranks start at 1 and
    an id listed twice by one method keeps its first rank. A method missing from `weights` weighs
    1.0; a method weighing 0 is ignored, as if absent (its ids are not returned on its account).
    Ties in score go to the id with the best single rank, then to the smaller id, so the result
    depends only on the input. Requires ``k >= 1``, finite ``weights >= 0`` and ``limit >= 1``.
    Memory is linear in the total length of `rankings`.
    """
    if k < 1:
        raise ValidationError(f"the RRF constant k must be at least 1, not {k}")
    if limit < 1:
        raise ValidationError(f"limit must be at least 1, not {limit}")
    weight_of = dict(weights or {})
    for method, weight in weight_of.items():
        if not (math.isfinite(weight) and weight >= 0):
            raise ValidationError(
                f"the weight of method {method!r} must be a finite number >= 0, not {weight}"
            )
    ranks_of: dict[K, dict[str, int]] = {}
    for method in sorted(rankings):
        if weight_of.get(method, 1.0) == 0:
            continue
        for rank, item in enumerate(rankings[method], start=1):
            ranks_of.setdefault(item, {}).setdefault(method, rank)

    def fused(item: K, ranks: dict[str, int]) -> tuple[K, float, dict[str, int]]:
        # fsum is exact before its one rounding, so equal contributions in any order give equal
        # scores, and a better rank can never round to a lower score.
        score = math.fsum(weight_of.get(m, 1.0) / (k + rank) for m, rank in ranks.items())
        return item, score, ranks

    return heapq.nsmallest(
        limit,
        (fused(item, ranks) for item, ranks in ranks_of.items()),
        key=lambda entry: (-entry[1], min(entry[2].values()), entry[0]),
    )


def score_fusion(
    scores: Mapping[str, Mapping[K, float]],
    *,
    weights: Mapping[str, float] | None = None,
    limit: int,
) -> list[tuple[K, float, dict[str, int]]]:
    """Fuse methods by a weighted sum of their scores, each scaled by its best score.

    score(d) = sum over methods m of w_m * s_m(d) / max_d' s_m(d'), where s_m is method m's
    score (higher is better; a method's best score must be > 0 to count) and a document that a
    method did not return contributes 0 for it: a convex combination of max-normalised scores
    when the weights sum to 1. Unlike rank fusion it keeps how much better one candidate is than
    the next, which measured better than RRF on SciFact and LoCoMo (see bench/README.md).
    Returns at most `limit` (id, score, {method: rank}) by score, ties by best rank then by id.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValidationError(f"limit must be a positive integer, got {limit!r}")
    fused: dict[K, float] = {}
    rank_maps: dict[str, dict[K, int]] = {}
    for method, by_id in scores.items():
        weight = 1.0 if weights is None else weights.get(method, 1.0)
        if not math.isfinite(weight) or weight < 0:
            raise ValidationError(f"weight of {method!r} must be a finite number >= 0")
        # Best score first, equal scores by id: sort by id, then (stable) by score descending.
        ordered = sorted(sorted(by_id.items()), key=itemgetter(1), reverse=True)
        rank_maps[method] = dict(
            zip(map(itemgetter(0), ordered), range(1, len(ordered) + 1), strict=True)
        )
        top = ordered[0][1] if ordered else 0.0
        scale = weight / top if weight != 0 and top > 0 else 0.0
        for doc, value in ordered:
            fused[doc] = fused.get(doc, 0.0) + (value * scale if scale else 0.0)
    # Only the candidates that can make the cut need their ranks: those scoring at least the
    # limit-th best score (ties at the boundary included), then the full order among them.
    if len(fused) > limit:
        cut = heapq.nlargest(limit, fused.values())[-1]
        contenders = [doc for doc, value in fused.items() if value >= cut]
    else:
        contenders = list(fused)

    def ranks_of(doc: K) -> dict[str, int]:
        return {m: found[doc] for m, found in rank_maps.items() if doc in found}

    ranked = {doc: ranks_of(doc) for doc in contenders}
    best = sorted(contenders, key=lambda doc: (-fused[doc], min(ranked[doc].values()), doc))
    return [(doc, fused[doc], ranked[doc]) for doc in best[:limit]]
