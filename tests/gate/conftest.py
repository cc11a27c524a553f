"""Fixtures of the gate and purge suite: the CLI runner, the PostgreSQL test database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import cortex
from cortex import Settings
from tests.cli.conftest import cli, home, initialised, runner
from tests.postgres.server import shared_server

__all__ = ["cli", "home", "initialised", "pg_settings", "runner"]


@pytest.fixture
def pg_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Text-only settings on a fresh database of the session's PostgreSQL server."""
    server = shared_server(request.config)
    name = server.create_database()
    result = Settings.load(
        tmp_path / "home", embedder="none", database_url=server.url(name), checkpoint_every=1000
    )
    cortex.init_home(result)
    yield result
    server.drop_database(name)
