"""`GET /v1/report` on a real server: formats, the admin role, and one tenant per key."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import jsonschema
import pytest

import cortex
from cortex.report import REPORT_SCHEMA
from tests.api.conftest import RunningServer, make_settings, running_server
from tests.report.scenario import EXPECTED_BY_OP, populate


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server whose store holds the scenario in tenant `acme` and one fact of `globex`."""
    settings = make_settings(tmp_path_factory.mktemp("report-api") / "home")

    async def write() -> None:
        async with await cortex.open(settings) as engine:
            await populate(engine, tenant="acme")
            await engine.store("globex payroll secret", source="globex-bot", tenant="globex")

    asyncio.run(write())
    with running_server(settings) as running:
        for role in ("reader", "writer", "admin"):
            running.keys[f"acme-{role}"] = running.issue("acme", role).key
        running.keys["globex-admin"] = running.issue("globex", "admin").key
        running.keys["acme-infra-admin"] = running.issue("acme", "admin", project="infra").key
        yield running


def test_an_admin_gets_the_json_report_of_its_tenant(server: RunningServer) -> None:
    with server.http(server.keys["acme-admin"]) as http:
        response = http.get("/v1/report")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-cortex-integrity"] == "ok"
    data = response.json()
    jsonschema.Draft202012Validator(REPORT_SCHEMA).validate(data)
    assert data["header"]["tenant"] == "acme"
    assert response.headers["x-cortex-body-sha256"] == data["header"]["body_sha256"]
    assert data["body"]["activity"]["by_op"] == EXPECTED_BY_OP
    assert "globex" not in response.text


@pytest.mark.parametrize(
    ("fmt", "media", "start"),
    [("md", "text/markdown", "# CORTEX"), ("html", "text/html", "<!DOCTYPE")],
)
def test_markdown_and_html_come_with_their_media_types(
    server: RunningServer, fmt: str, media: str, start: str
) -> None:
    with server.http(server.keys["acme-admin"]) as http:
        response = http.get("/v1/report", params={"format": fmt, "from": "2020-01-01"})

    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == media
    assert response.text.startswith(start)
    assert "from 2020-01-01T00:00:00.000000Z" in response.text


def test_a_key_of_another_tenant_gets_that_tenants_report_only(server: RunningServer) -> None:
    with server.http(server.keys["globex-admin"]) as http:
        response = http.get("/v1/report")
        smuggled = http.get("/v1/report", params={"tenant": "acme"})

    assert response.status_code == 200
    body = response.json()
    assert body["header"]["tenant"] == "globex"
    assert body["body"]["activity"]["by_op"] == {"store": 1}
    assert "agent-a" not in response.text
    assert "acme" not in response.text
    assert smuggled.status_code == 422


@pytest.mark.parametrize("key", ["acme-reader", "acme-writer", "acme-infra-admin"])
def test_readers_writers_and_project_admins_are_forbidden(server: RunningServer, key: str) -> None:
    with server.http(server.keys[key]) as http:
        response = http.get("/v1/report")

    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "params",
    [{"format": "pdf"}, {"from": "last tuesday"}, {"from": "2026-02-01", "to": "2026-01-01"}],
)
def test_bad_parameters_are_422_problems(server: RunningServer, params: dict[str, str]) -> None:
    with server.http(server.keys["acme-admin"]) as http:
        response = http.get("/v1/report", params=params)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


def test_the_openapi_document_publishes_the_report_schema(server: RunningServer) -> None:
    with server.http() as http:
        document = http.get("/openapi.json").json()

    content = document["paths"]["/v1/report"]["get"]["responses"]["200"]["content"]
    assert set(content) == {"application/json", "text/markdown", "text/html"}
    assert content["application/json"]["schema"]["properties"]["format"] == {
        "const": "cortex-report/1"
    }


def test_a_fresh_tenant_without_entries_is_404(server: RunningServer) -> None:
    key = server.issue("newcomer", "admin").key
    with server.http(key) as http:
        response = http.get("/v1/report")

    assert response.status_code == 404
    assert "no ledger" in response.json()["detail"]


def test_the_client_sdk_returns_the_report_the_engine_builds(server: RunningServer) -> None:
    from cortex.client import AsyncClient, Client
    from cortex.errors import Forbidden, ValidationError
    from cortex.report import ComplianceReport, render

    with Client(server.base_url, server.keys["acme-admin"]) as client:
        report = client.report()
        bounded = client.report(start="2000-01-01", end="2000-01-02")
        with pytest.raises(ValidationError):
            client.report(start="not a date")
    assert isinstance(report, ComplianceReport)
    assert (report.tenant, report.ok) == ("acme", True)
    assert report.body["activity"]["by_op"] == EXPECTED_BY_OP
    assert render(report, "md").startswith("# CORTEX")
    assert sum(bounded.body["activity"]["by_op"].values()) == 0  # nothing logged in 2000

    async def as_reader() -> None:
        async with AsyncClient(server.base_url, server.keys["acme-reader"]) as client:
            with pytest.raises(Forbidden):
                await client.report()

    asyncio.run(as_reader())
    with pytest.raises(ValidationError, match="not a cortex-report"):
        ComplianceReport.from_dict({"format": "other"})
