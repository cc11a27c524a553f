"""The embedded SQLite backend (default)."""

from cortex.store.sqlite.store import Signer, SqliteStore

__all__ = ["Signer", "SqliteStore"]
