"""Fixtures for CLI tests: a fresh data directory per test and a runner that invokes `cortex`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from cortex.cli import app
from tests.cli.invoke import Cli, ok


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A data directory path that does not exist yet."""
    return tmp_path / "home"


@pytest.fixture
def runner(home: Path) -> CliRunner:
    """A runner with CORTEX_HOME set to `home`, a text-only engine, no other CORTEX_* variable."""
    env: dict[str, str | None] = {name: None for name in os.environ if name.startswith("CORTEX_")}
    return CliRunner(env={**env, "CORTEX_HOME": str(home), "CORTEX_EMBEDDER": "none"})


@pytest.fixture
def cli(runner: CliRunner) -> Cli:
    """Run `cortex ARGS...` in-process; `input` feeds stdin."""

    def run(*args: str, input: str | bytes | None = None) -> Result:
        return runner.invoke(app, list(args), input=input)

    return run


@pytest.fixture
def initialised(cli: Cli, home: Path) -> Path:
    """`home`, after `cortex init`."""
    ok(cli("init"))
    return home
