"""The `init` command: create a data directory and its checkpoint signing key."""

from __future__ import annotations

import typer

from cortex.cli.options import Home
from cortex.config import Settings
from cortex.engine import init_home

__all__ = ["init"]


def init(home: Home = None) -> None:
    """Create the data directory, its database and its Ed25519 checkpoint signing key.

    Safe to run again: an existing directory is left as it is. Keep the key file private and
    backed up; give the public key to auditors for `cortex verify-export --public-key`.

    Example: cortex init --home /srv/cortex
    """
    settings = Settings.load(home)
    result = init_home(settings)
    state = "created" if result.created else "already initialised"
    typer.echo(f"{state}: {result.home}")
    typer.echo(f"public key: {settings.public_key_path}")
