"""Auth on every route: missing, malformed, unknown, revoked, expired and wrong-role keys; limits
on failed attempts; revocation; the key store holds no key."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from cortex.api.keys import KeyStore, key_digest, parse_key_id
from cortex.errors import ConfigError
from tests.api.conftest import RunningServer, make_settings, running_server
from tests.api.routes import ROUTE_ROLES, Sample, api_routes, sample_request

ROLES = ("reader", "writer", "admin")


def test_the_role_table_covers_every_v1_route(service: RunningServer) -> None:
    assert api_routes(service.app) == set(ROUTE_ROLES)


@pytest.fixture(scope="module")
def fact_id(service: RunningServer) -> str:
    response = service.http(service.keys["acme-writer"]).post(
        "/v1/facts", json={"content": "auth fixture fact"}
    )
    assert response.status_code == 201
    checkpoint = service.http(service.keys["acme-writer"]).post("/v1/ledger/checkpoint")
    assert checkpoint.status_code == 201
    fact: str = response.json()["id"]
    return fact


@pytest.fixture(scope="module")
def dead_keys(service: RunningServer) -> dict[str, str]:
    """A revoked and an expired admin key of acme, and an unknown but well-formed one."""
    revoked = service.issue("acme", "admin")
    with KeyStore.open(service.settings) as store:
        store.revoke(revoked.record.key_id)
    soon = datetime.now(UTC) + timedelta(seconds=1.5)
    expiring = service.issue("acme", "admin", expires=soon)
    unknown = "ctx_0123456789abcdef_" + "A" * 43
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.1)
    return {"revoked": revoked.key, "expired": expiring.key, "unknown": unknown}


def _send(server: RunningServer, sample: Sample, headers: dict[str, str]) -> httpx.Response:
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        return http.request(sample.method, sample.url, json=sample.json, headers=headers)


def _sample(service: RunningServer, route: tuple[str, str], fact_id: str) -> Sample:
    key_id = service.issue("acme", "reader").record.key_id
    approval_id = "0" * 26
    if "{approval_id}" in route[1]:  # a pending approval: the one a purge of the fact waits for
        # Asked by another admin key than the ones the tests decide with (four eyes).
        asker = service.issue("acme", "admin").key
        asked = service.http(asker).post(f"/v1/facts/{fact_id}/purge", json={"reason": "auth test"})
        assert asked.status_code == 202, asked.text
        approval_id = asked.json()["approval"]["id"]
    return sample_request(*route, fact_id=fact_id, key_id=key_id, approval_id=approval_id)


ROUTES = sorted(ROUTE_ROLES)


def _assert_problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r[0]} {r[1]}")
def test_every_route_refuses_missing_malformed_unknown_revoked_and_expired_keys(
    service: RunningServer, fact_id: str, dead_keys: dict[str, str], route: tuple[str, str]
) -> None:
    sample = _sample(service, route, fact_id)
    cases = {
        "missing": {},
        "not bearer": {"Authorization": f"Basic {service.keys['acme-admin']}"},
        "malformed": {"Authorization": "Bearer not-a-cortex-key"},
        "wrong secret": {"Authorization": f"Bearer {service.keys['acme-admin'][:-4]}AAAA"},
        **{name: {"Authorization": f"Bearer {key}"} for name, key in dead_keys.items()},
    }
    for name, headers in cases.items():
        response = _send(service, sample, headers)
        _assert_problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer"), name


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r[0]} {r[1]}")
def test_every_route_refuses_roles_below_its_own_with_403_and_accepts_its_own(
    service: RunningServer, fact_id: str, route: tuple[str, str]
) -> None:
    needed = ROLES.index(ROUTE_ROLES[route])
    for role in ROLES[:needed]:
        sample = _sample(service, route, fact_id)
        response = _send(
            service, sample, {"Authorization": f"Bearer {service.keys[f'acme-{role}']}"}
        )
        _assert_problem(response, 403)
        assert ROUTE_ROLES[route] in response.json()["detail"]
    fresh = service.http(service.keys["acme-writer"]).post("/v1/facts", json={"content": "own"})
    sample = _sample(service, route, fresh.json()["id"])
    key = service.keys[f"acme-{ROUTE_ROLES[route]}"]
    response = _send(service, sample, {"Authorization": f"Bearer {key}"})
    assert response.status_code in (200, 201, 202), response.text  # 202: gated, see docs/gate.md


def test_only_health_and_ready_answer_without_a_key(service: RunningServer) -> None:
    with service.http() as http:
        assert http.get("/health").json() == {"status": "ok"}
        assert http.get("/ready").json() == {"status": "ready"}
        _assert_problem(http.get("/metrics"), 401)
    reader = service.http(service.keys["acme-reader"])
    _assert_problem(reader.get("/metrics"), 403)
    admin = service.http(service.keys["acme-admin"])
    assert "cortex_write_queue_depth" in admin.get("/metrics").text


def test_a_key_revoked_by_the_cli_stops_working_within_the_cache_time(
    service: RunningServer,
) -> None:
    issued = service.issue("acme", "reader")
    reader = service.http(issued.key)
    assert reader.get("/v1/facts").status_code == 200
    with KeyStore.open(service.settings) as store:
        store.revoke(issued.record.key_id)
    time.sleep(service.settings.key_cache_seconds + 0.05)
    response = reader.get("/v1/facts")
    _assert_problem(response, 401)
    assert "revoked" in response.json()["detail"]


def test_a_key_revoked_through_the_api_stops_working_at_once(service: RunningServer) -> None:
    admin = service.http(service.keys["acme-admin"])
    created = admin.post("/v1/keys", json={"role": "writer", "project": "ops"}).json()
    assert created["record"]["project"] == "ops"
    writer = service.http(created["key"])
    assert writer.get("/v1/facts").status_code == 200
    revoked = admin.delete(f"/v1/keys/{created['record']['key_id']}")
    assert revoked.json()["state"] == "revoked"
    _assert_problem(writer.get("/v1/facts"), 401)


def test_the_key_store_holds_hmacs_and_never_a_key(service: RunningServer) -> None:
    keys = list(service.keys.values())
    blob = b"".join(
        path.read_bytes()
        for path in service.settings.home.iterdir()
        if path.name.startswith("service.db")
    )
    secret = service.settings.server_secret_path.read_bytes()
    for key in keys:
        assert key.encode() not in blob
        assert key.split("_", 2)[2].encode() not in blob
        assert key_digest(secret, key).encode() in blob
        key_id = parse_key_id(key)
        assert key_id is not None
        assert key_id.encode() in blob
    assert service.settings.service_database_path.stat().st_mode & 0o077 == 0


def test_failed_attempts_from_one_address_are_rate_limited_with_retry_after(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path / "home", auth_failure_burst=3, auth_failure_per_second=0.1)
    with running_server(settings) as server:
        good = server.issue("acme", "reader").key
        with server.http("ctx_0123456789abcdef_" + "B" * 43) as wrong:
            statuses = [wrong.get("/v1/facts").status_code for _ in range(5)]
        assert statuses == [401, 401, 401, 429, 429]
        response = server.http(good).get("/v1/facts")
        _assert_problem(response, 429)
        assert int(response.headers["retry-after"]) >= 1
        assert server.http().get("/health").status_code == 200


def test_serve_refuses_to_start_without_the_server_secret(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home")
    settings.server_secret_path.unlink()
    with pytest.raises(ConfigError, match="cortex init"):
        KeyStore.open(settings)
