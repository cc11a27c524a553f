"""`EnvelopeCipher`: the store's FieldCipher, holding the master key and unwrapped data keys."""

from __future__ import annotations

import threading
from collections import OrderedDict

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cortex.crypto.envelope import KEY_BYTES, MasterKey, open_field, seal_field
from cortex.errors import ConfigError

__all__ = ["EnvelopeCipher"]

# Unwrapped data keys held at most (one or two per tenant); an evicted key is unwrapped again
# from the store when next needed.
_MAX_KEYS = 65_536


class EnvelopeCipher:
    """Seals fact fields with per-tenant data keys wrapped by one master key. Thread-safe.

    Created by the engine once the master key has opened the store's check value; passed to the
    store, which asks it to create, load, seal and open.
    """

    def __init__(self, master: MasterKey, check: bytes, *, max_keys: int = _MAX_KEYS) -> None:
        if not master.opens(check):
            raise ConfigError("the check value does not belong to this master key")
        self._master = master
        self._check = check
        self._max_keys = max_keys
        self._keys: OrderedDict[tuple[str, int], AESGCM] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"EnvelopeCipher(<{len(self._keys)} data keys>)"

    @property
    def check(self) -> bytes:
        """The check value of the master key in use."""
        return self._check

    @property
    def master(self) -> MasterKey:
        """The master key in use (for re-wrapping data keys at rotation)."""
        return self._master

    def use_master(self, master: MasterKey, check: bytes) -> None:
        """Switch to a new master key (after a rotation committed); data keys stay loaded."""
        if not master.opens(check):
            raise ConfigError("the check value does not belong to this master key")
        with self._lock:
            self._master, self._check = master, check

    def has_key(self, tenant: str, version: int) -> bool:
        """True when the data key `version` of `tenant` is loaded."""
        with self._lock:
            return (tenant, version) in self._keys

    def new_key(self, tenant: str, version: int) -> bytes:
        """Create and load a random data key; return it wrapped by the master key."""
        key = AESGCM.generate_key(bit_length=8 * KEY_BYTES)
        with self._lock:
            wrapped = self._master.wrap(key, tenant, version)
            self._remember(tenant, version, AESGCM(key))
        return wrapped

    def load_key(self, tenant: str, version: int, wrapped: bytes) -> None:
        """Unwrap a stored data key and load it; WrongKey when the master key does not fit."""
        with self._lock:
            master = self._master
        key = master.unwrap(wrapped, tenant, version)
        with self._lock:
            self._remember(tenant, version, AESGCM(key))

    def rewrap(self, tenant: str, version: int, wrapped: bytes, new: MasterKey) -> bytes:
        """A stored data key wrapped by `new` instead of the current master key."""
        with self._lock:
            master = self._master
        return new.wrap(master.unwrap(wrapped, tenant, version), tenant, version)

    def seal(self, tenant: str, version: int, fact_id: str, field: str, plaintext: str) -> str:
        """`plaintext` sealed with the tenant's data key `version` for this fact and field."""
        return seal_field(self._aead(tenant, version), version, tenant, fact_id, field, plaintext)

    def open(self, tenant: str, version: int, fact_id: str, field: str, sealed: str) -> str:
        """The plaintext of a sealed field; DecryptionError naming the fact if it does not fit."""
        return open_field(self._aead(tenant, version), version, tenant, fact_id, field, sealed)

    def _aead(self, tenant: str, version: int) -> AESGCM:
        with self._lock:
            aead = self._keys.get((tenant, version))
            if aead is not None:
                self._keys.move_to_end((tenant, version))
                return aead
        raise ConfigError(
            f"data key {version} of tenant {tenant!r} is not loaded (the store loads keys"
            " before it seals or opens)"
        )

    def _remember(self, tenant: str, version: int, aead: AESGCM) -> None:
        self._keys[(tenant, version)] = aead
        self._keys.move_to_end((tenant, version))
        while len(self._keys) > self._max_keys:
            self._keys.popitem(last=False)
