"""CORTEX: a local-first, tamper-evident memory engine for AI agents.

import cortex
with cortex.connect("~/.cortex") as memory:
    fact = memory.store("The staging database moved to db-2", project="infra")
    proof = memory.inclusion_proof(fact.id)
"""

from cortex.config import Settings
from cortex.engine import Cortex, CortexSync, connect, init_home, open, verify_export
from cortex.errors import (
    ConfigError,
    Conflict,
    CortexError,
    Forbidden,
    IntegrityError,
    NotFound,
    Overloaded,
    RateLimited,
    ShieldBlocked,
    StoreClosed,
    StoreError,
    Unauthorized,
    ValidationError,
    WriterCrashed,
)
from cortex.model import (
    Checkpoint,
    ConsistencyProof,
    Fact,
    FactDraft,
    FactVersion,
    InclusionProof,
    Page,
    Problem,
    Stats,
    Transaction,
    VerifyReport,
)

__all__ = [
    "Checkpoint",
    "ConfigError",
    "Conflict",
    "ConsistencyProof",
    "Cortex",
    "CortexError",
    "CortexSync",
    "Fact",
    "FactDraft",
    "FactVersion",
    "Forbidden",
    "InclusionProof",
    "IntegrityError",
    "NotFound",
    "Overloaded",
    "Page",
    "Problem",
    "RateLimited",
    "Settings",
    "ShieldBlocked",
    "Stats",
    "StoreClosed",
    "StoreError",
    "Transaction",
    "Unauthorized",
    "ValidationError",
    "VerifyReport",
    "WriterCrashed",
    "connect",
    "init_home",
    "open",
    "verify_export",
]
