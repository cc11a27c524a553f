"""Service routes: liveness, readiness (no key needed) and Prometheus metrics (admin key)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from cortex.api.deps import Admin, service_of
from cortex.api.metrics import CONTENT_TYPE
from cortex.api.problems import problem_response, request_id_of
from cortex.api.routers._responses import PROBLEMS, json_response
from cortex.api.schemas import StatusOut

__all__ = ["router"]

router = APIRouter(tags=["service"])


@router.get("/health", response_model=StatusOut, summary="Liveness")
async def health() -> Response:
    """200 while the process answers; needs no key."""
    return json_response({"status": "ok"})


@router.get(
    "/ready",
    response_model=StatusOut,
    summary="Readiness",
    responses={503: PROBLEMS[503]},
)
async def ready(request: Request) -> Response:
    """200 when the store is open and its writer runs, else 503; needs no key."""
    service = getattr(request.app.state, "service", None)
    if service is None or not service.engine.writer.running:
        return problem_response(
            503,
            "the store is not open or its writer is not running",
            request_id_of(request.scope),
            headers={"Retry-After": "1"},
        )
    return json_response({"status": "ready"})


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        **{code: PROBLEMS[code] for code in (401, 403, 429)},
        200: {
            "description": "Prometheus text exposition format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
    },
)
async def metrics(request: Request, scope: Admin) -> Response:
    """Request, search, embedding and writer metrics of this process; needs an admin key."""
    return Response(service_of(request).metrics.render(), media_type=CONTENT_TYPE)
