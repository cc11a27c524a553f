"""Every error is a problem+json body with a request id: 400, 404, 409, 413, 422, 429, 500, 503."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from cortex.api.deps import ServiceAccess
from cortex.errors import ConfigError
from tests.api.conftest import RunningServer, make_settings, running_server


def _problem(response: httpx.Response, status: int, slug: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = response.json()
    assert set(body) == {"type", "title", "status", "detail", "request_id"}
    assert body["type"] == f"urn:cortex:problem:{slug}"
    assert body["status"] == status
    assert body["request_id"] == response.headers["x-request-id"]
    return body


@pytest.fixture
def writer(service: RunningServer) -> Iterator[httpx.Client]:
    with service.http(service.keys["acme-writer"]) as client:
        yield client


def test_a_body_that_is_not_json_is_400(writer: httpx.Client) -> None:
    response = writer.post(
        "/v1/facts", content=b"{not json", headers={"content-type": "application/json"}
    )
    body = _problem(response, 400, "bad-request")
    assert body["detail"] == (
        "the request body is not valid JSON:"
        " Expecting property name enclosed in double quotes at character 1"
    )


def test_a_body_that_is_no_json_object_says_what_to_send(writer: httpx.Client) -> None:
    for body, content_type in ((b"hello", "text/plain"), (b"[1, 2]", "application/json")):
        response = writer.post("/v1/facts", content=body, headers={"content-type": content_type})
        problem = _problem(response, 422, "validation-error")
        assert problem["detail"] == (
            "the request body must be a JSON object, sent as Content-Type: application/json"
        )


def test_an_unknown_route_is_404_and_a_wrong_method_405_naming_the_allowed_ones(
    writer: httpx.Client,
) -> None:
    unknown = _problem(writer.post("/v1/facts:batch"), 404, "not-found")
    wrong = writer.delete("/v1/facts")
    problem = _problem(wrong, 405, "method-not-allowed")

    assert unknown["detail"] == "no route POST /v1/facts:batch; /openapi.json lists every route"
    # Both methods of the path, though they belong to two routes (Starlette names the first's).
    assert problem["detail"] == "no route DELETE /v1/facts; this path allows GET, POST"
    assert wrong.headers["allow"] == "GET, POST"


def test_schema_violations_and_engine_refusals_are_422_with_the_reason(
    writer: httpx.Client,
) -> None:
    missing = _problem(writer.post("/v1/facts", json={"tags": ["x"]}), 422, "validation-error")
    assert "content" in str(missing["detail"])
    unknown = _problem(
        writer.post("/v1/facts", json={"content": "x", "colour": 1}), 422, "validation-error"
    )
    assert "colour" in str(unknown["detail"])
    bad_range = writer.post(
        "/v1/facts",
        json={"content": "x", "valid_from": "2026-02-01", "valid_until": "2026-01-01"},
    )
    assert "valid_until" in str(_problem(bad_range, 422, "validation-error")["detail"])


def test_an_unknown_fact_is_404_and_an_unknown_route_too(writer: httpx.Client) -> None:
    _problem(writer.get("/v1/facts/01ZZZZZZZZZZZZZZZZZZZZZZZZ"), 404, "not-found")
    _problem(writer.get("/v1/nothing-here"), 404, "not-found")
    _problem(writer.put("/v1/facts"), 405, "method-not-allowed")


def test_deprecating_twice_is_409(writer: httpx.Client) -> None:
    fact = writer.post("/v1/facts", json={"content": "to be deprecated"}).json()
    url = f"/v1/facts/{fact['id']}/deprecate"
    assert writer.post(url, json={"reason": "obsolete"}).status_code == 200
    body = _problem(writer.post(url, json={"reason": "again"}), 409, "conflict")
    assert "deprecated" in str(body["detail"])


def test_a_caller_request_id_is_kept_and_a_bad_one_replaced(writer: httpx.Client) -> None:
    kept = writer.get("/v1/facts", headers={"X-Request-ID": "trace-42.a"})
    assert kept.headers["x-request-id"] == "trace-42.a"
    replaced = writer.get("/v1/facts", headers={"X-Request-ID": "bad id with spaces"})
    assert replaced.headers["x-request-id"] != "bad id with spaces"
    assert len(replaced.headers["x-request-id"]) == 32


def test_bodies_over_the_limit_are_413_by_header_and_while_streaming(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home", max_body_bytes=2048)
    with running_server(settings) as server:
        writer = server.http(server.issue("acme", "writer").key)
        big = json.dumps({"content": "x" * 4096}).encode()
        _problem(writer.post("/v1/facts", content=big), 413, "payload-too-large")

        def chunks() -> Iterator[bytes]:
            for start in range(0, len(big), 512):
                yield big[start : start + 512]

        streamed = writer.post(
            "/v1/facts", content=chunks(), headers={"content-type": "application/json"}
        )
        _problem(streamed, 413, "payload-too-large")
        assert writer.post("/v1/facts", json={"content": "small"}).status_code == 201


def test_a_key_over_its_rate_gets_429_with_retry_after(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home", key_rate_burst=5, key_rate_per_second=0.5)
    with running_server(settings) as server:
        reader = server.http(server.issue("acme", "reader").key)
        statuses = [reader.get("/v1/facts").status_code for _ in range(7)]
        assert statuses[:5] == [200] * 5
        assert statuses[5:] == [429, 429]
        response = reader.get("/v1/facts")
        _problem(response, 429, "rate-limited")
        assert int(response.headers["retry-after"]) >= 1
        other = server.http(server.issue("acme", "reader").key)
        assert other.get("/v1/facts").status_code == 200


def test_a_full_write_queue_gives_503_with_retry_after_and_loses_nothing_acknowledged(
    tmp_path: Path,
) -> None:
    settings = make_settings(
        tmp_path / "home", write_queue_size=1, write_batch_max=1, write_timeout=0.01
    )
    with running_server(settings) as server:
        key = server.issue("acme", "writer").key

        def store(number: int) -> httpx.Response:
            with server.http(key) as http:
                return http.post(
                    "/v1/facts/batch",
                    json={"facts": [{"content": f"burst {number} part {i}"} for i in range(50)]},
                )

        with ThreadPoolExecutor(32) as pool:
            responses = list(pool.map(store, range(96)))
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {201, 503}
        refused = [r for r in responses if r.status_code == 503]
        assert refused, "the tiny queue never overflowed"
        body = _problem(refused[0], 503, "overloaded")
        assert "queue" in str(body["detail"])
        assert int(refused[0].headers["retry-after"]) >= 1
        acknowledged = {
            f["id"] for r in responses if r.status_code == 201 for f in r.json()["items"]
        }
        with server.http(key) as http:
            assert http.get("/health").status_code == 200
            listed: set[str] = set()
            cursor = None
            while True:
                params = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
                page = http.get("/v1/facts", params=params).json()
                listed |= {f["id"] for f in page["items"]}
                cursor = page["next_cursor"]
                if cursor is None:
                    break
            assert acknowledged <= listed
            assert len(listed) == len(acknowledged)
            assert http.get("/v1/ledger/verify").json()["ok"] is True


class _Failing:
    """An app mounted beside the API that fails the way a bug would."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise self.error


