"""The hash chain: how one ledger entry is built and linked to the previous one. Pure.

`hash = SHA-256(prev_hash || SHA-256(entry))`, where `entry` is the RFC 8785 canonical encoding
of the transaction without its hash (see `cortex.canonical.entry_bytes`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cortex.canonical import canonical_record, entry_bytes, sha256
from cortex.model import Transaction

__all__ = ["build_transaction", "chain_hash", "link_entry", "transaction_entry"]


def chain_hash(prev_hash: bytes, entry: bytes) -> bytes:
    """Return the chain link of an entry: SHA-256(prev_hash || SHA-256(entry))."""
    return sha256(prev_hash + sha256(entry))


def transaction_entry(tx: Transaction) -> bytes:
    """Return the canonical entry bytes of `tx` (all fields but its hash and its payload body)."""
    return entry_bytes(
        tenant=tx.tenant,
        seq=tx.seq,
        op=tx.op,
        subject=tx.subject,
        actor=tx.actor,
        ts=tx.ts,
        payload_digest=tx.payload_digest.hex(),
        prev_hash=tx.prev_hash.hex(),
    )


def build_transaction(
    *,
    tenant: str,
    seq: int,
    op: str,
    subject: str | None,
    actor: str | None,
    ts: str,
    payload: Mapping[str, Any],
    prev_hash: bytes,
    payload_bytes: bytes | None = None,
) -> tuple[Transaction, bytes, bytes]:
    """Return the new transaction, its entry bytes and its canonical payload bytes.

    `payload_bytes`, when given, must be the canonical JSON of `payload` (a caller that builds
    it directly saves the encoding).
    """
    if payload_bytes is None:
        payload_bytes = canonical_record(payload)
    payload_digest = sha256(payload_bytes)
    entry, tx_hash = link_entry(
        tenant=tenant,
        seq=seq,
        op=op,
        subject=subject,
        actor=actor,
        ts=ts,
        payload_digest=payload_digest,
        prev_hash=prev_hash,
    )
    tx = Transaction(
        tenant=tenant,
        seq=seq,
        op=op,
        subject=subject,
        actor=actor,
        ts=ts,
        payload=payload,
        payload_digest=payload_digest,
        prev_hash=prev_hash,
        hash=tx_hash,
    )
    return tx, entry, payload_bytes


def link_entry(
    *,
    tenant: str,
    seq: int,
    op: str,
    subject: str | None,
    actor: str | None,
    ts: str,
    payload_digest: bytes,
    prev_hash: bytes,
) -> tuple[bytes, bytes]:
    """The entry bytes and chain hash of a transaction whose payload has `payload_digest`
    (`build_transaction` without the `Transaction` object, for stores that write its row)."""
    entry = entry_bytes(
        tenant=tenant,
        seq=seq,
        op=op,
        subject=subject,
        actor=actor,
        ts=ts,
        payload_digest=payload_digest.hex(),
        prev_hash=prev_hash.hex(),
    )
    return entry, chain_hash(prev_hash, entry)
