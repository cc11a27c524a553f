"""The MCP tools in process: schemas, results, scopes (project, role) and error reporting."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mcp import Client
from mcp.server.mcpserver import Context

from cortex import Cortex
from cortex.errors import Overloaded, ValidationError
from cortex.mcp import MAX_SEARCH_K, TOOL_NAMES, Caller, build_mcp_server, fixed_caller
from cortex.mcp.server import NAME_PATTERN, _error_text
from cortex.model import check_name
from tests.mcp.calls import call, fails

FactDict = dict[str, Any]


def client_for(caller: Caller) -> Client:
    """An in-process SDK client of a server that acts for `caller` on every call."""
    return Client(build_mcp_server(fixed_caller(caller)))


async def test_the_six_tools_are_listed_with_titles_descriptions_and_strict_schemas(
    engine: Cortex,
) -> None:
    async with client_for(Caller(engine, "acme")) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}

    assert tuple(tools) == TOOL_NAMES
    for tool in tools.values():
        assert tool.title
        assert tool.description is not None
        assert len(tool.description) > 200
        assert tool.input_schema["additionalProperties"] is False
        assert tool.output_schema is not None
        assert tool.output_schema["type"] == "object"
        for name, spec in tool.input_schema["properties"].items():
            assert spec.get("description"), f"{tool.name}.{name} has no description"
    assert tools["store_fact"].input_schema["required"] == ["content"]
    assert tools["deprecate_fact"].input_schema["required"] == ["fact_id", "reason"]
    search = tools["search_facts"].input_schema["properties"]
    assert search["mode"]["enum"] == ["hybrid", "vector", "text"]
    assert (search["k"]["minimum"], search["k"]["maximum"]) == (1, MAX_SEARCH_K)
    assert tools["get_fact"].input_schema["properties"]["fact_id"]["pattern"]
    assert tools["verify_ledger"].input_schema["properties"] == {}
    annotations = {name: tool.annotations for name, tool in tools.items()}
    assert [n for n, a in annotations.items() if a is not None and a.read_only_hint] == [
        "search_facts",
        "get_fact",
        "fact_history",
        "verify_ledger",
    ]


# No line breaks: check_name's `$` also matches before a final "\n" (reported to its owner); the
# schema's pattern, matched by pydantic and JSON Schema validators, refuses it.
@given(st.text(alphabet="aZ09._-/ é\t", max_size=70))
def test_the_name_pattern_in_the_schemas_is_the_rule_check_name_enforces(name: str) -> None:
    try:
        check_name("project", name)
        accepted = True
    except ValidationError:
        accepted = False
    assert (re.fullmatch(NAME_PATTERN, name) is not None) == accepted


async def test_store_get_search_history_deprecate_and_verify_work_together(
    engine: Cortex,
) -> None:
    async with client_for(Caller(engine, "acme")) as client:
        stored = await call(
            client,
            "store_fact",
            content="The staging cache listens on port 6380",
            project="infra",
            tags=["cache", "staging"],
            source="agent-7",
            confidence=0.9,
            meta={"ticket": 7},
        )
        got = await call(client, "get_fact", fact_id=stored["id"])
        hits = (await call(client, "search_facts", query="staging cache port", mode="text"))["hits"]
        gone = await call(client, "deprecate_fact", fact_id=stored["id"], reason="moved to 6390")
        history = (await call(client, "fact_history", fact_id=stored["id"]))["versions"]
        report = await call(client, "verify_ledger")

    assert got == stored
    assert (stored["tenant"], stored["project"], stored["tags"]) == (
        "acme",
        "infra",
        ["cache", "staging"],
    )
    assert (stored["source"], stored["confidence"], stored["meta"]) == (
        "agent-7",
        0.9,
        {"ticket": 7},
    )
    assert [hit["fact"]["id"] for hit in hits] == [stored["id"]]
    assert (gone["status"], gone["deprecation_reason"]) == ("deprecated", "moved to 6390")
    assert [tx["op"] for tx in history[0]["transactions"]] == ["store", "deprecate"]
    assert report["ok"] is True
    assert report["entries"] == 2


async def test_a_reader_can_search_and_read_but_not_store_or_deprecate(engine: Cortex) -> None:
    fact = await engine.store("Deploys freeze on Fridays", tenant="acme")

    async with client_for(Caller(engine, "acme", role="reader")) as client:
        refused_store = await fails(client, "store_fact", content="Deploys are fine on Fridays")
        refused_deprecate = await fails(client, "deprecate_fact", fact_id=fact.id, reason="no")
        read = await call(client, "get_fact", fact_id=fact.id)
        hits = (await call(client, "search_facts", query="deploys Fridays", mode="text"))["hits"]

    assert "Forbidden" in refused_store
    assert "'reader'" in refused_store
    assert "Forbidden" in refused_deprecate
    assert read["status"] == "active"
    assert [hit["fact"]["id"] for hit in hits] == [fact.id]
    assert (await engine.stats(tenant="acme")).facts == 1


async def test_a_project_bound_caller_stores_into_its_project_and_refuses_another(
    engine: Cortex,
) -> None:
    async with client_for(Caller(engine, "acme", project="infra")) as client:
        stored = await call(client, "store_fact", content="db-2 is the primary")
        named = await call(client, "store_fact", content="db-3 is a replica", project="infra")
        refused = await fails(client, "store_fact", content="x", project="web")
        refused_search = await fails(client, "search_facts", query="db", project="web")

    assert stored["project"] == named["project"] == "infra"
    assert "Forbidden" in refused
    assert "'infra'" in refused
    assert "Forbidden" in refused_search


async def test_a_project_bound_caller_sees_facts_of_other_projects_as_missing(
    engine: Cortex,
) -> None:
    web = await engine.store("The web tier runs 4 replicas", project="web", tenant="acme")
    infra = await engine.store("The web tier sits behind lb-1", project="infra", tenant="acme")

    async with client_for(Caller(engine, "acme", project="infra")) as client:
        errors = [
            await fails(client, "get_fact", fact_id=web.id),
            await fails(client, "fact_history", fact_id=web.id),
            await fails(client, "deprecate_fact", fact_id=web.id, reason="not mine"),
        ]
        hits = (await call(client, "search_facts", query="web tier", mode="text"))["hits"]
        missing = await fails(client, "get_fact", fact_id="01JNZ3Q8V4K2M7T9X1B5C6D8EF")

    for error in errors:
        assert "NotFound" in error
        assert f"no fact '{web.id}' in tenant 'acme'" in error
    # The same words as for an id that exists nowhere: no hint that the fact exists.
    assert missing.replace("01JNZ3Q8V4K2M7T9X1B5C6D8EF", web.id).split(": ", 1)[1] in errors[0]
    assert [hit["fact"]["id"] for hit in hits] == [infra.id]
    assert (await engine.get(web.id, tenant="acme")).status == "active"


@pytest.mark.parametrize(
    ("tool", "arguments", "expected"),
    [
        ("store_fact", {}, "content\n  Field required"),
        ("store_fact", {"content": "x", "tag": ["a"]}, "tag\n  Extra inputs are not permitted"),
        ("store_fact", {"content": "x", "confidence": 2}, "less than or equal to 1"),
        ("store_fact", {"content": "x", "project": "no spaces"}, "should match pattern"),
        ("search_facts", {"query": "x", "k": 0}, "greater than or equal to 1"),
        ("search_facts", {"query": "x", "mode": "fuzzy"}, "'hybrid', 'vector' or 'text'"),
        ("get_fact", {"fact_id": "42"}, "should match pattern"),
        ("deprecate_fact", {"fact_id": "01JNZ3Q8V4K2M7T9X1B5C6D8EF", "reason": ""}, "at least 1"),
        ("store_fact", {"content": "x", "valid_from": "yesterday"}, "ValidationError: 'yesterday'"),
    ],
)
async def test_bad_arguments_come_back_as_tool_errors_that_name_the_problem(
    engine: Cortex, tool: str, arguments: dict[str, Any], expected: str
) -> None:
    async with client_for(Caller(engine, "acme")) as client:
        error = await fails(client, tool, **arguments)

    assert error.startswith(f"Error executing tool {tool}: ")
    assert expected in error


async def test_an_unexpected_exception_is_logged_and_reported_without_its_details(
    engine: Cortex, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(ctx: Context) -> Caller:
        raise RuntimeError("connection string postgres://admin:hunter2@db")

    async with Client(build_mcp_server(broken)) as client:
        with caplog.at_level(logging.ERROR):
            error = await fails(client, "get_fact", fact_id="01JNZ3Q8V4K2M7T9X1B5C6D8EF")
        tools = (await client.list_tools()).tools

    assert error == "Error executing tool get_fact"
    assert any(
        record.exc_info is not None and "hunter2" in str(record.exc_info[1].__cause__)
        for record in caplog.records
        if record.exc_info is not None and record.exc_info[1] is not None
    )
    assert len(tools) == len(TOOL_NAMES)


def test_an_overloaded_error_tells_when_to_retry() -> None:
    text = _error_text(Overloaded("the write queue is full", retry_after=2))

    assert text == "Overloaded: the write queue is full (retry in 2 s)"
