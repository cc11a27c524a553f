"""Settling a tenant: from standing votes and fact outcomes to every score and reputation.

Pure: `settle(facts, votes, policy)` takes values and returns a `Settlement`. Reputation
depends on outcomes and outcomes on reputation-weighted votes, so it iterates from the prior
(every agent new): weights from evidence -> scores and statuses -> evidence, until the evidence
stops changing (a fixed point, `converged`) or `policy.rounds` rounds have run (the last
round's evidence is then the one reported and used). Everything is computed from sets and
sorted sequences, so the result does not depend on dictionary order.

Outcome of a fact, as evidence for its author and its voters:
- deprecated: refuted; purged: none (erasure says nothing about truth);
- otherwise (active or superseded) its consensus status: verified -> confirmed,
  disputed -> refuted, unverified -> none.

A vote earns evidence only when it was timely: cast before the fact was deprecated or
superseded, and, for an outcome set by the votes, no later than the vote at which the running
tally (votes in ledger order, each at a new agent's weight) first reached the final status; when
it never did (established weights settled it), every vote is timely. Piling onto a settled fact
earns nothing. An author's vote on its own fact is not counted at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from cortex.consensus.scoring import (
    ConsensusPolicy,
    ConsensusStatus,
    is_established,
    vote_weight,
)

__all__ = [
    "CastVote",
    "Evidence",
    "FactEnd",
    "FactRecord",
    "FactScore",
    "Outcome",
    "Settlement",
    "settle",
    "standing_votes",
]

FactEnd = Literal["deprecated", "superseded", "purged"]
Outcome = Literal["confirmed", "refuted"]


@dataclass(frozen=True, slots=True)
class CastVote:
    """An agent's standing vote on a fact: +1/-1 and the ledger seq that cast it."""

    value: int
    seq: int


@dataclass(frozen=True, slots=True)
class FactRecord:
    """What settling needs of a fact: who wrote it (its source) and whether and when it ended."""

    author: str | None
    ended: FactEnd | None = None
    ended_seq: int | None = None


@dataclass(frozen=True, slots=True)
class Evidence:
    """An agent's track record: settled facts it wrote and timely votes it cast."""

    facts_verified: int = 0
    facts_refuted: int = 0
    votes_agreed: int = 0
    votes_disagreed: int = 0

    @property
    def good(self) -> int:
        """Outcomes in the agent's favour: verified facts and agreeing votes."""
        return self.facts_verified + self.votes_agreed

    @property
    def bad(self) -> int:
        """Outcomes against it: refuted facts and disagreeing votes."""
        return self.facts_refuted + self.votes_disagreed

    @property
    def record(self) -> int:
        """`n = good + bad`."""
        return self.good + self.bad


@dataclass(frozen=True, slots=True)
class FactScore:
    """A fact's consensus: score, status, weights for and against, and its outcome."""

    score: float
    status: ConsensusStatus
    support: float
    opposition: float
    fresh_scale: float
    outcome: Outcome | None


_NO_EVIDENCE = Evidence()
_NO_VOTES = FactScore(0.0, "unverified", 0.0, 0.0, 1.0, None)


@dataclass(frozen=True, slots=True)
class Settlement:
    """Scores of every voted fact and evidence of every agent with a record, at one instant."""

    policy: ConsensusPolicy
    evidence: Mapping[str, Evidence]
    scores: Mapping[str, FactScore]
    rounds: int
    converged: bool

    def evidence_of(self, agent: str) -> Evidence:
        """The agent's evidence (empty for an agent without a record)."""
        return self.evidence.get(agent, _NO_EVIDENCE)

    def weight_of(self, agent: str) -> float:
        """The weight of the agent's vote (`scoring.vote_weight`)."""
        found = self.evidence_of(agent)
        return vote_weight(found.good, found.bad, self.policy)

    def established(self, agent: str) -> bool:
        """Whether the agent's votes count outside the capped fresh pool."""
        found = self.evidence_of(agent)
        return is_established(found.good, found.bad, self.policy)

    def score_of(self, fact_id: str) -> FactScore:
        """The fact's score: 0 and unverified when nobody's vote counts."""
        return self.scores.get(fact_id, _NO_VOTES)


def standing_votes(
    cast: Iterable[tuple[str, CastVote]], standing: dict[str, CastVote] | None = None
) -> dict[str, CastVote]:
    """Each agent's standing vote on one fact: its vote with the highest seq.

    Adds `cast` to `standing` (when given) and returns it: a later vote replaces an earlier one
    whatever order they come in, and replaced votes stay in the ledger only.
    """
    result = {} if standing is None else standing
    for agent, vote in cast:
        old = result.get(agent)
        if old is None or old.seq < vote.seq:
            result[agent] = vote
    return result


