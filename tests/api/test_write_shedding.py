"""Under overload, writes are refused at the door (503 + Retry-After) before their body is read."""

from __future__ import annotations

import asyncio

import httpx
from starlette.types import Receive, Scope, Send

from cortex.api.limits import WriteShedMiddleware


class Inner:
    """The app behind the middleware: notes each request that reached it."""

    def __init__(self) -> None:
        self.reached: list[tuple[str, str]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.reached.append((scope["method"], scope["path"]))
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def test_writes_are_refused_unread_while_the_queue_is_full() -> None:
    depth = [2]
    inner = Inner()
    app = WriteShedMiddleware(inner, queue_depth=lambda: depth[0], capacity=2)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cortex") as client:
        refused = await client.post("/v1/facts/batch", json={"facts": [{"content": "x"}]})
        checkpoint = await client.post("/v1/ledger/checkpoint")
        read = await client.get("/v1/facts")
        admin = await client.post("/v1/keys", json={})
        depth[0] = 1
        accepted = await client.post("/v1/facts", json={"content": "x"})
    for response in (refused, checkpoint):
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["type"].endswith("overloaded")
    assert (read.status_code, admin.status_code, accepted.status_code) == (200, 200, 200)
    assert inner.reached == [("GET", "/v1/facts"), ("POST", "/v1/keys"), ("POST", "/v1/facts")]


async def test_before_the_engine_is_open_nothing_is_shed() -> None:
    inner = Inner()
    app = WriteShedMiddleware(inner, queue_depth=lambda: None, capacity=1)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cortex") as client:
        response = await client.post("/v1/facts", json={"content": "x"})
    assert response.status_code == 200


async def test_no_more_writes_are_handled_at_once_than_the_queue_holds() -> None:
    """Writes still being read, checked or waiting for the queue count too: with capacity 2 and
    two writes held inside the app, a third is refused unread; once one ends, writes pass."""
    gate = asyncio.Event()
    reached: list[str] = []

    async def holding(scope: Scope, receive: Receive, send: Send) -> None:
        reached.append(scope["path"])
        await receive()
        if scope["method"] == "POST":
            await gate.wait()
        status = 201 if scope["method"] == "POST" else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    counted: list[str] = []
    app = WriteShedMiddleware(holding, queue_depth=lambda: 0, capacity=2, on_refused=counted.append)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cortex") as client:
        held = [
            asyncio.create_task(client.post("/v1/facts", json={"content": f"held {i}"}))
            for i in range(2)
        ]
        while app.handling < 2:
            await asyncio.sleep(0.01)
        refused = await client.post("/v1/facts/batch", json={"facts": [{"content": "x"}]})
        read = await client.get("/v1/facts")
        gate.set()
        statuses = [r.status_code for r in await asyncio.gather(*held)]
        after = await client.post("/v1/facts", json={"content": "after"})
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert read.status_code == 200  # reads are never counted nor refused
    assert statuses == [201, 201]
    assert after.status_code == 201
    assert reached == ["/v1/facts", "/v1/facts", "/v1/facts", "/v1/facts"]
    assert app.handling == 0
    assert counted == ["overloaded"]
