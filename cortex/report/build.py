"""Building the compliance report of one tenant: scan the ledger, verify it, check checkpoints.

`build_report` reads everything through a `ReportSource` (the engine's public read methods)
plus `entry_at` (one transaction by seq), page by page, so memory stays bounded however long
the ledger is. The result is a `ComplianceReport`: a JSON-ready header and body (the schema is
`cortex.report.schema.REPORT_SCHEMA`), rendered by `cortex.report.render`.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cortex.canonical import canonical_json, format_ts, sha256, to_micros
from cortex.config import Settings
from cortex.errors import (
    IntegrityError,
    NotFound,
    StoreClosed,
    StoreError,
    StoreUnavailable,
    ValidationError,
)
from cortex.ledger.checkpoint import key_id, verify_checkpoint_signature
from cortex.ledger.merkle import verify_consistency
from cortex.model import (
    MAX_CONTENT_BYTES,
    Checkpoint,
    ConsistencyProof,
    Stats,
    Transaction,
    VerifyReport,
)
from cortex.report.tally import KNOWN_OPS, MAX_ITEMS, LedgerTally, Period

__all__ = [
    "REPORT_FORMAT",
    "ComplianceReport",
    "ConsensusScores",
    "FactConsensus",
    "Progress",
    "ReportSource",
    "body_digest",
    "build_report",
]

REPORT_FORMAT = "cortex-report/1"
MAX_LISTED_ACTORS = 200
_MAX_OPS = 64  # op names asked for by name; entries of further ops are read one by one
_GATE_EVENTS = ("gate_decision", "gate_used")

Progress = Callable[[str, int, int], None]
"""`progress(step, done, total)`: step is "scan", "verify" or "checkpoints"."""

# Settings that bound what the store keeps or lets happen, shown in the retention section when
# this build of CORTEX has them.
_BOUNDING_SETTINGS = (
    "checkpoint_every",
    "gated_actions",
    "gate_ttl",
    "gate_max_pending",
    "gate_bulk_threshold",
    "encrypted_search",
    "consensus_verified",
    "consensus_disputed",
)


class FactConsensus(Protocol):
    """A fact's consensus as the consensus feature scores it."""

    @property
    def score(self) -> float: ...

    @property
    def status(self) -> str: ...


ConsensusScores = Callable[[], Awaitable[Mapping[str, FactConsensus]]]
"""Reads every voted fact's consensus now, by fact id."""


class ReportSource(Protocol):
    """What the report reads: the engine's ledger methods (`cortex.Cortex` has them all)."""

    async def events(
        self,
        ops: Iterable[str],
        *,
        subject: str | None = None,
        after_seq: int = -1,
        limit: int = 1000,
        tenant: str | None = None,
    ) -> list[Transaction]: ...

    async def verify(
        self, *, tenant: str | None = None, workers: int | None = None
    ) -> VerifyReport: ...

    async def checkpoints(self, *, tenant: str | None = None) -> list[Checkpoint]: ...

    async def consistency_proof(
        self, old_size: int, new_size: int | None = None, *, tenant: str | None = None
    ) -> ConsistencyProof: ...

    async def stats(self, *, tenant: str | None = None) -> Stats: ...


@dataclass(frozen=True, slots=True)
class ComplianceReport:
    """A record-keeping report: `header` (who, when, which period, digest) and `body`."""

    header: Mapping[str, Any]
    body: Mapping[str, Any]

    @property
    def ok(self) -> bool:
        """True when the ledger verified and every checkpoint is signed and consistent."""
        return bool(self.body["integrity"]["status"] == "ok")

    @property
    def tenant(self) -> str:
        """The tenant reported on."""
        return str(self.header["tenant"])

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (see `REPORT_SCHEMA`)."""
        return {"format": REPORT_FORMAT, "header": dict(self.header), "body": dict(self.body)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ComplianceReport:
        """A report from its `to_dict()` form; ValidationError for another format."""
        if not isinstance(data, Mapping) or data.get("format") != REPORT_FORMAT:
            found = data.get("format") if isinstance(data, Mapping) else type(data).__name__
            raise ValidationError(f"not a {REPORT_FORMAT} report (format {found!r})")
        header, body = data.get("header"), data.get("body")
        if not isinstance(header, Mapping) or not isinstance(body, Mapping):
            raise ValidationError("a report has a 'header' and a 'body' object")
        return cls(dict(header), dict(body))


def body_digest(body: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the RFC 8785 canonical JSON of a report body."""
    return sha256(canonical_json(dict(body))).hex()


