"""Fixtures of the report tests: a populated store, and a PostgreSQL one for the pg run."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

import cortex
from cortex import Cortex, Settings
from tests.postgres.server import shared_server
from tests.report.scenario import Scenario, populate


@pytest.fixture
async def populated(engine: Cortex) -> tuple[Cortex, Scenario]:
    """The root `engine` (SQLite, text-only) with the scenario written to tenant `default`."""
    return engine, await populate(engine)


@pytest.fixture
def pg_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Text-only settings on a fresh database of the session's PostgreSQL test server."""
    server = shared_server(request.config)
    name = server.create_database()
    settings = Settings.load(tmp_path / "pg-home", embedder="none", database_url=server.url(name))
    cortex.init_home(settings)
    yield settings
    server.drop_database(name)


@pytest.fixture
async def pg_engine(pg_settings: Settings) -> AsyncIterator[Cortex]:
    """An async engine on PostgreSQL."""
    async with await cortex.open(pg_settings) as opened:
        yield opened
