"""API keys of the caller's tenant: issue, list, revoke (admin keys without a project)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from starlette.responses import Response

from cortex.api.deps import TenantAdmin, known_query_only
from cortex.api.routers._responses import PROBLEMS, json_response
from cortex.api.schemas import ApiKeyOut, IssuedKeyOut, KeyCreateIn, KeyListOut

__all__ = ["router"]

router = APIRouter(
    prefix="/v1/keys", tags=["keys"], responses=PROBLEMS, dependencies=[Depends(known_query_only)]
)

KeyId = Annotated[str, Path(pattern=r"^[0-9a-f]{16}$", description="The key id")]


@router.post("", status_code=201, response_model=IssuedKeyOut, summary="Issue an API key")
async def create_key(body: KeyCreateIn, scope: TenantAdmin) -> Response:
    """Issue a key for the caller's tenant; the key is in this answer only, never again."""
    issued = await asyncio.to_thread(
        scope.service.keys.create,
        scope.tenant,
        body.role,
        project=body.project,
        expires=body.expires,
        agent=body.agent,
    )
    return json_response({"key": issued.key, "record": issued.record.to_dict()}, 201)


@router.get("", response_model=KeyListOut, summary="List API keys")
async def list_keys(scope: TenantAdmin) -> Response:
    """Every key of the caller's tenant (records only), oldest first."""
    keys = await asyncio.to_thread(scope.service.keys.list_keys, scope.tenant)
    return json_response({"items": [k.to_dict() for k in keys]})


@router.delete("/{key_id}", response_model=ApiKeyOut, summary="Revoke an API key")
async def revoke_key(key_id: KeyId, scope: TenantAdmin) -> Response:
    """Revoke a key of the caller's tenant; it stops working at once on this server."""
    record = await asyncio.to_thread(scope.service.keys.revoke, key_id, tenant=scope.tenant)
    scope.service.verifier.forget(key_id)
    return json_response(record.to_dict())