def _version() -> str:
    try:
        return importlib.metadata.version("cortex-memory")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed as a package)"


async def build_report(
    source: ReportSource,
    tenant: str,
    *,
    public_key: Ed25519PublicKey,
    settings: Settings,
    entry_at: Callable[[int], Awaitable[Transaction]],
    period: Period | None = None,
    now: datetime | None = None,
    progress: Progress | None = None,
    page: int = 1000,
    encrypted: bool | None = None,
    consensus: ConsensusScores | None = None,
) -> ComplianceReport:
    """Build `tenant`'s compliance report over `period` (default: the whole ledger).

    The ledger's size is read first: the report covers exactly the entries below it (entries
    appended meanwhile are left for the next report). NotFound for a tenant without a ledger.
    `encrypted` says whether fact content is stored encrypted (None: not known); `consensus`
    reads the facts' reputation-weighted consensus now, for the disputed facts.
    """
    chosen = period or Period()
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    stats = await source.stats(tenant=tenant)
    size = stats.transactions
    if size == 0:
        raise NotFound(f"tenant {tenant!r} has no ledger yet: nothing to report")
    tally = LedgerTally(chosen, moment)
    # Verification reads the ledger in other threads or processes: it runs while we count.
    verified, _ = await asyncio.gather(
        source.verify(tenant=tenant), _scan(source, tenant, entry_at, tally, size, page, progress)
    )
    if progress is not None:
        progress("verify", 1, 1)
    await _approvals_of_purges(source, tenant, tally.purges)
    checkpoints = await _checkpoint_section(source, tenant, public_key, progress)
    integrity = _integrity(verified, tally, checkpoints)
    body = {
        "activity": tally.activity(),
        "actors": tally.actors(MAX_LISTED_ACTORS),
        "integrity": integrity,
        "purges": tally.purge_section(tally.ops_total["purge"]),
        "gate": tally.gate(),
        "key_rotations": tally.rotation_section(),
        "votes": {**tally.vote_section(), "disputed": await _disputed(consensus)},
        "retention": _retention(settings, stats, tally, checkpoints["count"], encrypted),
    }
    header = {
        "title": "CORTEX record-keeping report",
        "generated_at": format_ts(to_micros(moment)),
        "tenant": tenant,
        "period": chosen.to_dict(),
        "cortex_version": _version(),
        "ledger_size": size,
        "public_key_id": key_id(public_key),
        "body_sha256": body_digest(body),
    }
    return ComplianceReport(header, body)


