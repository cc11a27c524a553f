"""The ledger: verify, inclusion and consistency proofs, checkpoints, and the export bundle."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response, StreamingResponse

from cortex.api.deps import Reader, TenantAdmin, Writer, known_query_only
from cortex.api.routers._responses import PROBLEMS, json_response
from cortex.api.routers.facts import FactId
from cortex.api.routers.gate import APPROVAL_REQUIRED
from cortex.api.schemas import (
    CheckpointOut,
    ConsistencyProofOut,
    InclusionProofOut,
    VerifyReportOut,
)
from cortex.errors import NotFound, ValidationError

__all__ = ["EXPORT_MEDIA_TYPE", "router"]

router = APIRouter(
    prefix="/v1", tags=["ledger"], responses=PROBLEMS, dependencies=[Depends(known_query_only)]
)

EXPORT_MEDIA_TYPE = "application/x-ndjson"
_CHUNK = 1 << 16
Size = Annotated[int, Query(ge=0, le=2**62)]


@router.get("/ledger/verify", response_model=VerifyReportOut, summary="Verify the ledger")
async def verify_ledger(scope: Reader) -> Response:
    """Recompute the tenant's hash chain, Merkle tree, fact digests and checkpoint signatures."""
    report = await scope.engine.verify(tenant=scope.tenant)
    return json_response(report.to_dict())


@router.get("/ledger/proofs/inclusion", response_model=InclusionProofOut, summary="Inclusion proof")
async def inclusion_proof(
    scope: Reader,
    seq: Annotated[int | None, Query(ge=0, le=2**62, description="Ledger entry")] = None,
    fact_id: Annotated[FactId | None, Query(description="Or: the fact's store entry")] = None,
    tree_size: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> Response:
    """RFC 9162 audit path of one entry, by `seq` or by `fact_id`, in the tree of `tree_size`."""
    if (seq is None) == (fact_id is None):
        raise ValidationError("give exactly one of seq and fact_id")
    if fact_id is not None:
        await scope.check_fact(fact_id)
    ref: int | str = fact_id if fact_id is not None else seq  # type: ignore[assignment]
    proof = await scope.engine.inclusion_proof(ref, tree_size=tree_size, tenant=scope.tenant)
    if fact_id is None:
        await scope.check_entry(proof)
    return json_response(proof.to_dict())


@router.get(
    "/ledger/proofs/consistency", response_model=ConsistencyProofOut, summary="Consistency proof"
)
async def consistency_proof(
    scope: Reader, old_size: Size, new_size: Annotated[int | None, Query(ge=0, le=2**62)] = None
) -> Response:
    """RFC 9162 proof that the tree of `old_size` entries is a prefix of the tree of `new_size`
    (default: the current size)."""
    proof = await scope.engine.consistency_proof(old_size, new_size, tenant=scope.tenant)
    return json_response(proof.to_dict())


@router.get("/ledger/checkpoint", response_model=CheckpointOut, summary="Latest checkpoint")
async def latest_checkpoint(scope: Reader) -> Response:
    """The tenant's latest signed checkpoint."""
    checkpoints = await scope.engine.checkpoints(tenant=scope.tenant)
    if not checkpoints:
        raise NotFound(f"tenant {scope.tenant!r} has no checkpoint yet")
    return json_response(checkpoints[-1].to_dict())


@router.post(
    "/ledger/checkpoint", status_code=201, response_model=CheckpointOut, summary="Checkpoint now"
)
async def make_checkpoint(scope: Writer) -> Response:
    """Sign and store a checkpoint of the tenant's ledger at its current size."""
    checkpoint = await scope.engine.checkpoint(tenant=scope.tenant)
    scope.service.metrics.writes.labels("checkpoint").inc()
    return json_response(checkpoint.to_dict(), 201)


async def _stream_and_remove(path: Path) -> AsyncIterator[bytes]:
    try:
        handle = await asyncio.to_thread(path.open, "rb")
        try:
            while chunk := await asyncio.to_thread(handle.read, _CHUNK):
                yield chunk
        finally:
            await asyncio.to_thread(handle.close)
    finally:
        await asyncio.to_thread(shutil.rmtree, path.parent, True)


@router.get(
    "/export",
    summary="Export the tenant's bundle",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The JSON-lines bundle that `cortex verify-export` checks offline",
            "content": {EXPORT_MEDIA_TYPE: {"schema": {"type": "string"}}},
        },
        **APPROVAL_REQUIRED,
    },
)
async def export_bundle(
    scope: TenantAdmin,
    approval: Annotated[
        str | None,
        Query(min_length=1, max_length=4096, description="The token of this export's approval"),
    ] = None,
) -> Response:
    """Stream the tenant's self-contained bundle (entries, facts, checkpoints, public key).

    The number of entries is in the `X-Cortex-Entries` header. Needs an admin key without a
    project: the bundle spans the whole tenant. Exports are gated: without `approval`, 202
    names the approval the export waits for; repeat the request with its token.
    """
    home = scope.service.settings.home
    folder = Path(await asyncio.to_thread(tempfile.mkdtemp, ".export-", None, home))
    path = folder / "bundle.jsonl"
    try:
        entries = await scope.engine.export(
            path, approval=approval, actor=scope.key.identity, tenant=scope.tenant
        )
    except BaseException:
        await asyncio.to_thread(shutil.rmtree, folder, True)
        raise
    return StreamingResponse(
        _stream_and_remove(path),
        media_type=EXPORT_MEDIA_TYPE,
        headers={
            "X-Cortex-Entries": str(entries),
            "Content-Disposition": f'attachment; filename="{scope.tenant}.jsonl"',
        },
    )
