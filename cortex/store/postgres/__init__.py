"""The PostgreSQL backend (scale-out: several servers on one database; pgvector for vectors)."""

from cortex.store.postgres.store import PostgresStore, is_database_url, redact_url

__all__ = ["PostgresStore", "is_database_url", "redact_url"]
