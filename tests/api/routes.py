"""The route table of the API as the tests see it: every `/v1` route, its role, a valid request."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

ROUTE_ROLES: dict[tuple[str, str], str] = {
    ("POST", "/v1/facts"): "writer",
    ("POST", "/v1/facts/batch"): "writer",
    ("GET", "/v1/facts"): "reader",
    ("GET", "/v1/facts/{fact_id}"): "reader",
    ("GET", "/v1/facts/{fact_id}/history"): "reader",
    ("POST", "/v1/facts/{fact_id}/deprecate"): "writer",
    ("POST", "/v1/facts/{fact_id}/supersede"): "writer",
    ("POST", "/v1/facts/{fact_id}/votes"): "writer",
    ("GET", "/v1/facts/{fact_id}/consensus"): "reader",
    ("GET", "/v1/agents/{agent}/reputation"): "reader",
    ("POST", "/v1/search"): "reader",
    ("GET", "/v1/ledger/verify"): "reader",
    ("GET", "/v1/ledger/proofs/inclusion"): "reader",
    ("GET", "/v1/ledger/proofs/consistency"): "reader",
    ("GET", "/v1/ledger/checkpoint"): "reader",
    ("POST", "/v1/ledger/checkpoint"): "writer",
    ("GET", "/v1/export"): "admin",
    ("POST", "/v1/facts/{fact_id}/purge"): "admin",
    ("GET", "/v1/gate"): "admin",
    ("POST", "/v1/gate/{approval_id}/approve"): "admin",
    ("POST", "/v1/gate/{approval_id}/deny"): "admin",
    ("GET", "/v1/report"): "admin",
    ("POST", "/v1/keys"): "admin",
    ("GET", "/v1/keys"): "admin",
    ("DELETE", "/v1/keys/{key_id}"): "admin",
}


def _flat(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    for route in routes:
        # FastAPI keeps an included router as one entry that refers to the router itself.
        included = getattr(route, "original_router", None)
        yield from _flat(included.routes) if included is not None else (route,)


def api_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path template) of every `/v1` route in the app's route table."""
    found = {
        (method, route.path)
        for route in _flat(app.routes)
        if isinstance(route, APIRoute) and route.path.startswith("/v1")
        for method in route.methods
    }
    documented = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/v1")
        for method in operations
    }
    assert found == documented, "the route table and the OpenAPI document disagree"
    return found


@dataclass(frozen=True)
class Sample:
    """A request that a key of the right role may make: method, URL, optional JSON body."""

    method: str
    url: str
    json: Any = None


def sample_request(
    method: str, path: str, *, fact_id: str, key_id: str, approval_id: str = "0" * 26
) -> Sample:
    """A valid request for the route `(method, path)` on an existing fact, key and approval.

    A gated route (export, purge) answers such a request 202: it waits for an approval.
    """
    url = path.replace("{fact_id}", fact_id).replace("{key_id}", key_id)
    url = url.replace("{approval_id}", approval_id)
    url = url.replace("{agent}", "reviewer-1")
    bodies: dict[tuple[str, str], Any] = {
        ("POST", "/v1/facts"): {"content": "a fact for the auth tests"},
        ("POST", "/v1/facts/batch"): {"facts": [{"content": "one"}, {"content": "two"}]},
        ("POST", "/v1/facts/{fact_id}/deprecate"): {"reason": "auth test"},
        ("POST", "/v1/facts/{fact_id}/supersede"): {"content": "newer", "reason": "auth test"},
        ("POST", "/v1/facts/{fact_id}/votes"): {"value": 1, "reason": "auth test"},
        ("POST", "/v1/search"): {"query": "fact", "mode": "text"},
        ("POST", "/v1/keys"): {"role": "reader"},
        ("POST", "/v1/facts/{fact_id}/purge"): {"reason": "auth test"},
        ("POST", "/v1/gate/{approval_id}/approve"): {"reason": "auth test"},
        ("POST", "/v1/gate/{approval_id}/deny"): {"reason": "auth test"},
    }
    queries = {
        ("GET", "/v1/ledger/proofs/inclusion"): "?seq=0",
        ("GET", "/v1/ledger/proofs/consistency"): "?old_size=1",
    }
    return Sample(method, url + queries.get((method, path), ""), bodies.get((method, path)))
