"""Turning encryption on, and rotating its keys, over the `Store` protocol.

- `enable_encryption`: `cortex init --encrypt` records a new master key (a key file or a
  passphrase) in a store that holds no data yet.
- `rotate_master`: re-wraps every data key under a new master key in one transaction, without
  touching a fact. Order, so that a crash at any point leaves a store that opens with one of the
  two keys: (1) write the new key file beside the old one (`master.key.new`); (2) commit the
  re-wrapped keys and the new check value; (3) rename the new file over the old one. Before (2)
  the old key opens the store; after it the new one does, and `unlock_master_key` finishes an
  interrupted (3) at the next open.
- `rotate_data`: gives a tenant a new data key, then re-seals its facts in batches through the
  engine's writer (so it serializes with normal writes), retires the old key and logs the
  rotation. Each row names its key version, so a rerun after a crash resumes with the rows still
  below the current version.

Each rotation is logged as a `key_rotate` ledger event: payload `{"kind": "master"|"data",
"tenant": str | null, "version": int}` (the master rotation in every tenant that has a key).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cortex.config import Settings
from cortex.crypto.cipher import EnvelopeCipher
from cortex.crypto.envelope import KdfParams, MasterKey, derive_master_key
from cortex.crypto.keys import write_private_file
from cortex.crypto.master import (
    create_master_key_file,
    load_master_key_file,
    master_record_for,
    pending_key_path,
    replace_key_file,
    unlock_master_key,
)
from cortex.errors import ConfigError, Conflict, NotFound, ValidationError
from cortex.store.base import (
    AddDataKey,
    MasterRecord,
    ResealFacts,
    RetireDataKeys,
    Store,
    WrappedKey,
    WriteOutcome,
    WriteRequest,
)

__all__ = [
    "KEY_ROTATE_OP",
    "DataRotation",
    "MasterRotation",
    "enable_encryption",
    "open_cipher",
    "rotate_data",
    "rotate_master",
]

KEY_ROTATE_OP = "key_rotate"
_ROTATE_ATTEMPTS = 3

Write = Callable[[WriteRequest], Awaitable[WriteOutcome]]
LogEvent = Callable[[str, Mapping[str, Any]], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class MasterRotation:
    """What `rotate_master` did: the new master version and source, keys re-wrapped."""

    version: int
    source: str
    rewrapped: int
    tenants: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DataRotation:
    """What `rotate_data` did for one tenant."""

    tenant: str
    version: int
    resealed: int
    retired: int
    resumed: bool


async def open_cipher(
    record: MasterRecord, settings: Settings, environ: Mapping[str, str]
) -> EnvelopeCipher:
    """The cipher for a store with this master record, its key from the file or passphrase."""
    master = await asyncio.to_thread(
        unlock_master_key, record, settings.master_key_path, settings.passphrase_env, environ
    )
    return EnvelopeCipher(master, record.check)


async def enable_encryption(
    store: Store, settings: Settings, passphrase: str | None
) -> tuple[MasterRecord, bool]:
    """Record a new master key in `store`; return its record and whether it was created.

    Without `passphrase`, the key is a new key file at `settings.master_key_path` (one left by
    an interrupted init is reused, never replaced). An already encrypted store is left as it is.
    """
    existing = await store.master_record()
    if existing is not None:
        return existing, False
    kdf: KdfParams | None = None
    path = settings.master_key_path
    created = False
    if passphrase is None:
        created = not await asyncio.to_thread(path.exists)
        loader = create_master_key_file if created else load_master_key_file
        key = await asyncio.to_thread(loader, path)
    else:
        kdf = KdfParams.fresh()
        key = await asyncio.to_thread(derive_master_key, passphrase, kdf)
    record = master_record_for(key, version=1, kdf=kdf)
    try:
        await store.set_master_key(record, None, ())
    except BaseException:
        if created:  # the store refused (it holds data in the clear): leave no unused key behind
            await asyncio.to_thread(path.unlink, missing_ok=True)
        raise
    return record, True


async def rotate_master(
    store: Store,
    cipher: EnvelopeCipher,
    settings: Settings,
    log_event: LogEvent,
    *,
    passphrase: str | None = None,
) -> MasterRotation:
    """Re-wrap every data key under a new master key (a new key file, or `passphrase`)."""
    record = await store.master_record()
    if record is None:
        raise ConfigError("this store is not encrypted: there is no master key to rotate")
    if record.check != cipher.check:
        raise Conflict("the master key was rotated by another process; reopen with the new key")
    key_path = settings.master_key_path
    pending = pending_key_path(key_path)
    kdf: KdfParams | None = None
    if passphrase is None:
        new = MasterKey.generate()
        # The record opens with the key this engine holds, so a pending file left by an earlier
        # interrupted rotation was never committed to: it is safe to replace.
        await asyncio.to_thread(pending.unlink, missing_ok=True)
        await asyncio.to_thread(write_private_file, pending, new.material)
    else:
        if not passphrase:
            raise ValidationError("the new passphrase is empty")
        kdf = KdfParams.fresh()
        new = await asyncio.to_thread(derive_master_key, passphrase, kdf)
    new_record = master_record_for(new, version=record.version + 1, kdf=kdf)
    try:
        keys = await _rewrap_all(store, cipher, new, new_record, record.check)
    except BaseException:
        if passphrase is None:
            await asyncio.to_thread(pending.unlink, missing_ok=True)
        raise
    cipher.use_master(new, new_record.check)
    if passphrase is None:
        await asyncio.to_thread(replace_key_file, pending, key_path)
    elif record.source == "file":
        # The store now opens with the passphrase only; the old key file opens nothing.
        await asyncio.to_thread(key_path.unlink, missing_ok=True)
    tenants = tuple(sorted({k.tenant for k in keys}))
    payload = {"kind": "master", "tenant": None, "version": new_record.version}
    for tenant in tenants:
        await log_event(tenant, payload)
    return MasterRotation(new_record.version, new_record.source, len(keys), tenants)


async def _rewrap_all(
    store: Store,
    cipher: EnvelopeCipher,
    new: MasterKey,
    new_record: MasterRecord,
    previous: bytes,
) -> list[WrappedKey]:
    """Commit every data key re-wrapped by `new`; retried when a tenant gets a key meanwhile."""
    for attempt in range(_ROTATE_ATTEMPTS):
        keys = await store.data_keys()

        def rewrap(keys: list[WrappedKey] = keys) -> list[WrappedKey]:
            return [
                WrappedKey(k.tenant, k.version, cipher.rewrap(k.tenant, k.version, k.wrapped, new))
                for k in keys
            ]

        rewrapped = await asyncio.to_thread(rewrap)
        try:
            await store.set_master_key(new_record, previous, rewrapped)
        except Conflict:
            if attempt + 1 == _ROTATE_ATTEMPTS:
                raise
            continue
        return rewrapped
    raise AssertionError("unreachable")


async def rotate_data(
    store: Store,
    write: Write,
    log_event: LogEvent,
    tenant: str,
    *,
    batch: int = 500,
    progress: Callable[[int, int], None] | None = None,
    approve: Callable[[], Awaitable[object]] | None = None,
) -> DataRotation:
    """Give `tenant` a new data key and re-seal its facts with it; resume an interrupted run.

    A run that finds rows below the current version (or a finished re-seal that was not yet
    logged) resumes it instead of starting another rotation. `progress(done, total)` is called
    after each batch. `approve()` is awaited before a new rotation starts (not before a
    resumed one): the approval gate's check, which raises to stop it.
    """
    if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= 10_000:
        raise ValidationError("batch must be between 1 and 10000")
    keys = await store.data_keys(tenant)
    if not keys:
        raise NotFound(f"tenant {tenant!r} has no data key yet (it has stored no fact)")
    current = max(k.version for k in keys)
    stale = await store.count_facts_to_reseal(tenant)
    logged = await _logged_data_version(store, tenant)
    resumed = stale > 0 or logged < current
    if resumed:
        version = current
    else:
        if approve is not None:
            await approve()
        outcome = await write(AddDataKey(tenant))
        assert isinstance(outcome, int)
        version = outcome
    total = await store.count_facts_to_reseal(tenant)
    done = resealed = 0
    after = 0
    if progress is not None:
        progress(0, total)
    while rowids := await store.facts_to_reseal(tenant, after, batch):
        outcome = await write(ResealFacts(tenant, tuple(rowids)))
        assert isinstance(outcome, int)
        resealed += outcome
        after = rowids[-1]
        done += len(rowids)
        if progress is not None:
            progress(min(done, total), total)
    retired = await write(RetireDataKeys(tenant))
    assert isinstance(retired, int)
    version = max(k.version for k in await store.data_keys(tenant))
    await log_event(tenant, {"kind": "data", "tenant": tenant, "version": version})
    return DataRotation(tenant, version, resealed, retired, resumed)


async def _logged_data_version(store: Store, tenant: str) -> int:
    """The highest data key version a `key_rotate` event of `tenant` logged (1: none)."""
    version, after = 1, -1
    while page := await store.events(tenant, [KEY_ROTATE_OP], None, after, 1000):
        for tx in page:
            if tx.payload.get("kind") == "data":
                version = max(version, int(tx.payload.get("version", 1)))
        after = page[-1].seq
    return version
