"""The gate and purge over HTTP: a real server on 127.0.0.1, raw requests and the SDK clients."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from cortex.client import AsyncClient, Client
from cortex.errors import (
    ApprovalForeignTenant,
    ApprovalInvalid,
    ApprovalMismatch,
    ApprovalReplayed,
    ApprovalRequired,
    Forbidden,
)
from tests.api.conftest import RunningServer, make_settings, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server with two admin keys (`admin` asks, `approver` approves: four eyes), writer and
    project-admin keys of acme, and an admin key of globex."""
    settings = make_settings(tmp_path_factory.mktemp("gate") / "home")
    with running_server(settings, mounts=[]) as running:
        for name, tenant, role, project in (
            ("admin", "acme", "admin", None),
            ("approver", "acme", "admin", None),
            ("writer", "acme", "writer", None),
            ("infra-admin", "acme", "admin", "infra"),
            ("globex", "globex", "admin", None),
        ):
            running.keys[name] = running.issue(tenant, role, project=project).key
        yield running


def test_purge_answers_202_naming_the_approval_then_runs_with_its_token(
    server: RunningServer,
) -> None:
    admin = server.http(server.keys["admin"])
    fact = admin.post("/v1/facts", json={"content": "Jane Doe, 12 Elm Street"}).json()

    asked = admin.post(f"/v1/facts/{fact['id']}/purge", json={"reason": "GDPR request 42"})
    approval = asked.json()["approval"]
    listed = admin.get("/v1/gate").json()["items"]
    approver = server.http(server.keys["approver"])
    decided = approver.post(f"/v1/gate/{approval['id']}/approve", json={"reason": "checked"})
    token = decided.json()["token"]
    purged = admin.post(
        f"/v1/facts/{fact['id']}/purge", json={"reason": "GDPR request 42", "approval": token}
    )
    got = admin.get(f"/v1/facts/{fact['id']}").json()
    report = admin.get("/v1/ledger/verify").json()

    assert asked.status_code == 202
    assert asked.headers["content-type"] == "application/json"
    assert asked.json()["type"] == "urn:cortex:problem:approval-required"
    assert approval["action"] == "purge"
    assert approval["approve"] == f"/v1/gate/{approval['id']}/approve"
    assert f"POST /v1/gate/{approval['id']}/approve" in asked.json()["detail"]
    assert [(a["id"], a["state"]) for a in listed if a["id"] == approval["id"]] == [
        (approval["id"], "pending")
    ]
    assert decided.status_code == 200
    assert decided.json()["approval"]["decided_by"].startswith("key-")
    assert purged.status_code == 200, purged.text
    assert [f["status"] for f in purged.json()["items"]] == ["purged"]
    assert (got["status"], got["content"]) == ("purged", "")
    assert (report["ok"], report["purged"]) == (True, 1)


def test_tokens_that_do_not_fit_are_refused_with_their_problem_types(
    server: RunningServer,
) -> None:
    admin = server.http(server.keys["admin"])
    a = admin.post("/v1/facts", json={"content": "fact A"}).json()["id"]
    b = admin.post("/v1/facts", json={"content": "fact B"}).json()["id"]
    asked = admin.post(f"/v1/facts/{a}/purge", json={"reason": "r"}).json()
    approver = server.http(server.keys["approver"])
    token = approver.post(f"/v1/gate/{asked['approval']['id']}/approve").json()["token"]

    forged = admin.post(f"/v1/facts/{a}/purge", json={"reason": "r", "approval": "gate1.e30.AA"})
    other = admin.post(f"/v1/facts/{b}/purge", json={"reason": "r", "approval": token})
    export = admin.get("/v1/export", params={"approval": token})
    globex = server.http(server.keys["globex"])
    assert globex.post("/v1/facts", json={"content": "globex has a ledger"}).status_code == 201
    foreign = globex.get("/v1/export", params={"approval": token})

    expected = (
        (forged, 403, "approval-invalid"),
        (other, 403, "approval-mismatch"),
        (export, 403, "approval-mismatch"),
        (foreign, 403, "approval-foreign-tenant"),
    )
    for response, status, slug in expected:
        assert response.status_code == status, response.text
        assert response.json()["type"] == f"urn:cortex:problem:{slug}"
    assert admin.get(f"/v1/facts/{b}").json()["status"] == "active"


def test_a_replayed_export_token_is_a_409(server: RunningServer, tmp_path: Path) -> None:
    admin = server.http(server.keys["admin"])
    # The tenant needs a ledger to export (this test must not rely on the ones run before it).
    assert admin.post("/v1/facts", json={"content": "an entry to export"}).status_code == 201
    asked = admin.get("/v1/export").json()
    approver = server.http(server.keys["approver"])
    token = approver.post(f"/v1/gate/{asked['approval']['id']}/approve").json()["token"]

    first = admin.get("/v1/export", params={"approval": token})
    second = admin.get("/v1/export", params={"approval": token})

    assert first.status_code == 200
    assert first.headers["content-type"].startswith("application/x-ndjson")
    assert second.status_code == 409
    assert second.json()["type"] == "urn:cortex:problem:approval-replayed"


