"""The approval gate and purge: list, approve and deny approvals; erase a fact.

Approvals span the whole tenant, so listing and deciding them needs an admin key without a
project. A gated request without a token is answered 202 with the approval it waits for.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from starlette.responses import Response

from cortex.api.deps import Admin, Scope, TenantAdmin, known_query_only
from cortex.api.routers._responses import PROBLEMS, json_response
from cortex.api.routers.facts import FactId
from cortex.api.schemas import (
    ApprovalListOut,
    ApprovalRequiredOut,
    DecisionIn,
    DecisionOut,
    PurgedOut,
    PurgeIn,
)

__all__ = ["APPROVAL_REQUIRED", "router"]

router = APIRouter(
    prefix="/v1", tags=["gate"], responses=PROBLEMS, dependencies=[Depends(known_query_only)]
)

ApprovalId = Annotated[
    str,
    Path(min_length=26, max_length=26, pattern=r"^[0-9A-Za-z]+$", description="Approval id."),
]

APPROVAL_REQUIRED: dict[int | str, dict[str, Any]] = {
    202: {
        "model": ApprovalRequiredOut,
        "description": (
            "Not done: the action waits for the approval named in the body (approve it, then"
            " repeat the request with its token as `approval`)"
        ),
    }
}


def _actor(scope: Scope) -> str:
    return scope.key.identity


def _reason(body: DecisionIn | None) -> str | None:
    return None if body is None else body.reason


@router.get("/gate", response_model=ApprovalListOut, summary="List approvals")
async def list_approvals(scope: TenantAdmin, include_all: bool = False) -> Response:
    """The tenant's approvals that await a decision or use (`include_all`: every one)."""
    found = await scope.engine.approvals(include_all=include_all, tenant=scope.tenant)
    return json_response({"items": [a.to_dict() for a in found]})


@router.post("/gate/{approval_id}/approve", response_model=DecisionOut, summary="Approve")
async def approve(
    approval_id: ApprovalId, scope: TenantAdmin, body: DecisionIn | None = None
) -> Response:
    """Approve a pending approval; the answer's `token` (shown once) lets the action run once.

    Another admin key than the one that asked must approve (403 otherwise), unless the server's
    setting `gate_self_approval` is true.
    """
    decision = await scope.engine.approve(
        approval_id,
        reason=_reason(body),
        actor=_actor(scope),
        tenant=scope.tenant,
        four_eyes=not scope.service.settings.gate_self_approval,
    )
    return json_response(decision.to_dict())


@router.post("/gate/{approval_id}/deny", response_model=DecisionOut, summary="Deny")
async def deny(
    approval_id: ApprovalId, scope: TenantAdmin, body: DecisionIn | None = None
) -> Response:
    """Deny a pending approval: its action may not run."""
    decision = await scope.engine.deny(
        approval_id, reason=_reason(body), actor=_actor(scope), tenant=scope.tenant
    )
    return json_response(decision.to_dict())


@router.post(
    "/facts/{fact_id}/purge",
    response_model=PurgedOut,
    responses=APPROVAL_REQUIRED,
    summary="Purge a fact (right to erasure)",
    tags=["facts"],
)
async def purge_fact(fact_id: FactId, body: PurgeIn, scope: Admin) -> Response:
    """Destroy the fact's content, tags and meta; its ledger entries stay and still verify.

    Without `approval`: 202 naming the approval it waits for. With the approval's token: the
    purged versions (one, or its whole chain with `all_versions`).
    """
    await scope.check_fact(fact_id)
    if body.all_versions:
        scope.whole_tenant("purging every version")  # versions may lie in other projects
    purged = await scope.engine.purge(
        fact_id,
        body.reason,
        approval=body.approval,
        all_versions=body.all_versions,
        actor=_actor(scope),
        tenant=scope.tenant,
    )
    scope.service.metrics.writes.labels("purge").inc(len(purged))
    return json_response({"items": [fact.to_dict() for fact in purged]})
