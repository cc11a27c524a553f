"""Fixtures of the API suite: real uvicorn servers on 127.0.0.1, real keys, real clients."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

import cortex
from cortex.api import create_app
from cortex.api.app import MountFactory
from cortex.api.keys import IssuedKey, KeyStore
from cortex.config import Settings
from cortex.search.embedder import Embedder


@dataclass
class RunningServer:
    """A uvicorn server running `app` in a thread, on a port of its own."""

    app: FastAPI
    settings: Settings
    base_url: str
    server: uvicorn.Server
    keys: dict[str, str] = field(default_factory=dict)

    def issue(self, tenant: str, role: str, **options: Any) -> IssuedKey:
        """Create a key directly in the key store (as `cortex keys create` does)."""
        with KeyStore.open(self.settings) as store:
            return store.create(tenant, role, **options)

    def http(self, key: str | None = None) -> httpx.Client:
        """A raw httpx client, with `key` as bearer when given."""
        headers = {} if key is None else {"Authorization": f"Bearer {key}"}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30.0)


def _free_socket() -> socket.socket:
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP;
    # without it every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def running_server(
    settings: Settings,
    *,
    mounts: Sequence[tuple[str, MountFactory]] | None = None,
    embedder: Embedder | None = None,
) -> Iterator[RunningServer]:
    """Serve `create_app(settings)` on 127.0.0.1 (a free port) until the block ends.

    `mounts` None: the app's default, MCP at /mcp."""
    app = create_app(settings, mounts=mounts, embedder=embedder)
    sock = _free_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    app.state.metrics.track_connections(lambda: len(server.server_state.connections))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield RunningServer(app, settings, f"http://127.0.0.1:{port}", server)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        assert not thread.is_alive(), "the test server did not stop"


def make_settings(home: Path, **overrides: Any) -> Settings:
    """Text-only settings for a freshly initialised home (with `overrides`)."""
    values: dict[str, Any] = {
        "embedder": "none",
        "key_cache_seconds": 0.2,
        "auth_failure_burst": 10_000,
        "auth_failure_per_second": 1000.0,
        "key_rate_burst": 100_000,
        "key_rate_per_second": 100_000.0,
    }
    values.update(overrides)
    settings = Settings.load(home, **values)
    cortex.init_home(settings)
    return settings


ServerFactory = Callable[..., Any]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server per module with keys of every role for tenants `acme` and `globex`, and a
    writer key of `acme` limited to project `infra` (under `keys[...]`)."""
    settings = make_settings(tmp_path_factory.mktemp("service") / "home")
    with running_server(settings) as running:
        for tenant in ("acme", "globex"):
            for role in ("reader", "writer", "admin"):
                running.keys[f"{tenant}-{role}"] = running.issue(tenant, role).key
        running.keys["acme-infra"] = running.issue("acme", "writer", project="infra").key
        running.keys["acme-infra-admin"] = running.issue("acme", "admin", project="infra").key
        yield running
