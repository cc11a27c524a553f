"""Tenant isolation, route by route: a key of tenant acme with globex's ids gets nothing of globex.

The cases are keyed by the app's route table; a route without a case fails the suite.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

from tests.api.conftest import RunningServer
from tests.api.routes import api_routes

SECRET = "globex-secret-payroll-7Q"


@dataclass
class World:
    """Both tenants' data: acme's client, and globex's ids, sizes and secrets."""

    server: RunningServer
    acme_writer: httpx.Client
    acme_admin: httpx.Client
    globex: httpx.Client
    globex_fact: str
    globex_size: int
    globex_key_id: str
    globex_reader_key: str
    acme_size: int
    globex_approval: str

    def globex_fact_state(self) -> dict[str, object]:
        response = self.globex.get(f"/v1/facts/{self.globex_fact}")
        assert response.status_code == 200
        result: dict[str, object] = response.json()
        return result

    def assert_no_globex(self, response: httpx.Response) -> None:
        body = response.text
        assert SECRET not in body
        assert self.globex_fact not in body
        assert '"tenant":"globex"' not in body.replace(" ", "")


@pytest.fixture(scope="module")
def world(service: RunningServer) -> World:
    globex = service.http(service.keys["globex-admin"])
    # 25 facts: a ledger size that acme's, growing with these cases (and gate entries), never
    # reaches, so a checkpoint of the same size would be a leak.
    facts = [{"content": f"{SECRET} item {i}", "project": "default"} for i in range(25)]
    stored = globex.post("/v1/facts/batch", json={"facts": facts}).json()["items"]
    asked = globex.post(f"/v1/facts/{stored[0]['id']}/purge", json={"reason": "erasure request"})
    assert asked.status_code == 202
    assert globex.post("/v1/ledger/checkpoint").status_code == 201
    acme_writer = service.http(service.keys["acme-writer"])
    acme_writer.post("/v1/facts", json={"content": "acme knows its own things"})
    acme_size = acme_writer.get("/v1/ledger/verify").json()["entries"]
    issued = service.issue("globex", "reader")
    return World(
        server=service,
        acme_writer=acme_writer,
        acme_admin=service.http(service.keys["acme-admin"]),
        globex=globex,
        globex_fact=stored[-1]["id"],
        globex_size=globex.get("/v1/ledger/verify").json()["entries"],
        globex_key_id=issued.record.key_id,
        globex_reader_key=issued.key,
        acme_size=acme_size,
        globex_approval=asked.json()["approval"]["id"],
    )


def _store(w: World) -> None:
    response = w.acme_writer.post("/v1/facts", json={"content": f"acme note near {SECRET[:6]}"})
    assert response.status_code == 201
    assert response.json()["tenant"] == "acme"
    w.assert_no_globex(response)


def _store_batch(w: World) -> None:
    response = w.acme_writer.post("/v1/facts/batch", json={"facts": [{"content": "a"}]})
    assert response.status_code == 201
    assert [f["tenant"] for f in response.json()["items"]] == ["acme"]


def _list(w: World) -> None:
    for query in ("", "?include_inactive=true&limit=1000", "?project=default"):
        response = w.acme_writer.get(f"/v1/facts{query}")
        assert response.status_code == 200
        assert all(f["tenant"] == "acme" for f in response.json()["items"])
        w.assert_no_globex(response)


def _get(w: World) -> None:
    response = w.acme_writer.get(f"/v1/facts/{w.globex_fact}")
    assert response.status_code == 404
    assert SECRET not in response.text


def _history(w: World) -> None:
    response = w.acme_writer.get(f"/v1/facts/{w.globex_fact}/history")
    assert response.status_code == 404
    assert SECRET not in response.text


def _deprecate(w: World) -> None:
    response = w.acme_writer.post(
        f"/v1/facts/{w.globex_fact}/deprecate", json={"reason": "cross-tenant attempt"}
    )
    assert response.status_code == 404
    assert w.globex_fact_state()["status"] == "active"


def _supersede(w: World) -> None:
    response = w.acme_writer.post(
        f"/v1/facts/{w.globex_fact}/supersede", json={"content": "hijacked"}
    )
    assert response.status_code == 404
    assert w.globex_fact_state()["superseded_by"] is None


def _vote(w: World) -> None:
    before = w.globex.get(f"/v1/facts/{w.globex_fact}/consensus").json()["votes_cast"]
    response = w.acme_writer.post(f"/v1/facts/{w.globex_fact}/votes", json={"value": -1})
    assert response.status_code == 404
    assert SECRET not in response.text
    after = w.globex.get(f"/v1/facts/{w.globex_fact}/consensus").json()["votes_cast"]
    assert after == before


def _consensus(w: World) -> None:
    response = w.acme_writer.get(f"/v1/facts/{w.globex_fact}/consensus")
    assert response.status_code == 404
    assert SECRET not in response.text


