"""Where the master key comes from: a key file created by `cortex init --encrypt`, or a passphrase.

No default key and no fallback: an encrypted store opened without its key refuses with a
ConfigError that names what is missing; a key that is not the store's is a `WrongKey`.

A key file rotation writes the new key beside the old one (`master.key.new`), commits the
re-wrapped data keys, then renames the new file over the old one. If the process dies between
the commit and the rename, the next open finds that the old file no longer opens the store, the
pending one does, and finishes the rename (see `unlock_master_key`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from cortex.crypto.envelope import KEY_BYTES, KdfParams, MasterKey, derive_master_key
from cortex.crypto.keys import read_private_file, write_private_file
from cortex.errors import ConfigError, WrongKey
from cortex.fsutil import fsync_path
from cortex.store.base import MasterRecord

__all__ = [
    "create_master_key_file",
    "load_master_key_file",
    "master_record_for",
    "pending_key_path",
    "replace_key_file",
    "unlock_master_key",
]


def pending_key_path(path: Path) -> Path:
    """Where a rotation writes the new key file before the store commits to it."""
    return path.with_name(path.name + ".new")


def create_master_key_file(path: Path) -> MasterKey:
    """Create a new random master key at `path` (mode 0600, atomic; never overwrites a file)."""
    if path.exists():
        raise ConfigError(f"master key {path} already exists; refusing to replace it")
    key = MasterKey.generate()
    write_private_file(path, key.material)
    return key


def load_master_key_file(path: Path) -> MasterKey:
    """Load a master key file; a missing, unreadable, shared or malformed file is a ConfigError."""
    data = read_private_file(
        path,
        "master key",
        f"this store is encrypted and its master key file {path} is missing: restore it from"
        " backup (or point the setting master_key_file at it)",
    )
    if len(data) != KEY_BYTES:
        raise ConfigError(f"master key {path} is {len(data)} bytes, not {KEY_BYTES}: not a key")
    return MasterKey(data)


def replace_key_file(pending: Path, path: Path) -> None:
    """Atomically rename the pending key file over `path` and make the rename durable."""
    os.replace(pending, path)
    fsync_path(path.parent)


def master_record_for(key: MasterKey, *, version: int, kdf: KdfParams | None) -> MasterRecord:
    """The record a store keeps for `key` (source "passphrase" when `kdf` is given)."""
    return MasterRecord(
        version=version,
        source="file" if kdf is None else "passphrase",
        kdf=None if kdf is None else kdf.to_json(),
        check=key.make_check(),
    )


def unlock_master_key(
    record: MasterRecord, key_path: Path, passphrase_env: str, environ: Mapping[str, str]
) -> MasterKey:
    """The master key that opens `record`'s check value, from its file or passphrase.

    ConfigError names what is missing (the key file, the passphrase variable); WrongKey says
    the key given is not this store's. Finishes an interrupted key file rotation.
    """
    if record.source == "passphrase":
        passphrase = environ.get(passphrase_env)
        if not passphrase:
            raise ConfigError(
                "this store is encrypted with a passphrase: set the environment variable"
                f" {passphrase_env} (the setting passphrase_env names the variable)"
            )
        if record.kdf is None:
            raise ConfigError("the store's passphrase parameters are missing")
        key = derive_master_key(passphrase, KdfParams.from_json(record.kdf))
        if not key.opens(record.check):
            raise WrongKey(f"the passphrase in {passphrase_env} does not open this store")
        return key
    if record.source != "file":
        raise ConfigError(f"unknown master key source {record.source!r}; upgrade CORTEX")
    pending = pending_key_path(key_path)
    if key_path.exists() or not pending.exists():
        key = load_master_key_file(key_path)
        if key.opens(record.check):
            return key
    if pending.exists():
        new = load_master_key_file(pending)
        if new.opens(record.check):
            # A rotation committed its re-wrapped keys, then stopped before the rename.
            replace_key_file(pending, key_path)
            return new
    raise WrongKey(f"the master key file {key_path} does not open this store")