async def _scan(
    source: ReportSource,
    tenant: str,
    entry_at: Callable[[int], Awaitable[Transaction]],
    tally: LedgerTally,
    size: int,
    page: int,
    progress: Progress | None,
) -> None:
    """Feed entries 0..size-1 to `tally` in seq order, a page of known ops at a time.

    Entries of ops not asked for show up as gaps in the seqs of a page; each gap is read by
    seq, and its op joins the names asked for from then on, so every entry is counted once.
    """
    ops = list(KNOWN_OPS)
    cursor = -1
    batch: deque[Transaction] = deque()
    exhausted = False  # no entry of `ops` lies beyond what `batch` held
    while cursor < size - 1:
        if not batch and not exhausted:
            fetched = await source.events(ops, after_seq=cursor, limit=page, tenant=tenant)
            batch.extend(tx for tx in fetched if tx.seq < size)
            exhausted = len(fetched) < page or len(batch) < len(fetched)
            if progress is not None:
                progress("scan", cursor + 1, size)
        if batch and batch[0].seq <= cursor:
            batch.popleft()  # read already, as a gap
            continue
        if batch and batch[0].seq == cursor + 1:
            tx = batch.popleft()
        else:
            seq = cursor + 1
            try:
                tx = await entry_at(seq)
            except NotFound:
                tally.note_missing(seq)  # `verify` names what is wrong with it
                cursor = seq
                continue
            if tx.op not in ops and len(ops) < _MAX_OPS:
                ops.append(tx.op)
                batch.clear()
                exhausted = False
        await _feed(source, tenant, tally, tx, size)
        cursor = tx.seq
    if progress is not None:
        progress("scan", size, size)


async def _feed(
    source: ReportSource, tenant: str, tally: LedgerTally, tx: Transaction, size: int
) -> None:
    related: list[Transaction] = []
    if tally.wants_gate_outcome(tx) and tx.subject is not None:
        found = await source.events(_GATE_EVENTS, subject=tx.subject, limit=16, tenant=tenant)
        related = [event for event in found if event.seq < size]
    tally.add(tx, related)


async def _approvals_of_purges(
    source: ReportSource, tenant: str, purges: list[dict[str, Any]]
) -> None:
    """Fill in who decided on the approval each listed purge names."""
    for item in purges:
        approval = item["approval"]
        if approval is None:
            continue
        found = await source.events(("gate_decision",), subject=approval, limit=1, tenant=tenant)
        if found:
            decision = found[0].payload.get("decision")
            item["approval_decision"] = decision if isinstance(decision, str) else None
            item["approved_by"] = found[0].actor if decision == "approve" else None


async def _proof_failure(
    source: ReportSource, tenant: str, old: Checkpoint, new_size: int, new_root: bytes | None
) -> tuple[str | None, bytes | None]:
    """(why `old` is not a prefix of the tree of `new_size`, or None; that tree's root).

    `new_root` None means the current tree: its root is the one the store's nodes give.
    """
    try:
        proof = await source.consistency_proof(old.tree_size, new_size, tenant=tenant)
    except (StoreUnavailable, StoreClosed):
        raise
    except (ValidationError, IntegrityError, StoreError) as exc:
        return f"no consistency proof: {exc}", None
    target = proof.new_root if new_root is None else new_root
    if verify_consistency(old.tree_size, new_size, old.root, target, proof.path):
        return None, proof.new_root
    return "the signed roots are not linked by the ledger's consistency proof", proof.new_root


async def _checkpoint_section(
    source: ReportSource,
    tenant: str,
    public_key: Ed25519PublicKey,
    progress: Progress | None,
) -> dict[str, Any]:
    """Signatures of every checkpoint, and the consistency of each with the next and now."""
    stored = sorted(await source.checkpoints(tenant=tenant), key=lambda c: c.tree_size)
    size = (await source.stats(tenant=tenant)).transactions
    invalid = [c.tree_size for c in stored if not verify_checkpoint_signature(public_key, c)]
    failures: list[dict[str, Any]] = []
    failure_count = 0
    pairs_consistent = current_consistent = 0
    current_root: bytes | None = None
    for number, old in enumerate(stored):
        if progress is not None:
            progress("checkpoints", number, len(stored))
        checks: list[tuple[str, int, bytes | None]] = [("current", size, None)]
        if number + 1 < len(stored):
            newer = stored[number + 1]
            checks.insert(0, ("next", newer.tree_size, newer.root))
        for against, new_size, new_root in checks:
            detail, root = await _proof_failure(source, tenant, old, new_size, new_root)
            if against == "current" and root is not None:
                current_root = root
            if detail is None:
                if against == "next":
                    pairs_consistent += 1
                else:
                    current_consistent += 1
                continue
            failure_count += 1
            if len(failures) < MAX_ITEMS:
                failures.append(
                    {
                        "old_size": old.tree_size,
                        "new_size": new_size,
                        "against": against,
                        "detail": detail,
                    }
                )
    if progress is not None:
        progress("checkpoints", len(stored), len(stored))
    latest = None
    if stored:
        last = stored[-1]
        latest = {**last.to_dict(), "signature_valid": last.tree_size not in invalid}
    return {
        "count": len(stored),
        "latest": latest,
        "signatures_valid": len(stored) - len(invalid),
        "signatures_invalid": invalid[:MAX_ITEMS],
        "pairs_checked": max(0, len(stored) - 1),
        "pairs_consistent": pairs_consistent,
        "current_tree": {
            "tree_size": size,
            "root": None if current_root is None else current_root.hex(),
            "checkpoints_consistent": current_consistent,
        },
        "failures": failures,
        "failures_more": failure_count - len(failures),
    }


