"""How CLI tests run `cortex` and read its results."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from typer.testing import Result

Cli = Callable[..., Result]
"""`cli("store", "text", input=None)` runs `cortex store text` in-process."""


def ok(result: Result) -> Result:
    """Assert the command succeeded, showing its output when it did not."""
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.output}"
    return result


def as_json(result: Result) -> Any:
    """Parse the command's stdout as JSON after checking it succeeded."""
    return json.loads(ok(result).stdout)


def stored_id(cli: Cli, text: str, *options: str) -> str:
    """Store one fact through the CLI and return its id."""
    return ok(cli("store", text, *options)).stdout.strip()
