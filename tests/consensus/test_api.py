"""The consensus routes on a real server, through raw HTTP and the client SDK."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

import cortex
from cortex.client import AsyncClient, Client
from cortex.consensus import Consensus, Reputation, Vote
from cortex.errors import Conflict, Forbidden, NotFound, ValidationError
from tests.api.conftest import RunningServer, make_settings, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    settings = make_settings(tmp_path_factory.mktemp("consensus") / "home")
    with running_server(settings, mounts=[]) as running:
        for role in ("reader", "writer"):
            running.keys[role] = running.issue("acme", role).key
        running.keys["infra"] = running.issue("acme", "writer", project="infra").key
        yield running


def test_a_vote_is_cast_as_the_keys_identity_and_is_201(server: RunningServer) -> None:
    writer = server.http(server.keys["writer"])
    fact = writer.post("/v1/facts", json={"content": "db-2 is staging"}).json()
    response = writer.post(f"/v1/facts/{fact['id']}/votes", json={"value": 1})
    assert response.status_code == 201
    body = response.json()
    key_id = server.keys["writer"].split("_")[1]
    assert (body["agent"], body["value"], body["reason"]) == (f"key-{key_id}", 1, None)
    reviewer = server.http(server.issue("acme", "writer", agent="reviewer-2").key)
    named = reviewer.post(
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
        voter = server.http(server.issue("acme", "writer", agent=agent).key)
        assert voter.post(f"/v1/facts/{good['id']}/votes", json={"value": 1}).status_code == 201
        assert voter.post(f"/v1/facts/{bad['id']}/votes", json={"value": -1}).status_code == 201
    query = {"query": "zebra crossing", "mode": "text"}
    verified = writer.post("/v1/search", json={**query, "consensus": "verified"}).json()["hits"]
    assert [h["fact"]["id"] for h in verified] == [good["id"]]
    boosted = writer.post("/v1/search", json={**query, "consensus_boost": 1}).json()["hits"]
    assert [h["fact"]["id"] for h in boosted] == [good["id"], bad["id"]]
    assert writer.post("/v1/search", json={**query, "consensus": "maybe"}).status_code == 422
    assert writer.post("/v1/search", json={**query, "consensus_boost": 11}).status_code == 422


def _program(memory: object, handle: Callable[[str], Any]) -> list[object]:
    """The same calls on a local handle and a client: the results must match.

    `handle(agent)` is what acts as `agent`: the same local handle, or a client whose key is
    bound to the agent (the service casts every vote as its key's agent).
    """
    fact = handle("alice").store("the release train leaves on Tuesdays", source="alice")
    cast = [handle(a).vote(fact.id, 1, agent=a, reason=f"by {a}") for a in ("bob", "carol", "dave")]
    handle("bob").vote(fact.id, -1, agent="bob")
    found = memory.consensus(fact.id)  # type: ignore[attr-defined]
    rep = memory.reputation("carol")  # type: ignore[attr-defined]
    errors = []
    for bad in (
        lambda: handle("bob").vote(fact.id, 5, agent="bob"),
        lambda: handle("bob").vote("01ZZZZZZZZZZZZZZZZZZZZZZZZ", 1, agent="bob"),
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
        local = _program(memory, lambda agent: memory)
    with (
        running_server(make_settings(tmp_path / "served"), mounts=[]) as served,
        ExitStack() as stack,
    ):
        key = served.issue("default", "writer").key
        agents = {
            agent: stack.enter_context(
                Client(served.base_url, served.issue("default", "writer", agent=agent).key)
            )
            for agent in ("alice", "bob", "carol", "dave")
        }
        with Client(served.base_url, key) as client:
            remote = _program(client, agents.__getitem__)
            gone = client.store("gone")
            client.deprecate(gone.id, "wrong")
            with pytest.raises(Conflict):
                client.vote(gone.id, 1)

        async def run_async() -> tuple[Vote, Consensus, Reputation]:
            async with AsyncClient(served.base_url, key) as client:
                fact = await client.store("async fact")
                with pytest.raises(Forbidden, match="votes as"):
                    await client.vote(fact.id, 1, agent="eve")
                cast = await client.vote(fact.id, 1)
                return cast, await client.consensus(fact.id), await client.reputation(cast.agent)

        cast, found, rep = asyncio.run(run_async())
    assert remote == local
    assert local[3] == ["ValidationError", "NotFound"]
    identity = f"key-{key.split('_')[1]}"
    assert (cast.agent, found.votes[0].agent, rep.votes_standing) == (identity, identity, 1)


def test_a_key_cannot_vote_or_write_as_another_agent(server: RunningServer) -> None:
    planner = server.http(server.issue("acme", "writer", agent="planner").key)
    other = server.http(server.keys["writer"])
    fact = planner.post("/v1/facts", json={"content": "the planner runs at 06:00"}).json()
    assert fact["source"] == "planner"  # a bound key's facts are its agent's
    # The bound key cannot record another source or vote as another agent.
    refused = planner.post("/v1/facts", json={"content": "x", "source": "someone"})
    assert refused.status_code == 403
    assert "bound to agent 'planner'" in refused.json()["detail"]
    assert (
        planner.post(
            f"/v1/facts/{fact['id']}/votes", json={"value": 1, "agent": "someone"}
        ).status_code
        == 403
    )
    # An unbound key cannot vote as the planner, nor write or supersede in its name.
    vote = other.post(f"/v1/facts/{fact['id']}/votes", json={"value": -1, "agent": "planner"})
    assert vote.status_code == 403
    assert "votes as 'key-" in vote.json()["detail"]
    for body in (
        {"content": "y", "source": "planner"},
        {"facts": [{"content": "z", "source": "planner"}]},
    ):
        path = "/v1/facts/batch" if "facts" in body else "/v1/facts"
        response = other.post(path, json=body)
        assert response.status_code == 403, response.text
        assert "bound to API key" in response.json()["detail"]
    assert (
        other.post(
            f"/v1/facts/{fact['id']}/supersede", json={"content": "the planner runs at 07:00"}
        ).status_code
        == 403
    )  # the new version would keep source 'planner'
    assert (
        other.post(
            f"/v1/facts/{fact['id']}/deprecate", json={"reason": "moved", "actor": "planner"}
        ).status_code
        == 403
    )
    # Nor as another key's identity; its own identity and free names are fine.
    own = f"key-{server.keys['writer'].split('_')[1]}"
    assert (
        other.post("/v1/facts", json={"content": "w", "source": "key-0000000000000000"}).status_code
        == 403
    )
    assert other.post("/v1/facts", json={"content": "w", "source": own}).status_code == 201
    assert other.post("/v1/facts", json={"content": "w", "source": "ci-bot"}).status_code == 201
    # Nothing refused was written: the planner's record holds only its own fact.
    listed = other.get("/v1/facts", params={"source": "planner"}).json()["items"]
    assert [f["id"] for f in listed] == [fact["id"]]
    consensus = other.get(f"/v1/facts/{fact['id']}/consensus").json()
    assert consensus["votes_cast"] == 0


def test_keys_can_be_bound_to_agents_through_the_admin_api(server: RunningServer) -> None:
    admin = server.http(server.issue("acme", "admin").key)
    issued = admin.post("/v1/keys", json={"role": "writer", "agent": "reviewer-9"})
    assert issued.status_code == 201
    assert issued.json()["record"]["agent"] == "reviewer-9"
    listed = {k["key_id"]: k for k in admin.get("/v1/keys").json()["items"]}
    assert listed[issued.json()["record"]["key_id"]]["agent"] == "reviewer-9"
    assert admin.post("/v1/keys", json={"role": "writer", "agent": "key-1"}).status_code == 422
    reviewer = server.http(issued.json()["key"])
    fact = reviewer.post("/v1/facts", json={"content": "reviewed"}).json()
    vote = reviewer.post(f"/v1/facts/{fact['id']}/votes", json={"value": 1})
    assert vote.json()["agent"] == "reviewer-9"
