"""Dependencies of the routes: the service's parts, the caller's API key and role, its scope.

`Reader`, `Writer` and `Admin` are the annotated parameters routes declare to require a key of
at least that role; each authenticates `Authorization: Bearer <key>`, applies the failed-attempt
limit per client address and the request limit per key. `Scope` holds the key and the engine and
applies the key's tenant (always) and project (when the key has one) to every engine call.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cortex.api.keys import ApiKey, KeyStore, KeyVerifier, Role, claim_agent, own_agent
from cortex.api.limits import TokenBuckets
from cortex.api.metrics import ApiMetrics
from cortex.config import Settings
from cortex.engine import Cortex
from cortex.errors import (
    Forbidden,
    NotFound,
    RateLimited,
    StoreClosed,
    Unauthorized,
    ValidationError,
)
from cortex.model import Fact, FactVersion, InclusionProof

__all__ = [
    "Admin",
    "Reader",
    "Scope",
    "Service",
    "ServiceAccess",
    "TenantAdmin",
    "Writer",
    "check_key",
    "known_query_only",
    "service_of",
]

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key from `cortex keys create`: `Authorization: Bearer ctx_...`",
)


@dataclass(slots=True)
class Service:
    """What the routes work with, created by the app's lifespan and closed with it."""

    settings: Settings
    engine: Cortex
    keys: KeyStore
    verifier: KeyVerifier
    metrics: ApiMetrics
    key_buckets: TokenBuckets
    failure_buckets: TokenBuckets


def service_of(request: Request) -> Service:
    """The running service of the app that received `request`."""
    service = getattr(request.app.state, "service", None)
    if not isinstance(service, Service):
        raise RuntimeError("the CORTEX service is not running (lifespan not started)")
    return service


@dataclass(frozen=True, slots=True)
class Scope:
    """An authenticated caller: its key, and the engine seen through the key's tenant/project."""

    key: ApiKey
    service: Service

    @property
    def engine(self) -> Cortex:
        """The engine (always call it with `tenant=self.tenant`)."""
        return self.service.engine

    @property
    def tenant(self) -> str:
        """The key's tenant: every engine call is made for it."""
        return self.key.tenant

    def project(self, requested: str | None) -> str | None:
        """The project a listing, search or write may use: the key's own when it has one."""
        if self.key.project is None:
            return requested
        if requested is not None and requested != self.key.project:
            raise Forbidden(
                f"API key {self.key.key_id} is limited to project {self.key.project!r};"
                f" it cannot use project {requested!r}"
            )
        return self.key.project

    def voter(self, requested: str | None) -> str:
        """The agent this key votes as (its identity); Forbidden if `requested` is another."""
        return own_agent(self.key, requested)

    async def agent(self, requested: str | None, what: str) -> str | None:
        """The agent name a write may record as `what` (source, actor): see `claim_agent`."""
        return await claim_agent(self.service.keys, self.key, requested, what)

    def sees(self, fact: Fact) -> bool:
        """True when the key may see `fact` (its tenant, and its project if it has one)."""
        return fact.tenant == self.tenant and (
            self.key.project is None or fact.project == self.key.project
        )

    def not_found(self, fact_id: str) -> NotFound:
        """The error for a fact the key may not see: the engine's words for an absent fact."""
        return NotFound(f"no fact {fact_id!r} in tenant {self.tenant!r}")

    async def visible_fact(self, fact_id: str) -> Fact:
        """The fact if the key may see it; NotFound (as if absent) otherwise."""
        fact = await self.engine.get(fact_id, tenant=self.tenant)
        if not self.sees(fact):
            raise self.not_found(fact_id)
        return fact

    async def check_fact(self, fact_id: str) -> None:
        """NotFound unless the key may see `fact_id` (a no-op for keys without a project)."""
        if self.key.project is not None:
            await self.visible_fact(fact_id)

    def visible_versions(self, versions: builtins.list[FactVersion]) -> list[FactVersion]:
        """The versions of a history the key may see."""
        return [v for v in versions if self.sees(v.fact)]

    async def check_entry(self, proof: InclusionProof) -> None:
        """NotFound unless a project key may see the entry proved (its subject fact)."""
        if self.key.project is None:
            return
        subject = json.loads(proof.entry).get("subject")
        if not isinstance(subject, str):
            raise NotFound(f"tenant {self.tenant!r} has no entry {proof.seq} for this key")
        fact = await self.engine.get(subject, tenant=self.tenant)
        if not self.sees(fact):
            raise NotFound(f"tenant {self.tenant!r} has no entry {proof.seq} for this key")

    def whole_tenant(self, what: str) -> None:
        """Forbidden for keys limited to a project: `what` spans the whole tenant."""
        if self.key.project is not None:
            raise Forbidden(
                f"{what} spans the whole tenant; API key {self.key.key_id} is limited to"
                f" project {self.key.project!r}"
            )