def _reputation(w: World) -> None:
    vote = w.globex.post(f"/v1/facts/{w.globex_fact}/votes", json={"value": 1})
    assert vote.status_code == 201
    response = w.acme_writer.get(f"/v1/agents/{vote.json()['agent']}/reputation")
    assert response.status_code == 200
    assert (response.json()["tenant"], response.json()["votes_standing"]) == ("acme", 0)
    w.assert_no_globex(response)


def _search(w: World) -> None:
    for mode in ("text", "hybrid"):
        response = w.acme_writer.post("/v1/search", json={"query": SECRET, "mode": mode})
        assert response.status_code == 200
        assert response.json()["hits"] == [] or all(
            h["fact"]["tenant"] == "acme" for h in response.json()["hits"]
        )
        w.assert_no_globex(response)


def _verify(w: World) -> None:
    report = w.acme_writer.get("/v1/ledger/verify").json()
    assert report["tenants"] == 1
    assert report["entries"] < w.globex_size + w.acme_size
    assert all(p["tenant"] == "acme" for p in report["problems"])


def _inclusion(w: World) -> None:
    by_id = w.acme_writer.get(f"/v1/ledger/proofs/inclusion?fact_id={w.globex_fact}")
    assert by_id.status_code == 404
    beyond = w.acme_writer.get(f"/v1/ledger/proofs/inclusion?seq={w.globex_size - 1}")
    assert beyond.status_code in (404, 422)
    w.assert_no_globex(beyond)
    own = w.acme_writer.get("/v1/ledger/proofs/inclusion?seq=0")
    assert own.status_code == 200
    assert own.json()["tenant"] == "acme"
    assert json.loads(own.json()["entry"])["tenant"] == "acme"


def _consistency(w: World) -> None:
    response = w.acme_writer.get(f"/v1/ledger/proofs/consistency?old_size={w.globex_size}")
    assert response.status_code in (200, 422)
    if response.status_code == 200:
        assert response.json()["tenant"] == "acme"
    own = w.acme_writer.get("/v1/ledger/proofs/consistency?old_size=1").json()
    assert own["tenant"] == "acme"
    globex_root = w.globex.get("/v1/ledger/proofs/consistency?old_size=0").json()["new_root"]
    assert globex_root not in response.text


def _latest_checkpoint(w: World) -> None:
    response = w.acme_writer.get("/v1/ledger/checkpoint")
    assert response.status_code in (200, 404)
    if response.status_code == 200:
        assert response.json()["tenant"] == "acme"
    w.assert_no_globex(response)


def _make_checkpoint(w: World) -> None:
    response = w.acme_writer.post("/v1/ledger/checkpoint")
    assert response.status_code == 201
    assert response.json()["tenant"] == "acme"
    assert response.json()["tree_size"] != w.globex_size or w.acme_size == w.globex_size


def _export(w: World) -> None:
    asked = w.acme_admin.get("/v1/export")
    assert asked.status_code == 202
    assert asked.json()["approval"]["id"] != w.globex_approval
    approver = w.server.http(w.server.issue("acme", "admin").key)  # four eyes: another admin
    approved = approver.post(f"/v1/gate/{asked.json()['approval']['id']}/approve")
    assert approved.json()["approval"]["tenant"] == "acme"
    response = w.acme_admin.get("/v1/export", params={"approval": approved.json()["token"]})
    assert response.status_code == 200
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert lines[0]["tenant"] == "acme"
    assert all(line.get("tenant", "acme") == "acme" for line in lines)
    w.assert_no_globex(response)


def _report(w: World) -> None:
    response = w.acme_admin.get("/v1/report")
    assert response.status_code == 200
    assert response.json()["header"]["tenant"] == "acme"
    w.assert_no_globex(response)
    assert w.acme_admin.get("/v1/report?tenant=globex").status_code == 422


def _purge(w: World) -> None:
    response = w.acme_admin.post(
        f"/v1/facts/{w.globex_fact}/purge", json={"reason": "cross-tenant attempt"}
    )
    assert response.status_code == 404
    assert SECRET not in response.text
    assert w.globex_fact_state()["status"] == "active"


def _globex_approval_state(w: World) -> str:
    listed = w.globex.get("/v1/gate").json()["items"]
    return str(next(a["state"] for a in listed if a["id"] == w.globex_approval))


def _list_approvals(w: World) -> None:
    response = w.acme_admin.get("/v1/gate?include_all=true")
    assert response.status_code == 200
    assert all(a["tenant"] == "acme" for a in response.json()["items"])
    assert w.globex_approval not in response.text
    w.assert_no_globex(response)


def _approve(w: World) -> None:
    response = w.acme_admin.post(f"/v1/gate/{w.globex_approval}/approve", json={})
    assert response.status_code == 404
    assert "token" not in response.json()
    assert _globex_approval_state(w) == "pending"


def _deny(w: World) -> None:
    response = w.acme_admin.post(f"/v1/gate/{w.globex_approval}/deny", json={})
    assert response.status_code == 404
    assert _globex_approval_state(w) == "pending"


def _create_key(w: World) -> None:
    smuggled = w.acme_admin.post("/v1/keys", json={"role": "admin", "tenant": "globex"})
    assert smuggled.status_code == 422
    response = w.acme_admin.post("/v1/keys", json={"role": "reader"})
    assert response.status_code == 201
    assert response.json()["record"]["tenant"] == "acme"


