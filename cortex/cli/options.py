"""Options shared by several commands, and opening the engine they point at.

Every data command takes `--home DIR` (else `CORTEX_HOME`, else `~/.cortex`) and `--tenant NAME`
(else `CORTEX_TENANT`, the `cortex.toml` in the home, or `default`), after its other arguments
or before them: `cortex list --home /srv/cortex --project infra`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from cortex.config import Settings
from cortex.engine import CortexSync, connect
from cortex.errors import ValidationError

__all__ = [
    "AsJson",
    "AsOf",
    "Confidence",
    "FactType",
    "Home",
    "Meta",
    "Project",
    "Source",
    "Tags",
    "Tenant",
    "ValidFrom",
    "ValidUntil",
    "open_memory",
    "parse_meta",
]

Home = Annotated[
    Path | None,
    typer.Option(
        "--home",
        envvar="CORTEX_HOME",
        metavar="DIR",
        help="Data directory (default: ~/.cortex).",
        show_default=False,
    ),
]
Tenant = Annotated[
    str | None,
    typer.Option(
        "--tenant",
        metavar="NAME",
        help="Tenant (default: CORTEX_TENANT, cortex.toml, or 'default').",
        show_default=False,
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
AsOf = Annotated[
    str | None,
    typer.Option(
        "--as-of", metavar="TS", help="Show the record as it was at this ISO 8601 instant."
    ),
]
Project = Annotated[str | None, typer.Option("--project", "-p", metavar="NAME", help="Project.")]
FactType = Annotated[
    str | None, typer.Option("--type", "-t", metavar="TYPE", help="Fact type, e.g. knowledge.")
]
Tags = Annotated[
    list[str] | None, typer.Option("--tag", metavar="TAG", help="Tag (repeat for several).")
]
Source = Annotated[
    str | None, typer.Option("--source", metavar="NAME", help="Source: the agent that knows it.")
]
Confidence = Annotated[
    float | None, typer.Option("--confidence", metavar="0..1", help="Confidence from 0 to 1.")
]
ValidFrom = Annotated[
    str | None,
    typer.Option("--valid-from", metavar="TS", help="Valid from this ISO 8601 instant."),
]
ValidUntil = Annotated[
    str | None,
    typer.Option("--valid-until", metavar="TS", help="Valid until this ISO 8601 instant."),
]
Meta = Annotated[
    str | None,
    typer.Option(
        "--meta", metavar="JSON", help="Metadata as a JSON object, e.g. '{\"ticket\": 7}'."
    ),
]


@contextmanager
def open_memory(home: Path | None, tenant: str | None) -> Iterator[CortexSync]:
    """Yield a blocking engine on `home` (or `CORTEX_HOME`) for `tenant`; close it afterwards."""
    settings = Settings.load(home, tenant=tenant)
    with connect(settings) as memory:
        yield memory


def parse_meta(text: str | None) -> dict[str, Any] | None:
    """Return the `--meta` JSON object, None when absent; ValidationError when not an object."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"--meta is not valid JSON: {exc.msg} at column {exc.colno}") from exc
    if not isinstance(value, dict):
        raise ValidationError("--meta must be a JSON object, e.g. '{\"ticket\": 7}'")
    return value
