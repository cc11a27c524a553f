"""Values that flow through CORTEX: facts, ledger transactions, checkpoints, proofs, reports.

All are frozen dataclasses with no behaviour beyond derived properties and plain conversions;
they carry no I/O and no references to engines or stores.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from cortex.canonical import canonical_text, fact_record_bytes, sha256, to_micros
from cortex.errors import ValidationError

__all__ = [
    "MAX_CONTENT_BYTES",
    "Checkpoint",
    "ConsistencyProof",
    "Fact",
    "FactDraft",
    "FactStatus",
    "FactVersion",
    "InclusionProof",
    "Page",
    "Problem",
    "ProblemKind",
    "SearchHit",
    "Stats",
    "Transaction",
    "VerifyReport",
    "check_name",
]

MAX_CONTENT_BYTES = 1_048_576
MAX_TAGS = 64
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_TAG = re.compile(r"^[^\s,][^,\n\r\t]{0,63}$")

FactStatus = Literal["active", "deprecated", "superseded", "purged"]
ProblemKind = Literal[
    "content_changed",
    "entry_altered",
    "entry_missing",
    "entries_reordered",
    "chain_broken",
    "payload_changed",
    "state_changed",
    "fact_missing",
    "fact_unlogged",
    "tree_node_mismatch",
    "root_mismatch",
    "checkpoint_signature_invalid",
    "head_mismatch",
]


def check_name(kind: str, value: object) -> str:
    """Return `value` if it is a valid tenant/project/source name, else raise ValidationError."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValidationError(
            f"{kind} {value!r} is invalid: use 1-64 characters of letters, digits, '.', '_' or '-',"
            " starting with a letter or digit"
        )
    return value


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


@dataclass(frozen=True, slots=True)
class FactDraft:
    """A fact as a caller asks for it to be stored: validated, not yet identified or logged."""

    content: str
    project: str = "default"
    fact_type: str = "knowledge"
    tags: tuple[str, ...] = ()
    source: str | None = None
    confidence: float | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    # Canonical JSON text of `tags` and `meta`, computed once while validating.
    tags_json: str = field(init=False, repr=False, compare=False)
    meta_json: str = field(init=False, repr=False, compare=False)

    def as_fact(
        self,
        *,
        fact_id: str,
        tenant: str,
        created: datetime,
        seq: int,
        supersedes: str | None = None,
    ) -> Fact:
        """The fact this draft becomes when stored as `fact_id` at `created`, entry `seq`."""
        return Fact(
            id=fact_id,
            tenant=tenant,
            project=self.project,
            content=self.content,
            fact_type=self.fact_type,
            tags=self.tags,
            source=self.source,
            confidence=self.confidence,
            valid_from=self.valid_from or created,
            valid_until=self.valid_until,
            supersedes=supersedes,
            created_at=created,
            meta=dict(self.meta),
            seq=seq,
        )

    def digest(
        self, *, fact_id: str, tenant: str, created_at: int, supersedes: str | None = None
    ) -> bytes:
        """SHA-256 of the canonical record of the fact this draft becomes as `fact_id` at
        `created_at` (microseconds): the same bytes as `as_fact(...).digest()`, from the
        draft's canonical tags and meta text (what the stores log)."""
        return sha256(
            fact_record_bytes(
                id=fact_id,
                tenant=tenant,
                project=self.project,
                content=self.content,
                fact_type=self.fact_type,
                tags_json=self.tags_json,
                source=self.source,
                confidence=self.confidence,
                valid_from=created_at if self.valid_from is None else to_micros(self.valid_from),
                valid_until=None if self.valid_until is None else to_micros(self.valid_until),
                supersedes=supersedes,
                created_at=created_at,
                meta_json=self.meta_json,
            )
        )

    def __post_init__(self) -> None:
        if not isinstance(self.content, str) or not self.content.strip():
            raise ValidationError("content must be a non-empty string")
        if self.content.isascii():
            size = len(self.content)
        else:
            try:
                size = len(self.content.encode("utf-8"))
            except UnicodeEncodeError:
                raise ValidationError("content is not valid Unicode (lone surrogate)") from None
        if size > MAX_CONTENT_BYTES:
            raise ValidationError(
                f"content is {size} bytes; the limit is {MAX_CONTENT_BYTES} bytes per fact"
            )
        check_name("project", self.project)
        check_name("fact_type", self.fact_type)
        if self.source is not None:
            check_name("source", self.source)
        tags = self.tags
        if type(tags) is not tuple and (isinstance(tags, str) or not isinstance(tags, Sequence)):
            raise ValidationError("tags must be a list of strings")
        if tags:
            if len(tags) > MAX_TAGS:
                raise ValidationError(f"at most {MAX_TAGS} tags per fact, got {len(tags)}")
            for tag in tags:
                if (
                    not isinstance(tag, str)
                    or not _TAG.match(tag)
                    or (not tag.isascii() and _has_lone_surrogate(tag))
                ):
                    raise ValidationError(
                        f"tag {tag!r} is invalid: 1-64 characters, no commas or line breaks"
                    )
            tags = tuple(sorted(set(tags)))
            object.__setattr__(self, "tags", tags)
            object.__setattr__(self, "tags_json", canonical_text(tags))
        else:
            object.__setattr__(self, "tags", ())
            object.__setattr__(self, "tags_json", "[]")
        if self.confidence is not None:
            if isinstance(self.confidence, bool) or not isinstance(self.confidence, int | float):
                raise ValidationError("confidence must be a number between 0 and 1")
            if not 0.0 <= float(self.confidence) <= 1.0:
                raise ValidationError(f"confidence must be between 0 and 1, got {self.confidence}")
            object.__setattr__(self, "confidence", float(self.confidence))
        if self.valid_from is not None or self.valid_until is not None:
            for name in ("valid_from", "valid_until"):
                value = getattr(self, name)
                if value is not None and not isinstance(value, datetime):
                    raise ValidationError(f"{name} must be a datetime")
            if (
                self.valid_from is not None
                and self.valid_until is not None
                and to_micros(self.valid_until) <= to_micros(self.valid_from)
            ):
                raise ValidationError("valid_until must be later than valid_from")
        meta = self.meta
        if type(meta) is not dict:
            if not isinstance(meta, Mapping):
                raise ValidationError("meta must be a JSON object")
            meta = dict(meta)
        # canonical_text raises ValidationError when meta has no canonical form
        object.__setattr__(self, "meta_json", canonical_text(meta) if meta else "{}")


