"""Every command's docstring is its `--help`, with an example."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cortex.cli import facts, home, ledger
from tests.cli.invoke import Cli, ok

COMMANDS: dict[str, Callable[..., None]] = {
    "init": home.init,
    "store": facts.store,
    "get": facts.get,
    "list": facts.list_facts,
    "deprecate": facts.deprecate,
    "supersede": facts.supersede,
    "history": facts.history,
    "verify": ledger.verify,
    "proof": ledger.proof,
    "consistency": ledger.consistency,
    "checkpoint": ledger.checkpoint,
    "export": ledger.export,
    "verify-export": ledger.verify_export,
    "stats": ledger.stats,
}


def _words(text: str) -> str:
    return " ".join(text.replace("`", "").split())


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_of_every_command_exits_0_and_shows_its_docstring_and_an_example(
    cli: Cli, name: str
) -> None:
    doc = COMMANDS[name].__doc__
    assert doc is not None

    result = ok(cli(name, "--help"))

    assert _words(doc.splitlines()[0]) in _words(result.stdout)
    assert "Example" in result.stdout
    assert f"cortex {name}" in result.stdout


def test_top_level_help_lists_every_command(cli: Cli) -> None:
    result = ok(cli("--help"))

    for name in COMMANDS:
        assert name in result.stdout


def test_no_arguments_shows_the_help_as_a_usage_error(cli: Cli) -> None:
    result = cli()

    assert result.exit_code == 2
    assert "store" in result.stdout
