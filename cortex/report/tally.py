"""Counting a tenant's ledger for the compliance report, one transaction at a time. Pure.

`LedgerTally` is fed every transaction of the ledger in seq order (`add`) and keeps only
bounded state: counts by op, by day and by actor, and capped lists of the items a reader wants
to see one by one (purges, gate requests, key rotations). `Period` says which entries count.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from cortex.canonical import format_ts, parse_ts, to_micros
from cortex.errors import ValidationError
from cortex.model import Transaction

__all__ = [
    "KNOWN_OPS",
    "MAX_ACTORS",
    "MAX_ITEMS",
    "MAX_VOTE_PAIRS",
    "BucketUnit",
    "LedgerTally",
    "Period",
    "gate_status",
    "parse_period",
]

# The ops of the shared vocabulary; others (from newer features) are discovered while scanning.
KNOWN_OPS = (
    "store",
    "supersede",
    "deprecate",
    "purge",
    "vote",
    "gate_request",
    "gate_decision",
    "gate_used",
    "key_rotate",
)
MAX_ITEMS = 100  # purges, gate requests, key rotations, contested facts listed one by one
MAX_ACTORS = 10_000  # actors counted one by one; later ones are summed as "other actors"
MAX_VOTE_PAIRS = 100_000  # (fact, agent) standing votes remembered to find contested facts
_MAX_DAY_KEYS = 4000  # beyond this many distinct days, activity is counted by month
_MAX_DENSE_BUCKETS = 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

BucketUnit = Literal["day", "week", "month"]
GateStatus = Literal["pending", "approved", "used", "denied", "expired", "unknown"]
GATE_STATUSES: tuple[GateStatus, ...] = (
    "pending",
    "approved",
    "used",
    "denied",
    "expired",
    "unknown",
)


@dataclass(frozen=True, slots=True)
class Period:
    """The entries a report counts: `start <= ts < end`; None leaves that side open."""

    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self) -> None:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValidationError("the period is empty: --to must be later than --from")

    @property
    def start_ts(self) -> str | None:
        """The start as ledger timestamp text (comparable with `Transaction.ts`)."""
        return None if self.start is None else format_ts(to_micros(self.start))

    @property
    def end_ts(self) -> str | None:
        """The exclusive end as ledger timestamp text."""
        return None if self.end is None else format_ts(to_micros(self.end))

    def position(self, ts: str) -> int:
        """-1 before the period, 0 inside it, 1 after it."""
        start, end = self.start_ts, self.end_ts
        if start is not None and ts < start:
            return -1
        if end is not None and ts >= end:
            return 1
        return 0

    def to_dict(self) -> dict[str, str | None]:
        """`start` (inclusive) and `end` (exclusive) as RFC 3339 text, null when open."""
        return {"start": self.start_ts, "end": self.end_ts}


def _is_date_only(text: str) -> bool:
    return len(text.strip()) == 10 and "T" not in text.upper()


def parse_period(start: str | datetime | None, end: str | datetime | None) -> Period:
    """The period from `--from` and `--to`: both inclusive; a date alone means that whole day.

    `--to 2026-03-31` ends at 2026-04-01T00:00:00Z (exclusive); `--to 2026-03-31T12:00:00Z`
    includes that instant.
    """
    first = None if start is None else parse_ts(start)
    if first is not None and first <= _EPOCH:
        first = None  # no entry is older: the period starts with the ledger
    last = None
    if end is not None:
        step = (
            timedelta(days=1)
            if isinstance(end, str) and _is_date_only(end)
            else timedelta(microseconds=1)
        )
        try:
            last = parse_ts(end) + step
        except OverflowError:
            last = None  # past the end of the calendar: the period ends with the ledger
        if last is not None and last <= _EPOCH:
            raise ValidationError(f"--to {end} is before any ledger entry can be")
    return Period(first, last)


def gate_status(request: Transaction, related: Iterable[Transaction], now: datetime) -> GateStatus:
    """The outcome of a gate request given its later `gate_decision`/`gate_used` events."""
    decision: str | None = None
    used = False
    for tx in related:
        if tx.op == "gate_decision" and decision is None:
            value = tx.payload.get("decision")
            decision = value if value in ("approve", "deny") else "unknown"
        elif tx.op == "gate_used":
            used = True
    if decision == "approve":
        return "used" if used else "approved"
    if decision == "deny":
        return "denied"
    if decision == "unknown":
        return "unknown"
    expires = _timestamp(request.payload.get("expires_at"))
    if expires is not None and expires <= now:
        return "expired"
    return "pending"


def _timestamp(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_ts(value)
    except ValidationError:
        return None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _day(ts: str) -> date | None:
    try:
        return date.fromisoformat(ts[:10])
    except ValueError:
        return None


def _bucket_start(day: date, unit: BucketUnit) -> date:
    if unit == "day":
        return day
    if unit == "week":
        return day - timedelta(days=day.weekday())  # ISO weeks start on Monday
    return day.replace(day=1)


def _next_bucket(start: date, unit: BucketUnit) -> date:
    if unit == "day":
        return start + timedelta(days=1)
    if unit == "week":
        return start + timedelta(days=7)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def bucket_unit(first: date, last: date) -> BucketUnit:
    """Days for up to about a quarter, weeks for up to three years, months beyond."""
    span = (last - first).days
    if span <= 92:
        return "day"
    if span <= 3 * 366:
        return "week"
    return "month"


class LedgerTally:
    """Bounded counts of one tenant's ledger over a period, fed in seq order by `add`."""

    def __init__(self, period: Period, now: datetime) -> None:
        self.period = period
        self.now = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
        self.entries_total = 0  # every entry scanned, in the period or not
        self.ops_total: Counter[str] = Counter()
        self.entries = 0
        self.by_op: Counter[str] = Counter()
        self.first: Transaction | None = None
        self.last: Transaction | None = None
        self.missing: list[int] = []  # seqs that could not be read (capped)
        self.missing_count = 0
        self._days: dict[date, Counter[str]] = {}
        self._by_month = False
        self._undated = 0
        self._actors: dict[str | None, Counter[str]] = {}
        self._other_actors: Counter[str] = Counter()
        self._other_actor_count = 0
        self.purges: list[dict[str, Any]] = []
        self.purges_more = 0
        self.gate_requests: list[dict[str, Any]] = []
        self.gate_requests_more = 0
        self.gate_by_action: Counter[str] = Counter()
        self.gate_by_status: Counter[str] = Counter()
        self.gate_decisions: Counter[str] = Counter()
        self.gate_used = 0
        self.rotations: list[dict[str, Any]] = []
        self.rotations_more = 0
        self.rotations_by_kind: Counter[str] = Counter()
        self.votes: Counter[str] = Counter()
        self._voters: set[str | None] = set()
        self._voted_facts: set[str | None] = set()
        self._standing: dict[str | None, dict[str | None, int]] = {}
        self._standing_pairs = 0
        self.standing_truncated = False

    # ------------------------------------------------------------------ feeding

    def note_missing(self, seq: int) -> None:
        """Record an entry that the scan could not read (a gap in the ledger)."""
        self.missing_count += 1
        if len(self.missing) < MAX_ITEMS:
            self.missing.append(seq)

    def wants_gate_outcome(self, tx: Transaction) -> bool:
        """True when `add` needs the later events of this gate request (it is in the period)."""
        return tx.op == "gate_request" and self.period.position(tx.ts) == 0

    def add(self, tx: Transaction, related: Sequence[Transaction] = ()) -> None:
        """Count one transaction; `related` are a gate request's decision and use events."""
        self.entries_total += 1
        self.ops_total[tx.op] += 1
        where = self.period.position(tx.ts)
        if tx.op == "vote" and where <= 0:
            self._stand(tx)  # votes cast before the period still stand in it
        if where != 0:
            return
        self.entries += 1
        self.by_op[tx.op] += 1
        if self.first is None:
            self.first = tx
        self.last = tx
        self._count_day(tx)
        self._count_actor(tx)
        if tx.op == "purge":
            self._add_purge(tx)
        elif tx.op == "gate_request":
            self._add_gate_request(tx, related)
        elif tx.op == "gate_decision":
            self.gate_decisions[_text(tx.payload.get("decision")) or "unknown"] += 1
        elif tx.op == "gate_used":
            self.gate_used += 1
        elif tx.op == "key_rotate":
            self._add_rotation(tx)
        elif tx.op == "vote":
            self._add_vote(tx)

    def _count_day(self, tx: Transaction) -> None:
        day = _day(tx.ts)
        if day is None:
            self._undated += 1
            return
        key = day.replace(day=1) if self._by_month else day
        counts = self._days.get(key)
        if counts is None:
            if len(self._days) >= _MAX_DAY_KEYS and not self._by_month:
                self._coarsen_to_months()
                key = day.replace(day=1)
            counts = self._days.setdefault(key, Counter())
        counts[tx.op] += 1

    def _coarsen_to_months(self) -> None:
        months: dict[date, Counter[str]] = {}
        for day, counts in self._days.items():
            months.setdefault(day.replace(day=1), Counter()).update(counts)
        self._days = months
        self._by_month = True

    def _count_actor(self, tx: Transaction) -> None:
        counts = self._actors.get(tx.actor)
        if counts is None:
            if len(self._actors) >= MAX_ACTORS:
                self._other_actors[tx.op] += 1
                return
            counts = self._actors[tx.actor] = Counter()
        counts[tx.op] += 1

    def _add_purge(self, tx: Transaction) -> None:
        if len(self.purges) >= MAX_ITEMS:
            self.purges_more += 1
            return
        self.purges.append(
            {
                "seq": tx.seq,
                "ts": tx.ts,
                "fact_id": tx.subject,
                "actor": tx.actor,
                "reason": _text(tx.payload.get("reason")),
                "approval": _text(tx.payload.get("approval")),
                "approval_decision": None,
                "approved_by": None,
            }
        )

    def _add_gate_request(self, tx: Transaction, related: Sequence[Transaction]) -> None:
        action = _text(tx.payload.get("action")) or "unknown"
        status = gate_status(tx, related, self.now)
        self.gate_by_action[action] += 1
        self.gate_by_status[status] += 1
        if len(self.gate_requests) >= MAX_ITEMS:
            self.gate_requests_more += 1
            return
        decision = next((r for r in related if r.op == "gate_decision"), None)
        used = next((r for r in related if r.op == "gate_used"), None)
        self.gate_requests.append(
            {
                "seq": tx.seq,
                "ts": tx.ts,
                "approval_id": tx.subject,
                "requested_by": tx.actor,
                "action": action,
                "expires_at": _text(tx.payload.get("expires_at")),
                "status": status,
                "decided_by": None if decision is None else decision.actor,
                "decided_at": None if decision is None else decision.ts,
                "decision_reason": None
                if decision is None
                else _text(decision.payload.get("reason")),
                "used_at": None if used is None else used.ts,
            }
        )

    def _add_rotation(self, tx: Transaction) -> None:
        kind = _text(tx.payload.get("kind")) or "unknown"
        self.rotations_by_kind[kind] += 1
        if len(self.rotations) >= MAX_ITEMS:
            self.rotations_more += 1
            return
        version = tx.payload.get("version")
        self.rotations.append(
            {
                "seq": tx.seq,
                "ts": tx.ts,
                "kind": kind,
                "key_tenant": _text(tx.payload.get("tenant")),
                "version": version if isinstance(version, int) else None,
                "actor": tx.actor,
            }
        )

    @staticmethod
    def _vote_value(tx: Transaction) -> int:
        value = tx.payload.get("value")
        return value if value in (1, -1) and not isinstance(value, bool) else 0

    def _add_vote(self, tx: Transaction) -> None:
        value = self._vote_value(tx)
        self.votes["up" if value == 1 else "down" if value == -1 else "invalid"] += 1
        if len(self._voters) < MAX_ACTORS:
            self._voters.add(tx.actor)
        if len(self._voted_facts) < MAX_VOTE_PAIRS:
            self._voted_facts.add(tx.subject)

    def _stand(self, tx: Transaction) -> None:
        """Keep each agent's latest vote on each fact (a new vote replaces the old one)."""
        value = self._vote_value(tx)
        if value == 0:
            return
        votes = self._standing.get(tx.subject)
        if votes is None or tx.actor not in votes:
            if self._standing_pairs >= MAX_VOTE_PAIRS:
                self.standing_truncated = True
                return
            self._standing_pairs += 1
            if votes is None:
                votes = self._standing[tx.subject] = {}
        votes[tx.actor] = value

    # ------------------------------------------------------------------ results

    def activity(self) -> dict[str, Any]:
        """The `activity` section: entries by op, first and last, the timeline, fact changes."""
        unit, buckets = self._timeline()
        return {
            "entries": self.entries,
            "by_op": dict(sorted(self.by_op.items())),
            "first_entry": _entry_ref(self.first),
            "last_entry": _entry_ref(self.last),
            "facts": {
                "stored": self.by_op["store"],
                "superseded": self.by_op["supersede"],
                "deprecated": self.by_op["deprecate"],
                "purged": self.by_op["purge"],
            },
            "timeline": {"unit": unit, "undated": self._undated, "buckets": buckets},
        }

    def _timeline(self) -> tuple[BucketUnit, list[dict[str, Any]]]:
        if not self._days:
            return "day", []
        first, last = min(self._days), max(self._days)
        unit: BucketUnit = "month" if self._by_month else bucket_unit(first, last)
        merged: dict[date, Counter[str]] = {}
        for day, counts in self._days.items():
            merged.setdefault(_bucket_start(day, unit), Counter()).update(counts)
        starts: list[date] = []
        cursor, end = _bucket_start(first, unit), _bucket_start(last, unit)
        while cursor <= end and len(starts) <= _MAX_DENSE_BUCKETS:
            starts.append(cursor)
            cursor = _next_bucket(cursor, unit)
        if len(starts) > _MAX_DENSE_BUCKETS:
            starts = sorted(merged)  # a pathological span: only the buckets that have entries
        buckets = []
        for start in starts:
            counts = merged.get(start, Counter())
            buckets.append(
                {
                    "start": start.isoformat(),
                    "total": sum(counts.values()),
                    "by_op": dict(sorted(counts.items())),
                }
            )
        return unit, buckets

    def actors(self, listed: int) -> dict[str, Any]:
        """The `actors` section: the `listed` busiest actors with their counts by op."""
        ranked = sorted(self._actors.items(), key=lambda item: (-item[1].total(), item[0] or ""))
        items = [
            {
                "actor": actor,
                "kind": _actor_kind(actor),
                "total": counts.total(),
                "by_op": dict(sorted(counts.items())),
            }
            for actor, counts in ranked[:listed]
        ]
        return {
            "count": len(self._actors),
            "by_kind": dict(sorted(Counter(_actor_kind(a) for a in self._actors).items())),
            "items": items,
            "more": max(0, len(ranked) - listed),
            "uncounted": {
                "entries": self._other_actors.total(),
                "by_op": dict(sorted(self._other_actors.items())),
            },
        }

    def gate(self) -> dict[str, Any]:
        """The `gate` section: requests by action and outcome, decisions, uses, the requests."""
        return {
            "requests": self.by_op["gate_request"],
            "by_action": dict(sorted(self.gate_by_action.items())),
            "by_status": {status: self.gate_by_status[status] for status in GATE_STATUSES},
            "decisions": dict(sorted(self.gate_decisions.items())),
            "used": self.gate_used,
            "items": self.gate_requests,
            "more": self.gate_requests_more,
        }

    def purge_section(self, purged_total: int) -> dict[str, Any]:
        """The `purges` section: count in the period and overall, and the purges one by one."""
        return {
            "count": self.by_op["purge"],
            "total_in_ledger": purged_total,
            "items": self.purges,
            "more": self.purges_more,
        }

    def rotation_section(self) -> dict[str, Any]:
        """The `key_rotations` section."""
        return {
            "count": self.by_op["key_rotate"],
            "by_kind": dict(sorted(self.rotations_by_kind.items())),
            "items": self.rotations,
            "more": self.rotations_more,
        }

    def vote_section(self) -> dict[str, Any]:
        """The `votes` section: votes cast in the period and the facts contested at its end."""
        split: list[tuple[str | None, int, int]] = []
        for fact_id, votes in self._standing.items():
            up = sum(1 for v in votes.values() if v == 1)
            down = len(votes) - up
            if up and down:
                split.append((fact_id, up, down))
        split.sort(key=lambda item: (-min(item[1], item[2]), item[0] or ""))
        contested = [{"fact_id": f, "up": up, "down": down} for f, up, down in split]
        return {
            "count": self.by_op["vote"],
            "up": self.votes["up"],
            "down": self.votes["down"],
            "invalid": self.votes["invalid"],
            "voters": len(self._voters),
            "facts": len(self._voted_facts),
            "contested": contested[:MAX_ITEMS],
            "contested_more": max(0, len(contested) - MAX_ITEMS),
            "contested_truncated": self.standing_truncated,
        }


def _entry_ref(tx: Transaction | None) -> dict[str, Any] | None:
    return None if tx is None else {"seq": tx.seq, "ts": tx.ts, "op": tx.op}


def _actor_kind(actor: str | None) -> str:
    if actor is None:
        return "none"
    if actor.startswith("key-"):
        return "api_key"
    return "agent"