def _list_keys(w: World) -> None:
    response = w.acme_admin.get("/v1/keys")
    assert response.status_code == 200
    assert {k["tenant"] for k in response.json()["items"]} == {"acme"}
    assert w.globex_key_id not in response.text


def _revoke_key(w: World) -> None:
    response = w.acme_admin.delete(f"/v1/keys/{w.globex_key_id}")
    assert response.status_code == 404
    still = w.server.http(w.globex_reader_key).get("/v1/facts")
    assert still.status_code == 200


CASES: dict[tuple[str, str], Callable[[World], None]] = {
    ("POST", "/v1/facts"): _store,
    ("POST", "/v1/facts/batch"): _store_batch,
    ("GET", "/v1/facts"): _list,
    ("GET", "/v1/facts/{fact_id}"): _get,
    ("GET", "/v1/facts/{fact_id}/history"): _history,
    ("POST", "/v1/facts/{fact_id}/deprecate"): _deprecate,
    ("POST", "/v1/facts/{fact_id}/supersede"): _supersede,
    ("POST", "/v1/facts/{fact_id}/votes"): _vote,
    ("GET", "/v1/facts/{fact_id}/consensus"): _consensus,
    ("GET", "/v1/agents/{agent}/reputation"): _reputation,
    ("POST", "/v1/search"): _search,
    ("GET", "/v1/ledger/verify"): _verify,
    ("GET", "/v1/ledger/proofs/inclusion"): _inclusion,
    ("GET", "/v1/ledger/proofs/consistency"): _consistency,
    ("GET", "/v1/ledger/checkpoint"): _latest_checkpoint,
    ("POST", "/v1/ledger/checkpoint"): _make_checkpoint,
    ("GET", "/v1/export"): _export,
    ("POST", "/v1/facts/{fact_id}/purge"): _purge,
    ("GET", "/v1/gate"): _list_approvals,
    ("POST", "/v1/gate/{approval_id}/approve"): _approve,
    ("POST", "/v1/gate/{approval_id}/deny"): _deny,
    ("GET", "/v1/report"): _report,
    ("POST", "/v1/keys"): _create_key,
    ("GET", "/v1/keys"): _list_keys,
    ("DELETE", "/v1/keys/{key_id}"): _revoke_key,
}


def test_every_v1_route_has_an_isolation_case(service: RunningServer) -> None:
    assert api_routes(service.app) == set(CASES)


@pytest.mark.parametrize("route", sorted(CASES), ids=lambda r: f"{r[0]} {r[1]}")
def test_a_key_of_one_tenant_gets_nothing_of_another(world: World, route: tuple[str, str]) -> None:
    CASES[route](world)


def _infra_world(service: RunningServer) -> tuple[httpx.Client, str, str]:
    admin = service.http(service.keys["acme-admin"])
    other = admin.post("/v1/facts", json={"content": "payroll runs on the 25th", "project": "hr"})
    assert other.status_code == 201
    infra = service.http(service.keys["acme-infra"])
    own = infra.post("/v1/facts", json={"content": "db-2 is the staging database"})
    assert own.status_code == 201
    return infra, other.json()["id"], own.json()["id"]


def test_a_project_key_sees_its_project_only_and_other_projects_facts_are_404(
    service: RunningServer,
) -> None:
    infra, hr_fact, infra_fact = _infra_world(service)
    assert infra.get(f"/v1/facts/{infra_fact}").json()["project"] == "infra"
    for path in (f"/v1/facts/{hr_fact}", f"/v1/facts/{hr_fact}/history"):
        assert infra.get(path).status_code == 404
    assert infra.get(f"/v1/ledger/proofs/inclusion?fact_id={hr_fact}").status_code == 404
    hr_seq = service.http(service.keys["acme-admin"]).get(f"/v1/facts/{hr_fact}").json()["seq"]
    assert infra.get(f"/v1/ledger/proofs/inclusion?seq={hr_seq}").status_code == 404
    assert infra.post(f"/v1/facts/{hr_fact}/deprecate", json={"reason": "x"}).status_code == 404
    assert infra.post(f"/v1/facts/{hr_fact}/supersede", json={"content": "y"}).status_code == 404
    listed = infra.get("/v1/facts?limit=1000").json()["items"]
    assert {f["project"] for f in listed} == {"infra"}
    hits = infra.post("/v1/search", json={"query": "payroll", "mode": "text"}).json()["hits"]
    assert hits == []
    assert infra.get("/v1/facts?project=hr").status_code == 403
    assert infra.post("/v1/facts", json={"content": "z", "project": "hr"}).status_code == 403


def test_a_project_admin_cannot_export_or_manage_keys(service: RunningServer) -> None:
    admin = service.http(service.keys["acme-infra-admin"])
    assert admin.get("/v1/export").status_code == 403
    assert admin.get("/v1/keys").status_code == 403
    assert admin.post("/v1/keys", json={"role": "admin"}).status_code == 403
