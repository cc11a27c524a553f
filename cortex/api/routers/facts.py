"""Facts: store (one or a batch), get, list, deprecate, supersede, history."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from starlette.responses import Response

from cortex.api.deps import Reader, Scope, Writer, known_query_only
from cortex.api.routers._responses import PROBLEMS, json_response
from cortex.api.schemas import (
    NAME_PATTERN,
    DeprecateIn,
    FactBatchIn,
    FactIn,
    FactListOut,
    FactOut,
    HistoryOut,
    PageOut,
    SupersedeIn,
)
from cortex.engine import MAX_PAGE

__all__ = ["router"]

router = APIRouter(
    prefix="/v1/facts", tags=["facts"], responses=PROBLEMS, dependencies=[Depends(known_query_only)]
)

FactId = Annotated[
    str,
    Path(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z]+$", description="A fact id (ULID)."),
]
NameQuery = Annotated[str | None, Query(pattern=NAME_PATTERN)]


async def _draft(
    scope: Scope, fact: FactIn, sources: dict[str | None, str | None] | None = None
) -> dict[str, Any]:
    """The engine's arguments for `fact`; `sources` remembers the source names already
    checked for this request (a batch names few distinct sources)."""
    values = fact.model_dump(exclude_none=True)
    values["project"] = scope.project(fact.project)
    if values["project"] is None:
        del values["project"]
    if sources is not None and fact.source in sources:
        source = sources[fact.source]
    else:
        source = await scope.agent(fact.source, "source")
        if sources is not None:
            sources[fact.source] = source
    if source is not None:
        values["source"] = source
    return values


@router.post("", status_code=201, response_model=FactOut, summary="Store one fact")
async def store_fact(body: FactIn, scope: Writer) -> Response:
    """Store one fact; answered once its ledger entry is durably committed."""
    fact = await scope.engine.store(tenant=scope.tenant, **await _draft(scope, body))
    scope.service.metrics.writes.labels("store").inc()
    return json_response(fact.to_dict(), 201)


@router.post(
    "/batch", status_code=201, response_model=FactListOut, summary="Store facts in one commit"
)
async def store_facts(body: FactBatchIn, scope: Writer) -> Response:
    """Store up to 1000 facts in one group commit: all of them, or none if any is invalid."""
    sources: dict[str | None, str | None] = {}  # at most one per distinct name in the batch
    drafts = [await _draft(scope, item, sources) for item in body.facts]
    facts = await scope.engine.store_many(drafts, tenant=scope.tenant)
    scope.service.metrics.writes.labels("store").inc(len(facts))
    return json_response({"items": [f.to_dict() for f in facts]}, 201)


@router.get("", response_model=PageOut, summary="List facts")
async def list_facts(
    scope: Reader,
    project: NameQuery = None,
    fact_type: NameQuery = None,
    tag: Annotated[list[str] | None, Query(max_length=64, description="Repeat for several")] = None,
    source: NameQuery = None,
    include_inactive: bool = False,
    as_of: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    """One page of facts in creation order; pass `next_cursor` back as `cursor` for the next."""
    page = await scope.engine.list(
        project=scope.project(project),
        fact_type=fact_type,
        tags=tag or (),
        source=source,
        include_inactive=include_inactive,
        as_of=as_of,
        limit=limit,
        cursor=cursor,
        tenant=scope.tenant,
    )
    return json_response(page.to_dict())


@router.get("/{fact_id}", response_model=FactOut, summary="Get a fact")
async def get_fact(fact_id: FactId, scope: Reader, as_of: datetime | None = None) -> Response:
    """A fact as it stands now, or with `as_of` as it was recorded then."""
    fact = await scope.engine.get(fact_id, as_of=as_of, tenant=scope.tenant)
    if not scope.sees(fact):
        raise scope.not_found(fact_id)
    return json_response(fact.to_dict())


@router.get("/{fact_id}/history", response_model=HistoryOut, summary="History of a fact")
async def fact_history(fact_id: FactId, scope: Reader) -> Response:
    """Every version of the fact (its supersession chain), with the transactions of each."""
    await scope.check_fact(fact_id)
    versions = await scope.engine.history(fact_id, tenant=scope.tenant)
    return json_response({"items": [v.to_dict() for v in scope.visible_versions(versions)]})


@router.post("/{fact_id}/deprecate", response_model=FactOut, summary="Deprecate a fact")
async def deprecate_fact(fact_id: FactId, body: DeprecateIn, scope: Writer) -> Response:
    """Mark an active fact deprecated with a reason; it stays readable with its history."""
    await scope.check_fact(fact_id)
    actor = await scope.agent(body.actor, "actor") or scope.key.identity
    fact = await scope.engine.deprecate(fact_id, body.reason, actor=actor, tenant=scope.tenant)
    scope.service.metrics.writes.labels("deprecate").inc()
    return json_response(fact.to_dict())


@router.post(
    "/{fact_id}/supersede", status_code=201, response_model=FactOut, summary="Supersede a fact"
)
async def supersede_fact(fact_id: FactId, body: SupersedeIn, scope: Writer) -> Response:
    """Store a new fact that replaces `fact_id`; fields left out are taken from the old one."""
    old = await scope.visible_fact(fact_id)
    values = body.model_dump(exclude_none=True)
    values["project"] = scope.project(body.project)
    # The new version keeps the old source when none is given: that, too, must be a name this
    # key may record (a key cannot write a new fact in the name of another key's agent).
    source = await scope.agent(body.source or old.source, "source")
    if source is not None:
        values["source"] = source
    fact = await scope.engine.supersede(fact_id, tenant=scope.tenant, **values)
    scope.service.metrics.writes.labels("supersede").inc()
    return json_response(fact.to_dict(), 201)
