"""The ledger: hash chain, RFC 9162 Merkle tree and proofs, signed checkpoints, verification."""

from cortex.ledger.chain import build_transaction, chain_hash, transaction_entry
from cortex.ledger.checkpoint import checkpoint_text, sign_checkpoint, verify_checkpoint_signature
from cortex.ledger.merkle import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    merkle_root,
    node_hash,
    verify_consistency,
    verify_inclusion,
)
from cortex.ledger.verify import LedgerRow, TenantVerifier

__all__ = [
    "LedgerRow",
    "TenantVerifier",
    "build_transaction",
    "chain_hash",
    "checkpoint_text",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "merkle_root",
    "node_hash",
    "sign_checkpoint",
    "transaction_entry",
    "verify_checkpoint_signature",
    "verify_consistency",
    "verify_inclusion",
]
