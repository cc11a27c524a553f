"""The MCP tools over streamable HTTP on a real uvicorn server: bearer keys, tenants, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.client import ConnectMode
from mcp.client.streamable_http import streamable_http_client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from cortex import Cortex
from cortex.errors import Unauthorized
from cortex.mcp import TOOL_NAMES, Principal, mcp_http_app
from tests.mcp.calls import call, fails
from tests.mcp.conftest import LIMITED_KEY, LiveServer, authenticate, serving

UNKNOWN_ID = "01JNZ3Q8V4K2M7T9X1B5C6D8EF"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


@asynccontextmanager
async def session(url: str, key: str, mode: ConnectMode = "auto") -> AsyncIterator[Client]:
    """An SDK client of the MCP endpoint at `url`, sending `Authorization: Bearer <key>`."""
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,
    ):
        yield client


async def _post(url: str, headers: dict[str, str]) -> httpx2.Response:
    async with httpx2.AsyncClient(timeout=30) as http:
        return await http.post(url, json=INITIALIZE, headers={**MCP_HEADERS, **headers})


def _problem(response: httpx2.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


async def test_a_request_without_a_key_gets_a_401_problem(live_server: LiveServer) -> None:
    response = await _post(live_server.url, {})

    body = _problem(response, 401)
    assert body["title"] == "Unauthorized"
    assert "Authorization: Bearer <key>" in body["detail"]
    assert response.headers["www-authenticate"] == 'Bearer realm="cortex"'


@pytest.mark.parametrize("value", ["key-a", "Basic a2V5LWE=", "Bearer", "Token key-a"])
async def test_a_malformed_authorization_header_gets_a_401(
    live_server: LiveServer, value: str
) -> None:
    response = await _post(live_server.url, {"Authorization": value})

    assert _problem(response, 401)["title"] == "Unauthorized"


async def test_an_unknown_key_gets_a_401_with_the_reason(live_server: LiveServer) -> None:
    response = await _post(live_server.url, {"Authorization": "Bearer key-zzz"})

    assert _problem(response, 401)["detail"] == "unknown API key"
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_a_rate_limited_client_gets_a_429_with_retry_after(live_server: LiveServer) -> None:
    response = await _post(live_server.url, {"Authorization": f"Bearer {LIMITED_KEY}"})

    assert _problem(response, 429)["detail"] == "too many failed attempts from this address"
    assert response.headers["retry-after"] == "7"


async def test_a_good_key_is_answered_by_the_mcp_server(live_server: LiveServer) -> None:
    response = await _post(live_server.url, {"Authorization": "Bearer key-a"})

    assert response.status_code == 200, response.text
    assert response.json()["result"]["serverInfo"]["name"] == "cortex"


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_the_sdk_client_lists_and_calls_every_tool_over_http(
    live_server: LiveServer, mode: ConnectMode
) -> None:
    async with session(live_server.url, "key-a", mode) as client:
        tools = (await client.list_tools()).tools
        stored = await call(client, "store_fact", content="Alerts page the on-call via PagerDuty")
        hits = (await call(client, "search_facts", query="on-call alerts", mode="text"))["hits"]
        got = await call(client, "get_fact", fact_id=stored["id"])
        gone = await call(
            client, "deprecate_fact", fact_id=stored["id"], reason="moved to Opsgenie"
        )
        history = (await call(client, "fact_history", fact_id=stored["id"]))["versions"]
        report = await call(client, "verify_ledger")

    assert tuple(tool.name for tool in tools) == TOOL_NAMES
    assert stored["tenant"] == "tenant-a"
    assert [hit["fact"]["id"] for hit in hits] == [stored["id"]]
    assert got["id"] == stored["id"]
    assert gone["status"] == "deprecated"
    assert [tx["op"] for tx in history[0]["transactions"]] == ["store", "deprecate"]
    assert report["ok"] is True
    assert report["entries"] == 2
    assert (await live_server.engine.get(stored["id"], tenant="tenant-a")).status == "deprecated"


async def test_errors_over_http_are_tool_errors_and_the_server_keeps_answering(
    live_server: LiveServer,
) -> None:
    async with session(live_server.url, "key-a") as client:
        stored = await call(client, "store_fact", content="Logs are kept for 30 days")
        unknown = await fails(client, "fact_history", fact_id=UNKNOWN_ID)
        bad = await fails(client, "search_facts", query="logs", mode="semantic")
        await call(client, "deprecate_fact", fact_id=stored["id"], reason="now 90 days")
        twice = await fails(client, "deprecate_fact", fact_id=stored["id"], reason="again")
        still = await call(client, "search_facts", query="logs", mode="text", include_inactive=True)

    assert f"NotFound: no fact '{UNKNOWN_ID}' in tenant 'tenant-a'" in unknown
    assert "mode\n  Input should be 'hybrid', 'vector' or 'text'" in bad
    assert "Conflict:" in twice
    assert "already deprecated" in twice
    assert [hit["fact"]["id"] for hit in still["hits"]] == [stored["id"]]


async def test_a_key_of_another_tenant_gets_nothing_of_this_tenant(
    live_server: LiveServer,
) -> None:
    async with session(live_server.url, "key-a") as tenant_a:
        fact = await call(tenant_a, "store_fact", content="The acquisition closes on June 3")
    fact_id = fact["id"]

    async with session(live_server.url, "key-b") as tenant_b:
        errors = [
            await fails(tenant_b, "get_fact", fact_id=fact_id),
            await fails(tenant_b, "fact_history", fact_id=fact_id),
            await fails(tenant_b, "deprecate_fact", fact_id=fact_id, reason="not yours"),
        ]
        hits = await call(tenant_b, "search_facts", query="acquisition June", mode="text")
        own = await call(tenant_b, "store_fact", content="Tenant B's own fact")
        report = await call(tenant_b, "verify_ledger")

    for error in errors:
        assert "NotFound" in error
        assert "tenant-b" in error
        assert "acquisition" not in error
    assert hits == {"hits": []}
    assert own["tenant"] == "tenant-b"
    assert (report["tenants"], report["entries"], report["facts"]) == (1, 1, 1)
    assert (await live_server.engine.get(fact_id, tenant="tenant-a")).status == "active"


async def test_a_reader_key_can_search_but_not_store(live_server: LiveServer) -> None:
    await live_server.engine.store("Standup is at 09:30", tenant="tenant-a")

    async with session(live_server.url, "key-a-reader") as client:
        refused = await fails(client, "store_fact", content="Standup is at 10:00")
        hits = await call(client, "search_facts", query="standup", mode="text")

    assert "Forbidden: this connection's role is 'reader'" in refused
    assert [hit["fact"]["content"] for hit in hits["hits"]] == ["Standup is at 09:30"]


async def test_a_project_key_is_confined_to_its_project(live_server: LiveServer) -> None:
    web = await live_server.engine.store("web uses node 22", project="web", tenant="tenant-a")

    async with session(live_server.url, "key-a-infra") as client:
        stored = await call(client, "store_fact", content="infra uses terraform 1.9")
        refused = await fails(client, "store_fact", content="x", project="web")
        hidden = await fails(client, "get_fact", fact_id=web.id)
        hits = await call(client, "search_facts", query="uses", mode="text")

    assert (stored["tenant"], stored["project"]) == ("tenant-a", "infra")
    assert "Forbidden" in refused
    assert f"NotFound: no fact '{web.id}' in tenant 'tenant-a'" in hidden
    assert [hit["fact"]["id"] for hit in hits["hits"]] == [stored["id"]]


async def test_an_async_authenticate_function_is_awaited(engine: Cortex) -> None:
    seen: list[str] = []

    async def check_key(token: str, address: str) -> Principal:
        assert address == "127.0.0.1"
        seen.append(token)
        if token != "async-key":
            raise Unauthorized("unknown API key")
        return Principal("tenant-z", None, "writer")

    async with serving(mcp_http_app(lambda: engine, check_key)) as base:
        refused = await _post(f"{base}/mcp", {"Authorization": "Bearer other"})
        async with session(f"{base}/mcp", "async-key") as client:
            stored = await call(client, "store_fact", content="Keys may be checked asynchronously")

    assert _problem(refused, 401)["detail"] == "unknown API key"
    assert stored["tenant"] == "tenant-z"
    assert seen[0] == "other"
    assert set(seen[1:]) == {"async-key"}


async def test_an_unknown_role_may_only_read(engine: Cortex) -> None:
    def check_key(token: str, address: str) -> tuple[str, str | None, str]:
        return ("tenant-q", None, "superuser")

    async with (
        serving(mcp_http_app(lambda: engine, check_key)) as base,
        session(f"{base}/mcp", "any") as client,
    ):
        refused = await fails(client, "store_fact", content="x")
        hits = await call(client, "search_facts", query="x")

    assert "Forbidden: this connection's role is 'reader'" in refused
    assert hits == {"hits": []}


async def test_the_app_can_be_embedded_in_a_host_app_as_its_docstring_says(engine: Cortex) -> None:
    mcp = mcp_http_app(lambda: engine, authenticate)

    @asynccontextmanager
    async def lifespan(host: Starlette) -> AsyncIterator[None]:
        async with mcp.router.lifespan_context(mcp):
            yield

    async def health(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    host = Starlette(routes=[Route("/health", health)], lifespan=lifespan)
    host.router.routes.extend(mcp.routes)
    async with serving(host) as base, session(f"{base}/mcp", "key-a") as client:
        stored = await call(client, "store_fact", content="Embedded under the host's routes")
        async with httpx2.AsyncClient(timeout=30) as http:
            health_response = await http.get(f"{base}/health")

    assert stored["tenant"] == "tenant-a"
    assert health_response.text == "ok"
