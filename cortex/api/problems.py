"""The one place where errors become HTTP answers: RFC 9457 `application/problem+json` bodies.

Every body has `type` (`urn:cortex:problem:<slug>`), `title`, `status`, `detail` and the
`request_id` that the `X-Request-ID` header of every response also carries. `CortexError`
classes, FastAPI's request validation and Starlette's HTTP errors are mapped here; anything else
is a bug: it is logged with the request id and answered by a 500 problem without internals.
"""

from __future__ import annotations

import json
import logging
import math
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Scope

from cortex.errors import (
    ApprovalDenied,
    ApprovalExpired,
    ApprovalForeignTenant,
    ApprovalInvalid,
    ApprovalMismatch,
    ApprovalReplayed,
    ApprovalRequired,
    Conflict,
    CortexError,
    Forbidden,
    GateFull,
    IntegrityError,
    NotFound,
    Overloaded,
    RateLimited,
    ShieldBlocked,
    StoreClosed,
    StoreUnavailable,
    Unauthorized,
    ValidationError,
    WriterCrashed,
)

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "PROBLEM_TYPE_PREFIX",
    "REQUEST_ID_KEY",
    "ProblemKind",
    "approval_required_response",
    "install_problem_handlers",
    "internal_error_response",
    "problem_for",
    "problem_response",
    "request_id_of",
]

log = logging.getLogger("cortex.api")

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:cortex:problem:"
REQUEST_ID_KEY = "cortex.request_id"
_MAX_VALIDATION_ERRORS = 10


@dataclass(frozen=True, slots=True)
class ProblemKind:
    """What a class of failure looks like on the wire."""

    status: int
    slug: str
    title: str


_BAD_REQUEST = ProblemKind(400, "bad-request", "Malformed request")
_UNAUTHORIZED = ProblemKind(401, "unauthorized", "Missing or invalid API key")
_FORBIDDEN = ProblemKind(403, "forbidden", "Not allowed for this API key")
_NOT_FOUND = ProblemKind(404, "not-found", "Not found")
_METHOD = ProblemKind(405, "method-not-allowed", "Method not allowed")
_CONFLICT = ProblemKind(409, "conflict", "Conflicts with the current state")
_TOO_LARGE = ProblemKind(413, "payload-too-large", "Request body too large")
_INVALID = ProblemKind(422, "validation-error", "Invalid request")
_SHIELDED = ProblemKind(422, "shield-blocked", "Blocked by the privacy shield")
_RATE_LIMITED = ProblemKind(429, "rate-limited", "Too many requests")
_INTERNAL = ProblemKind(500, "internal-error", "Internal server error")
_INTEGRITY = ProblemKind(500, "integrity-error", "Stored data failed an integrity check")
_OVERLOADED = ProblemKind(503, "overloaded", "Write queue full")
_CLOSED = ProblemKind(503, "store-closed", "Service shutting down")
_CRASHED = ProblemKind(503, "writer-crashed", "Write not committed")
_UNAVAILABLE = ProblemKind(503, "unavailable", "Service unavailable")
# The approval gate. Not an error: 202 with an `approval` member, as application/json.
_APPROVAL_REQUIRED = ProblemKind(202, "approval-required", "Accepted: waiting for approval")
_APPROVAL_FOREIGN = ProblemKind(403, "approval-foreign-tenant", "Approval of another tenant")
_APPROVAL_MISMATCH = ProblemKind(403, "approval-mismatch", "Approval of another action")
_APPROVAL_INVALID = ProblemKind(403, "approval-invalid", "Approval token invalid")
_APPROVAL_EXPIRED = ProblemKind(403, "approval-expired", "Approval expired")
_APPROVAL_DENIED = ProblemKind(403, "approval-denied", "Approval denied")
_APPROVAL_REPLAYED = ProblemKind(409, "approval-replayed", "Approval token already used")
_GATE_FULL = ProblemKind(409, "gate-full", "Too many pending approvals")