def test_an_internal_error_is_a_500_without_internals_logged_with_the_request_id(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path / "home")
    mounts = [
        ("/bug", lambda access: _Failing(RuntimeError("secret internals at 0xdeadbeef"))),
        ("/misconfigured", lambda access: _Failing(ConfigError("key file path /etc/x"))),
    ]
    with (
        caplog.at_level(logging.ERROR, logger="cortex.api"),
        running_server(settings, mounts=mounts) as server,
        server.http() as http,
    ):
        for path in ("/bug", "/misconfigured"):
            response = http.get(path)
            body = _problem(response, 500, "internal-error")
            assert "0xdeadbeef" not in response.text
            assert "/etc/x" not in response.text
            assert str(body["request_id"]) in str(body["detail"])
            assert any(body["request_id"] in record.getMessage() for record in caplog.records)


def _echo_app(access: ServiceAccess) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        header = request.headers.get("authorization", "")
        key = await access.authenticate(header.removeprefix("Bearer ") or None)
        stats = await access.engine().stats(tenant=key.tenant)
        await JSONResponse({"tenant": key.tenant, "facts": stats.facts, "path": scope["path"]})(
            scope, receive, send
        )

    return app


def test_a_mounted_app_uses_the_services_engine_and_key_checks(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home")
    with running_server(settings, mounts=[("/echo", _echo_app)]) as server:
        key = server.issue("acme", "writer").key
        with server.http(key) as http:
            http.post("/v1/facts", json={"content": "one"})
            response = http.get("/echo")
            assert response.json() == {"tenant": "acme", "facts": 1, "path": "/echo"}
            assert response.headers["x-request-id"]
            assert http.post("/echo").status_code == 200
        with server.http("ctx_0123456789abcdef_" + "C" * 43) as stranger:
            _problem(stranger.get("/echo"), 401, "unauthorized")
