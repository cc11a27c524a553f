"""`cortex init` creates a data directory once; every other command needs one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.invoke import Cli, as_json, ok


def test_init_creates_the_home_and_reports_the_public_key(cli: Cli, home: Path) -> None:
    result = ok(cli("init"))

    assert f"created: {home}" in result.stdout
    assert f"public key: {home / 'keys' / 'signing.pub'}" in result.stdout
    assert (home / "cortex.db").exists()
    assert (home / "keys" / "signing.pub").exists()


def test_init_twice_leaves_the_home_and_its_key_alone(cli: Cli, home: Path) -> None:
    ok(cli("init"))
    key = (home / "keys" / "signing.key").read_bytes()

    again = ok(cli("init"))

    assert f"already initialised: {home}" in again.stdout
    assert (home / "keys" / "signing.key").read_bytes() == key


def test_home_option_overrides_the_environment(cli: Cli, home: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"

    ok(cli("init", "--home", str(other)))
    ok(cli("store", "lives in the other home", "--home", str(other)))

    assert not home.exists()
    assert as_json(cli("stats", "--home", str(other), "--json"))["facts"] == 1


@pytest.mark.parametrize(
    "args",
    [
        ["store", "a fact"],
        ["get", "01JNZ3Q8V4K2M7T9X1B5C6D8EF"],
        ["list"],
        ["deprecate", "01JNZ3Q8V4K2M7T9X1B5C6D8EF", "--reason", "old"],
        ["supersede", "01JNZ3Q8V4K2M7T9X1B5C6D8EF", "new text"],
        ["history", "01JNZ3Q8V4K2M7T9X1B5C6D8EF"],
        ["verify"],
        ["proof", "0"],
        ["consistency", "0"],
        ["checkpoint"],
        ["export", "bundle.jsonl"],
        ["stats"],
    ],
)
def test_commands_on_an_uninitialised_home_exit_4_with_a_hint_to_run_init(
    cli: Cli, home: Path, args: list[str]
) -> None:
    result = cli(*args)

    assert result.exit_code == 4, result.output
    assert result.stderr.startswith("error: ")
    assert "cortex init" in result.stderr
    assert result.stdout == ""
    assert not (home / "cortex.db").exists()