# Most specific class first: the first match wins.
_ERROR_KINDS: tuple[tuple[type[CortexError], ProblemKind], ...] = (
    (ApprovalRequired, _APPROVAL_REQUIRED),
    (ApprovalForeignTenant, _APPROVAL_FOREIGN),
    (ApprovalMismatch, _APPROVAL_MISMATCH),
    (ApprovalInvalid, _APPROVAL_INVALID),
    (ApprovalExpired, _APPROVAL_EXPIRED),
    (ApprovalDenied, _APPROVAL_DENIED),
    (ApprovalReplayed, _APPROVAL_REPLAYED),
    (GateFull, _GATE_FULL),
    (Unauthorized, _UNAUTHORIZED),
    (Forbidden, _FORBIDDEN),
    (NotFound, _NOT_FOUND),
    (Conflict, _CONFLICT),
    (ValidationError, _INVALID),
    (ShieldBlocked, _SHIELDED),
    (RateLimited, _RATE_LIMITED),
    (Overloaded, _OVERLOADED),
    (StoreClosed, _CLOSED),
    (StoreUnavailable, _UNAVAILABLE),
    (WriterCrashed, _CRASHED),
    (IntegrityError, _INTEGRITY),
)
_HTTP_KINDS = {
    kind.status: kind
    for kind in (
        _BAD_REQUEST,
        _UNAUTHORIZED,
        _FORBIDDEN,
        _NOT_FOUND,
        _METHOD,
        _CONFLICT,
        _TOO_LARGE,
        _INVALID,
        _RATE_LIMITED,
        _INTERNAL,
        _UNAVAILABLE,
    )
}
# Seconds a client should wait before retrying a 503 that carries no estimate of its own.
_RETRY_UNAVAILABLE = 1.0


def request_id_of(scope: Scope) -> str:
    """The request id the service middleware gave this request ('-' outside of it)."""
    return str(scope.get(REQUEST_ID_KEY, "-"))


def _retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


def problem_response(
    status: int,
    detail: str,
    request_id: str,
    *,
    kind: ProblemKind | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Response:
    """A problem+json response for `status` (or `kind`) with `detail` (and `extra` members)."""
    chosen = kind or _HTTP_KINDS.get(status) or ProblemKind(status, f"http-{status}", "HTTP error")
    body = {
        "type": PROBLEM_TYPE_PREFIX + chosen.slug,
        "title": chosen.title,
        "status": chosen.status,
        "detail": detail,
        "request_id": request_id,
        **(extra or {}),
    }
    return Response(
        json.dumps(body, ensure_ascii=False),
        status_code=chosen.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=dict(headers or {}),
    )


def internal_error_response(request_id: str) -> Response:
    """The 500 problem: no internals, only the request id to find the log entry by."""
    return problem_response(
        500,
        f"an internal error occurred; it was logged with request id {request_id}",
        request_id,
        kind=_INTERNAL,
    )


def problem_for(error: CortexError) -> tuple[ProblemKind, dict[str, str]]:
    """The problem kind of a CORTEX error and the headers its response needs."""
    for cls, kind in _ERROR_KINDS:
        if isinstance(error, cls):
            headers: dict[str, str] = {}
            if isinstance(error, RateLimited | Overloaded):
                headers["Retry-After"] = _retry_after(error.retry_after)
            elif kind.status == 503:
                headers["Retry-After"] = _retry_after(_RETRY_UNAVAILABLE)
            elif kind.status == 401:
                headers["WWW-Authenticate"] = 'Bearer realm="cortex"'
            return kind, headers
    return _INTERNAL, {}


def _count_error(request: Request, kind: ProblemKind) -> None:
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.errors.labels(kind.slug).inc()


async def _cortex_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CortexError)
    request_id = request_id_of(request.scope)
    kind, headers = problem_for(exc)
    _count_error(request, kind)
    if kind is _INTERNAL:
        log.error("request %s failed: %r", request_id, exc, exc_info=exc)
        return internal_error_response(request_id)
    if kind is _INTEGRITY:
        log.error("request %s: integrity failure: %s", request_id, exc)
    if isinstance(exc, ApprovalRequired):
        return approval_required_response(exc, request_id)
    extra = None
    if isinstance(exc, ShieldBlocked):
        # What and where was found, never the value (the shield's own message says no more).
        names = ("kind", "category", "field", "start", "end", "line", "column", "item")
        extra = {"shield": {name: getattr(exc, name) for name in names}}
    return problem_response(
        kind.status, str(exc), request_id, kind=kind, headers=headers, extra=extra
    )


