"""Search by consensus: filter and boost fused search hits by their facts' consensus (pure)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Literal

from cortex.consensus.settle import FactScore
from cortex.errors import ValidationError
from cortex.model import SearchHit

__all__ = ["CONSENSUS_FILTERS", "MAX_BOOST", "ConsensusFilter", "check_search", "rank_by_consensus"]

ConsensusFilter = Literal["verified", "not_disputed"]
CONSENSUS_FILTERS: tuple[ConsensusFilter, ...] = ("verified", "not_disputed")
MAX_BOOST = 10.0


def check_search(consensus: object, boost: object) -> float:
    """Validate search's `consensus` and `consensus_boost`; return the boost as a float."""
    if consensus is not None and consensus not in CONSENSUS_FILTERS:
        raise ValidationError("consensus must be 'verified', 'not_disputed' or None")
    if isinstance(boost, bool) or not isinstance(boost, int | float) or not 0 <= boost <= MAX_BOOST:
        raise ValidationError(f"consensus_boost must be a number between 0 and {MAX_BOOST:g}")
    return float(boost)


def rank_by_consensus(
    hits: Sequence[SearchHit],
    score_of: Callable[[str], FactScore],
    *,
    consensus: ConsensusFilter | None,
    boost: float,
    k: int,
) -> list[SearchHit]:
    """The best `k` of `hits` after the consensus filter and boost.

    `verified` keeps facts whose status is verified; `not_disputed` drops disputed ones. With
    `boost` b > 0, each kept hit's score s becomes `(s - lo) / (hi - lo) + b * c`: its search
    score min-max normalised over the kept hits (1 when they are all equal) plus b times its
    consensus score c in (-1, 1); hits are re-sorted by it (ties keep search order) and carry
    it as their `score`. With b = 0 the kept hits keep their scores and order.
    """
    kept = [
        (hit, score_of(hit.fact.id))
        for hit in hits
        if consensus is None or _passes(score_of(hit.fact.id), consensus)
    ]
    if not boost:
        return [hit for hit, _ in kept[:k]]
    if not kept:
        return []
    low = min(hit.score for hit, _ in kept)
    span = max(hit.score for hit, _ in kept) - low
    boosted = [
        ((hit.score - low) / span if span > 0 else 1.0) + boost * found.score for hit, found in kept
    ]
    order = sorted(range(len(kept)), key=lambda i: (-boosted[i], i))
    return [dataclasses.replace(kept[i][0], score=boosted[i]) for i in order[:k]]


def _passes(found: FactScore, consensus: ConsensusFilter) -> bool:
    if consensus == "verified":
        return found.status == "verified"
    return found.status != "disputed"
