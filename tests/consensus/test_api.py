"""The consensus routes on a real server, through raw HTTP and the client SDK."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

import cortex
from cortex.client import AsyncClient, Client
from cortex.consensus import Consensus, Reputation, Vote
from cortex.errors import Conflict, NotFound, ValidationError
from tests.api.conftest import RunningServer, make_settings, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    settings = make_settings(tmp_path_factory.mktemp("consensus") / "home")
    with running_server(settings, mounts=[]) as running:
        for role in ("reader", "writer"):
            running.keys[role] = running.issue("acme", role).key
        running.keys["infra"] = running.issue("acme", "writer", project="infra").key
        yield running


def test_a_vote_defaults_its_agent_to_the_keys_id_and_is_201(server: RunningServer) -> None:
    writer = server.http(server.keys["writer"])
    fact = writer.post("/v1/facts", json={"content": "db-2 is staging"}).json()
    response = writer.post(f"/v1/facts/{fact['id']}/votes", json={"value": 1})
    assert response.status_code == 201
    body = response.json()
    key_id = server.keys["writer"].split("_")[1]
    assert (body["agent"], body["value"], body["reason"]) == (f"key-{key_id}", 1, None)
    named = writer.post(
        f"/v1/facts/{fact['id']}/votes",
        json={"value": -1, "agent": "reviewer-2", "reason": "saw db-3"},
    )
    assert named.json()["agent"] == "reviewer-2"
    consensus = server.http(server.keys["reader"]).get(f"/v1/facts/{fact['id']}/consensus")
    assert consensus.status_code == 200
    assert [v["agent"] for v in consensus.json()["votes"]] == [f"key-{key_id}", "reviewer-2"]
    reputation = server.http(server.keys["reader"]).get("/v1/agents/reviewer-2/reputation")
    assert reputation.json()["votes_standing"] == 1


@pytest.mark.parametrize(
    "body",
    [{"value": 2}, {"value": 0}, {"value": "up"}, {}, {"value": 1, "agent": "no spaces"},
     {"value": 1, "reason": ""}, {"value": 1, "extra": True}],
)  # fmt: skip
def test_a_malformed_vote_is_422(server: RunningServer, body: dict[str, object]) -> None:
    writer = server.http(server.keys["writer"])
    fact = writer.post("/v1/facts", json={"content": "x"}).json()
    response = writer.post(f"/v1/facts/{fact['id']}/votes", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


def test_a_vote_on_a_deprecated_fact_is_409_and_an_unknown_fact_404(
    server: RunningServer,
) -> None:
    writer = server.http(server.keys["writer"])
    fact = writer.post("/v1/facts", json={"content": "old news"}).json()
    writer.post(f"/v1/facts/{fact['id']}/deprecate", json={"reason": "wrong"})
    refused = writer.post(f"/v1/facts/{fact['id']}/votes", json={"value": 1})
    assert refused.status_code == 409
    assert "deprecated" in refused.json()["detail"]
    unknown = "01ZZZZZZZZZZZZZZZZZZZZZZZZ"
    assert writer.post(f"/v1/facts/{unknown}/votes", json={"value": 1}).status_code == 404
    assert writer.get(f"/v1/facts/{unknown}/consensus").status_code == 404
    assert writer.get("/v1/agents/bad%20name/reputation").status_code == 422


def test_a_reader_cannot_vote(server: RunningServer) -> None:
    fact = server.http(server.keys["writer"]).post("/v1/facts", json={"content": "y"}).json()
    response = server.http(server.keys["reader"]).post(
        f"/v1/facts/{fact['id']}/votes", json={"value": 1}
    )
    assert response.status_code == 403


def test_a_project_key_cannot_vote_on_or_read_another_projects_fact(server: RunningServer) -> None:
    writer = server.http(server.keys["writer"])
    hr = writer.post("/v1/facts", json={"content": "payroll on the 25th", "project": "hr"}).json()
    infra = server.http(server.keys["infra"])
    assert infra.post(f"/v1/facts/{hr['id']}/votes", json={"value": -1}).status_code == 404
    assert infra.get(f"/v1/facts/{hr['id']}/consensus").status_code == 404
    own = infra.post("/v1/facts", json={"content": "db-2 is in rack 4"}).json()
    assert infra.post(f"/v1/facts/{own['id']}/votes", json={"value": 1}).status_code == 201


def test_search_takes_consensus_options(server: RunningServer) -> None:
    writer = server.http(server.keys["writer"])
    good = writer.post("/v1/facts", json={"content": "zebra crossing on main street"}).json()
    bad = writer.post("/v1/facts", json={"content": "zebra zebra crossing on side street"}).json()
    for agent in ("a1", "a2", "a3"):
        writer.post(f"/v1/facts/{good['id']}/votes", json={"value": 1, "agent": agent})
        writer.post(f"/v1/facts/{bad['id']}/votes", json={"value": -1, "agent": agent})
    query = {"query": "zebra crossing", "mode": "text"}
    verified = writer.post("/v1/search", json={**query, "consensus": "verified"}).json()["hits"]
    assert [h["fact"]["id"] for h in verified] == [good["id"]]
    boosted = writer.post("/v1/search", json={**query, "consensus_boost": 1}).json()["hits"]
    assert [h["fact"]["id"] for h in boosted] == [good["id"], bad["id"]]
    assert writer.post("/v1/search", json={**query, "consensus": "maybe"}).status_code == 422
    assert writer.post("/v1/search", json={**query, "consensus_boost": 11}).status_code == 422


def _program(memory: object) -> list[object]:
    """The same calls on a local handle and a client: the results must match."""
    store = memory.store  # type: ignore[attr-defined]
    vote = memory.vote  # type: ignore[attr-defined]
    fact = store("the release train leaves on Tuesdays", source="alice")
    cast = [vote(fact.id, 1, agent=a, reason=f"by {a}") for a in ("bob", "carol", "dave")]
    vote(fact.id, -1, agent="bob")
    found = memory.consensus(fact.id)  # type: ignore[attr-defined]
    rep = memory.reputation("carol")  # type: ignore[attr-defined]
    errors = []
    for bad in (
        lambda: vote(fact.id, 5, agent="x"),
        lambda: vote("01ZZZZZZZZZZZZZZZZZZZZZZZZ", 1, agent="x"),
    ):
        try:
            bad()
        except (ValidationError, NotFound) as exc:
            errors.append(type(exc).__name__)
    assert all(isinstance(v, Vote) for v in cast)
    assert isinstance(found, Consensus)
    assert isinstance(rep, Reputation)
    return [
        [(v.agent, v.value, v.reason, v.seq) for v in cast],
        (found.score, found.status, found.votes_cast, [(v.agent, v.value) for v in found.votes]),
        (rep.score, rep.weight, rep.votes_agreed, rep.formula),
        errors,
    ]


def test_the_client_returns_what_the_engine_returns(tmp_path: Path) -> None:
    with cortex.connect(make_settings(tmp_path / "local")) as memory:
        local = _program(memory)
    with running_server(make_settings(tmp_path / "served"), mounts=[]) as served:
        key = served.issue("default", "writer").key
        with Client(served.base_url, key) as client:
            remote = _program(client)
            gone = client.store("gone")
            client.deprecate(gone.id, "wrong")
            with pytest.raises(Conflict):
                client.vote(gone.id, 1)

        async def run_async() -> tuple[Vote, Consensus, Reputation]:
            async with AsyncClient(served.base_url, key) as client:
                fact = await client.store("async fact")
                cast = await client.vote(fact.id, 1, agent="eve")
                return cast, await client.consensus(fact.id), await client.reputation("eve")

        cast, found, rep = asyncio.run(run_async())
    assert remote == local
    assert local[3] == ["ValidationError", "NotFound"]
    assert (cast.agent, found.votes[0].agent, rep.votes_standing) == ("eve", "eve", 1)