def approval_required_response(error: ApprovalRequired, request_id: str) -> Response:
    """202: the action did not run; the body names the approval and how to get it approved."""
    where = "" if error.tenant is None else f" --tenant {shlex.quote(error.tenant)}"
    body = {
        "type": PROBLEM_TYPE_PREFIX + _APPROVAL_REQUIRED.slug,
        "title": _APPROVAL_REQUIRED.title,
        "status": 202,
        "detail": (
            f"{error}. An admin approves it with POST /v1/gate/{error.approval_id}/approve (or"
            f" `cortex gate approve {error.approval_id}{where}`), which returns a token; repeat"
            " this request with that token as `approval`."
        ),
        "request_id": request_id,
        "approval": {
            "id": error.approval_id,
            "action": error.action,
            "tenant": error.tenant,
            "expires_at": error.expires_at,
            "approve": f"/v1/gate/{error.approval_id}/approve",
        },
    }
    return Response(
        json.dumps(body, ensure_ascii=False), status_code=202, media_type="application/json"
    )


_NOT_AN_OBJECT = frozenset({"model_attributes_type", "dict_type", "model_type"})


def _describe(error: Mapping[str, Any]) -> str:
    """One validation error as `where: what`; a body that is not JSON says where it breaks."""
    if error.get("type") == "json_invalid":
        loc = error.get("loc", ())
        at = loc[1] if len(loc) > 1 else "?"
        context = error.get("ctx")
        why = context.get("error") if isinstance(context, Mapping) else None
        return f"the request body is not valid JSON: {why or 'decode error'} at character {at}"
    if tuple(error.get("loc", ())) == ("body",) and error.get("type") in _NOT_AN_OBJECT:
        return "the request body must be a JSON object, sent as Content-Type: application/json"
    return f"{_location(error.get('loc', ()))}: {error.get('msg', 'invalid')}"


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc) or "request"


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    kind = _BAD_REQUEST if any(e.get("type") == "json_invalid" for e in errors) else _INVALID
    parts = [_describe(e) for e in errors]
    if len(parts) > _MAX_VALIDATION_ERRORS:
        parts = [*parts[:_MAX_VALIDATION_ERRORS], f"and {len(parts) - _MAX_VALIDATION_ERRORS} more"]
    _count_error(request, kind)
    return problem_response(
        kind.status, "; ".join(parts) or "invalid request", request_id_of(request.scope), kind=kind
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    kind = _HTTP_KINDS.get(exc.status_code)
    if kind is not None:
        _count_error(request, kind)
    headers = dict(exc.headers or {})
    if exc.status_code == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="cortex"')
    detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
    where = f"{request.method} {request.url.path}"
    if exc.status_code == 404 and detail == "Not Found":  # the router's: no such route
        detail = f"no route {where}; /openapi.json lists every route"
    elif exc.status_code == 405 and detail == "Method Not Allowed":
        # Starlette's Allow header names the methods of the first route on the path only.
        allowed = _methods_of_path(request)
        headers = {k: v for k, v in headers.items() if k.lower() != "allow"}
        if allowed:
            headers["Allow"] = ", ".join(allowed)
        detail = f"no route {where}"
        if allowed:
            detail += f"; this path allows {', '.join(allowed)}"
    return problem_response(exc.status_code, detail, request_id_of(request.scope), headers=headers)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _methods_of_path(request: Request) -> list[str]:
    """Every method that some route of the app answers on the request's path."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]


def install_problem_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every expected failure into a problem response."""
    app.add_exception_handler(CortexError, _cortex_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
