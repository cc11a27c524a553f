"""The embedded SQLite backend (default)."""

from cortex.store.sqlite.store import Signer, SqliteStore, open_for_reading

__all__ = ["Signer", "SqliteStore", "open_for_reading"]
