"""`cortex mcp` as a real process, driven by the SDK's stdio client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TextIO

import pytest
from mcp import Client
from mcp.client.client import ConnectMode
from mcp.client.stdio import StdioServerParameters, stdio_client
from typer.testing import CliRunner

import cortex
from cortex import Settings
from cortex.cli import app
from cortex.mcp import TOOL_NAMES
from tests.mcp.calls import call, fails

CORTEX = Path(sys.executable).parent / "cortex"
UNKNOWN_ID = "01JNZ3Q8V4K2M7T9X1B5C6D8EF"


def _environment(**extra: str) -> dict[str, str]:
    """This process's environment without CORTEX_* variables, text-only, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORTEX_")}
    return {**env, "CORTEX_EMBEDDER": "none", **extra}


@asynccontextmanager
async def stdio_session(
    home: Path, *args: str, errlog: TextIO, mode: ConnectMode = "auto", **env: str
) -> AsyncIterator[Client]:
    """An SDK client of `cortex mcp --home HOME ARGS...` spawned as a subprocess."""
    params = StdioServerParameters(
        command=str(CORTEX), args=["mcp", "--home", str(home), *args], env=_environment(**env)
    )
    async with Client(stdio_client(params, errlog=errlog), mode=mode) as client:
        yield client


@pytest.fixture
def errlog(tmp_path: Path) -> Iterator[TextIO]:
    """A file that receives the server's stderr."""
    with (tmp_path / "stderr.log").open("w+") as log:
        yield log


def _logged(log: TextIO) -> str:
    log.flush()
    log.seek(0)
    return log.read()


async def test_every_tool_answers_over_stdio_and_the_writes_are_durable(
    settings: Settings, errlog: TextIO
) -> None:
    async with stdio_session(settings.home, "--tenant", "acme", errlog=errlog) as client:
        tools = (await client.list_tools()).tools
        stored = await call(client, "store_fact", content="Backups run at 02:00 UTC", tags=["ops"])
        hits = (await call(client, "search_facts", query="backups", mode="text"))["hits"]
        got = await call(client, "get_fact", fact_id=stored["id"])
        gone = await call(client, "deprecate_fact", fact_id=stored["id"], reason="now at 03:00")
        history = (await call(client, "fact_history", fact_id=stored["id"]))["versions"]
        report = await call(client, "verify_ledger")

    assert tuple(tool.name for tool in tools) == TOOL_NAMES
    assert all(tool.input_schema["additionalProperties"] is False for tool in tools)
    assert [hit["fact"]["id"] for hit in hits] == [stored["id"]]
    assert got["content"] == "Backups run at 02:00 UTC"
    assert got["tenant"] == "acme"
    assert gone["status"] == "deprecated"
    assert len(history) == 1
    assert len(history[0]["transactions"]) == 2
    assert report["ok"] is True
    assert report["entries"] == 2
    # The server closed its engine on exit: another process sees both writes and a sound ledger.
    async with await cortex.open(settings, embedder=None) as engine:
        assert (await engine.get(stored["id"], tenant="acme")).status == "deprecated"
        assert (await engine.verify(tenant="acme")).ok
    assert "Traceback" not in _logged(errlog)


async def test_errors_come_back_as_tool_errors_and_the_server_keeps_answering(
    settings: Settings, errlog: TextIO
) -> None:
    async with stdio_session(settings.home, errlog=errlog, mode="legacy") as client:
        stored = await call(client, "store_fact", content="The VPN gateway is vpn-1")
        unknown = await fails(client, "get_fact", fact_id=UNKNOWN_ID)
        missing = await fails(client, "store_fact", project="infra")
        bad_k = await fails(client, "search_facts", query="vpn", k=1000)
        await call(client, "deprecate_fact", fact_id=stored["id"], reason="replaced by vpn-2")
        twice = await fails(client, "deprecate_fact", fact_id=stored["id"], reason="again")
        after = await call(client, "get_fact", fact_id=stored["id"])
        tools = (await client.list_tools()).tools

    assert f"NotFound: no fact '{UNKNOWN_ID}' in tenant 'default'" in unknown
    assert "content\n  Field required" in missing
    assert "k\n  Input should be less than or equal to 100" in bad_k
    assert "Conflict:" in twice
    assert "already deprecated" in twice
    assert after["deprecation_reason"] == "replaced by vpn-2"
    assert len(tools) == len(TOOL_NAMES)
    assert "Traceback" not in _logged(errlog)


async def test_tenant_and_project_come_from_the_environment(
    settings: Settings, errlog: TextIO
) -> None:
    env = {"CORTEX_TENANT": "acme", "CORTEX_PROJECT": "infra"}
    async with stdio_session(settings.home, errlog=errlog, **env) as client:
        stored = await call(client, "store_fact", content="Grafana lives at grafana.internal")
        refused = await fails(client, "store_fact", content="x", project="web")

    assert (stored["tenant"], stored["project"]) == ("acme", "infra")
    assert "Forbidden: this connection is bound to project 'infra'" in refused


async def test_options_take_precedence_over_the_environment(
    settings: Settings, errlog: TextIO
) -> None:
    options = ("--tenant", "globex", "--project", "web")
    env = {"CORTEX_TENANT": "acme", "CORTEX_PROJECT": "infra"}
    async with stdio_session(settings.home, *options, errlog=errlog, **env) as client:
        stored = await call(client, "store_fact", content="The CDN is cdn-1")

    assert (stored["tenant"], stored["project"]) == ("globex", "web")


def test_stdout_carries_only_the_protocol_and_end_of_input_stops_the_server(
    settings: Settings,
) -> None:
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"},
        },
    }
    process = subprocess.Popen(
        [str(CORTEX), "mcp", "--home", str(settings.home)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_environment(),
        text=True,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.write(json.dumps(initialize) + "\n")
    process.stdin.flush()
    reply = json.loads(process.stdout.readline())
    process.stdin.close()
    code = process.wait(timeout=30)
    rest = process.stdout.read()
    assert process.stderr is not None
    errors = process.stderr.read()
    process.stdout.close()
    process.stderr.close()

    assert reply["id"] == 1
    assert reply["result"]["serverInfo"]["name"] == "cortex"
    assert rest == ""
    assert code == 0, errors
    assert "Traceback" not in errors


def test_an_uninitialised_home_ends_with_one_error_line(tmp_path: Path) -> None:
    home = tmp_path / "nowhere"
    result = subprocess.run(
        [str(CORTEX), "mcp", "--home", str(home)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=_environment(),
        timeout=30,
        check=False,
    )

    assert result.returncode == 4
    assert result.stdout == ""
    assert result.stderr.strip() == (
        f"error: {home} is not an initialised CORTEX data directory;"
        f" run `cortex init --home {home}` first"
    )


def test_help_shows_the_docstring_and_an_example() -> None:
    result = CliRunner().invoke(app, ["mcp", "--help"])
    words = " ".join(result.stdout.split())

    assert result.exit_code == 0
    assert "Serve the memory tools over MCP on stdin/stdout" in words
    assert "Example" in words
    assert "cortex mcp --home /srv/cortex --tenant acme --project infra" in words
    assert "CORTEX_PROJECT" in words
