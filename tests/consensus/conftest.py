"""Fixtures of the consensus suite: engines on both backends, a CLI runner on a fresh home."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import cortex
from cortex import CortexSync, Settings
from cortex.cli import app
from tests.cli.invoke import Cli
from tests.postgres.server import shared_server


@pytest.fixture(params=["sqlite", "postgres"])
def backend_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings of a fresh text-only store: SQLite, then a fresh PostgreSQL database."""
    settings = Settings.load(tmp_path / "home", embedder="none")
    database = None
    if request.param == "postgres":
        server = shared_server(request.config)
        database = server.create_database()
        settings = settings.with_overrides(database_url=server.url(database))
    cortex.init_home(settings)
    yield settings
    if database is not None:
        shared_server(request.config).drop_database(database)


@pytest.fixture
def voters(backend_settings: Settings) -> Iterator[CortexSync]:
    """A blocking handle on a fresh store of either backend."""
    with cortex.connect(backend_settings) as handle:
        yield handle


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """Run `cortex ARGS...` in-process on an initialised text-only home."""
    env: dict[str, str | None] = {name: None for name in os.environ if name.startswith("CORTEX_")}
    home = tmp_path / "cli-home"
    runner = CliRunner(env={**env, "CORTEX_HOME": str(home), "CORTEX_EMBEDDER": "none"})

    def run(*args: str, input: str | bytes | None = None) -> Result:
        return runner.invoke(app, list(args), input=input)

    assert run("init").exit_code == 0
    return run
