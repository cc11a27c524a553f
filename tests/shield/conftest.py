"""Fixtures of the shield tests: the CLI runner and data directories of tests/cli."""

from tests.cli.conftest import cli, home, initialised, runner

__all__ = ["cli", "home", "initialised", "runner"]
