"""`create_app(settings)`: the FastAPI app of the CORTEX service.

The engine and the key store are opened by the app's lifespan (startup) and closed with it; the
app keeps them on `app.state.service`, never in a global. Other ASGI apps (e.g. the MCP server)
are served beside the API with `mounts=[(path, factory)]` (by default the MCP server over
streamable HTTP at `/mcp`, behind the same bearer keys): `factory(access)` builds the app
given a `ServiceAccess` (the engine and the API's key checks); it answers every method at exactly
that path, behind the same request ids, metrics and body limit, and its lifespan (a Starlette
app's) runs inside this one's, after the engine opened and before it closes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from cortex.api.deps import Service, ServiceAccess
from cortex.api.keys import KeyStore, KeyVerifier
from cortex.api.limits import BodyLimitMiddleware, TokenBuckets, WriteShedMiddleware
from cortex.api.metrics import ApiMetrics, TimedEmbedder
from cortex.api.middleware import ServiceMiddleware
from cortex.api.problems import install_problem_handlers
from cortex.api.routers import consensus, facts, gate, keys, ledger, search, service
from cortex.api.routers import report as report_router
from cortex.config import Settings
from cortex.engine import Cortex
from cortex.search.embedder import Embedder, make_embedder
from cortex.search.vectors import use_one_blas_thread

__all__ = ["MountFactory", "create_app", "create_app_from_environment", "mcp_mount"]

MountFactory = Callable[[ServiceAccess], ASGIApp]
"""Builds an app to serve beside the API, given access to the running service's engine and
key checks (e.g. `lambda access: mcp_http_app(access.engine, ...)`)."""

_DESCRIPTION = """\
Tamper-evident memory for AI agents, as a service. Every `/v1` route needs
`Authorization: Bearer <key>` (keys come from `cortex keys create` or `POST /v1/keys`) and works
within the key's tenant (and project, when the key has one). Errors are RFC 9457
`application/problem+json` bodies; every response carries `X-Request-ID`.
"""


async def _open_service(
    settings: Settings, metrics: ApiMetrics, chosen: Embedder | Literal["settings"] | None
) -> Service:
    store = await asyncio.to_thread(KeyStore.open, settings)
    try:
        embedder = (
            make_embedder(settings.embedder, threads=settings.embed_threads)
            if chosen == "settings"
            else chosen
        )
        timed = None if embedder is None else TimedEmbedder(embedder, metrics)
        engine = await Cortex.open(settings, embedder=timed)
    except BaseException:
        await asyncio.to_thread(store.close)
        raise
    try:
        if timed is not None:
            # Load the model now: the first request should not wait seconds for it.
            await asyncio.to_thread(timed.embed, ["warm up"])
    except BaseException:
        await engine.aclose()
        await asyncio.to_thread(store.close)
        raise
    return Service(
        settings=settings,
        engine=engine,
        keys=store,
        verifier=KeyVerifier(store, cache_seconds=settings.key_cache_seconds),
        metrics=metrics,
        key_buckets=TokenBuckets(
            settings.key_rate_per_second, settings.key_rate_burst, settings.rate_limit_clients
        ),
        failure_buckets=TokenBuckets(
            settings.auth_failure_per_second,
            settings.auth_failure_burst,
            settings.rate_limit_clients,
        ),
    )


def mcp_mount(access: ServiceAccess) -> ASGIApp:
    """The MCP server over streamable HTTP, acting for the tenant, project and role of each
    request's bearer key, checked exactly as the API checks it (failed attempts counted per
    client address)."""
    from cortex.mcp.http import Principal, mcp_http_app

    async def authenticate(key: str, address: str) -> Principal:
        record = await access.authenticate(key, address)

        async def claim(name: str | None, what: str) -> str | None:
            return await access.claim_agent(record, name, what)

        return Principal(record.tenant, record.project, record.role, record.identity, claim)

    return mcp_http_app(access.engine, authenticate)


def create_app(
    settings: Settings,
    *,
    mounts: Sequence[tuple[str, MountFactory]] | None = None,
    embedder: Embedder | Literal["settings"] | None = "settings",
) -> FastAPI:
    """Build the service app for an initialised data directory (nothing is opened until startup).

    `mounts` are (path, factory) pairs of apps served beside the API (see the module docstring);
    None serves MCP at /mcp.
    `embedder` as for `Cortex.open`: by default the one `settings.embedder` names; pass one in to
    share a loaded model.
    Startup fails with ConfigError when the data directory or its server secret is missing
    (`cortex init` creates both).
    """
    metrics = ApiMetrics()
    mounted_apps: list[tuple[str, ASGIApp]] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        opened = await _open_service(settings, metrics, embedder)
        app.state.service = opened
        metrics.watch_engine(opened.engine)
        try:
            async with contextlib.AsyncExitStack() as stack:
                for _, mounted in mounted_apps:
                    router = getattr(mounted, "router", None)
                    context = getattr(router, "lifespan_context", None)
                    if context is not None:
                        await stack.enter_async_context(context(mounted))
                yield
        finally:
            metrics.forget_engine()
            app.state.service = None
            try:
                await opened.engine.aclose()
            finally:
                await asyncio.to_thread(opened.keys.close)

    app = FastAPI(
        title="CORTEX",
        version="1",
        description=_DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.state.service = None
    install_problem_handlers(app)
    for module in (service, facts, search, ledger, keys, report_router, consensus, gate):
        app.include_router(module.router)
    access = ServiceAccess(app)
    for path, factory in [("/mcp", mcp_mount)] if mounts is None else mounts:
        mounted = factory(access)
        mounted_apps.append((path, mounted))
        app.router.routes.append(Route(path, _AsgiEndpoint(mounted)))
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)

    def queue_depth() -> int | None:
        opened = app.state.service
        return None if opened is None else opened.engine.writer.queue_depth

    app.add_middleware(
        WriteShedMiddleware,
        queue_depth=queue_depth,
        capacity=settings.write_queue_size,
        on_refused=lambda slug: metrics.errors.labels(slug).inc(),
    )
    app.add_middleware(ServiceMiddleware, metrics=metrics)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _openapi_schema(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


class _AsgiEndpoint:
    """Serves an ASGI app at a Route: Starlette would take a plain function for a request
    handler, so the app is always wrapped in an object."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def _openapi_schema(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, with error responses documented as problem+json only."""
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            for code, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if code[0] in "45" and "application/problem+json" in content:
                    content.pop("application/json", None)
    return schema


def create_app_from_environment() -> FastAPI:
    """`create_app` with Settings from the environment (`CORTEX_HOME`, ...): the factory that
    each worker process of `cortex serve --workers N` imports."""
    use_one_blas_thread()
    return create_app(Settings.load())
