"""The error responses every `/v1` route documents, and rendering of result values as JSON."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from cortex.api.problems import PROBLEM_MEDIA_TYPE
from cortex.api.schemas import ProblemOut

__all__ = ["PROBLEMS", "json_response"]


def _problem(description: str) -> dict[str, Any]:
    return {
        "model": ProblemOut,
        "description": description,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemOut"}}},
    }


PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: _problem("Malformed request (e.g. a body that is not JSON)"),
    401: _problem("Missing, malformed, unknown, revoked or expired API key"),
    403: _problem("The key's role or project does not allow this request"),
    404: _problem("Not found for this key's tenant (and project)"),
    409: _problem("Conflicts with the current state (e.g. the fact is not active)"),
    413: _problem("The request body is larger than max_body_bytes"),
    422: _problem("Invalid input"),
    429: _problem("Too many requests for this key or failed attempts from this address"),
    500: _problem("Internal error (logged with the request id)"),
    503: _problem("Overloaded or shutting down: retry after Retry-After seconds"),
}


def json_response(value: Any, status_code: int = 200) -> Response:
    """A JSON response of a JSON-ready value (rendered once, without response-model checks)."""
    return Response(
        json.dumps(value, ensure_ascii=False, separators=(",", ":")),
        status_code=status_code,
        media_type="application/json",
    )