def settle(
    facts: Mapping[str, FactRecord],
    votes: Mapping[str, Mapping[str, CastVote]],
    policy: ConsensusPolicy = ConsensusPolicy(),
) -> Settlement:
    """Scores, statuses and evidence for every fact and agent (see the module docstring).

    `facts` must hold a record for every fact in `votes` and for every deprecated fact; a fact
    of `votes` without a record is treated as having no author and no end. Each round is a few
    array operations over all standing votes (numpy), so a tenant with 10,000 votes settles in
    milliseconds. Sums run in a fixed order (facts, agents and votes sorted), so the result
    does not depend on the order of the inputs; they may differ from `consensus_score`'s exact
    sums in the last bits.
    """
    board = _Board.build(facts, votes, policy)
    evidence = np.zeros((4, len(board.agents)), dtype=np.int64)
    rounds = 0
    while True:
        rounds += 1
        parts = board.score(evidence)
        if rounds > policy.rounds:
            # No fixed point within the rounds: scores under the last round's evidence.
            return board.settlement(evidence, parts, policy.rounds, converged=False)
        found = board.evidence(parts)
        if np.array_equal(found, evidence):
            return board.settlement(evidence, parts, rounds, converged=True)
        evidence = found


_ENDS: dict[FactEnd | None, int] = {None: 0, "deprecated": 1, "superseded": 2, "purged": 3}
_NEVER = np.iinfo(np.int64).max


@dataclass(frozen=True, slots=True)
class _Parts:
    """Per fact: score, status (1 verified, -1 disputed, 0), support, opposition, fresh scale."""

    score: NDArray[np.float64]
    status: NDArray[np.int8]
    support: NDArray[np.float64]
    opposition: NDArray[np.float64]
    scale: NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class _Board:
    """A tenant's facts, agents and counted votes as arrays (votes sorted by fact, then seq)."""

    policy: ConsensusPolicy
    facts: list[str]
    agents: list[str]
    voted: NDArray[np.bool_]  # per fact: in `votes` (has a score)
    author: NDArray[np.int64]  # per fact: agent index, -1 for none
    ended: NDArray[np.int8]  # per fact: _ENDS code
    ended_seq: NDArray[np.int64]  # per fact: seq of the end, _NEVER for none
    fact: NDArray[np.int64]  # per vote
    agent: NDArray[np.int64]
    up: NDArray[np.bool_]
    seq: NDArray[np.int64]
    first_verified: NDArray[np.int64]  # per fact: position of the vote that first reached it
    first_disputed: NDArray[np.int64]
    position: NDArray[np.int64]  # per vote: its position among its fact's votes

    @classmethod
    def build(
        cls,
        facts: Mapping[str, FactRecord],
        votes: Mapping[str, Mapping[str, CastVote]],
        policy: ConsensusPolicy,
    ) -> _Board:
        fact_ids = sorted(set(facts) | set(votes))
        names = {a for cast in votes.values() for a in cast}
        names |= {r.author for r in facts.values() if r.author is not None}
        agents = sorted(names)
        fact_index = {f: i for i, f in enumerate(fact_ids)}
        agent_index = {a: i for i, a in enumerate(agents)}
        records = [facts.get(f) or FactRecord(None) for f in fact_ids]
        author = np.array(
            [-1 if r.author is None else agent_index[r.author] for r in records], dtype=np.int64
        )
        rows = []
        for f, cast in votes.items():
            index, record = fact_index[f], facts.get(f)
            own = None if record is None else record.author
            rows += [
                (index, vote.seq, agent_index[a], vote.value > 0)
                for a, vote in cast.items()
                if a != own
            ]
        rows.sort()
        fact = np.array([r[0] for r in rows], dtype=np.int64)
        counts = np.bincount(fact, minlength=len(fact_ids))
        starts = np.cumsum(counts) - counts
        position = np.arange(len(rows), dtype=np.int64) - starts[fact]
        up = np.array([r[3] for r in rows], dtype=np.bool_)
        first_verified, first_disputed = _first_reached(fact, up, starts, policy)
        return cls(
            policy=policy,
            facts=fact_ids,
            agents=agents,
            voted=np.array([f in votes for f in fact_ids], dtype=np.bool_),
            author=author,
            ended=np.array([_ENDS[r.ended] for r in records], dtype=np.int8),
            ended_seq=np.array(
                [_NEVER if r.ended_seq is None else r.ended_seq for r in records], dtype=np.int64
            ),
            fact=fact,
            agent=np.array([r[2] for r in rows], dtype=np.int64),
            up=up,
            seq=np.array([r[1] for r in rows], dtype=np.int64),
            first_verified=first_verified,
            first_disputed=first_disputed,
            position=position,
        )

    def score(self, evidence: NDArray[np.int64]) -> _Parts:
        """Every fact's consensus under the agents' `evidence` (`scoring.score_parts`)."""
        policy = self.policy
        good = evidence[0] + evidence[2]
        bad = evidence[1] + evidence[3]
        reputation = (good + policy.alpha) / (good + bad + policy.alpha + policy.beta)
        weight = (reputation * (good + 1) / (good + 1 + policy.k))[self.agent]
        established = (good >= policy.n_est)[self.agent]
        size = len(self.facts)

        def total(mask: NDArray[np.bool_]) -> NDArray[np.float64]:
            found = np.bincount(self.fact[mask], weights=weight[mask], minlength=size)
            return found.astype(np.float64)

        est_for, est_against = total(established & self.up), total(established & ~self.up)
        fresh_for, fresh_against = total(~established & self.up), total(~established & ~self.up)
        fresh = fresh_for + fresh_against
        scale = np.ones(size)
        over = fresh > policy.cap
        scale[over] = policy.cap / fresh[over]
        support = est_for + scale * fresh_for
        opposition = est_against + scale * fresh_against
        score = (support - opposition) / (support + opposition + policy.s0)
        status = np.zeros(size, dtype=np.int8)
        status[score >= policy.verified_at] = 1
        status[score <= policy.disputed_at] = -1
        return _Parts(score, status, support, opposition, scale)

    def outcome(self, parts: _Parts) -> NDArray[np.int8]:
        """Per fact: 1 confirmed, -1 refuted, 0 none (see the module docstring)."""
        outcome = parts.status.copy()
        outcome[self.ended == _ENDS["deprecated"]] = -1
        outcome[self.ended == _ENDS["purged"]] = 0
        return outcome

    def evidence(self, parts: _Parts) -> NDArray[np.int64]:
        """Rows facts_verified, facts_refuted, votes_agreed, votes_disagreed, per agent."""
        outcome = self.outcome(parts)
        size = len(self.agents)
        written = self.author >= 0
        verified = np.bincount(self.author[written & (outcome == 1)], minlength=size)
        refuted = np.bincount(self.author[written & (outcome == -1)], minlength=size)
        last = np.full(len(self.facts), _NEVER, dtype=np.int64)
        last[parts.status == 1] = self.first_verified[parts.status == 1]
        last[parts.status == -1] = self.first_disputed[parts.status == -1]
        last[self.ended == _ENDS["deprecated"]] = _NEVER
        settled = outcome[self.fact]
        timely = (
            (settled != 0)
            & (self.seq < self.ended_seq[self.fact])
            & (self.position <= last[self.fact])
        )
        agreed = timely & (self.up == (settled > 0))
        disagreed = timely & ~agreed
        return np.stack(
            [
                verified,
                refuted,
                np.bincount(self.agent[agreed], minlength=size),
                np.bincount(self.agent[disagreed], minlength=size),
            ]
        ).astype(np.int64)

    def settlement(
        self, evidence: NDArray[np.int64], parts: _Parts, rounds: int, *, converged: bool
    ) -> Settlement:
        outcome = self.outcome(parts)
        statuses: dict[int, ConsensusStatus] = {1: "verified", -1: "disputed", 0: "unverified"}
        outcomes: dict[int, Outcome | None] = {1: "confirmed", -1: "refuted", 0: None}
        scores = {
            self.facts[i]: FactScore(
                float(parts.score[i]),
                statuses[int(parts.status[i])],
                float(parts.support[i]),
                float(parts.opposition[i]),
                float(parts.scale[i]),
                outcomes[int(outcome[i])],
            )
            for i in np.flatnonzero(self.voted).tolist()
        }
        found = {
            self.agents[i]: Evidence(*(int(n) for n in evidence[:, i]))
            for i in np.flatnonzero(evidence.sum(axis=0)).tolist()
        }
        return Settlement(self.policy, found, scores, rounds, converged)


