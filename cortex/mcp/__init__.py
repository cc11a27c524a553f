"""CORTEX over the Model Context Protocol: the tools, served over stdio or streamable HTTP.

from cortex.mcp import Caller, build_mcp_server, fixed_caller
server = build_mcp_server(fixed_caller(Caller(engine, "acme", project="infra")))
await server.run_stdio_async()
"""

from cortex.mcp.http import Authenticate, Principal, mcp_http_app
from cortex.mcp.server import (
    MAX_SEARCH_K,
    TOOL_NAMES,
    Caller,
    ResolveCaller,
    Role,
    build_mcp_server,
    fixed_caller,
    serve_stdio,
)

__all__ = [
    "MAX_SEARCH_K",
    "TOOL_NAMES",
    "Authenticate",
    "Caller",
    "Principal",
    "ResolveCaller",
    "Role",
    "build_mcp_server",
    "fixed_caller",
    "mcp_http_app",
    "serve_stdio",
]
