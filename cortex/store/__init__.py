"""Storage: the `Store` protocol, write requests, the group-commit writer, and backends."""

from cortex.store.base import (
    Deprecate,
    ListFilter,
    MakeCheckpoint,
    Store,
    StoreFacts,
    Supersede,
    WriteOutcome,
    WriteRequest,
)
from cortex.store.writer import GroupCommitWriter

__all__ = [
    "Deprecate",
    "GroupCommitWriter",
    "ListFilter",
    "MakeCheckpoint",
    "Store",
    "StoreFacts",
    "Supersede",
    "WriteOutcome",
    "WriteRequest",
]
