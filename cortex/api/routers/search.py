"""Search: hybrid (meaning and words), vector or text, with filters, over the key's facts."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends
from starlette.responses import Response

from cortex.api.deps import Reader, known_query_only
from cortex.api.routers._responses import PROBLEMS, json_response
from cortex.api.schemas import SearchIn, SearchOut

__all__ = ["router"]

router = APIRouter(
    prefix="/v1", tags=["search"], responses=PROBLEMS, dependencies=[Depends(known_query_only)]
)


@router.post("/search", response_model=SearchOut, summary="Search facts")
async def search_facts(body: SearchIn, scope: Reader) -> Response:
    """The `k` facts that best answer `query`, best first (a read: the reader role suffices)."""
    start = time.perf_counter()
    hits = await scope.engine.search(
        body.query,
        k=body.k,
        mode=body.mode,
        project=scope.project(body.project),
        fact_type=body.fact_type,
        tags=body.tags,
        source=body.source,
        as_of=body.as_of,
        min_confidence=body.min_confidence,
        include_inactive=body.include_inactive,
        consensus=body.consensus,
        consensus_boost=body.consensus_boost,
        tenant=scope.tenant,
    )
    scope.service.metrics.search_latency.labels(body.mode).observe(time.perf_counter() - start)
    return json_response({"hits": [hit.to_dict() for hit in hits]})