def _first_reached(
    fact: NDArray[np.int64],
    up: NDArray[np.bool_],
    starts: NDArray[np.int64],
    policy: ConsensusPolicy,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Per fact, the position of the vote at which the running tally first reached verified,
    and disputed (_NEVER when it never did). Votes are sorted by fact, then seq; `starts[f]` is
    the index of fact f's first vote.

    The tally counts every vote at a new agent's weight, so when a vote was cast does not
    depend on reputations settled later (which would reward whoever happened to vote first).
    """
    firsts = np.full(len(starts), _NEVER, dtype=np.int64), np.full(len(starts), _NEVER, np.int64)
    if not len(fact):
        return firsts
    weight = vote_weight(0, 0, policy)  # a new agent's; never established (n_est >= 1)
    ups, downs = np.cumsum(up), np.cumsum(~up)
    first = starts[fact]
    position = np.arange(len(fact), dtype=np.int64) - first
    plus = (ups - np.where(first > 0, ups[first - 1], 0)) * weight
    minus = (downs - np.where(first > 0, downs[first - 1], 0)) * weight
    fresh = plus + minus
    scale = np.minimum(1.0, policy.cap / fresh)  # fresh >= one vote's weight > 0
    score = scale * (plus - minus) / (scale * fresh + policy.s0)
    for found, reached in zip(
        firsts, (score >= policy.verified_at, score <= policy.disputed_at), strict=True
    ):
        np.minimum.at(found, fact[reached], position[reached])
    return firsts
