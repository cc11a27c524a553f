"""Values of the consensus feature: a vote, a fact's consensus, an agent's reputation.

Frozen dataclasses with `to_dict()` (the JSON of the CLI and the API) and `from_dict()` (the
client SDK's way back), like the values of `cortex.model`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from cortex.consensus.scoring import ConsensusStatus
from cortex.model import Transaction

__all__ = ["Consensus", "Reputation", "StandingVote", "Vote"]


@dataclass(frozen=True, slots=True)
class Vote:
    """One vote as logged: `value` +1 or -1 by `agent` on `fact_id`, at ledger entry `seq`."""

    tenant: str
    fact_id: str
    agent: str
    value: int
    reason: str | None
    seq: int
    ts: str

    @classmethod
    def from_transaction(cls, tx: Transaction) -> Vote:
        """The vote a `vote` ledger entry records."""
        assert tx.subject is not None
        assert tx.actor is not None
        return cls(
            tx.tenant,
            tx.subject,
            tx.actor,
            int(tx.payload["value"]),
            tx.payload.get("reason"),
            tx.seq,
            tx.ts,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "tenant": self.tenant,
            "fact_id": self.fact_id,
            "agent": self.agent,
            "value": self.value,
            "reason": self.reason,
            "seq": self.seq,
            "ts": self.ts,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Vote:
        """A Vote from its `to_dict()` form."""
        return cls(
            data["tenant"],
            data["fact_id"],
            data["agent"],
            data["value"],
            data["reason"],
            data["seq"],
            data["ts"],
        )


@dataclass(frozen=True, slots=True)
class StandingVote:
    """An agent's current vote on a fact and what it counts for.

    `weight` is what the score counted: the agent's vote weight, times the fresh pool's scale
    for an agent that is not established, and 0 when `counted` is False (the fact's own
    author). `reputation` is the agent's, `seq`/`ts`/`reason` those of its latest vote.
    """

    agent: str
    value: int
    weight: float
    reputation: float
    established: bool
    counted: bool
    seq: int
    ts: str
    reason: str | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "agent": self.agent,
            "value": self.value,
            "weight": self.weight,
            "reputation": self.reputation,
            "established": self.established,
            "counted": self.counted,
            "seq": self.seq,
            "ts": self.ts,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StandingVote:
        """A StandingVote from its `to_dict()` form."""
        return cls(
            data["agent"],
            data["value"],
            float(data["weight"]),
            float(data["reputation"]),
            data["established"],
            data["counted"],
            data["seq"],
            data["ts"],
            data["reason"],
        )


@dataclass(frozen=True, slots=True)
class Consensus:
    """A fact's consensus: its score in (-1, 1), status, and the standing votes behind it.

    `support`/`opposition` are the weights counted for and against; `fresh_scale` the factor
    applied to agents that are not established (1 unless their pool exceeded its cap).
    `outcome` is what the fact counts as for reputations: `confirmed`, `refuted` (disputed, or
    deprecated whatever the votes) or None. `votes_cast` counts every vote entry in the ledger,
    replaced ones included. `tree_size` is the ledger size the figures were computed at.
    """

    tenant: str
    fact_id: str
    score: float
    status: ConsensusStatus
    outcome: Literal["confirmed", "refuted"] | None
    support: float
    opposition: float
    fresh_scale: float
    verified_at: float
    disputed_at: float
    votes: tuple[StandingVote, ...]
    votes_cast: int
    tree_size: int
    converged: bool

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "tenant": self.tenant,
            "fact_id": self.fact_id,
            "score": self.score,
            "status": self.status,
            "outcome": self.outcome,
            "support": self.support,
            "opposition": self.opposition,
            "fresh_scale": self.fresh_scale,
            "verified_at": self.verified_at,
            "disputed_at": self.disputed_at,
            "votes": [v.to_dict() for v in self.votes],
            "votes_cast": self.votes_cast,
            "tree_size": self.tree_size,
            "converged": self.converged,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Consensus:
        """A Consensus from its `to_dict()` form."""
        return cls(
            tenant=data["tenant"],
            fact_id=data["fact_id"],
            score=float(data["score"]),
            status=data["status"],
            outcome=data["outcome"],
            support=float(data["support"]),
            opposition=float(data["opposition"]),
            fresh_scale=float(data["fresh_scale"]),
            verified_at=float(data["verified_at"]),
            disputed_at=float(data["disputed_at"]),
            votes=tuple(StandingVote.from_dict(v) for v in data["votes"]),
            votes_cast=data["votes_cast"],
            tree_size=data["tree_size"],
            converged=data["converged"],
        )


@dataclass(frozen=True, slots=True)
class Reputation:
    """An agent's reputation in (0, 1), the weight of its votes, and the record behind them.

    `good` = facts it wrote that were verified + timely votes that agreed with a fact's
    outcome; `bad` = its refuted facts + timely votes that disagreed. `votes_standing` counts
    its current votes, settled or not. `formula` shows the computation with these numbers.
    """

    tenant: str
    agent: str
    score: float
    weight: float
    established: bool
    good: int
    bad: int
    facts_verified: int
    facts_refuted: int
    votes_agreed: int
    votes_disagreed: int
    votes_standing: int
    formula: str
    tree_size: int
    converged: bool

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "tenant": self.tenant,
            "agent": self.agent,
            "score": self.score,
            "weight": self.weight,
            "established": self.established,
            "good": self.good,
            "bad": self.bad,
            "facts_verified": self.facts_verified,
            "facts_refuted": self.facts_refuted,
            "votes_agreed": self.votes_agreed,
            "votes_disagreed": self.votes_disagreed,
            "votes_standing": self.votes_standing,
            "formula": self.formula,
            "tree_size": self.tree_size,
            "converged": self.converged,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Reputation:
        """A Reputation from its `to_dict()` form."""
        values = dict(data)
        values["score"] = float(values["score"])
        values["weight"] = float(values["weight"])
        return cls(**values)