def _integrity(
    verified: VerifyReport, tally: LedgerTally, checkpoints: dict[str, Any]
) -> dict[str, Any]:
    problems = [
        {"seq": p.seq, "kind": p.kind, "detail": p.detail} for p in verified.problems[:MAX_ITEMS]
    ]
    failed = (
        not verified.ok
        or tally.missing_count > 0
        or checkpoints["signatures_invalid"]
        or checkpoints["failures"]
    )
    return {
        "status": "failed" if failed else "ok",
        "verify": {
            "ok": verified.ok,
            "entries": verified.entries,
            "facts": verified.facts,
            "checkpoints": verified.checkpoints,
            "problems": problems,
            "problems_more": len(verified.problems) - len(problems),
            "truncated": verified.truncated,
        },
        "unreadable_entries": {"count": tally.missing_count, "seqs": tally.missing},
        "checkpoints": checkpoints,
    }


async def _disputed(consensus: ConsensusScores | None) -> dict[str, Any]:
    """The facts the consensus feature marks disputed now, most disputed first (capped)."""
    if consensus is None:
        return {"available": False, "count": 0, "items": [], "more": 0}
    scores = await consensus()
    found = sorted(
        (score.score, fact_id) for fact_id, score in scores.items() if score.status == "disputed"
    )
    items = [{"fact_id": f, "score": round(score, 4)} for score, f in found[:MAX_ITEMS]]
    return {"available": True, "count": len(found), "items": items, "more": len(found) - len(items)}


def _setting_value(value: object) -> object:
    if isinstance(value, tuple | list):
        return [str(item) for item in value]
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return str(value)


def _retention(
    settings: Settings,
    stats: Stats,
    tally: LedgerTally,
    checkpoint_count: int,
    encrypted: bool | None,
) -> dict[str, Any]:
    """What the store keeps and what bounds it, from the settings and the ledger itself."""
    present = {name for name in _BOUNDING_SETTINGS if hasattr(settings, name)}
    return {
        "settings": {
            name: _setting_value(getattr(settings, name))
            for name in _BOUNDING_SETTINGS
            if name in present
        },
        "encrypted": encrypted,
        "ledger_append_only": True,
        "ledger_entries": tally.entries_total,
        "ledger_by_op": dict(sorted(tally.ops_total.items())),
        "facts": {
            "total": stats.facts,
            "active": stats.active,
            "deprecated": stats.deprecated,
            "superseded": stats.superseded,
        },
        "purged_facts": tally.ops_total["purge"],
        "checkpoints": checkpoint_count,
        "checkpoint_every": settings.checkpoint_every,
        "backend": "sqlite" if settings.database_url is None else "postgresql",
        "database_bytes": stats.database_bytes,
        "max_fact_bytes": MAX_CONTENT_BYTES,
    }
