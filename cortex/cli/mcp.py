"""The `mcp` command: serve the CORTEX tools to a local agent over the Model Context Protocol."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Annotated

import typer

from cortex.cli.options import Home, Tenant
from cortex.config import Settings

__all__ = ["mcp"]


def mcp(
    home: Home = None,
    tenant: Tenant = None,
    project: Annotated[
        str | None,
        typer.Option(
            "--project",
            "-p",
            metavar="NAME",
            envvar="CORTEX_PROJECT",
            help="Bind the server to one project (default: CORTEX_PROJECT, else every project).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the memory tools over MCP on stdin/stdout, for an agent that starts this command.

    Tools: store_fact, search_facts, get_fact, deprecate_fact, fact_history, verify_ledger.
    They act for --tenant (or CORTEX_TENANT); with --project (or CORTEX_PROJECT) facts are
    stored in that project and only its facts are found. Stdout carries the protocol only; logs
    go to stderr. The engine is opened once and closed when the client disconnects.

    Examples:

        cortex mcp --home /srv/cortex --tenant acme --project infra

    and in an MCP client's configuration (e.g. Claude Desktop's "mcpServers"):

        "cortex": {"command": "cortex", "args": ["mcp", "--tenant", "acme"]}
    """
    # Imported here: the MCP SDK takes longer to import than the rest of the CLI together.
    from cortex.mcp.server import serve_stdio
    from cortex.search.vectors import use_one_blas_thread

    logging.basicConfig(
        stream=sys.stderr,
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    settings = Settings.load(home, tenant=tenant)
    use_one_blas_thread()
    asyncio.run(serve_stdio(settings, project=project))
