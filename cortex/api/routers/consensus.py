"""Consensus: vote on a fact, read its consensus, read an agent's reputation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from starlette.responses import Response

from cortex.api.deps import Reader, Writer, known_query_only
from cortex.api.routers._responses import PROBLEMS, json_response
from cortex.api.schemas import NAME_PATTERN, ConsensusOut, ReputationOut, VoteIn, VoteOut

__all__ = ["router"]

router = APIRouter(
    prefix="/v1", tags=["consensus"], responses=PROBLEMS, dependencies=[Depends(known_query_only)]
)

FactId = Annotated[
    str,
    Path(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z]+$", description="A fact id (ULID)."),
]
Agent = Annotated[str, Path(pattern=NAME_PATTERN, description="An agent name.")]


@router.post(
    "/facts/{fact_id}/votes", status_code=201, response_model=VoteOut, summary="Vote on a fact"
)
async def vote_on_fact(fact_id: FactId, body: VoteIn, scope: Writer) -> Response:
    """Log a vote (+1 or -1) on an active fact; the agent's latest vote is the one counted.

    The vote is cast as the key's identity: the agent the key is bound to (`cortex keys create
    --agent`), else `key-<key id>`; `agent`, when given, must be that name (403 otherwise), so
    one agent's reputation cannot be used by another's key. A deprecated or superseded fact
    answers 409.
    """
    await scope.check_fact(fact_id)
    vote = await scope.engine.vote(
        fact_id,
        body.value,
        agent=scope.voter(body.agent),
        reason=body.reason,
        tenant=scope.tenant,
    )
    scope.service.metrics.writes.labels("vote").inc()
    return json_response(vote.to_dict(), 201)


@router.get(
    "/facts/{fact_id}/consensus", response_model=ConsensusOut, summary="Consensus of a fact"
)
async def fact_consensus(fact_id: FactId, scope: Reader) -> Response:
    """The fact's reputation-weighted vote score, status and standing votes."""
    await scope.check_fact(fact_id)
    found = await scope.engine.consensus(fact_id, tenant=scope.tenant)
    return json_response(found.to_dict())


@router.get(
    "/agents/{agent}/reputation", response_model=ReputationOut, summary="Reputation of an agent"
)
async def agent_reputation(agent: Agent, scope: Reader) -> Response:
    """The agent's reputation in the key's tenant, its vote weight and its record."""
    found = await scope.engine.reputation(agent, tenant=scope.tenant)
    return json_response(found.to_dict())
