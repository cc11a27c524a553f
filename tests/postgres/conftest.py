"""Fixtures of the PostgreSQL backend's own tests: the session's server, a database per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import cortex
from cortex import Settings
from tests.postgres.server import PgServer, shared_server


@pytest.fixture(scope="session")
def pg_server(request: pytest.FixtureRequest) -> PgServer:
    """The session's PostgreSQL test server."""
    return shared_server(request.config)


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """The URL of a fresh database with the CORTEX schema, dropped after the test."""
    name = pg_server.create_database()
    yield pg_server.url(name)
    pg_server.drop_database(name)


@pytest.fixture
def pg_settings(tmp_path: object, pg_url: str) -> Settings:
    """Text-only settings on a fresh PostgreSQL database (keys in a temporary home)."""
    from pathlib import Path

    result = Settings.load(
        Path(str(tmp_path)) / "home", checkpoint_every=1000, embedder="none", database_url=pg_url
    )
    cortex.init_home(result)
    return result
