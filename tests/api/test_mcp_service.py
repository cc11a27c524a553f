"""MCP over streamable HTTP at /mcp of the running service, behind the API's own bearer keys."""

from __future__ import annotations

import httpx2
import pytest

from tests.api.conftest import RunningServer
from tests.mcp.calls import call, fails
from tests.mcp.test_http import INITIALIZE, MCP_HEADERS, session

pytestmark = pytest.mark.timeout(120)

TOOLS = {
    "store_fact",
    "search_facts",
    "get_fact",
    "deprecate_fact",
    "fact_history",
    "verify_ledger",
}


async def test_the_service_serves_the_mcp_tools_for_the_keys_tenant(
    service: RunningServer,
) -> None:
    url = f"{service.base_url}/mcp"
    async with session(url, service.keys["acme-writer"]) as client:
        assert {tool.name for tool in (await client.list_tools()).tools} == TOOLS
        stored = await call(client, "store_fact", content="The MCP mount shares the API's keys")
        found = await call(client, "search_facts", query="MCP mount keys", mode="text")
    assert stored["tenant"] == "acme"
    assert [hit["fact"]["id"] for hit in found["hits"]] == [stored["id"]]
    async with session(url, service.keys["globex-admin"]) as other:
        hidden = await fails(other, "get_fact", fact_id=stored["id"])
        assert "NotFound" in hidden
    async with session(url, service.keys["acme-reader"]) as reader:
        refused = await fails(reader, "store_fact", content="readers cannot write")
        assert "Forbidden" in refused


@pytest.mark.parametrize("key", [None, "ctx_nope_nope", "not a key"])
async def test_mcp_without_a_valid_key_is_401(service: RunningServer, key: str | None) -> None:
    headers = {**MCP_HEADERS}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    async with httpx2.AsyncClient(timeout=30) as http:
        response = await http.post(f"{service.base_url}/mcp", json=INITIALIZE, headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_mcp_writes_record_the_keys_agent(service: RunningServer) -> None:
    url = f"{service.base_url}/mcp"
    scout = service.issue("acme", "writer", agent="scout").key
    async with session(url, scout) as client:
        stored = await call(client, "store_fact", content="The scout maps the east wing")
        refused = await fails(client, "store_fact", content="x", source="someone-else")
        gone = await call(client, "deprecate_fact", fact_id=stored["id"], reason="mapped again")
        history = await call(client, "fact_history", fact_id=stored["id"])
    assert stored["source"] == "scout"
    assert "Forbidden" in refused
    assert "bound to agent 'scout'" in refused
    assert gone["status"] == "deprecated"
    transactions = history["versions"][0]["transactions"]
    assert [(tx["op"], tx["actor"]) for tx in transactions] == [
        ("store", "scout"),
        ("deprecate", "scout"),
    ]
    async with session(url, service.keys["acme-writer"]) as other:
        borrowed = await fails(other, "store_fact", content="y", source="scout")
        own = await call(other, "store_fact", content="z", source="ci-bot")
    assert "bound to API key" in borrowed
    assert own["source"] == "ci-bot"
