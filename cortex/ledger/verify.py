"""Streaming ledger verification: recompute chain, tree and fact digests; report every problem.

`TenantVerifier` consumes one tenant's ledger rows in `seq` order (each joined with the fact it
created, if any) and, optionally, the stored Merkle subtree hashes in completion order. It keeps
O(log n) state for the tree plus a bounded window for recognising reordered entries, and it never
stops at the first problem. It is pure: the store (or an export reader) feeds it rows.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cortex.canonical import (
    ZERO_HASH,
    encode_json_string,
    entry_bytes,
    fact_record_bytes,
    sha256,
)
from cortex.errors import IntegrityError
from cortex.ledger.chain import chain_hash
from cortex.ledger.checkpoint import key_id, verify_checkpoint_signature
from cortex.ledger.merkle import node_hash
from cortex.model import Checkpoint, Problem, ProblemKind

__all__ = [
    "FACT_OPS",
    "LedgerRow",
    "TenantVerifier",
    "checkpoint_problems",
    "head_problems",
    "opened_fact_digest",
    "stored_fact_digest",
]

FACT_OPS = frozenset({"store", "supersede"})
_REORDER_WINDOW = 4096


def stored_fact_digest(
    tenant: str, row: Sequence[Any], *, content: str | None = None, meta_json: str | None = None
) -> bytes | None:
    """The digest of the fact stored with a ledger row, recomputed from its columns.

    Both stores' verification scans select, after the nine transaction columns, the fact's id,
    project, content, fact_type, tags_json, source, confidence, valid_from, valid_until,
    supersedes, created_at and meta_json (columns 9-20), then its data key version (21); None
    when the entry has no fact. For an encrypted row, `content` and `meta_json` pass the
    plaintext of those sealed columns: the digest covers the plaintext.
    """
    fact_id = row[9]
    if fact_id is None:
        return None
    return sha256(
        fact_record_bytes(
            id=fact_id,
            tenant=tenant,
            project=row[10],
            content=row[11] if content is None else content,
            fact_type=row[12],
            tags_json=row[13],
            source=row[14],
            confidence=row[15],
            valid_from=row[16],
            valid_until=row[17],
            supersedes=row[18],
            created_at=row[19],
            meta_json=row[20] if meta_json is None else meta_json,
        )
    )


# The digest reported for a sealed row that does not decrypt: it matches no logged digest, so
# the entry is reported as `content_changed`.
UNREADABLE_DIGEST = b"\x00" * 32


def opened_fact_digest(
    tenant: str,
    row: Sequence[Any],
    open_fields: Callable[[str, str, int | None, str, str], tuple[str, str]],
) -> bytes | None:
    """`stored_fact_digest` of a row of an encrypted store, decrypted by `open_fields`.

    `open_fields(tenant, fact_id, key_version, content, meta_json)` returns the plaintext; a
    row that fails to decrypt (altered or moved ciphertext, a row stored in the clear) gets
    `UNREADABLE_DIGEST`.
    """
    if row[9] is None:
        return None
    try:
        content, meta_json = open_fields(tenant, row[9], row[21], row[11], row[20])
    except IntegrityError:
        return UNREADABLE_DIGEST
    return stored_fact_digest(tenant, row, content=content, meta_json=meta_json)


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """One stored transaction as read back, with the fact whose `seq` it is (if any).

    `fact_id` and `fact_digest` describe the stored fact row that claims this `seq`: its id and
    the SHA-256 of its canonical record as stored now (None when no fact claims the seq).
    `purged`: that fact is marked purged, so its digest cannot be recomputed; the store checks
    instead that a `purge` entry stands for the mark.
    """

    seq: int
    op: str
    subject: str | None
    actor: str | None
    ts: str
    payload: str
    payload_digest: bytes
    prev_hash: bytes
    hash: bytes
    fact_id: str | None
    fact_digest: bytes | None
    purged: bool = False


_sha256 = hashlib.sha256


def _jstr(value: str | None) -> str:
    return "null" if value is None else encode_json_string(value)


_DIGEST_PREFIX = '{"fact_digest":"'


def _logged_fact_digest(payload: str) -> bytes | None:
    """The `fact_digest` a store/supersede payload logged (its canonical text starts with it)."""
    try:
        if payload.startswith(_DIGEST_PREFIX) and payload[80] == '"':
            return bytes.fromhex(payload[16:80])
        return bytes.fromhex(json.loads(payload)["fact_digest"])
    except (ValueError, KeyError, TypeError, IndexError):
        return None


@dataclass(slots=True)
class _Node:
    level: int
    index: int
    hash: bytes
    tainted: bool


@dataclass(slots=True)
class TenantVerifier:
    """Verifies one tenant's ledger as its rows stream past. Call `feed` per row, then `finish`."""

    tenant: str
    wanted_sizes: frozenset[int] = frozenset()
    stored_nodes: Iterator[tuple[int, int, bytes]] | None = None
    max_problems: int = 10_000
    start_seq: int = 0
    start_prev_hash: bytes = ZERO_HASH
    start_frontier: tuple[tuple[int, int, bytes, bool], ...] = ()
    problems: list[Problem] = field(default_factory=list)
    truncated: bool = False
    entries: int = 0
    facts: int = 0
    purged: int = 0
    _position: int = 0
    _prev_hash: bytes = ZERO_HASH
    _frontier: list[_Node] = field(default_factory=list)
    roots: dict[int, bytes] = field(default_factory=dict)
    # The last _REORDER_WINDOW entries' (stored hash, logged seq), a ring indexed by seq.
    _recent: list[tuple[bytes, int] | None] = field(
        default_factory=lambda: [None] * _REORDER_WINDOW
    )
    _tenant_json: str = ""
    _suspects: OrderedDict[bytes, tuple[int, LedgerRow]] = field(default_factory=OrderedDict)
    _next_stored: tuple[int, int, bytes] | None = None

    def __post_init__(self) -> None:
        self._tenant_json = _jstr(self.tenant)
        self._position = self.start_seq
        self._prev_hash = self.start_prev_hash
        self._frontier = [_Node(*node) for node in self.start_frontier]
        if self.start_seq == 0 and 0 in self.wanted_sizes:
            self.roots[0] = sha256(b"")
        if self.stored_nodes is not None:
            self._next_stored = next(self.stored_nodes, None)

    def _report(self, seq: int | None, kind: ProblemKind, detail: str) -> None:
        if len(self.problems) >= self.max_problems:
            self.truncated = True
            return
        self.problems.append(Problem(self.tenant, seq, kind, detail))

    def feed(self, row: LedgerRow) -> None:
        """Check one transaction row (rows must arrive in ascending `seq` order)."""
        while self._position < row.seq:  # rows absent from the table
            self._report(self._position, "entry_missing", "no transaction is stored at this seq")
            self._append_leaf(None)
        if row.seq < self._position:
            self._report(row.seq, "entries_reordered", "seq repeats or goes backwards")
            return
        self.entries += 1
        # The entry bytes, as cortex.canonical.entry_bytes builds them (inlined: this runs once
        # per ledger entry and dominates verification time).
        entry = (
            f'{{"actor":{_jstr(row.actor)},"op":{_jstr(row.op)},'
            f'"payload_digest":"{row.payload_digest.hex()}","prev_hash":"{row.prev_hash.hex()}",'
            f'"seq":{row.seq},"subject":{_jstr(row.subject)},"tenant":{self._tenant_json},'
            f'"ts":"{row.ts}"}}'
        ).encode()
        bad = False
        origin = row.seq  # the seq this row's content was logged at
        if _sha256(row.prev_hash + _sha256(entry).digest()).digest() != row.hash:
            bad = True
            self._suspects[row.prev_hash] = (row.seq, row)
            if len(self._suspects) > _REORDER_WINDOW:
                self._suspects.popitem(last=False)
            moved_from = self._reordered_origin(row)
            if moved_from is not None:
                origin = moved_from
                self._report(
                    row.seq,
                    "entries_reordered",
                    f"holds the entry that was logged as seq {moved_from}",
                )
            else:
                self._report(row.seq, "entry_altered", "stored hash does not match the entry")
        elif row.prev_hash != self._prev_hash:
            bad = True
            self._report(row.seq, "chain_broken", "prev_hash does not link to the previous entry")
        if self._suspects:
            self._resolve_suspect(row, origin)
        self._recent[row.seq % _REORDER_WINDOW] = (row.hash, origin)
        if not bad and _sha256(row.payload.encode()).digest() != row.payload_digest:
            bad = True
            self._report(row.seq, "payload_changed", "payload does not match payload_digest")
        if row.op in FACT_OPS or row.fact_id is not None:
            bad = self._check_fact(row) or bad
        self._prev_hash = row.hash
        self._append_leaf(_sha256(b"\x00" + entry).digest(), tainted=bad)

    def _reordered_origin(self, row: LedgerRow) -> int | None:
        """The seq this row's content was logged at, if it links into the chain elsewhere."""
        origin = next((o for h, o in filter(None, self._recent) if h == row.prev_hash), None)
        if origin is None:
            return None
        candidate = origin + 1
        if candidate == row.seq:
            return None
        return candidate if self._logged_at(row, candidate) else None

    def _logged_at(self, row: LedgerRow, seq: int) -> bool:
        """True when `row`'s stored hash is that of its fields logged at `seq`."""
        entry = entry_bytes(
            tenant=self.tenant,
            seq=seq,
            op=row.op,
            subject=row.subject,
            actor=row.actor,
            ts=row.ts,
            payload_digest=row.payload_digest.hex(),
            prev_hash=row.prev_hash.hex(),
        )
        return chain_hash(row.prev_hash, entry) == row.hash

    def _resolve_suspect(self, row: LedgerRow, origin: int) -> None:
        """An earlier bad row whose prev_hash is this row's hash was moved before it."""
        suspect = self._suspects.pop(row.hash, None)
        if suspect is None:
            return
        seq, moved = suspect
        candidate = origin + 1
        if self._logged_at(moved, candidate):
            for i, problem in enumerate(self.problems):
                if problem.seq == seq and problem.kind == "entry_altered":
                    self.problems[i] = Problem(
                        self.tenant,
                        seq,
                        "entries_reordered",
                        f"holds the entry that was logged as seq {candidate}",
                    )
                    break

    def _check_fact(self, row: LedgerRow) -> bool:
        if row.op not in FACT_OPS:
            if row.fact_id is not None:
                self._report(row.seq, "fact_unlogged", f"fact {row.fact_id} claims this seq")
                return True
            return False
        if row.fact_id is None or row.fact_digest is None:
            self._report(row.seq, "fact_missing", f"fact {row.subject} is missing from the store")
            return True
        self.facts += 1
        if row.fact_id != row.subject:
            self._report(
                row.seq, "fact_missing", f"seq belongs to fact {row.subject}, found {row.fact_id}"
            )
            return True
        logged = _logged_fact_digest(row.payload)
        if logged is None:
            self._report(row.seq, "payload_changed", "payload has no readable fact_digest")
            return True
        if row.purged:
            self.purged += 1  # content destroyed: the store checks its purge entry instead
            return False
        if row.fact_digest != logged:
            self._report(
                row.seq, "content_changed", f"fact {row.fact_id} differs from what was logged"
            )
            return True
        return False

    def _append_leaf(self, leaf: bytes | None, *, tainted: bool = False) -> None:
        """Add leaf number `_position` to the tree; a missing leaf taints every node above it."""
        index = self._position
        node = _Node(0, index, leaf if leaf is not None else ZERO_HASH, tainted or leaf is None)
        self._compare_stored(node)
        while node.index & 1:
            left = self._frontier.pop()
            node = _Node(
                node.level + 1,
                node.index >> 1,
                _sha256(b"\x01" + left.hash + node.hash).digest(),
                left.tainted or node.tainted,
            )
            self._compare_stored(node)
        self._frontier.append(node)
        self._position += 1
        if self._position in self.wanted_sizes:
            self.roots[self._position] = self._root()

    def _root(self) -> bytes:
        root = self._frontier[-1].hash
        for node in reversed(self._frontier[:-1]):
            root = node_hash(node.hash, root)
        return root

    def _compare_stored(self, node: _Node) -> None:
        if self.stored_nodes is None:
            return
        key = (((node.index + 1) << node.level) - 1, node.level)
        stored = self._next_stored
        if stored is not None and stored[0] == key[0] and stored[1] == key[1]:
            # The common case: the next stored node is this one.
            self._next_stored = next(self.stored_nodes, None)
            if stored[2] != node.hash and not node.tainted:
                self._report(
                    key[0],
                    "tree_node_mismatch",
                    f"stored subtree hash at level {node.level} differs",
                )
            return
        while self._next_stored is not None and self._next_stored[:2] < key:
            last_leaf, level, _ = self._next_stored
            self._report(last_leaf, "tree_node_mismatch", f"stray stored node at level {level}")
            self._next_stored = next(self.stored_nodes, None)
        if self._next_stored is None or self._next_stored[:2] != key:
            if not node.tainted:
                self._report(
                    key[0], "tree_node_mismatch", f"stored node at level {node.level} is missing"
                )
            return
        stored = self._next_stored
        self._next_stored = next(self.stored_nodes, None)
        if stored[2] != node.hash and not node.tainted:
            self._report(
                key[0], "tree_node_mismatch", f"stored subtree hash at level {node.level} differs"
            )

    @property
    def position(self) -> int:
        """The next seq this verifier expects (the tree size verified so far)."""
        return self._position

    @property
    def last_hash(self) -> bytes:
        """The stored hash of the last entry fed (the chain head so far)."""
        return self._prev_hash

    @property
    def frontier(self) -> tuple[tuple[int, int, bytes, bool], ...]:
        """The recomputed right edge of the tree: (level, index, hash, tainted) per subtree."""
        return tuple((n.level, n.index, n.hash, n.tainted) for n in self._frontier)

    def close_range(self, stop_seq: int) -> None:
        """Declare that no rows below `stop_seq` remain: absent ones are missing entries."""
        while self._position < stop_seq:
            self._report(self._position, "entry_missing", "no transaction is stored at this seq")
            self._append_leaf(None)
        if self.stored_nodes is not None:
            while self._next_stored is not None:
                last_leaf, level, _ = self._next_stored
                self._report(last_leaf, "tree_node_mismatch", f"stray stored node at level {level}")
                self._next_stored = next(self.stored_nodes, None)


