"""The compliance report of the caller's tenant (admin keys without a project)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from cortex.api.deps import TenantAdmin, known_query_only
from cortex.api.routers._responses import PROBLEMS
from cortex.report import REPORT_SCHEMA, check_format, media_type, render

__all__ = ["router"]

router = APIRouter(
    prefix="/v1", tags=["report"], responses=PROBLEMS, dependencies=[Depends(known_query_only)]
)

_JSON_SCHEMA: dict[str, Any] = {k: v for k, v in REPORT_SCHEMA.items() if k != "$schema"}
_BOUND = {"max_length": 64, "examples": ["2026-01-01"]}


@router.get(
    "/report",
    summary="Compliance report",
    response_class=Response,
    responses={
        200: {
            "description": "The report: JSON (schema cortex-report/1), Markdown or one HTML file."
            " `X-Cortex-Integrity` is `ok` or `failed`.",
            "content": {
                "application/json": {"schema": _JSON_SCHEMA},
                "text/markdown": {"schema": {"type": "string"}},
                "text/html": {"schema": {"type": "string"}},
            },
        }
    },
)
async def compliance_report(
    scope: TenantAdmin,
    start: Annotated[
        str | None,
        Query(alias="from", description="First day or instant (ISO 8601), inclusive", **_BOUND),
    ] = None,
    end: Annotated[
        str | None,
        Query(alias="to", description="Last day or instant (ISO 8601), inclusive", **_BOUND),
    ] = None,
    fmt: Annotated[
        Literal["json", "md", "html"], Query(alias="format", description="Rendering")
    ] = "json",
) -> Response:
    """The record-keeping report of the key's tenant for a period (default: the whole ledger):
    activity by op, day and actor; integrity (verification, signed checkpoints and their
    consistency); purges, gate requests and decisions, key rotations, votes; retention.

    Needs an admin key without a project: the report spans the whole tenant.
    """
    chosen = check_format(fmt)
    found = await scope.engine.report(start=start, end=end, tenant=scope.tenant)
    return Response(
        render(found, chosen),
        media_type=media_type(chosen),
        headers={
            "X-Cortex-Integrity": "ok" if found.ok else "failed",
            "X-Cortex-Body-SHA256": str(found.header["body_sha256"]),
        },
    )
