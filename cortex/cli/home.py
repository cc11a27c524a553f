"""The `init` command: create a data directory, its keys, and (optionally) encryption at rest."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from cortex.cli.options import Home
from cortex.config import Settings
from cortex.engine import init_home
from cortex.errors import ConfigError

__all__ = ["init"]


def init(
    home: Home = None,
    encrypt: Annotated[
        bool,
        typer.Option(
            "--encrypt",
            help="Encrypt fact content and meta at rest (AES-256-GCM), with a new master key"
            " file keys/master.key (mode 0600).",
        ),
    ] = False,
    passphrase_env: Annotated[
        str | None,
        typer.Option(
            "--passphrase-env",
            metavar="VAR",
            help="Encrypt, with the master key derived (Argon2id) from the passphrase in this"
            " environment variable instead of a key file.",
        ),
    ] = None,
) -> None:
    """Create the data directory, its database and its Ed25519 checkpoint signing key.

    Safe to run again: an existing directory is left as it is. Keep the key file private and
    backed up; give the public key to auditors for `cortex verify-export --public-key`.

    With --encrypt, fact content and meta are stored encrypted; the master key is a new key
    file (back it up: without it the facts are lost) or, with --passphrase-env VAR, derived
    from the passphrase in $VAR (later commands read it from the variable the setting
    passphrase_env names, CORTEX_PASSPHRASE by default). Encryption is chosen for a new store
    only. Search is off for encrypted facts until the setting encrypted_search allows it: see
    docs/encryption.md for what each choice reveals.

    Examples:

        cortex init --home /srv/cortex
        cortex init --home /srv/vault --encrypt
        export CORTEX_PASSPHRASE='correct horse battery staple'
        cortex init --passphrase-env CORTEX_PASSPHRASE
    """
    settings = Settings.load(home, passphrase_env=passphrase_env)
    passphrase = None
    if passphrase_env is not None:
        passphrase = os.environ.get(passphrase_env)
        if not passphrase:
            raise ConfigError(f"--passphrase-env {passphrase_env}: that variable is not set")
    result = init_home(settings, encrypt=encrypt, passphrase=passphrase)
    state = "created" if result.created else "already initialised"
    typer.echo(f"{state}: {result.home}")
    typer.echo(f"public key: {settings.public_key_path}")
    if result.encryption == "file":
        typer.echo(f"encrypted at rest; master key: {settings.master_key_path} (back it up)")
    elif result.encryption == "passphrase":
        typer.echo(
            f"encrypted at rest; master key from the passphrase in ${settings.passphrase_env}"
        )
    elif encrypt or passphrase is not None:
        raise ConfigError("the store was not encrypted")