def head_problems(
    tenant: str, size: int, last_hash: bytes, next_seq: int, head_hash: bytes
) -> list[Problem]:
    """Compare the ledger as verified (`size` entries ending in `last_hash`) with its head row."""
    if size > next_seq:
        return [
            Problem(
                tenant,
                next_seq,
                "head_mismatch",
                f"ledger has {size} entries, head says {next_seq}",
            )
        ]
    if size and head_hash != last_hash:
        return [Problem(tenant, size - 1, "head_mismatch", "head hash differs from the last entry")]
    return []


def checkpoint_problems(
    tenant: str,
    checkpoints: Sequence[Checkpoint],
    public_keys: Sequence[Ed25519PublicKey],
    roots: dict[int, bytes],
    size: int,
) -> list[Problem]:
    """Check every checkpoint's signature, and its root against the recomputed `roots`."""
    problems = []
    keys = {key_id(k): k for k in public_keys}
    for cp in checkpoints:
        where = cp.tree_size - 1 if cp.tree_size else None
        public_key = keys.get(cp.key_id)
        if public_key is None or not verify_checkpoint_signature(public_key, cp):
            problems.append(
                Problem(
                    tenant,
                    where,
                    "checkpoint_signature_invalid",
                    f"checkpoint of size {cp.tree_size}: signature does not verify"
                    + ("" if public_key else f" (unknown key {cp.key_id})"),
                )
            )
        recomputed = roots.get(cp.tree_size)
        if recomputed is None:
            problems.append(
                Problem(
                    tenant,
                    where,
                    "root_mismatch",
                    f"checkpoint of size {cp.tree_size} is beyond the ledger ({size})",
                )
            )
        elif recomputed != cp.root:
            problems.append(
                Problem(
                    tenant,
                    where,
                    "root_mismatch",
                    f"checkpoint of size {cp.tree_size}: signed root differs from the ledger's",
                )
            )
    return problems
