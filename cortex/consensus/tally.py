"""`ConsensusTally`: an engine's incremental view of votes and fact outcomes, read from the ledger.

Per tenant it keeps each agent's standing vote per fact, the author (source) of every fact that
has votes or was deprecated, and how such facts ended; it reads only the ledger entries added
since its last read (`vote`, `deprecate`, `supersede`, `purge`, by `after_seq`, in pages), and
re-settles (`settle.settle`) only when one of them arrived. A read that finds the ledger at the
size it last saw costs one `tree_size` query. Memory per tenant is proportional to its standing
votes and deprecated facts, not to its facts; at most `max_tenants` tenants are kept (least
recently used dropped, rebuilt from the ledger on their next read). Writes by other processes
are seen on the next read, since everything comes from the ledger.
"""

from __future__ import annotations

import asyncio
from collections import Counter, OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from cortex.consensus.model import Consensus, Reputation, StandingVote
from cortex.consensus.scoring import ConsensusPolicy, reputation, vote_weight
from cortex.consensus.settle import (
    CastVote,
    FactEnd,
    FactRecord,
    Settlement,
    settle,
    standing_votes,
)
from cortex.consensus.votes import VOTE_OP
from cortex.errors import NotFound
from cortex.model import Fact, Transaction

__all__ = ["ConsensusTally", "LedgerReader", "Snapshot"]

_OPS = (VOTE_OP, "deprecate", "supersede", "purge")
_PAGE = 5000
_LOOKUPS = 8  # concurrent fact reads while learning authors
_INLINE_SETTLE = 2000  # standing votes settled on the event loop; more go to a thread


