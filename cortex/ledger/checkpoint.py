"""Signed checkpoints: the text a checkpoint signs and the Ed25519 sign/verify of it. Pure.

The signed text is line-oriented like transparency-log checkpoints (C2SP tlog-checkpoint):

    cortex-checkpoint/v1
    <tenant>
    <tree size, decimal>
    <root, lowercase hex>
    <timestamp, RFC 3339 UTC>

Tenant names cannot contain line breaks (see `cortex.model.check_name`), so the text is unambiguous.
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from cortex.model import Checkpoint

__all__ = ["checkpoint_text", "key_id", "sign_checkpoint", "verify_checkpoint_signature"]

_HEADER = "cortex-checkpoint/v1"


def checkpoint_text(tenant: str, tree_size: int, root: bytes, ts: str) -> bytes:
    """Return the exact bytes a checkpoint signature covers."""
    return f"{_HEADER}\n{tenant}\n{tree_size}\n{root.hex()}\n{ts}\n".encode()


def key_id(public_key: Ed25519PublicKey) -> str:
    """Return a public key's short stable id: 16 hex digits of SHA-256 of its raw bytes."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign_checkpoint(
    private_key: Ed25519PrivateKey, tenant: str, tree_size: int, root: bytes, ts: str
) -> Checkpoint:
    """Return a checkpoint of (`tenant`, `tree_size`, `root`, `ts`) signed with `private_key`."""
    signature = private_key.sign(checkpoint_text(tenant, tree_size, root, ts))
    return Checkpoint(
        tenant=tenant,
        tree_size=tree_size,
        root=root,
        ts=ts,
        signature=signature,
        key_id=key_id(private_key.public_key()),
    )


def verify_checkpoint_signature(public_key: Ed25519PublicKey, checkpoint: Checkpoint) -> bool:
    """Return True when `checkpoint.signature` is valid for its text under `public_key`."""
    text = checkpoint_text(checkpoint.tenant, checkpoint.tree_size, checkpoint.root, checkpoint.ts)
    try:
        public_key.verify(checkpoint.signature, text)
    except InvalidSignature:
        return False
    return True
