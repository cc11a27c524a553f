"""How MCP tests call a tool and read its result."""

from __future__ import annotations

import json
from typing import Any

from mcp import Client
from mcp_types import CallToolResult, TextContent


def _text(result: CallToolResult) -> str:
    assert len(result.content) == 1
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """Call `tool`, assert it succeeded, and return its structured result.

    The text content must be the same JSON, for clients that read only text.
    """
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, _text(result)
    structured = result.structured_content
    assert structured is not None
    assert json.loads(_text(result)) == structured
    return dict(structured)


async def fails(client: Client, tool: str, **arguments: Any) -> str:
    """Call `tool`, assert it came back as a tool error (isError), and return the error text."""
    result = await client.call_tool(tool, arguments)
    assert result.is_error, f"{tool} succeeded: {result.structured_content}"
    assert result.structured_content is None
    return _text(result)