class LedgerReader(Protocol):
    """What the tally reads of a store."""

    async def tree_size(self, tenant: str) -> int: ...

    async def events(
        self,
        tenant: str,
        ops: Sequence[str],
        subject: str | None = None,
        after_seq: int = -1,
        limit: int = 1000,
    ) -> list[Transaction]: ...

    async def get_fact(self, tenant: str, fact_id: str, as_of: datetime | None = None) -> Fact: ...


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A settled state of one tenant: as of ledger entry `last_seq` (ledger size `tree_size`)."""

    settlement: Settlement
    standing: Mapping[str, int]  # agent -> number of standing votes
    tree_size: int
    last_seq: int


@dataclass(slots=True)
class _TenantTally:
    size: int = -1
    last_seq: int = -1
    votes: dict[str, dict[str, CastVote]] = field(default_factory=dict)
    authors: dict[str, str | None] = field(default_factory=dict)
    ends: dict[str, tuple[FactEnd, int]] = field(default_factory=dict)
    snapshot: Snapshot | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class ConsensusTally:
    """Consensus and reputation of one engine's tenants, kept up to date from the ledger."""

    def __init__(
        self, store: LedgerReader, policy: ConsensusPolicy, *, max_tenants: int = 16
    ) -> None:
        self._store = store
        self.policy = policy
        self._max_tenants = max_tenants
        self._tallies: OrderedDict[str, _TenantTally] = OrderedDict()

    async def snapshot(self, tenant: str) -> Snapshot:
        """The tenant's settled state at the ledger's current size (read incrementally)."""
        tally = self._tallies.get(tenant)
        if tally is None:
            tally = self._tallies[tenant] = _TenantTally()
            while len(self._tallies) > self._max_tenants:
                self._tallies.popitem(last=False)
        self._tallies.move_to_end(tenant)
        async with tally.lock:
            size = await self._store.tree_size(tenant)
            if tally.snapshot is not None and size == tally.size:
                return tally.snapshot
            changed = tally.snapshot is None
            unknown: set[str] = set()
            while True:
                page = await self._store.events(tenant, _OPS, None, tally.last_seq, _PAGE)
                for tx in page:
                    changed = _apply(tally, tx, unknown) or changed
                if page:
                    tally.last_seq = page[-1].seq
                if len(page) < _PAGE:
                    break
            if unknown:
                await self._learn(tenant, tally, unknown)
            tally.size = max(size, tally.last_seq + 1)
            if changed or tally.snapshot is None:
                tally.snapshot = await self._settle(tally)
            else:
                tally.snapshot = Snapshot(
                    tally.snapshot.settlement,
                    tally.snapshot.standing,
                    tally.size,
                    tally.last_seq,
                )
            return tally.snapshot

    async def consensus(self, tenant: str, fact: Fact) -> Consensus:
        """The consensus of `fact` (a fact of `tenant`) with its standing votes."""
        snap = await self.snapshot(tenant)
        entries: list[Transaction] = []
        after = -1
        while True:
            page = await self._store.events(tenant, (VOTE_OP,), fact.id, after, _PAGE)
            entries += [tx for tx in page if tx.seq <= snap.last_seq]
            if len(page) < _PAGE or page[-1].seq > snap.last_seq:
                break
            after = page[-1].seq
        latest: dict[str, Transaction] = {}
        for tx in entries:
            if tx.actor is not None:
                latest[tx.actor] = tx  # entries come in seq order: the last one stands
        settlement = snap.settlement
        found = settlement.score_of(fact.id)
        votes = []
        for agent, tx in sorted(latest.items(), key=lambda item: item[1].seq):
            evidence = settlement.evidence_of(agent)
            established = settlement.established(agent)
            counted = agent != fact.source
            weight = settlement.weight_of(agent) * (1.0 if established else found.fresh_scale)
            votes.append(
                StandingVote(
                    agent=agent,
                    value=int(tx.payload["value"]),
                    weight=weight if counted else 0.0,
                    reputation=reputation(evidence.good, evidence.bad, self.policy),
                    established=established,
                    counted=counted,
                    seq=tx.seq,
                    ts=tx.ts,
                    reason=tx.payload.get("reason"),
                )
            )
        outcome = found.outcome
        if outcome is None and fact.status == "deprecated":
            outcome = "refuted"
        return Consensus(
            tenant=tenant,
            fact_id=fact.id,
            score=found.score,
            status=found.status,
            outcome=outcome,
            support=found.support,
            opposition=found.opposition,
            fresh_scale=found.fresh_scale,
            verified_at=self.policy.verified_at,
            disputed_at=self.policy.disputed_at,
            votes=tuple(votes),
            votes_cast=len(entries),
            tree_size=snap.tree_size,
            converged=settlement.converged,
        )

    async def reputation(self, tenant: str, agent: str) -> Reputation:
        """The agent's reputation in `tenant`, with its record and the formula applied."""
        snap = await self.snapshot(tenant)
        found = snap.settlement.evidence_of(agent)
        policy = self.policy
        good, bad = found.good, found.bad
        score = reputation(good, bad, policy)
        weight = vote_weight(good, bad, policy)
        established = snap.settlement.established(agent)
        record = good + bad
        prior = policy.alpha + policy.beta
        pool = (
            f"established: good = {good} >= {policy.n_est}"
            if established
            else f"fresh: good = {good} < {policy.n_est}, votes pooled with other fresh agents'"
            f" (at most {policy.cap:g} in all per fact)"
        )
        formula = (
            f"score = (good + {policy.alpha:g}) / (n + {prior:g})"
            f" = ({good} + {policy.alpha:g}) / ({record} + {prior:g}) = {score:.4f};"
            f" weight = score * (good + 1) / (good + 1 + {policy.k:g})"
            f" = {score:.4f} * {good + 1} / {good + 1 + policy.k:g} = {weight:.4f}; {pool}"
        )
        return Reputation(
            tenant=tenant,
            agent=agent,
            score=score,
            weight=weight,
            established=established,
            good=good,
            bad=bad,
            facts_verified=found.facts_verified,
            facts_refuted=found.facts_refuted,
            votes_agreed=found.votes_agreed,
            votes_disagreed=found.votes_disagreed,
            votes_standing=snap.standing.get(agent, 0),
            formula=formula,
            tree_size=snap.tree_size,
            converged=snap.settlement.converged,
        )

    async def _learn(self, tenant: str, tally: _TenantTally, fact_ids: set[str]) -> None:
        """Record the author of each fact, and how it ended if that predates what was read."""
        gate = asyncio.Semaphore(_LOOKUPS)

        async def learn(fact_id: str) -> None:
            async with gate:
                try:
                    fact = await self._store.get_fact(tenant, fact_id)
                except NotFound:  # erased since its votes were logged
                    tally.authors[fact_id] = None
                    tally.ends.setdefault(fact_id, ("purged", -1))
                    return
                tally.authors[fact_id] = fact.source
                if fact.status in ("superseded", "purged") and fact_id not in tally.ends:
                    # It ended before anything about it was relevant here: find when.
                    status: FactEnd = "purged" if fact.status == "purged" else "superseded"
                    op, subject = (
                        ("purge", fact_id)
                        if status == "purged"
                        else ("supersede", fact.superseded_by)
                    )
                    found = await self._store.events(tenant, (op,), subject, -1, 1)
                    if found and found[0].seq <= tally.last_seq:
                        tally.ends[fact_id] = (status, found[0].seq)

        await asyncio.gather(*(learn(fact_id) for fact_id in sorted(fact_ids)))

    async def _settle(self, tally: _TenantTally) -> Snapshot:
        records = {
            fact_id: FactRecord(author, *tally.ends.get(fact_id, (None, None)))
            for fact_id, author in tally.authors.items()
        }
        # The caller holds the tenant's lock: nothing changes `votes` while a thread settles.
        votes = tally.votes
        if sum(len(cast) for cast in votes.values()) <= _INLINE_SETTLE:
            settlement, standing = _settled(records, votes, self.policy)
        else:
            settlement, standing = await asyncio.to_thread(_settled, records, votes, self.policy)
        return Snapshot(settlement, standing, tally.size, tally.last_seq)


def _settled(
    records: Mapping[str, FactRecord],
    votes: Mapping[str, Mapping[str, CastVote]],
    policy: ConsensusPolicy,
) -> tuple[Settlement, dict[str, int]]:
    standing = Counter(agent for cast in votes.values() for agent in cast)
    return settle(records, votes, policy), dict(standing)


def _apply(tally: _TenantTally, tx: Transaction, unknown: set[str]) -> bool:
    """Apply one ledger entry to the tally; True when it can change a score or reputation."""
    subject = tx.subject
    if subject is None:
        return False
    if tx.op == VOTE_OP:
        value = tx.payload.get("value")
        if tx.actor is None or value not in (1, -1) or isinstance(value, bool):
            return False  # not a vote CORTEX writes; `verify` judges the entry itself
        cast = tally.votes.setdefault(subject, {})
        standing_votes(((tx.actor, CastVote(int(value), tx.seq)),), cast)
        if subject not in tally.authors:
            unknown.add(subject)
        return True
    if tx.op == "deprecate":
        tally.ends[subject] = ("deprecated", tx.seq)
        if subject not in tally.authors:
            unknown.add(subject)
        return True
    if tx.op == "supersede":
        old = tx.payload.get("supersedes")
        if isinstance(old, str) and (old in tally.authors or old in unknown):
            tally.ends[old] = ("superseded", tx.seq)
            return True
        return False
    if tx.op == "purge" and (subject in tally.authors or subject in unknown):
        tally.ends[subject] = ("purged", tx.seq)
        return True
    return False
