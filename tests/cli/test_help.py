"""Every command's docstring is its `--help`, with an example."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cortex.cli.app import _COMMANDS
from tests.cli.invoke import Cli, ok

# Every top-level command the app registers (the table the app is built from), so a new
# command without an example in its --help fails here.
COMMANDS: dict[str, Callable[..., None]] = dict(_COMMANDS)


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
