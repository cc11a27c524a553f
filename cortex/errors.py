"""The CORTEX error tree: every failure a caller can act on is a `CortexError` subclass.

Interfaces map these classes to exit codes, HTTP statuses and MCP errors in one place each;
code inside the package raises the most specific class with a message a user can act on.
"""

from __future__ import annotations

__all__ = [
    "ApprovalDenied",
    "ApprovalExpired",
    "ApprovalForeignTenant",
    "ApprovalInvalid",
    "ApprovalMismatch",
    "ApprovalReplayed",
    "ApprovalRequired",
    "ConfigError",
    "Conflict",
    "CortexError",
    "DecryptionError",
    "Forbidden",
    "GateFull",
    "IntegrityError",
    "NotFound",
    "Overloaded",
    "RateLimited",
    "SearchDisabled",
    "ShieldBlocked",
    "StoreClosed",
    "StoreError",
    "StoreUnavailable",
    "Unauthorized",
    "ValidationError",
    "WriterCrashed",
    "WrongKey",
]


class CortexError(Exception):
    """Root of every error CORTEX raises on purpose."""


class ValidationError(CortexError, ValueError):
    """Input that CORTEX refuses: a bad field, an impossible range, a malformed line."""


class NotFound(CortexError, LookupError):
    """The fact, transaction, tenant or checkpoint asked for does not exist (for this tenant)."""


class Conflict(CortexError):
    """The request is valid but contradicts current state (e.g. deprecating a deprecated fact)."""


class ConfigError(CortexError):
    """Settings or the data directory are missing, malformed or inconsistent."""


class IntegrityError(CortexError):
    """Stored data failed an integrity check (hash, signature, proof)."""


class WrongKey(ConfigError):
    """The master key (key file or passphrase) given is not the one this encrypted store uses."""


class DecryptionError(IntegrityError):
    """A sealed field of fact `fact_id` does not decrypt: altered, or moved from another row."""

    def __init__(self, message: str, *, fact_id: str, field: str) -> None:
        super().__init__(message)
        self.fact_id = fact_id
        self.field = field


class SearchDisabled(Conflict):
    """Search is switched off for this encrypted store (`encrypted_search`)."""


class StoreError(CortexError):
    """The storage backend failed (disk, corruption, lock); no change of input fixes it."""


class StoreClosed(StoreError):
    """The engine or store was used after `close()`/`aclose()`."""


class StoreUnavailable(StoreError):
    """The database server cannot be reached right now (down, restarting, network); retry."""


class Overloaded(CortexError):
    """The write queue stayed full longer than the configured timeout; retry later."""

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class WriterCrashed(StoreError):
    """The writer died while this write was pending; the write was not acknowledged."""


class Unauthorized(CortexError):
    """No valid API key: missing, malformed, unknown, revoked or expired."""


class Forbidden(CortexError):
    """The API key is valid but its role or scope does not allow this request."""


class RateLimited(CortexError):
    """Too many requests for this API key or client address; retry after `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ShieldBlocked(CortexError):
    """The privacy shield's policy blocks a write that holds a secret or personal data.

    Says what and where, never the value: `kind` (e.g. `aws_access_key`), `category` (`secret`
    or `pii`), `field` (`content`, `tags[0]`, `meta.db.password`), the character offsets
    `start`/`end` and 1-based `line`/`column` in that field, and `item` (the index in a batch).
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        category: str,
        field: str,
        start: int,
        end: int,
        line: int,
        column: int,
        item: int | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.category = category
        self.field = field
        self.start = start
        self.end = end
        self.line = line
        self.column = column
        self.item = item


# ---- approval gate (cortex/gate): a risky action waits for an admin's signed yes


class ApprovalRequired(CortexError):
    """A declared risky action did not run: it waits for an admin's approval.

    `approval_id` names the pending approval (`cortex gate approve ID --tenant TENANT`); re-run
    the action with the token the approval returns. `expires_at` (RFC 3339) is when the
    approval lapses; `tenant` is the tenant it belongs to (None when not known).
    """

    def __init__(
        self,
        message: str,
        *,
        approval_id: str,
        action: str,
        expires_at: str,
        tenant: str | None = None,
    ) -> None:
        super().__init__(message)
        self.approval_id = approval_id
        self.action = action
        self.expires_at = expires_at
        self.tenant = tenant


class GateFull(Conflict):
    """The tenant has as many pending approvals as `gate_max_pending` allows."""


class ApprovalInvalid(Forbidden):
    """The approval token is malformed, forged or altered (its signature does not verify)."""


class ApprovalForeignTenant(ApprovalInvalid):
    """The approval token was issued for another tenant."""


class ApprovalMismatch(ApprovalInvalid):
    """The approval token allows another action, or the same action with other parameters."""


class ApprovalExpired(Forbidden):
    """The approval (or its token) expired before it was decided or used."""


class ApprovalDenied(Forbidden):
    """An admin denied this approval: its action may not run."""


class ApprovalReplayed(Conflict):
    """The approval token was already used: each token runs its action once."""