def known_query_only(request: Request) -> None:
    """ValidationError for a query parameter the route does not take (a typo would otherwise
    widen a listing silently: `?projct=infra`)."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    if dependant is None or not request.query_params:
        return
    allowed = {param.alias for param in dependant.query_params}
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise ValidationError(
            f"unknown query parameter(s): {', '.join(unknown)}; this route takes"
            f" {', '.join(sorted(allowed)) or 'none'}"
        )


def _client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


async def check_key(service: Service, key: str | None, address: str) -> ApiKey:
    """The record of a presented key (None: no key sent), after the failed-attempt limit of
    `address` and the request limit of the key: Unauthorized or RateLimited otherwise."""
    wait = service.failure_buckets.wait(address)
    if wait > 0:
        raise RateLimited(
            f"too many failed API key attempts from {address}; retry in {wait:.0f} s",
            retry_after=wait,
        )
    if key is None:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    try:
        record = await service.verifier.verify(key)
    except Unauthorized:
        service.failure_buckets.take(address)
        raise
    wait = service.key_buckets.take(record.key_id)
    if wait > 0:
        raise RateLimited(
            f"API key {record.key_id} exceeded {service.settings.key_rate_per_second:g}"
            f" requests/s; retry in {wait:.2f} s",
            retry_after=wait,
        )
    return record


class ServiceAccess:
    """What an app mounted beside the API (e.g. MCP) may use of the running service."""

    def __init__(self, app: Any) -> None:
        self._app = app

    def _service(self) -> Service:
        service = getattr(self._app.state, "service", None)
        if not isinstance(service, Service):
            raise StoreClosed("the CORTEX service is not running")
        return service

    def engine(self) -> Cortex:
        """The open engine (StoreClosed outside the app's lifespan)."""
        return self._service().engine

    async def authenticate(self, key: str | None, address: str = "unknown") -> ApiKey:
        """Check a bearer key exactly as the API does (limits included); its record if valid."""
        return await check_key(self._service(), key, address)

    async def claim_agent(self, key: ApiKey, requested: str | None, what: str) -> str | None:
        """The agent name a write by `key` may record as `what` (see `claim_agent`)."""
        return await claim_agent(self._service().keys, key, requested, what)


async def _authenticate(
    request: Request, credentials: HTTPAuthorizationCredentials | None
) -> Scope:
    service = service_of(request)
    key: str | None = None
    if request.headers.get("authorization") is not None:
        # A header that is not 'Bearer <token>' is checked as an (invalid) empty key.
        key = credentials.credentials if credentials is not None else ""
    return Scope(await check_key(service, key, _client_address(request)), service)


def _requires(role: Role) -> Callable[..., Awaitable[Scope]]:
    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    ) -> Scope:
        scope = await _authenticate(request, credentials)
        if not scope.key.allows(role):
            raise Forbidden(
                f"API key {scope.key.key_id} has role {scope.key.role!r}; this request needs"
                f" the {role!r} role for tenant {scope.tenant!r}"
            )
        return scope

    dependency.__name__ = f"requires_{role}"
    return dependency


async def _tenant_admin(scope: Annotated[Scope, Depends(_requires("admin"))]) -> Scope:
    scope.whole_tenant("this request")
    return scope


Reader = Annotated[Scope, Depends(_requires("reader"))]
Writer = Annotated[Scope, Depends(_requires("writer"))]
Admin = Annotated[Scope, Depends(_requires("admin"))]
TenantAdmin = Annotated[Scope, Depends(_tenant_admin)]
