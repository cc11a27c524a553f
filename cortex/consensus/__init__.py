"""Consensus and reputation: agents vote on facts; reputation-weighted votes verify or dispute them.

Votes are `vote` ledger entries (`Cortex.vote`); `Cortex.consensus(fact_id)` and
`Cortex.reputation(agent)` read them back through `ConsensusTally`. The formulas are pure
functions in `scoring` (property-tested), applied to a whole tenant by `settle`; `ranking`
filters and boosts search hits by consensus. See docs/consensus.md.
"""

from cortex.consensus.model import Consensus, Reputation, StandingVote, Vote
from cortex.consensus.ranking import (
    CONSENSUS_FILTERS,
    ConsensusFilter,
    check_search,
    rank_by_consensus,
)
from cortex.consensus.scoring import (
    ConsensusPolicy,
    ConsensusStatus,
    ScoreParts,
    WeightedVote,
    consensus_score,
    consensus_status,
    is_established,
    reputation,
    score_parts,
    vote_weight,
)
from cortex.consensus.settle import (
    CastVote,
    Evidence,
    FactRecord,
    FactScore,
    Settlement,
    settle,
    standing_votes,
)
from cortex.consensus.tally import ConsensusTally, Snapshot
from cortex.consensus.votes import VOTE_OP, vote_payload

__all__ = [
    "CONSENSUS_FILTERS",
    "VOTE_OP",
    "CastVote",
    "Consensus",
    "ConsensusFilter",
    "ConsensusPolicy",
    "ConsensusStatus",
    "ConsensusTally",
    "Evidence",
    "FactRecord",
    "FactScore",
    "Reputation",
    "ScoreParts",
    "Settlement",
    "Snapshot",
    "StandingVote",
    "Vote",
    "WeightedVote",
    "check_search",
    "consensus_score",
    "consensus_status",
    "is_established",
    "rank_by_consensus",
    "reputation",
    "score_parts",
    "settle",
    "standing_votes",
    "vote_payload",
    "vote_weight",
]
