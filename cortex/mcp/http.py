"""The CORTEX MCP tools over streamable HTTP, behind `Authorization: Bearer <key>`.

`mcp_http_app(engine, authenticate)` returns a Starlette app serving MCP at `/mcp`. Every HTTP
request must carry a bearer key; `authenticate(key)` turns it into the `(tenant, project, role)`
the tools act for, or raises `Unauthorized` (401), `Forbidden` (403) or `RateLimited` (429, with
`Retry-After`); the refusal is an `application/problem+json` body. The server is stateless (no
MCP sessions): any worker process can answer any request, and each request is authenticated on
its own.

Standalone: `uvicorn.run(mcp_http_app(lambda: engine, authenticate))`. Inside another app (the
REST API), add its routes and run its lifespan inside the host's:

    mcp = mcp_http_app(lambda: app.state.engine, authenticate)
    app.router.routes.extend(mcp.routes)
    async with mcp.router.lifespan_context(mcp): ...   # in the host app's lifespan
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import NamedTuple, cast

import anyio.to_thread
from mcp.server.mcpserver import Context
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from cortex.engine import Cortex
from cortex.errors import Forbidden, RateLimited, Unauthorized
from cortex.mcp.server import Caller, ClaimAgent, ResolveCaller, Role, build_mcp_server

__all__ = ["Authenticate", "Principal", "mcp_http_app"]

_PRINCIPAL = "cortex.principal"
"""The ASGI scope key under which the gate hands the authenticated principal to the tools."""
_ROLES: tuple[Role, ...] = ("reader", "writer", "admin")


class Principal(NamedTuple):
    """Whom a bearer key stands for: its tenant, the project it is bound to (or None), its role."""

    tenant: str
    project: str | None
    role: str
    identity: str | None = None
    claim: ClaimAgent | None = None


PrincipalLike = Principal | tuple[str, str | None, str]
Authenticate = Callable[[str, str], Awaitable[PrincipalLike]] | Callable[[str, str], PrincipalLike]
"""Checks a bearer key sent from a client address (`authenticate(key, address)`, so failed
attempts are limited per client): returns `(tenant, project, role)` or raises `Unauthorized`
(or `Forbidden`, `RateLimited`). A plain function runs on a worker thread (key hashing is slow
on purpose); a coroutine function runs on the event loop."""


def _role(value: str) -> Role:
    """The role a principal's `value` names; anything unknown may only read."""
    return next((role for role in _ROLES if role == value), "reader")


def _problem(status: int, title: str, detail: str, headers: dict[str, str]) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return JSONResponse(body, status, headers=headers, media_type="application/problem+json")


def _bearer_token(scope: Scope) -> str | None:
    """The key of an `Authorization: Bearer <key>` header; None if it is absent or malformed."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            return token if scheme.lower() == "bearer" and token else None
    return None


class _BearerGate:
    """ASGI middleware: authenticate each HTTP request's bearer key, or answer with a problem."""

    def __init__(self, app: ASGIApp, authenticate: Authenticate) -> None:
        self._app = app
        self._authenticate = authenticate
        self._is_async = inspect.iscoroutinefunction(authenticate)

    async def _principal(self, token: str, address: str) -> Principal:
        if self._is_async:
            check = cast(Callable[[str, str], Awaitable[PrincipalLike]], self._authenticate)
            found = await check(token, address)
        else:
            check_sync = cast(Callable[[str, str], PrincipalLike], self._authenticate)
            found = await anyio.to_thread.run_sync(check_sync, token, address)
        return Principal(*found)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        challenge = {"WWW-Authenticate": 'Bearer realm="cortex"'}
        token = _bearer_token(scope)
        if token is None:
            detail = "missing API key: send the header 'Authorization: Bearer <key>'"
            response = _problem(401, "Unauthorized", detail, challenge)
            await response(scope, receive, send)
            return
        try:
            client = scope.get("client")
            principal = await self._principal(token, client[0] if client else "unknown")
        except Unauthorized as exc:
            invalid = {"WWW-Authenticate": 'Bearer realm="cortex", error="invalid_token"'}
            await _problem(401, "Unauthorized", str(exc), invalid)(scope, receive, send)
            return
        except Forbidden as exc:
            await _problem(403, "Forbidden", str(exc), {})(scope, receive, send)
            return
        except RateLimited as exc:
            retry = {"Retry-After": str(max(1, round(exc.retry_after)))}
            await _problem(429, "Too Many Requests", str(exc), retry)(scope, receive, send)
            return
        await self._app({**scope, _PRINCIPAL: principal}, receive, send)


def _caller_from_request(engine: Callable[[], Cortex]) -> ResolveCaller:
    """A resolver that acts for the principal the gate put into the HTTP request's scope."""

    def resolve(ctx: Context) -> Caller:
        request = ctx.request_context.request
        scope = getattr(request, "scope", None)
        principal = scope.get(_PRINCIPAL) if isinstance(scope, dict) else None
        if not isinstance(principal, Principal):
            raise Unauthorized("this request carries no authenticated API key")
        return Caller(
            engine(),
            principal.tenant,
            principal.project,
            _role(principal.role),
            principal.identity,
            principal.claim,
        )

    return resolve


def mcp_http_app(
    engine: Callable[[], Cortex], authenticate: Authenticate, *, path: str = "/mcp"
) -> Starlette:
    """Return a Starlette app serving the CORTEX MCP tools at `path` over streamable HTTP.

    `engine()` returns the open engine at call time (it may be opened after this app is built);
    `authenticate(key)` checks each request's bearer key (see `Authenticate`). The app's lifespan
    runs the MCP request manager: run it (or the host app's lifespan that enters it) before
    serving requests.
    """
    server = build_mcp_server(_caller_from_request(engine))
    # No DNS-rebinding Host check: every request needs a bearer key, which a page served from a
    # rebound name cannot present, and a Host allow-list would refuse the service's real names.
    server.streamable_http_app(
        streamable_http_path=path,
        stateless_http=True,
        json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    manager = server.session_manager
    endpoint = _BearerGate(StreamableHTTPASGIApp(manager), authenticate)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with manager.run():
            yield

    return Starlette(routes=[Route(path, endpoint)], lifespan=lifespan)
