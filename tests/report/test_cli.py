"""`cortex report`: stdout or an atomically written file, every format, exit codes."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import apsw
import jsonschema
import pytest
from typer.testing import CliRunner, Result

import cortex
from cortex.cli import app
from cortex.cli.report import report as report_command
from cortex.report import REPORT_SCHEMA
from tests.cli.invoke import Cli, ok
from tests.report.scenario import EXPECTED_BY_OP, EXPECTED_ENTRIES, populate


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An initialised data directory holding the scenario in tenant `acme`."""
    path = tmp_path / "home"
    settings = cortex.Settings.load(path, embedder="none")
    cortex.init_home(settings)

    async def write() -> None:
        async with await cortex.open(settings) as engine:
            await populate(engine, tenant="acme")

    asyncio.run(write())
    return path


@pytest.fixture
def cli(home: Path) -> Cli:
    """Run `cortex ARGS...` in-process with CORTEX_HOME set to `home` and a text-only engine."""
    env: dict[str, str | None] = {name: None for name in os.environ if name.startswith("CORTEX_")}
    runner = CliRunner(env={**env, "CORTEX_HOME": str(home), "CORTEX_EMBEDDER": "none"})

    def run(*args: str) -> Result:
        return runner.invoke(app, list(args))

    return run


def test_the_json_report_on_stdout_counts_the_tenants_entries(cli: Cli) -> None:
    result = ok(cli("report", "--tenant", "acme", "--format", "json"))

    data = json.loads(result.stdout)
    jsonschema.Draft202012Validator(REPORT_SCHEMA).validate(data)
    assert data["header"]["tenant"] == "acme"
    assert data["body"]["activity"]["by_op"] == EXPECTED_BY_OP
    assert data["body"]["integrity"]["status"] == "ok"


def test_markdown_is_the_default_format(cli: Cli) -> None:
    result = ok(cli("report", "--tenant", "acme"))

    assert result.stdout.startswith("# CORTEX record-keeping report")
    assert f"{EXPECTED_ENTRIES} entries" in result.stdout


def test_output_writes_the_html_file_and_nothing_to_stdout(cli: Cli, tmp_path: Path) -> None:
    target = tmp_path / "reports" / "acme.html"
    target.parent.mkdir()
    target.write_text("an older report")

    result = ok(cli("report", "--tenant", "acme", "-f", "html", "--output", str(target)))

    assert result.stdout == ""
    assert str(target) in result.stderr
    page = target.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert page.rstrip().endswith("</html>")
    assert sorted(p.name for p in target.parent.iterdir()) == ["acme.html"]  # no temp left


def test_from_and_to_limit_the_period(cli: Cli) -> None:
    result = ok(cli("report", "--tenant", "acme", "-f", "json", "--from", "2999-01-01"))

    data = json.loads(result.stdout)
    assert data["body"]["activity"]["entries"] == 0
    assert data["header"]["period"] == {"start": "2999-01-01T00:00:00.000000Z", "end": None}


def test_a_tampered_store_exits_1_after_writing_the_report(cli: Cli, home: Path) -> None:
    conn = apsw.Connection(str(home / "cortex.db"))
    with conn:
        conn.execute("UPDATE transactions SET actor = 'mallory' WHERE seq = 3")
    conn.close()

    result = cli("report", "--tenant", "acme", "-f", "json")

    assert result.exit_code == 1
    assert json.loads(result.stdout)["body"]["integrity"]["status"] == "failed"
    assert "Integrity: FAILED" in result.stderr
    assert "seq 3" in result.stderr


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("--format", "pdf"), 2),
        (("--from", "yesterday"), 2),
        (("--from", "2026-02-01", "--to", "2026-01-01"), 2),
        (("--tenant", "nobody"), 3),
    ],
)
def test_bad_options_and_unknown_tenants_have_their_exit_codes(
    cli: Cli, args: tuple[str, ...], code: int
) -> None:
    result = cli("report", *(args if "--tenant" in args else ("--tenant", "acme", *args)))

    assert result.exit_code == code, result.output
    assert result.stderr.startswith("error:")


def test_help_shows_the_docstring_and_examples(cli: Cli) -> None:
    result = ok(cli("report", "--help"))

    first_line = (report_command.__doc__ or "").splitlines()[0]
    assert " ".join(first_line.split()) in " ".join(result.stdout.split())
    assert "Example" in result.stdout
    assert "cortex report --tenant acme" in result.stdout
    assert "report" in ok(cli("--help")).stdout