@dataclass(frozen=True, slots=True)
class Fact:
    """A stored fact with its ledger position and current record state."""

    id: str
    tenant: str
    project: str
    content: str
    fact_type: str
    tags: tuple[str, ...]
    source: str | None
    confidence: float | None
    valid_from: datetime
    valid_until: datetime | None
    supersedes: str | None
    created_at: datetime
    meta: Mapping[str, Any]
    seq: int
    deprecated_at: datetime | None = None
    deprecation_reason: str | None = None
    superseded_by: str | None = None
    # Set by a purge (right to erasure): content, tags and meta were destroyed at `purged_at`.
    purged_at: datetime | None = None
    purge_reason: str | None = None

    @property
    def status(self) -> FactStatus:
        """`purged`, `superseded`, `deprecated` or `active`, as the record stands now."""
        if self.purged_at is not None:
            return "purged"
        if self.superseded_by is not None:
            return "superseded"
        if self.deprecated_at is not None:
            return "deprecated"
        return "active"

    def digest(self) -> bytes:
        """SHA-256 of the canonical record of the fact's immutable fields (what the ledger logs)."""
        return sha256(
            fact_record_bytes(
                id=self.id,
                tenant=self.tenant,
                project=self.project,
                content=self.content,
                fact_type=self.fact_type,
                tags_json=canonical_text(self.tags),
                source=self.source,
                confidence=self.confidence,
                valid_from=to_micros(self.valid_from),
                valid_until=None if self.valid_until is None else to_micros(self.valid_until),
                supersedes=self.supersedes,
                created_at=to_micros(self.created_at),
                meta_json=canonical_text(dict(self.meta)),
            )
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field, timestamps as RFC 3339 text."""
        return {
            "id": self.id,
            "tenant": self.tenant,
            "project": self.project,
            "content": self.content,
            "fact_type": self.fact_type,
            "tags": list(self.tags),
            "source": self.source,
            "confidence": self.confidence,
            "valid_from": _iso(self.valid_from),
            "valid_until": _iso(self.valid_until),
            "supersedes": self.supersedes,
            "created_at": _iso(self.created_at),
            "meta": dict(self.meta),
            "seq": self.seq,
            "status": self.status,
            "deprecated_at": _iso(self.deprecated_at),
            "deprecation_reason": self.deprecation_reason,
            "superseded_by": self.superseded_by,
            "purged_at": _iso(self.purged_at),
            "purge_reason": self.purge_reason,
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Transaction:
    """One ledger entry. `entry` is its canonical bytes (everything but `hash`)."""

    tenant: str
    seq: int
    op: str
    subject: str | None
    actor: str | None
    ts: str
    payload: Mapping[str, Any]
    payload_digest: bytes
    prev_hash: bytes
    hash: bytes

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; digests as lowercase hex."""
        return {
            "tenant": self.tenant,
            "seq": self.seq,
            "op": self.op,
            "subject": self.subject,
            "actor": self.actor,
            "ts": self.ts,
            "payload": dict(self.payload),
            "payload_digest": self.payload_digest.hex(),
            "prev_hash": self.prev_hash.hex(),
            "hash": self.hash.hex(),
        }


@dataclass(frozen=True, slots=True)
class FactVersion:
    """One version of a fact in its supersession chain, with the transactions that touched it."""

    fact: Fact
    transactions: tuple[Transaction, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the fact and its transactions."""
        return {
            "fact": self.fact.to_dict(),
            "transactions": [tx.to_dict() for tx in self.transactions],
        }


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement of a tenant's tree size and root at an instant."""

    tenant: str
    tree_size: int
    root: bytes
    ts: str
    signature: bytes
    key_id: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; binary values as lowercase hex."""
        return {
            "tenant": self.tenant,
            "tree_size": self.tree_size,
            "root": self.root.hex(),
            "ts": self.ts,
            "signature": self.signature.hex(),
            "key_id": self.key_id,
        }


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """RFC 9162 §2.1.3 audit path of one entry in a tenant's tree of `tree_size` leaves."""

    tenant: str
    seq: int
    tree_size: int
    entry: bytes
    leaf_hash: bytes
    path: tuple[bytes, ...]
    root: bytes

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; the entry as UTF-8 text, hashes as lowercase hex."""
        return {
            "tenant": self.tenant,
            "seq": self.seq,
            "tree_size": self.tree_size,
            "entry": self.entry.decode(),
            "leaf_hash": self.leaf_hash.hex(),
            "path": [h.hex() for h in self.path],
            "root": self.root.hex(),
        }


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    """RFC 9162 §2.1.4 proof that the tree of `old_size` is a prefix of the tree of `new_size`."""

    tenant: str
    old_size: int
    new_size: int
    old_root: bytes
    new_root: bytes
    path: tuple[bytes, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; hashes as lowercase hex."""
        return {
            "tenant": self.tenant,
            "old_size": self.old_size,
            "new_size": self.new_size,
            "old_root": self.old_root.hex(),
            "new_root": self.new_root.hex(),
            "path": [h.hex() for h in self.path],
        }


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing; `next_cursor` is None on the last page."""

    items: tuple[Fact, ...]
    next_cursor: str | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: `items` and `next_cursor`."""
        return {"items": [f.to_dict() for f in self.items], "next_cursor": self.next_cursor}


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One search result: the fact, its score, and the rank each method gave it (1 = best).

    `score` is the fused RRF score in hybrid mode, the cosine similarity in vector mode and the
    negated BM25 score in text mode; higher is better in every mode. `fact.seq` is its ledger
    entry, for `inclusion_proof`.
    """

    fact: Fact
    score: float
    ranks: Mapping[str, int]

    @property
    def seq(self) -> int:
        """The ledger seq of the entry that stored this fact."""
        return self.fact.seq

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the fact, its score and the per-method ranks."""
        return {"fact": self.fact.to_dict(), "score": self.score, "ranks": dict(self.ranks)}


@dataclass(frozen=True, slots=True)
class Problem:
    """One integrity problem found by `verify`: where (`tenant`, `seq`) and what."""

    tenant: str
    seq: int | None
    kind: ProblemKind
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"tenant": self.tenant, "seq": self.seq, "kind": self.kind, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of `verify`: `ok` is True only when `problems` is empty.

    `purged` counts the facts (among `facts`) whose content was destroyed by a logged purge:
    their digests cannot be recomputed; their purge entries are checked instead.
    """

    problems: tuple[Problem, ...]
    tenants: int
    entries: int
    facts: int
    checkpoints: int
    truncated: bool = False
    purged: int = 0

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "ok": self.ok,
            "tenants": self.tenants,
            "entries": self.entries,
            "facts": self.facts,
            "checkpoints": self.checkpoints,
            "purged": self.purged,
            "problems": [p.to_dict() for p in self.problems],
            "truncated": self.truncated,
        }


@dataclass(frozen=True, slots=True)
class Stats:
    """Counts for one tenant."""

    tenant: str
    facts: int
    active: int
    deprecated: int
    superseded: int
    transactions: int
    checkpoints: int
    latest_checkpoint_size: int | None
    database_bytes: int
    purged: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "tenant": self.tenant,
            "facts": self.facts,
            "active": self.active,
            "deprecated": self.deprecated,
            "superseded": self.superseded,
            "transactions": self.transactions,
            "checkpoints": self.checkpoints,
            "latest_checkpoint_size": self.latest_checkpoint_size,
            "database_bytes": self.database_bytes,
            "purged": self.purged,
        }
