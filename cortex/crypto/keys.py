"""Key files: created once by `cortex init` (mode 0600); never defaulted, never made on use."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from cortex.errors import ConfigError
from cortex.fsutil import fsync_path

__all__ = [
    "create_signing_key",
    "load_public_key",
    "load_signing_key",
    "read_private_file",
    "write_private_file",
]


def write_private_file(path: Path, data: bytes) -> None:
    """Atomically create `path` (mode 0600) holding `data`; never overwrite an existing file."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, path)  # fails if `path` exists: a key is never silently replaced
    finally:
        tmp.unlink(missing_ok=True)
    fsync_path(path.parent)


def create_signing_key(path: Path) -> Ed25519PublicKey:
    """Create a new Ed25519 signing key at `path` (0600) and its public key beside it (`.pub`)."""
    if path.exists():
        raise ConfigError(f"signing key {path} already exists; refusing to replace it")
    private_key = Ed25519PrivateKey.generate()
    pem = private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    write_private_file(path, pem)
    public_pem = private_key.public_key().public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
    )
    pub_path = path.with_suffix(".pub")
    pub_path.unlink(missing_ok=True)
    write_private_file(pub_path, public_pem)
    os.chmod(pub_path, 0o644)
    return private_key.public_key()


def read_private_file(path: Path, name: str, missing: str) -> bytes:
    """The bytes of a key file made by `write_private_file`, as ConfigErrors otherwise.

    `name` names the file in messages ("signing key"); `missing` is the whole message when the
    file does not exist (it says how to get it back). A file others may read is refused.
    """
    try:
        data = path.read_bytes()
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError as exc:
        raise ConfigError(missing) from exc
    except OSError as exc:
        raise ConfigError(f"{name} {path} cannot be read: {exc}") from exc
    if mode & 0o077:
        raise ConfigError(
            f"{name} {path} has mode {mode:o}; it must be readable by its owner only"
            f" (chmod 600 {path})"
        )
    return data


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """Load the checkpoint signing key; a missing or unreadable key is a ConfigError."""
    data = read_private_file(
        path,
        "signing key",
        f"signing key {path} is missing; run `cortex init` to create the data directory",
    )
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"signing key {path} is not a valid PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"signing key {path} is not an Ed25519 key")
    return key


def load_public_key(data: bytes) -> Ed25519PublicKey:
    """Parse a PEM public key; a key of another type is a ConfigError."""
    try:
        key = load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"not a valid PEM public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError("the public key is not an Ed25519 key")
    return key
