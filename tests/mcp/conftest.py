"""Fixtures for MCP tests: real engines, a real uvicorn server on a free loopback port, keys."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
import uvicorn
from starlette.types import ASGIApp

from cortex import Cortex
from cortex.errors import RateLimited, Unauthorized
from cortex.mcp import Principal, mcp_http_app

KEYS = {
    "key-a": Principal("tenant-a", None, "writer"),
    "key-b": Principal("tenant-b", None, "writer"),
    "key-a-reader": Principal("tenant-a", None, "reader"),
    "key-a-infra": Principal("tenant-a", "infra", "admin"),
}
"""The bearer keys the test server accepts, and whom each stands for."""
LIMITED_KEY = "key-limited"
"""A key whose client has failed too often: the server answers 429."""


def authenticate(token: str, address: str) -> Principal:
    """The test's key check: a fixed table (the REST API's real key store is tested with it)."""
    if token == LIMITED_KEY:
        raise RateLimited("too many failed attempts from this address", retry_after=7)
    try:
        return KEYS[token]
    except KeyError:
        raise Unauthorized("unknown API key") from None


@dataclass(frozen=True, slots=True)
class LiveServer:
    """A running MCP HTTP server: its endpoint URL and the engine behind it."""

    url: str
    engine: Cortex


@asynccontextmanager
async def serving(app: ASGIApp) -> AsyncIterator[str]:
    """Serve `app` by uvicorn on 127.0.0.1 (a free port) in this event loop; yield the base URL."""
    # uvicorn binds port 0 itself. A socket made by socket.socket() has proto 0, so asyncio does not
    # set TCP_NODELAY on its connections and every response waits ~40 ms for a delayed ACK.
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()  # startup failed: raise its error
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def live_server(engine: Cortex) -> AsyncIterator[LiveServer]:
    """`mcp_http_app` on a real uvicorn server, authenticating with the `KEYS` table."""
    async with serving(mcp_http_app(lambda: engine, authenticate)) as base:
        yield LiveServer(f"{base}/mcp", engine)
