"""The command line of encryption at rest: init --encrypt, keys rotate-data, keys rotate-master."""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from cortex.cli import app
from cortex.cli.exit_codes import EXIT_APPROVAL, EXIT_INTEGRITY, EXIT_OTHER
from tests.crypto.conftest import PASSPHRASE


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def _runner(home: Path, **extra: str) -> CliRunner:
    env: dict[str, str | None] = {name: None for name in os.environ if name.startswith("CORTEX_")}
    return CliRunner(env={**env, "CORTEX_HOME": str(home), "CORTEX_EMBEDDER": "none", **extra})


def _ok(result: Result) -> Result:
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.output}"
    return result


def test_init_encrypt_creates_a_private_key_file_and_an_encrypted_store(home: Path) -> None:
    cli = _runner(home)
    out = _ok(cli.invoke(app, ["init", "--encrypt"])).stdout
    key = home / "keys" / "master.key"
    assert f"master key: {key}" in out
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    fact_id = _ok(cli.invoke(app, ["store", "a sealed fact", "--meta", '{"k": "v"}'])).stdout
    shown = json.loads(_ok(cli.invoke(app, ["get", fact_id.strip(), "--json"])).stdout)
    assert shown["content"] == "a sealed fact"
    assert shown["meta"] == {"k": "v"}
    refused = cli.invoke(app, ["search", "sealed"])
    assert refused.exit_code == EXIT_OTHER
    assert "search is off for this encrypted store" in refused.output
    assert "cortex history" not in refused.output


def test_init_with_a_passphrase_then_every_command_needs_it(home: Path) -> None:
    with_pass = _runner(home, VAULT_PASS=PASSPHRASE, CORTEX_PASSPHRASE_ENV="VAULT_PASS")
    out = _ok(with_pass.invoke(app, ["init", "--passphrase-env", "VAULT_PASS"])).stdout
    assert "passphrase in $VAULT_PASS" in out
    assert not (home / "keys" / "master.key").exists()
    _ok(with_pass.invoke(app, ["store", "behind a passphrase"]))
    missing = _runner(home, CORTEX_PASSPHRASE_ENV="VAULT_PASS").invoke(app, ["list"])
    assert missing.exit_code == EXIT_OTHER
    assert "set the environment variable VAULT_PASS" in missing.output
    wrong = _runner(home, VAULT_PASS="nope", CORTEX_PASSPHRASE_ENV="VAULT_PASS")
    refused = wrong.invoke(app, ["list"])
    assert refused.exit_code == EXIT_OTHER
    assert "does not open this store" in refused.output


def test_rotate_data_and_rotate_master_from_the_command_line(home: Path) -> None:
    cli = _runner(home)
    _ok(cli.invoke(app, ["init", "--encrypt"]))
    fact_id = _ok(cli.invoke(app, ["store", "rotate around me", "--tenant", "acme"])).stdout.strip()
    rotate_data = ["keys", "rotate-data", "--tenant", "acme", "--json"]
    token = _approved(cli, cli.invoke(app, rotate_data), "acme", "cortex keys rotate-data")
    data = json.loads(_ok(cli.invoke(app, [*rotate_data, "--approval", token])).stdout)
    assert data == {"tenant": "acme", "version": 2, "resealed": 1, "retired": 1, "resumed": False}
    replayed = cli.invoke(app, [*rotate_data, "--approval", token])
    assert replayed.exit_code != 0  # a token works once
    old_key = (home / "keys" / "master.key").read_bytes()
    asked = cli.invoke(app, ["keys", "rotate-master"])
    token = _approved(cli, asked, "default", "cortex keys rotate-master")
    assert (home / "keys" / "master.key").read_bytes() == old_key  # asked, nothing rotated
    out = _ok(cli.invoke(app, ["keys", "rotate-master", "--approval", token])).stdout
    assert "master key version 2 (file): 1 data keys re-wrapped in 1 tenants" in out
    assert (home / "keys" / "master.key").read_bytes() != old_key
    got = _ok(cli.invoke(app, ["get", fact_id, "--tenant", "acme", "--json"])).stdout
    assert json.loads(got)["content"] == "rotate around me"
    assert _ok(cli.invoke(app, ["verify"])).exit_code == 0


def _approved(cli: CliRunner, asked: Result, tenant: str, rerun: str) -> str:
    """Approve the request a gated command made (exit 5) with the command its message names,
    check the command the approval says to run next, and return the token."""
    assert asked.exit_code == EXIT_APPROVAL, asked.output
    found = re.search(r"`cortex (gate approve [^`]+)`", asked.stderr)
    assert found is not None, asked.stderr
    approve = shlex.split(found.group(1))
    assert approve[-2:] == ["--tenant", tenant]
    approved = _ok(cli.invoke(app, approve))
    token = approved.stdout.strip()
    assert f"{rerun} --approval {token} --tenant {tenant}" in approved.stderr
    return token


def test_a_tampered_row_makes_get_exit_with_the_integrity_code(home: Path) -> None:
    import apsw

    cli = _runner(home)
    _ok(cli.invoke(app, ["init", "--encrypt"]))
    first = _ok(cli.invoke(app, ["store", "first"])).stdout.strip()
    second = _ok(cli.invoke(app, ["store", "second"])).stdout.strip()
    conn = apsw.Connection(str(home / "cortex.db"))
    conn.execute(
        "UPDATE facts SET content = (SELECT content FROM facts WHERE id = ?) WHERE id = ?",
        (first, second),
    )
    conn.close()
    result = cli.invoke(app, ["get", second])
    assert result.exit_code == EXIT_INTEGRITY
    assert f"fact {second}" in result.output


def test_the_help_of_each_command_shows_an_example(home: Path) -> None:
    cli = _runner(home)
    for args in (["init"], ["keys", "rotate-master"], ["keys", "rotate-data"]):
        out = _ok(cli.invoke(app, [*args, "--help"])).stdout
        assert "cortex " + " ".join(args) in out
