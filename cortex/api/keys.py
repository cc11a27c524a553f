"""API keys: stored as an HMAC under the server secret only, checked in constant time.

A key reads `ctx_<key id>_<secret>`: the key id (16 hex digits) finds the row, the whole key's
`HMAC-SHA256(server secret, key)` is compared with `hmac.compare_digest`. The key itself is never
stored or logged. `KeyStore` holds the rows in `<home>/service.db` (SQLite, WAL) with blocking
methods (the CLI calls them directly, the service through `asyncio.to_thread`); `KeyVerifier` adds
a small cache of rows for at most `key_cache_seconds`, so a revocation from another process (the
CLI or another worker) takes effect within that time, and at once in the process that revoked.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast, get_args

from cortex.config import Settings
from cortex.crypto.keys import read_private_file
from cortex.errors import (
    ConfigError,
    Forbidden,
    NotFound,
    StoreError,
    Unauthorized,
    ValidationError,
)
from cortex.model import check_name

__all__ = [
    "ROLES",
    "ApiKey",
    "IssuedKey",
    "KeyStore",
    "KeyVerifier",
    "Role",
    "claim_agent",
    "key_digest",
    "load_server_secret",
    "own_agent",
    "parse_key_id",
]

Role = Literal["reader", "writer", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
KEY_PREFIX = "ctx_"
SECRET_BYTES = 32
_KEY = re.compile(r"^ctx_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
_KEY_ID = re.compile(r"^[0-9a-f]{16}$")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id   TEXT PRIMARY KEY,
    tenant   TEXT NOT NULL,
    role     TEXT NOT NULL CHECK (role IN ('reader', 'writer', 'admin')),
    project  TEXT,
    created  TEXT NOT NULL,
    expires  TEXT,
    revoked  TEXT,
    key_hmac TEXT NOT NULL,
    agent    TEXT
);
CREATE INDEX IF NOT EXISTS api_keys_tenant ON api_keys (tenant, created);
"""
# Key stores made before keys could be bound to an agent get the column (and its index) on open.
_AGENT_COLUMN = "ALTER TABLE api_keys ADD COLUMN agent TEXT"
_AGENT_INDEX = "CREATE INDEX IF NOT EXISTS api_keys_agent ON api_keys (tenant, agent)"
_COLUMNS = "key_id, tenant, role, project, created, expires, revoked, agent"
# Compared against when a key id is unknown, so that answer takes as long as a wrong secret.
_NO_DIGEST = "0" * 64


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One API key's record (never the key itself): who it acts for and until when."""

    key_id: str
    tenant: str
    role: Role
    project: str | None
    created: datetime
    expires: datetime | None
    revoked: datetime | None
    agent: str | None = None

    @property
    def identity(self) -> str:
        """The agent this key acts as: its bound agent, else `key-<key id>`."""
        return self.agent if self.agent is not None else f"key-{self.key_id}"

    def allows(self, role: Role) -> bool:
        """True when this key's role includes `role` (reader < writer < admin)."""
        return ROLES.index(self.role) >= ROLES.index(role)

    def state(self, now: datetime) -> Literal["active", "expired", "revoked"]:
        """`revoked`, `expired` or `active` at instant `now`."""
        if self.revoked is not None:
            return "revoked"
        if self.expires is not None and now >= self.expires:
            return "expired"
        return "active"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; timestamps as RFC 3339 text."""
        return {
            "key_id": self.key_id,
            "tenant": self.tenant,
            "role": self.role,
            "project": self.project,
            "created": _iso(self.created),
            "expires": _iso(self.expires),
            "revoked": _iso(self.revoked),
            "agent": self.agent,
            "state": self.state(datetime.now(UTC)),
        }


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A newly created key: `key` is shown once and cannot be recovered later."""

    key: str
    record: ApiKey


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _parse_iso(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


def load_server_secret(path: Path) -> bytes:
    """Read the server secret `cortex init` made; missing, exposed or malformed: ConfigError."""
    data = read_private_file(
        path,
        "server secret",
        f"server secret {path} is missing; run `cortex init --home {path.parent.parent}`"
        " to create it",
    )
    if len(data) != SECRET_BYTES:
        raise ConfigError(f"server secret {path} is not {SECRET_BYTES} bytes; restore it")
    return data


def key_digest(secret: bytes, key: str) -> str:
    """`HMAC-SHA256(secret, key)` as lowercase hex: what the key table stores."""
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()


def parse_key_id(key: str) -> str | None:
    """The key id of a well-formed key `ctx_<id>_<secret>`, else None."""
    match = _KEY.match(key)
    return None if match is None else match.group(1)


def _row_to_key(row: tuple[Any, ...]) -> ApiKey:
    key_id, tenant, role, project, created, expires, revoked, agent = row
    created_at = _parse_iso(created)
    assert created_at is not None
    return ApiKey(
        key_id=key_id,
        tenant=tenant,
        role=cast(Role, role),
        project=project,
        created=created_at,
        expires=_parse_iso(expires),
        revoked=_parse_iso(revoked),
        agent=agent,
    )


class KeyStore:
    """The API key table in `<home>/service.db`. Blocking and thread-safe; close when done."""

    def __init__(self, path: Path, secret: bytes) -> None:
        self._secret = secret
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(
                path, timeout=10.0, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.executescript(_SCHEMA)
            columns = {row[1] for row in self._conn.execute("PRAGMA table_info(api_keys)")}
            if "agent" not in columns:
                self._conn.execute(_AGENT_COLUMN)
            self._conn.execute(_AGENT_INDEX)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the key store {path}: {exc}") from exc
        path.chmod(0o600)

    @classmethod
    def open(cls, settings: Settings) -> KeyStore:
        """Open (creating if needed) the key store of an initialised data directory."""
        secret = load_server_secret(settings.server_secret_path)
        return cls(settings.service_database_path, secret)

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> KeyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"the key store failed: {exc}") from exc

    def create(
        self,
        tenant: str,
        role: str,
        *,
        project: str | None = None,
        expires: datetime | None = None,
        agent: str | None = None,
    ) -> IssuedKey:
        """Issue a new key for `tenant` with `role` (and optionally one `project`).

        `agent` binds the key to that agent name: it votes as that agent and every fact it
        stores has that source, and keys not bound to the name cannot use it. Several keys may
        be bound to one agent (to replace a key: issue the new one, then revoke the old).
        """
        check_name("tenant", tenant)
        if agent is not None:
            check_name("agent", agent)
            if agent.startswith("key-"):
                raise ValidationError(
                    f"agent {agent!r}: names starting with 'key-' are the identities of"
                    " unbound keys"
                )
        if role not in ROLES:
            raise ValidationError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        if project is not None:
            check_name("project", project)
        now = datetime.now(UTC).replace(microsecond=0)
        if expires is not None:
            expires = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
            if expires <= now:
                raise ValidationError(f"expires ({_iso(expires)}) must be in the future")
        key_id = secrets.token_hex(8)
        key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(SECRET_BYTES)}"
        record = ApiKey(key_id, tenant, role, project, now, expires, None, agent)
        self._query(
            f"INSERT INTO api_keys ({_COLUMNS}, key_hmac) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key_id,
                tenant,
                role,
                project,
                _iso(now),
                _iso(expires),
                None,
                agent,
                key_digest(self._secret, key),
            ),
        )
        return IssuedKey(key, record)

    def agent_holder(self, tenant: str, agent: str) -> str | None:
        """The id of the key of `tenant` bound to `agent` (revoked or not), or None."""
        rows = self._query(
            "SELECT key_id FROM api_keys WHERE tenant = ? AND agent = ?", (tenant, agent)
        )
        return None if not rows else str(rows[0][0])

    def list_keys(self, tenant: str | None = None) -> list[ApiKey]:
        """Every key of `tenant` (or of all tenants), oldest first."""
        if tenant is None:
            rows = self._query(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created, key_id")
        else:
            rows = self._query(
                f"SELECT {_COLUMNS} FROM api_keys WHERE tenant = ? ORDER BY created, key_id",
                (tenant,),
            )
        return [_row_to_key(row) for row in rows]

    def get(self, key_id: str, *, tenant: str | None = None) -> ApiKey:
        """The record of `key_id` (within `tenant` when given); NotFound otherwise."""
        found = self._lookup(key_id)
        if found is None or (tenant is not None and found[0].tenant != tenant):
            raise NotFound(f"no API key {key_id!r}" + (f" in tenant {tenant!r}" if tenant else ""))
        return found[0]

    def revoke(self, key_id: str, *, tenant: str | None = None) -> ApiKey:
        """Revoke `key_id` (within `tenant` when given) and return its record; idempotent."""
        record = self.get(key_id, tenant=tenant)
        if record.revoked is not None:
            return record
        now = datetime.now(UTC).replace(microsecond=0)
        self._query(
            "UPDATE api_keys SET revoked = ? WHERE key_id = ? AND revoked IS NULL",
            (_iso(now), key_id),
        )
        return self.get(key_id)

    def _lookup(self, key_id: str) -> tuple[ApiKey, str] | None:
        if not _KEY_ID.match(key_id):
            return None
        rows = self._query(f"SELECT {_COLUMNS}, key_hmac FROM api_keys WHERE key_id = ?", (key_id,))
        return None if not rows else (_row_to_key(rows[0][:-1]), rows[0][-1])

    def lookup(self, key_id: str) -> tuple[ApiKey, str] | None:
        """The record and stored HMAC of `key_id`, or None when there is no such key."""
        return self._lookup(key_id)

    def digest(self, key: str) -> str:
        """The HMAC of `key` under this store's server secret."""
        return key_digest(self._secret, key)


class KeyVerifier:
    """Checks presented keys against a KeyStore, with a bounded, short-lived cache of rows."""

    def __init__(
        self,
        store: KeyStore,
        *,
        cache_seconds: float,
        cache_size: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._cache_seconds = cache_seconds
        self._cache_size = cache_size
        self._clock = clock
        self._cache: OrderedDict[str, tuple[ApiKey, str, float]] = OrderedDict()

    def forget(self, key_id: str) -> None:
        """Drop `key_id` from the cache (after revoking it here)."""
        self._cache.pop(key_id, None)

    async def _row(self, key_id: str) -> tuple[ApiKey, str] | None:
        now = self._clock()
        cached = self._cache.get(key_id)
        if cached is not None and now - cached[2] < self._cache_seconds:
            return cached[0], cached[1]
        found = await asyncio.to_thread(self._store.lookup, key_id)
        if found is None:
            self._cache.pop(key_id, None)
            return None
        if self._cache_seconds > 0:
            self._cache[key_id] = (found[0], found[1], now)
            self._cache.move_to_end(key_id)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return found

    async def verify(self, key: str) -> ApiKey:
        """The record of `key` if it is well formed, known, matches, and is neither revoked nor
        expired; Unauthorized otherwise (unknown and wrong keys get the same answer)."""
        key_id = parse_key_id(key)
        if key_id is None:
            raise Unauthorized("malformed API key: expected 'ctx_<key id>_<secret>'")
        found = await self._row(key_id)
        digest = self._store.digest(key)
        expected = _NO_DIGEST if found is None else found[1]
        if not hmac.compare_digest(digest, expected) or found is None:
            raise Unauthorized("invalid API key")
        record = found[0]
        state = record.state(datetime.now(UTC))
        if state != "active":
            raise Unauthorized(f"API key {record.key_id} is {state}")
        return record


def own_agent(key: ApiKey, requested: str | None) -> str:
    """The agent a vote by `key` is cast as: always the key's identity (its bound agent, else
    `key-<key id>`); Forbidden when `requested` names anyone else."""
    if requested is not None and requested != key.identity:
        raise Forbidden(
            f"API key {key.key_id} votes as {key.identity!r}, not {requested!r}: a vote's agent"
            " is the key's identity (bind a key to an agent with `cortex keys create --agent`)"
        )
    return key.identity


async def claim_agent(store: KeyStore, key: ApiKey, requested: str | None, what: str) -> str | None:
    """The agent name a write by `key` may record as `what` (a fact's source, an actor).

    A key bound to an agent records that agent (None asked -> the agent; another name ->
    Forbidden). An unbound key may record no name, its own `key-<id>`, or any name that is
    neither another key's identity nor bound to some key of the tenant: so the facts and votes
    that build an agent's reputation can only come through that agent's keys.
    """
    if key.agent is not None:
        if requested is not None and requested != key.agent:
            raise Forbidden(
                f"API key {key.key_id} is bound to agent {key.agent!r}; it cannot record"
                f" {requested!r} as {what}"
            )
        return key.agent
    if requested is None or requested == key.identity:
        return requested
    if requested.startswith("key-"):
        raise Forbidden(f"{what} {requested!r} is another API key's identity")
    holder = await asyncio.to_thread(store.agent_holder, key.tenant, requested)
    if holder is not None:
        raise Forbidden(
            f"{what} {requested!r} is an agent bound to API key {holder}; only keys bound to"
            " it may record it"
        )
    return requested