def test_deny_and_a_second_decision(server: RunningServer) -> None:
    admin = server.http(server.keys["admin"])
    fact = admin.post("/v1/facts", json={"content": "keep me"}).json()["id"]
    approval_id = admin.post(f"/v1/facts/{fact}/purge", json={"reason": "r"}).json()["approval"][
        "id"
    ]

    denied = admin.post(f"/v1/gate/{approval_id}/deny", json={"reason": "no basis"})
    again = admin.post(f"/v1/gate/{approval_id}/approve")
    every = admin.get("/v1/gate", params={"include_all": "true"}).json()["items"]

    assert (denied.status_code, denied.json()["token"]) == (200, None)
    assert denied.json()["approval"]["state"] == "denied"
    assert again.status_code == 409
    assert approval_id not in {a["id"] for a in admin.get("/v1/gate").json()["items"]}
    assert approval_id in {a["id"] for a in every}


def test_who_may_do_what(server: RunningServer) -> None:
    admin = server.http(server.keys["admin"])
    writer = server.http(server.keys["writer"])
    infra = server.http(server.keys["infra-admin"])
    own = infra.post("/v1/facts", json={"content": "infra fact"}).json()["id"]
    other = admin.post("/v1/facts", json={"content": "hr fact", "project": "hr"}).json()["id"]

    assert writer.post(f"/v1/facts/{own}/purge", json={"reason": "r"}).status_code == 403
    assert writer.get("/v1/gate").status_code == 403
    asked = infra.post(f"/v1/facts/{own}/purge", json={"reason": "r"})
    assert asked.status_code == 202  # a project admin may ask to purge its project's facts
    assert infra.post(f"/v1/facts/{other}/purge", json={"reason": "r"}).status_code == 404
    whole = infra.post(f"/v1/facts/{own}/purge", json={"reason": "r", "all_versions": True})
    assert whole.status_code == 403
    # ... but approvals span the tenant: only an admin without a project lists or decides them.
    assert infra.get("/v1/gate").status_code == 403
    assert infra.post(f"/v1/gate/{asked.json()['approval']['id']}/approve").status_code == 403


def test_the_sdk_clients_raise_approval_required_and_run_with_the_token(
    server: RunningServer, tmp_path: Path
) -> None:
    with (
        Client(server.base_url, server.keys["admin"]) as client,
        Client(server.base_url, server.keys["approver"]) as approver,
    ):
        fact = client.store("erase me via the SDK")
        with pytest.raises(ApprovalRequired) as asked:
            client.purge(fact.id, "GDPR request")
        assert (asked.value.action, asked.value.tenant) == ("purge", "acme")
        pending = client.approvals()
        with pytest.raises(Forbidden, match="another admin must approve"):
            client.approve(asked.value.approval_id)  # four eyes: not the key that asked
        decision = approver.approve(asked.value.approval_id, reason="ok")
        assert decision.token is not None
        purged = client.purge(fact.id, "GDPR request", approval=decision.token)
        with pytest.raises(ApprovalRequired) as export_asked:
            client.export(tmp_path / "a.jsonl")
        token = approver.approve(export_asked.value.approval_id).token
        client.export(tmp_path / "a.jsonl", approval=token)
        with pytest.raises(ApprovalReplayed):
            client.export(tmp_path / "b.jsonl", approval=token)
        with pytest.raises(ApprovalInvalid):
            client.purge(client.store("still here").id, "x", approval="gate1.e30.AA")
        with pytest.raises(Forbidden):  # the token errors are Forbidden for `except` clauses
            client.export(tmp_path / "c.jsonl", approval="gate1.e30.AA")

    async def deny_async() -> str:
        async with AsyncClient(server.base_url, server.keys["admin"]) as client:
            other = await client.store("deny me via the async SDK")
            with pytest.raises(ApprovalRequired) as asked:
                await client.purge(other.id, "r")
            decision = await client.deny(asked.value.approval_id)
            return decision.approval.state

    assert asked.value.action == "purge"
    assert asked.value.approval_id in {a.id for a in pending}
    assert [f.status for f in purged] == ["purged"]
    assert not (tmp_path / "b.jsonl").exists()
    assert asyncio.run(deny_async()) == "denied"


def test_the_sdk_maps_foreign_and_mismatched_tokens(server: RunningServer) -> None:
    with Client(server.base_url, server.keys["admin"]) as client:
        a, b = client.store("one"), client.store("two")
        with pytest.raises(ApprovalRequired) as asked:
            client.purge(a.id, "r")
        with Client(server.base_url, server.keys["approver"]) as approver:
            token = approver.approve(asked.value.approval_id).token
        with pytest.raises(ApprovalMismatch):
            client.purge(b.id, "r", approval=token)
    with Client(server.base_url, server.keys["globex"]) as globex:
        mine = globex.store("globex fact")
        with pytest.raises(ApprovalForeignTenant):
            globex.purge(mine.id, "r", approval=token)


def test_self_approval_is_allowed_only_by_the_setting(tmp_path: Path) -> None:
    """Four eyes by default; `gate_self_approval = true` lets the asking key approve."""
    for allowed in (False, True):
        settings = make_settings(tmp_path / f"home-{allowed}").with_overrides(
            gate_self_approval=allowed
        )
        with running_server(settings, mounts=[]) as running:
            admin = running.http(running.issue("acme", "admin").key)
            assert admin.post("/v1/facts", json={"content": "a fact"}).status_code == 201
            asked = admin.get("/v1/export").json()["approval"]
            answer = admin.post(f"/v1/gate/{asked['id']}/approve")
            if allowed:
                assert answer.status_code == 200
                approval = answer.json()["approval"]
                assert approval["decided_by"] == approval["requested_by"]
            else:
                assert answer.status_code == 403
                assert "another admin must approve" in answer.json()["detail"]
                # Denying one's own request stays possible (it withdraws it).
                assert admin.post(f"/v1/gate/{asked['id']}/deny").status_code == 200
